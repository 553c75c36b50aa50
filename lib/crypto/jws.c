/* JWS compact serialisation (RFC 7515): ES256 signing for receipts and
 * development tokens, and verification of ES256, PS256 and RS256 (RFC 7518
 * 3.3, 3.4, 3.5) for identity-provider tokens and receipts.
 *
 * Callers: lib/auth (citizen tokens), lib/receipt (receipts), tools.
 *
 * Untrusted input: the whole compact string given to pf_jws_verify.  The
 * algorithm is taken from the header but only out of the caller's
 * allowlist, and only when it fits the type of the key found by "kid", so
 * neither "none", nor HMAC keyed with a public key, nor an RSA/EC swap can
 * get through (the alg-confusion attacks on JWT libraries).  "crit" is
 * refused, since we understand no extension.  ES256 signatures must be the
 * 64-byte R||S form of RFC 7518 3.4, converted to DER for OpenSSL; RSA
 * signatures must be exactly the modulus length.  PS256 uses a salt as
 * long as the hash (32 bytes), as RFC 7518 3.5 requires. */
#include "crypto/jose_private.h"
#include "crypto/jwk_private.h"
#include "util/b64url.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/xalloc.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Receipts and tokens are a few KiB; nothing we verify comes near this. */
#define S_JWS_MAX (1024 * 1024)
#define S_SIG_MAX 1024 /* RSA-8192 */

static const char S_MALFORMED[] = "malformed token";
static const char S_UNSUPPORTED[] = "unsupported algorithm";
static const char S_UNKNOWN_KEY[] = "unknown key";
static const char S_BAD_SIG[] = "bad signature";

typedef enum { S_ES256 = 1, S_PS256, S_RS256 } s_alg_t;

static s_alg_t s_alg(const char *name)
{
    if (strcmp(name, "ES256") == 0)
        return S_ES256;
    if (strcmp(name, "PS256") == 0)
        return S_PS256;
    if (strcmp(name, "RS256") == 0)
        return S_RS256;
    return 0;
}

/* --- ECDSA signature forms ---------------------------------------------------- */

static int s_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (sig == NULL)
        return -1;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

static unsigned char *s_raw_to_der(const unsigned char raw[64], size_t *len_r)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return NULL;
    }
    unsigned char *der = NULL;
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (len <= 0)
        return NULL;
    *len_r = (size_t)len;
    return der; /* OPENSSL_free */
}

/* --- sign ----------------------------------------------------------------------- */

/* Each thread keeps the signing context of the key it signed with last
 * (the service signs every receipt with one key): setting a context up
 * fetches the algorithm and copies the key, 4-6 us of a 25 us signature.
 * The context holds a reference to its EVP_PKEY, so an equal pointer is
 * the same key.  Freed when the thread ends or signs with another key. */
static pthread_key_t s_sign_key;
static pthread_once_t s_sign_once = PTHREAD_ONCE_INIT;

static void s_sign_ctx_free(void *ctx)
{
    EVP_PKEY_CTX_free(ctx);
}

static void s_sign_init(void)
{
    if (pthread_key_create(&s_sign_key, s_sign_ctx_free) != 0)
        abort(); /* only when the process is out of keys or memory */
}

static EVP_PKEY_CTX *s_sign_ctx(EVP_PKEY *pkey)
{
    pthread_once(&s_sign_once, s_sign_init);
    EVP_PKEY_CTX *ctx = pthread_getspecific(s_sign_key);
    if (ctx != NULL && EVP_PKEY_CTX_get0_pkey(ctx) == pkey)
        return ctx;
    EVP_PKEY_CTX_free(ctx);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    if (pthread_setspecific(s_sign_key, ctx) != 0)
        abort();
    return ctx;
}

char *pf_jws_sign(const pf_key_t *key, const char *typ, const void *payload, size_t len,
                  const char **error_r)
{
    if (key == NULL || !key->priv || key->rsa) {
        *error_r = "signing needs a private P-256 key";
        return NULL;
    }
    if (payload == NULL && len > 0) {
        *error_r = "no payload";
        return NULL;
    }
    /* the header written straight, as jansson wrote it (compact, this
     * order); the kid is base64url and needs no escaping */
    pf_buf_t hb;
    pf_buf_init(&hb);
    pf_buf_puts(&hb, "{\"alg\":\"ES256\"");
    if (typ != NULL) {
        pf_buf_puts(&hb, ",\"typ\":");
        if (pf_buf_json_str(&hb, typ) != 0) {
            pf_buf_free(&hb, 0);
            *error_r = "typ is not valid UTF-8";
            return NULL;
        }
    }
    pf_buf_printf(&hb, ",\"kid\":\"%s\"}", key->kid);
    char *h64 = pf_b64url_encode(hb.data, hb.len);
    pf_buf_free(&hb, 0);
    char *p64 = pf_b64url_encode(payload, len);
    char *input = xasprintf("%s.%s", h64, p64);
    free(h64);
    free(p64);

    unsigned char der[80]; /* DER of two 256-bit integers: at most 72 bytes */
    size_t derlen = sizeof(der);
    unsigned char raw[64], digest[32];
    pf_sha256(input, strlen(input), digest);
    EVP_PKEY_CTX *ctx = s_sign_ctx(key->pkey);
    int ok = ctx != NULL && EVP_PKEY_sign(ctx, der, &derlen, digest, sizeof(digest)) == 1 &&
             s_der_to_raw(der, derlen, raw) == 0;
    if (!ok) {
        free(input);
        *error_r = "signing failed";
        pf_jose_fail();
        return NULL;
    }
    char *s64 = pf_b64url_encode(raw, sizeof(raw));
    char *out = xasprintf("%s.%s", input, s64);
    free(input);
    free(s64);
    return out;
}

/* --- verify --------------------------------------------------------------------- */

static bool s_allowed(const char *alg, const char *const *allowed)
{
    for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++)
        if (strcmp(alg, allowed[i]) == 0)
            return true;
    return false;
}

static int s_check_sig(const pf_key_t *key, s_alg_t alg, const char *input, size_t inlen,
                       const unsigned char *sig, size_t siglen)
{
    unsigned char *der = NULL;
    size_t derlen = 0;
    if (alg == S_ES256) {
        if (siglen != 64 || (der = s_raw_to_der(sig, &derlen)) == NULL)
            return -1;
        sig = der;
        siglen = derlen;
    } else if (siglen != (size_t)(key->bits + 7) / 8) {
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL; /* owned by md */
    int ok = md != NULL && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key->pkey) == 1;
    if (ok && alg == S_PS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
    else if (ok && alg == S_RS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    ok = ok && EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input, inlen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok ? 0 : -1;
}

int pf_jws_verify(const char *compact, size_t len, const pf_keyset_t *set,
                  const char *const *allowed, char **payload_r, size_t *payload_len_r,
                  char **header_r, const char **error_r)
{
    *error_r = S_MALFORMED;
    if (compact == NULL || len == 0 || len > S_JWS_MAX)
        return -1;
    const char *end = compact + len;
    const char *d1 = memchr(compact, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return -1; /* not three parts (JWE, detached or trailing parts) */
    size_t hlen = (size_t)(d1 - compact);
    json_t *hdr = pf_jose_b64_json(compact, hlen, PF_JOSE_MAX_HEADER);
    if (hdr == NULL)
        return -1;
    int rc = -1;
    unsigned char *sig = NULL, *payload = NULL;
    size_t siglen = 0, plen = 0;
    const char *algname = json_string_value(json_object_get(hdr, "alg"));
    json_t *kid = json_object_get(hdr, "kid");
    if (algname == NULL || json_object_get(hdr, "crit") != NULL ||
        (kid != NULL && !json_is_string(kid)))
        goto out;
    s_alg_t alg = s_alg(algname);
    if (alg == 0 || !s_allowed(algname, allowed)) {
        *error_r = S_UNSUPPORTED; /* "none", "HS256", ... and anything not asked for */
        goto out;
    }
    const pf_key_t *key =
        kid != NULL ? pf_keyset_find(set, json_string_value(kid)) : pf_jwk_keyset_only(set);
    if (key == NULL) {
        *error_r = S_UNKNOWN_KEY;
        goto out;
    }
    if ((alg == S_ES256) == key->rsa || (key->alg[0] != '\0' && strcmp(key->alg, algname) != 0)) {
        /* alg does not fit the key (or the key's JWKS "alg"): confusion */
        *error_r = S_UNSUPPORTED;
        goto out;
    }
    size_t slen = (size_t)(end - d2 - 1);
    *error_r = S_BAD_SIG;
    if (slen == 0 || slen / 4 * 3 > S_SIG_MAX || pf_b64url_decode(d2 + 1, slen, &sig, &siglen) != 0)
        goto out;
    if (s_check_sig(key, alg, compact, (size_t)(d2 - compact), sig, siglen) != 0)
        goto out;
    /* only a verified payload is decoded and handed out */
    *error_r = S_MALFORMED;
    if (pf_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &payload, &plen) != 0)
        goto out;
    if (header_r != NULL) {
        unsigned char *h = NULL;
        size_t n = 0;
        if (pf_b64url_decode(compact, hlen, &h, &n) != 0)
            goto out;
        *header_r = (char *)h;
    }
    *payload_r = (char *)payload;
    payload = NULL;
    if (payload_len_r != NULL)
        *payload_len_r = plen;
    rc = 0;
out:
    free(sig);
    free(payload);
    json_decref(hdr);
    return rc == 0 ? 0 : pf_jose_fail();
}
