/* End-to-end tests of the fast send path: the real postfach-broker and a
 * real PostgreSQL, driven through libpostfach's asynchronous API
 * (pf_client_submit / pf_client_poll_result) and the blocking one.
 *
 * Covers: a window of notices in flight on one client, each answered
 * exactly once and stored exactly once (group commits of many SENDs);
 * repeats of request ids inside one window and across windows get the
 * first ACK again, a changed payload gets "conflict"; the blocking send
 * refuses to mix with submissions in flight; several windowed clients at
 * once; a sender limited by a recipient allowlist is refused with
 * "forbidden" and nothing is stored, while allowed recipients (exact id
 * or prefix pattern) are served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "postfach/postfach.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "bw-citizen-c", NULL};

typedef struct {
    pf_env_t *env;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->env = pf_env_new("window", s_citizens);
    if (f->env == NULL || pf_env_start_broker(f->env, NULL) != 0) {
        pf_env_destroy(&f->env);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    int rc = pf_env_stop_broker(f->env, SIGTERM);
    pf_fixture_end(f->env, NULL, f);
    return rc == 0 ? 0 : -1;
}

static pf_client_t *s_client(pf_env_t *env)
{
    pf_client_t *c = pf_env_client(env, "tax-office", NULL, 10000, 2);
    if (c == NULL)
        fail_msg("no client for tax-office");
    return c;
}

static pf_client_notice_t s_notice(const char *rid, const char *const *to, const char *body)
{
    return (pf_client_notice_t){.request_id = rid,
                                .recipients = to,
                                .recipient_count = 1,
                                .title = "Bescheid",
                                .subject = "Betreff",
                                .body = body};
}

static long long s_count(pf_env_t *env, const char *sql)
{
    return pf_env_sql_int(env, sql);
}

/* Submits n notices "<prefix>-<i>" keeping up to window in flight; every
 * answer must be an ACK; returns the number of answers. */
static int s_window_send(pf_client_t *c, const char *prefix, int n, size_t window)
{
    const char *to[] = {"citizen-a"};
    const char *err;
    pf_client_set_window(c, window);
    char *answered = calloc((size_t)n, 1);
    int sent = 0, got = 0;
    while (got < n) {
        while (sent < n && pf_client_in_flight(c) < window) {
            char rid[64];
            snprintf(rid, sizeof(rid), "%s-%d", prefix, sent);
            pf_client_notice_t no = s_notice(rid, to, "Inhalt");
            int rc = pf_client_submit(c, &no, &err);
            if (rc != 0)
                fail_msg("pf_client_submit: %d %s", rc, err);
            sent++;
        }
        pf_client_result_t r;
        int rc = pf_client_poll_result(c, 20000, &r, &err);
        assert_int_equal(rc, 1);
        if (!r.ok)
            fail_msg("NACK %s: %s", r.code, r.reason);
        assert_int_equal(r.copy_count, 1);
        int k = atoi(strrchr(r.request_id, '-') + 1);
        assert_true(k >= 0 && k < n);
        assert_int_equal(answered[k], 0); /* exactly one answer each */
        answered[k] = 1;
        got++;
        pf_client_result_clear(&r);
    }
    free(answered);
    return got;
}

static void test_window_each_once(void **state)
{
    fixture_t *f = *state;
    pf_client_t *c = s_client(f->env);
    assert_int_equal(s_window_send(c, "w", 600, 128), 600);
    pf_client_result_t r;
    const char *err;
    assert_int_equal(pf_client_poll_result(c, 0, &r, &err), 0); /* nothing left */
    assert_int_equal(pf_client_in_flight(c), 0);
    pf_client_destroy(&c);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 600);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission"), 600);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt WHERE event = 'delivered'"),
                     600);
    /* group commits: far fewer transactions than notices (xmin per row) */
    long long tx = s_count(f->env, "SELECT count(DISTINCT xmin::text) FROM message");
    assert_true(tx < 600);
}

static bool s_all_acked(void *arg)
{
    pf_env_t *env = arg;
    return pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL") == 0;
}

/* The receipts that come in with the answers wait in the library's
 * queue: pf_client_receipts_queued counts them, pf_client_next_receipt
 * hands each out once, and the acknowledgements leave once the queue is
 * empty, without a further call. */
static void test_window_receipts_queued(void **state)
{
    fixture_t *f = *state;
    pf_client_t *c = s_client(f->env);
    assert_int_equal(pf_client_receipts_queued(c), 0);
    assert_int_equal(s_window_send(c, "q", 40, 64), 40);
    char seen[40] = {0};
    int got = 0;
    const char *err;
    while (got < 40) {
        size_t before = pf_client_receipts_queued(c);
        pf_client_receipt_t r;
        assert_int_equal(pf_client_next_receipt(c, 5000, &r, &err), 1);
        assert_string_equal(r.event, "delivered");
        assert_non_null(r.request_id);
        int k = atoi(strrchr(r.request_id, '-') + 1);
        assert_true(k >= 0 && k < 40);
        assert_int_equal(seen[k], 0);
        seen[k] = 1;
        got++;
        if (before > 0) /* handed out from the queue, nothing read */
            assert_int_equal(pf_client_receipts_queued(c), before - 1);
        pf_client_receipt_clear(&r);
    }
    assert_int_equal(pf_client_receipts_queued(c), 0);
    /* every RACK left with the last receipt handed out of each burst */
    assert_true(pf_test_wait(s_all_acked, f->env, 5000));
    pf_client_receipt_t r;
    assert_int_equal(pf_client_next_receipt(c, 300, &r, &err), 0);
    pf_client_destroy(&c);
}

static void test_window_repeats(void **state)
{
    fixture_t *f = *state;
    pf_client_t *c = s_client(f->env);
    const char *to[] = {"citizen-b"};
    const char *err;
    pf_client_set_window(c, 16);
    /* the same request id twice in flight is refused by the library */
    pf_client_notice_t a = s_notice("rep-1", to, "eins");
    assert_int_equal(pf_client_submit(c, &a, &err), 0);
    assert_int_equal(pf_client_submit(c, &a, &err), -2);
    pf_client_result_t r1;
    assert_int_equal(pf_client_poll_result(c, 20000, &r1, &err), 1);
    assert_int_equal(r1.ok, 1);
    /* the blocking call refuses while something is in flight */
    pf_client_notice_t b = s_notice("rep-2", to, "zwei");
    assert_int_equal(pf_client_submit(c, &b, &err), 0);
    pf_client_result_t rb;
    assert_int_equal(pf_client_send(c, &b, &rb, &err), -2);
    assert_int_equal(pf_client_poll_result(c, 20000, &rb, &err), 1);
    assert_int_equal(rb.ok, 1);
    pf_client_result_clear(&rb);
    /* a repeat after the commit: the same message id; changed: conflict */
    assert_int_equal(pf_client_submit(c, &a, &err), 0);
    pf_client_notice_t changed = s_notice("rep-1", to, "anders");
    pf_client_result_t r2, r3;
    assert_int_equal(pf_client_poll_result(c, 20000, &r2, &err), 1);
    assert_int_equal(r2.ok, 1);
    assert_string_equal(r2.copies[0].message_id, r1.copies[0].message_id);
    assert_int_equal(pf_client_submit(c, &changed, &err), 0);
    assert_int_equal(pf_client_poll_result(c, 20000, &r3, &err), 1);
    assert_int_equal(r3.ok, 0);
    assert_string_equal(r3.code, "conflict");
    pf_client_result_clear(&r1);
    pf_client_result_clear(&r2);
    pf_client_result_clear(&r3);
    /* the blocking call works again once the window is empty */
    pf_client_notice_t d = s_notice("rep-3", to, "drei");
    pf_client_result_t rd;
    assert_int_equal(pf_client_send(c, &d, &rd, &err), 0);
    assert_int_equal(rd.ok, 1);
    pf_client_result_clear(&rd);
    pf_client_destroy(&c);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 3);
}

/* The caller's pointers are borrowed for pf_client_submit only: a resend
 * after a timeout must not read an attachment the caller has freed since
 * (under ASan that read is a report; without it, the resend carried other
 * bytes and was answered "conflict"). */
static void test_window_resend_owns_attachments(void **state)
{
    fixture_t *f = *state;
    pf_client_t *c = s_client(f->env);
    pf_client_set_timeout(c, 700, 4);
    const char *to[] = {"citizen-a"};
    const char *err;
    pid_t broker = pf_env_broker_pid(f->env, 0);
    assert_int_equal(kill(broker, SIGSTOP), 0); /* silent: the answer is overdue */
    size_t size = 64 * 1024;
    unsigned char *scan = malloc(size);
    for (size_t i = 0; i < size; i++)
        scan[i] = (unsigned char)(i * 7 + 1);
    pf_client_attachment_t att = {"scan.pdf", "application/pdf", scan, size};
    pf_client_notice_t n = s_notice("own-1", to, "mit Anlage");
    n.attachments = &att;
    n.attachment_count = 1;
    assert_int_equal(pf_client_submit(c, &n, &err), 0);
    memset(scan, 'X', size);
    free(scan);
    pf_client_result_t r;
    /* past the timeout: the library reopens its socket and sends again */
    assert_int_equal(pf_client_poll_result(c, 1500, &r, &err), 0);
    assert_int_equal(kill(broker, SIGCONT), 0);
    assert_int_equal(pf_client_poll_result(c, 20000, &r, &err), 1);
    if (!r.ok)
        fail_msg("NACK %s: %s", r.code, r.reason);
    pf_client_result_clear(&r);
    pf_client_destroy(&c);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message WHERE request_id = 'own-1'"), 1);
}

typedef struct {
    pf_env_t *env;
    int id;
    int got;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    pf_client_t *c = s_client(w->env);
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "t%d", w->id);
    w->got = s_window_send(c, prefix, 200, 64);
    pf_client_destroy(&c);
    return NULL;
}

static void test_window_concurrent_clients(void **state)
{
    fixture_t *f = *state;
    enum { T = 4 };
    worker_t w[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker_t){f->env, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, s_worker, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].got, 200);
    }
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 200 * T);
    assert_int_equal(s_count(f->env, "SELECT count(DISTINCT request_id) FROM message"), 200 * T);
}

static void test_recipient_allowlist(void **state)
{
    fixture_t *f = *state;
    char *v = pf_env_sql(f->env, "INSERT INTO sender_recipient_allow (sender_id, pattern) "
                                 "SELECT id, p FROM sender, (VALUES ('citizen-a'), ('bw-*')) "
                                 "AS v (p) WHERE name = 'tax-office' RETURNING 'ok'");
    assert_non_null(v);
    free(v);
    usleep(1200 * 1000); /* the allowlist is cached for sender_cache_ms (1 s) */
    pf_client_t *c = s_client(f->env);
    const char *err;
    pf_client_result_t r;
    const char *to_b[] = {"citizen-b"};
    pf_client_notice_t nb = s_notice("allow-1", to_b, "nicht erlaubt");
    assert_int_equal(pf_client_send(c, &nb, &r, &err), 0);
    assert_int_equal(r.ok, 0);
    assert_string_equal(r.code, "forbidden");
    assert_non_null(strstr(r.reason, "citizen-b"));
    pf_client_result_clear(&r);
    /* one forbidden recipient refuses the whole submission */
    const char *to_mixed[] = {"citizen-a", "citizen-b"};
    pf_client_notice_t nm = s_notice("allow-2", to_mixed, "gemischt");
    nm.recipient_count = 2;
    assert_int_equal(pf_client_send(c, &nm, &r, &err), 0);
    assert_int_equal(r.ok, 0);
    assert_string_equal(r.code, "forbidden");
    pf_client_result_clear(&r);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission"), 0);
    /* an exact id and a prefix pattern are allowed */
    const char *to_ok[] = {"citizen-a", "bw-citizen-c"};
    pf_client_notice_t nok = s_notice("allow-3", to_ok, "erlaubt");
    nok.recipient_count = 2;
    assert_int_equal(pf_client_send(c, &nok, &r, &err), 0);
    assert_int_equal(r.ok, 1);
    pf_client_result_clear(&r);
    pf_client_destroy(&c);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_each_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_receipts_queued, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_repeats, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_resend_owns_attachments, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_concurrent_clients, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_recipient_allowlist, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
