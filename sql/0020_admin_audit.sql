-- Postfach schema: every administrative change is written down, and a
-- revoked sender stays revoked for the administration's logins.
-- Forward-only: never edit this file once landed.
--
-- Why: since 0019 the operators' day-to-day login is a member of
-- postfach_admin.  That login can give an existing procedure a CURVE key of
-- its own and so become that procedure to the broker (its notices, its
-- receipts), set a revoked sender active again, or overwrite wrapped private
-- keys (docs/security.md).  Nothing recorded who did such a thing, or when.
--
-- admin_audit: one row per change of sender, sender_recipient_allow,
-- mailbox, mailbox_key and mailbox_secret, made by triggers that run as the
-- owner (SECURITY DEFINER), with the session's login and program.  No role
-- but the owner has any privilege on it: an administration login can
-- neither read nor change nor delete what it did.  The table is append-only
-- for everyone else too: a trigger refuses UPDATE and DELETE (the owner
-- would have to drop the trigger, which is itself a schema change).
--
-- sender_revoked_stays: an administration login cannot set a revoked
-- sender's status back to active (postfach-ctl has no command for it; a
-- revocation is what an operator does when a procedure's key leaked).  The
-- owner can, for a revocation made by mistake; that is audited as well.
-- (The role that counts is the one in effect: SET ROLE postfach_admin in
-- an owner's session is refused too.)
--
-- postfach.audit = 'off' in a session of the owner (or a superuser) leaves
-- its changes unrecorded: postfach-bench's bulk load of a million
-- mailboxes.  Anyone else's setting is ignored, since the owner could drop
-- the triggers anyway.
CREATE TABLE admin_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    login       text NOT NULL,
    program     text NOT NULL,
    action      text NOT NULL,
    subject     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX admin_audit_subject ON admin_audit (subject, at);
REVOKE ALL ON admin_audit FROM PUBLIC;

-- Whether role who may act as the owner of table t (the owner itself, a
-- member of it, or a superuser).
CREATE FUNCTION postfach_is_owner(t regclass, who name) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT pg_has_role(who, (SELECT relowner FROM pg_class WHERE oid = t), 'USAGE')
$$;

CREATE FUNCTION admin_audit_write(action text, subject text, detail jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF coalesce(current_setting('postfach.audit', true), '') = 'off'
       AND postfach_is_owner('admin_audit', session_user) THEN
        RETURN;
    END IF;
    INSERT INTO admin_audit (login, program, action, subject, detail)
    VALUES (session_user, coalesce(current_setting('application_name', true), ''),
            action, subject, coalesce(detail, '{}'));
END
$$;
REVOKE ALL ON FUNCTION admin_audit_write(text, text, jsonb) FROM PUBLIC;

CREATE FUNCTION admin_audit_sender() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM admin_audit_write('sender.add', NEW.name,
                                  jsonb_build_object('curve_key', NEW.curve_key));
    ELSE
        IF NEW.curve_key IS DISTINCT FROM OLD.curve_key THEN
            PERFORM admin_audit_write('sender.key', NEW.name,
                                      jsonb_build_object('old', OLD.curve_key,
                                                         'new', NEW.curve_key));
        END IF;
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            PERFORM admin_audit_write('sender.status', NEW.name,
                                      jsonb_build_object('old', OLD.status, 'new', NEW.status));
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sender_audit AFTER INSERT OR UPDATE ON sender
    FOR EACH ROW EXECUTE FUNCTION admin_audit_sender();

CREATE FUNCTION admin_audit_allow() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    PERFORM admin_audit_write(CASE TG_OP WHEN 'DELETE' THEN 'sender.disallow'
                                         ELSE 'sender.allow' END,
                              coalesce((SELECT name FROM sender WHERE id = r.sender_id),
                                       r.sender_id::text),
                              jsonb_build_object('pattern', r.pattern));
    RETURN NULL;
END
$$;
CREATE TRIGGER sender_recipient_allow_audit AFTER INSERT OR DELETE ON sender_recipient_allow
    FOR EACH ROW EXECUTE FUNCTION admin_audit_allow();

CREATE FUNCTION admin_audit_mailbox() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_TABLE_NAME = 'mailbox' THEN
        IF TG_OP = 'INSERT' THEN
            PERFORM admin_audit_write('mailbox.add', NEW.id, '{}');
        ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
            PERFORM admin_audit_write('mailbox.status', NEW.id,
                                      jsonb_build_object('old', OLD.status, 'new', NEW.status));
        END IF;
    ELSIF TG_TABLE_NAME = 'mailbox_key' THEN
        PERFORM admin_audit_write('mailbox.key', NEW.mailbox_id,
                                  jsonb_build_object('version', NEW.version, 'kid', NEW.kid,
                                                     'alg', NEW.alg));
    ELSIF TG_OP = 'INSERT' THEN -- mailbox_secret
        PERFORM admin_audit_write('mailbox.wrapped_key', NEW.mailbox_id,
                                  jsonb_build_object('version', NEW.version,
                                                     'kek_id', NEW.kek_id));
    ELSIF NEW.wrapped_key IS DISTINCT FROM OLD.wrapped_key
          OR NEW.kek_id IS DISTINCT FROM OLD.kek_id THEN
        PERFORM admin_audit_write('mailbox.rewrap', NEW.mailbox_id,
                                  jsonb_build_object('version', NEW.version,
                                                     'old_kek_id', OLD.kek_id,
                                                     'kek_id', NEW.kek_id));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER mailbox_audit AFTER INSERT OR UPDATE ON mailbox
    FOR EACH ROW EXECUTE FUNCTION admin_audit_mailbox();
CREATE TRIGGER mailbox_key_audit AFTER INSERT ON mailbox_key
    FOR EACH ROW EXECUTE FUNCTION admin_audit_mailbox();
CREATE TRIGGER mailbox_secret_audit AFTER INSERT OR UPDATE ON mailbox_secret
    FOR EACH ROW EXECUTE FUNCTION admin_audit_mailbox();

CREATE FUNCTION admin_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER admin_audit_append_only BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();

CREATE FUNCTION sender_revoked_stays() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'revoked' AND NEW.status <> 'revoked' AND NOT postfach_is_owner('sender', current_user) THEN
        RAISE EXCEPTION 'sender "%" is revoked; only the database owner can undo that', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sender_revoked_stays BEFORE UPDATE OF status ON sender
    FOR EACH ROW EXECUTE FUNCTION sender_revoked_stays();
