/* libFuzzer target: JWK and JWKS import (lib/crypto/jwk.c).  Key texts
 * come from files, from the database (mailbox public keys a citizen may
 * have supplied) and from the identity provider's JWKS over the network.
 *
 * Input: one JSON text, given to pf_key_from_jwk and to
 * pf_keyset_add_jwks (for signing and for any use).  Properties besides
 * "no crash, no leak, no undefined behaviour":
 *   - an imported key exports to a JWK that imports to the same key (same
 *     thumbprint), and a private one survives the PKCS#8 round trip that
 *     the KEK wrapping uses;
 *   - a failed JWKS call leaves the set unchanged, a successful one adds
 *     what it reports, and the set exports to a JWKS that imports again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_same_kid(const pf_key_t *a, const char *jwk, bool priv)
{
    pf_key_t *b = NULL;
    const char *err = NULL;
    if (jwk == NULL || pf_key_from_jwk(jwk, strlen(jwk), &b, &err) != 0 ||
        strcmp(pf_key_kid(a), pf_key_kid(b)) != 0 ||
        pf_key_is_private(b) != priv)
        abort();
    pf_key_destroy(&b);
}

static void s_key_roundtrip(const pf_key_t *key)
{
    char *pub = pf_key_to_jwk(key, false);
    s_same_kid(key, pub, false);
    free(pub);
    if (!pf_key_is_private(key))
        return;
    char *priv = pf_key_to_jwk(key, true);
    s_same_kid(key, priv, true);
    pf_wipe(priv, strlen(priv));
    free(priv);
    unsigned char *der = NULL;
    size_t len = 0;
    const char *err = NULL;
    pf_key_t *back = NULL;
    if (pf_key_to_der(key, &der, &len, &err) != 0 || pf_key_from_der(der, len, &back, &err) != 0 ||
        strcmp(pf_key_kid(back), pf_key_kid(key)) != 0)
        abort();
    pf_wipe(der, len);
    free(der);
    pf_key_destroy(&back);
}

static void s_keyset(const char *json, size_t size, bool for_sig)
{
    pf_keyset_t *set = pf_keyset_new();
    const char *err = NULL;
    int n = pf_keyset_add_jwks(set, json, size, for_sig, &err);
    if (n < 0) {
        if (err == NULL || pf_keyset_count(set) != 0)
            abort();
    } else if ((size_t)n != pf_keyset_count(set)) {
        abort();
    }
    if (n > 0) {
        /* what we publish must be readable by ourselves */
        char *jwks = pf_keyset_to_jwks(set);
        pf_keyset_t *again = pf_keyset_new();
        if (pf_keyset_add_jwks(again, jwks, strlen(jwks), false, &err) != n)
            abort();
        pf_keyset_destroy(&again);
        free(jwks);
    }
    pf_keyset_destroy(&set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 128 * 1024)
        return 0;
    const char *json = (const char *)data;
    pf_key_t *key = NULL;
    const char *err = NULL;
    if (pf_key_from_jwk(json, size, &key, &err) == 0) {
        s_key_roundtrip(key);
        pf_key_destroy(&key);
    } else if (err == NULL || key != NULL) {
        abort();
    }
    s_keyset(json, size, true);
    s_keyset(json, size, false);
    return 0;
}
