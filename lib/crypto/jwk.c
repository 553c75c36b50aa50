/* Keys: generation, JWK (RFC 7517/7518 section 6) import and export,
 * PKCS#8 DER for wrapping at rest, RFC 7638 thumbprints, and key sets.
 *
 * Callers: postfach-ctl (key files), the broker (recipient public keys
 * from the database), the reader (unwrapped private keys, the identity
 * provider's JWKS), jwe.c and jws.c.
 *
 * Untrusted input: JWK and JWKS text (from files, the database and the
 * identity provider) and the "epk" header of a JWE.  Only two key types are
 * admitted: EC on P-256, whose point is validated on import (an invalid
 * point in ECDH is the invalid-curve attack), and RSA of 2048 to 8192 bits
 * with the public checks of SP 800-56B.  Every member length is bounded
 * before it is decoded.
 *
 * Invariants: a pf_key_t never changes after construction (see
 * jwk_private.h); private parameters pass through our buffers only, which
 * are wiped before they are freed.  jansson has no secure free, so the
 * private members of parsed JWKs are wiped in place before the JSON is
 * released (see s_json_wipe_secrets). */
#include "crypto/jose_private.h"
#include "crypto/jwk_private.h"
#include "util/b64url.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A private RSA-8192 JWK is about 6 KiB; a JWKS of many keys stays far
 * below 1 MiB.  Both limits apply before parsing. */
#define PF_JWK_MAX (64 * 1024)
#define PF_JWKS_MAX (1024 * 1024)
#define PF_JWKS_MAX_KEYS 256
#define PF_KID_MAX 256
#define PF_RSA_MIN_BITS 2048
#define PF_RSA_MAX_BITS 8192
#define PF_RSA_MAX_BYTES (PF_RSA_MAX_BITS / 8)
/* PKCS#8 of an RSA-8192 private key is about 4.8 KiB */
#define PF_DER_MAX (16 * 1024)

static const char *const s_rsa_priv_names[] = {"d", "p", "q", "dp", "dq", "qi"};
static const char *const s_rsa_priv_params[] = {
    OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,
    OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};
#define PF_RSA_NPRIV (sizeof(s_rsa_priv_names) / sizeof(s_rsa_priv_names[0]))

/* --- helpers ------------------------------------------------------------ */

/* base64url of a big number: fixed width when pad > 0 (EC coordinates,
 * RFC 7518 6.2.1.2), else the minimal big-endian bytes (RSA, 6.3). */
static char *s_bn_b64(const BIGNUM *bn, int pad)
{
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    if (n <= 0)
        n = 1; /* zero is one zero byte */
    unsigned char *tmp = xmalloc((size_t)n);
    char *out = NULL;
    if (BN_bn2binpad(bn, tmp, n) == n)
        out = pf_b64url_encode(tmp, (size_t)n);
    pf_wipe(tmp, (size_t)n);
    free(tmp);
    return out;
}

static char *s_param_b64(const EVP_PKEY *pkey, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return NULL;
    char *out = s_bn_b64(bn, pad);
    BN_clear_free(bn);
    return out;
}

int pf_jwk_ec_xy(const EVP_PKEY *pkey, unsigned char x[32], unsigned char y[32])
{
    /* the uncompressed point in one call: each of the two BIGNUM exports
     * below converts the point to affine coordinates again (a field
     * inversion, most of a key import's time, measured) */
    unsigned char pt[65];
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                        &len) == 1 &&
        len == sizeof(pt) && pt[0] == 0x04) {
        memcpy(x, pt + 1, 32);
        memcpy(y, pt + 33, 32);
        return 0;
    }
    ERR_clear_error();
    BIGNUM *bx = NULL, *by = NULL;
    int rc = -1;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
        BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32)
        rc = 0;
    BN_free(bx);
    BN_free(by);
    return rc;
}

/* The product of the odd primes below S_SMALL_PRIME_BOUND, made once. */
#define S_SMALL_PRIME_BOUND 65536
static BIGNUM *s_small_primes;
static pthread_once_t s_small_primes_once = PTHREAD_ONCE_INIT;

static void s_small_primes_init(void)
{
    static unsigned char composite[S_SMALL_PRIME_BOUND];
    BIGNUM *prod = BN_new();
    if (prod == NULL || BN_set_word(prod, 1) != 1)
        abort(); /* out of memory at first use */
    for (unsigned long p = 3; p < S_SMALL_PRIME_BOUND; p += 2) {
        if (composite[p])
            continue;
        for (unsigned long m = p * p; m < S_SMALL_PRIME_BOUND; m += 2 * p)
            composite[m] = 1;
        if (BN_mul_word(prod, p) != 1)
            abort();
    }
    s_small_primes = prod;
}

/* No prime factor of n below 2^16 (part of s_rsa_public_ok): OpenSSL's
 * own check divides only by the primes up to 751.  gcd(n, P) = gcd(n, P
 * mod n): OpenSSL's constant-time gcd takes time in the larger operand's
 * size, and P has about 94,000 bits (1.46 s per RSA-3072 key measured, for
 * every recipient key the broker parsed); reduced first, both operands
 * have the size of n. */
static bool s_rsa_no_small_factor(const BIGNUM *n, BN_CTX *ctx)
{
    pthread_once(&s_small_primes_once, s_small_primes_init);
    BIGNUM *g = BN_new(), *r = BN_new();
    bool ok = g != NULL && r != NULL && !BN_is_zero(n) && BN_mod(r, s_small_primes, n, ctx) == 1 &&
              BN_gcd(g, n, r, ctx) == 1 && BN_is_one(g);
    BN_free(r);
    BN_free(g);
    return ok;
}

/* An RSA public key is checked here rather than by OpenSSL's public check
 * (SP 800-56B 6.4.2.1).  That check ends with Miller-Rabin on n with
 * random bases and refuses n whenever a round happens to reveal a factor,
 * so a modulus with a factor just above the trial bound of
 * s_rsa_no_small_factor was still accepted on one import and refused on
 * the next (fuzz_jwk, again: n = 83,689 x 313,301 x 2,960,623 x ...,
 * refused in 2.5-6.5% of imports).  This verdict is the same every time:
 * n odd; e odd and between 2^16 and 2^256, as SP 800-56B asks; no prime
 * factor below 2^16; and n not prime (a prime passes every Miller-Rabin
 * round, a composite fails them with all but 2^-128 probability, and one
 * round decides for nearly all, which is what the provider's check cost
 * too).  Left out: SP 800-56B also refuses prime powers.  Such a modulus,
 * like any badly made key, is weak for its holder alone, and finding one
 * deterministically costs a root per exponent up to log2(n) / 16. */
static int s_rsa_public_ok(const EVP_PKEY *pkey)
{
    BIGNUM *n = NULL, *e = NULL;
    BN_CTX *ctx = BN_CTX_new();
    int ok = ctx != NULL && EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_odd(n) &&
             BN_is_odd(e) && BN_num_bits(e) > 16 && BN_num_bits(e) <= 256 &&
             s_rsa_no_small_factor(n, ctx) && BN_check_prime(n, ctx, NULL) == 0;
    BN_free(n);
    BN_free(e);
    BN_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* Checks an imported key: the public check always (for EC the provider's
 * point on the curve and not the identity, for RSA s_rsa_public_ok), and
 * for private keys that the private half belongs to the public one. */
static int s_validate(EVP_PKEY *pkey, bool priv)
{
    bool rsa = EVP_PKEY_is_a(pkey, "RSA");
    if (rsa && s_rsa_public_ok(pkey) != 0)
        return -1;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL)
        return -1;
    /* P-256 has cofactor 1: every point on the curve other than the
     * identity has the group's prime order, so the full check's n*Q = O
     * (a scalar multiplication, 60% of importing a public key, and paid
     * for every JWE's epk and every recipient key the broker parses) proves
     * nothing more than the quick check's point-on-curve and not-identity */
    int ok = rsa || EVP_PKEY_public_check_quick(ctx) == 1;
    if (ok && priv)
        ok = EVP_PKEY_pairwise_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

static EVP_PKEY *s_fromdata(const char *type, OSSL_PARAM_BLD *bld, bool priv)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    /* private BIGNUMs were pushed from the secure allocator, so their copy
     * in params sits in the block that OSSL_PARAM_free clears */
    OSSL_PARAM_free(params);
    return pkey;
}

/* RFC 7638: SHA-256 over the required members in lexicographic order,
 * without whitespace.  The values are base64url, so need no escaping. */
/* x, y: the EC point's coordinates when the caller has them, else NULL:
 * they are read from the key. */
static int s_thumbprint(EVP_PKEY *pkey, bool rsa, const unsigned char *x, const unsigned char *y,
                        char kid[44])
{
    char *a = NULL, *b = NULL, *json = NULL;
    if (rsa) {
        a = s_param_b64(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        b = s_param_b64(pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        if (a != NULL && b != NULL)
            json = xasprintf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
    } else {
        unsigned char rx[32], ry[32];
        if (x == NULL && pf_jwk_ec_xy(pkey, rx, ry) == 0) {
            x = rx;
            y = ry;
        }
        if (x != NULL) {
            a = pf_b64url_encode(x, 32);
            b = pf_b64url_encode(y, 32);
            json = xasprintf("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b);
        }
    }
    free(a);
    free(b);
    if (json == NULL)
        return -1;
    unsigned char h[32];
    pf_sha256(json, strlen(json), h);
    free(json);
    char *t = pf_b64url_encode(h, 32);
    memcpy(kid, t, 44); /* 43 characters and the NUL */
    free(t);
    return 0;
}

/* Wraps pkey (consumed) in a key object after checking its type: only EC
 * P-256 and RSA within our bounds are admitted, whatever the source. */
/* x, y as for s_thumbprint. */
static int s_key_new_xy(EVP_PKEY *pkey, bool priv, const unsigned char *x, const unsigned char *y,
                        pf_key_t **key_r, const char **error_r)
{
    pf_key_t *key = xcalloc(1, sizeof(*key));
    key->pkey = pkey;
    key->priv = priv;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        key->rsa = true;
        key->bits = EVP_PKEY_get_bits(pkey);
        if (key->bits < PF_RSA_MIN_BITS || key->bits > PF_RSA_MAX_BITS) {
            *error_r = "RSA key size not supported (2048 to 8192 bits)";
            goto fail;
        }
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
            strcmp(group, "prime256v1") != 0) {
            *error_r = "unsupported curve (only P-256)";
            goto fail;
        }
        key->bits = 256;
    } else {
        *error_r = "unsupported key type";
        goto fail;
    }
    if (s_thumbprint(pkey, key->rsa, x, y, key->kid) != 0) {
        *error_r = "cannot read key parameters";
        goto fail;
    }
    *key_r = key;
    return 0;
fail:
    pf_key_destroy(&key);
    return -1;
}

static int s_key_new(EVP_PKEY *pkey, bool priv, pf_key_t **key_r, const char **error_r)
{
    return s_key_new_xy(pkey, priv, NULL, NULL, key_r, error_r);
}

/* --- JWK import ------------------------------------------------------------ */

/* The P-256 domain parameters, made once: a key made from the curve's
 * name builds its EC_GROUP afresh (measured 16-20 us per key, of which the
 * group is 9-12 us); a key that copies them from this template and then
 * gets its point costs 4-5 us.  Read-only after creation, so shared by all
 * threads. */
static EVP_PKEY *s_p256_params;
static pthread_once_t s_p256_once = PTHREAD_ONCE_INIT;

static void s_p256_init(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_paramgen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx, "prime256v1") != 1 ||
        EVP_PKEY_paramgen(ctx, &s_p256_params) != 1)
        abort(); /* the default provider has P-256: a broken installation */
    EVP_PKEY_CTX_free(ctx);
}

EVP_PKEY *pf_jwk_ec_public(const unsigned char x[32], const unsigned char y[32])
{
    pthread_once(&s_p256_once, s_p256_init);
    unsigned char pt[65];
    pt[0] = 0x04; /* uncompressed point (SEC 1 2.3.3) */
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    /* setting the point decodes it onto the curve (a point off the curve
     * is refused there); the quick public check below stays the rule */
    EVP_PKEY *pkey = EVP_PKEY_new();
    if (pkey == NULL || EVP_PKEY_copy_parameters(pkey, s_p256_params) != 1 ||
        EVP_PKEY_set1_encoded_public_key(pkey, pt, sizeof(pt)) != 1 ||
        s_validate(pkey, false) != 0) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NULL;
    }
    return pkey;
}

static int s_ec_import(const json_t *o, pf_key_t **key_r, const char **error_r)
{
    json_t *crv = json_object_get(o, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0) {
        *error_r = "unsupported curve (only P-256)";
        return -1;
    }
    unsigned char x[32], y[32], d[32];
    bool priv = json_object_get(o, "d") != NULL;
    if (pf_jose_b64_member_fixed(o, "x", x, 32) != 0 ||
        pf_jose_b64_member_fixed(o, "y", y, 32) != 0 ||
        (priv && pf_jose_b64_member_fixed(o, "d", d, 32) != 0)) {
        *error_r = "malformed EC key";
        return -1;
    }
    EVP_PKEY *pkey = NULL;
    if (!priv) {
        pkey = pf_jwk_ec_public(x, y);
    } else {
        unsigned char pt[65];
        pt[0] = 0x04;
        memcpy(pt + 1, x, 32);
        memcpy(pt + 33, y, 32);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        BIGNUM *bd = BN_secure_new();
        if (bld != NULL && bd != NULL && BN_bin2bn(d, 32, bd) != NULL &&
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ==
                1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bd) == 1)
            pkey = s_fromdata("EC", bld, true);
        BN_clear_free(bd);
        OSSL_PARAM_BLD_free(bld);
        pf_wipe(d, sizeof(d));
        if (pkey != NULL && s_validate(pkey, true) != 0) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    if (pkey == NULL) {
        *error_r = "invalid EC key (point not on P-256 or private key does not match)";
        return -1;
    }
    /* the thumbprint from the coordinates just read: the key holds them
     * in another form */
    return s_key_new_xy(pkey, priv, x, y, key_r, error_r);
}

/* Pushes the base64url member name of o as a BIGNUM (secure when secret).
 * The builder keeps a pointer, not a copy, so the BIGNUM is stored in
 * *bn_r for the caller to free after OSSL_PARAM_BLD_to_param.  Returns 0,
 * or -1 when absent, malformed, longer than max or zero. */
static int s_push_bn(OSSL_PARAM_BLD *bld, const json_t *o, const char *name, const char *param,
                     size_t max, bool secret, BIGNUM **bn_r)
{
    size_t len = 0;
    unsigned char *raw = pf_jose_b64_member(o, name, max, &len);
    if (raw == NULL)
        return -1;
    BIGNUM *bn = secret ? BN_secure_new() : BN_new();
    int rc = -1;
    if (bn != NULL && len > 0 && BN_bin2bn(raw, (int)len, bn) != NULL && !BN_is_zero(bn) &&
        OSSL_PARAM_BLD_push_BN(bld, param, bn) == 1)
        rc = 0;
    pf_wipe(raw, len);
    free(raw);
    *bn_r = bn;
    return rc;
}

static int s_rsa_import(const json_t *o, pf_key_t **key_r, const char **error_r)
{
    bool priv = json_object_get(o, "d") != NULL;
    if (json_object_get(o, "oth") != NULL) {
        *error_r = "multi-prime RSA keys are not supported";
        return -1;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        abort();
    BIGNUM *bn[2 + PF_RSA_NPRIV] = {NULL};
    /* n may carry one leading zero byte (RFC 7518 6.3.1.1 notes some
     * producers add it); e up to 64 bits is more than any real key uses
     * (65537), the bound only keeps it small */
    int bad =
        s_push_bn(bld, o, "n", OSSL_PKEY_PARAM_RSA_N, PF_RSA_MAX_BYTES + 1, false, &bn[0]) != 0 ||
        s_push_bn(bld, o, "e", OSSL_PKEY_PARAM_RSA_E, 8, false, &bn[1]) != 0;
    int nbits = bad ? 0 : BN_num_bits(bn[0]);
    if (!bad && (nbits < PF_RSA_MIN_BITS || nbits > PF_RSA_MAX_BITS)) {
        *error_r = "RSA key size not supported (2048 to 8192 bits)";
        bad = 2;
    }
    /* A private JWK must carry the CRT parameters too (RFC 7518 6.3.2
     * allows leaving them out, but every producer we know includes them,
     * and without them we would run the slow non-CRT path). */
    for (size_t i = 0; priv && !bad && i < PF_RSA_NPRIV; i++)
        bad = s_push_bn(bld, o, s_rsa_priv_names[i], s_rsa_priv_params[i], PF_RSA_MAX_BYTES, true,
                        &bn[2 + i]) != 0;
    EVP_PKEY *pkey = bad ? NULL : s_fromdata("RSA", bld, priv);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < sizeof(bn) / sizeof(bn[0]); i++)
        BN_clear_free(bn[i]);
    if (bad) {
        if (bad == 1)
            *error_r = "malformed RSA key";
        return -1;
    }
    if (pkey == NULL || s_validate(pkey, priv) != 0) {
        EVP_PKEY_free(pkey);
        *error_r = "invalid RSA key";
        return -1;
    }
    return s_key_new(pkey, priv, key_r, error_r);
}

static int s_key_from_json(const json_t *o, pf_key_t **key_r, const char **error_r)
{
    json_t *kty = json_object_get(o, "kty");
    if (!json_is_string(kty)) {
        *error_r = "malformed JWK (no \"kty\")";
        return -1;
    }
    if (strcmp(json_string_value(kty), "EC") == 0)
        return s_ec_import(o, key_r, error_r);
    if (strcmp(json_string_value(kty), "RSA") == 0)
        return s_rsa_import(o, key_r, error_r);
    *error_r = "unsupported key type";
    return -1;
}

/* jansson frees strings without wiping them; the private members of a
 * parsed JWK are overwritten in place first.  Writing through the pointer
 * is sound: the string buffer belongs to the json_t, which we own and are
 * about to release. */
static void s_json_wipe_secrets(json_t *o)
{
    for (size_t i = 0; i < PF_RSA_NPRIV; i++) {
        json_t *v = json_object_get(o, s_rsa_priv_names[i]);
        if (json_is_string(v))
            pf_wipe((char *)json_string_value(v), json_string_length(v));
    }
}

static json_t *s_load_object(const char *json, size_t len)
{
    json_error_t jerr;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

int pf_key_from_jwk(const char *json, size_t len, pf_key_t **key_r, const char **error_r)
{
    if (json == NULL || len > PF_JWK_MAX) {
        *error_r = "JWK too large";
        return -1;
    }
    json_t *o = s_load_object(json, len);
    if (o == NULL) {
        *error_r = "malformed JWK (not a JSON object)";
        return -1;
    }
    int rc = s_key_from_json(o, key_r, error_r);
    s_json_wipe_secrets(o);
    json_decref(o);
    return rc == 0 ? 0 : pf_jose_fail();
}

/* --- JWK export -------------------------------------------------------------- */

/* {"kty":...,<members>,"kid":<kid>} written into one buffer of the exact
 * size, so private members are never left behind by a realloc. */
static char *s_jwk_text(const pf_key_t *key, bool with_private, const char *kid)
{
    const char *names[2 + PF_RSA_NPRIV];
    char *vals[2 + PF_RSA_NPRIV];
    size_t n = 0;
    bool ok = true;
    memset(vals, 0, sizeof(vals));
    if (key->rsa) {
        names[n] = "n";
        vals[n++] = s_param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        names[n] = "e";
        vals[n++] = s_param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        for (size_t i = 0; with_private && i < PF_RSA_NPRIV; i++) {
            names[n] = s_rsa_priv_names[i];
            vals[n++] = s_param_b64(key->pkey, s_rsa_priv_params[i], 0);
        }
    } else {
        unsigned char x[32], y[32];
        ok = pf_jwk_ec_xy(key->pkey, x, y) == 0;
        names[n] = "x";
        vals[n++] = ok ? pf_b64url_encode(x, 32) : NULL;
        names[n] = "y";
        vals[n++] = ok ? pf_b64url_encode(y, 32) : NULL;
        if (with_private) {
            names[n] = "d";
            vals[n++] = s_param_b64(key->pkey, OSSL_PKEY_PARAM_PRIV_KEY, 32);
        }
    }
    /* kid may come from a foreign JWKS: let jansson escape it */
    json_t *jkid = json_string(kid);
    char *kid_json = jkid ? json_dumps(jkid, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(jkid);
    size_t total = strlen(key->rsa ? "{\"kty\":\"RSA\"" : "{\"kty\":\"EC\",\"crv\":\"P-256\"") +
                   strlen(",\"kid\":}") + (kid_json ? strlen(kid_json) : 0) +
                   strlen(",\"alg\":\"\"") + strlen(key->alg) + 1;
    for (size_t i = 0; i < n; i++) {
        ok = ok && vals[i] != NULL;
        total += vals[i] ? strlen(names[i]) + strlen(vals[i]) + 6 : 0; /* ,"n":"v" */
    }
    char *out = NULL;
    if (ok && kid_json != NULL) {
        out = xmalloc(total);
        size_t o = (size_t)snprintf(
            out, total, "%s", key->rsa ? "{\"kty\":\"RSA\"" : "{\"kty\":\"EC\",\"crv\":\"P-256\"");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(out + o, total - o, ",\"%s\":\"%s\"", names[i], vals[i]);
        if (key->alg[0] != '\0')
            o += (size_t)snprintf(out + o, total - o, ",\"alg\":\"%s\"", key->alg);
        snprintf(out + o, total - o, ",\"kid\":%s}", kid_json);
    }
    for (size_t i = 0; i < n; i++) {
        if (vals[i] != NULL) {
            pf_wipe(vals[i], strlen(vals[i]));
            free(vals[i]);
        }
    }
    free(kid_json);
    return out;
}

char *pf_key_to_jwk(const pf_key_t *key, bool with_private)
{
    if (key == NULL || (with_private && !key->priv))
        return NULL;
    return s_jwk_text(key, with_private, key->kid);
}

/* --- generation, DER, accessors ---------------------------------------------- */

int pf_key_generate(pf_key_kind_t kind, pf_key_t **key_r, const char **error_r)
{
    EVP_PKEY *pkey = NULL;
    switch (kind) {
    case PF_KEY_P256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case PF_KEY_RSA3072:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case PF_KEY_RSA4096:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    default:
        *error_r = "unknown key kind";
        return -1;
    }
    if (pkey == NULL) {
        *error_r = "key generation failed";
        return pf_jose_fail();
    }
    return s_key_new(pkey, true, key_r, error_r);
}

int pf_key_to_der(const pf_key_t *key, unsigned char **der_r, size_t *len_r, const char **error_r)
{
    if (key == NULL || !key->priv) {
        *error_r = "not a private key";
        return -1;
    }
    OSSL_ENCODER_CTX *ectx =
        OSSL_ENCODER_CTX_new_for_pkey(key->pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    unsigned char *data = NULL;
    size_t len = 0;
    int ok = ectx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 &&
             OSSL_ENCODER_to_data(ectx, &data, &len) == 1;
    OSSL_ENCODER_CTX_free(ectx);
    if (!ok) {
        *error_r = "cannot encode private key";
        return -1;
    }
    /* hand out a malloc() buffer, as everywhere in Postfach */
    *der_r = xmemdup(data, len);
    *len_r = len;
    OPENSSL_clear_free(data, len);
    return 0;
}

/* Decoding PKCS#8 through OpenSSL 3.0's decoder framework is dominated by
 * setting the decoder context up: OSSL_DECODER_CTX_new_for_pkey walks every
 * provider's decoders under global locks (measured: 1,080 us of the 1,190
 * us of one P-256 private key; the reader spent 62% of its CPU there,
 * contended by its worker threads).  A context can decode one input after
 * another into the EVP_PKEY pointer it was made for, so each thread keeps
 * one per key type, made at its first use: 110 us for P-256 and 30 us for
 * RSA-3072 then.  Freed when the thread ends. */
typedef struct {
    OSSL_DECODER_CTX *ctx[2]; /* EC, RSA */
    EVP_PKEY *out;            /* where both decode to */
} s_decoders_t;

static pthread_key_t s_decoders_key;
static pthread_once_t s_decoders_once = PTHREAD_ONCE_INIT;

static void s_decoders_free(void *p)
{
    s_decoders_t *d = p;
    for (size_t i = 0; i < 2; i++)
        OSSL_DECODER_CTX_free(d->ctx[i]);
    EVP_PKEY_free(d->out);
    free(d);
}

static void s_decoders_init(void)
{
    if (pthread_key_create(&s_decoders_key, s_decoders_free) != 0)
        abort();
}

static s_decoders_t *s_decoders(void)
{
    pthread_once(&s_decoders_once, s_decoders_init);
    s_decoders_t *d = pthread_getspecific(s_decoders_key);
    if (d != NULL)
        return d;
    d = xcalloc(1, sizeof(*d));
    static const char *const types[2] = {"EC", "RSA"};
    for (size_t i = 0; i < 2; i++) {
        d->ctx[i] = OSSL_DECODER_CTX_new_for_pkey(&d->out, "DER", "PrivateKeyInfo", types[i],
                                                  EVP_PKEY_KEYPAIR, NULL, NULL);
        if (d->ctx[i] == NULL || OSSL_DECODER_CTX_get_num_decoders(d->ctx[i]) == 0)
            abort(); /* the default provider has both: a broken installation */
    }
    if (pthread_setspecific(s_decoders_key, d) != 0)
        abort();
    return d;
}

int pf_key_from_der(const unsigned char *der, size_t len, pf_key_t **key_r, const char **error_r)
{
    if (der == NULL || len == 0 || len > PF_DER_MAX) {
        *error_r = "malformed private key";
        return -1;
    }
    s_decoders_t *d = s_decoders();
    EVP_PKEY *pkey = NULL;
    for (size_t i = 0; i < 2 && pkey == NULL; i++) {
        const unsigned char *p = der;
        size_t left = len;
        d->out = NULL;
        /* the blob was authenticated by the KEK, but a decoder that stops
         * early would still hide a bug: no trailing bytes */
        int ok = OSSL_DECODER_from_data(d->ctx[i], &p, &left) == 1 && left == 0;
        if (ok)
            pkey = d->out;
        else
            EVP_PKEY_free(d->out);
        d->out = NULL;
    }
    ERR_clear_error(); /* decoders that were tried and did not match leave entries */
    if (pkey == NULL) {
        *error_r = "malformed private key";
        return pf_jose_fail();
    }
    return s_key_new(pkey, true, key_r, error_r) == 0 ? 0 : pf_jose_fail();
}

pf_key_t *pf_key_public(const pf_key_t *key)
{
    if (key == NULL)
        return NULL;
    /* SubjectPublicKeyInfo round trip: the simplest way to drop the
     * private half with the EVP API alone */
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key->pkey, &der);
    if (len <= 0)
        abort(); /* our own valid key: only out-of-memory gets here */
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    const char *err;
    pf_key_t *out = NULL;
    if (pub == NULL || s_key_new(pub, false, &out, &err) != 0)
        abort();
    return out;
}

bool pf_key_is_private(const pf_key_t *key)
{
    return key != NULL && key->priv;
}

bool pf_key_is_rsa(const pf_key_t *key)
{
    return key != NULL && key->rsa;
}

int pf_key_bits(const pf_key_t *key)
{
    return key != NULL ? key->bits : 0;
}

const char *pf_key_kid(const pf_key_t *key)
{
    return key->kid;
}

void pf_key_destroy(pf_key_t **key)
{
    if (key == NULL || *key == NULL)
        return;
    EVP_PKEY_free((*key)->pkey); /* clears private BIGNUMs */
    free(*key);
    *key = NULL;
}

/* A second handle on the same EVP_PKEY (for key sets). */
static pf_key_t *s_key_ref(const pf_key_t *key)
{
    pf_key_t *k = xmemdup(key, sizeof(*key));
    if (EVP_PKEY_up_ref(key->pkey) != 1)
        abort();
    return k;
}

/* --- key sets ---------------------------------------------------------------- */

typedef struct {
    char *kid;
    pf_key_t *key;
} s_entry_t;

struct pf_keyset {
    s_entry_t *v;
    size_t n, cap;
};

pf_keyset_t *pf_keyset_new(void)
{
    return xcalloc(1, sizeof(pf_keyset_t));
}

void pf_keyset_add(pf_keyset_t *set, const pf_key_t *key, const char *kid)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 4;
        set->v = xrealloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->n].kid = xstrdup(kid != NULL ? kid : key->kid);
    set->v[set->n].key = s_key_ref(key);
    set->n++;
}

const pf_key_t *pf_keyset_find(const pf_keyset_t *set, const char *kid)
{
    if (set == NULL || kid == NULL)
        return NULL;
    const pf_key_t *found = NULL;
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->v[i].kid, kid) != 0)
            continue;
        /* two different keys under one kid: refuse to choose, so nobody
         * can make us verify with a key of their choosing */
        if (found != NULL && strcmp(found->kid, set->v[i].key->kid) != 0)
            return NULL;
        found = set->v[i].key;
    }
    return found;
}

const pf_key_t *pf_jwk_keyset_only(const pf_keyset_t *set)
{
    return set != NULL && set->n == 1 ? set->v[0].key : NULL;
}

size_t pf_keyset_count(const pf_keyset_t *set)
{
    return set ? set->n : 0;
}

/* Whether a JWKS entry is one we can use at all: others (OKP, P-384,
 * symmetric "oct" keys, ...) are skipped, not errors, so an identity
 * provider may publish keys for other relying parties alongside ours. */
static bool s_supported_entry(const json_t *o)
{
    const char *kty = json_string_value(json_object_get(o, "kty"));
    const char *crv = json_string_value(json_object_get(o, "crv"));
    if (kty == NULL)
        return false;
    if (strcmp(kty, "RSA") == 0)
        return true;
    return strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-256") == 0;
}

int pf_keyset_add_jwks(pf_keyset_t *set, const char *json, size_t len, bool for_sig,
                       const char **error_r)
{
    if (json == NULL || len > PF_JWKS_MAX) {
        *error_r = "JWKS too large";
        return -1;
    }
    json_t *root = s_load_object(json, len);
    json_t *keys = root ? json_object_get(root, "keys") : NULL;
    if (!json_is_array(keys) || json_array_size(keys) > PF_JWKS_MAX_KEYS) {
        json_decref(root);
        *error_r = "malformed JWKS (no \"keys\" array, or too many keys)";
        return -1;
    }
    /* parse everything first and add only when all entries are good, so
     * a failed call leaves the set as it was */
    pf_keyset_t *tmp = pf_keyset_new();
    int rc = 0;
    size_t i;
    json_t *o;
    json_array_foreach(keys, i, o)
    {
        if (!json_is_object(o)) {
            *error_r = "malformed JWKS (entry is not an object)";
            rc = -1;
            break;
        }
        json_t *use = json_object_get(o, "use");
        if (use != NULL && !json_is_string(use)) {
            *error_r = "malformed JWKS (\"use\" is not a string)";
            rc = -1;
            break;
        }
        if ((for_sig && use != NULL && strcmp(json_string_value(use), "sig") != 0) ||
            !s_supported_entry(o))
            continue;
        json_t *kid = json_object_get(o, "kid");
        if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                            json_string_length(kid) > PF_KID_MAX)) {
            *error_r = "malformed JWKS (bad \"kid\")";
            rc = -1;
            break;
        }
        /* an "alg" binds the key to one JWS algorithm; a key meant for
         * another algorithm (e.g. RSA-OAEP-256) is no signing key */
        json_t *alg = json_object_get(o, "alg");
        if (alg != NULL && !json_is_string(alg)) {
            *error_r = "malformed JWKS (\"alg\" is not a string)";
            rc = -1;
            break;
        }
        const char *algname = json_string_value(alg);
        bool sig_alg =
            algname != NULL && (strcmp(algname, "ES256") == 0 || strcmp(algname, "PS256") == 0 ||
                                strcmp(algname, "RS256") == 0);
        if (for_sig && algname != NULL && !sig_alg)
            continue;
        pf_key_t *key = NULL;
        if (s_key_from_json(o, &key, error_r) != 0) {
            rc = -1;
            break;
        }
        if (sig_alg)
            snprintf(key->alg, sizeof(key->alg), "%s", algname);
        const char *k = kid ? json_string_value(kid) : key->kid;
        const pf_key_t *other = pf_keyset_find(tmp, k);
        if (other == NULL)
            other = pf_keyset_find(set, k);
        if (other != NULL && strcmp(other->kid, key->kid) != 0) {
            pf_key_destroy(&key);
            *error_r = "malformed JWKS (two keys with one \"kid\")";
            rc = -1;
            break;
        }
        pf_keyset_add(tmp, key, k); /* s_key_ref copies alg along */
        pf_key_destroy(&key);
    }
    json_array_foreach(keys, i, o)
    {
        if (json_is_object(o))
            s_json_wipe_secrets(o);
    }
    json_decref(root);
    if (rc == 0) {
        for (i = 0; i < tmp->n; i++)
            pf_keyset_add(set, tmp->v[i].key, tmp->v[i].kid);
        rc = (int)tmp->n;
    }
    pf_keyset_destroy(&tmp);
    return rc >= 0 ? rc : pf_jose_fail();
}

char *pf_keyset_to_jwks(const pf_keyset_t *set)
{
    pf_buf_t b;
    pf_buf_init(&b);
    pf_buf_puts(&b, "{\"keys\":[");
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        char *jwk = s_jwk_text(set->v[i].key, false, set->v[i].kid);
        if (jwk == NULL)
            abort(); /* a key we validated on entry: only out-of-memory */
        if (i > 0)
            pf_buf_puts(&b, ",");
        pf_buf_puts(&b, jwk);
        free(jwk);
    }
    pf_buf_puts(&b, "]}");
    return pf_buf_steal(&b, NULL);
}

void pf_keyset_destroy(pf_keyset_t **set)
{
    if (set == NULL || *set == NULL)
        return;
    for (size_t i = 0; i < (*set)->n; i++) {
        free((*set)->v[i].kid);
        pf_key_destroy(&(*set)->v[i].key);
    }
    free((*set)->v);
    free(*set);
    *set = NULL;
}
