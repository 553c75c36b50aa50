/* Fault test 3: the broker dies (SIGKILL) at each deterministic crash point
 * of the write path and of the receipt relay (POSTFACH_CRASH_POINT, see
 * lib/util/crashpoint.h), under a load from the real client library; a
 * supervisor thread restarts it at once, without the crash point.
 *
 * Write path: right after reading a SEND, after the INSERTs (before
 * COMMIT), after sending COMMIT (outcome unknown to the broker), after
 * the COMMIT result arrived (before any ACK), after an ACK, after sending
 * a delivered receipt from memory right after the COMMIT (sql/0010).
 * Relay: after claiming receipts, after sending one, after storing a
 * procedure's RACK; the broker that reaches these runs with
 * receipt_direct=off, so that every receipt goes through the relay.
 * For every point: the point was really reached (the broker died once, by
 * SIGKILL, and its log has that point's crash line, no other), and
 * afterwards nothing acknowledged is missing, nothing is stored twice,
 * and (relay points) every receipt in the outbox was handed out by the
 * client exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", NULL};

/* The environment lives in the fixture, so a failed assertion (cmocka
 * jumps out of the test) still stops the daemons and private clusters. */
typedef struct {
    pf_env_t *env;
    pf_load_t *load;
} fixture_t;

static int s_setup(void **state)
{
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    pf_load_free(&f->load);
    pf_env_destroy(&f->env);
    free(f);
    return 0;
}

typedef struct {
    pf_env_t *env;
    atomic_bool stop;
    int crashes;   /* broker processes that died */
    int sigkilled; /* of those, by SIGKILL (a crash point kills so) */
    int restart_failures;
} supervisor_t;

/* Restarts the broker whenever it died, as systemd's Restart=always would. */
static void *s_supervisor(void *arg)
{
    supervisor_t *s = arg;
    while (!atomic_load(&s->stop)) {
        int status;
        if (!pf_env_broker_slot_reap(s->env, 0, &status)) {
            if (status != -1) {
                s->crashes++;
                s->sigkilled += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            }
            if (pf_env_start_broker(s->env, NULL) != 0)
                s->restart_failures++;
        }
        usleep(20 * 1000);
    }
    return NULL;
}

/* Occurrences of needle in the broker's log from offset on. */
static int s_log_count(pf_env_t *env, size_t offset, const char *needle)
{
    char *log = pf_env_broker_log(env, 0);
    int n = 0;
    if (log && strlen(log) >= offset)
        for (const char *p = log + offset; (p = strstr(p, needle)) != NULL; p += strlen(needle))
            n++;
    free(log);
    return n;
}

/* The broker's log size now: what a run appends comes after it. */
static size_t s_log_size(pf_env_t *env)
{
    char *log = pf_env_broker_log(env, 0);
    size_t n = log ? strlen(log) : 0;
    free(log);
    return n;
}

typedef struct {
    const char *point;
    int at;        /* the n-th time the point is passed */
    bool receipts; /* a receipt point: check the receipts too */
    bool relay;    /* every receipt through the relay (receipt_direct=off) */
} point_t;

static void s_run_point(pf_env_t *env, const point_t *p, pf_load_counts_t *sum)
{
    /* receipts left over from earlier points would arrive in one burst
     * and move the relay points' count: start each point from an empty
     * relay queue */
    free(pf_env_sql(env, "UPDATE receipt_delivery SET acked_at = now() WHERE acked_at IS NULL "
                         "RETURNING 1"));
    char var[96];
    snprintf(var, sizeof(var), "POSTFACH_CRASH_POINT=%s:%d", p->point, p->at);
    const char *envs[] = {var, NULL};
    pf_env_stop_broker(env, SIGTERM);
    size_t log_from = s_log_size(env);
    const char *relay_only[] = {"receipt_direct=off", NULL};
    assert_int_equal(pf_env_start_broker_slot(env, 0, p->relay ? relay_only : NULL, envs), 0);
    supervisor_t sup = {.env = env};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_supervisor, &sup), 0);
    char name[64];
    snprintf(name, sizeof(name), "cp-%s", p->point);
    pf_load_opts_t o = {.name = name,
                        .threads = 1,
                        .citizens = s_citizens,
                        .recipients = 2,
                        .timeout_ms = 700,
                        .retries = 3,
                        .body_bytes = 1000,
                        .attachment_bytes = 2048,
                        .max_per_thread = 10,
                        .collect_receipts = p->receipts};
    pf_load_t *l = pf_load_new(env, &o);
    pf_load_start(l);
    pf_load_wait(l);
    pf_load_settle(l, 30000);
    if (p->receipts)
        pf_load_drain_receipts(l, 30000);
    atomic_store(&sup.stop, true);
    pthread_join(t, NULL);
    pf_load_counts_t c;
    pf_load_check(l, &c);
    char label[80];
    snprintf(label, sizeof(label), "crash-point %s:%d (crashes %d)", p->point, p->at, sup.crashes);
    pf_load_print(label, &c);
    assert_int_equal(sup.restart_failures, 0);
    /* the broker died once, by SIGKILL at this point (the line the crash
     * point writes just before it kills), and at no other */
    char line[128];
    snprintf(line, sizeof(line), "crashpoint: event=crash name=%s n=%d\n", p->point, p->at);
    int at_point = s_log_count(env, log_from, line);
    int any = s_log_count(env, log_from, "crashpoint: event=crash ");
    printf("fault crash-point %s:%d: deaths %d, by SIGKILL %d, crash lines %d (this point %d)\n",
           p->point, p->at, sup.crashes, sup.sigkilled, any, at_point);
    assert_int_equal(sup.crashes, 1);
    assert_int_equal(sup.sigkilled, 1);
    assert_int_equal(at_point, 1);
    assert_int_equal(any, 1);
    assert_int_equal(c.lost, 0);
    assert_int_equal(c.duplicated, 0);
    assert_int_equal(c.unexpected, 0);
    assert_int_equal(c.unanswered, 0);
    assert_int_equal(c.acked, c.attempted);
    if (p->receipts) {
        assert_true(c.receipts_expected >= 2 * c.attempted);
        assert_int_equal(c.receipts_missing, 0);
        assert_int_equal(c.receipts_handed, c.receipts_expected);
    }
    sum->attempted += c.attempted;
    sum->acked += c.acked;
    sum->lost += c.lost;
    sum->duplicated += c.duplicated;
    sum->unexpected += c.unexpected;
    sum->recovered += c.recovered;
    sum->client_retries += c.client_retries;
    sum->timeouts += c.timeouts;
    sum->temporary += c.temporary;
    sum->receipts_expected += c.receipts_expected;
    sum->receipts_handed += c.receipts_handed;
    sum->receipts_missing += c.receipts_missing;
    pf_load_free(&l);
}

static void test_every_crash_point(void **state)
{
    (void)state;
    /* how many relay claims and RACK messages a load makes depends on
     * timing (the client library batches its RACKs): those points fire at
     * the first, which always comes */
    static const point_t points[] = {
        {"after_receive", 3, false, false},      {"after_insert", 3, false, false},
        {"after_commit_sent", 3, false, false},  {"after_commit_result", 3, false, false},
        {"after_ack", 3, false, false},          {"direct_after_send", 3, true, false},
        {"relay_after_select", 1, true, true},   {"relay_after_send", 3, true, true},
        {"relay_after_rack", 1, true, true},
    };
    fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_crashpoints", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    pf_load_counts_t sum = {0};
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        s_run_point(env, &points[i], &sum);
    pf_load_print("crash-points (all 9)", &sum);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_crash_point, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
