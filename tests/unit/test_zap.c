/* Unit tests of pf_zap_parse (lib/broker/zap.c), the check of a ZAP
 * request's frames that decides whether the handler looks the key up at
 * all.  Usage example: give it views of the frames as received (version,
 * request id, domain, address, identity, mechanism, credentials); on 0 the
 * Z85 key is ready for the sender lookup, on -1 the reply is "400"; the
 * request id to echo is set either way.
 *
 * Each refused request differs from the valid one in exactly one frame (or
 * in the frame count), so each assertion fails if its check is removed.
 * The frames are handed over in an array of exactly n entries on the heap,
 * so a read past the last frame shows under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/broker_private.h"
#include "util/xalloc.h"

/* The Z85 test vector of ZeroMQ RFC 32 ("HelloWorld") four times. */
static const unsigned char s_key[32] = {
    0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B, 0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B,
    0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B, 0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
#define S_KEY_Z85 "HelloWorldHelloWorldHelloWorldHelloWorld"

/* What libzmq sends for a CURVE handshake: seven frames. */
static void s_valid(pf_zap_frame_t f[8])
{
    f[0] = (pf_zap_frame_t){"1.0", 3};
    f[1] = (pf_zap_frame_t){"req-7", 5};
    f[2] = (pf_zap_frame_t){"", 0};
    f[3] = (pf_zap_frame_t){"127.0.0.1", 9};
    f[4] = (pf_zap_frame_t){"", 0};
    f[5] = (pf_zap_frame_t){"CURVE", 5};
    f[6] = (pf_zap_frame_t){s_key, 32};
    f[7] = (pf_zap_frame_t){"extra", 5};
}

/* pf_zap_parse over a heap copy of the first n frames; *error_r is NULL
 * on success. */
static int s_parse(const pf_zap_frame_t *f, size_t n, pf_zap_request_t *req, const char **error_r)
{
    pf_zap_frame_t *copy = xcalloc(n > 0 ? n : 1, sizeof(*copy));
    memcpy(copy, f, n * sizeof(*copy));
    *error_r = NULL;
    memset(req, 0x55, sizeof(*req));
    int rc = pf_zap_parse(copy, n, req, error_r);
    free(copy);
    if (rc == 0)
        assert_null(*error_r);
    else
        assert_string_equal(req->key, "");
    return rc;
}

static void test_valid_curve_request(void **state)
{
    (void)state;
    pf_zap_frame_t f[8];
    s_valid(f);
    pf_zap_request_t req;
    const char *err;
    assert_int_equal(s_parse(f, 7, &req, &err), 0);
    assert_string_equal(req.key, S_KEY_Z85);
    assert_int_equal(req.request_id_len, 5);
    assert_memory_equal(req.request_id, "req-7", 5);
    /* domain, address and identity are not looked at */
    f[2] = (pf_zap_frame_t){"global", 6};
    f[3] = (pf_zap_frame_t){"", 0};
    f[4] = (pf_zap_frame_t){"\x00\x01", 2};
    assert_int_equal(s_parse(f, 7, &req, &err), 0);
    assert_string_equal(req.key, S_KEY_Z85);
}

static void test_wrong_version(void **state)
{
    (void)state;
    static const pf_zap_frame_t bad[] = {{"2.0", 3}, {"1.1", 3}, {"1.0\0", 4},
                                         {"1.", 2},  {"", 0},    {"1.00", 4}};
    pf_zap_frame_t f[8];
    pf_zap_request_t req;
    const char *err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_valid(f);
        f[0] = bad[i];
        assert_int_equal(s_parse(f, 7, &req, &err), -1);
        assert_string_equal(err, "unsupported ZAP version");
        /* the reply still echoes the request id */
        assert_int_equal(req.request_id_len, 5);
        assert_memory_equal(req.request_id, "req-7", 5);
    }
}

static void test_wrong_frame_count(void **state)
{
    (void)state;
    pf_zap_frame_t f[8];
    s_valid(f);
    pf_zap_request_t req;
    const char *err;
    /* one too many (CURVE with a second credentials frame), one too few
     * (no credentials), and fewer than the six that name the mechanism */
    size_t counts[] = {8, 6, 5, 2};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        assert_int_equal(s_parse(f, counts[i], &req, &err), -1);
        assert_string_equal(err, "wrong number of frames");
        assert_int_equal(req.request_id_len, 5);
    }
    /* without a request id there is nothing to echo */
    for (size_t n = 0; n < 2; n++) {
        assert_int_equal(s_parse(f, n, &req, &err), -1);
        assert_string_equal(err, "wrong number of frames");
        assert_int_equal(req.request_id_len, 0);
        assert_non_null(req.request_id);
    }
}

static void test_wrong_mechanism(void **state)
{
    (void)state;
    static const pf_zap_frame_t bad[] = {{"NULL", 4},  {"PLAIN", 5},   {"GSSAPI", 6},
                                         {"curve", 5}, {"CURVE\0", 6}, {"CURV", 4}};
    pf_zap_frame_t f[8];
    pf_zap_request_t req;
    const char *err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_valid(f);
        f[5] = bad[i];
        assert_int_equal(s_parse(f, 7, &req, &err), -1);
        assert_string_equal(err, "mechanism is not CURVE");
    }
    /* PLAIN as libzmq sends it: user name and password, eight frames; and
     * NULL, six frames */
    s_valid(f);
    f[5] = (pf_zap_frame_t){"PLAIN", 5};
    f[6] = (pf_zap_frame_t){"admin", 5};
    f[7] = (pf_zap_frame_t){"secret", 6};
    assert_int_equal(s_parse(f, 8, &req, &err), -1);
    assert_string_equal(err, "mechanism is not CURVE");
    f[5] = (pf_zap_frame_t){"NULL", 4};
    assert_int_equal(s_parse(f, 6, &req, &err), -1);
    assert_string_equal(err, "mechanism is not CURVE");
}

static void test_wrong_credential_length(void **state)
{
    (void)state;
    /* the key in Z85 text (40 bytes) instead of binary, one byte short,
     * one byte long, empty */
    unsigned char longer[33] = {0};
    memcpy(longer, s_key, 32);
    const pf_zap_frame_t bad[] = {{S_KEY_Z85, 40}, {s_key, 31}, {longer, 33}, {"", 0}};
    pf_zap_frame_t f[8];
    pf_zap_request_t req;
    const char *err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_valid(f);
        f[6] = bad[i];
        assert_int_equal(s_parse(f, 7, &req, &err), -1);
        assert_string_equal(err, "CURVE key is not 32 bytes");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_curve_request),     cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_wrong_frame_count),       cmocka_unit_test(test_wrong_mechanism),
        cmocka_unit_test(test_wrong_credential_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
