-- Postfach schema: recipient allowlists of senders; storage of copies and
-- receipt wake-ups for group commits.
-- Forward-only: never edit this file once landed.
--
-- A procedure may be limited to the mailboxes it has business with: when
-- a sender has rows here, each recipient of its submissions must match
-- one pattern (an exact mailbox id, or a prefix followed by "*", e.g.
-- "bw-" for the mailboxes of one state's citizens); otherwise the broker
-- refuses the whole submission with NACK "forbidden" and stores nothing.
-- A sender without rows may deliver to every mailbox (the default, as
-- before this migration).
CREATE TABLE sender_recipient_allow (
    sender_id   bigint NOT NULL REFERENCES sender (id) ON DELETE CASCADE,
    pattern     text NOT NULL CHECK (pattern ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}[*]?$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sender_id, pattern)
);

-- The broker reads the allowlists; the role exists once the role
-- migration (0005) ran, and a later run of that migration grants nothing
-- on this table, so grant here when it is there.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_broker') THEN
        GRANT SELECT ON sender_recipient_allow TO postfach_broker;
    END IF;
END
$$;

-- The write path's cost per stored copy (docs/architecture.md, "Send
-- path").  A 2 KiB notice makes a row of about 3.5 KiB, above the 2 KiB at
-- which PostgreSQL starts to toast: it would try to compress the
-- ciphertext (which never compresses) and move it into the TOAST table
-- (a second heap and index insert per copy).  Rows up to a page stay
-- whole; larger notices (attachments) are still moved out of line, but
-- without the compression attempt.
ALTER TABLE message SET (toast_tuple_target = 8160);
ALTER TABLE message ALTER COLUMN jwe_ciphertext SET STORAGE EXTERNAL;

-- NOTIFY once per statement instead of once per row: a group commit
-- inserts hundreds of receipts in one statement, and the relay needs one
-- wake-up per sender (the payload is the sender id, as before).
CREATE FUNCTION receipt_notify_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postfach_receipt', d.sender_id::text)
        FROM (SELECT DISTINCT sender_id FROM new_receipts) AS d;
    RETURN NULL;
END
$$;
DROP TRIGGER receipt_notify ON receipt;
CREATE TRIGGER receipt_notify AFTER INSERT ON receipt
    REFERENCING NEW TABLE AS new_receipts
    FOR EACH STATEMENT EXECUTE FUNCTION receipt_notify_statement();
DROP FUNCTION receipt_notify();
