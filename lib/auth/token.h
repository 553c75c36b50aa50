#ifndef PF_AUTH_TOKEN_H
#define PF_AUTH_TOKEN_H
/* Citizen bearer tokens: JWTs (RFC 7519) issued by the identity provider
 * (Servicekonto/BundID), verified strictly (RFC 8725 best practice).
 *
 * Verification checks, in this order: length (at most 8 KiB), the JWS
 * signature with an allowlisted alg against the provider's key set (by
 * "kid"), "typ" (absent, "JWT" or "at+jwt"), then the claims: "iss" equal
 * to the policy's issuer, "aud" (a string or an array of strings) holding
 * the policy's audience, "exp" required and not passed, "nbf" and "iat"
 * (optional) not in the future, each with the allowed clock skew, an
 * optional bound on the lifetime, "sub" well-formed, "acr" mapped to an
 * assurance level.  Uses lib/crypto only; no OpenSSL here. */
#include <stddef.h>
#include <stdint.h>

#include "crypto/jose.h"

/* Assurance levels of BSI TR-03107-1 / eIDAS, ordered: a level meets every
 * level below it. */
typedef enum {
    PF_LEVEL_NONE = 0,
    PF_LEVEL_NORMAL = 1,
    PF_LEVEL_SUBSTANTIELL = 2,
    PF_LEVEL_HOCH = 3,
} pf_level_t;

/* Parses "normal", "substantiell", "hoch" (exactly, lower case); 0 or -1. */
int pf_level_parse(const char *s, pf_level_t *level_r);
/* "none", "normal", "substantiell", "hoch"; "unknown" for other values. */
const char *pf_level_name(pf_level_t level);

typedef struct {
    const pf_keyset_t *keys;  /* identity provider's keys (JWKS) */
    const char *issuer;       /* required "iss" */
    const char *audience;     /* required in "aud" (string or array) */
    int skew_seconds;         /* allowed clock skew for exp/nbf/iat, e.g. 60 */
    const char *const *algs;  /* allowlist, e.g. {"ES256","PS256","RS256",NULL} */
    int max_lifetime_seconds; /* refuse tokens with exp - iat larger than this (0 = no check) */
} pf_token_policy_t;

#define PF_TOKEN_SUBJECT_MAX 128

typedef struct {
    char subject[PF_TOKEN_SUBJECT_MAX + 1]; /* "sub": 1..128 of [A-Za-z0-9._:@-] */
    pf_level_t level; /* from "acr"; missing or unknown value = PF_LEVEL_NONE */
    int64_t exp;      /* seconds since the epoch */
} pf_token_claims_t;

/* Issuer and audience of the development identity provider whose key
 * `postfach-ctl keys init` writes to idp.jwk (`postfach-ctl token`).  The
 * reader refuses this issuer unless told it runs for development. */
#define PF_TOKEN_DEV_ISSUER "https://idp.postfach.local"
#define PF_TOKEN_DEV_AUDIENCE "postfach-reader"

/* Largest token accepted (checked before anything is parsed). */
#define PF_TOKEN_MAX 8192

/* Verifies token (len bytes, untrusted) at time now (seconds since the
 * epoch).  0 and *claims_r filled; or -1 with *error_r one of the static,
 * non-revealing reasons "token expired", "token not yet valid", "token
 * lifetime too long", "wrong issuer", "wrong audience", "bad signature",
 * "unsupported algorithm", "malformed token", "unknown key" (never
 * anything from the token itself).  *claims_r is zeroed on failure. */
int pf_token_verify(const pf_token_policy_t *policy, const char *token, size_t len, int64_t now,
                    pf_token_claims_t *claims_r, const char **error_r);

/* Mints a development token (ES256, typ "JWT", kid = key thumbprint) with
 * iss, aud, sub, acr (unless PF_LEVEL_NONE), iat = nbf = now, exp = now +
 * ttl_seconds (1 s to 1 day) and a random jti: for `postfach-ctl token`
 * and tests.  Returns the compact JWT (caller frees) or NULL with
 * *error_r set. */
char *pf_token_mint(const pf_key_t *key, const char *issuer, const char *audience,
                    const char *subject, pf_level_t level, int64_t now, int ttl_seconds,
                    const char **error_r);

#endif
