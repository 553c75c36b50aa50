/* Guards inside lib/store that do not rely on its callers, against a real
 * PostgreSQL through the lib/store API.
 *
 * 1. A group commit that holds one (sender, request id) more than once
 *    stores one submission and one set of copies and receipts, from the
 *    first entry; the later entries come back PF_SUBMIT_EXISTS with the
 *    first one's ACK (existing_same by their payload hash), on the
 *    synchronous path and on a commit connection (prepared statement).
 * 2. A claim of due receipts takes at most its overall cap however many
 *    senders have some; with at most cap senders every one of them gets
 *    some in the first claim; with more, the claims take turns round the
 *    senders; repeated claims hand out every row exactly once; the
 *    per-sender limit still holds; rows locked by another session are
 *    skipped without waiting, and claimed once the lock is gone.
 * 3. A receipt claimed again and again waits twice as long each time, up
 *    to the maximum; a replay makes at most its limit of a sender's
 *    receipts due, those due first. */
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
#include "store/relay.h"
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
    pf_env_session_t *other; /* another session holding locks */
} fixture_t;

static int s_setup(void **state)
{
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    pf_env_session_destroy(&f->other);
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

static void s_sql_ok(pf_env_t *env, const char *sql)
{
    char state[6];
    if (pf_env_sql_state(env, sql, state) != 0)
        fail_msg("sql failed (%s): %s", state, sql);
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

/* ---- 2. the relay's claim ----------------------------------------------------------- */

#define S_SENDERS 40

typedef struct {
    int64_t ids[S_SENDERS + 1];
    size_t n;
} s_ids_t;

static void s_id_row(void *arg, int ncols, const char *const *v)
{
    s_ids_t *ids = arg;
    assert_int_equal(ncols, 1);
    assert_true(ids->n < S_SENDERS + 1);
    ids->ids[ids->n++] = strtoll(v[0], NULL, 10);
}

/* S_SENDERS senders "g-1" ... and, after them, "outsider" (not listed in
 * any claim); each gets `per` due receipts ("g-1" big ones), all due at
 * the same time and with jtis in sender order (ties broken by jti alone
 * would serve the lowest senders first).  Returns their ids in *ids, the
 * outsider's last. */
static void s_receipts(pf_env_t *env, int per, int big, s_ids_t *ids)
{
    s_sql_ok(env, "INSERT INTO sender (name, curve_key) SELECT 'g-' || i, lpad(i::text, 40, 'k') "
                  "FROM generate_series(1, 40) i");
    s_sql_ok(env, "INSERT INTO sender (name, curve_key) VALUES ('outsider', lpad('', 40, 'o'))");
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
             "SELECT j, s.id, 'citizen-a', j, 'delivered', 'token-' || j FROM sender s "
             "CROSS JOIN LATERAL generate_series(1, CASE s.name WHEN 'g-1' THEN %d ELSE %d END) k "
             "CROSS JOIN LATERAL (SELECT format('018f0000-0000-7000-8000-%%s', "
             "lpad(to_hex(s.id * 1000 + k), 12, '0'))::uuid AS j) u "
             "WHERE s.name LIKE 'g-%%' OR s.name = 'outsider'",
             big, per);
    s_sql_ok(env, sql);
    ids->n = 0;
    assert_int_equal(pf_env_sql_rows(env,
                                     "SELECT s.id::text FROM sender s WHERE s.name LIKE 'g-%' "
                                     "ORDER BY s.id",
                                     s_id_row, ids),
                     S_SENDERS);
    assert_int_equal(
        pf_env_sql_rows(env, "SELECT id::text FROM sender WHERE name = 'outsider'", s_id_row, ids),
        1);
}

static size_t s_sender_index(const s_ids_t *ids, int64_t sid)
{
    for (size_t i = 0; i < S_SENDERS; i++)
        if (ids->ids[i] == sid)
            return i;
    fail_msg("claimed a receipt of sender %lld, which was not listed", (long long)sid);
    return 0;
}

/* Every jti handed out, to find one handed out twice. */
typedef struct {
    char (*jti)[37];
    size_t n, cap;
} s_seen_t;

static void s_seen_add(s_seen_t *s, const char *jti)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->jti[i], jti) == 0)
            fail_msg("receipt %s claimed twice", jti);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->jti = realloc(s->jti, s->cap * sizeof(*s->jti));
        assert_non_null(s->jti);
    }
    snprintf(s->jti[s->n++], sizeof(s->jti[0]), "%s", jti);
}

/* One claim of the listed senders: its rows go into seen, per-sender
 * counts into got (S_SENDERS entries); returns the row count.  The claim
 * must report skipped rows passed over (another session's locks). */
static size_t s_claim_skipping(fixture_t *f, const s_ids_t *ids, int limit, int cap, int64_t *after,
                               s_seen_t *seen, int *got, size_t skipped)
{
    pf_relay_receipt_t *rows = NULL;
    size_t n = 0, passed = 99;
    const char *err = NULL;
    if (pf_store_relay_claim(f->st, ids->ids, S_SENDERS, limit, cap, 3600, 3600, after, &rows, &n,
                             &passed, &err) != 0)
        fail_msg("claim: %s", err);
    if (passed != skipped)
        fail_msg("claim passed over %zu rows, want %zu", passed, skipped);
    memset(got, 0, S_SENDERS * sizeof(*got));
    for (size_t i = 0; i < n; i++) {
        got[s_sender_index(ids, rows[i].sender_id)]++;
        char want[64];
        snprintf(want, sizeof(want), "token-%s", rows[i].jti);
        assert_string_equal(rows[i].token, want);
        s_seen_add(seen, rows[i].jti);
    }
    pf_relay_receipts_free(&rows, n);
    return n;
}

static size_t s_claim(fixture_t *f, const s_ids_t *ids, int limit, int cap, int64_t *after,
                      s_seen_t *seen, int *got)
{
    return s_claim_skipping(f, ids, limit, cap, after, seen, got, 0);
}

/* Fewer senders than the cap: the first claim takes the cap, and every
 * sender gets some, the one with a backlog the rest; repeated claims hand
 * out every row once, the outsider's never. */
static void test_claim_capped_every_sender_served(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_claim_cap");
    s_ids_t ids;
    s_receipts(f->env, 5, 100, &ids);
    int total = 100 + (S_SENDERS - 1) * 5;
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt_delivery WHERE "
                                     "next_attempt_at <= now() AND acked_at IS NULL"),
                     total + 5);

    s_seen_t seen = {0};
    int got[S_SENDERS];
    int64_t after = 0;
    size_t n = s_claim(f, &ids, 256, 64, &after, &seen, got);
    assert_int_equal(n, 64);
    /* each sender's first before anyone's second */
    for (size_t i = 0; i < S_SENDERS; i++)
        assert_true(got[i] >= 1 && got[i] <= 2);
    /* the rest comes in later claims, each full up to the cap (g-1's
     * backlog alone fills the last ones) */
    int claims = 1;
    size_t sum = n;
    while ((n = s_claim(f, &ids, 256, 64, &after, &seen, got)) > 0) {
        sum += n;
        assert_true(n == 64 || sum == (size_t)total);
        assert_true(++claims <= 10);
    }
    assert_int_equal(seen.n, total);
    assert_int_equal(claims, (total + 63) / 64);
    /* every listed sender's receipts claimed exactly once, the outsider's
     * not at all */
    assert_int_equal(s_count(f->env,
                             "SELECT count(*) FROM receipt_delivery d JOIN sender s ON "
                             "s.id = d.sender_id WHERE s.name LIKE 'g-%%' AND d.attempts = 1 "
                             "AND d.next_attempt_at > now()"),
                     total);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt_delivery d JOIN sender s ON "
                                     "s.id = d.sender_id WHERE s.name = 'outsider' "
                                     "AND d.attempts = 0"),
                     5);
    free(seen.jti);
}

/* More senders than the cap: the claims go round the senders (each gets
 * its first before anyone a second, across claims), every row once; and
 * the per-sender limit still holds under a larger cap. */
static void test_claim_takes_turns_round_senders(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_claim_turns");
    s_ids_t ids;
    s_receipts(f->env, 3, 3, &ids);
    int total = S_SENDERS * 3;

    s_seen_t seen = {0};
    int got[S_SENDERS], sum[S_SENDERS] = {0};
    int64_t after = 0;
    /* 16 a claim, 40 senders: after 3 claims every sender has had one */
    for (int c = 0; c < 3; c++) {
        assert_int_equal(s_claim(f, &ids, 256, 16, &after, &seen, got), 16);
        for (size_t i = 0; i < S_SENDERS; i++) {
            assert_true(got[i] <= 1);
            sum[i] += got[i];
        }
    }
    for (size_t i = 0; i < S_SENDERS; i++)
        assert_true(sum[i] >= 1 && sum[i] <= 2);
    /* the per-sender limit: 1 each although the cap would allow more */
    assert_int_equal(s_claim(f, &ids, 1, 1000, &after, &seen, got), S_SENDERS);
    for (size_t i = 0; i < S_SENDERS; i++) {
        assert_int_equal(got[i], 1);
        sum[i] += got[i];
    }
    /* the rest */
    assert_int_equal(s_claim(f, &ids, 256, 1000, &after, &seen, got), S_SENDERS * 2 - 48);
    for (size_t i = 0; i < S_SENDERS; i++) {
        sum[i] += got[i];
        assert_int_equal(sum[i], 3);
    }
    assert_int_equal(s_claim(f, &ids, 256, 16, &after, &seen, got), 0);
    assert_int_equal(seen.n, total);
    free(seen.jti);
}

/* Rows another session holds locked are skipped without waiting, the
 * claim says how many it passed over (the broker then claims again), and
 * they are claimed once the lock is gone; nothing is lost. */
static void test_claim_skips_locked_rows(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_claim_locked");
    s_ids_t ids;
    s_receipts(f->env, 2, 2, &ids);
    f->other = pf_env_session_new(f->env);
    assert_non_null(f->other);
    /* another broker's claim under way: sender g-1's rows */
    assert_int_equal(pf_env_session_exec(f->other, "BEGIN; SELECT jti FROM receipt_delivery d "
                                                   "JOIN sender s ON s.id = d.sender_id "
                                                   "WHERE s.name = 'g-1' FOR UPDATE OF d"),
                     0);
    s_seen_t seen = {0};
    int got[S_SENDERS];
    int64_t after = 0;
    /* g-1's two rows are picked, passed over, and said so */
    size_t n = s_claim_skipping(f, &ids, 256, 1000, &after, &seen, got, 2);
    assert_int_equal(n, (S_SENDERS - 1) * 2);
    assert_int_equal(got[0], 0);
    /* ROLLBACK before the session goes: a closed connection's locks go
     * only when its backend has noticed */
    assert_int_equal(pf_env_session_exec(f->other, "ROLLBACK"), 0);
    pf_env_session_destroy(&f->other);
    assert_int_equal(s_claim(f, &ids, 256, 1000, &after, &seen, got), 2);
    assert_int_equal(got[0], 2);
    assert_int_equal(s_claim(f, &ids, 256, 1000, &after, &seen, got), 0);
    assert_int_equal(seen.n, S_SENDERS * 2);
    free(seen.jti);
}

/* ---- 3. when a receipt is sent again ------------------------------------------------- */

/* One sender, "b-1", with n receipts whose tokens say their order:
 * "t01", "t02", ...  Returns its id. */
static int64_t s_one_sender(pf_env_t *env, int n)
{
    s_sql_ok(env, "INSERT INTO sender (name, curve_key) VALUES ('b-1', lpad('', 40, 'b'))");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
             "SELECT gen_random_uuid(), s.id, 'citizen-a', gen_random_uuid(), 'delivered', "
             "format('t%%s', lpad(k::text, 2, '0')) "
             "FROM sender s CROSS JOIN generate_series(1, %d) AS g (k) WHERE s.name = 'b-1'",
             n);
    s_sql_ok(env, sql);
    return pf_env_sql_int(env, "SELECT id FROM sender WHERE name = 'b-1'");
}

/* Makes the receipt due, claims it, and returns how many seconds ahead
 * the claim put its next attempt: whole seconds, rounded up, since the
 * test's statement runs a moment after the claim's (exact for any moment
 * under a second). */
static long long s_claim_wait(fixture_t *f, int64_t sid, int retry, int retry_max)
{
    s_sql_ok(f->env, "UPDATE receipt_delivery SET next_attempt_at = now() - interval '1 second'");
    pf_relay_receipt_t *rows = NULL;
    size_t n = 0;
    int64_t after = 0;
    const char *err = NULL;
    if (pf_store_relay_claim(f->st, &sid, 1, 10, 10, retry, retry_max, &after, &rows, &n, NULL,
                             &err) != 0)
        fail_msg("claim: %s", err);
    pf_relay_receipts_free(&rows, n);
    assert_int_equal(n, 1);
    return pf_env_sql_int(f->env, "SELECT ceil(extract(epoch FROM next_attempt_at - now())) "
                                  "FROM receipt_delivery");
}

/* A receipt sent and not acknowledged waits retry_seconds after its first
 * attempt and twice as long after each further one, up to
 * retry_max_seconds: a procedure that takes its receipts but never
 * acknowledges them is not sent its whole outbox every retry_seconds.  A
 * retry_seconds above the maximum is kept as it is. */
static void test_claim_backs_off(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_claim_backoff");
    int64_t sid = s_one_sender(f->env, 1);
    static const long long want[] = {10, 20, 40, 50, 50};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        long long wait = s_claim_wait(f, sid, 10, 50);
        if (wait != want[i])
            fail_msg("attempt %zu: next one in %lld s, want %lld", i + 1, wait, want[i]);
    }
    assert_int_equal(pf_env_sql_int(f->env, "SELECT attempts FROM receipt_delivery"), 5);
    assert_int_equal(s_claim_wait(f, sid, 100, 50), 100);
}

/* The tokens of the sender's receipts that are due now, in order. */
static char *s_due(pf_env_t *env)
{
    char *due = pf_env_sql(env, "SELECT coalesce(string_agg(r.token, ',' ORDER BY r.token), '') "
                                "FROM receipt_delivery d JOIN receipt r ON r.jti = d.jti "
                                "WHERE d.next_attempt_at <= now() AND d.acked_at IS NULL");
    assert_non_null(due);
    return due;
}

static void s_replay_expect(fixture_t *f, int64_t sid, int limit, int count, const char *due)
{
    const char *err = NULL;
    int k = pf_store_relay_replay(f->st, sid, limit, &err);
    if (k < 0)
        fail_msg("replay: %s", err);
    char *got = s_due(f->env);
    if (k != count || strcmp(got, due) != 0)
        fail_msg("replay of at most %d: %d rows, due now \"%s\"; want %d, \"%s\"", limit, k, got,
                 count, due);
    free(got);
}

/* A replay makes at most its limit of the sender's receipts due, those
 * that would have been due first; what is due already, acknowledged or
 * another sender's is left alone, and further replays go on where the
 * last one stopped. */
static void test_replay_takes_the_first_few(void **state)
{
    fixture_t *f = *state;
    s_open(f, "guards_replay_limit");
    int64_t sid = s_one_sender(f->env, 9);
    /* sent once, due again in t01's 1 minute, t02's 2 minutes, ...;
     * t01 acknowledged; another sender's receipt, not yet due */
    s_sql_ok(f->env, "UPDATE receipt_delivery d SET attempts = 1, next_attempt_at = now() + "
                     "make_interval(mins => substr(r.token, 2)::integer) "
                     "FROM receipt r WHERE r.jti = d.jti");
    s_sql_ok(f->env, "UPDATE receipt_delivery d SET acked_at = now() "
                     "FROM receipt r WHERE r.jti = d.jti AND r.token = 't01'");
    s_sql_ok(f->env, "INSERT INTO sender (name, curve_key) VALUES ('b-2', lpad('', 40, 'c'))");
    s_sql_ok(f->env, "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
                     "SELECT j, s.id, 'citizen-a', j, 'delivered', 'other' FROM sender s, "
                     "gen_random_uuid() j WHERE s.name = 'b-2'");
    s_sql_ok(f->env, "UPDATE receipt_delivery d SET next_attempt_at = now() + interval '1 hour' "
                     "FROM receipt r WHERE r.jti = d.jti AND r.token = 'other'");
    s_replay_expect(f, sid, 3, 3, "t02,t03,t04");
    s_replay_expect(f, sid, 3, 3, "t02,t03,t04,t05,t06,t07");
    s_replay_expect(f, sid, 3, 2, "t02,t03,t04,t05,t06,t07,t08,t09");
    s_replay_expect(f, sid, 3, 0, "t02,t03,t04,t05,t06,t07,t08,t09");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicate_request_id_sync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_request_id_committer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_claim_capped_every_sender_served, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_claim_takes_turns_round_senders, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_claim_skips_locked_rows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_claim_backs_off, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replay_takes_the_first_few, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
