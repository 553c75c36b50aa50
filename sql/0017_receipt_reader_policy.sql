-- Postfach schema: the reader may insert "read" receipts only, for the
-- sender of the copy they report on.
-- Forward-only: never edit this file once landed.
--
-- Why: 0008 granted postfach_reader INSERT on receipt, all columns, so
-- that a first retrieval can write its "read" receipt in the statement
-- that sets read_at.  Nothing kept that login from inserting other rows:
-- a stolen reader login could put "delivered", "expired" or "rejected"
-- receipts into any procedure's outbox, or pre-empt the broker's genuine
-- "expired" receipt of an unread copy (UNIQUE (mailbox, message, event)
-- then turns the genuine one into ON CONFLICT DO NOTHING).  A grant cannot
-- say which values a row may have; row-level security can.
--
-- The policies:
-- - postfach_reader inserts only event 'read', and only with the sender_id
--   of the copy (mailbox_id, message_id) it names.  The check reads the
--   copy as of the statement's start, which is why it cannot also require
--   read_at: the reader's statement sets read_at in the same statement.
--   The reader's SELECT (the three columns ON CONFLICT needs) sees all rows.
-- - postfach_broker and postfach_admin keep what their grants allow (all
--   rows).  The table's owner (migrations, the superuser of the tests and
--   of `make run`) is not subject to row-level security.
-- Cost: one lookup of the copy by its primary key per first retrieval
-- with a read receipt; the broker's inserts are checked against a
-- constant true.
ALTER TABLE receipt ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_broker') THEN
        CREATE POLICY receipt_broker ON receipt TO postfach_broker USING (true) WITH CHECK (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_admin') THEN
        CREATE POLICY receipt_admin ON receipt TO postfach_admin USING (true) WITH CHECK (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_reader') THEN
        CREATE POLICY receipt_reader_select ON receipt FOR SELECT TO postfach_reader USING (true);
        CREATE POLICY receipt_reader_insert ON receipt FOR INSERT TO postfach_reader
            WITH CHECK (event = 'read' AND EXISTS (
                SELECT 1 FROM message m
                WHERE m.mailbox_id = receipt.mailbox_id AND m.id = receipt.message_id
                  AND m.sender_id = receipt.sender_id));
    END IF;
END
$$;
