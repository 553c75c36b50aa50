/* Unit tests for lib/util/crashpoint: unset means nothing fires; a point
 * fires exactly the n-th time it is passed (SIGKILL, seen from a parent
 * process); other names and malformed values never fire.  Doubles as the
 * usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/crashpoint.h"

/* Runs passes of "p" in a child with the variable set; returns how many
 * passes the child completed before it died (or passes when it lived),
 * and whether it died by SIGKILL. */
static int s_child(const char *value, const char *name, int passes, bool *killed_r)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (value)
            setenv("POSTFACH_CRASH_POINT", value, 1);
        else
            unsetenv("POSTFACH_CRASH_POINT");
        pf_crashpoint_init();
        for (int i = 0; i < passes; i++) {
            pf_crashpoint(name);
            char one = 1;
            if (write(fds[1], &one, 1) != 1)
                _exit(2);
        }
        _exit(0);
    }
    close(fds[1]);
    int done = 0;
    char c;
    while (read(fds[0], &c, 1) == 1)
        done++;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *killed_r = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    return done;
}

static void test_unset_never_fires(void **state)
{
    (void)state;
    bool killed;
    assert_int_equal(s_child(NULL, "after_insert", 5, &killed), 5);
    assert_false(killed);
}

static void test_fires_the_nth_time(void **state)
{
    (void)state;
    bool killed;
    /* the third pass dies before it completes: two completed */
    assert_int_equal(s_child("after_insert:3", "after_insert", 10, &killed), 2);
    assert_true(killed);
    assert_int_equal(s_child("after_ack", "after_ack", 10, &killed), 0);
    assert_true(killed);
}

static void test_other_names_and_bad_values_never_fire(void **state)
{
    (void)state;
    bool killed;
    assert_int_equal(s_child("after_insert:1", "after_ack", 4, &killed), 4);
    assert_false(killed);
    const char *bad[] = {"after_insert:0", "after_insert:x", "after_insert:", ":3", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(s_child(bad[i], "after_insert", 4, &killed), 4);
        assert_false(killed);
    }
}

/* A fault point is true on the n-th pass only, and the process lives on. */
static void test_fault_point_true_once_at_the_nth_pass(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("POSTFACH_CRASH_POINT", "drop_after_commit:3", 1);
        pf_crashpoint_init();
        int due = 0, at = 0;
        for (int i = 1; i <= 10; i++) {
            if (pf_faultpoint("drop_after_commit")) {
                due++;
                at = i;
            }
            if (pf_faultpoint("drop_before_commit"))
                due += 100;
        }
        _exit(due == 1 && at == 3 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* unset: never */
    unsetenv("POSTFACH_CRASH_POINT");
    pf_crashpoint_init();
    for (int i = 0; i < 5; i++)
        assert_false(pf_faultpoint("drop_after_commit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_never_fires),
        cmocka_unit_test(test_fires_the_nth_time),
        cmocka_unit_test(test_other_names_and_bad_values_never_fire),
        cmocka_unit_test(test_fault_point_true_once_at_the_nth_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
