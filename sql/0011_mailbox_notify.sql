-- Postfach schema: the broker hears when a mailbox or its keys change.
-- Forward-only: never edit this file once landed.
--
-- Why: the broker caches which key version is a mailbox's current one, so
-- that a batch of known recipients needs no query.  It trusted an entry
-- for sender_cache_ms (1 s) and then asked again: at (b)'s rate with 1,000
-- mailboxes that was one blocking query in most batches (0.64 ms of the
-- main thread per batch, measured).  Now every change of a mailbox's
-- status or keys NOTIFYs its id on postfach_mailbox, the broker forgets
-- the entry when it reads that (within milliseconds of the COMMIT, so a
-- rotated key or a closed mailbox applies faster than before), and keeps
-- an entry at most a minute as a safety net.  A broker that lost its
-- connection forgets every entry when it is back, since NOTIFYs sent
-- meanwhile are lost to it.
--
-- One NOTIFY per row: pg_notify folds identical payloads of one
-- transaction, and bulk loads (bench set-up, imports) run before brokers
-- cache anything they would change.
CREATE FUNCTION mailbox_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'mailbox' THEN
        PERFORM pg_notify('postfach_mailbox', COALESCE(NEW.id, OLD.id));
    ELSE
        PERFORM pg_notify('postfach_mailbox', COALESCE(NEW.mailbox_id, OLD.mailbox_id));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER mailbox_notify AFTER UPDATE OR DELETE ON mailbox
    FOR EACH ROW EXECUTE FUNCTION mailbox_notify_row();
CREATE TRIGGER mailbox_key_notify AFTER INSERT OR UPDATE OR DELETE ON mailbox_key
    FOR EACH ROW EXECUTE FUNCTION mailbox_notify_row();
