-- Postfach schema: the administration's role gets exactly what postfach-ctl's
-- day-to-day commands use, so that an operator's login can be a member of
-- postfach_admin instead of the database owner.
-- Forward-only: never edit this file once landed.
--
-- Why: docker-compose.yml's `ctl` ran as the owner (the postgres image's
-- POSTGRES_USER, a superuser): any command, or anyone holding that
-- password, could drop tables and bypassed row-level security.  0008
-- created postfach_admin, but no deployment used it, and its grants were
-- wider than any command needs: INSERT and UPDATE of every column of
-- sender, mailbox and mailbox_secret (rename a sender, set created_at, close
-- a mailbox), USAGE on every sequence, and reads of copies' metadata,
-- submissions, receipts and their delivery state, which no command reads.
--
-- What postfach-ctl does under postfach_admin (lib/store/admin.c):
--   sender add, list, revoke, rotate-key: reads sender; inserts name and
--     curve_key (id is an identity column: no sequence privilege needed;
--     status and created_at take their defaults); revoke sets status and
--     revoked_at (reading revoked_at, to keep the first); rotate-key sets
--     curve_key.
--   sender allow, disallow, allowed: reads, inserts and deletes allowlist
--     rows; disallow locks the sender's row (FOR UPDATE: an UPDATE
--     privilege on some column, which the above gives).
--   citizen add, rotate-key, public-key, export-key: inserts a mailbox (its
--     id), its public keys and wrapped private keys, reads them back.
--     rotate-key locks the mailbox row FOR UPDATE, which needs an UPDATE
--     privilege on one of its columns: UPDATE (id), because the trigger
--     mailbox_kept (0015) refuses every change of a mailbox's id, so the
--     grant allows the lock and changes nothing (status, which would close
--     a mailbox, stays the owner's).
--   kek rotate, rewrap, retire, status: read the wrapped keys and replace
--     kek_id and wrapped_key of a row (never its mailbox or version).
-- Nothing on message, submission, receipt, receipt_delivery or
-- schema_migration: no command reads them (migrate and role login run as
-- the owner).  No DELETE but on the allowlist, no TRUNCATE, REFERENCES or
-- TRIGGER, and no CREATE anywhere (PostgreSQL 15 and 0008 keep PUBLIC
-- from creating in the public schema).  Row-level security (only receipt
-- has it) does not concern the role, so it needs no BYPASSRLS and keeps no
-- policy.
--
-- REVOKE on a table also takes away its column privileges, so this file
-- leaves the same privileges whatever an earlier version granted.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM postfach_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM postfach_admin;
DROP POLICY IF EXISTS receipt_admin ON receipt;

GRANT SELECT ON sender TO postfach_admin;
GRANT INSERT (name, curve_key) ON sender TO postfach_admin;
GRANT UPDATE (curve_key, status, revoked_at) ON sender TO postfach_admin;
GRANT SELECT, INSERT (sender_id, pattern), DELETE ON sender_recipient_allow TO postfach_admin;
GRANT SELECT ON mailbox TO postfach_admin;
GRANT INSERT (id), UPDATE (id) ON mailbox TO postfach_admin;
GRANT SELECT ON mailbox_key TO postfach_admin;
GRANT INSERT (mailbox_id, version, kid, alg, public_jwk) ON mailbox_key TO postfach_admin;
GRANT SELECT ON mailbox_secret TO postfach_admin;
GRANT INSERT (mailbox_id, version, kek_id, wrapped_key) ON mailbox_secret TO postfach_admin;
GRANT UPDATE (kek_id, wrapped_key) ON mailbox_secret TO postfach_admin;
