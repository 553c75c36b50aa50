-- Postfach schema: a copy's mailbox is checked once per statement and
-- without a row lock; mailboxes are never deleted or renamed.
-- Forward-only: never edit this file once landed.
--
-- Why: the foreign key message.mailbox_id -> mailbox(id) checked every
-- stored copy with `SELECT 1 FROM mailbox WHERE id = $1 FOR KEY SHARE`.
-- The lock writes the locking transaction into the mailbox row, so every
-- copy dirtied its mailbox's page and wrote a WAL record, and with a
-- million mailboxes each copy dirtied a page of its own (a full-page image
-- after every checkpoint, and a page write later).  Measured on the bench
-- database with 1,000,000 mailboxes, alternating 15 s runs
-- (docs/architecture.md, "The mailbox check without a lock"): WAL per
-- notice 7.0-7.2 KiB with the foreign key, 5.6-5.8 KiB with this check;
-- full-page images per notice 0.30-0.34 against 0.12-0.16; 3,068-3,354
-- against 3,201-3,658 notices/s in two pairs (+4% and +9%); with 1,000
-- mailboxes no difference above the noise.
--
-- The lock only guards against the mailbox row going away before the
-- copy's transaction commits.  Mailboxes are closed (status), never
-- deleted: the triggers below make that a rule of the schema, so the
-- guarantee stays what the foreign key gave (no copy without its mailbox)
-- and a plain existence check suffices.  It runs once per statement over
-- all the copies the statement inserted (the broker inserts a whole batch
-- in one statement), as an anti-join on the mailbox primary key.
--
-- Deleting a mailbox (a citizen's account removed) will need its copies
-- deleted first and these triggers to allow it; that is a migration of
-- its own when the service offers it.
ALTER TABLE message DROP CONSTRAINT message_mailbox_id_fkey;

CREATE FUNCTION message_mailbox_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT n.mailbox_id INTO missing FROM new_messages n
        WHERE NOT EXISTS (SELECT 1 FROM mailbox m WHERE m.id = n.mailbox_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert on table "message" violates the mailbox check'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (mailbox_id)=(%s) is not present in table "mailbox".', missing);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER message_mailbox_exists AFTER INSERT ON message
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION message_mailbox_exists();

-- A copy keeps its mailbox; a mailbox keeps its id and is never deleted.
-- (Row triggers with a column list fire only when the statement sets that
-- column: the reader's update of read_at never runs them.)
CREATE FUNCTION message_stays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mailbox_id IS NOT DISTINCT FROM OLD.mailbox_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a copy stays in its mailbox (sql/0015)' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER message_stays BEFORE UPDATE OF mailbox_id ON message
    FOR EACH ROW EXECUTE FUNCTION message_stays();

CREATE FUNCTION mailbox_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id IS NOT DISTINCT FROM OLD.id THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'mailboxes are closed, never deleted or renamed (sql/0015)'
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER mailbox_kept BEFORE UPDATE OF id OR DELETE ON mailbox
    FOR EACH ROW EXECUTE FUNCTION mailbox_kept();
CREATE TRIGGER mailbox_not_truncated BEFORE TRUNCATE ON mailbox
    FOR EACH STATEMENT EXECUTE FUNCTION mailbox_kept();
