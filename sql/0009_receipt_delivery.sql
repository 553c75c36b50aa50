-- Postfach schema: the relay's delivery state moves out of the receipt row.
-- Forward-only: never edit this file once landed.
--
-- Why: every receipt was updated twice after its insert (claimed by the
-- relay, acknowledged by the procedure).  next_attempt_at and acked_at
-- were indexed (the receipt_pending partial index), so neither update
-- could be HOT: each wrote a new ~1 KiB tuple (the signed token included)
-- and new entries in all three indexes, among them the text UNIQUE key.
-- Measured under `make bench` (a): the relay's claim took 24 ms, 72% of
-- PostgreSQL's CPU went to the broker's relay connection, and the claim's
-- bitmap scan visited hundreds of pages of dead versions.
--
-- Now `receipt` is the append-only evidence (jti, sender, copy, event,
-- signed token, time) and `receipt_delivery` holds per jti the small,
-- often-changing state: attempts, next attempt, acknowledgement.  Its
-- rows are a few dozen bytes, so the updates write little, and the
-- partial index gives each sender's due receipts in order (jti is a
-- UUIDv7: creation order within one next_attempt_at).
CREATE TABLE receipt_delivery (
    jti             uuid PRIMARY KEY,  -- = receipt.jti; no FK: receipts are never deleted,
                                       -- and the check would cost a lookup per receipt
    sender_id       bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    acked_at        timestamptz
);
CREATE INDEX receipt_delivery_due ON receipt_delivery (sender_id, next_attempt_at, jti)
    WHERE acked_at IS NULL;

INSERT INTO receipt_delivery (jti, sender_id, attempts, next_attempt_at, acked_at)
    SELECT jti, sender_id, attempts, next_attempt_at, acked_at FROM receipt;

DROP INDEX receipt_pending;
ALTER TABLE receipt DROP COLUMN attempts, DROP COLUMN next_attempt_at, DROP COLUMN acked_at;

-- Every new receipt (the broker's delivered and expired ones, the reader's
-- read ones) gets its delivery row in the same statement, so no inserter
-- can forget it; one NOTIFY per statement and sender wakes the relay, as
-- before (0007).
CREATE OR REPLACE FUNCTION receipt_notify_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO receipt_delivery (jti, sender_id) SELECT jti, sender_id FROM new_receipts;
    PERFORM pg_notify('postfach_receipt', d.sender_id::text)
        FROM (SELECT DISTINCT sender_id FROM new_receipts) AS d;
    RETURN NULL;
END
$$;

-- Whoever inserts receipts (broker, reader) inserts delivery rows through
-- the trigger; the broker claims and acknowledges them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_broker') THEN
        GRANT SELECT, INSERT, UPDATE ON receipt_delivery TO postfach_broker;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_reader') THEN
        GRANT INSERT ON receipt_delivery TO postfach_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_admin') THEN
        GRANT SELECT ON receipt_delivery TO postfach_admin;
    END IF;
END
$$;
