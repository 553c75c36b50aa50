/* Fault test 1: the broker is killed with SIGKILL every 2 s for 30 s under a
 * steady load from three procedures' clients, and restarted at once.
 *
 * Afterwards every request that never got an answer is sent again with its
 * request id, each acknowledged one is asked for once more, and the
 * database is compared with what the senders were told: nothing
 * acknowledged may be missing (lost), nothing may be stored twice
 * (duplicated), no copy may appear that nobody asked for (unexpected).
 * Each broker, the first and every restarted one, must have acknowledged
 * something before it is killed (a slow start only delays the kill).
 * PF_FAULT_SECONDS (default 30) lengthens the run for `make soak`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", NULL};

static void test_kill9_every_2s_under_load(void **state)
{
    (void)state;
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_kill", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    pf_load_opts_t o = {.name = "k9",
                        .threads = 3,
                        .citizens = s_citizens,
                        .recipients = 2,
                        .timeout_ms = 1000,
                        .retries = 1,
                        .body_bytes = 2000,
                        .attachment_bytes = 8192,
                        .pause_ms = 10,
                        /* as a procedure does: it takes its receipts, so
                         * they are acknowledged.  Receipts left unread are
                         * sent again on every reconnect; with a reconnect
                         * after each timeout that grew into a storm that
                         * starved the broker's sends under ASan (a broker
                         * acknowledged nothing its clients saw in 30 s).
                         * The receipts themselves are checked by
                         * test_fault_crashpoints and test_fault_receipts. */
                        .take_receipts = true};
    pf_load_t *l = fx->load = pf_load_new(env, &o);
    pf_load_start(l);
    int seconds = pf_fault_env_int("PF_FAULT_SECONDS", 30);
    int64_t start = pf_test_now_ms(), end = start + (int64_t)seconds * 1000;
    int kills = 0;
    long acked_ready = 0, min_acks = -1;
    /* on a fixed 2 s beat, whatever the restart took; but a broker is
     * killed only once it has served (an ACK since it was ready), which
     * it must do within 30 s */
    for (int64_t next = start + 2000; next <= end; next += 2000) {
        int64_t now = pf_test_now_ms();
        if (next > now)
            usleep((useconds_t)(next - now) * 1000);
        int64_t deadline = pf_test_now_ms() + 30000;
        while (pf_load_acked(l) == acked_ready && pf_test_now_ms() < deadline)
            usleep(10 * 1000);
        long acks = pf_load_acked(l) - acked_ready;
        if (acks == 0)
            printf("fault broker-kill9: broker %d acknowledged nothing in 30 s\n", kills + 1);
        /* every broker, the first and each restarted one, acknowledged
         * something before its kill: the load really went through */
        assert_true(acks > 0);
        if (min_acks < 0 || acks < min_acks)
            min_acks = acks;
        assert_int_equal(pf_env_stop_broker(env, SIGKILL), 0);
        kills++;
        assert_int_equal(pf_env_start_broker(env, NULL), 0);
        acked_ready = pf_load_acked(l);
    }
    pf_load_stop(l);
    pf_load_settle(l, 60000);
    pf_load_counts_t c;
    pf_load_check(l, &c);
    printf("fault broker-kill9: %d kills in %d s, each after the broker had served (fewest ACKs "
           "between a start and the next kill: %ld)\n",
           kills, seconds, min_acks);
    pf_load_print("broker-kill9", &c);
    assert_true(kills >= 1);
    assert_true(c.attempted > 0);
    assert_int_equal(c.lost, 0);
    assert_int_equal(c.duplicated, 0);
    assert_int_equal(c.unexpected, 0);
    assert_int_equal(c.unanswered, 0);
    assert_int_equal(c.acked, c.attempted);
    /* the kills must have hurt somebody, or the test proves nothing */
    assert_true(c.recovered + c.client_retries > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_every_2s_under_load, pf_fault_setup,
                                        pf_fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
