#ifndef PF_RECEIPT_RECEIPT_H
#define PF_RECEIPT_RECEIPT_H
/* Receipts: Security Event Tokens (RFC 8417), JWS ES256 signed by the
 * service's receipt key, header {"alg":"ES256","typ":"secevent+jwt",
 * "kid":<thumbprint>}.  Anyone with the service's JWKS can verify them
 * offline (e.g. with node-jose: jwtVerify(..., {typ: "secevent+jwt"})).
 *
 * Claims:
 *   {"iss":issuer, "iat":<seconds>, "jti":<UUIDv7>, "sub":<message id>,
 *    "txn":<sender's request id>, "aud":<sender>,
 *    "events":{"urn:postfach:event:<name>":{
 *        "time":"<RFC 3339 UTC with milliseconds>", "time_ms":<int>,
 *        "mailbox":<recipient mailbox id>, "jwe_tag":<base64url>}}}
 * "txn" and "jwe_tag" are left out when NULL (a rejected submission has
 * no copy and so no tag). */
#include <stddef.h>
#include <stdint.h>

#include "crypto/jose.h"

typedef enum {
    PF_EVENT_DELIVERED = 1,
    PF_EVENT_READ,
    PF_EVENT_EXPIRED,
    PF_EVENT_REJECTED
} pf_event_t;

/* "delivered", "read", "expired", "rejected"; NULL for other values. */
const char *pf_event_name(pf_event_t e);
/* Parses those names; 0 or -1. */
int pf_event_parse(const char *s, pf_event_t *e_r);

typedef struct {
    char jti[37];        /* UUIDv7 text (util/uuid7.h) */
    char message_id[37]; /* "sub" */
    char *txn;           /* the sender's request id of the submission ("txn" claim) */
    char *sender;        /* sender name ("aud") */
    char *mailbox;       /* recipient mailbox id */
    pf_event_t event;
    int64_t event_time_ms; /* when it happened (ms since epoch) */
    int64_t iat;           /* seconds; 0 = now, when signing */
    char *jwe_tag;         /* base64url JWE authentication tag of the copy */
} pf_receipt_t;

/* Signs r with key (a private P-256 key).  Returns the compact JWS (caller
 * frees) or NULL with *error_r set (static text) when r is not well-formed:
 * ids must be UUID texts, sender and mailbox present, strings bounded. */
char *pf_receipt_sign(const pf_key_t *key, const char *issuer, const pf_receipt_t *r,
                      const char **error_r);
/* Verifies token (untrusted, len bytes) against keys (ES256 only, typ
 * "secevent+jwt") and, when issuer_or_null is not NULL, its "iss"; parses
 * it into *r_r (owned strings; free with pf_receipt_clear).  Checks exactly
 * one event of a known name, well-formed ids and a "time" that matches
 * "time_ms".  0, or -1 with *error_r static and *r_r zeroed. */
/* True for the errors of pf_receipt_verify and pf_receipt_check_audience
 * that say the receipt may well be genuine, but the verifier does not know
 * its key or expects another issuer or audience ("unknown key", "wrong
 * issuer", "wrong audience": the receipt key was rotated, or a name is
 * misconfigured, or the receipt was misrouted).  Such a receipt must not be
 * acknowledged as if it were forged: it can verify once the configuration
 * is right. */
bool pf_receipt_error_is_config(const char *error);
int pf_receipt_verify(const char *token, size_t len, const pf_keyset_t *keys,
                      const char *issuer_or_null, pf_receipt_t *r_r, const char **error_r);
/* A verified receipt's "aud" (the sender it is for) against the audience
 * the verifier expects: NULL when it matches, else the static error
 * "wrong audience". */
const char *pf_receipt_check_audience(const pf_receipt_t *r, const char *audience);
/* Frees the strings of r and zeroes it; r may be zeroed already. */
void pf_receipt_clear(pf_receipt_t *r);

#endif
