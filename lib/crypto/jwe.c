/* JWE compact serialisation (RFC 7516) with exactly two key-management
 * algorithms and one content encryption:
 *   ECDH-ES+A256KW (RFC 7518 4.6) for P-256 recipients: an ephemeral P-256
 *     key per message, ECDH, Concat KDF (NIST SP 800-56A 5.8.1) with
 *     SHA-256 over AlgorithmID "ECDH-ES+A256KW", PartyUInfo/PartyVInfo
 *     (apu/apv, empty unless present in the header) and keydatalen 256,
 *     then AES-256 key wrap (RFC 3394) of the content key;
 *   RSA-OAEP-256 (RFC 7518 4.3): OAEP with SHA-256 and MGF1-SHA-256, for
 *     RSA recipients of at least 3072 bits (BSI TR-02102-1);
 *   A256GCM content encryption with a 96-bit random IV and the ASCII of
 *     the base64url protected header as AAD (RFC 7516 5.1 step 14).
 *
 * Callers: the broker seals one copy per recipient (public keys only); the
 * reader opens them with the unwrapped mailbox key.
 *
 * Untrusted input: everything given to pf_jwe_parse_compact and
 * pf_jwe_open.  Decryption accepts an allowlist of header members only
 * (so "zip", "crit" and anything unknown are refused), fixes IV and tag
 * lengths, and reports every failure as the one message "cannot decrypt".
 * A content key that fails to unwrap is replaced by a random one and the
 * GCM step still runs, so a failed unwrap is neither distinguishable by
 * message nor by the work done (the RSA-OAEP oracle of RFC 7516 11.5).
 *
 * Key material (content key, ECDH secret, KEK) lives on the stack only
 * and is wiped on every path. */
#include "crypto/jose_private.h"
#include "crypto/jwk_private.h"
#include "util/b64url.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/xalloc.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S_ALG_ECDH "ECDH-ES+A256KW"
#define S_ALG_RSA "RSA-OAEP-256"
#define S_ENC "A256GCM"
#define S_CEK_LEN 32
#define S_WRAPPED_LEN (S_CEK_LEN + 8) /* RFC 3394 adds one 64-bit block */
#define S_RSA_MIN_ENC_BITS 3072
/* apu/apv name the parties; anything longer than this is not a name */
#define S_PARTY_MAX 256
/* the largest encrypted key: one RSA-8192 block */
#define S_EK_MAX 1024
/* GCM and the EVP API take int lengths: feed data in chunks */
#define S_CHUNK (1 << 30)

static const char S_FAIL[] = "cannot decrypt";

/* --- building blocks ------------------------------------------------------ */

static void s_be32(unsigned char out[4], uint32_t v)
{
    out[0] = (unsigned char)(v >> 24);
    out[1] = (unsigned char)(v >> 16);
    out[2] = (unsigned char)(v >> 8);
    out[3] = (unsigned char)v;
}

/* Concat KDF, one round: SHA-256 gives the 256 bits A256KW needs. */
static int s_concat_kdf(const unsigned char z[32], const unsigned char *apu, size_t apulen,
                        const unsigned char *apv, size_t apvlen, unsigned char kek[32])
{
    static const char alg[] = S_ALG_ECDH;
    unsigned char counter[4], l_alg[4], l_apu[4], l_apv[4], keydatalen[4];
    s_be32(counter, 1);
    s_be32(l_alg, (uint32_t)(sizeof(alg) - 1));
    s_be32(l_apu, (uint32_t)apulen);
    s_be32(l_apv, (uint32_t)apvlen);
    s_be32(keydatalen, 256);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int outlen = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, counter, 4) == 1 && EVP_DigestUpdate(md, z, 32) == 1 &&
             EVP_DigestUpdate(md, l_alg, 4) == 1 &&
             EVP_DigestUpdate(md, alg, sizeof(alg) - 1) == 1 &&
             EVP_DigestUpdate(md, l_apu, 4) == 1 && EVP_DigestUpdate(md, apu, apulen) == 1 &&
             EVP_DigestUpdate(md, l_apv, 4) == 1 && EVP_DigestUpdate(md, apv, apvlen) == 1 &&
             EVP_DigestUpdate(md, keydatalen, 4) == 1 &&
             EVP_DigestFinal_ex(md, kek, &outlen) == 1 && outlen == 32;
    EVP_MD_CTX_free(md); /* cleanses the digest state */
    return ok ? 0 : -1;
}

/* ECDH shared secret Z (the x coordinate, 32 bytes).  The peer has been
 * validated when it was imported, so OpenSSL need not check it again. */
static int s_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, unsigned char z[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    size_t zlen = 32;
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) == 1 &&
             EVP_PKEY_derive(ctx, z, &zlen) == 1 && zlen == 32;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* AES-256 key wrap (RFC 3394, default IV) of a 32-byte key, or unwrap of
 * a 40-byte one.  OpenSSL's wrap mode checks the integrity value. */
static int s_aes_kw(int enc, const unsigned char kek[32], const unsigned char *in, size_t inlen,
                    unsigned char *out, size_t outlen)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    int ok = c != NULL;
    if (ok) {
        /* wrap modes are refused by EVP unless asked for explicitly */
        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL, enc) == 1 &&
             EVP_CipherUpdate(c, out, &l1, in, (int)inlen) == 1 && l1 >= 0 &&
             EVP_CipherFinal_ex(c, out + l1, &l2) == 1 && (size_t)l1 + (size_t)l2 == outlen;
    }
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static EVP_PKEY_CTX *s_oaep_ctx(EVP_PKEY *pkey, int enc)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL)
        return NULL;
    if ((enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* AES-256-GCM over in (inlen bytes) into out (same length); tag is
 * written when encrypting and checked when decrypting. */
static int s_gcm(int enc, const unsigned char key[32], const unsigned char iv[12], const char *aad,
                 size_t aadlen, const unsigned char *in, size_t inlen, unsigned char *out,
                 unsigned char tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    int ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) == 1 && aadlen <= INT_MAX &&
             EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad, (int)aadlen) == 1;
    size_t done = 0;
    while (ok && done < inlen) {
        int chunk = inlen - done > S_CHUNK ? S_CHUNK : (int)(inlen - done);
        ok = EVP_CipherUpdate(c, out + done, &n, in + done, chunk) == 1 && n == chunk;
        done += (size_t)chunk;
    }
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    /* for decryption this is where the tag is compared */
    ok = ok && EVP_CipherFinal_ex(c, out + done, &n) == 1 && n == 0;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

/* --- seal -------------------------------------------------------------------- */

/* The ephemeral keys of ECDH-ES come from one key-generation context per
 * thread, set up once: EVP_PKEY_Q_keygen fetches the implementation and
 * sets the group on every call, which costs as much again as generating
 * the key (measured: 25 us against 12 us).  A context must not be shared
 * between threads, so it is thread-specific and freed when its thread
 * ends. */
static pthread_key_t s_keygen_key;
static pthread_once_t s_keygen_once = PTHREAD_ONCE_INIT;

static void s_keygen_free(void *ctx)
{
    EVP_PKEY_CTX_free(ctx);
}

static void s_keygen_init(void)
{
    if (pthread_key_create(&s_keygen_key, s_keygen_free) != 0)
        abort(); /* only when the process is out of keys or memory */
}

static EVP_PKEY *s_ephemeral_p256(void)
{
    pthread_once(&s_keygen_once, s_keygen_init);
    EVP_PKEY_CTX *ctx = pthread_getspecific(s_keygen_key);
    if (ctx == NULL) {
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_group_name(ctx, "P-256") != 1 ||
            pthread_setspecific(s_keygen_key, ctx) != 0) {
            EVP_PKEY_CTX_free(ctx);
            return NULL;
        }
    }
    EVP_PKEY *k = NULL;
    if (EVP_PKEY_keygen(ctx, &k) != 1) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

/* ECDH-ES+A256KW: wraps cek for recipient; appends "epk" to the header
 * being written. */
static int s_wrap_ecdh(EVP_PKEY *recipient, const unsigned char cek[32], pf_buf_t *header,
                       unsigned char ek[S_WRAPPED_LEN])
{
    EVP_PKEY *eph = s_ephemeral_p256();
    unsigned char z[32], kek[32], x[32], y[32];
    int ok =
        eph != NULL && s_ecdh(eph, recipient, z) == 0 &&
        s_concat_kdf(z, (const unsigned char *)"", 0, (const unsigned char *)"", 0, kek) == 0 &&
        s_aes_kw(1, kek, cek, S_CEK_LEN, ek, S_WRAPPED_LEN) == 0 && pf_jwk_ec_xy(eph, x, y) == 0;
    pf_wipe(z, sizeof(z));
    pf_wipe(kek, sizeof(kek));
    EVP_PKEY_free(eph); /* the ephemeral private key dies here */
    if (!ok)
        return -1;
    char *bx = pf_b64url_encode(x, 32), *by = pf_b64url_encode(y, 32);
    pf_buf_printf(header, ",\"epk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
                  bx, by);
    free(bx);
    free(by);
    return 0;
}

static int s_wrap_rsa(EVP_PKEY *recipient, const unsigned char cek[32], unsigned char **ek_r,
                      size_t *eklen_r)
{
    EVP_PKEY_CTX *ctx = s_oaep_ctx(recipient, 1);
    size_t len = 0;
    int ok = ctx != NULL && EVP_PKEY_encrypt(ctx, NULL, &len, cek, S_CEK_LEN) == 1;
    unsigned char *ek = ok ? xmalloc(len) : NULL;
    ok = ok && EVP_PKEY_encrypt(ctx, ek, &len, cek, S_CEK_LEN) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        free(ek);
        return -1;
    }
    *ek_r = ek;
    *eklen_r = len;
    return 0;
}

int pf_jwe_seal(const pf_key_t *recipient, const char *cty, const void *plaintext, size_t len,
                pf_jwe_t **jwe_r, const char **error_r)
{
    if (recipient == NULL || (plaintext == NULL && len > 0)) {
        *error_r = "no recipient key or plaintext";
        return -1;
    }
    if (recipient->rsa && recipient->bits < S_RSA_MIN_ENC_BITS) {
        *error_r = "RSA keys for encryption need at least 3072 bits";
        return -1;
    }
    /* the content key, then the IV: one draw from the generator (each
     * draw asks the kernel for the process id, OpenSSL's fork check) */
    unsigned char cek[S_CEK_LEN + sizeof(((pf_jwe_t *)0)->iv)];
    pf_random_bytes(cek, sizeof(cek));
    pf_jwe_t *jwe = xcalloc(1, sizeof(*jwe));
    /* the protected header written straight, byte for byte as jansson
     * wrote it (compact, this order); only cty can need escaping, the kid
     * and the coordinates are base64url */
    pf_buf_t header;
    pf_buf_init(&header);
    pf_buf_printf(&header, "{\"alg\":\"%s\",\"enc\":\"%s\",\"kid\":\"%s\"",
                  recipient->rsa ? S_ALG_RSA : S_ALG_ECDH, S_ENC, recipient->kid);
    int rc = 0;
    if (cty != NULL) {
        pf_buf_puts(&header, ",\"cty\":");
        rc = pf_buf_json_str(&header, cty); /* -1: not valid UTF-8 */
    }
    if (rc != 0) {
        /* nothing to wrap for */
    } else if (recipient->rsa) {
        rc = s_wrap_rsa(recipient->pkey, cek, &jwe->encrypted_key, &jwe->encrypted_key_len);
    } else {
        jwe->encrypted_key = xmalloc(S_WRAPPED_LEN);
        jwe->encrypted_key_len = S_WRAPPED_LEN;
        rc = s_wrap_ecdh(recipient->pkey, cek, &header, jwe->encrypted_key);
    }
    if (rc == 0) {
        pf_buf_puts(&header, "}");
        jwe->protected_b64 = pf_b64url_encode(header.data, header.len);
        memcpy(jwe->iv, cek + S_CEK_LEN, sizeof(jwe->iv));
        jwe->ciphertext = xmalloc(len + 1);
        jwe->ciphertext_len = len;
        rc = s_gcm(1, cek, jwe->iv, jwe->protected_b64, strlen(jwe->protected_b64), plaintext, len,
                   jwe->ciphertext, jwe->tag);
    }
    pf_wipe(cek, sizeof(cek));
    pf_buf_free(&header, 0);
    if (rc != 0) {
        pf_jwe_destroy(&jwe);
        *error_r = "encryption failed";
        return pf_jose_fail();
    }
    *jwe_r = jwe;
    return 0;
}

/* --- open -------------------------------------------------------------------- */

/* What the protected header says, once checked against the allowlist. */
typedef struct {
    EVP_PKEY *epk;
    unsigned char *apu, *apv;
    size_t apulen, apvlen;
} s_header_t;

static void s_header_clear(s_header_t *h)
{
    EVP_PKEY_free(h->epk);
    free(h->apu);
    free(h->apv);
    memset(h, 0, sizeof(*h));
}

/* The "epk" member: a P-256 public key and nothing else. */
static EVP_PKEY *s_epk(const json_t *epk)
{
    if (!json_is_object(epk) || json_object_size(epk) != 4)
        return NULL;
    const char *kty = json_string_value(json_object_get(epk, "kty"));
    const char *crv = json_string_value(json_object_get(epk, "crv"));
    unsigned char x[32], y[32];
    if (kty == NULL || strcmp(kty, "EC") != 0 || crv == NULL || strcmp(crv, "P-256") != 0 ||
        pf_jose_b64_member_fixed(epk, "x", x, 32) != 0 ||
        pf_jose_b64_member_fixed(epk, "y", y, 32) != 0)
        return NULL;
    /* validated here: a point off the curve would leak the private key
     * (invalid-curve attack) */
    return pf_jwk_ec_public(x, y);
}

static int s_check_header(const json_t *hdr, const pf_key_t *key, s_header_t *h)
{
    static const char *const allowed[] = {"alg", "enc", "kid", "cty", "typ", "epk", "apu", "apv"};
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)hdr, name, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            known = known || strcmp(name, allowed[i]) == 0;
        if (!known)
            return -1; /* "zip", "crit", "jku", ...: refused, not ignored */
        if (strcmp(name, "epk") != 0 && !json_is_string(v))
            return -1;
    }
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const char *enc = json_string_value(json_object_get(hdr, "enc"));
    if (alg == NULL || enc == NULL || strcmp(enc, S_ENC) != 0)
        return -1;
    if (key->rsa) {
        return strcmp(alg, S_ALG_RSA) == 0 && json_object_get(hdr, "epk") == NULL &&
                       json_object_get(hdr, "apu") == NULL && json_object_get(hdr, "apv") == NULL
                   ? 0
                   : -1;
    }
    if (strcmp(alg, S_ALG_ECDH) != 0)
        return -1;
    if (json_object_get(hdr, "apu") != NULL &&
        (h->apu = pf_jose_b64_member(hdr, "apu", S_PARTY_MAX, &h->apulen)) == NULL)
        return -1;
    if (json_object_get(hdr, "apv") != NULL &&
        (h->apv = pf_jose_b64_member(hdr, "apv", S_PARTY_MAX, &h->apvlen)) == NULL)
        return -1;
    h->epk = s_epk(json_object_get(hdr, "epk"));
    return h->epk != NULL ? 0 : -1;
}

/* Recovers the content key.  Returns -1 when it cannot; cek is then
 * undefined and the caller substitutes a random key. */
static int s_unwrap(const pf_key_t *key, const s_header_t *h, const pf_jwe_t *jwe,
                    unsigned char cek[S_CEK_LEN])
{
    if (!key->rsa) {
        unsigned char z[32], kek[32];
        int ok = s_ecdh(key->pkey, h->epk, z) == 0 &&
                 s_concat_kdf(z, h->apu ? h->apu : (const unsigned char *)"", h->apulen,
                              h->apv ? h->apv : (const unsigned char *)"", h->apvlen, kek) == 0 &&
                 s_aes_kw(0, kek, jwe->encrypted_key, jwe->encrypted_key_len, cek, S_CEK_LEN) == 0;
        pf_wipe(z, sizeof(z));
        pf_wipe(kek, sizeof(kek));
        return ok ? 0 : -1;
    }
    EVP_PKEY_CTX *ctx = s_oaep_ctx(key->pkey, 0);
    unsigned char buf[S_EK_MAX];
    size_t outlen = sizeof(buf);
    int ok = ctx != NULL &&
             EVP_PKEY_decrypt(ctx, buf, &outlen, jwe->encrypted_key, jwe->encrypted_key_len) == 1 &&
             outlen == S_CEK_LEN;
    if (ok)
        memcpy(cek, buf, S_CEK_LEN);
    pf_wipe(buf, sizeof(buf));
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int s_open(const pf_key_t *key, const pf_jwe_t *jwe, unsigned char **plaintext_r,
                  size_t *len_r)
{
    if (key == NULL || !key->priv || jwe == NULL || jwe->protected_b64 == NULL ||
        jwe->encrypted_key == NULL || (jwe->ciphertext == NULL && jwe->ciphertext_len > 0))
        return -1;
    if (key->rsa && key->bits < S_RSA_MIN_ENC_BITS)
        return -1;
    /* the wrapped key has one valid length per algorithm */
    size_t want_ek = key->rsa ? (size_t)(key->bits + 7) / 8 : S_WRAPPED_LEN;
    if (jwe->encrypted_key_len != want_ek || want_ek > S_EK_MAX)
        return -1;
    size_t hlen = strlen(jwe->protected_b64);
    json_t *hdr = pf_jose_b64_json(jwe->protected_b64, hlen, PF_JOSE_MAX_HEADER);
    s_header_t h;
    memset(&h, 0, sizeof(h));
    if (hdr == NULL || s_check_header(hdr, key, &h) != 0) {
        json_decref(hdr);
        s_header_clear(&h);
        return -1;
    }
    json_decref(hdr);

    unsigned char cek[S_CEK_LEN];
    int unwrap_failed = s_unwrap(key, &h, jwe, cek) != 0;
    s_header_clear(&h);
    if (unwrap_failed)
        pf_random_bytes(cek, sizeof(cek)); /* fail in GCM, like a bad tag */

    unsigned char tag[16];
    memcpy(tag, jwe->tag, sizeof(tag));
    unsigned char *pt = xmalloc(jwe->ciphertext_len + 1);
    int rc = s_gcm(0, cek, jwe->iv, jwe->protected_b64, hlen, jwe->ciphertext, jwe->ciphertext_len,
                   pt, tag);
    pf_wipe(cek, sizeof(cek));
    if (rc != 0 || unwrap_failed) {
        pf_wipe(pt, jwe->ciphertext_len);
        free(pt);
        return -1;
    }
    pt[jwe->ciphertext_len] = '\0';
    *plaintext_r = pt;
    *len_r = jwe->ciphertext_len;
    return 0;
}

int pf_jwe_open(const pf_key_t *key, const pf_jwe_t *jwe, unsigned char **plaintext_r,
                size_t *len_r, const char **error_r)
{
    if (s_open(key, jwe, plaintext_r, len_r) == 0)
        return 0;
    *error_r = S_FAIL;
    return pf_jose_fail();
}

/* --- compact serialisation ------------------------------------------------------ */

char *pf_jwe_compact(const pf_jwe_t *jwe)
{
    char *ek = pf_b64url_encode(jwe->encrypted_key, jwe->encrypted_key_len);
    char *iv = pf_b64url_encode(jwe->iv, sizeof(jwe->iv));
    char *ct = pf_b64url_encode(jwe->ciphertext, jwe->ciphertext_len);
    char *tag = pf_b64url_encode(jwe->tag, sizeof(jwe->tag));
    char *out = xasprintf("%s.%s.%s.%s.%s", jwe->protected_b64, ek, iv, ct, tag);
    free(ek);
    free(iv);
    free(ct);
    free(tag);
    return out;
}

/* Decodes part [p, p+n) into exactly want bytes (want 0: any length up
 * to max).  Returns a malloc'd buffer or NULL. */
static unsigned char *s_part(const char *p, size_t n, size_t want, size_t max, size_t *len_r)
{
    if (n / 4 * 3 > max)
        return NULL;
    unsigned char *out = NULL;
    size_t len = 0;
    if (pf_b64url_decode(p, n, &out, &len) != 0)
        return NULL;
    if ((want > 0 && len != want) || len > max) {
        free(out);
        return NULL;
    }
    *len_r = len;
    return out;
}

int pf_jwe_parse_compact(const char *s, size_t len, pf_jwe_t **jwe_r, const char **error_r)
{
    *error_r = S_FAIL;
    if (s == NULL)
        return -1;
    /* exactly five parts: find the four dots; a fifth dot is a trailing
     * part and refused */
    const char *part[5];
    size_t plen[5];
    const char *p = s, *end = s + len;
    for (int i = 0; i < 5; i++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if ((dot != NULL) != (i < 4))
            return -1;
        part[i] = p;
        plen[i] = (size_t)((dot ? dot : end) - p);
        p = dot ? dot + 1 : end;
    }
    /* the header is the AAD as text; it must be valid base64url of a size
     * we are willing to parse later */
    if (plen[0] == 0 || plen[1] == 0 || plen[0] / 4 * 3 > PF_JOSE_MAX_HEADER)
        return -1;
    size_t n;
    unsigned char *hdr = s_part(part[0], plen[0], 0, PF_JOSE_MAX_HEADER, &n);
    if (hdr == NULL)
        return -1;
    free(hdr);
    pf_jwe_t *jwe = xcalloc(1, sizeof(*jwe));
    unsigned char *iv = NULL, *tag = NULL;
    jwe->protected_b64 = xstrndup(part[0], plen[0]);
    jwe->encrypted_key = s_part(part[1], plen[1], 0, S_EK_MAX, &jwe->encrypted_key_len);
    iv = s_part(part[2], plen[2], 12, 12, &n);
    jwe->ciphertext = s_part(part[3], plen[3], 0, SIZE_MAX, &jwe->ciphertext_len);
    tag = s_part(part[4], plen[4], 16, 16, &n);
    int ok = jwe->encrypted_key != NULL && iv != NULL && jwe->ciphertext != NULL && tag != NULL;
    if (ok) {
        memcpy(jwe->iv, iv, 12);
        memcpy(jwe->tag, tag, 16);
    }
    free(iv);
    free(tag);
    if (!ok) {
        pf_jwe_destroy(&jwe);
        return -1;
    }
    *jwe_r = jwe;
    return 0;
}

char *pf_jwe_header_json(const pf_jwe_t *jwe)
{
    if (jwe == NULL || jwe->protected_b64 == NULL)
        return NULL;
    unsigned char *out = NULL;
    size_t len = 0;
    if (pf_b64url_decode(jwe->protected_b64, strlen(jwe->protected_b64), &out, &len) != 0)
        return NULL;
    return (char *)out;
}

void pf_jwe_destroy(pf_jwe_t **jwe)
{
    if (jwe == NULL || *jwe == NULL)
        return;
    free((*jwe)->protected_b64);
    free((*jwe)->encrypted_key);
    free((*jwe)->ciphertext);
    free(*jwe);
    *jwe = NULL;
}
