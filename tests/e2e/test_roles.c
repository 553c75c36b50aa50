/* End-to-end: the database roles of sql/0008_roles.sql.
 * The broker, the reader and postfach-ctl run under logins that are
 * members of postfach_broker, postfach_reader and postfach_admin only (not
 * the superuser the other tests use), and the whole path still works:
 * send -> ACK -> list -> open -> delivered and read receipts; a citizen
 * and a sender created by ctl.  Then, on a connection of our own with SET
 * ROLE, what each role must not do is refused with insufficient_privilege
 * (42501): the broker reads no wrapped private key, the reader inserts no
 * copy and no receipt but a "read" one of the copy's own sender.  The
 * administration's login (sql/0019, what docker-compose.yml's `ctl` runs
 * under) runs every command an operator uses, holds exactly the privileges
 * those need, does no DDL and reads nothing of the copies, submissions and
 * receipts; a database migrated before 0019 ends with the same privileges.
 * The logins are made by `postfach-ctl role login`, as scripts/docker-init.sh
 * makes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "postfach/postfach.h"
#include "store/store.h"

static const char *const s_citizens[] = {"citizen-a", NULL};

typedef struct {
    pf_env_t *env;
    char login[3][48]; /* broker, reader, admin */
    char conn[3][512];
} fixture_t;

static void s_exec(fixture_t *f, const char *sql)
{
    char state[6];
    if (pf_env_sql_state(f->env, sql, state) != 0)
        fail_msg("%s: SQLSTATE %s", sql, state);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    *state = f;
    f->env = pf_env_new("roles", s_citizens);
    if (f->env == NULL)
        return -1;
    static const char *const kinds[3] = {"broker", "reader", "admin"};
    for (int i = 0; i < 3; i++)
        if (pf_env_make_login(f->env, "pf_t", kinds[i], f->login[i], f->conn[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pf_env_stop_broker(f->env, 15);
    pf_env_stop_reader(f->env, 15);
    /* the logins own nothing; drop them once their sessions are gone */
    for (int i = 0; i < 3; i++)
        pf_env_drop_login(f->env, f->login[i]);
    return pf_fixture_end(f->env, NULL, f);
}

/* Runs sql as role; returns its SQLSTATE ("00000" when it succeeded). */
static void s_as(fixture_t *f, const char *role, const char *sql, char state[6])
{
    /* the probe's transaction is rolled back whether it failed or not */
    char *sql2 = NULL;
    if (asprintf(&sql2, "BEGIN; SET ROLE %s; %s; ROLLBACK", role, sql) < 0)
        fail_msg("out of memory");
    (void)pf_env_sql_state(f->env, sql2, state);
    free(sql2);
}

static void s_refused(fixture_t *f, const char *role, const char *sql)
{
    char state[6];
    s_as(f, role, sql, state);
    if (strcmp(state, "42501") != 0)
        fail_msg("%s may: %s (SQLSTATE %s, want 42501)", role, sql, state);
}

static void s_allowed(fixture_t *f, const char *role, const char *sql)
{
    char state[6];
    s_as(f, role, sql, state);
    if (strcmp(state, "00000") != 0)
        fail_msg("%s may not: %s (SQLSTATE %s)", role, sql, state);
}

static json_t *s_get_json(fixture_t *f, const char *path, const char *token)
{
    pf_http_response_t r;
    assert_int_equal(pf_http_get(pf_env_reader_port(f->env), path, token, &r), 0);
    if (r.status != 200)
        fail_msg("GET %s: status %d: %s", path, r.status, r.body);
    json_error_t e;
    json_t *j = json_loadb(r.body, r.body_len, 0, &e);
    pf_http_response_clear(&r);
    assert_non_null(j);
    return j;
}

/* ctl as the admin login on the database conn (NULL: the env's); up to
 * five arguments, the first NULL ends them */
static int s_ctl_on(fixture_t *f, const char *conn, char **out, char **err, const char *a,
                    const char *b, const char *c, const char *d, const char *e)
{
    return pf_env_run(f->env, out, err, "postfach-ctl", "--db", conn ? conn : f->conn[2], "--keys",
                      pf_env_keys(f->env), a, b, c, d, e, NULL);
}

static int s_ctl(fixture_t *f, char **out, const char *a, const char *b, const char *c,
                 const char *d)
{
    return s_ctl_on(f, NULL, out, NULL, a, b, c, d, NULL);
}

/* ctl as the admin login must succeed; returns its stdout (caller frees) */
static char *s_ctl_ok(fixture_t *f, const char *conn, const char *a, const char *b, const char *c,
                      const char *d, const char *e)
{
    char *out = NULL, *err = NULL;
    int rc = s_ctl_on(f, conn, &out, &err, a, b, c, d, e);
    if (rc != 0)
        fail_msg("postfach-ctl %s %s %s under the admin login: exit %d: %s", a, b ? b : "",
                 c ? c : "", rc, err ? err : "");
    free(err);
    return out;
}

static void test_daemons_and_ctl_work_under_their_roles(void **state)
{
    fixture_t *f = *state;
    char *out = NULL;
    /* administration: a citizen and a sender allowlist under postfach_admin */
    assert_int_equal(s_ctl(f, &out, "citizen", "add", "citizen-r", NULL), 0);
    free(out);
    assert_int_equal(s_ctl(f, &out, "sender", "list", NULL, NULL), 0);
    assert_non_null(strstr(out, "tax-office"));
    free(out);
    assert_int_equal(s_ctl(f, &out, "kek", "status", NULL, NULL), 0);
    free(out);

    char db_b[600], db_r[600];
    snprintf(db_b, sizeof(db_b), "db=%s", f->conn[0]);
    snprintf(db_r, sizeof(db_r), "db=%s", f->conn[1]);
    const char *sb[] = {db_b, NULL}, *sr[] = {db_r, NULL};
    assert_int_equal(pf_env_start_broker(f->env, sb), 0);
    assert_int_equal(pf_env_start_reader(f->env, sr), 0);

    pf_client_t *c = pf_env_client(f->env, "tax-office", NULL, 5000, 3);
    assert_non_null(c);
    const char *err = NULL;

    const char *to[] = {"citizen-r"};
    pf_client_notice_t n = {.request_id = "req-roles-1",
                            .recipients = to,
                            .recipient_count = 1,
                            .title = "Bescheid",
                            .subject = "Rollen",
                            .body = "Der Broker darf schreiben, der Leser lesen.",
                            .read_receipt = true};
    pf_client_result_t res;
    int rc = pf_client_send(c, &n, &res, &err);
    if (rc != 0 || !res.ok)
        fail_msg("send: rc %d %s %s", rc, err ? err : "", res.reason ? res.reason : "");
    char id[40];
    snprintf(id, sizeof(id), "%s", res.copies[0].message_id);
    pf_client_result_clear(&res);

    char *token = pf_env_token(f->env, "citizen-r");
    assert_non_null(token);
    json_t *list = s_get_json(f, "/v1/messages", token);
    assert_int_equal(json_array_size(json_object_get(list, "messages")), 1);
    json_decref(list);
    char path[128];
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    json_t *msg = s_get_json(f, path, token);
    assert_string_equal(json_string_value(json_object_get(msg, "body")),
                        "Der Broker darf schreiben, der Leser lesen.");
    json_decref(msg);
    free(token);

    /* both receipts come back through the broker's relay */
    int delivered = 0, read = 0;
    int64_t end = pf_test_now_ms() + 15000;
    while ((delivered < 1 || read < 1) && pf_test_now_ms() < end) {
        pf_client_receipt_t r;
        rc = pf_client_next_receipt(c, 200, &r, &err);
        assert_true(rc >= 0);
        if (rc == 0)
            continue;
        assert_true(r.verified);
        assert_string_equal(r.message_id, id);
        delivered += strcmp(r.event, "delivered") == 0;
        read += strcmp(r.event, "read") == 0;
        pf_client_receipt_clear(&r);
    }
    assert_int_equal(delivered, 1);
    assert_int_equal(read, 1);
    pf_client_destroy(&c);
    assert_true(pf_env_broker_alive(f->env));
    assert_true(pf_env_reader_alive(f->env));
    /* the daemons really ran under the logins */
    char q[256];
    snprintf(q, sizeof(q), "SELECT count(*) FROM pg_stat_activity WHERE usename IN ('%s', '%s')",
             f->login[0], f->login[1]);
    assert_true(pf_env_sql_int(f->env, q) >= 2);
}

static void test_what_each_role_must_not_do(void **state)
{
    fixture_t *f = *state;
    /* the INSERT ... SELECT FROM message probes below mean something only
     * with a copy to select (the first test stored one) */
    assert_true(pf_env_sql_int(f->env, "SELECT count(*) FROM message") > 0);
    /* the broker: no wrapped private key, no content of stored copies, no
     * change of what the administration owns */
    s_refused(f, "postfach_broker", "SELECT wrapped_key FROM mailbox_secret");
    s_refused(f, "postfach_broker", "SELECT count(*) FROM mailbox_secret");
    s_refused(f, "postfach_broker", "SELECT jwe_ciphertext FROM message");
    s_refused(f, "postfach_broker", "DELETE FROM message");
    s_refused(f, "postfach_broker", "UPDATE message SET read_at = now()");
    s_refused(f, "postfach_broker", "UPDATE sender SET status = 'active'");
    s_refused(f, "postfach_broker", "INSERT INTO mailbox (id) VALUES ('x')");
    s_allowed(f, "postfach_broker", "SELECT public_jwk FROM mailbox_key");
    s_allowed(f, "postfach_broker", "SELECT count(*) FROM submission");
    /* the reader: no new copies, no submissions, no deletion */
    s_refused(f, "postfach_reader",
              "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, read_receipt, "
              "size, key_version, jwe_protected, jwe_encrypted_key, jwe_iv, jwe_ciphertext, "
              "jwe_tag) VALUES ('citizen-a', gen_random_uuid(), 1, 'r', 't', false, 1, 1, 'p', "
              "'', '', '', '')");
    s_refused(f, "postfach_reader", "SELECT * FROM submission");
    s_refused(f, "postfach_reader",
              "INSERT INTO submission (sender_id, request_id, payload_hash, "
              "ack) VALUES (1, 'r', '\\x00', '')");
    s_refused(f, "postfach_reader", "DELETE FROM message");
    s_refused(f, "postfach_reader", "UPDATE message SET title = 'forged'");
    s_refused(f, "postfach_reader", "UPDATE mailbox_secret SET kek_id = 'x'");
    s_refused(f, "postfach_reader", "UPDATE receipt SET token = 'x'");
    /* receipts: "read" ones only, for the copy's own sender (sql/0017) */
    static const char ins[] = "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, "
                              "token) SELECT gen_random_uuid(), ";
    char sql_r[512];
    snprintf(sql_r, sizeof(sql_r), "%ssender_id, mailbox_id, id, 'expired', 't' FROM message", ins);
    s_refused(f, "postfach_reader", sql_r);
    snprintf(sql_r, sizeof(sql_r), "%ssender_id, mailbox_id, id, 'delivered', 't' FROM message",
             ins);
    s_refused(f, "postfach_reader", sql_r);
    snprintf(sql_r, sizeof(sql_r), "%ssender_id + 1000, mailbox_id, id, 'read', 't' FROM message",
             ins);
    s_refused(f, "postfach_reader", sql_r);
    snprintf(sql_r, sizeof(sql_r),
             "%ssender_id, mailbox_id, id, 'read', 't' FROM message "
             "ON CONFLICT (mailbox_id, message_id, event) DO NOTHING",
             ins);
    s_allowed(f, "postfach_reader", sql_r);
    snprintf(sql_r, sizeof(sql_r), "%ssender_id, mailbox_id, id, 'expired', 't' FROM message", ins);
    s_allowed(f, "postfach_broker", sql_r);
    s_allowed(f, "postfach_reader", "SELECT wrapped_key FROM mailbox_secret");
    s_allowed(f, "postfach_reader", "UPDATE message SET read_at = read_at WHERE false");
    /* the administration: test_admin_login_rights */
    /* nobody else: a login without a group sees nothing */
    char nobody[48], sql[96];
    snprintf(nobody, sizeof(nobody), "pf_t_nobody_%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE ROLE %s NOLOGIN", nobody);
    s_exec(f, sql);
    s_refused(f, nobody, "SELECT title FROM message");
    s_refused(f, nobody, "SELECT name FROM sender");
    snprintf(sql, sizeof(sql), "DROP ROLE %s", nobody);
    s_exec(f, sql);
}

/* Every privilege postfach_admin holds in the public schema, table-wide
 * ("table:PRIV") and per column ("table.column:PRIV"), as sql/0019 grants
 * them; the reasons are there.  Pinned here so that a grant made wider or
 * narrower (on a new or an upgraded database) fails the test. */
static const char s_admin_privileges[] =
    "mailbox.id:INSERT mailbox.id:UPDATE mailbox:SELECT "
    "mailbox_key.alg:INSERT mailbox_key.kid:INSERT mailbox_key.mailbox_id:INSERT "
    "mailbox_key.public_jwk:INSERT mailbox_key.version:INSERT mailbox_key:SELECT "
    "mailbox_secret.kek_id:INSERT mailbox_secret.kek_id:UPDATE mailbox_secret.mailbox_id:INSERT "
    "mailbox_secret.version:INSERT mailbox_secret.wrapped_key:INSERT "
    "mailbox_secret.wrapped_key:UPDATE mailbox_secret:SELECT "
    "sender.curve_key:INSERT sender.curve_key:UPDATE sender.name:INSERT "
    "sender.revoked_at:UPDATE sender.status:UPDATE sender:SELECT "
    "sender_recipient_allow.pattern:INSERT sender_recipient_allow.sender_id:INSERT "
    "sender_recipient_allow:DELETE sender_recipient_allow:SELECT";

#define S_ADMIN_PRIVILEGES_SQL                                                                     \
    "(SELECT string_agg(p, ' ' ORDER BY p COLLATE \"C\") FROM ("                                   \
    " SELECT c.relname || ':' || a.privilege_type AS p FROM pg_class c"                            \
    " CROSS JOIN LATERAL aclexplode(c.relacl) a"                                                   \
    " WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 'postfach_admin'::regrole"     \
    " UNION ALL"                                                                                   \
    " SELECT c.relname || '.' || t.attname || ':' || a.privilege_type FROM pg_class c"             \
    " JOIN pg_attribute t ON t.attrelid = c.oid CROSS JOIN LATERAL aclexplode(t.attacl) a"         \
    " WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 'postfach_admin'::regrole"     \
    ") s)"

/* On the database conn: postfach_admin holds exactly s_admin_privileges
 * and is named in no row-level security policy. */
static void s_check_admin_privileges(const char *conn)
{
    pf_store_t *st = NULL;
    const char *e = NULL;
    if (pf_store_open(conn, &st, &e) != 0)
        fail_msg("%s", e);
    char *sql = NULL;
    if (asprintf(&sql,
                 "DO $$ BEGIN"
                 " IF " S_ADMIN_PRIVILEGES_SQL " IS DISTINCT FROM '%s' THEN"
                 "  RAISE EXCEPTION 'postfach_admin holds: %%', " S_ADMIN_PRIVILEGES_SQL ";"
                 " END IF;"
                 " IF EXISTS (SELECT 1 FROM pg_policy"
                 "  WHERE 'postfach_admin'::regrole = ANY (polroles)) THEN"
                 "  RAISE EXCEPTION 'a policy names postfach_admin';"
                 " END IF; END $$",
                 s_admin_privileges) < 0)
        fail_msg("out of memory");
    int rc = pf_store_exec(st, sql, &e);
    free(sql);
    if (rc != 0)
        fail_msg("%s", e);
    pf_store_destroy(&st);
}

static void s_state_is(fixture_t *f, const char *role, const char *sql, const char *want)
{
    char state[6];
    s_as(f, role, sql, state);
    if (strcmp(state, want) != 0)
        fail_msg("as %s: %s: SQLSTATE %s, want %s", role, sql, state, want);
}

/* The administration's login: not superuser, owner or anything but a
 * member of postfach_admin; no DDL; nothing of the copies, submissions and
 * receipts; of its own tables only the columns its commands change. */
static void test_admin_login_rights(void **state)
{
    fixture_t *f = *state;
    const char *admin = f->login[2];
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT NOT (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb OR "
             "rolreplication) AND (SELECT string_agg(g.rolname, ',') FROM pg_auth_members m "
             "JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) = 'postfach_admin' "
             "AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = "
             "'public'::regnamespace AND pg_has_role(r.oid, c.relowner, 'MEMBER')) "
             "FROM pg_roles r WHERE rolname = '%s'",
             admin);
    char *ok = pf_env_sql(f->env, sql);
    assert_non_null(ok);
    assert_string_equal(ok, "t");
    free(ok);

    /* no DDL: only the owner (the compose init) changes the schema */
    s_refused(f, admin, "DROP TABLE message");
    s_refused(f, admin, "DROP TABLE sender_recipient_allow");
    s_refused(f, admin, "ALTER TABLE sender ADD COLUMN note text");
    s_refused(f, admin, "ALTER TABLE receipt DISABLE ROW LEVEL SECURITY");
    s_refused(f, admin, "DROP TRIGGER mailbox_kept ON mailbox");
    s_refused(f, admin, "CREATE TABLE pf_t_probe (x int)");
    s_refused(f, admin, "CREATE INDEX ON sender (created_at)");
    s_refused(f, admin, "TRUNCATE sender_recipient_allow");
    /* nothing of what the broker and the reader keep: not even the
     * metadata (who got what from whom, when read), no receipts, no
     * delivery state, no submissions */
    s_refused(f, admin, "SELECT count(*) FROM message");
    s_refused(f, admin, "SELECT title, read_at FROM message");
    s_refused(f, admin, "SELECT jwe_ciphertext FROM message");
    s_refused(f, admin, "SELECT count(*) FROM submission");
    s_refused(f, admin, "SELECT token FROM receipt");
    s_refused(f, admin, "SELECT count(*) FROM receipt_delivery");
    /* but the counts per sender that `sender receipts` prints (sql/0023),
     * which no other role may call */
    s_allowed(f, admin, "SELECT * FROM sender_receipt_backlog()");
    s_refused(f, "postfach_broker", "SELECT * FROM sender_receipt_backlog()");
    s_refused(f, "postfach_reader", "SELECT * FROM sender_receipt_backlog()");
    s_refused(f, "postfach_auditor", "SELECT * FROM sender_receipt_backlog()");
    s_refused(f, admin, "DELETE FROM message");
    s_refused(f, admin, "UPDATE message SET read_at = now()");
    s_refused(f, admin,
              "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
              "VALUES (gen_random_uuid(), 1, 'citizen-a', gen_random_uuid(), 'read', 't')");
    /* its own tables: what the commands do is allowed, the rest refused */
    s_allowed(f, admin,
              "INSERT INTO sender (name, curve_key) VALUES ('pf-probe', repeat('x', 40))");
    s_refused(f, admin,
              "INSERT INTO sender (name, curve_key, status) "
              "VALUES ('pf-probe', repeat('x', 40), 'revoked')");
    s_allowed(f, admin,
              "UPDATE sender SET status = 'revoked', revoked_at = coalesce(revoked_at, now()), "
              "curve_key = repeat('y', 40) WHERE name = 'tax-office'");
    s_refused(f, admin, "UPDATE sender SET name = 'renamed' WHERE name = 'tax-office'");
    s_refused(f, admin, "DELETE FROM sender");
    s_allowed(f, admin,
              "INSERT INTO sender_recipient_allow (sender_id, pattern) SELECT id, 'x*' FROM "
              "sender; DELETE FROM sender_recipient_allow");
    s_allowed(f, admin, "INSERT INTO mailbox (id) VALUES ('pf-probe')");
    s_refused(f, admin, "INSERT INTO mailbox (id, status) VALUES ('pf-probe', 'closed')");
    /* UPDATE (id) is for the row lock of citizen rotate-key; the trigger
     * of sql/0015 refuses any change of the id itself */
    s_allowed(f, admin, "SELECT id FROM mailbox WHERE id = 'citizen-a' FOR UPDATE");
    s_state_is(f, admin, "UPDATE mailbox SET id = 'renamed' WHERE id = 'citizen-a'", "23001");
    s_refused(f, admin, "UPDATE mailbox SET status = 'closed'");
    s_refused(f, admin, "DELETE FROM mailbox");
    s_refused(f, admin, "UPDATE mailbox_key SET public_jwk = '{}'");
    s_refused(f, admin, "DELETE FROM mailbox_key");
    s_allowed(f, admin, "UPDATE mailbox_secret SET kek_id = kek_id, wrapped_key = wrapped_key");
    s_refused(f, admin, "UPDATE mailbox_secret SET version = version");
    s_refused(f, admin, "UPDATE mailbox_secret SET mailbox_id = mailbox_id");
    s_refused(f, admin, "DELETE FROM mailbox_secret");
    /* sender.id is an identity column: INSERT needs no USAGE on its sequence */
    s_refused(f, admin, "SELECT nextval(pg_get_serial_sequence('sender', 'id'))");
    /* and nothing beyond the probes above */
    s_check_admin_privileges(pf_env_conninfo(f->env));
}

/* The rest of the line where prefix first occurs in text, into buf. */
static void s_line_after(const char *text, const char *prefix, char *buf, size_t size)
{
    const char *p = strstr(text, prefix);
    if (p == NULL)
        fail_msg("no \"%s\" in: %s", prefix, text);
    p += strlen(prefix);
    size_t n = strcspn(p, "\n");
    if (n >= size)
        fail_msg("line too long: %s", p);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* Every postfach-ctl command an operator runs through compose's `ctl`
 * works under the admin login; migrate and role login, which the compose
 * init runs as the owner, do not. */
static void test_ctl_commands_under_admin_login(void **state)
{
    fixture_t *f = *state;
    char *out, *err, kek0[64], jwk_file[600];
    /* senders */
    free(s_ctl_ok(f, NULL, "sender", "add", "ops-agency", NULL, NULL));
    out = s_ctl_ok(f, NULL, "sender", "list", NULL, NULL, NULL);
    assert_non_null(strstr(out, "ops-agency"));
    free(out);
    out = s_ctl_ok(f, NULL, "sender", "receipts", NULL, NULL, NULL);
    assert_non_null(strstr(out, "\nops-agency "));
    free(out);
    free(s_ctl_ok(f, NULL, "sender", "allow", "ops-agency", "citizen-a", NULL));
    free(s_ctl_ok(f, NULL, "sender", "allow", "ops-agency", "bw-*", NULL));
    out = s_ctl_ok(f, NULL, "sender", "allowed", "ops-agency", NULL, NULL);
    assert_string_equal(out, "bw-*\ncitizen-a\n");
    free(out);
    free(s_ctl_ok(f, NULL, "sender", "disallow", "ops-agency", "citizen-a", NULL));
    /* the last entry only with --allow-all: refused for that reason, not
     * for a privilege */
    out = err = NULL;
    assert_int_equal(
        s_ctl_on(f, NULL, &out, &err, "sender", "disallow", "ops-agency", "bw-*", NULL), 1);
    assert_non_null(strstr(err, "last allowlist entry"));
    free(out);
    free(err);
    free(s_ctl_ok(f, NULL, "sender", "disallow", "ops-agency", "bw-*", "--allow-all"));
    char *key_before = pf_env_sql(f->env, "SELECT curve_key FROM sender WHERE name = 'ops-agency'");
    free(s_ctl_ok(f, NULL, "sender", "rotate-key", "ops-agency", NULL, NULL));
    char *key_after = pf_env_sql(f->env, "SELECT curve_key FROM sender WHERE name = 'ops-agency'");
    assert_non_null(key_before);
    assert_non_null(key_after);
    assert_string_not_equal(key_before, key_after);
    free(key_before);
    free(key_after);
    free(s_ctl_ok(f, NULL, "sender", "revoke", "ops-agency", NULL, NULL));
    assert_int_equal(pf_env_sql_int(f->env,
                                    "SELECT count(*) FROM sender WHERE name = 'ops-agency' AND "
                                    "status = 'revoked' AND revoked_at IS NOT NULL"),
                     1);

    /* mailboxes: a server-held key, a citizen-held one, their rotations */
    free(s_ctl_ok(f, NULL, "citizen", "add", "ops-c1", NULL, NULL));
    free(s_ctl_ok(f, NULL, "citizen", "rotate-key", "ops-c1", NULL, NULL));
    out = s_ctl_ok(f, NULL, "citizen", "public-key", "citizen-a", NULL, NULL);
    snprintf(jwk_file, sizeof(jwk_file), "%s/ops-held.jwk", pf_env_dir(f->env));
    FILE *fp = fopen(jwk_file, "w");
    assert_non_null(fp);
    fputs(out, fp);
    fclose(fp);
    free(out);
    free(s_ctl_ok(f, NULL, "citizen", "add", "ops-held", "--public-jwk", jwk_file));
    free(s_ctl_ok(f, NULL, "citizen", "rotate-key", "ops-held", "--public-jwk", jwk_file));
    out = s_ctl_ok(f, NULL, "citizen", "public-key", "ops-c1", NULL, NULL);
    assert_non_null(strstr(out, "\"kty\""));
    assert_null(strstr(out, "\"d\""));
    free(out);
    out = s_ctl_ok(f, NULL, "citizen", "export-key", "ops-c1", "--version", "1");
    assert_non_null(strstr(out, "\"d\""));
    free(out);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM mailbox_key WHERE mailbox_id "
                                            "IN ('ops-c1', 'ops-held') AND version <= 2"),
                     4);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM mailbox_secret WHERE "
                                            "mailbox_id IN ('ops-c1', 'ops-held')"),
                     2);

    /* the KEK: rotation in two steps (compose hands the keyring over in
     * between), in one step, retirement of the old ones */
    out = s_ctl_ok(f, NULL, "kek", "status", NULL, NULL, NULL);
    s_line_after(out, "current KEK: ", kek0, sizeof(kek0));
    free(out);
    free(s_ctl_ok(f, NULL, "kek", "rotate", "--id", "kek-ops-2", "--no-rewrap"));
    out = s_ctl_ok(f, NULL, "kek", "rewrap", NULL, NULL, NULL);
    assert_null(strstr(out, "rewrapped 0 "));
    free(out);
    free(s_ctl_ok(f, NULL, "kek", "rotate", "--id", "kek-ops-3", NULL));
    free(s_ctl_ok(f, NULL, "kek", "retire", kek0, NULL, NULL));
    free(s_ctl_ok(f, NULL, "kek", "retire", "kek-ops-2", NULL, NULL));
    out = s_ctl_ok(f, NULL, "kek", "status", NULL, NULL, NULL);
    assert_non_null(strstr(out, "current KEK: kek-ops-3\n"));
    free(out);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM mailbox_secret WHERE kek_id <> "
                                            "'kek-ops-3'"),
                     0);
    out = s_ctl_ok(f, NULL, "citizen", "export-key", "ops-c1", "--version", "1");
    free(out);

    /* the owner's work is refused to this login */
    char sql_dir[600], pw[600];
    snprintf(sql_dir, sizeof(sql_dir), "%s/sql", getenv("PF_ROOT"));
    snprintf(pw, sizeof(pw), "%s/db_password", pf_env_dir(f->env));
    out = err = NULL;
    assert_int_equal(s_ctl_on(f, NULL, &out, &err, "migrate", "--sql-dir", sql_dir, NULL, NULL), 1);
    assert_non_null(strstr(err, "permission denied"));
    assert_non_null(strstr(err, "migrations need the database owner's login"));
    free(out);
    free(err);
    out = err = NULL;
    assert_int_equal(pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", f->conn[2], "role",
                                "login", "pf_t_sneaky", "admin", "--password-file", pw, NULL),
                     1);
    assert_non_null(strstr(err, "permission denied"));
    free(out);
    free(err);
}

static void s_copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *text = pf_test_read_file(from, &len);
    assert_non_null(text);
    FILE *fp = fopen(to, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    fclose(fp);
    free(text);
}

/* The newest migration applied on conn. */
static int s_schema_version(const char *conn)
{
    pf_store_t *st = NULL;
    const char *e = NULL;
    int v = -1;
    assert_int_equal(pf_store_open(conn, &st, &e), 0);
    if (pf_store_schema_version(st, &v, &e) != 0)
        v = -1;
    pf_store_destroy(&st);
    return v;
}

/* Runs postfach-ctl migrate as the owner on conn with the files of dir;
 * what names the step in a failure. */
static void s_migrate(fixture_t *f, const char *conn, const char *dir, const char *what)
{
    char *out = NULL, *err = NULL;
    if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "migrate", "--sql-dir", dir,
                   NULL) != 0)
        fail_msg("migrate %s: %s", what, err ? err : "?");
    free(out);
    free(err);
}

/* A fresh database db, migrated as the owner with those files of sql/ that
 * keep() admits, as an installation of that time was; its conninfo in
 * conn. */
static void s_old_database(fixture_t *f, const char *db, bool (*keep)(const char *name), char *conn,
                           size_t conn_size)
{
    char sql[160], dir[600], from[600], src[1024], to[1024];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
    s_exec(f, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    s_exec(f, sql);
    snprintf(dir, sizeof(dir), "%s/sql-%s", pf_env_dir(f->env), db);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(from, sizeof(from), "%s/sql", getenv("PF_ROOT"));
    DIR *d = opendir(from);
    assert_non_null(d);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 9 || strcmp(e->d_name + len - 4, ".sql") != 0 || !keep(e->d_name))
            continue;
        snprintf(src, sizeof(src), "%s/%s", from, e->d_name);
        snprintf(to, sizeof(to), "%s/%s", dir, e->d_name);
        s_copy_file(src, to);
    }
    closedir(d);
    snprintf(conn, conn_size, "%s dbname=%s", pf_env_conninfo(f->env), db);
    s_migrate(f, conn, dir, "to the old schema");
}

/* Brings db to the current schema (every file of sql/). */
static void s_upgrade(fixture_t *f, const char *conn)
{
    char from[600];
    snprintf(from, sizeof(from), "%s/sql", getenv("PF_ROOT"));
    s_migrate(f, conn, from, "to the end");
}

static void s_drop_database(fixture_t *f, const char *db)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", db);
    s_exec(f, sql);
}

/* the files of an installation made while 0009 was the newest */
static bool s_upto_0009(const char *name)
{
    static const char *const early[] = {"0001_init.sql", "0006_expiry.sql",
                                        "0007_allowlist_storage.sql", "0009_receipt_delivery.sql"};
    for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++)
        if (strcmp(name, early[i]) == 0)
            return true;
    return false;
}

/* the files of an installation made before 0019 */
static bool s_before_0019(const char *name)
{
    return strncmp(name, "0019", 4) < 0;
}

/* A database migrated while 0009 was the newest file (0009 landed before
 * 0008), upgraded to the current schema: the roles get their privileges on
 * receipt_delivery.  (0009 granted only to roles that existed when it ran,
 * and 0008, applied later, did not grant on receipt_delivery: the broker
 * and the reader failed under their logins.) */
static void test_upgrade_from_before_roles_grants_receipt_delivery(void **state)
{
    fixture_t *f = *state;
    char db[48], conn[700];
    snprintf(db, sizeof(db), "pf_t_upgrade_%ld", (long)getpid());
    s_old_database(f, db, s_upto_0009, conn, sizeof(conn));
    assert_int_equal(s_schema_version(conn), 9);
    /* what 0009 left on a cluster that did not have the roles yet */
    pf_store_t *st = NULL;
    const char *e = NULL;
    assert_int_equal(pf_store_open(conn, &st, &e), 0);
    assert_int_equal(pf_store_exec(st,
                                   "REVOKE ALL ON receipt_delivery FROM postfach_broker, "
                                   "postfach_reader, postfach_admin",
                                   &e),
                     0);
    s_upgrade(f, conn);
    if (pf_store_exec(st,
                      "DO $$ BEGIN IF NOT (has_table_privilege('postfach_broker', "
                      "'receipt_delivery', 'SELECT, INSERT, UPDATE') AND "
                      "has_table_privilege('postfach_broker', 'receipt_delivery', 'UPDATE') AND "
                      "has_table_privilege('postfach_reader', 'receipt_delivery', 'INSERT') AND "
                      /* 0019 took the administration's read away: no command uses it */
                      "NOT has_table_privilege('postfach_admin', 'receipt_delivery', "
                      "'SELECT, INSERT, UPDATE, DELETE')) "
                      "THEN RAISE EXCEPTION 'privileges on receipt_delivery missing'; "
                      "END IF; END $$",
                      &e) != 0)
        fail_msg("%s", e);
    pf_store_destroy(&st);
    s_drop_database(f, db);
}

/* A database migrated before sql/0019 (its postfach_admin with the grants
 * of 0008 and 0009, among them reads of copies' metadata and receipts, and
 * a receipt policy), upgraded: the administration ends with exactly the
 * privileges of a new database, and ctl works there under its login on
 * what was made before the upgrade. */
static void test_upgrade_to_0019_narrows_admin(void **state)
{
    fixture_t *f = *state;
    char db[48], conn[700], conn_admin[800];
    snprintf(db, sizeof(db), "pf_t_upgrade19_%ld", (long)getpid());
    s_old_database(f, db, s_before_0019, conn, sizeof(conn));
    assert_int_equal(s_schema_version(conn), 18);
    snprintf(conn_admin, sizeof(conn_admin), "%s user=%s", conn, f->login[2]);
    char *out = NULL, *err = NULL;
    /* made by the owner before the upgrade, as ctl did in compose */
    static const char *const before[][3] = {{"sender", "add", "up-agency"},
                                            {"citizen", "add", "up-c1"}};
    for (size_t i = 0; i < 2; i++) {
        out = err = NULL;
        if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "--keys",
                       pf_env_keys(f->env), before[i][0], before[i][1], before[i][2], NULL) != 0)
            fail_msg("%s %s as the owner: %s", before[i][0], before[i][1], err ? err : "?");
        free(out);
        free(err);
    }
    /* what the upgrade has to take away */
    pf_store_t *st = NULL;
    const char *e = NULL;
    assert_int_equal(pf_store_open(conn, &st, &e), 0);
    if (pf_store_exec(st,
                      "DO $$ BEGIN IF NOT (has_column_privilege('postfach_admin', 'message', "
                      "'title', 'SELECT') AND has_table_privilege('postfach_admin', 'receipt', "
                      "'SELECT') AND EXISTS (SELECT 1 FROM pg_policy WHERE polname = "
                      "'receipt_admin')) THEN RAISE EXCEPTION 'not the grants of 0008'; "
                      "END IF; END $$",
                      &e) != 0)
        fail_msg("%s", e);
    pf_store_destroy(&st);

    s_upgrade(f, conn);
    s_check_admin_privileges(conn);

    free(s_ctl_ok(f, conn_admin, "citizen", "rotate-key", "up-c1", NULL, NULL));
    free(s_ctl_ok(f, conn_admin, "sender", "allow", "up-agency", "up-*", NULL));
    free(s_ctl_ok(f, conn_admin, "sender", "revoke", "up-agency", NULL, NULL));
    free(s_ctl_ok(f, conn_admin, "kek", "status", NULL, NULL, NULL));
    s_drop_database(f, db);
}

/* the files of an installation made before 0021 */
static bool s_before_0021(const char *name)
{
    return strncmp(name, "0021", 4) < 0;
}

/* postfach-ctl audit verify as the owner on conn must say "intact" with
 * the row count, last id and hash the database holds. */
static void s_audit_intact(fixture_t *f, const char *conn)
{
    char *out = NULL, *err = NULL;
    if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "audit", "verify", NULL) != 0)
        fail_msg("audit verify: %s", err ? err : "?");
    pf_store_t *st = NULL;
    const char *e = NULL;
    assert_int_equal(pf_store_open(conn, &st, &e), 0);
    /* what verify printed holds only digits, hex and words: no "$" */
    char *sql = NULL;
    if (asprintf(&sql,
                 "DO $$ BEGIN IF (SELECT format('audit chain intact: %%s rows, last id %%s, "
                 "last hash %%s', count(*), max(id), (SELECT encode(hash, 'hex') FROM admin_audit "
                 "ORDER BY id DESC LIMIT 1)) || E'\\n' FROM admin_audit) IS DISTINCT FROM "
                 "$v$%s$v$ THEN RAISE EXCEPTION 'verify said: %%', $v$%s$v$; END IF; END $$",
                 out, out) < 0)
        fail_msg("out of memory");
    if (strchr(out, '$') != NULL || pf_store_exec(st, sql, &e) != 0)
        fail_msg("%s", e ? e : out);
    free(sql);
    pf_store_destroy(&st);
    free(out);
    free(err);
}

/* A database whose audit has rows from before sql/0021, upgraded: the
 * migration chains them in id order from the start value, and the
 * changes made after the upgrade chain on from them. */
static void test_upgrade_to_0021_chains_audit(void **state)
{
    fixture_t *f = *state;
    char db[48], conn[700];
    snprintf(db, sizeof(db), "pf_t_upgrade21_%ld", (long)getpid());
    s_old_database(f, db, s_before_0021, conn, sizeof(conn));
    assert_int_equal(s_schema_version(conn), 20);
    static const char *const before[][3] = {{"sender", "add", "up21-agency"},
                                            {"citizen", "add", "up21-c1"},
                                            {"sender", "revoke", "up21-agency"}};
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL, *err = NULL;
        if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "--keys",
                       pf_env_keys(f->env), before[i][0], before[i][1], before[i][2], NULL) != 0)
            fail_msg("%s %s as the owner: %s", before[i][0], before[i][1], err ? err : "?");
        free(out);
        free(err);
    }
    s_upgrade(f, conn);
    pf_store_t *st = NULL;
    const char *e = NULL;
    assert_int_equal(pf_store_open(conn, &st, &e), 0);
    /* five rows, chained in id order from 32 zero bytes */
    if (pf_store_exec(st,
                      "DO $$ BEGIN IF (SELECT count(*) FROM admin_audit) <> 5 OR "
                      "(SELECT prev_hash FROM admin_audit ORDER BY id LIMIT 1) <> "
                      "decode(repeat('00', 32), 'hex') OR EXISTS (SELECT 1 FROM admin_audit a "
                      "JOIN admin_audit b ON b.id = (SELECT min(id) FROM admin_audit "
                      "WHERE id > a.id) WHERE b.prev_hash <> a.hash) OR "
                      "(SELECT last_id FROM admin_audit_head) <> (SELECT max(id) FROM admin_audit) "
                      "OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postfach_auditor') "
                      "THEN RAISE EXCEPTION 'the audit is not chained as it should be'; "
                      "END IF; END $$",
                      &e) != 0)
        fail_msg("%s", e);
    pf_store_destroy(&st);
    s_audit_intact(f, conn);
    char *out = NULL, *err = NULL;
    if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "--keys", pf_env_keys(f->env),
                   "sender", "add", "up21-later", NULL) != 0)
        fail_msg("sender add after the upgrade: %s", err ? err : "?");
    free(out);
    free(err);
    s_audit_intact(f, conn);
    s_drop_database(f, db);
}

/* sql/0020: what the administration login changes is in admin_audit, with
 * that login's name, and the login can neither read nor change the audit,
 * nor set a revoked sender active again; the owner can, audited too.  A
 * bulk load of the owner with postfach.audit = 'off' is left out; the
 * administration's "off" is not honoured. */
static void test_admin_changes_audited(void **state)
{
    fixture_t *f = *state;
    long long before = pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit");
    free(s_ctl_ok(f, NULL, "sender", "add", "audit-agency", NULL, NULL));
    free(s_ctl_ok(f, NULL, "sender", "allow", "audit-agency", "au-*", NULL));
    free(s_ctl_ok(f, NULL, "sender", "disallow", "audit-agency", "au-*", "--allow-all"));
    free(s_ctl_ok(f, NULL, "sender", "rotate-key", "audit-agency", NULL, NULL));
    free(s_ctl_ok(f, NULL, "citizen", "add", "au-c1", NULL, NULL));
    free(s_ctl_ok(f, NULL, "sender", "revoke", "audit-agency", NULL, NULL));
    /* in order, each with the administration login's name */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(action || ' ' || subject, ', ' ORDER BY id) FROM admin_audit "
             "WHERE login = '%s' "
             "AND (subject IN ('audit-agency', 'au-c1'))",
             f->login[2]);
    char *got = pf_env_sql(f->env, sql);
    assert_non_null(got);
    assert_string_equal(got, "sender.add audit-agency, sender.allow audit-agency, "
                             "sender.disallow audit-agency, sender.key audit-agency, "
                             "mailbox.add au-c1, mailbox.key au-c1, mailbox.wrapped_key au-c1, "
                             "sender.status audit-agency");
    free(got);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit") - before, 8);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit WHERE "
                                            "action = 'sender.key' AND subject = 'audit-agency' "
                                            "AND detail->>'old' <> detail->>'new'"),
                     1);
    /* the login cannot read, change or delete it, nor write its own */
    s_refused(f, "postfach_admin", "SELECT count(*) FROM admin_audit");
    s_refused(f, "postfach_admin", "DELETE FROM admin_audit");
    s_refused(f, "postfach_admin", "UPDATE admin_audit SET login = 'x'");
    s_refused(f, "postfach_admin",
              "INSERT INTO admin_audit (login, program, action, subject) VALUES ('x', 'x', "
              "'x', 'x')");
    /* nor the daemons */
    s_refused(f, "postfach_broker", "SELECT count(*) FROM admin_audit");
    s_refused(f, "postfach_reader", "SELECT count(*) FROM admin_audit");
    /* append-only for the owner too */
    char sqlstate[6];
    assert_int_not_equal(pf_env_sql_state(f->env, "DELETE FROM admin_audit", sqlstate), 0);
    assert_string_equal(sqlstate, "42501");
    /* a revoked sender stays revoked for the administration... */
    s_refused(f, "postfach_admin",
              "UPDATE sender SET status = 'active' WHERE name = 'audit-agency'");
    /* ...and its "off" is not honoured: this mailbox is audited */
    pf_store_t *st = NULL;
    const char *e = NULL;
    assert_int_equal(pf_store_open(f->conn[2], &st, &e), 0);
    assert_int_equal(
        pf_store_exec(st,
                      "BEGIN; SET LOCAL postfach.audit = 'off'; INSERT INTO mailbox (id) "
                      "VALUES ('au-c2'); COMMIT",
                      &e),
        0);
    pf_store_destroy(&st);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit WHERE action = "
                                            "'mailbox.add' AND subject = 'au-c2'"),
                     1);
    /* the owner may undo a revocation, and it is audited; its "off" holds */
    assert_int_equal(pf_env_sql_state(f->env,
                                      "UPDATE sender SET status = 'active' "
                                      "WHERE name = 'audit-agency'",
                                      sqlstate),
                     0);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit WHERE action = "
                                            "'sender.status' AND subject = 'audit-agency' "
                                            "AND detail->>'new' = 'active' AND login = "
                                            "session_user"),
                     1);
    assert_int_equal(pf_env_sql_state(f->env,
                                      "BEGIN; SET LOCAL postfach.audit = 'off'; INSERT INTO "
                                      "mailbox (id) VALUES ('au-c3'); COMMIT",
                                      sqlstate),
                     0);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit WHERE "
                                            "subject = 'au-c3'"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daemons_and_ctl_work_under_their_roles),
        cmocka_unit_test(test_what_each_role_must_not_do),
        cmocka_unit_test(test_upgrade_from_before_roles_grants_receipt_delivery),
        cmocka_unit_test(test_admin_login_rights),
        cmocka_unit_test(test_ctl_commands_under_admin_login),
        cmocka_unit_test(test_upgrade_to_0019_narrows_admin),
        cmocka_unit_test(test_admin_changes_audited),
        cmocka_unit_test(test_upgrade_to_0021_chains_audit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
