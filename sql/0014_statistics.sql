-- Postfach schema: no planner statistics for columns that no query filters,
-- joins or sorts on.
-- Forward-only: never edit this file once landed.
--
-- Why: autovacuum analyzes `message`, `receipt` and `submission` after
-- every tenth of their rows has changed, and every first retrieval changes
-- a copy. ANALYZE then sorts a sample of 30,000 values of every column,
-- the ciphertext, the JWE header and the signed receipt included. No query
-- filters on those columns (they are read by primary key, or listed by
-- mailbox and id), so their statistics serve no plan. On a machine where
-- the broker, the reader and PostgreSQL share the cores, an analyze is a
-- burst of CPU that shows as ACK latency.
--
-- Measured on the bench database (367,000 copies, 3 alternating runs each,
-- docs/architecture.md, "Maintenance under load"): ANALYZE message
-- 206-243 against 335-425 ms, receipt 195-208 against 265-282 ms,
-- submission 96-108 against 129-147 ms.
--
-- A column without statistics is planned with its type's default width;
-- the plans of every query in lib/store stay the same (index scans on the
-- primary keys and on message_expiry_due). SET STATISTICS takes a SHARE
-- UPDATE EXCLUSIVE lock, which blocks neither reads nor writes.
ALTER TABLE message
    ALTER COLUMN title SET STATISTICS 0,
    ALTER COLUMN reference SET STATISTICS 0,
    ALTER COLUMN request_id SET STATISTICS 0,
    ALTER COLUMN jwe_protected SET STATISTICS 0,
    ALTER COLUMN jwe_encrypted_key SET STATISTICS 0,
    ALTER COLUMN jwe_iv SET STATISTICS 0,
    ALTER COLUMN jwe_ciphertext SET STATISTICS 0,
    ALTER COLUMN jwe_tag SET STATISTICS 0;
ALTER TABLE receipt ALTER COLUMN token SET STATISTICS 0;
ALTER TABLE submission
    ALTER COLUMN ack SET STATISTICS 0,
    ALTER COLUMN payload_hash SET STATISTICS 0;
