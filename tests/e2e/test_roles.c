/* End-to-end: the database roles of sql/0008_roles.sql.
 * The broker, the reader and postfach-ctl run under logins that are
 * members of postfach_broker, postfach_reader and postfach_admin only (not
 * the superuser the other tests use), and the whole path still works:
 * send -> ACK -> list -> open -> delivered and read receipts; a citizen
 * and a sender created by ctl.  Then, on a connection of our own with SET
 * ROLE, what each role must not do is refused with insufficient_privilege
 * (42501): the broker reads no wrapped private key, the reader inserts no
 * copy and no receipt but a "read" one of the copy's own sender, the
 * administration reads no ciphertext. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

static const char *const s_groups[3] = {"postfach_broker", "postfach_reader", "postfach_admin"};

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
    /* logins are global to the cluster: one set per test process */
    static const char *const kinds[3] = {"broker", "reader", "admin"};
    for (int i = 0; i < 3; i++) {
        snprintf(f->login[i], sizeof(f->login[i]), "pf_t_%s_%ld", kinds[i], (long)getpid());
        char sql[256];
        snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN IN ROLE %s", f->login[i], s_groups[i]);
        s_exec(f, sql);
        /* the conninfo's user=postgres is overridden by the later user= */
        char conn[sizeof(f->conn[i])];
        snprintf(conn, sizeof(conn), "%s user=%s", pf_env_conninfo(f->env), f->login[i]);
        memcpy(f->conn[i], conn, sizeof(conn));
    }
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pf_env_stop_broker(f->env, 15);
    pf_env_stop_reader(f->env, 15);
    /* the logins own nothing; drop them once their sessions are gone */
    for (int i = 0; i < 3; i++) {
        char sql[128], sqlstate[6];
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", f->login[i]);
        (void)pf_env_sql_state(f->env, sql, sqlstate);
    }
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

/* ctl as the admin login */
static int s_ctl(fixture_t *f, char **out, const char *a, const char *b, const char *c,
                 const char *d)
{
    return pf_env_run(f->env, out, NULL, "postfach-ctl", "--db", f->conn[2], "--keys",
                      pf_env_keys(f->env), a, b, c, d, NULL);
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
    /* the administration: keys and senders, never the content */
    s_refused(f, "postfach_admin", "SELECT jwe_ciphertext FROM message");
    s_refused(f, "postfach_admin", "SELECT payload_hash FROM submission");
    s_refused(f, "postfach_admin",
              "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, "
              "event, token) VALUES (gen_random_uuid(), 1, 'a', "
              "gen_random_uuid(), 'read', 't')");
    s_allowed(f, "postfach_admin", "SELECT title, read_at FROM message");
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

/* A database migrated while 0009 was the newest file (0009 landed before
 * 0008), upgraded to the current schema: the roles get their privileges on
 * receipt_delivery.  (0009 granted only to roles that existed when it ran,
 * and 0008, applied later, did not grant on receipt_delivery: the broker
 * and the reader failed under their logins.) */
static void test_upgrade_from_before_roles_grants_receipt_delivery(void **state)
{
    fixture_t *f = *state;
    char db[48], sql[160], dir[600], from[600], to[700], conn[700];
    snprintf(db, sizeof(db), "pf_t_upgrade_%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
    s_exec(f, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    s_exec(f, sql);
    snprintf(dir, sizeof(dir), "%s/sql-0009", pf_env_dir(f->env));
    assert_int_equal(mkdir(dir, 0700), 0);
    static const char *const early[] = {"0001_init.sql", "0006_expiry.sql",
                                        "0007_allowlist_storage.sql", "0009_receipt_delivery.sql"};
    for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
        snprintf(from, sizeof(from), "%s/sql/%s", getenv("PF_ROOT"), early[i]);
        snprintf(to, sizeof(to), "%s/%s", dir, early[i]);
        s_copy_file(from, to);
    }
    snprintf(conn, sizeof(conn), "%s dbname=%s", pf_env_conninfo(f->env), db);
    char *out = NULL, *err = NULL;
    if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "migrate", "--sql-dir", dir,
                   NULL) != 0)
        fail_msg("migrate to 0009: %s", err ? err : "?");
    free(out);
    free(err);
    /* what 0009 left on a cluster that did not have the roles yet */
    pf_store_t *st = NULL;
    const char *e = NULL;
    assert_int_equal(pf_store_open(conn, &st, &e), 0);
    assert_int_equal(pf_store_exec(st,
                                   "REVOKE ALL ON receipt_delivery FROM postfach_broker, "
                                   "postfach_reader, postfach_admin",
                                   &e),
                     0);
    snprintf(from, sizeof(from), "%s/sql", getenv("PF_ROOT"));
    out = err = NULL;
    if (pf_env_run(f->env, &out, &err, "postfach-ctl", "--db", conn, "migrate", "--sql-dir", from,
                   NULL) != 0)
        fail_msg("migrate to the end: %s", err ? err : "?");
    free(out);
    free(err);
    if (pf_store_exec(st,
                      "DO $$ BEGIN IF NOT (has_table_privilege('postfach_broker', "
                      "'receipt_delivery', 'SELECT, INSERT, UPDATE') AND "
                      "has_table_privilege('postfach_broker', 'receipt_delivery', 'UPDATE') AND "
                      "has_table_privilege('postfach_reader', 'receipt_delivery', 'INSERT') AND "
                      "has_table_privilege('postfach_admin', 'receipt_delivery', 'SELECT')) "
                      "THEN RAISE EXCEPTION 'privileges on receipt_delivery missing'; "
                      "END IF; END $$",
                      &e) != 0)
        fail_msg("%s", e);
    pf_store_destroy(&st);
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", db);
    s_exec(f, sql);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daemons_and_ctl_work_under_their_roles),
        cmocka_unit_test(test_what_each_role_must_not_do),
        cmocka_unit_test(test_upgrade_from_before_roles_grants_receipt_delivery),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
