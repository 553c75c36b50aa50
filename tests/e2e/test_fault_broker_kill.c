/* Fault test 1: the broker is killed with SIGKILL every 2 s for 30 s under a
 * steady load from three procedures' clients, and restarted at once.
 *
 * Afterwards every request that never got an answer is sent again with its
 * request id, each acknowledged one is asked for once more, and the
 * database is compared with what the senders were told: nothing
 * acknowledged may be missing (lost), nothing may be stored twice
 * (duplicated), no copy may appear that nobody asked for (unexpected).
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

static int s_seconds(const char *name, int def)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : def;
}

static void test_kill9_every_2s_under_load(void **state)
{
    (void)state;
    fixture_t *fx = *state;
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
                        .pause_ms = 10};
    pf_load_t *l = fx->load = pf_load_new(env, &o);
    pf_load_start(l);
    int seconds = s_seconds("PF_FAULT_SECONDS", 30);
    int64_t start = pf_test_now_ms(), end = start + (int64_t)seconds * 1000;
    int kills = 0;
    /* on a fixed 2 s beat, whatever the restart took */
    for (int64_t next = start + 2000; next <= end; next += 2000) {
        int64_t now = pf_test_now_ms();
        if (next > now)
            usleep((useconds_t)(next - now) * 1000);
        assert_int_equal(pf_env_stop_broker(env, SIGKILL), 0);
        kills++;
        assert_int_equal(pf_env_start_broker(env, NULL), 0);
    }
    pf_load_stop(l);
    pf_load_settle(l, 60000);
    pf_load_counts_t c;
    pf_load_check(l, &c);
    printf("fault broker-kill9: %d kills in %d s\n", kills, seconds);
    pf_load_print("broker-kill9", &c);
    /* a slow restart (a loaded CI machine) may swallow a beat or two */
    assert_true(kills >= seconds / 3);
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
        cmocka_unit_test_setup_teardown(test_kill9_every_2s_under_load, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
