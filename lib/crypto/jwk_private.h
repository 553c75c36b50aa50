#ifndef PF_CRYPTO_JWK_PRIVATE_H
#define PF_CRYPTO_JWK_PRIVATE_H
/* The key object behind pf_key_t, for the other JOSE modules of
 * lib/crypto (jwe.c, jws.c).  Nothing outside lib/crypto includes this. */
#include "crypto/jose.h"

#include <openssl/evp.h>

/* Immutable after construction: every field is set by the constructor, so
 * a key may be read by several threads at once.  Sharing between a key and
 * a key set goes through EVP_PKEY_up_ref (atomic in OpenSSL), not through
 * a counter of our own. */
struct pf_key {
    EVP_PKEY *pkey;
    bool priv;    /* holds the private half */
    bool rsa;     /* RSA, else EC P-256 (no other types are admitted) */
    int bits;     /* modulus bits (RSA) or 256 */
    char kid[44]; /* RFC 7638 thumbprint, 43 base64url characters */
    /* The JWS algorithm a JWKS entry restricts the key to ("alg" member,
     * RFC 7517 4.4; RFC 8725 3.1: one key, one algorithm), or empty for
     * any algorithm that fits the key type.  Set only in key-set copies. */
    char alg[8];
};

/* A validated P-256 public key from its affine coordinates (as in an "epk"
 * header).  Returns NULL when the point is not on the curve. */
EVP_PKEY *pf_jwk_ec_public(const unsigned char x[32], const unsigned char y[32]);
/* The affine coordinates of an EC P-256 key.  Returns 0 or -1. */
int pf_jwk_ec_xy(const EVP_PKEY *pkey, unsigned char x[32], unsigned char y[32]);
/* The key of a set that holds exactly one key, else NULL (for JWS headers
 * without "kid"). */
const pf_key_t *pf_jwk_keyset_only(const pf_keyset_t *set);

#endif
