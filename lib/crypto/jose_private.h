#ifndef PF_CRYPTO_JOSE_PRIVATE_H
#define PF_CRYPTO_JOSE_PRIVATE_H
/* Helpers shared by the JOSE modules of lib/crypto (jwk.c, jwe.c, jws.c).
 * Not part of the public API: nothing outside lib/crypto includes this. */
#include "crypto/jose.h"

#include <jansson.h>

/* Largest protected header we decode (JWE and JWS).  Real headers are a few
 * hundred bytes; the limit bounds allocation before JSON parsing. */
#define PF_JOSE_MAX_HEADER 8192

/* Decodes base64url text (len characters) of at most max_json decoded
 * bytes and parses it as one JSON object, refusing duplicate members and
 * trailing bytes.  Returns a new reference or NULL. */
json_t *pf_jose_b64_json(const char *b64, size_t len, size_t max_json);

/* Decodes the base64url string member name of obj into exactly len bytes
 * at out.  Returns 0, or -1 when absent, not a string or of another length
 * (out is then wiped). */
int pf_jose_b64_member_fixed(const json_t *obj, const char *name, unsigned char *out, size_t len);

/* Decodes the base64url string member name of obj; at most max decoded
 * bytes.  Returns a buffer the caller frees (wiping it if secret), or NULL
 * when absent, malformed or too long. */
unsigned char *pf_jose_b64_member(const json_t *obj, const char *name, size_t max, size_t *len_r);

/* Empties OpenSSL's per-thread error queue after a failed operation and
 * returns -1.  Stale entries would otherwise surface in the next unrelated
 * caller that reads the queue (libpq's TLS code does), with a misleading
 * message.  Our callers get our own static error strings instead. */
int pf_jose_fail(void);

/* Compact JSON text of j with members in insertion order (caller frees).
 * Aborts on out-of-memory, the only way jansson's encoder fails for the
 * objects we build. */
char *pf_jose_dump(const json_t *j);

#endif
