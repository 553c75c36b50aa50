/* Unit tests for lib/receipt, and its usage example: the service signs a
 * receipt with its receipt key; a sender verifies it with the service's
 * published JWKS and reads the event out of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/jose.h"
#include "receipt/receipt.h"
#include "util/b64url.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#define ISS "https://postfach.example.de"

static pf_key_t *s_key, *s_other;
static pf_keyset_t *s_jwks; /* as a sender would load it */

static int s_setup(void **state)
{
    (void)state;
    const char *err;
    if (pf_key_generate(PF_KEY_P256, &s_key, &err) != 0 ||
        pf_key_generate(PF_KEY_P256, &s_other, &err) != 0)
        return -1;
    /* publish and re-read the JWKS, as a sender does */
    pf_keyset_t *pub = pf_keyset_new();
    pf_keyset_add(pub, s_key, NULL);
    char *jwks = pf_keyset_to_jwks(pub);
    pf_keyset_destroy(&pub);
    s_jwks = pf_keyset_new();
    int n = pf_keyset_add_jwks(s_jwks, jwks, strlen(jwks), true, &err);
    free(jwks);
    return n == 1 ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    pf_keyset_destroy(&s_jwks);
    pf_key_destroy(&s_key);
    pf_key_destroy(&s_other);
    return 0;
}

/* A receipt as the reader makes it on first retrieval. */
static void s_example(pf_receipt_t *r)
{
    memset(r, 0, sizeof(*r));
    pf_uuid7_generate(r->jti);
    pf_uuid7_generate(r->message_id);
    r->txn = "req-2025-000123";
    r->sender = "finanzamt-musterstadt";
    r->mailbox = "citizen-4711@example.de";
    r->event = PF_EVENT_READ;
    r->event_time_ms = INT64_C(1738326896789); /* 2025-01-31T12:34:56.789Z */
    r->iat = 1738326897;
    r->jwe_tag = "AAECAwQFBgcICQoLDA0ODw"; /* 16 bytes */
}

static void test_event_names(void **state)
{
    (void)state;
    const char *names[] = {"delivered", "read", "expired", "rejected"};
    for (int i = 0; i < 4; i++) {
        pf_event_t e;
        assert_int_equal(pf_event_parse(names[i], &e), 0);
        assert_int_equal(e, (pf_event_t)(PF_EVENT_DELIVERED + i));
        assert_string_equal(pf_event_name(e), names[i]);
    }
    pf_event_t e;
    assert_int_equal(pf_event_parse("Read", &e), -1);
    assert_int_equal(pf_event_parse("", &e), -1);
    assert_int_equal(pf_event_parse(NULL, &e), -1);
    assert_null(pf_event_name((pf_event_t)0));
    assert_null(pf_event_name((pf_event_t)5));
}

static void test_roundtrip(void **state)
{
    (void)state;
    pf_receipt_t r, got;
    s_example(&r);
    const char *err = NULL;
    char *tok = pf_receipt_sign(s_key, ISS, &r, &err);
    assert_non_null(tok);
    assert_int_equal(pf_receipt_verify(tok, strlen(tok), s_jwks, ISS, &got, &err), 0);
    assert_string_equal(got.jti, r.jti);
    assert_string_equal(got.message_id, r.message_id);
    assert_string_equal(got.txn, r.txn);
    assert_string_equal(got.sender, r.sender);
    assert_string_equal(got.mailbox, r.mailbox);
    assert_int_equal(got.event, PF_EVENT_READ);
    assert_int_equal(got.event_time_ms, r.event_time_ms);
    assert_int_equal(got.iat, r.iat);
    assert_string_equal(got.jwe_tag, r.jwe_tag);
    /* the audience: the sender it is for */
    assert_null(pf_receipt_check_audience(&got, r.sender));
    err = pf_receipt_check_audience(&got, "another-office");
    assert_string_equal(err, "wrong audience");
    assert_true(pf_receipt_error_is_config(err)); /* perhaps misrouted: not dropped */
    pf_receipt_clear(&got);
    pf_receipt_clear(&got); /* clearing twice is fine */
    assert_null(got.sender);

    /* issuer not checked when NULL; checked when given */
    assert_int_equal(pf_receipt_verify(tok, strlen(tok), s_jwks, NULL, &got, &err), 0);
    pf_receipt_clear(&got);
    assert_int_equal(pf_receipt_verify(tok, strlen(tok), s_jwks, "https://evil", &got, &err), -1);
    assert_string_equal(err, "wrong issuer");
    assert_true(pf_receipt_error_is_config(err)); /* perhaps genuine: not dropped */
    assert_null(got.sender);

    /* the claims as RFC 8417 readers see them */
    const char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    unsigned char *raw = NULL;
    size_t n = 0;
    assert_int_equal(pf_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &raw, &n), 0);
    json_t *c = json_loads((char *)raw, 0, NULL);
    json_t *ev = json_object_get(json_object_get(c, "events"), "urn:postfach:event:read");
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "time")), "2025-01-31T12:34:56.789Z");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "finanzamt-musterstadt");
    assert_string_equal(json_string_value(json_object_get(c, "txn")), "req-2025-000123");
    json_decref(c);
    free(raw);
    free(tok);

    /* optional parts left out: no txn, no tag (a rejected submission) */
    r.txn = NULL;
    r.jwe_tag = NULL;
    r.event = PF_EVENT_REJECTED;
    r.iat = 0; /* now */
    tok = pf_receipt_sign(s_key, ISS, &r, &err);
    assert_non_null(tok);
    assert_int_equal(pf_receipt_verify(tok, strlen(tok), s_jwks, ISS, &got, &err), 0);
    assert_null(got.txn);
    assert_null(got.jwe_tag);
    assert_int_equal(got.event, PF_EVENT_REJECTED);
    assert_true(got.iat > 1700000000);
    pf_receipt_clear(&got);
    free(tok);
}

static void test_sign_refuses(void **state)
{
    (void)state;
    pf_receipt_t r;
    const char *err = NULL;
    s_example(&r);
    strcpy(r.jti, "not-a-uuid");
    assert_null(pf_receipt_sign(s_key, ISS, &r, &err));
    s_example(&r);
    r.event = (pf_event_t)0;
    assert_null(pf_receipt_sign(s_key, ISS, &r, &err));
    s_example(&r);
    r.sender = NULL;
    assert_null(pf_receipt_sign(s_key, ISS, &r, &err));
    s_example(&r);
    r.mailbox = "line\nbreak";
    assert_null(pf_receipt_sign(s_key, ISS, &r, &err));
    s_example(&r);
    r.jwe_tag = "AAECAwQFBgcICQoLDA0ODwA"; /* not 16 bytes */
    assert_null(pf_receipt_sign(s_key, ISS, &r, &err));
    s_example(&r);
    r.event_time_ms = -1;
    assert_null(pf_receipt_sign(s_key, ISS, &r, &err));
    s_example(&r);
    assert_null(pf_receipt_sign(s_key, NULL, &r, &err));
    /* only private P-256 keys sign */
    pf_key_t *pub = pf_key_public(s_key);
    assert_null(pf_receipt_sign(pub, ISS, &r, &err));
    pf_key_destroy(&pub);
}

/* Signs a payload as a receipt would be, with typ. */
static char *s_sign_raw(const pf_key_t *key, const char *typ, const char *payload)
{
    const char *err = NULL;
    char *t = pf_jws_sign(key, typ, payload, strlen(payload), &err);
    assert_non_null(t);
    return t;
}

static const char *s_verify_err(const char *tok)
{
    pf_receipt_t got;
    const char *err = NULL;
    int rc = pf_receipt_verify(tok, strlen(tok), s_jwks, ISS, &got, &err);
    if (rc == 0) {
        pf_receipt_clear(&got);
        return NULL;
    }
    assert_null(got.sender);
    assert_null(got.mailbox);
    return err;
}

static void test_verify_refuses(void **state)
{
    (void)state;
    pf_receipt_t r;
    s_example(&r);
    const char *err = NULL;
    char *tok = pf_receipt_sign(s_key, ISS, &r, &err);
    /* tampered signature, unknown key */
    char *bad = xstrdup(tok);
    char *sig = strrchr(bad, '.') + 1;
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    assert_string_equal(s_verify_err(bad), "bad signature");
    assert_false(pf_receipt_error_is_config(s_verify_err(bad)));
    free(bad);
    char *foreign = pf_receipt_sign(s_other, ISS, &r, &err);
    assert_string_equal(s_verify_err(foreign), "unknown key");
    assert_true(pf_receipt_error_is_config(s_verify_err(foreign)));
    free(foreign);
    /* truncated, trailing garbage */
    bad = xstrndup(tok, strlen(tok) - 10);
    assert_string_equal(s_verify_err(bad), "bad signature");
    free(bad);
    bad = xasprintf("%s.x", tok);
    assert_string_equal(s_verify_err(bad), "malformed token");
    assert_false(pf_receipt_error_is_config(s_verify_err(bad)));
    assert_false(pf_receipt_error_is_config(NULL));
    free(bad);
    free(tok);

    /* well signed but not a receipt */
    const char *good_claims =
        "{\"iss\":\"" ISS "\",\"iat\":1738326897,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}";
    char *t = s_sign_raw(s_key, "secevent+jwt", good_claims);
    assert_null(s_verify_err(t));
    free(t);
    t = s_sign_raw(s_key, "application/secevent+jwt", good_claims);
    assert_null(s_verify_err(t));
    free(t);
    t = s_sign_raw(s_key, "JWT", good_claims); /* a bearer token is no receipt */
    assert_string_equal(s_verify_err(t), "malformed receipt");
    free(t);
    t = s_sign_raw(s_key, NULL, good_claims);
    assert_string_equal(s_verify_err(t), "malformed receipt");
    free(t);

    const char *bad_claims[] = {
        /* two events */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"},"
        "\"urn:postfach:event:delivered\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}",
        /* unknown event */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:deleted\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}",
        /* time and time_ms disagree */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:57.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}",
        /* jti not a UUID */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"x\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}",
        /* no mailbox */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789}}}",
        /* aud as array */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":[\"s\"],\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}",
        /* bad jwe_tag */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\",\"jwe_tag\":\"@@\"}}}",
        /* no events, no iat */
        "{\"iss\":\"" ISS "\",\"iat\":1,\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\"}",
        "{\"iss\":\"" ISS "\",\"jti\":\"0194bd3c-1f75-7abc-8def-0123456789ab\","
        "\"sub\":\"0194bd3c-1f75-7abc-8def-0123456789ac\",\"aud\":\"s\",\"events\":{"
        "\"urn:postfach:event:read\":{\"time\":\"2025-01-31T12:34:56.789Z\","
        "\"time_ms\":1738326896789,\"mailbox\":\"m\"}}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad_claims) / sizeof(bad_claims[0]); i++) {
        t = s_sign_raw(s_key, "secevent+jwt", bad_claims[i]);
        const char *e = s_verify_err(t);
        if (e == NULL || strcmp(e, "malformed receipt") != 0)
            fprintf(stderr, "case %zu: %s\n", i, e ? e : "accepted");
        assert_non_null(e);
        assert_string_equal(e, "malformed receipt");
        free(t);
    }
}

/* The token's part (header or payload) as text. */
static char *s_part(const char *tok, int part)
{
    const char *a = tok;
    for (int i = 0; i < part; i++)
        a = strchr(a, '.') + 1;
    const char *b = strchr(a, '.');
    unsigned char *raw = NULL;
    size_t n = 0;
    assert_int_equal(pf_b64url_decode(a, (size_t)(b - a), &raw, &n), 0);
    char *text = xstrndup((const char *)raw, n);
    free(raw);
    return text;
}

/* The header and claims are written by hand: byte for byte what jansson
 * wrote for them before (compact, in this order, its escapes), with and
 * without the optional claims, and with texts that need escaping. */
static void test_bytes_as_jansson_wrote_them(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        pf_receipt_t r;
        s_example(&r);
        if (variant == 1) {
            r.txn = NULL;
            r.jwe_tag = NULL;
            r.sender = "Amt f\xc3\xbcr \"Hunde\" \\ Steuern/\xe2\x82\xac";
            r.mailbox = "b\xc3\xbcrger-1";
            r.event = PF_EVENT_DELIVERED;
        }
        const char *err = NULL;
        char *tok = pf_receipt_sign(s_key, ISS, &r, &err);
        assert_non_null(tok);

        json_t *ev = json_pack("{s:s, s:I, s:s}", "time", "2025-01-31T12:34:56.789Z", "time_ms",
                               (json_int_t)r.event_time_ms, "mailbox", r.mailbox);
        if (r.jwe_tag != NULL)
            json_object_set_new(ev, "jwe_tag", json_string(r.jwe_tag));
        json_t *c = json_pack("{s:s, s:I, s:s, s:s}", "iss", ISS, "iat", (json_int_t)r.iat, "jti",
                              r.jti, "sub", r.message_id);
        if (r.txn != NULL)
            json_object_set_new(c, "txn", json_string(r.txn));
        json_object_set_new(c, "aud", json_string(r.sender));
        json_t *events = json_object();
        char *urn = xasprintf("urn:postfach:event:%s", pf_event_name(r.event));
        json_object_set_new(events, urn, ev);
        json_object_set_new(c, "events", events);
        char *want = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *got = s_part(tok, 1);
        assert_string_equal(got, want);
        free(got);
        free(want);
        free(urn);
        json_decref(c);

        json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "secevent+jwt", "kid",
                              pf_key_kid(s_key));
        want = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
        got = s_part(tok, 0);
        assert_string_equal(got, want);
        free(got);
        free(want);
        json_decref(h);

        pf_receipt_t back;
        assert_int_equal(pf_receipt_verify(tok, strlen(tok), s_jwks, ISS, &back, &err), 0);
        assert_string_equal(back.sender, r.sender);
        assert_string_equal(back.mailbox, r.mailbox);
        pf_receipt_clear(&back);
        free(tok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_as_jansson_wrote_them),
        cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_sign_refuses),
        cmocka_unit_test(test_verify_refuses),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
