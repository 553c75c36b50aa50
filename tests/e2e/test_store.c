/* The store's prepared statements against a real PostgreSQL: a statement
 * prepared on a connection keeps working when the server's copy goes
 * stale (a migration changes a result type) or away (DEALLOCATE), and
 * after a reconnect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store/store.h"

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
    (void)state;
    static const char *const citizens[] = {NULL};
    pf_env_t *env = pf_env_new("store_prepared", citizens);
    assert_non_null(env);
    int want = (int)pf_env_sql_int(env, "SELECT max(version) FROM schema_migration");
    assert_true(want > 0);

    pf_store_t *st = NULL;
    const char *err = NULL;
    assert_int_equal(pf_store_open(pf_env_conninfo(env), &st, &err), 0);
    s_version_is(st, want); /* prepares */
    s_version_is(st, want); /* runs the prepared statement */

    /* a migration changes the type the statement returns: the server
     * refuses the old plan (0A000); the store forgets it and answers */
    char sqlstate[6];
    assert_int_equal(pf_env_sql_state(env, "ALTER TABLE schema_migration ALTER COLUMN version "
                                           "TYPE bigint",
                                      sqlstate),
                     0);
    s_version_is(st, want);
    s_version_is(st, want);

    /* the server's prepared statements are dropped behind the store's back */
    assert_int_equal(pf_store_exec(st, "DEALLOCATE ALL", &err), 0);
    s_version_is(st, want); /* run as text */
    s_version_is(st, want); /* prepared again */

    /* the same inside a transaction: that transaction fails, the next
     * call prepares afresh */
    assert_int_equal(pf_store_exec(st, "DEALLOCATE ALL", &err), 0);
    assert_int_equal(pf_store_exec(st, "BEGIN", &err), 0);
    int v = -1;
    assert_int_equal(pf_store_schema_version(st, &v, &err), -1);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(pf_store_exec(st, "ROLLBACK", &err), 0);
    s_version_is(st, want);

    /* a reset connection has none of them */
    assert_int_equal(pf_store_reconnect(st, &err), 0);
    s_version_is(st, want);
    s_version_is(st, want);

    pf_store_destroy(&st);
    pf_env_destroy(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepared_statements_recover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
