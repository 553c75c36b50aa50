#ifndef PF_CRYPTO_JOSE_H
#define PF_CRYPTO_JOSE_H
/* JOSE on OpenSSL 3: keys (JWK), JWE compact (RFC 7516) and JWS compact
 * (RFC 7515), plus the few primitives the rest of Postfach needs (random,
 * SHA-256, key wrapping under the reader's KEK).  lib/crypto is the only
 * place that includes OpenSSL; no OpenSSL type appears in this header.
 *
 * Algorithms (allowlisted; anything else is refused):
 *   JWE alg  ECDH-ES+A256KW (P-256 keys), RSA-OAEP-256 (RSA >= 3072 bits)
 *   JWE enc  A256GCM
 *   JWS alg  ES256 (sign and verify), PS256 and RS256 (verify only, for
 *            identity-provider tokens; RSA >= 2048 bits)
 *
 * Errors: functions return 0 on success, -1 on failure with *error_r set
 * to a static, lower-case English message.  Decryption failures of any kind
 * (bad tag, wrong key, bad header, bad lengths) all give the same message,
 * "cannot decrypt", so that no oracle is offered. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PF_KEY_P256 = 1,
    PF_KEY_RSA3072 = 2,
    PF_KEY_RSA4096 = 3,
} pf_key_kind_t;

/* A public or private key (EC P-256 or RSA). Opaque. Immutable after
 * creation, so one key may be shared read-only between threads. */
typedef struct pf_key pf_key_t;

/* --- keys --------------------------------------------------------------- */
int pf_key_generate(pf_key_kind_t kind, pf_key_t **key_r, const char **error_r);
/* Parses a JWK (JSON text).  EC keys must be on P-256 with the point
 * validated; RSA keys at least 2048 bits (callers that need 3072 check
 * pf_key_bits()).  "d" (and the CRT parameters) make it a private key. */
int pf_key_from_jwk(const char *json, size_t len, pf_key_t **key_r, const char **error_r);
/* Returns a JWK as compact JSON text (caller frees) with "kty", the key
 * parameters, "kid" (see pf_key_kid) and, when with_private, the private
 * parameters.  Asking for private parts of a public key returns NULL. */
char *pf_key_to_jwk(const pf_key_t *key, bool with_private);
/* PKCS#8 DER of a private key (caller wipes and frees) and back: the form
 * the KEK wraps. */
int pf_key_to_der(const pf_key_t *key, unsigned char **der_r, size_t *len_r, const char **error_r);
int pf_key_from_der(const unsigned char *der, size_t len, pf_key_t **key_r, const char **error_r);
/* Public half of a key (a new object). */
pf_key_t *pf_key_public(const pf_key_t *key);
bool pf_key_is_private(const pf_key_t *key);
bool pf_key_is_rsa(const pf_key_t *key);
int pf_key_bits(const pf_key_t *key);
/* RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key: used as
 * "kid" everywhere.  Borrowed string, valid as long as the key. */
const char *pf_key_kid(const pf_key_t *key);
void pf_key_destroy(pf_key_t **key);

/* A set of public keys indexed by kid (a JWKS, RFC 7517 section 5). */
typedef struct pf_keyset pf_keyset_t;
pf_keyset_t *pf_keyset_new(void);
/* Parses {"keys":[...]} and adds each key.  Keys with "kid" keep it,
 * others are indexed by their thumbprint.  Entries with "use" other than
 * "sig", or with an "alg" that is not ES256/PS256/RS256, are skipped when
 * for_sig; an entry's "alg" binds the key to that one JWS algorithm.
 * Key types we do not support (OKP, other curves, "oct") are skipped; a
 * supported entry that does not parse, or a second key under a known kid,
 * fails the whole call and leaves the set unchanged.  Returns the number
 * of keys added or -1. */
int pf_keyset_add_jwks(pf_keyset_t *set, const char *json, size_t len, bool for_sig,
                       const char **error_r);
/* Adds a key (the set takes a reference of its own; key stays the caller's). */
void pf_keyset_add(pf_keyset_t *set, const pf_key_t *key, const char *kid);
/* The key named kid, or NULL when there is none, or when two different
 * keys were added under that kid (we never choose between them). */
const pf_key_t *pf_keyset_find(const pf_keyset_t *set, const char *kid);
size_t pf_keyset_count(const pf_keyset_t *set);
/* {"keys":[...]} of all public keys (caller frees). */
char *pf_keyset_to_jwks(const pf_keyset_t *set);
void pf_keyset_destroy(pf_keyset_t **set);

/* --- JWE ---------------------------------------------------------------- */
/* The five parts of a JWE compact serialisation, decoded where that is how
 * they are stored: the protected header as its base64url text (it is the
 * AAD), the others as raw bytes. */
typedef struct {
    char *protected_b64; /* base64url of the protected header JSON */
    unsigned char *encrypted_key;
    size_t encrypted_key_len;
    unsigned char iv[12];
    unsigned char *ciphertext;
    size_t ciphertext_len;
    unsigned char tag[16];
} pf_jwe_t;

/* Encrypts plaintext for recipient (a public or private key; only the
 * public half is used).  Header: {"alg":..., "enc":"A256GCM", "kid":...,
 * "cty":cty (when not NULL), "epk":{...} (ECDH-ES)}.  A fresh random
 * content key per call, wiped after use. */
int pf_jwe_seal(const pf_key_t *recipient, const char *cty, const void *plaintext, size_t len,
                pf_jwe_t **jwe_r, const char **error_r);
/* Decrypts with a private key.  Refuses alg/enc outside the allowlist,
 * "zip", "crit", wrong IV/tag length, trailing garbage: always "cannot
 * decrypt".  *plaintext_r is NUL-terminated for convenience; the caller
 * wipes and frees it. */
int pf_jwe_open(const pf_key_t *key, const pf_jwe_t *jwe, unsigned char **plaintext_r,
                size_t *len_r, const char **error_r);
/* Compact serialisation (caller frees) and its parser (input untrusted). */
char *pf_jwe_compact(const pf_jwe_t *jwe);
int pf_jwe_parse_compact(const char *s, size_t len, pf_jwe_t **jwe_r, const char **error_r);
/* The decoded protected header JSON (caller frees), or NULL. */
char *pf_jwe_header_json(const pf_jwe_t *jwe);
void pf_jwe_destroy(pf_jwe_t **jwe);

/* --- JWS ---------------------------------------------------------------- */
/* Signs payload (bytes, usually JSON) with ES256 (P-256 key) and returns
 * the compact serialisation (caller frees).  Header {"alg":"ES256",
 * "kid":kid or the key's thumbprint, "typ":typ when not NULL}. */
char *pf_jws_sign(const pf_key_t *key, const char *typ, const void *payload, size_t len,
                  const char **error_r);
/* Verifies a compact JWS against the key in set named by the header's
 * "kid" (or the only key when the set has one and the header has no kid).
 * alg must be in allowed (a NULL-terminated list drawn from "ES256",
 * "PS256", "RS256"); "none" and HMAC are never accepted; the key type must
 * match alg; "crit" is refused.  On success *payload_r (caller frees,
 * NUL-terminated) and, when header_r is not NULL, the header JSON. */
int pf_jws_verify(const char *compact, size_t len, const pf_keyset_t *set,
                  const char *const *allowed, char **payload_r, size_t *payload_len_r,
                  char **header_r, const char **error_r);
/* The errors of pf_jws_verify are exactly these static strings, so that
 * callers (token, receipt) can pass them on without revealing more:
 *   "malformed token"       not a compact JWS, bad base64url/JSON, "crit"
 *   "unsupported algorithm" alg not allowed, none/HMAC, or alg that does
 *                           not fit the key's type
 *   "unknown key"           kid not in set (or no kid and not exactly one key)
 *   "bad signature"         the signature does not verify */
/* True when a "typ" header value names the media type expected (compared
 * case-insensitively, with or without "application/"; RFC 7515 4.1.9). */
bool pf_jws_typ_is(const char *typ, const char *expected);

/* --- KEK: wrapping private keys at rest ----------------------------------- */
/* The key-encryption key lives in a file readable only by the reader (and
 * the administration tool): a keyring of lines "<kek-id> <64 hex digits>",
 * the first the current KEK, mode 0600 (pf_kek_load refuses a file readable
 * by group or others, and pf_kek_generate_file never overwrites one).
 * pf_kek_wrap wraps under the KEK it is given (the ring's first when given
 * the ring); unwrap with pf_kek_find(ring, row's kek id).  A loaded ring is
 * immutable and may be shared read-only between threads. */
typedef struct pf_kek pf_kek_t;
int pf_kek_generate_file(const char *path, const char *kek_id, const char **error_r);
int pf_kek_load(const char *path, pf_kek_t **kek_r, const char **error_r);
/* Id of the current (first) KEK of a keyring. */
const char *pf_kek_id(const pf_kek_t *kek);
/* The KEK of a keyring with that id (for unwrapping rows wrapped before a
 * rotation), or NULL.  Borrowed from the ring. */
const pf_kek_t *pf_kek_find(const pf_kek_t *ring, const char *kek_id);
/* Rotation, in the file: prepends a new random KEK (the new current one),
 * keeping the others for unwrapping.  The file stays mode 0600. */
int pf_kek_rotate_file(const char *path, const char *new_id, const char **error_r);
/* Removes an old (not the current) KEK from the file. */
int pf_kek_retire_file(const char *path, const char *kek_id, const char **error_r);
/* AES-256-GCM with a random IV; AAD binds the blob to context (e.g. the
 * mailbox id and key version) so a wrapped key cannot be moved to another
 * mailbox.  Output: version byte | iv | ciphertext | tag (caller frees);
 * AAD = version byte | kek id | NUL | context.  Unwrap failures of any
 * kind give "cannot unwrap key". */
int pf_kek_wrap(const pf_kek_t *kek, const char *context, const void *data, size_t len,
                unsigned char **out_r, size_t *outlen_r, const char **error_r);
int pf_kek_unwrap(const pf_kek_t *kek, const char *context, const unsigned char *blob, size_t len,
                  unsigned char **out_r, size_t *outlen_r, const char **error_r);
void pf_kek_destroy(pf_kek_t **kek);

/* --- primitives ----------------------------------------------------------- */
void pf_random_bytes(void *buf, size_t len); /* aborts if the RNG fails */
void pf_sha256(const void *data, size_t len, unsigned char out[32]);
/* Wipes memory (OPENSSL_cleanse). */
void pf_wipe(void *p, size_t len);
/* Constant-time comparison; 0 when equal. */
int pf_memcmp_ct(const void *a, const void *b, size_t len);

#endif
