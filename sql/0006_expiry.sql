-- Postfach schema: the "expired" receipts.
-- Forward-only: never edit this file once landed.
--
-- Each copy is looked at once when its retrieval window has passed: the
-- broker then writes an "expired" receipt when it was not retrieved in
-- time (the receipt outbox's UNIQUE (mailbox_id, message_id, event) keeps
-- it to one) and sets expiry_checked, so the partial index below only ever
-- holds copies still inside their window (plus a backlog after an outage).
ALTER TABLE message ADD COLUMN expiry_checked boolean NOT NULL DEFAULT false;
CREATE INDEX message_expiry_due ON message (created_at) WHERE NOT expiry_checked;

-- The broker's role (when the role migration created it) claims those rows
-- with SELECT ... FOR UPDATE (which needs an UPDATE privilege) and marks
-- them; it reads the sender's name for the receipt's "aud".
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_broker') THEN
        GRANT SELECT (mailbox_id, id, sender_id, request_id, created_at, read_at, jwe_tag,
                      expiry_checked) ON message TO postfach_broker;
        GRANT UPDATE (expiry_checked) ON message TO postfach_broker;
        GRANT SELECT (id, name) ON sender TO postfach_broker;
        GRANT SELECT, INSERT ON receipt TO postfach_broker;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_reader') THEN
        GRANT SELECT (expiry_checked) ON message TO postfach_reader;
    END IF;
END
$$;
