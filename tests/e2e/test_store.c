/* The store against a real PostgreSQL: a statement prepared on a
 * connection keeps working when the server's copy goes stale (a migration
 * changes a result type) or away (DEALLOCATE), and after a reconnect; and
 * the schema gives the planner statistics only where its plans use them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "postfach/postfach.h"
#include "store/benchload.h"
#include "store/mailbox.h"
#include "store/relay.h"
#include "store/store.h"

/* test_concurrent_migrators' second migrator, run in a thread of its own */
typedef struct {
    const char *conninfo;
    char dir[600];
    pthread_t thread;
    bool running; /* started and not yet joined */
    int rc;
    int applied;
    char err[512];
} s_migrator_t;

/* The env lives in the fixture, and so do the test's client and store
 * and the migrator thread: a failed assertion (cmocka jumps out of the
 * test) still closes them, joins the thread and stops the broker in the
 * teardown. */
typedef struct {
    pf_env_t *env;
    pf_client_t *client;
    pf_store_t *st;
    s_migrator_t migrator;
} fixture_t;

static int s_setup(void **state)
{
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    /* closing the store lets a migrator still waiting for its lock finish */
    pf_store_destroy(&f->st);
    if (f->migrator.running)
        pthread_join(f->migrator.thread, NULL);
    return pf_fixture_end(f->env, &f->client, f);
}

static void s_version_is(pf_store_t *st, int want)
{
    int v = -1;
    const char *err = NULL;
    int rc = pf_store_schema_version(st, &v, &err);
    if (rc != 0)
        fail_msg("schema version: %s", err);
    assert_int_equal(v, want);
}

static void test_prepared_statements_recover(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {NULL};
    pf_env_t *env = f->env = pf_env_new("store_prepared", citizens);
    assert_non_null(env);
    int want = (int)pf_env_sql_int(env, "SELECT max(version) FROM schema_migration");
    assert_true(want > 0);

    const char *err = NULL;
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &f->st, &err), 0);
    s_version_is(f->st, want); /* prepares */
    s_version_is(f->st, want); /* runs the prepared statement */

    /* a migration changes the type the statement returns: the server
     * refuses the old plan (0A000); the store forgets it and answers */
    char sqlstate[6];
    assert_int_equal(pf_env_sql_state(env,
                                      "ALTER TABLE schema_migration ALTER COLUMN version "
                                      "TYPE bigint",
                                      sqlstate),
                     0);
    s_version_is(f->st, want);
    s_version_is(f->st, want);

    /* the server's prepared statements are dropped behind the store's back */
    assert_int_equal(pf_store_exec(f->st, "DEALLOCATE ALL", &err), 0);
    s_version_is(f->st, want); /* run as text */
    s_version_is(f->st, want); /* prepared again */

    /* the same inside a transaction: that transaction fails, the next
     * call prepares afresh */
    assert_int_equal(pf_store_exec(f->st, "DEALLOCATE ALL", &err), 0);
    assert_int_equal(pf_store_exec(f->st, "BEGIN", &err), 0);
    int v = -1;
    assert_int_equal(pf_store_schema_version(f->st, &v, &err), -1);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(pf_store_exec(f->st, "ROLLBACK", &err), 0);
    s_version_is(f->st, want);

    /* a reset connection has none of them */
    assert_int_equal(pf_store_reconnect(f->st, &err), 0);
    s_version_is(f->st, want);
    s_version_is(f->st, want);

    pf_store_destroy(&f->st);
}

#define S_COPY_INSERT(mailbox, id)                                                                 \
    "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, read_receipt, size, "      \
    "key_version, jwe_protected, jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) "             \
    "SELECT '" mailbox "', '" id "', min(id), 'r-" id "', 'T', false, 1, 1, 'h', '\\x00', "        \
    "'\\x00', '\\x00', '\\x00' FROM sender"

/* sql/0015: a copy's mailbox is checked without locking the mailbox row,
 * and the rule that makes that safe (mailboxes are never deleted or
 * renamed, a copy never moves) holds */
static void test_mailbox_check_without_lock(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    pf_env_t *env = f->env = pf_env_new("store_mailbox", citizens);
    assert_non_null(env);
    char st[6];
    /* a copy for a mailbox that does not exist is refused as before */
    assert_int_equal(
        pf_env_sql_state(env, S_COPY_INSERT("nobody", "018f0000-0000-7000-8000-000000000001"), st),
        -1);
    assert_string_equal(st, "23503");
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message"), 0);
    /* one that does is stored, and its mailbox row is not locked (xmax) */
    long long xmax0 = pf_env_sql_int(env, "SELECT xmax::text::bigint FROM mailbox "
                                          "WHERE id = 'citizen-a'");
    assert_int_equal(
        pf_env_sql_state(env, S_COPY_INSERT("citizen-a", "018f0000-0000-7000-8000-000000000002"),
                         st),
        0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message"), 1);
    assert_int_equal(pf_env_sql_int(env, "SELECT xmax::text::bigint FROM mailbox "
                                         "WHERE id = 'citizen-a'"),
                     xmax0);
    /* many copies in one statement, one of them for no mailbox: none stored */
    assert_int_equal(pf_env_sql_state(env,
                                      "INSERT INTO message (mailbox_id, id, sender_id, request_id, "
                                      "title, read_receipt, size, key_version, jwe_protected, "
                                      "jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) "
                                      "SELECT mb, gen_random_uuid(), (SELECT min(id) FROM sender), "
                                      "'many', 'T', false, 1, 1, 'h', '\\x00', '\\x00', "
                                      "'\\x00', '\\x00' FROM unnest(ARRAY['citizen-a', "
                                      "'citizen-b', 'nobody', 'citizen-a']) AS mb",
                                      st),
                     -1);
    assert_string_equal(st, "23503");
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message"), 1);
    /* the rule: mailboxes are closed, never deleted or renamed */
    assert_int_equal(pf_env_sql_state(env, "DELETE FROM mailbox WHERE id = 'citizen-b'", st), -1);
    assert_string_equal(st, "23001");
    assert_int_equal(pf_env_sql_state(env, "TRUNCATE mailbox CASCADE", st), -1);
    assert_string_equal(st, "23001");
    assert_int_equal(
        pf_env_sql_state(env, "UPDATE mailbox SET id = 'citizen-z' WHERE id = 'citizen-a'", st),
        -1);
    assert_string_equal(st, "23001");
    assert_int_equal(
        pf_env_sql_state(env, "UPDATE mailbox SET status = 'closed' WHERE id = 'citizen-b'", st),
        0);
    /* a copy stays in its mailbox; its other columns change as before */
    assert_int_equal(pf_env_sql_state(env, "UPDATE message SET mailbox_id = 'citizen-b'", st), -1);
    assert_string_equal(st, "23001");
    assert_int_equal(pf_env_sql_state(env, "UPDATE message SET read_at = now()", st), 0);
    /* and no BEFORE ROW UPDATE trigger on message: any such trigger, even
     * one whose column list keeps it from running, makes every update lock
     * the row first (sql/0016); tgtype bits: 1 row, 2 before, 16 update */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                                         "'message'::regclass AND NOT tgisinternal "
                                         "AND tgtype & 19 = 19"),
                     0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox"), 2);
    assert_int_equal(
        pf_env_sql_int(env, "SELECT count(*) FROM message WHERE mailbox_id = 'citizen-a'"), 1);
}

/* sql/0014: ANALYZE leaves out the columns no query filters on, keeps the
 * ones the plans need, and the store's lookups stay index scans */
static void test_statistics_only_where_plans_use_them(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    pf_env_t *env = f->env = pf_env_new("store_statistics", citizens);
    assert_non_null(env);
    char sqlstate[6];
    assert_int_equal(
        pf_env_sql_state(env,
                         "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, "
                         "read_receipt, size, key_version, jwe_protected, jwe_encrypted_key, "
                         "jwe_iv, jwe_ciphertext, jwe_tag) "
                         "SELECT CASE WHEN i % 2 = 0 THEN 'citizen-a' ELSE 'citizen-b' END, "
                         "gen_random_uuid(), s.id, 'r' || i, 'Bescheid ' || i, true, 2048, 1, "
                         "repeat('h', 300), '\\x00', '\\x00', "
                         "decode(repeat('ab', 2048), 'hex'), '\\x00' "
                         "FROM generate_series(1, 2000) AS i, sender s",
                         sqlstate),
        0);
    assert_int_equal(pf_env_sql_state(env, "ANALYZE message", sqlstate), 0);
    /* the wide columns have no statistics, the keys of the plans have */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM pg_stats WHERE tablename = "
                                         "'message' AND attname IN ('title', 'reference', "
                                         "'request_id', 'jwe_protected', 'jwe_encrypted_key', "
                                         "'jwe_iv', 'jwe_ciphertext', 'jwe_tag')"),
                     0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM pg_stats WHERE tablename = "
                                         "'message' AND attname IN ('mailbox_id', 'id', "
                                         "'created_at', 'read_at', 'expiry_checked')"),
                     5);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM pg_attribute WHERE attstattarget "
                                         "= 0 AND attrelid IN ('receipt'::regclass, "
                                         "'submission'::regclass) AND attname IN ('token', "
                                         "'ack', 'payload_hash')"),
                     3);
    /* a copy opened and a page listed: both through message_pkey */
    char *open = pf_env_sql(env, "EXPLAIN (FORMAT JSON) SELECT m.title, m.jwe_ciphertext "
                                 "FROM message m JOIN sender s ON s.id = m.sender_id "
                                 "WHERE m.mailbox_id = 'citizen-a' "
                                 "AND m.id = '00000000-0000-7000-8000-000000000000'");
    char *list = pf_env_sql(env, "EXPLAIN (FORMAT JSON) SELECT m.title, m.reference "
                                 "FROM message m JOIN sender s ON s.id = m.sender_id "
                                 "WHERE m.mailbox_id = 'citizen-a' ORDER BY m.id DESC LIMIT 50");
    assert_non_null(open);
    assert_non_null(list);
    if (strstr(open, "message_pkey") == NULL || strstr(list, "message_pkey") == NULL)
        fail_msg("plans without the primary key:\n%s\n%s", open, list);
    free(open);
    free(list);
}

/* the bench's mailboxes: n at a time, the same rows as one at a time
 * (key version 1, the wrapped key where there is one), and all or none */
/* sql/0022: the mailbox check probes the mailbox primary key once per
 * inserted copy; it never reads the whole mailbox table, however many
 * copies a statement inserts.  Each size is planned anew (DISCARD PLANS:
 * the function keeps its plan otherwise), and the transaction's own table
 * counts show the scans before anything is reported.  0015's NOT EXISTS
 * fails here: for one of these sizes its plan is a hash anti-join over a
 * full scan of the mailbox table. */
static void test_mailbox_check_probes_by_key(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    pf_env_t *env = f->env = pf_env_new("store_mailbox_probe", citizens);
    assert_non_null(env);
    free(pf_env_sql(env, "INSERT INTO mailbox (id) SELECT 'bulk-' || g "
                         "FROM generate_series(1, 5000) AS g RETURNING NULL"));
    free(pf_env_sql(env, "ANALYZE mailbox; SELECT 1"));
    static const int sizes[] = {1, 8, 20, 50, 100, 200, 1000};
    long long stored = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "DISCARD PLANS; "
                 "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, "
                 "read_receipt, size, key_version, jwe_protected, jwe_encrypted_key, jwe_iv, "
                 "jwe_ciphertext, jwe_tag) SELECT 'bulk-' || (g * 17 %% 5000 + 1), "
                 "gen_random_uuid(), (SELECT min(id) FROM sender), 'probe-%d-' || g, 'T', false, "
                 "1, 1, 'h', '\\x00', '\\x00', '\\x00', '\\x00' "
                 "FROM generate_series(1, %d) AS g; "
                 "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'mailbox'",
                 sizes[i], sizes[i]);
        long long scans = pf_env_sql_int(env, sql);
        if (scans != 0)
            fprintf(stderr, "%d copies in one statement: %lld scans of the mailbox table\n",
                    sizes[i], scans);
        assert_int_equal(scans, 0);
        stored += sizes[i];
    }
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message"), stored);
}

static void test_bench_mailboxes_add(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", NULL};
    pf_env_t *env = f->env = pf_env_new("store_benchmb", citizens);
    assert_non_null(env);
    const char *err = NULL;
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &f->st, &err), 0);
    static const unsigned char wrapped[] = {0x00, 0x01, 0xfe, 0xff, 0x5c, 0x09};
    pf_bench_mailbox_row_t rows[3] = {
        {"b-0", "kid0", "ECDH-ES+A256KW", "{\"kty\":\"EC\"}", "kek1", wrapped, sizeof(wrapped)},
        {"b-1", "kid1", "RSA-OAEP-256", "{\"kty\":\"RSA\"}", "kek1", wrapped, 3},
        {"b-2", "kid2", "ECDH-ES+A256KW", "{\"kty\":\"EC\"}", NULL, NULL, 0},
    };
    assert_int_equal(pf_store_bench_mailboxes_add(f->st, rows, 3, &err), 0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox WHERE id LIKE 'b-%' "
                                         "AND status = 'open'"),
                     3);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key WHERE "
                                         "mailbox_id LIKE 'b-%' AND version = 1"),
                     3);
    char *v = pf_env_sql(env, "SELECT alg || ' ' || kid || ' ' || public_jwk FROM mailbox_key "
                              "WHERE mailbox_id = 'b-1'");
    assert_string_equal(v, "RSA-OAEP-256 kid1 {\"kty\":\"RSA\"}");
    free(v);
    /* bytes that text COPY would have to escape arrive unchanged */
    v = pf_env_sql(env, "SELECT kek_id || ' ' || encode(wrapped_key, 'hex') FROM mailbox_secret "
                        "WHERE mailbox_id = 'b-0' AND version = 1");
    assert_string_equal(v, "kek1 0001feff5c09");
    free(v);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret "
                                         "WHERE mailbox_id LIKE 'b-%'"),
                     2);
    /* a batch with one mailbox that exists already: none of it is made */
    pf_bench_mailbox_row_t again[2] = {
        {"b-3", "kid3", "ECDH-ES+A256KW", "{}", "kek1", wrapped, 2},
        {"citizen-a", "kid4", "ECDH-ES+A256KW", "{}", "kek1", wrapped, 2},
    };
    assert_int_equal(pf_store_bench_mailboxes_add(f->st, again, 2, &err), -1);
    assert_non_null(strstr(err, "copy failed"));
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox WHERE id = 'b-3'"), 0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key "
                                         "WHERE mailbox_id = 'b-3'"),
                     0);
    /* and the connection is usable afterwards */
    pf_bench_mailbox_row_t last[1] = {{"b-3", "kid3", "ECDH-ES+A256KW", "{}", "kek1", wrapped, 2}};
    assert_int_equal(pf_store_bench_mailboxes_add(f->st, last, 1, &err), 0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret "
                                         "WHERE mailbox_id = 'b-3'"),
                     1);
    pf_store_destroy(&f->st);
}

/* a RACK marks the sender's own receipts, keeps the time of an earlier
 * acknowledgement, and leaves other senders' receipts alone; several
 * senders' RACKs in one call count for each sender apart */
static void test_relay_ack(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {NULL};
    pf_env_t *env = f->env = pf_env_new("store_relayack", citizens);
    assert_non_null(env);
    free(pf_env_sql(env, "INSERT INTO receipt_delivery (jti, sender_id) VALUES "
                         "('018f0000-0000-7000-8000-0000000000a1', 1), "
                         "('018f0000-0000-7000-8000-0000000000a2', 1), "
                         "('018f0000-0000-7000-8000-0000000000b1', 2) RETURNING 1"));
    free(pf_env_sql(env, "UPDATE receipt_delivery SET acked_at = '2026-01-01 00:00:00+00' "
                         "WHERE jti = '018f0000-0000-7000-8000-0000000000a2' RETURNING 1"));
    const char *err = NULL;
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &f->st, &err), 0);
    const char *jtis[] = {
        "018f0000-0000-7000-8000-0000000000a1", "018f0000-0000-7000-8000-0000000000a2",
        "018f0000-0000-7000-8000-0000000000b1", "018f0000-0000-7000-8000-0000000000ff"};
    const int64_t sids[] = {1, 1, 1, 1};
    assert_int_equal(pf_store_relay_ack(f->st, sids, jtis, 4, NULL, NULL, &err), 2);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE "
                                         "sender_id = 1 AND acked_at IS NOT NULL"),
                     2);
    /* the earlier acknowledgement keeps its time */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE "
                                         "acked_at = '2026-01-01 00:00:00+00'"),
                     1);
    /* sender 2's receipt was named by sender 1: untouched */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE "
                                         "sender_id = 2 AND acked_at IS NULL"),
                     1);
    /* two senders' RACKs in one call: each counted for its own sender */
    const int64_t both_sids[] = {2, 1, 2};
    const char *both[] = {"018f0000-0000-7000-8000-0000000000b1",
                          "018f0000-0000-7000-8000-0000000000a1",
                          "018f0000-0000-7000-8000-0000000000a2"};
    pf_relay_acked_t *acked = NULL;
    size_t nacked = 0;
    assert_int_equal(pf_store_relay_ack(f->st, both_sids, both, 3, &acked, &nacked, &err), 2);
    assert_int_equal(nacked, 2);
    for (size_t i = 0; i < nacked; i++) {
        assert_true(acked[i].sender_id == 1 || acked[i].sender_id == 2);
        assert_int_equal(acked[i].count, 1);
    }
    assert_true(acked[0].sender_id != acked[1].sender_id);
    free(acked);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE "
                                         "acked_at IS NULL"),
                     0);
    pf_store_destroy(&f->st);
}

/* Sessions are named after the program and their role, in
 * pg_stat_activity, and keep the name over a reconnect. */
static void test_session_names(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {NULL};
    pf_env_t *env = f->env = pf_env_new("store_names", citizens);
    assert_non_null(env);
    const char *err = NULL;
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &f->st, &err), 0);
#define S_NAMED                                                                                    \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "                    \
    "AND application_name = '%s'"
    char sql[256];
    snprintf(sql, sizeof(sql), S_NAMED, "test_store");
    assert_int_equal(pf_env_sql_int(env, sql), 1);
    pf_store_destroy(&f->st);
    /* characters that would need quoting become '_' */
    assert_int_equal(pf_store_open_as(pf_env_conninfo(env), "com'mit x", &f->st, &err), 0);
    snprintf(sql, sizeof(sql), S_NAMED, "test_store/com_mit_x");
    assert_int_equal(pf_env_sql_int(env, sql), 1);
    free(pf_env_sql(env, "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity "
                         "WHERE application_name = 'test_store/com_mit_x'"));
    for (int i = 0; i < 50 && !pf_store_broken(f->st); i++)
        usleep(20000);
    assert_true(pf_store_broken(f->st));
    assert_int_equal(pf_store_reconnect(f->st, &err), 0);
    assert_int_equal(pf_env_sql_int(env, sql), 1);
    pf_store_destroy(&f->st);
}

static void *s_migrate_thread(void *arg)
{
    s_migrator_t *m = arg;
    pf_store_t *st = NULL;
    const char *err = NULL;
    m->rc = pf_store_open(m->conninfo, &st, &err);
    if (m->rc == 0)
        m->rc = pf_store_migrate(st, m->dir, &m->applied, &err);
    if (m->rc != 0)
        snprintf(m->err, sizeof(m->err), "%s", err ? err : "?");
    pf_store_destroy(&st);
    return NULL;
}

/* Two migrators at once: the one that waits for the migration lock sees
 * what the other committed meanwhile and applies nothing twice.  (Its
 * check ran in the statement that took the lock, on a snapshot from
 * before the wait: it ran the file again and failed with "already
 * exists".) */
static void test_concurrent_migrators(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {NULL};
    pf_env_t *env = f->env = pf_env_new("store_migrators", citizens);
    assert_non_null(env);
    s_migrator_t *m = &f->migrator;
    char file[700];
    snprintf(m->dir, sizeof(m->dir), "%s/sql-probe", pf_env_dir(env));
    assert_int_equal(mkdir(m->dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/0999_probe.sql", m->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs("CREATE TABLE probe_0999 (x integer);\n", fp);
    fclose(fp);

    /* the first migrator, by hand (f->st): holds the lock, applies 0999 */
    const char *err = NULL;
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &f->st, &err), 0);
    assert_int_equal(pf_store_exec(f->st,
                                   "BEGIN; SELECT pg_advisory_xact_lock(7041); "
                                   "CREATE TABLE probe_0999 (x integer); "
                                   "INSERT INTO schema_migration (version, name) "
                                   "VALUES (999, '0999_probe.sql')",
                                   &err),
                     0);
    m->conninfo = pf_env_conninfo(env);
    assert_int_equal(pthread_create(&m->thread, NULL, s_migrate_thread, m), 0);
    m->running = true;
    long long waiting = 0;
    for (int i = 0; i < 250 && waiting == 0; i++) {
        usleep(20000);
        waiting = pf_env_sql_int(env, "SELECT count(*) FROM pg_locks WHERE locktype = "
                                      "'advisory' AND NOT granted");
    }
    assert_int_equal(waiting, 1);
    assert_int_equal(pf_store_exec(f->st, "COMMIT", &err), 0);
    m->running = false;
    assert_int_equal(pthread_join(m->thread, NULL), 0);
    if (m->rc != 0)
        fail_msg("second migrator: %s", m->err);
    assert_int_equal(m->applied, 0);
    pf_store_destroy(&f->st);
}

static bool s_expired(void *arg)
{
    return pf_env_sql_int(arg, "SELECT count(*) FROM receipt WHERE event = 'expired'") == 1;
}

/* A first retrieval whose read time was taken inside the period, arriving
 * after the expiry decided the copy unread: it sets nothing and gets the
 * database's clock to sign with instead, so that no copy has both an
 * "expired" receipt and a stored read time (and "read" receipt) inside
 * the period.  (The reader's time stood, contradicting the receipt.) */
static void test_read_after_expiry_decision(void **state)
{
    fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", NULL};
    pf_env_t *env = f->env = pf_env_new("store_late_read", citizens);
    assert_non_null(env);
    static const char *const settings[] = {"expire_after_seconds=2", "expire_poll_ms=100", NULL};
    assert_int_equal(pf_env_start_broker(env, settings), 0);
    f->client = pf_env_client(env, "tax-office", NULL, 5000, 2);
    assert_non_null(f->client);
    const char *to[] = {"citizen-a"};
    pf_client_notice_t n = {.request_id = "late-read",
                            .recipients = to,
                            .recipient_count = 1,
                            .title = "Bescheid",
                            .subject = "Betreff",
                            .body = "Text",
                            .read_receipt = true};
    pf_client_result_t res;
    const char *err = NULL;
    assert_int_equal(pf_client_send(f->client, &n, &res, &err), 0);
    assert_int_equal(res.ok, 1);
    assert_true(pf_test_wait(s_expired, env, 30000));
    long long created = pf_env_sql_int(env, "SELECT floor(extract(epoch FROM created_at) * "
                                            "1000)::bigint FROM message");
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &f->st, &err), 0);
    char *read_at = NULL;
    int64_t read_ms = 0;
    /* taken a second into the two-second period */
    assert_int_equal(pf_store_message_record_read(f->st, "citizen-a", res.copies[0].message_id,
                                                  created + 1000, false, NULL, NULL, &read_at,
                                                  &read_ms, &err),
                     2);
    assert_null(read_at);
    assert_true(read_ms >= created + 2000);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message WHERE read_at IS NULL"), 1);
    assert_int_equal(pf_store_message_record_read(f->st, "citizen-a", res.copies[0].message_id,
                                                  read_ms, true, NULL, NULL, &read_at, &read_ms,
                                                  &err),
                     1);
    assert_non_null(read_at);
    free(read_at);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message WHERE read_at >= "
                                         "created_at + interval '2 seconds'"),
                     1);
    pf_store_destroy(&f->st);
    pf_client_result_clear(&res);
    pf_client_destroy(&f->client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prepared_statements_recover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_statistics_only_where_plans_use_them, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_check_without_lock, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_check_probes_by_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bench_mailboxes_add, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_relay_ack, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_session_names, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migrators, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_read_after_expiry_decision, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
