/* Identity-provider key rollover: the reader accepts tokens signed by any
 * key of the JWKS files it is given (comma-separated), and refuses tokens of
 * a key it was not given, with 401.  And the development identity provider
 * (postfach-ctl token) is trusted only with idp_development = on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char *s_token(pf_env_t *env, const char *keys, const char *who)
{
    char *out = NULL;
    assert_int_equal(pf_env_run(env, &out, NULL, "postfach-ctl", "--db", pf_env_conninfo(env),
                                "--keys", keys, "token", who, NULL),
                     0);
    size_t n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
    return out;
}

static int s_status(pf_env_t *env, const char *token)
{
    pf_http_response_t r;
    assert_int_equal(pf_http_get(pf_env_reader_port(env), "/v1/messages", token, &r), 0);
    int st = r.status;
    pf_http_response_clear(&r);
    return st;
}

static void test_two_jwks_files_accepted_third_refused(void **state)
{
    pf_env_fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", NULL};
    pf_env_t *env = f->env = pf_env_new("idp", citizens);
    char *next = NULL, *other = NULL, *setting = NULL;
    if (asprintf(&next, "%s/idp-next", pf_env_dir(env)) < 0 ||
        asprintf(&other, "%s/idp-other", pf_env_dir(env)) < 0 ||
        asprintf(&setting, "idp_jwks_file=%s/idp.jwks,%s/idp.jwks", pf_env_keys(env), next) < 0)
        abort();
    /* two more key sets, each with its own development identity key */
    char *out = NULL;
    assert_int_equal(
        pf_env_run(env, &out, NULL, "postfach-ctl", "--keys", next, "keys", "init", NULL), 0);
    free(out);
    assert_int_equal(
        pf_env_run(env, &out, NULL, "postfach-ctl", "--keys", other, "keys", "init", NULL), 0);
    free(out);

    const char *const settings[] = {setting, NULL};
    assert_int_equal(pf_env_start_reader(env, settings), 0);
    char *t_old = s_token(env, pf_env_keys(env), "citizen-a");
    char *t_new = s_token(env, next, "citizen-a");
    char *t_other = s_token(env, other, "citizen-a");
    assert_int_equal(s_status(env, t_old), 200);
    assert_int_equal(s_status(env, t_new), 200);
    assert_int_equal(s_status(env, t_other), 401);

    /* after the rollover only the new key is configured */
    assert_int_equal(pf_env_stop_reader(env, SIGTERM), 0);
    char *only_new = NULL;
    if (asprintf(&only_new, "idp_jwks_file=%s/idp.jwks", next) < 0)
        abort();
    const char *const settings2[] = {only_new, NULL};
    assert_int_equal(pf_env_start_reader(env, settings2), 0);
    assert_int_equal(s_status(env, t_old), 401);
    assert_int_equal(s_status(env, t_new), 200);

    free(only_new);
    free(t_old);
    free(t_new);
    free(t_other);
    free(next);
    free(other);
    free(setting);
}

/* The harness turns idp_development on; a deployment leaves it off, and a
 * reader configured with the development issuer must then not start. */
static void test_development_issuer_needs_the_switch(void **state)
{
    pf_env_fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", NULL};
    pf_env_t *env = f->env = pf_env_new("idp-dev", citizens);
    char *log_path = NULL;
    if (asprintf(&log_path, "%s/reader.log", pf_env_dir(env)) < 0)
        abort();

    const char *const off[] = {"idp_development=off", NULL};
    assert_int_equal(pf_env_start_reader(env, off), -1);
    assert_int_equal(pf_env_start_exit(env), 1);
    char *log = pf_test_read_file(log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "event=start_failed"));
    assert_non_null(strstr(log, "development identity provider"));
    assert_non_null(strstr(log, "idp_development"));
    assert_null(strstr(log, "event=ready"));
    free(log);

    /* the same issuer with the switch: starts, says so, and serves */
    const char *const on[] = {"idp_development=on", NULL};
    assert_int_equal(pf_env_start_reader(env, on), 0);
    log = pf_test_read_file(log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "event=idp_development"));
    free(log);
    char *token = pf_env_token(env, "citizen-a");
    assert_non_null(token);
    assert_int_equal(s_status(env, token), 200);
    assert_int_equal(pf_env_stop_reader(env, SIGTERM), 0);

    /* another issuer needs no switch, and is not announced as development */
    if (truncate(log_path, 0) != 0)
        abort();
    const char *const real[] = {"idp_development=off", "idp_issuer=https://id.bund.example", NULL};
    assert_int_equal(pf_env_start_reader(env, real), 0);
    log = pf_test_read_file(log_path, NULL);
    assert_non_null(log);
    assert_null(strstr(log, "event=idp_development"));
    free(log);
    assert_int_equal(s_status(env, token), 401); /* the development token's issuer */
    assert_int_equal(pf_env_stop_reader(env, SIGTERM), 0);

    free(token);
    free(log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_jwks_files_accepted_third_refused,
                                        pf_env_fixture_setup, pf_env_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_development_issuer_needs_the_switch,
                                        pf_env_fixture_setup, pf_env_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
