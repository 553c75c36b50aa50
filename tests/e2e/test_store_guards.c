/* Guards inside lib/store that do not rely on its callers, against a real
 * PostgreSQL through the lib/store API.
 *
 * 1. A group commit that holds one (sender, request id) more than once
 *    stores one submission and one set of copies and receipts, from the
 *    first entry; the later entries come back PF_SUBMIT_EXISTS with the
 *    first one's ACK (existing_same by their payload hash), on the
 *    synchronous path and on a commit connection (prepared statement). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store/store.h"
#include "store/submit.h"
#include "util/uuid7.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", NULL};

/* The environment and the store live in the fixture, so a failed
 * assertion (cmocka jumps out of the test) still releases them. */
typedef struct {
    pf_env_t *env;
    pf_store_t *st;
    pf_store_committer_t *com;
} fixture_t;

static int s_setup(void **state)
{
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    pf_store_committer_destroy(&f->com);
    pf_store_destroy(&f->st);
    return pf_fixture_end(f->env, NULL, f);
}

static void s_open(fixture_t *f, const char *name)
{
    f->env = pf_env_new(name, s_citizens);
    assert_non_null(f->env);
    const char *err = NULL;
    if (pf_store_open(pf_env_conninfo(f->env), &f->st, &err) != 0)
        fail_msg("store open: %s", err);
}

/* ---- 1. a request id twice in one batch ----------------------------------------------- */

#define S_MAX_COPIES 2

typedef struct {
    pf_submit_t sub;
    pf_submit_copy_t copies[S_MAX_COPIES];
    unsigned char hash[32];
    char ack[64];
} s_entry_t;

static const unsigned char s_bytes[4] = {1, 2, 3, 4};

/* One submission of sender_id with request id rid, payload hash made of
 * the byte `payload`, and one copy per mailbox in mbs (NULL-terminated),
 * each with fresh message and receipt ids. */
static void s_entry(s_entry_t *e, int64_t sender_id, const char *rid, unsigned char payload,
                    const char *const *mbs, const char *ack)
{
    memset(e, 0, sizeof(*e));
    memset(e->hash, payload, sizeof(e->hash));
    snprintf(e->ack, sizeof(e->ack), "%s", ack);
    size_t n = 0;
    for (; mbs[n] != NULL; n++) {
        assert_true(n < S_MAX_COPIES);
        pf_submit_copy_t *c = &e->copies[n];
        c->mailbox_id = mbs[n];
        pf_uuid7_generate(c->message_id);
        c->key_version = 1;
        c->size = 4;
        c->jwe_protected = "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9";
        c->encrypted_key = s_bytes;
        c->encrypted_key_len = sizeof(s_bytes);
        c->iv = s_bytes;
        c->iv_len = sizeof(s_bytes);
        c->ciphertext = s_bytes;
        c->ciphertext_len = sizeof(s_bytes);
        c->tag = s_bytes;
        c->tag_len = sizeof(s_bytes);
        pf_uuid7_generate(c->receipt_jti);
        c->receipt_token = "token";
    }
    e->sub = (pf_submit_t){.sender_id = sender_id,
                           .request_id = rid,
                           .payload_hash = e->hash,
                           .ack_json = e->ack,
                           .title = "Bescheid",
                           .level = 1,
                           .attachment_count = 0,
                           .created_ms = pf_test_now_ms(),
                           /* the broker's direct receipts: the batch
                            * inserts their delivery rows itself */
                           .receipt_hold_seconds = 30,
                           .copies = e->copies,
                           .copy_count = n};
}

typedef int s_commit_fn(fixture_t *f, pf_submit_t *subs, size_t n, const char **error_r);

static int s_commit_sync(fixture_t *f, pf_submit_t *subs, size_t n, const char **error_r)
{
    return pf_store_submit_batch(f->st, subs, n, error_r);
}

/* The broker's way: a commit connection of its own, the prepared
 * statement, results polled. */
static int s_commit_async(fixture_t *f, pf_submit_t *subs, size_t n, const char **error_r)
{
    if (f->com == NULL && pf_store_committer_new(pf_env_conninfo(f->env), &f->com, error_r) != 0)
        return -1;
    if (pf_store_committer_send(f->com, subs, n, error_r) != 0)
        return -1;
    for (int i = 0; i < 1000; i++) {
        int rc = pf_store_committer_poll(f->com, error_r);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        struct pollfd pfd = {.fd = pf_store_committer_socket(f->com), .events = POLLIN};
        poll(&pfd, 1, 100);
    }
    *error_r = "no result within 100 s";
    return -1;
}

static void s_commit(fixture_t *f, s_commit_fn *commit, s_entry_t *e, size_t n)
{
    pf_submit_t subs[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        subs[i] = e[i].sub;
    const char *err = NULL;
    if (commit(f, subs, n, &err) != 0)
        fail_msg("batch: %s", err);
    for (size_t i = 0; i < n; i++)
        e[i].sub = subs[i]; /* the outcome and existing_* */
}

static void s_entries_clear(s_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].sub.existing_ack);
        e[i].sub.existing_ack = NULL;
    }
}

static long long s_count(pf_env_t *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static long long s_count(pf_env_t *env, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return pf_env_sql_int(env, sql);
}

/* Whether the copies (message rows, receipt and delivery rows) of e are
 * stored: 1 all of them, 0 none, -1 some. */
static int s_copies_stored(pf_env_t *env, const s_entry_t *e)
{
    size_t have = 0;
    for (size_t c = 0; c < e->sub.copy_count; c++) {
        const pf_submit_copy_t *cp = &e->copies[c];
        long long m =
            s_count(env, "SELECT count(*) FROM message WHERE mailbox_id = '%s' AND id = '%s'",
                    cp->mailbox_id, cp->message_id);
        long long r =
            s_count(env, "SELECT count(*) FROM receipt WHERE jti = '%s' AND message_id = '%s'",
                    cp->receipt_jti, cp->message_id);
        long long d =
            s_count(env, "SELECT count(*) FROM receipt_delivery WHERE jti = '%s'", cp->receipt_jti);
        if (m != r || m != d)
            return -1;
        have += (size_t)m;
    }
    return have == 0 ? 0 : have == e->sub.copy_count ? 1 : -1;
}

static void s_duplicates_in_one_batch(fixture_t *f, s_commit_fn *commit)
{
    int64_t sid = pf_env_sql_int(f->env, "SELECT id FROM sender WHERE name = 'tax-office'");
    assert_true(sid > 0);
    static const char *const both[] = {"citizen-a", "citizen-b", NULL};
    static const char *const one[] = {"citizen-a", NULL};

    /* a new request id three times (the second a true repeat, the third
     * with other content) beside another one */
    s_entry_t e[4];
    s_entry(&e[0], sid, "dup-1", 0x11, both, "{\"ack\":\"first\"}");
    s_entry(&e[1], sid, "solo-1", 0x22, one, "{\"ack\":\"solo\"}");
    s_entry(&e[2], sid, "dup-1", 0x11, both, "{\"ack\":\"second\"}");
    s_entry(&e[3], sid, "dup-1", 0x33, one, "{\"ack\":\"third\"}");
    s_commit(f, commit, e, 4);

    assert_int_equal(e[0].sub.outcome, PF_SUBMIT_STORED);
    assert_int_equal(e[1].sub.outcome, PF_SUBMIT_STORED);
    /* the repeats: answered as if they had come later, from the stored
     * first one */
    assert_int_equal(e[2].sub.outcome, PF_SUBMIT_EXISTS);
    assert_non_null(e[2].sub.existing_ack);
    assert_string_equal(e[2].sub.existing_ack, "{\"ack\":\"first\"}");
    assert_true(e[2].sub.existing_same);
    assert_int_equal(e[3].sub.outcome, PF_SUBMIT_EXISTS);
    assert_non_null(e[3].sub.existing_ack);
    assert_string_equal(e[3].sub.existing_ack, "{\"ack\":\"first\"}");
    assert_false(e[3].sub.existing_same);
    /* one submission, one set of copies and receipts: the first entry's */
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission WHERE request_id = 'dup-1'"),
                     1);
    assert_int_equal(s_count(f->env,
                             "SELECT count(*) FROM submission WHERE request_id = 'dup-1' "
                             "AND ack = '{\"ack\":\"first\"}' AND payload_hash = "
                             "'\\x%s'::bytea",
                             "1111111111111111111111111111111111111111111111111111111111111111"),
                     1);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message WHERE request_id = 'dup-1'"), 2);
    assert_int_equal(s_copies_stored(f->env, &e[0]), 1);
    assert_int_equal(s_copies_stored(f->env, &e[1]), 1);
    assert_int_equal(s_copies_stored(f->env, &e[2]), 0);
    assert_int_equal(s_copies_stored(f->env, &e[3]), 0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 3);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt"), 3);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt_delivery"), 3);
    s_entries_clear(e, 4);

    /* a later batch: a stored request id twice (both repeats), a new one
     * twice with other content the second time */
    s_entry_t g[4];
    s_entry(&g[0], sid, "dup-1", 0x11, one, "{\"ack\":\"again\"}");
    s_entry(&g[1], sid, "dup-1", 0x11, both, "{\"ack\":\"again2\"}");
    s_entry(&g[2], sid, "new-2", 0x44, both, "{\"ack\":\"new\"}");
    s_entry(&g[3], sid, "new-2", 0x55, both, "{\"ack\":\"new-other\"}");
    s_commit(f, commit, g, 4);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g[i].sub.outcome, PF_SUBMIT_EXISTS);
        assert_string_equal(g[i].sub.existing_ack, "{\"ack\":\"first\"}");
        assert_true(g[i].sub.existing_same);
        assert_int_equal(s_copies_stored(f->env, &g[i]), 0);
    }
    assert_int_equal(g[2].sub.outcome, PF_SUBMIT_STORED);
    assert_int_equal(s_copies_stored(f->env, &g[2]), 1);
    assert_int_equal(g[3].sub.outcome, PF_SUBMIT_EXISTS);
    assert_string_equal(g[3].sub.existing_ack, "{\"ack\":\"new\"}");
    assert_false(g[3].sub.existing_same);
    assert_int_equal(s_copies_stored(f->env, &g[3]), 0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission"), 3);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 5);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt"), 5);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt_delivery"), 5);
    s_entries_clear(g, 4);
}

static void test_duplicate_request_id_sync(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_dup_sync");
    s_duplicates_in_one_batch(f, s_commit_sync);
}

static void test_duplicate_request_id_committer(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_dup_async");
    s_duplicates_in_one_batch(f, s_commit_async);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicate_request_id_sync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_request_id_committer, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
