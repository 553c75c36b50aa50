-- Postfach schema: one database role per program, with the least it needs.
-- Forward-only: never edit this file once landed.
--
-- Three group roles (NOLOGIN); an operator creates a login per daemon
-- instance in the matching group, e.g.
--     CREATE ROLE postfach_broker_1 LOGIN PASSWORD '...' IN ROLE postfach_broker;
-- and runs the migrations as the database owner (postfach-ctl migrate).
--
--   postfach_broker  the write path: reads senders, allowlists and public
--                    keys; inserts submissions, copies and receipts; runs
--                    the receipt relay and the expiry of copies.  It has no
--                    privilege at all on mailbox_secret: a broker host that
--                    is taken over cannot read a wrapped private key.
--   postfach_reader  the citizens' side: reads copies, keys and wrapped
--                    secrets; sets read_at; inserts read receipts.  It
--                    cannot insert or delete a copy, and cannot read the
--                    submissions (the senders' idempotency records).
--   postfach_admin   postfach-ctl: senders, allowlists, mailboxes, keys, KEK
--                    rewrapping; reads copies' and receipts' metadata for
--                    operators, never their content (jwe_* columns).
--
-- Roles are global to the cluster, so they are created only when missing;
-- the grants are per database.  The number 0008 comes after 0006 and 0007,
-- whose grants only fire when the roles already exist: on a database
-- migrated before this file, this file grants what they would have.
-- Foreign-key checks and triggers that only read run with the table
-- owner's rights and need no grant here; the receipt trigger's insert into
-- receipt_delivery (0009) runs as the inserting role and is granted there.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_broker') THEN
        CREATE ROLE postfach_broker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_reader') THEN
        CREATE ROLE postfach_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_admin') THEN
        CREATE ROLE postfach_admin NOLOGIN;
    END IF;
END
$$;

-- Nothing for anyone else; PostgreSQL 15 already keeps PUBLIC from
-- creating objects in the public schema.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO postfach_broker, postfach_reader, postfach_admin;

-- every program checks the schema version it runs against
GRANT SELECT ON schema_migration TO postfach_broker, postfach_reader, postfach_admin;

-- ---- broker ---------------------------------------------------------------
GRANT SELECT (id, name, curve_key, status) ON sender TO postfach_broker;
GRANT SELECT ON sender_recipient_allow TO postfach_broker;
GRANT SELECT (id, status) ON mailbox TO postfach_broker;
GRANT SELECT (mailbox_id, version, public_jwk) ON mailbox_key TO postfach_broker;
GRANT SELECT, INSERT ON submission TO postfach_broker;
GRANT INSERT (mailbox_id, id, sender_id, request_id, title, reference, required_level,
              read_receipt, size, attachment_count, created_at, key_version, jwe_protected,
              jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) ON message TO postfach_broker;
-- expiry: the copies whose retrieval window has passed, claimed FOR UPDATE
-- (which needs an UPDATE privilege) and marked; never their content
GRANT SELECT (mailbox_id, id, sender_id, request_id, created_at, read_at, jwe_tag,
              expiry_checked) ON message TO postfach_broker;
GRANT UPDATE (expiry_checked) ON message TO postfach_broker;
GRANT SELECT, INSERT ON receipt TO postfach_broker;

-- ---- reader ---------------------------------------------------------------
GRANT SELECT (id, name) ON sender TO postfach_reader;
GRANT SELECT (id, status) ON mailbox TO postfach_reader;
GRANT SELECT ON mailbox_key TO postfach_reader;
GRANT SELECT ON mailbox_secret TO postfach_reader;
GRANT SELECT ON message TO postfach_reader;
GRANT UPDATE (read_at) ON message TO postfach_reader;
-- ON CONFLICT (mailbox_id, message_id, event) reads its arbiter columns
GRANT SELECT (mailbox_id, message_id, event), INSERT ON receipt TO postfach_reader;

-- ---- administration (postfach-ctl) -----------------------------------------
GRANT SELECT, INSERT, UPDATE ON sender TO postfach_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO postfach_admin;
GRANT SELECT, INSERT, DELETE ON sender_recipient_allow TO postfach_admin;
GRANT SELECT, INSERT, UPDATE ON mailbox TO postfach_admin;
GRANT SELECT, INSERT ON mailbox_key TO postfach_admin;
GRANT SELECT, INSERT, UPDATE ON mailbox_secret TO postfach_admin;
GRANT SELECT (mailbox_id, id, sender_id, request_id, title, reference, required_level,
              read_receipt, size, attachment_count, created_at, read_at, key_version,
              expiry_checked) ON message TO postfach_admin;
GRANT SELECT (sender_id, request_id, created_at) ON submission TO postfach_admin;
GRANT SELECT ON receipt TO postfach_admin;
