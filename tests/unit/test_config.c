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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_set),
        cmocka_unit_test(test_rejects_unknown_and_out_of_range),
        cmocka_unit_test(test_args_and_required),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
