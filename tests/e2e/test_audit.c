/* End-to-end: the administration's audit as a hash chain (sql/0021) and
 * postfach-ctl audit export and verify.
 * Changes made by ctl under an administration login come out of `audit
 * export`, run under an auditor login, as JSON lines with the right fields,
 * hashes and links, and only those after --after; verify says the chain is
 * intact and prints its end.  Then, as the superuser (the owner of the
 * tests' databases), the append-only and chaining triggers are switched
 * off and each field of a row changed, a row moved to another id, a middle
 * row deleted, the last one deleted: verify names the row each time and
 * exits 1, and is content again once the row is put back.  Two sessions
 * changing things at once keep one chain: a change waits for the chain's
 * lock held by another transaction, and a burst from two threads leaves no
 * fork.  Who may read: the auditor group, not the administration, broker
 * or reader.  (The upgrade from 0020 with rows in the audit is in
 * test_roles.c, beside the other upgrades.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "util/fileio.h"

static const char *const s_citizens[] = {NULL};

typedef struct {
    pf_env_t *env;
    char login[2][48]; /* admin, auditor */
    char conn[2][512];
} fixture_t;

enum { S_ADMIN, S_AUDITOR };

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    *state = f;
    f->env = pf_env_new("audit", s_citizens);
    if (f->env == NULL)
        return -1;
    static const char *const kinds[2] = {"admin", "auditor"};
    for (int i = 0; i < 2; i++)
        if (pf_env_make_login(f->env, "pf_a", kinds[i], f->login[i], f->conn[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 2; i++)
        pf_env_drop_login(f->env, f->login[i]);
    return pf_fixture_end(f->env, NULL, f);
}

/* postfach-ctl under login (S_ADMIN, S_AUDITOR, or -1: the owner); up to
 * six arguments, the first NULL ends them; stdout and stderr in *out and
 * *err (caller frees). */
static int s_ctl6(fixture_t *f, int login, char **out, char **err, const char *const a[6])
{
    return pf_env_run(f->env, out, err, "postfach-ctl", "--db",
                      login < 0 ? pf_env_conninfo(f->env) : f->conn[login], "--keys",
                      pf_env_keys(f->env), a[0], a[1], a[2], a[3], a[4], a[5], NULL);
}

static int s_ctl(fixture_t *f, int login, char **out, char **err, const char *a, const char *b,
                 const char *c, const char *d)
{
    const char *const args[6] = {a, b, c, d, NULL, NULL};
    return s_ctl6(f, login, out, err, args);
}

static void s_ctl_ok(fixture_t *f, int login, const char *a, const char *b, const char *c,
                     const char *d)
{
    char *out = NULL, *err = NULL;
    int rc = s_ctl(f, login, &out, &err, a, b, c, d);
    if (rc != 0)
        fail_msg("postfach-ctl %s %s %s: exit %d: %s", a, b ? b : "", c ? c : "", rc,
                 err ? err : "");
    free(out);
    free(err);
}

static void s_exec(fixture_t *f, const char *sql)
{
    char state[6];
    if (pf_env_sql_state(f->env, sql, state) != 0)
        fail_msg("%s: SQLSTATE %s", sql, state);
}

/* Runs sql as role in a transaction rolled back; asserts 42501. */
static void s_refused(fixture_t *f, const char *role, const char *sql)
{
    char *sql2 = NULL, state[6];
    if (asprintf(&sql2, "BEGIN; SET ROLE %s; %s; ROLLBACK", role, sql) < 0)
        fail_msg("out of memory");
    (void)pf_env_sql_state(f->env, sql2, state);
    free(sql2);
    if (strcmp(state, "42501") != 0)
        fail_msg("%s may: %s (SQLSTATE %s, want 42501)", role, sql, state);
}

/* What verify must say of an intact chain: count, last id and hash as
 * the database holds them. */
static void s_verify_intact(fixture_t *f)
{
    char *out = NULL, *err = NULL;
    int rc = s_ctl(f, S_AUDITOR, &out, &err, "audit", "verify", NULL, NULL);
    if (rc != 0)
        fail_msg("audit verify: exit %d: %s", rc, err ? err : "");
    char *want = pf_env_sql(f->env, "SELECT format('audit chain intact: %s rows, last id %s, "
                                    "last hash %s', count(*), max(id), "
                                    "(SELECT encode(hash, 'hex') FROM admin_audit "
                                    "ORDER BY id DESC LIMIT 1)) || E'\\n' FROM admin_audit");
    assert_non_null(want);
    assert_string_equal(out, want);
    free(want);
    free(out);
    free(err);
}

/* verify must fail (exit 1) with a message holding each of the texts. */
static void s_verify_broken(fixture_t *f, const char *what, const char *want1, const char *want2)
{
    char *out = NULL, *err = NULL;
    int rc = s_ctl(f, S_AUDITOR, &out, &err, "audit", "verify", NULL, NULL);
    if (rc != 1 || err == NULL || strstr(err, want1) == NULL ||
        (want2 != NULL && strstr(err, want2) == NULL))
        fail_msg("%s: verify exit %d, stdout \"%s\", stderr \"%s\"; want exit 1 and \"%s\"%s%s",
                 what, rc, out ? out : "", err ? err : "", want1, want2 ? " and " : "",
                 want2 ? want2 : "");
    free(out);
    free(err);
}

/* The export's lines parsed, one JSON object each. */
typedef struct {
    json_t *line[64];
    size_t n;
} s_lines_t;

static void s_export(fixture_t *f, s_lines_t *l, const char *a, const char *b, const char *c,
                     const char *d)
{
    char *out = NULL, *err = NULL;
    const char *const args[6] = {"audit", "export", a, b, c, d};
    int rc = s_ctl6(f, S_AUDITOR, &out, &err, args);
    if (rc != 0)
        fail_msg("audit export: exit %d: %s", rc, err ? err : "");
    l->n = 0;
    for (char *p = out, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl); /* every line ends */
        assert_true(l->n < 64);
        json_error_t e;
        l->line[l->n] = json_loadb(p, (size_t)(nl - p), 0, &e);
        if (l->line[l->n] == NULL || !json_is_object(l->line[l->n]))
            fail_msg("export line not a JSON object: %.*s", (int)(nl - p), p);
        l->n++;
    }
    free(out);
    free(err);
}

static void s_lines_clear(s_lines_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->line[i]);
    l->n = 0;
}

static const char *s_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v == NULL)
        fail_msg("export line without string \"%s\"", key);
    return v;
}

static long long s_id(json_t *o)
{
    json_t *v = json_object_get(o, "id");
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* RFC 3339 in UTC as the export writes it: 2024-05-01T12:00:00.000000Z */
static bool s_is_time(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (strlen(t) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i])
            return false;
    return true;
}

/* Changes through ctl come out of export with the right fields; the
 * hashes are the stored ones and each line links to the one before;
 * --after and --limit select; verify says intact. */
static void test_export_lines(void **state)
{
    fixture_t *f = *state;
    long long before = pf_env_sql_int(f->env, "SELECT coalesce(max(id), 0) FROM admin_audit");
    char after[24];
    snprintf(after, sizeof(after), "%lld", before);
    s_ctl_ok(f, S_ADMIN, "sender", "add", "exp-agency", NULL);
    s_ctl_ok(f, S_ADMIN, "sender", "allow", "exp-agency", "exp-*");
    s_ctl_ok(f, S_ADMIN, "citizen", "add", "exp-c1", NULL);
    s_ctl_ok(f, S_ADMIN, "sender", "revoke", "exp-agency", NULL);

    s_lines_t l;
    s_export(f, &l, "--after", after, NULL, NULL);
    static const char *const want[][3] = {{"sender.add", "exp-agency", "curve_key"},
                                          {"sender.allow", "exp-agency", "pattern"},
                                          {"mailbox.add", "exp-c1", NULL},
                                          {"mailbox.key", "exp-c1", "kid"},
                                          {"mailbox.wrapped_key", "exp-c1", "kek_id"},
                                          {"sender.status", "exp-agency", "new"}};
    assert_int_equal(l.n, 6);
    long long prev_id = before;
    for (size_t i = 0; i < l.n; i++) {
        json_t *o = l.line[i];
        long long id = s_id(o);
        assert_true(id > prev_id);
        assert_true(s_is_time(s_str(o, "time")));
        assert_string_equal(s_str(o, "login"), f->login[S_ADMIN]);
        assert_string_equal(s_str(o, "program"), "postfach-ctl");
        assert_string_equal(s_str(o, "action"), want[i][0]);
        assert_string_equal(s_str(o, "subject"), want[i][1]);
        json_t *detail = json_object_get(o, "detail");
        assert_true(json_is_object(detail));
        if (want[i][2] != NULL)
            assert_non_null(json_object_get(detail, want[i][2]));
        else
            assert_int_equal(json_object_size(detail), 0);
        /* the stored row, as the database has it */
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT encode(hash, 'hex') || ' ' || encode(prev_hash, 'hex') || ' ' || "
                 "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM "
                 "admin_audit WHERE id = %lld",
                 id);
        char *row = pf_env_sql(f->env, sql), line[256];
        assert_non_null(row);
        snprintf(line, sizeof(line), "%s %s %s", s_str(o, "hash"), s_str(o, "prev_hash"),
                 s_str(o, "time"));
        assert_string_equal(line, row);
        free(row);
        if (i > 0)
            assert_string_equal(s_str(o, "prev_hash"), s_str(l.line[i - 1], "hash"));
        prev_id = id;
    }
    /* the sender's revocation says what changed */
    json_t *d = json_object_get(l.line[5], "detail");
    assert_string_equal(json_string_value(json_object_get(d, "old")), "active");
    assert_string_equal(json_string_value(json_object_get(d, "new")), "revoked");

    /* after the second line: the four after it, oldest first */
    char second[24], last[24];
    snprintf(second, sizeof(second), "%lld", s_id(l.line[1]));
    snprintf(last, sizeof(last), "%lld", s_id(l.line[5]));
    long long third = s_id(l.line[2]);
    s_lines_clear(&l);
    s_export(f, &l, "--after", second, NULL, NULL);
    assert_int_equal(l.n, 4);
    assert_int_equal(s_id(l.line[0]), third);
    assert_string_equal(s_str(l.line[3], "action"), "sender.status");
    s_lines_clear(&l);
    s_export(f, &l, "--after", second, "--limit", "2");
    assert_int_equal(l.n, 2);
    assert_int_equal(s_id(l.line[0]), third);
    s_lines_clear(&l);
    s_export(f, &l, "--after", last, NULL, NULL);
    assert_int_equal(l.n, 0);
    /* without --after: everything, the first row chaining from the start */
    s_export(f, &l, NULL, NULL, NULL, NULL);
    assert_int_equal(l.n, pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit"));
    assert_string_equal(s_str(l.line[0], "prev_hash"),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    s_lines_clear(&l);

    s_verify_intact(f);

    /* a login with letters beyond ASCII: the netstrings count bytes, in
     * the database and in verify alike */
    char role[64], sql[512];
    snprintf(role, sizeof(role),
             "pf_a_pr\xc3\xbc"
             "fer_%ld",
             (long)getpid());
    snprintf(sql, sizeof(sql),
             "CREATE ROLE \"%s\" IN ROLE postfach_admin; SET SESSION AUTHORIZATION \"%s\"; "
             "INSERT INTO mailbox (id) VALUES ('exp-utf8'); RESET SESSION AUTHORIZATION; "
             "DROP ROLE \"%s\"",
             role, role, role);
    s_exec(f, sql);
    s_export(f, &l, "--after", last, NULL, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(s_str(l.line[0], "login"), role);
    s_lines_clear(&l);
    s_verify_intact(f);

    /* options that are not numbers are usage errors: nothing is read */
    char *out = NULL, *err = NULL;
    assert_int_equal(s_ctl(f, S_AUDITOR, &out, &err, "audit", "export", "--after", "-1"), 2);
    free(out);
    free(err);
    out = err = NULL;
    assert_int_equal(s_ctl(f, S_AUDITOR, &out, &err, "audit", "export", "--limit", "0"), 2);
    free(out);
    free(err);
}

/* Reading is the auditor group's (and the owner's) alone; the auditor
 * changes nothing, and nobody deletes or truncates the audit. */
static void test_who_reads(void **state)
{
    fixture_t *f = *state;
    char *out = NULL, *err = NULL;
    assert_int_equal(s_ctl(f, S_ADMIN, &out, &err, "audit", "export", NULL, NULL), 1);
    assert_non_null(strstr(err, "permission denied"));
    assert_non_null(strstr(err, "postfach_auditor"));
    free(out);
    free(err);
    out = err = NULL;
    assert_int_equal(s_ctl(f, S_ADMIN, &out, &err, "audit", "verify", NULL, NULL), 1);
    free(out);
    free(err);
    /* the owner may */
    out = err = NULL;
    assert_int_equal(s_ctl(f, -1, &out, &err, "audit", "verify", NULL, NULL), 0);
    assert_non_null(strstr(out, "audit chain intact: "));
    free(out);
    free(err);
    static const char *const groups[] = {"postfach_admin", "postfach_broker", "postfach_reader"};
    for (size_t i = 0; i < 3; i++) {
        s_refused(f, groups[i], "SELECT * FROM admin_audit_rows(0, 10)");
        s_refused(f, groups[i], "SELECT * FROM admin_audit_last()");
        s_refused(f, groups[i], "SELECT * FROM admin_audit_head");
    }
    s_refused(f, "postfach_auditor", "SELECT count(*) FROM admin_audit");
    s_refused(f, "postfach_auditor", "SELECT * FROM admin_audit_head");
    s_refused(f, "postfach_auditor", "UPDATE admin_audit_head SET last_id = 0");
    s_refused(f, "postfach_auditor", "INSERT INTO mailbox (id) VALUES ('aud-x')");
    s_refused(f, "postfach_auditor", "SELECT name FROM sender");
    s_refused(f, "postfach_auditor", "SELECT admin_audit_write('x', 'x', '{}')");
    char sqlstate[6];
    assert_int_not_equal(pf_env_sql_state(f->env, "TRUNCATE admin_audit", sqlstate), 0);
    assert_string_equal(sqlstate, "42501");
    assert_int_not_equal(pf_env_sql_state(f->env, "DELETE FROM admin_audit", sqlstate), 0);
    assert_string_equal(sqlstate, "42501");
    s_verify_intact(f);
}

/* The owner's way around the append-only rule, for the tests below. */
#define S_OFF "ALTER TABLE admin_audit DISABLE TRIGGER USER; "
#define S_ON "; ALTER TABLE admin_audit ENABLE TRIGGER USER"

/* Deletes row id behind the triggers' back, expects verify to report
 * want1 and want2, puts the row back and expects the chain intact again. */
static void s_delete_verify_restore(fixture_t *f, long long id, const char *what, const char *want1,
                                    const char *want2)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "CREATE TEMP TABLE keep AS SELECT * FROM admin_audit WHERE id = %lld; " S_OFF
             "DELETE FROM admin_audit WHERE id = %lld" S_ON,
             id, id);
    s_exec(f, sql);
    s_verify_broken(f, what, want1, want2);
    s_exec(f, S_OFF "INSERT INTO admin_audit OVERRIDING SYSTEM VALUE SELECT * FROM keep" S_ON
                    "; DROP TABLE keep");
    s_verify_intact(f);
}

/* Each field of a middle row changed, the row moved to another id, a
 * middle row deleted, the last one deleted: verify names the row and
 * fails, and is content once the row is back. */
static void test_tampering_shows(void **state)
{
    fixture_t *f = *state;
    s_ctl_ok(f, S_ADMIN, "sender", "add", "tam-agency", NULL);
    s_ctl_ok(f, S_ADMIN, "sender", "allow", "tam-agency", "tam-*");
    s_ctl_ok(f, S_ADMIN, "sender", "allow", "tam-agency", "tam2-*");
    s_verify_intact(f);
    long long mid = pf_env_sql_int(f->env, "SELECT id FROM admin_audit WHERE action = "
                                           "'sender.allow' AND detail->>'pattern' = 'tam-*'");
    long long last = pf_env_sql_int(f->env, "SELECT max(id) FROM admin_audit");
    long long before = pf_env_sql_int(
        f->env, "SELECT max(id) FROM admin_audit WHERE id < (SELECT id FROM admin_audit WHERE "
                "action = 'sender.allow' AND detail->>'pattern' = 'tam-*')");
    assert_true(before > 0 && mid > before && last > mid);
    char at_mid[48], sql[512], want[160], want2[160];
    snprintf(at_mid, sizeof(at_mid), "audit chain broken at id %lld: ", mid);

    /* every field the chain covers */
    static const char *const changes[][2] = {
        {"at", "at + interval '1 microsecond'"},
        {"login", "'someone-else'"},
        {"program", "'psql'"},
        {"action", "'sender.disallow'"},
        {"subject", "'tax-office'"},
        {"detail", "'{\"pattern\": \"*\"}'"},
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        const char *col = changes[i][0];
        snprintf(sql, sizeof(sql),
                 "CREATE TEMP TABLE keep AS SELECT %s AS v FROM admin_audit WHERE id = %lld; " S_OFF
                 "UPDATE admin_audit SET %s = %s WHERE id = %lld" S_ON,
                 col, mid, col, changes[i][1], mid);
        s_exec(f, sql);
        s_verify_broken(f, col, at_mid, "does not match its hash");
        snprintf(sql, sizeof(sql),
                 S_OFF "UPDATE admin_audit SET %s = (SELECT v FROM keep) WHERE id = %lld" S_ON
                       "; DROP TABLE keep",
                 col, mid);
        s_exec(f, sql);
        s_verify_intact(f);
    }

    /* the last row moved to a higher id, hashes and all: the id is covered */
    snprintf(sql, sizeof(sql),
             "CREATE TEMP TABLE keep AS SELECT * FROM admin_audit WHERE id = %lld; " S_OFF
             "DELETE FROM admin_audit WHERE id = %lld; "
             "INSERT INTO admin_audit OVERRIDING SYSTEM VALUE SELECT id + 5, at, login, program, "
             "action, subject, detail, prev_hash, hash FROM keep; "
             "UPDATE admin_audit_head SET last_id = last_id + 5" S_ON,
             last, last);
    s_exec(f, sql);
    snprintf(want, sizeof(want), "audit chain broken at id %lld: ", last + 5);
    s_verify_broken(f, "moved", want, "does not match its hash");
    snprintf(sql, sizeof(sql),
             S_OFF "DELETE FROM admin_audit WHERE id = %lld; INSERT INTO admin_audit OVERRIDING "
                   "SYSTEM VALUE SELECT * FROM keep; UPDATE admin_audit_head SET last_id = "
                   "last_id - 5" S_ON "; DROP TABLE keep",
             last + 5);
    s_exec(f, sql);
    s_verify_intact(f);

    /* a middle row deleted: the row after it no longer chains from the
     * one before it */
    snprintf(want, sizeof(want), "audit chain broken at id %lld: ", last);
    snprintf(want2, sizeof(want2), "does not chain from id %lld, the row before it", before);
    s_delete_verify_restore(f, mid, "middle row deleted", want, want2);

    /* the last row deleted: the chain's recorded end is past the table */
    snprintf(want, sizeof(want), "audit chain broken after id %lld: ", mid);
    snprintf(want2, sizeof(want2), "recorded end is id %lld", last);
    s_delete_verify_restore(f, last, "last row deleted", want, want2);
}

typedef struct {
    fixture_t *f;
    const char *prefix;
    int count;
    int failed;
    volatile int done;
} s_worker_t;

/* Adds count mailboxes through ctl (three audit rows each, in one
 * transaction); no cmocka assertions off the main thread. */
static void *s_worker(void *arg)
{
    s_worker_t *w = arg;
    for (int i = 0; i < w->count; i++) {
        char id[48];
        snprintf(id, sizeof(id), "%s-%d", w->prefix, i);
        char *out = NULL, *err = NULL;
        if (s_ctl(w->f, S_ADMIN, &out, &err, "citizen", "add", id, NULL) != 0) {
            fprintf(stderr, "citizen add %s: %s\n", id, err ? err : "");
            w->failed++;
        }
        free(out);
        free(err);
    }
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* A change waits while another transaction holds the chain's lock, and
 * draws its id only after it: the other transaction's row, inserted while
 * the change waits, comes first, and the change chains after it (an id
 * drawn before the lock would be refused, 40001, or fork the chain).  A
 * burst from two sessions leaves one chain (no two rows with the same
 * prev_hash); it is the waiting above that catches a missing lock, the
 * burst's transactions rarely overlap. */
static void test_concurrent_changes_one_chain(void **state)
{
    fixture_t *f = *state;
    pf_env_session_t *s = pf_env_session_new(f->env);
    assert_non_null(s);
    assert_int_equal(pf_env_session_exec(s, "BEGIN; SELECT 1 FROM admin_audit_head FOR UPDATE"), 0);
    s_worker_t w = {.f = f, .prefix = "held-w", .count = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_worker, &w), 0);
    usleep(1500 * 1000);
    assert_int_equal(pf_env_session_exec(s, "INSERT INTO mailbox (id) VALUES ('held-1')"), 0);
    bool waited = !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST);
    assert_int_equal(pf_env_session_exec(s, "COMMIT"), 0);
    pthread_join(t, NULL);
    pf_env_session_destroy(&s);
    assert_int_equal(w.failed, 0);
    assert_true(waited);
    /* the waiting change's first row chains from the held row */
    assert_int_equal(pf_env_sql_int(f->env,
                                    "SELECT count(*) FROM admin_audit a JOIN admin_audit h ON "
                                    "a.prev_hash = h.hash WHERE h.subject = 'held-1' AND "
                                    "a.subject = 'held-w-0' AND a.id > h.id"),
                     1);
    s_verify_intact(f);

    s_worker_t w1 = {.f = f, .prefix = "burst-a", .count = 6};
    s_worker_t w2 = {.f = f, .prefix = "burst-b", .count = 6};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, s_worker, &w1), 0);
    assert_int_equal(pthread_create(&t2, NULL, s_worker, &w2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(w1.failed + w2.failed, 0);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit WHERE subject "
                                            "LIKE 'burst-%'"),
                     36);
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(*) - count(DISTINCT prev_hash) FROM "
                                            "admin_audit"),
                     0);
    s_verify_intact(f);
}

/* audit export --state: what a shipping timer runs.  Each run ships the rows
 * after the id in the file and then records the last one; lines link up
 * across runs; a broken state file is refused and left alone. */
static void test_ship_with_state(void **state)
{
    fixture_t *f = *state;
    char dir[] = "/tmp/pf-audit-ship-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], lockpath[80];
    snprintf(path, sizeof(path), "%s/last-id", dir);
    snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
    s_ctl_ok(f, S_ADMIN, "citizen", "add", "ship-c0", NULL);

    /* no state yet: everything, then the file names the last row */
    s_lines_t l;
    s_export(f, &l, "--state", path, NULL, NULL);
    long long all = pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit");
    long long max = pf_env_sql_int(f->env, "SELECT max(id) FROM admin_audit");
    assert_int_equal(l.n, all);
    char *text = NULL;
    size_t len = 0;
    const char *err = NULL;
    assert_int_equal(pf_file_read(path, 64, &text, &len, &err), 0);
    assert_int_equal(strtoll(text, NULL, 10), max);
    free(text);
    char last_hash[65];
    snprintf(last_hash, sizeof(last_hash), "%s", s_str(l.line[l.n - 1], "hash"));
    s_lines_clear(&l);

    /* nothing new: nothing shipped, the file as it was */
    s_export(f, &l, "--state", path, NULL, NULL);
    assert_int_equal(l.n, 0);
    assert_int_equal(pf_file_read(path, 64, &text, &len, &err), 0);
    assert_int_equal(strtoll(text, NULL, 10), max);
    free(text);

    /* two changes (three rows), shipped one row per run with --limit: each
     * run takes the next, and the first links to what was shipped before */
    s_ctl_ok(f, S_ADMIN, "sender", "add", "ship-agency", NULL);
    s_ctl_ok(f, S_ADMIN, "sender", "revoke", "ship-agency", NULL);
    long long want = pf_env_sql_int(f->env, "SELECT count(*) FROM admin_audit") - all;
    assert_true(want >= 2);
    char prev[65];
    snprintf(prev, sizeof(prev), "%s", last_hash);
    for (long long i = 0; i < want; i++) {
        s_export(f, &l, "--state", path, "--limit", "1");
        assert_int_equal(l.n, 1);
        assert_true(s_id(l.line[0]) > max);
        assert_string_equal(s_str(l.line[0], "prev_hash"), prev);
        snprintf(prev, sizeof(prev), "%s", s_str(l.line[0], "hash"));
        max = s_id(l.line[0]);
        s_lines_clear(&l);
    }
    s_export(f, &l, "--state", path, NULL, NULL);
    assert_int_equal(l.n, 0);

    /* a state file that holds no id: refused, left as it is */
    assert_int_equal(pf_file_write(path, "abc\n", 4, 0600, &err), 0);
    char *out = NULL, *errtext = NULL;
    const char *const bad[6] = {"audit", "export", "--state", path, NULL, NULL};
    assert_int_not_equal(s_ctl6(f, S_AUDITOR, &out, &errtext, bad), 0);
    assert_non_null(strstr(errtext, "holds no audit id"));
    assert_string_equal(out, "");
    free(out);
    free(errtext);
    assert_int_equal(pf_file_read(path, 64, &text, &len, &err), 0);
    assert_string_equal(text, "abc\n");
    free(text);
    /* --after and --state together are a usage error */
    const char *const both[6] = {"audit", "export", "--state", path, "--after", "1"};
    out = errtext = NULL;
    assert_int_equal(s_ctl6(f, S_AUDITOR, &out, &errtext, both), 2);
    free(out);
    free(errtext);
    unlink(path);
    unlink(lockpath);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_lines),
        cmocka_unit_test(test_ship_with_state),
        cmocka_unit_test(test_who_reads),
        cmocka_unit_test(test_tampering_shows),
        cmocka_unit_test(test_concurrent_changes_one_chain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
