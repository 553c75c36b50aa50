/* Fault test 7 and the receipt guarantees around it.
 *
 * 1. A procedure is offline while its notices are delivered, read, read
 *    late and left to expire, and the broker is killed meanwhile: when it
 *    connects again it gets every receipt (delivered, read, expired), each
 *    exactly once; a copy read within the period has no "expired" receipt,
 *    one read after it has both.
 * 2. Two brokers against one database, the procedure connected to both:
 *    the relay (FOR UPDATE SKIP LOCKED) and the expiry share the work and
 *    no receipt is sent twice in effect; each copy has one "expired". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", NULL};

typedef struct {
    char jti[37];
    char event[16];
    char message_id[37];
} got_t;

typedef struct {
    got_t *v;
    size_t n, cap;
    long duplicated;
} gotlist_t;

/* Drains c for up to timeout_ms or until want receipts are in g. */
static void s_drain(pf_client_t *c, gotlist_t *g, size_t want, int timeout_ms)
{
    int64_t end = pf_test_now_ms() + timeout_ms;
    while (pf_test_now_ms() < end && g->n < want) {
        pf_client_receipt_t r;
        const char *err;
        if (pf_client_next_receipt(c, 100, &r, &err) != 1)
            continue;
        assert_true(r.verified);
        for (size_t i = 0; i < g->n; i++)
            g->duplicated += strcmp(g->v[i].jti, r.jti) == 0;
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 64;
            g->v = realloc(g->v, g->cap * sizeof(*g->v));
        }
        got_t *x = &g->v[g->n++];
        snprintf(x->jti, sizeof(x->jti), "%s", r.jti);
        snprintf(x->event, sizeof(x->event), "%s", r.event);
        snprintf(x->message_id, sizeof(x->message_id), "%s", r.message_id);
        pf_client_receipt_clear(&r);
    }
}

static int s_count(const gotlist_t *g, const char *message_id, const char *event)
{
    int n = 0;
    for (size_t i = 0; i < g->n; i++)
        n += strcmp(g->v[i].message_id, message_id) == 0 && strcmp(g->v[i].event, event) == 0;
    return n;
}

static char *s_send(pf_client_t *c, const char *rid, const char *to, bool read_receipt)
{
    const char *rc[] = {to};
    pf_client_notice_t n = {.request_id = rid,
                            .recipients = rc,
                            .recipient_count = 1,
                            .title = "Bescheid",
                            .subject = "Betreff",
                            .body = "Text",
                            .read_receipt = read_receipt};
    pf_client_result_t res;
    const char *err;
    assert_int_equal(pf_client_send(c, &n, &res, &err), 0);
    assert_int_equal(res.ok, 1);
    char *id = strdup(res.copies[0].message_id);
    pf_client_result_clear(&res);
    return id;
}

static void s_open(pf_env_t *env, const char *token, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(pf_env_reader_port(env), path, token, &r), 0);
    assert_int_equal(r.status, 200);
    pf_http_response_clear(&r);
}

enum { N = 12, READ_IN_TIME = 5, READ_LATE = 1, PERIOD_S = 8 };

static void test_offline_procedure_gets_every_receipt_once(void **state)
{
    (void)state;
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_offline", s_citizens);
    assert_non_null(env);
    char period[48];
    snprintf(period, sizeof(period), "expire_after_seconds=%d", PERIOD_S);
    const char *settings[] = {period, "expire_poll_ms=200", "relay_poll_ms=200", NULL};
    assert_int_equal(pf_env_start_broker(env, settings), 0);
    assert_int_equal(pf_env_start_reader(env, NULL), 0);
    char *tok[2] = {pf_env_token(env, "citizen-a"), pf_env_token(env, "citizen-b")};
    char *ids[N];
    pf_client_t *c = pf_load_client(env, 0, 3000, 3);
    for (int i = 0; i < N; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "off-%d", i);
        ids[i] = s_send(c, rid, s_citizens[i % 2], true);
    }
    /* offline: gone without reading a single receipt */
    pf_client_destroy(&c);
    /* read in time: right away, before the broker dies (its restart under
     * ASan may take a good part of the period on a loaded machine) */
    for (int i = 0; i < READ_IN_TIME; i++)
        s_open(env, tok[i % 2], ids[i]);
    assert_int_equal(pf_env_stop_broker(env, SIGKILL), 0);
    assert_int_equal(pf_env_start_broker(env, settings), 0);
    /* the period passes: one "expired" per copy not read */
    int64_t end = pf_test_now_ms() + 30000;
    while (pf_test_now_ms() < end &&
           pf_env_sql_int(env, "SELECT count(*) FROM receipt WHERE event = 'expired'") <
               N - READ_IN_TIME)
        usleep(100 * 1000);
    /* a retrieval after the period still works, and makes "read" */
    for (int i = READ_IN_TIME; i < READ_IN_TIME + READ_LATE; i++)
        s_open(env, tok[i % 2], ids[i]);
    usleep(3 * 200 * 1000); /* a few more expiry polls: nothing more may come */
    long long expired = pf_env_sql_int(env, "SELECT count(*) FROM receipt WHERE event = 'expired'");
    long long read = pf_env_sql_int(env, "SELECT count(*) FROM receipt WHERE event = 'read'");
    long long delivered =
        pf_env_sql_int(env, "SELECT count(*) FROM receipt WHERE event = 'delivered'");
    assert_int_equal(expired, N - READ_IN_TIME);
    assert_int_equal(read, READ_IN_TIME + READ_LATE);
    assert_int_equal(delivered, N);

    /* back online */
    c = pf_load_client(env, 0, 3000, 3);
    gotlist_t g = {0};
    size_t want = (size_t)(expired + read + delivered);
    s_drain(c, &g, want, 30000);
    s_drain(c, &g, want + 1, 1500); /* a duplicate would come now */
    long lost = 0, unexpected = 0;
    for (int i = 0; i < N; i++) {
        int d = s_count(&g, ids[i], "delivered"), r = s_count(&g, ids[i], "read"),
            e = s_count(&g, ids[i], "expired");
        int want_r = i < READ_IN_TIME + READ_LATE, want_e = i >= READ_IN_TIME;
        lost += (d < 1) + (r < want_r) + (e < want_e);
        unexpected += (r > want_r) + (e > want_e) + (d > 1);
    }
    /* all acknowledged in the outbox */
    end = pf_test_now_ms() + 10000;
    while (pf_test_now_ms() < end &&
           pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL") > 0)
        usleep(100 * 1000);
    long long unacked =
        pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL");
    /* the expired receipt's time is the end of the period */
    long long skew = pf_env_sql_int(
        env, "SELECT count(*) FROM receipt r JOIN message m ON m.id = r.message_id "
             "WHERE r.event = 'expired' AND r.created_at < m.created_at + interval '4 seconds'");
    printf("fault procedure-offline: attempted %zu, acked %zu, lost %ld, duplicated %ld, "
           "unexpected %ld, recovered %zu (receipts: delivered %lld, read %lld, expired %lld; "
           "unacknowledged at the end %lld)\n",
           want, g.n, lost, g.duplicated, unexpected, g.n, delivered, read, expired, unacked);
    fflush(stdout);
    assert_int_equal(g.n, want);
    assert_int_equal(lost, 0);
    assert_int_equal(g.duplicated, 0);
    assert_int_equal(unexpected, 0);
    assert_int_equal(unacked, 0);
    assert_int_equal(skew, 0);
    free(g.v);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(tok[0]);
    free(tok[1]);
    pf_client_destroy(&c);
}

static long s_log_count(pf_env_t *env, const char *log, const char *what)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", pf_env_dir(env), log) < 0)
        abort();
    char *t = pf_test_read_file(p, NULL);
    long n = 0;
    for (const char *q = t; q && (q = strstr(q, what)) != NULL; q += strlen(what))
        n++;
    free(t);
    free(p);
    return n;
}

enum { PER_BROKER = 20 };

static void test_two_brokers_share_relay_and_expiry(void **state)
{
    (void)state;
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_twobrokers", s_citizens);
    assert_non_null(env);
    const char *settings[] = {"expire_after_seconds=3", "expire_poll_ms=100", "relay_poll_ms=100",
                              NULL};
    assert_int_equal(pf_env_start_broker_slot(env, 0, settings, NULL), 0);
    assert_int_equal(pf_env_start_broker_slot(env, 1, settings, NULL), 0);
    pf_client_t *a = pf_load_client(env, 0, 3000, 3), *b = pf_load_client(env, 1, 3000, 3);
    /* both connected and announced (HELLO) before the first notice: a HELLO
     * makes every unacknowledged receipt due again, so one arriving later
     * would have broker 1 resend what broker 0 just sent (at least once,
     * deduplicated by jti in the procedure; not what this test measures) */
    gotlist_t ga = {0}, gb = {0};
    s_drain(a, &ga, 1, 500);
    s_drain(b, &gb, 1, 500);
    assert_int_equal(ga.n + gb.n, 0);
    char *ids[2 * PER_BROKER];
    for (int i = 0; i < PER_BROKER; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "two-a-%d", i);
        ids[i] = s_send(a, rid, s_citizens[i % 2], false);
        snprintf(rid, sizeof(rid), "two-b-%d", i);
        ids[PER_BROKER + i] = s_send(b, rid, s_citizens[i % 2], false);
    }
    size_t want = 2 * 2 * PER_BROKER; /* delivered and expired of every copy */
    int64_t end = pf_test_now_ms() + 40000;
    while (pf_test_now_ms() < end && ga.n + gb.n < want) {
        s_drain(a, &ga, ga.n + 1, 100);
        s_drain(b, &gb, gb.n + 1, 100);
    }
    for (int k = 0; k < 10; k++) { /* duplicates would come now */
        s_drain(a, &ga, ga.n + 1, 100);
        s_drain(b, &gb, gb.n + 1, 100);
    }
    long both = 0, lost = 0;
    for (size_t i = 0; i < ga.n; i++)
        for (size_t j = 0; j < gb.n; j++)
            both += strcmp(ga.v[i].jti, gb.v[j].jti) == 0;
    for (int i = 0; i < 2 * PER_BROKER; i++) {
        int d = s_count(&ga, ids[i], "delivered") + s_count(&gb, ids[i], "delivered");
        int e = s_count(&ga, ids[i], "expired") + s_count(&gb, ids[i], "expired");
        lost += (d < 1) + (e < 1);
    }
    long long expired_rows =
        pf_env_sql_int(env, "SELECT count(*) FROM receipt WHERE event = 'expired'");
    long sent0 = s_log_count(env, "broker.log", "event=receipt_sent"),
         sent1 = s_log_count(env, "broker-1.log", "event=receipt_sent");
    printf("fault two-brokers: attempted %zu, acked %zu, lost %ld, duplicated %ld, unexpected %ld, "
           "recovered 0 (receipts sent by broker 0: %ld, by broker 1: %ld; handed out to the "
           "client on broker 0: %zu, on broker 1: %zu; expired rows %lld)\n",
           want, ga.n + gb.n, lost, ga.duplicated + gb.duplicated + both,
           (long)(ga.n + gb.n) - (long)want + lost, sent0, sent1, ga.n, gb.n, expired_rows);
    fflush(stdout);
    assert_int_equal(expired_rows, 2 * PER_BROKER);
    assert_int_equal(ga.duplicated + gb.duplicated, 0);
    assert_int_equal(both, 0);
    assert_int_equal(lost, 0);
    assert_int_equal(ga.n + gb.n, want);
    assert_true(sent0 > 0 && sent1 > 0); /* both brokers did relay work */
    free(ga.v);
    free(gb.v);
    for (int i = 0; i < 2 * PER_BROKER; i++)
        free(ids[i]);
    pf_client_destroy(&a);
    pf_client_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offline_procedure_gets_every_receipt_once,
                                        pf_fault_setup, pf_fault_teardown),
        cmocka_unit_test_setup_teardown(test_two_brokers_share_relay_and_expiry, pf_fault_setup,
                                        pf_fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
