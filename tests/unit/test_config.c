/* Unit tests for lib/config: table-driven settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/log.h"

static const pf_cfg_spec_t s_specs[] = {
    {"db", PF_CFG_STRING, NULL, 0, 0, "connection string"},
    {"port", PF_CFG_INT, "8080", 1, 65535, "port"},
    {"verbose", PF_CFG_BOOL, "off", 0, 0, "chatty"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static void test_defaults_and_set(void **state)
{
    (void)state;
    pf_config_t *cfg = pf_config_new(s_specs);
    const char *err;
    assert_int_equal(pf_config_int(cfg, "port"), 8080);
    assert_false(pf_config_bool(cfg, "verbose"));
    assert_int_equal(pf_config_set(cfg, "port = 9000", &err), 0);
    assert_int_equal(pf_config_int(cfg, "port"), 9000);
    assert_int_equal(pf_config_set(cfg, "verbose=on", &err), 0);
    assert_true(pf_config_bool(cfg, "verbose"));
    pf_config_destroy(&cfg);
    assert_null(cfg);
}

static void test_rejects_unknown_and_out_of_range(void **state)
{
    (void)state;
    pf_config_t *cfg = pf_config_new(s_specs);
    const char *err;
    assert_int_equal(pf_config_set(cfg, "colour=blue", &err), -1);
    assert_non_null(strstr(err, "unknown setting"));
    assert_int_equal(pf_config_set(cfg, "port=0", &err), -1);
    assert_int_equal(pf_config_set(cfg, "port=70000", &err), -1);
    assert_int_equal(pf_config_set(cfg, "port=12x", &err), -1);
    assert_int_equal(pf_config_set(cfg, "verbose=maybe", &err), -1);
    assert_int_equal(pf_config_set(cfg, "novalue", &err), -1);
    pf_config_destroy(&cfg);
}

static void test_args_and_required(void **state)
{
    (void)state;
    pf_config_t *cfg = pf_config_new(s_specs);
    const char *err;
    bool print, help;
    char *argv1[] = {"prog", "--set", "port=1234", NULL};
    assert_int_equal(pf_config_args(cfg, 3, argv1, &print, &help, &err), -1);
    assert_non_null(strstr(err, "\"db\" is required"));
    char *argv2[] = {"prog", "--set", "db=dbname=x", "--print-config", NULL};
    assert_int_equal(pf_config_args(cfg, 4, argv2, &print, &help, &err), 0);
    assert_true(print);
    assert_string_equal(pf_config_str(cfg, "db"), "dbname=x");
    char *argv3[] = {"prog", "--bogus", NULL};
    assert_int_equal(pf_config_args(cfg, 2, argv3, &print, &help, &err), -1);
    pf_config_destroy(&cfg);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pf-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\n\ndb = host=/tmp dbname=p\nport=99\n";
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    pf_config_t *cfg = pf_config_new(s_specs);
    const char *err;
    assert_int_equal(pf_config_load_file(cfg, path, &err), 0);
    assert_string_equal(pf_config_str(cfg, "db"), "host=/tmp dbname=p");
    assert_int_equal(pf_config_int(cfg, "port"), 99);
    FILE *f = fopen(path, "w");
    fputs("port=99\nwhat=1\n", f);
    fclose(f);
    assert_int_equal(pf_config_load_file(cfg, path, &err), -1);
    assert_non_null(strstr(err, "line 2"));
    unlink(path);
    pf_config_destroy(&cfg);
}

static const pf_cfg_spec_t s_daemon_specs[] = {
    {"db", PF_CFG_STRING, NULL, 0, 0, "connection string"},
    {"log_level", PF_CFG_STRING, "info", 0, 0, "debug, info, warn or error"},
    {NULL, 0, NULL, 0, 0, NULL},
};

/* Runs pf_config_daemon with stdout and stderr in files; returns the
 * config (or NULL), and what each stream got, in out and errtext. */
static pf_config_t *s_daemon(int argc, char **argv, int *code, char *out, size_t outlen,
                             char *errtext, size_t errlen)
{
    fflush(stdout);
    fflush(stderr);
    int save1 = dup(1), save2 = dup(2);
    FILE *f1 = tmpfile(), *f2 = tmpfile();
    assert_non_null(f1);
    assert_non_null(f2);
    dup2(fileno(f1), 1);
    dup2(fileno(f2), 2);
    *code = -1;
    pf_config_t *cfg = pf_config_daemon(s_daemon_specs, "pf-test", argc, argv, code);
    /* what the log level lets through now */
    pf_log(PF_LOG_INFO, "event=probe");
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    FILE *fs[2] = {f1, f2};
    char *bufs[2] = {out, errtext};
    size_t lens[2] = {outlen, errlen};
    for (int i = 0; i < 2; i++) {
        rewind(fs[i]);
        size_t n = fread(bufs[i], 1, lens[i] - 1, fs[i]);
        bufs[i][n] = '\0';
        fclose(fs[i]);
    }
    return cfg;
}

static void test_daemon_start(void **state)
{
    (void)state;
    char out[4096], err[4096];
    int code;
    /* --help: usage on stdout, exit 0 */
    char *help[] = {"pf-test", "--help", NULL};
    assert_null(s_daemon(2, help, &code, out, sizeof(out), err, sizeof(err)));
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "pf-test"));
    assert_non_null(strstr(out, "log_level"));
    /* an unknown setting: a structured error on stderr, exit 2 */
    char *bad[] = {"pf-test", "--set", "db=x", "--set", "colour=red", NULL};
    assert_null(s_daemon(5, bad, &code, out, sizeof(out), err, sizeof(err)));
    assert_int_equal(code, 2);
    assert_non_null(strstr(err, "prog=pf-test event=bad_config"));
    assert_non_null(strstr(err, "colour"));
    /* a log level that does not exist */
    char *level[] = {"pf-test", "--set", "db=x", "--set", "log_level=loud", NULL};
    assert_null(s_daemon(5, level, &code, out, sizeof(out), err, sizeof(err)));
    assert_int_equal(code, 2);
    assert_non_null(strstr(err, "event=bad_config error=\"log_level must be"));
    /* good settings: the config, and the log level in force (info lines
     * pass at info, not at warn) */
    char *info[] = {"pf-test", "--set", "db=x", NULL};
    pf_config_t *cfg = s_daemon(3, info, &code, out, sizeof(out), err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(pf_config_str(cfg, "db"), "x");
    assert_non_null(strstr(err, "prog=pf-test event=probe"));
    pf_config_destroy(&cfg);
    char *warn[] = {"pf-test", "--set", "db=x", "--set", "log_level=warn", NULL};
    cfg = s_daemon(5, warn, &code, out, sizeof(out), err, sizeof(err));
    assert_non_null(cfg);
    assert_null(strstr(err, "event=probe"));
    pf_config_destroy(&cfg);
    pf_log_set_level(PF_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_set),
        cmocka_unit_test(test_rejects_unknown_and_out_of_range),
        cmocka_unit_test(test_args_and_required),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_daemon_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
