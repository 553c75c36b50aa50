/* Unit tests for lib/auth/token, and its usage example: a reader builds a
 * pf_token_policy_t from its configuration (issuer, audience, the
 * identity provider's JWKS) once, and calls pf_token_verify per request.
 *
 * Covers: good tokens (ours, and ES256/PS256/RS256 tokens made by
 * node-jose in tests/data/jose/), and refusal of expired, not yet valid,
 * wrong issuer/audience, alg none, HS256 keyed with the public key, unknown
 * kid, tampered, malformed and over-long tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "crypto/jose.h"
#include "util/b64url.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#define ISS "https://idp.example.de"
#define AUD "postfach"
#define NOW INT64_C(1700000000)

static const char *const s_algs[] = {"ES256", "PS256", "RS256", NULL};

static pf_key_t *s_idp, *s_stranger;
static pf_keyset_t *s_keys;
static pf_token_policy_t s_policy;

static int s_setup(void **state)
{
    (void)state;
    const char *err;
    if (pf_key_generate(PF_KEY_P256, &s_idp, &err) != 0 ||
        pf_key_generate(PF_KEY_P256, &s_stranger, &err) != 0)
        return -1;
    s_keys = pf_keyset_new();
    pf_keyset_add(s_keys, s_idp, NULL);
    s_policy = (pf_token_policy_t){.keys = s_keys,
                                   .issuer = ISS,
                                   .audience = AUD,
                                   .skew_seconds = 60,
                                   .algs = s_algs,
                                   .max_lifetime_seconds = 0};
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    pf_keyset_destroy(&s_keys);
    pf_key_destroy(&s_idp);
    pf_key_destroy(&s_stranger);
    return 0;
}

static char *s_data(const char *name)
{
    const char *root = getenv("PF_ROOT");
    char *path = xasprintf("%s/tests/data/jose/%s", root ? root : ".", name);
    char *data = NULL;
    size_t len;
    const char *err = NULL;
    int rc = pf_file_read(path, 1024 * 1024, &data, &len, &err);
    free(path);
    assert_int_equal(rc, 0);
    pf_str_rtrim(data);
    return data;
}

/* Verifies with policy p at now; returns NULL on success or the error. */
static const char *s_check(const pf_token_policy_t *p, const char *tok, int64_t now,
                           pf_token_claims_t *claims)
{
    pf_token_claims_t local;
    const char *err = NULL;
    if (claims == NULL)
        claims = &local;
    int rc = pf_token_verify(p, tok, strlen(tok), now, claims, &err);
    if (rc == 0)
        return NULL;
    assert_non_null(err);
    assert_string_equal(claims->subject, ""); /* nothing leaks out on failure */
    return err;
}

static char *s_mint(const pf_key_t *key, const char *iss, const char *aud, pf_level_t level,
                    int64_t now, int ttl)
{
    const char *err = NULL;
    char *t = pf_token_mint(key, iss, aud, "citizen-4711@example.de", level, now, ttl, &err);
    assert_non_null(t);
    return t;
}

/* Signs arbitrary claims with the IdP key (typ JWT). */
static char *s_sign(const char *claims)
{
    const char *err = NULL;
    char *t = pf_jws_sign(s_idp, "JWT", claims, strlen(claims), &err);
    assert_non_null(t);
    return t;
}

static void test_levels(void **state)
{
    (void)state;
    pf_level_t l = PF_LEVEL_NONE;
    assert_int_equal(pf_level_parse("normal", &l), 0);
    assert_int_equal(l, PF_LEVEL_NORMAL);
    assert_int_equal(pf_level_parse("substantiell", &l), 0);
    assert_int_equal(l, PF_LEVEL_SUBSTANTIELL);
    assert_int_equal(pf_level_parse("hoch", &l), 0);
    assert_int_equal(l, PF_LEVEL_HOCH);
    assert_int_equal(pf_level_parse("Hoch", &l), -1);
    assert_int_equal(pf_level_parse("none", &l), -1);
    assert_int_equal(pf_level_parse("", &l), -1);
    assert_int_equal(pf_level_parse(NULL, &l), -1);
    assert_string_equal(pf_level_name(PF_LEVEL_NONE), "none");
    assert_string_equal(pf_level_name(PF_LEVEL_SUBSTANTIELL), "substantiell");
    assert_string_equal(pf_level_name((pf_level_t)9), "unknown");
    assert_true(PF_LEVEL_HOCH > PF_LEVEL_SUBSTANTIELL && PF_LEVEL_SUBSTANTIELL > PF_LEVEL_NORMAL);
}

static void test_good_token(void **state)
{
    (void)state;
    char *t = s_mint(s_idp, ISS, AUD, PF_LEVEL_SUBSTANTIELL, NOW, 600);
    pf_token_claims_t c;
    assert_null(s_check(&s_policy, t, NOW, &c));
    assert_string_equal(c.subject, "citizen-4711@example.de");
    assert_int_equal(c.level, PF_LEVEL_SUBSTANTIELL);
    assert_int_equal(c.exp, NOW + 600);
    /* still good just before exp + skew; a little clock behind is fine */
    assert_null(s_check(&s_policy, t, NOW + 659, NULL));
    assert_null(s_check(&s_policy, t, NOW - 59, NULL));
    /* lifetime bound */
    pf_token_policy_t p = s_policy;
    p.max_lifetime_seconds = 600;
    assert_null(s_check(&p, t, NOW, NULL));
    p.max_lifetime_seconds = 599;
    assert_string_equal(s_check(&p, t, NOW, NULL), "token lifetime too long");
    free(t);
    /* no acr claim: no assurance level */
    t = s_mint(s_idp, ISS, AUD, PF_LEVEL_NONE, NOW, 600);
    assert_null(s_check(&s_policy, t, NOW, &c));
    assert_int_equal(c.level, PF_LEVEL_NONE);
    free(t);
}

static void test_times(void **state)
{
    (void)state;
    char *t = s_mint(s_idp, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600);
    assert_string_equal(s_check(&s_policy, t, NOW + 660, NULL), "token expired");
    assert_string_equal(s_check(&s_policy, t, NOW + 100000, NULL), "token expired");
    /* nbf and iat in the future (beyond the skew) */
    assert_string_equal(s_check(&s_policy, t, NOW - 61, NULL), "token not yet valid");
    free(t);
    /* exp missing, exp not a number, nbf not a number */
    const char *bad[] = {
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":\"1700000600\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600,\"nbf\":null}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":-1}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1e300}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":99999999999999999999}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *x = s_sign(bad[i]);
        assert_string_equal(s_check(&s_policy, x, NOW, NULL), "malformed token");
        free(x);
    }
    /* a fractional NumericDate is allowed (RFC 7519 2) */
    char *x =
        s_sign("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600.5}");
    assert_null(s_check(&s_policy, x, NOW, NULL));
    free(x);
}

static void test_issuer_audience(void **state)
{
    (void)state;
    char *t = s_mint(s_idp, "https://other-idp.example", AUD, PF_LEVEL_NORMAL, NOW, 600);
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "wrong issuer");
    free(t);
    t = s_mint(s_idp, ISS, "other-service", PF_LEVEL_NORMAL, NOW, 600);
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "wrong audience");
    free(t);
    const char *cases[][2] = {
        {"{\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600}", "wrong issuer"},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"exp\":1700000600}", "wrong audience"},
        {"{\"iss\":\"" ISS "\",\"aud\":[],\"sub\":\"a\",\"exp\":1700000600}", "wrong audience"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"x\",7],\"sub\":\"a\",\"exp\":1700000600}",
         "malformed token"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"],\"sub\":\"a\",\"exp\":1700000600}",
         NULL},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "X\",\"sub\":\"a\",\"exp\":1700000600}",
         "wrong audience"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *x = s_sign(cases[i][0]);
        const char *err = s_check(&s_policy, x, NOW, NULL);
        if (cases[i][1] == NULL)
            assert_null(err);
        else
            assert_string_equal(err, cases[i][1]);
        free(x);
    }
}

static void test_subject_and_level_claims(void **state)
{
    (void)state;
    const char *err = NULL;
    assert_null(pf_token_mint(s_idp, ISS, AUD, "bad subject", PF_LEVEL_NORMAL, NOW, 60, &err));
    assert_null(pf_token_mint(s_idp, ISS, AUD, "", PF_LEVEL_NORMAL, NOW, 60, &err));
    assert_null(pf_token_mint(s_idp, ISS, AUD, "a", PF_LEVEL_NORMAL, NOW, 0, &err));
    assert_null(pf_token_mint(s_idp, ISS, AUD, "a", PF_LEVEL_NORMAL, NOW, 86401, &err));
    char longsub[200];
    memset(longsub, 'a', sizeof(longsub));
    longsub[129] = '\0';
    char *claims = xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\","
                             "\"exp\":1700000600}",
                             longsub);
    char *x = s_sign(claims);
    assert_string_equal(s_check(&s_policy, x, NOW, NULL), "malformed token");
    free(x);
    free(claims);
    longsub[128] = '\0'; /* exactly 128 is fine */
    claims = xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\","
                       "\"exp\":1700000600,\"acr\":\"hoch\"}",
                       longsub);
    x = s_sign(claims);
    pf_token_claims_t c;
    assert_null(s_check(&s_policy, x, NOW, &c));
    assert_int_equal(strlen(c.subject), 128);
    assert_int_equal(c.level, PF_LEVEL_HOCH);
    free(x);
    free(claims);
    const char *cases[][2] = {
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1700000600}", "malformed token"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a/b\",\"exp\":1700000600}",
         "malformed token"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\\u0000b\",\"exp\":1700000600}",
         "malformed token"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":7,\"exp\":1700000600}",
         "malformed token"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600,\"acr\":3}",
         "malformed token"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600,\"exp\":1}",
         "malformed token"},
        {"[1]", "malformed token"},
        {"not json", "malformed token"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        x = s_sign(cases[i][0]);
        assert_string_equal(s_check(&s_policy, x, NOW, NULL), cases[i][1]);
        free(x);
    }
    /* an acr we do not know gives no level rather than an error */
    x = s_sign("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600,"
               "\"acr\":\"http://eidas.europa.eu/LoA/high\"}");
    assert_null(s_check(&s_policy, x, NOW, &c));
    assert_int_equal(c.level, PF_LEVEL_NONE);
    free(x);
}

/* A token with header h and the signature bytes sig over a good payload. */
static char *s_forge(const char *h, const void *sig, size_t siglen)
{
    const char *claims =
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600}";
    char *h64 = pf_b64url_encode(h, strlen(h));
    char *p64 = pf_b64url_encode(claims, strlen(claims));
    char *s64 = pf_b64url_encode(sig, siglen);
    char *out = xasprintf("%s.%s.%s", h64, p64, s64);
    free(h64);
    free(p64);
    free(s64);
    return out;
}

/* HMAC-SHA256 (RFC 2104) over pf_sha256, for the key-confusion test:
 * tests may not include OpenSSL. */
static void s_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                          unsigned char out[32])
{
    unsigned char k[64] = {0}, pad[64], inner[32];
    if (keylen > 64)
        pf_sha256(key, keylen, k);
    else
        memcpy(k, key, keylen);
    unsigned char *buf = xmalloc(64 + (len > 32 ? len : 32));
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    memcpy(buf, pad, 64);
    memcpy(buf + 64, msg, len);
    pf_sha256(buf, 64 + len, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    memcpy(buf, pad, 64);
    memcpy(buf + 64, inner, 32);
    pf_sha256(buf, 64 + 32, out);
    free(buf);
}

/* A token "signed" with HMAC-SHA256 keyed with the IdP's public JWK, the
 * classic key-confusion forgery. */
static char *s_hs256_forgery(void)
{
    char *pub = pf_key_to_jwk(s_idp, false);
    char *h = xasprintf("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", pf_key_kid(s_idp));
    char *t = s_forge(h, "", 0);
    char *input = xstrndup(t, (size_t)(strrchr(t, '.') - t));
    unsigned char mac[32];
    s_hmac_sha256(pub, strlen(pub), input, strlen(input), mac);
    char *m64 = pf_b64url_encode(mac, 32);
    char *hs = xasprintf("%s.%s", input, m64);
    free(m64);
    free(input);
    free(t);
    free(h);
    free(pub);
    return hs;
}

static void test_algorithms(void **state)
{
    (void)state;
    /* alg none, with and without a signature part */
    char *t = s_forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", "", 0);
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "unsupported algorithm");
    *strrchr(t, '.') = '\0';
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "malformed token");
    free(t);

    /* HS256 keyed with the public key as the verifier publishes it */
    char *hs = s_hs256_forgery();
    assert_string_equal(s_check(&s_policy, hs, NOW, NULL), "unsupported algorithm");
    free(hs);

    /* a good ES256 token, but the policy allows RSA only */
    char *good = s_mint(s_idp, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600);
    const char *rsa_only[] = {"PS256", "RS256", NULL};
    pf_token_policy_t p = s_policy;
    p.algs = rsa_only;
    assert_string_equal(s_check(&p, good, NOW, NULL), "unsupported algorithm");
    free(good);
}

static void test_keys_and_signatures(void **state)
{
    (void)state;
    /* signed by a key the IdP's set does not hold */
    char *t = s_mint(s_stranger, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600);
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "unknown key");
    free(t);
    /* the stranger's key claiming the IdP's kid */
    t = s_mint(s_idp, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600);
    char *sig = strrchr(t, '.') + 1;
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "bad signature");
    free(t);
    /* payload changed after signing (sub swapped) */
    t = s_mint(s_idp, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600);
    char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
    const char *forged = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"victim\","
                         "\"exp\":1700000600,\"acr\":\"hoch\"}";
    char *p64 = pf_b64url_encode(forged, strlen(forged));
    char *x = xasprintf("%.*s.%s%s", (int)(dot1 - t), t, p64, dot2);
    assert_string_equal(s_check(&s_policy, x, NOW, NULL), "bad signature");
    free(x);
    free(p64);
    /* signature truncated */
    t[strlen(t) - 4] = '\0';
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "bad signature");
    free(t);
    /* a receipt-type token signed by the IdP key is not a bearer token */
    const char *err = NULL;
    const char *claims =
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600}";
    t = pf_jws_sign(s_idp, "secevent+jwt", claims, strlen(claims), &err);
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "malformed token");
    free(t);
    t = pf_jws_sign(s_idp, "at+jwt", claims, strlen(claims), &err);
    assert_null(s_check(&s_policy, t, NOW, NULL));
    free(t);
    t = pf_jws_sign(s_idp, NULL, claims, strlen(claims), &err);
    assert_null(s_check(&s_policy, t, NOW, NULL));
    free(t);
}

static void test_limits(void **state)
{
    (void)state;
    /* over 8 KiB: refused before parsing, even if otherwise valid */
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *claims = xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\","
                             "\"exp\":1700000600,\"pad\":\"%s\"}",
                             big);
    char *t = s_sign(claims);
    assert_null(s_check(&s_policy, t, NOW, NULL));
    free(t);
    free(claims);
    char *huge = xmalloc(PF_TOKEN_MAX + 100);
    memset(huge, 'x', PF_TOKEN_MAX + 99);
    huge[PF_TOKEN_MAX + 99] = '\0';
    claims = xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\","
                       "\"exp\":1700000600,\"pad\":\"%s\"}",
                       huge);
    t = s_sign(claims);
    assert_string_equal(s_check(&s_policy, t, NOW, NULL), "malformed token");
    free(t);
    free(claims);
    free(huge);
    const char *err = NULL;
    pf_token_claims_t c;
    assert_int_equal(pf_token_verify(&s_policy, "", 0, NOW, &c, &err), -1);
    assert_string_equal(err, "malformed token");
    assert_int_equal(pf_token_verify(&s_policy, "a.b.c", 5, NOW, &c, &err), -1);
    assert_string_equal(err, "malformed token");
    pf_token_policy_t p = s_policy;
    p.issuer = NULL;
    assert_int_equal(pf_token_verify(&p, "a.b.c", 5, NOW, &c, &err), -1);
}

/* ES256, PS256 and RS256 tokens made by node-jose against its JWKS. */
static void test_node_tokens(void **state)
{
    (void)state;
    char *jwks = s_data("idp.jwks");
    pf_keyset_t *keys = pf_keyset_new();
    const char *err = NULL;
    assert_int_equal(pf_keyset_add_jwks(keys, jwks, strlen(jwks), true, &err), 3);
    pf_token_policy_t p = {.keys = keys,
                           .issuer = ISS,
                           .audience = AUD,
                           .skew_seconds = 60,
                           .algs = s_algs,
                           .max_lifetime_seconds = 3600};
    const char *files[] = {"es256.jwt", "ps256.jwt", "rs256.jwt"};
    const char *es_only[] = {"ES256", NULL};
    for (size_t i = 0; i < 3; i++) {
        char *t = s_data(files[i]);
        pf_token_claims_t c;
        const char *e = s_check(&p, t, NOW + 100, &c);
        if (e != NULL)
            fprintf(stderr, "%s: %s\n", files[i], e);
        assert_null(e);
        assert_string_equal(c.subject, "citizen-4711@example.de");
        assert_int_equal(c.level, PF_LEVEL_SUBSTANTIELL);
        assert_int_equal(c.exp, NOW + 600);
        assert_string_equal(s_check(&p, t, NOW + 700, NULL), "token expired");
        /* our own IdP key set does not know node's keys */
        assert_string_equal(s_check(&s_policy, t, NOW + 100, NULL), "unknown key");
        pf_token_policy_t q = p;
        q.algs = es_only;
        if (i == 0)
            assert_null(s_check(&q, t, NOW + 100, NULL));
        else
            assert_string_equal(s_check(&q, t, NOW + 100, NULL), "unsupported algorithm");
        free(t);
    }
    pf_keyset_destroy(&keys);
    free(jwks);
}

/* The token cases, each through the real verifier (and, for the
 * assurance level, the reader's comparison with the notice's level): every
 * one is refused with its own clear reason, a good token is accepted, and
 * the count is printed for the record. */
typedef struct {
    const char *name;
    char *token;
    const pf_token_policy_t *policy;
    pf_level_t required; /* the notice's level (PF_LEVEL_NONE: listing) */
    const char *want;    /* the verifier's reason, or "level too low" */
} s_case_t;

static char *s_tamper(char *t, bool payload)
{
    if (payload) {
        char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
        const char *forged = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"victim\","
                             "\"exp\":1700000600,\"acr\":\"hoch\"}";
        char *p64 = pf_b64url_encode(forged, strlen(forged));
        char *x = xasprintf("%.*s.%s%s", (int)(dot1 - t), t, p64, dot2);
        free(p64);
        free(t);
        return x;
    }
    char *sig = strrchr(t, '.') + 1;
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    return t;
}

static void test_token_cases(void **state)
{
    (void)state;
    const char *rsa_only[] = {"PS256", "RS256", NULL};
    pf_token_policy_t rsa_policy = s_policy;
    rsa_policy.algs = rsa_only;
    const char *no_exp = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}";
    char *none = s_forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", "", 0);
    s_case_t cases[] = {
        {"expired", s_mint(s_idp, ISS, AUD, PF_LEVEL_HOCH, NOW - 7200, 600), &s_policy,
         PF_LEVEL_NONE, "token expired"},
        {"not yet valid", s_mint(s_idp, ISS, AUD, PF_LEVEL_HOCH, NOW + 3600, 600), &s_policy,
         PF_LEVEL_NONE, "token not yet valid"},
        {"wrong iss", s_mint(s_idp, "https://evil.example", AUD, PF_LEVEL_HOCH, NOW, 600),
         &s_policy, PF_LEVEL_NONE, "wrong issuer"},
        {"wrong aud", s_mint(s_idp, ISS, "another-service", PF_LEVEL_HOCH, NOW, 600), &s_policy,
         PF_LEVEL_NONE, "wrong audience"},
        {"alg none", none, &s_policy, PF_LEVEL_NONE, "unsupported algorithm"},
        {"HS256 with the public key", s_hs256_forgery(), &s_policy, PF_LEVEL_NONE,
         "unsupported algorithm"},
        {"alg outside the allowlist", s_mint(s_idp, ISS, AUD, PF_LEVEL_HOCH, NOW, 600), &rsa_policy,
         PF_LEVEL_NONE, "unsupported algorithm"},
        {"unknown kid", s_mint(s_stranger, ISS, AUD, PF_LEVEL_HOCH, NOW, 600), &s_policy,
         PF_LEVEL_NONE, "unknown key"},
        {"tampered signature", s_tamper(s_mint(s_idp, ISS, AUD, PF_LEVEL_HOCH, NOW, 600), false),
         &s_policy, PF_LEVEL_NONE, "bad signature"},
        {"tampered claims", s_tamper(s_mint(s_idp, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600), true),
         &s_policy, PF_LEVEL_NONE, "bad signature"},
        {"no exp", s_sign(no_exp), &s_policy, PF_LEVEL_NONE, "malformed token"},
        {"too low assurance level", s_mint(s_idp, ISS, AUD, PF_LEVEL_NORMAL, NOW, 600), &s_policy,
         PF_LEVEL_SUBSTANTIELL, "level too low"},
        {"no assurance level for a normal notice", s_mint(s_idp, ISS, AUD, PF_LEVEL_NONE, NOW, 600),
         &s_policy, PF_LEVEL_NORMAL, "level too low"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]), refused = 0;
    for (size_t i = 0; i < n; i++) {
        pf_token_claims_t claims;
        const char *err = s_check(cases[i].policy, cases[i].token, NOW, &claims);
        if (err == NULL && claims.level < cases[i].required)
            err = "level too low";
        if (err == NULL)
            fail_msg("token case \"%s\" was accepted", cases[i].name);
        if (strcmp(err, cases[i].want) != 0)
            fail_msg("token case \"%s\": \"%s\", want \"%s\"", cases[i].name, err, cases[i].want);
        refused++;
        free(cases[i].token);
    }
    /* and the same verifier still lets a good one in */
    char *good = s_mint(s_idp, ISS, AUD, PF_LEVEL_SUBSTANTIELL, NOW, 600);
    pf_token_claims_t claims;
    assert_null(s_check(&s_policy, good, NOW, &claims));
    assert_true(claims.level >= PF_LEVEL_SUBSTANTIELL);
    free(good);
    printf("token cases: %zu refused of %zu\n", refused, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_good_token),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_issuer_audience),
        cmocka_unit_test(test_subject_and_level_claims),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_keys_and_signatures),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_node_tokens),
        cmocka_unit_test(test_token_cases),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
