-- Postfach schema: the administration's audit is a hash chain, and a group
-- of its own may read it, to ship it out of the database.
-- Forward-only: never edit this file once landed.
--
-- Why: admin_audit (0020) lives only inside the database it audits.  The
-- owner (or a superuser) can drop its triggers and rewrite or delete rows,
-- and nothing would show it.  Now every row carries
--     hash = sha256(prev_hash || encoding of the row)
-- where prev_hash is the hash of the row before it in id order, and the
-- first row's prev_hash is 32 zero bytes.  A changed row no longer matches
-- its hash; a removed row breaks the link of the row after it.  An owner
-- can still recompute the whole chain from the first changed row on, so
-- the chain is evidence only against a copy kept elsewhere: operators ship
-- the rows with their hashes (postfach-ctl audit export) to their own log
-- system, and `postfach-ctl audit verify` prints the last hash to compare.
--
-- The encoding (docs/security.md; lib/admin/audit.c computes the same
-- independently to verify) is a run of netstrings, each "<byte length of
-- the UTF-8 text in decimal>:<text>,", of:
--     "pf-audit-1", id, at, login, program, action, subject, detail
-- with id in decimal, at as RFC 3339 UTC with microseconds
-- (2024-05-01T12:00:00.000000Z) and detail in jsonb's text form.  Length
-- prefixes make it unambiguous: no two different rows encode alike.
--
-- Serialisation: the chain's last link lives in one row of
-- admin_audit_head, and every insert takes that row's lock (FOR UPDATE)
-- before it reads the link, so two sessions never chain from the same row.
-- admin_audit_write takes the lock before its INSERT, so ids are drawn
-- under the lock and the chain's order is the id order.  The lock is held
-- to the end of the transaction: administrative changes are rare and
-- short.  In REPEATABLE READ a concurrent insert fails the second one with
-- a serialisation error (40001) rather than forking the chain.
--
-- Reading: postfach_auditor, a new group (postfach-ctl role login NAME
-- auditor), may call admin_audit_rows and admin_audit_last, which run as
-- the owner; nothing else.  The administration's logins still read
-- nothing of the audit, and the unattended job that ships the audit holds
-- a login that can change nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_auditor') THEN
        CREATE ROLE postfach_auditor NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO postfach_auditor;

-- ACCESS EXCLUSIVE until commit: no administrative change slips in
-- unchained while the existing rows are chained below.
ALTER TABLE admin_audit ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

CREATE TABLE admin_audit_head (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id     bigint NOT NULL,
    last_hash   bytea NOT NULL CHECK (octet_length(last_hash) = 32)
);
REVOKE ALL ON admin_audit_head FROM PUBLIC;

-- The time as the chain and the export write it.
CREATE FUNCTION admin_audit_time(at timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION admin_audit_netstring(s text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
    SELECT convert_to(octet_length(convert_to(s, 'UTF8'))::text || ':', 'UTF8')
           || convert_to(s, 'UTF8') || '\x2c'::bytea
$$;

CREATE FUNCTION admin_audit_hash(prev bytea, r admin_audit) RETURNS bytea
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, public AS $$
    SELECT sha256(prev || admin_audit_netstring('pf-audit-1')
                  || admin_audit_netstring(r.id::text)
                  || admin_audit_netstring(admin_audit_time(r.at))
                  || admin_audit_netstring(r.login)
                  || admin_audit_netstring(r.program)
                  || admin_audit_netstring(r.action)
                  || admin_audit_netstring(r.subject)
                  || admin_audit_netstring(r.detail::text))
$$;
REVOKE ALL ON FUNCTION admin_audit_time(timestamptz), admin_audit_netstring(text),
    admin_audit_hash(bytea, admin_audit) FROM PUBLIC;

-- The existing rows, chained in id order (the append-only trigger is off
-- for this transaction only: the migration is the owner's schema change).
ALTER TABLE admin_audit DISABLE TRIGGER admin_audit_append_only;
DO $$
DECLARE
    r admin_audit;
    h bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
    last_row bigint := 0;
BEGIN
    FOR r IN SELECT * FROM admin_audit ORDER BY id LOOP
        UPDATE admin_audit SET prev_hash = h, hash = admin_audit_hash(h, r) WHERE id = r.id
            RETURNING hash INTO h;
        last_row := r.id;
    END LOOP;
    INSERT INTO admin_audit_head (last_id, last_hash) VALUES (last_row, h);
END
$$;
ALTER TABLE admin_audit ENABLE TRIGGER admin_audit_append_only;
ALTER TABLE admin_audit
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32);

-- Every insert is chained here, the owner's own included.
CREATE FUNCTION admin_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head admin_audit_head;
BEGIN
    -- a statement of its own: in READ COMMITTED it returns the head as the
    -- last holder of the lock committed it
    SELECT * INTO head FROM admin_audit_head FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'admin_audit_head has no row: the audit chain has lost its end';
    END IF;
    -- an id drawn before the lock (a direct INSERT racing another) would
    -- put the chain out of id order
    IF NEW.id <= head.last_id THEN
        RAISE EXCEPTION 'admin_audit row % would chain after row %', NEW.id, head.last_id
            USING ERRCODE = 'serialization_failure',
                  HINT = 'Insert through admin_audit_write, or retry.';
    END IF;
    NEW.prev_hash := head.last_hash;
    NEW.hash := admin_audit_hash(head.last_hash, NEW);
    UPDATE admin_audit_head SET last_id = NEW.id, last_hash = NEW.hash;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION admin_audit_chain() FROM PUBLIC;
CREATE TRIGGER admin_audit_chain BEFORE INSERT ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_chain();

-- As 0020's, but the chain's lock is taken before the row's id is drawn.
CREATE OR REPLACE FUNCTION admin_audit_write(action text, subject text, detail jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF coalesce(current_setting('postfach.audit', true), '') = 'off'
       AND postfach_is_owner('admin_audit', session_user) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM admin_audit_head FOR UPDATE;
    INSERT INTO admin_audit (login, program, action, subject, detail)
    VALUES (session_user, coalesce(current_setting('application_name', true), ''),
            action, subject, coalesce(detail, '{}'));
END
$$;

-- TRUNCATE fires no row trigger: 0020's append-only rule did not hold
-- for it.
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_append_only();

-- The rows after id after_id, oldest first, at most max_rows (up to 10,000)
-- of them, for postfach-ctl audit export and verify.  Hashes in hex.
CREATE FUNCTION admin_audit_rows(after_id bigint, max_rows integer)
RETURNS TABLE (id bigint, at text, login text, program text, action text, subject text,
               detail text, prev_hash text, hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT a.id, admin_audit_time(a.at), a.login, a.program, a.action, a.subject,
           a.detail::text, encode(a.prev_hash, 'hex'), encode(a.hash, 'hex')
    FROM admin_audit a WHERE a.id > after_id
    ORDER BY a.id LIMIT least(greatest(max_rows, 0), 10000)
$$;

-- Where the chain ends, as the inserts left it: rows removed from the end
-- of the table show against it.
CREATE FUNCTION admin_audit_last(OUT last_id bigint, OUT last_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT h.last_id, encode(h.last_hash, 'hex') FROM admin_audit_head h
$$;
REVOKE ALL ON FUNCTION admin_audit_rows(bigint, integer), admin_audit_last() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin_audit_rows(bigint, integer), admin_audit_last()
    TO postfach_auditor;
