/* Unit tests for lib/proto/curve: generating key files (modes, content),
 * loading pairs and public files, and refusing broken files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/curve.h"

static char s_dir[256];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof(s_dir), "/tmp/pf-test-curve-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *s_path(const char *name)
{
    static char p[2][300];
    static int i;
    i ^= 1;
    snprintf(p[i], sizeof(p[i]), "%s/%s", s_dir, name);
    return p[i];
}

static void s_write(const char *name, const char *text)
{
    FILE *f = fopen(s_path(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_generate_and_load(void **state)
{
    (void)state;
    char pub[PF_CURVE_Z85_LEN + 1];
    const char *err = NULL;
    assert_int_equal(pf_curve_generate_files(s_path("a.curve"), s_path("a.curve.pub"), pub, &err),
                     0);
    assert_int_equal(strlen(pub), 40);
    struct stat st;
    assert_int_equal(stat(s_path("a.curve"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    pf_curve_keys_t k;
    assert_int_equal(pf_curve_load(s_path("a.curve"), true, &k, &err), 0);
    assert_string_equal(k.public_key, pub);
    assert_int_equal(strlen(k.secret_key), 40);
    char derived[41];
    assert_int_equal(zmq_curve_public(derived, k.secret_key), 0);
    assert_string_equal(derived, pub);
    pf_curve_keys_clear(&k);
    assert_int_equal(k.secret_key[0], '\0');

    assert_int_equal(pf_curve_load(s_path("a.curve.pub"), false, &k, &err), 0);
    assert_string_equal(k.public_key, pub);
    assert_string_equal(k.secret_key, "");
    assert_int_equal(pf_curve_load(s_path("a.curve.pub"), true, &k, &err), -1);
    assert_non_null(strstr(err, "no secret key"));
}

static void test_secret_only_derives_public(void **state)
{
    (void)state;
    char pub[41], sec[41], text[200];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    snprintf(text, sizeof(text), "# broker key\n\n  secret   =  %s  \r\n", sec);
    s_write("s.curve", text);
    pf_curve_keys_t k;
    const char *err;
    assert_int_equal(pf_curve_load(s_path("s.curve"), true, &k, &err), 0);
    assert_string_equal(k.public_key, pub);
    pf_curve_keys_clear(&k);
}

static void test_refuses_broken_files(void **state)
{
    (void)state;
    char pub[41], sec[41], pub2[41], sec2[41], text[300];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    assert_int_equal(zmq_curve_keypair(pub2, sec2), 0);
    pf_curve_keys_t k;
    const char *err;

    snprintf(text, sizeof(text), "public = %s\nsecret = %s\n", pub2, sec);
    s_write("mismatch", text);
    assert_int_equal(pf_curve_load(s_path("mismatch"), true, &k, &err), -1);
    assert_non_null(strstr(err, "does not belong"));

    snprintf(text, sizeof(text), "public = %s\npublic = %s\n", pub, pub);
    s_write("twice", text);
    assert_int_equal(pf_curve_load(s_path("twice"), false, &k, &err), -1);

    s_write("short", "public = abc\n");
    assert_int_equal(pf_curve_load(s_path("short"), false, &k, &err), -1);
    assert_non_null(strstr(err, "Z85"));

    snprintf(text, sizeof(text), "public = %.39s~\n", pub); /* '~' is not Z85 */
    s_write("alphabet", text);
    assert_int_equal(pf_curve_load(s_path("alphabet"), false, &k, &err), -1);

    snprintf(text, sizeof(text), "public = %s\nkey = x\n", pub);
    s_write("unknown", text);
    assert_int_equal(pf_curve_load(s_path("unknown"), false, &k, &err), -1);

    s_write("garbage", "just some text\n");
    assert_int_equal(pf_curve_load(s_path("garbage"), false, &k, &err), -1);

    s_write("empty", "");
    assert_int_equal(pf_curve_load(s_path("empty"), false, &k, &err), -1);
    assert_non_null(strstr(err, "no public key"));

    assert_int_equal(pf_curve_load(s_path("missing"), false, &k, &err), -1);
    assert_non_null(strstr(err, "missing"));

    assert_true(pf_curve_z85_valid(pub));
    assert_false(pf_curve_z85_valid(NULL));
    assert_false(pf_curve_z85_valid("short"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_load),
        cmocka_unit_test(test_secret_only_derives_public),
        cmocka_unit_test(test_refuses_broken_files),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
