/* Primitives (random, SHA-256, wiping, constant-time compare) and the
 * small helpers that the JOSE modules share (jose_private.h).
 *
 * Callers: every part of Postfach that needs randomness or a hash, and
 * jwk.c, jwe.c, jws.c.  The base64url/JSON helpers see untrusted input
 * (headers and JWK members from the network); they bound every decoded
 * length before allocation and refuse duplicate JSON members, because two
 * parsers that pick different duplicates are a classic confusion bug. */
#include "crypto/jose_private.h"
#include "util/b64url.h"
#include "util/xalloc.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void pf_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    /* RAND_bytes takes an int; a failing RNG is an environment we cannot
     * run in (keys and IVs would be predictable), so abort: the supervisor
     * restarts the daemon and nothing acknowledged is lost. */
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1) {
            fputs("fatal: random number generator failed\n", stderr);
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

void pf_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int outlen = 0;
    if (EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) != 1 || outlen != 32)
        abort(); /* only on out-of-memory or a broken libcrypto */
}

void pf_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        OPENSSL_cleanse(p, len);
}

int pf_memcmp_ct(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0 ? 0 : 1;
}

bool pf_jws_typ_is(const char *typ, const char *expected)
{
    if (typ == NULL || expected == NULL)
        return false;
    /* RFC 7515 4.1.9: media types are case-insensitive and "application/"
     * may be left out; both spellings name the same type. */
    if (strncasecmp(typ, "application/", 12) == 0)
        typ += 12;
    return strcasecmp(typ, expected) == 0;
}

json_t *pf_jose_b64_json(const char *b64, size_t len, size_t max_json)
{
    /* 4 base64 characters carry 3 bytes: check the encoded length first so
     * an oversized header is refused before anything is allocated. */
    if (b64 == NULL || len == 0 || len / 4 * 3 > max_json)
        return NULL;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (pf_b64url_decode(b64, len, &raw, &rawlen) != 0)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr);
    free(raw);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

unsigned char *pf_jose_b64_member(const json_t *obj, const char *name, size_t max, size_t *len_r)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return NULL;
    size_t slen = json_string_length(v);
    if (slen / 4 * 3 > max)
        return NULL;
    unsigned char *out = NULL;
    size_t outlen = 0;
    if (pf_b64url_decode(json_string_value(v), slen, &out, &outlen) != 0)
        return NULL;
    if (outlen > max) {
        pf_wipe(out, outlen);
        free(out);
        return NULL;
    }
    *len_r = outlen;
    return out;
}

int pf_jose_b64_member_fixed(const json_t *obj, const char *name, unsigned char *out, size_t len)
{
    size_t got = 0;
    unsigned char *buf = pf_jose_b64_member(obj, name, len, &got);
    if (buf == NULL)
        return -1;
    int rc = -1;
    if (got == len) {
        memcpy(out, buf, len);
        rc = 0;
    }
    pf_wipe(buf, got);
    free(buf);
    return rc;
}

int pf_jose_fail(void)
{
    ERR_clear_error();
    return -1;
}

char *pf_jose_dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s == NULL)
        abort(); /* out of memory: the objects we build are always encodable */
    return s;
}
