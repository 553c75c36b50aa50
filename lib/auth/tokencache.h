#ifndef PF_AUTH_TOKENCACHE_H
#define PF_AUTH_TOKENCACHE_H
/* Tokens verified recently, so that a citizen's next request with the same
 * token costs a hash instead of a signature check (ES256 verification was
 * a fifth of the reader's CPU per request).  Only successful verifications
 * are kept; a hit still applies the expiry (exp + skew), and an entry
 * lives at most ttl_seconds, however long the token is valid.  Keyed by
 * SHA-256 of the whole token, so the cache holds no token text. */
#include "auth/token.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pf_token_cache pf_token_cache_t;

/* Entries per set: a token stays cached until this many newer tokens of
 * its set (or its TTL) push it out. */
#define PF_TOKEN_CACHE_WAYS 4

/* slots: entries kept (rounded up to a power of two, at least 64). */
pf_token_cache_t *pf_token_cache_new(size_t slots, int ttl_seconds);
void pf_token_cache_destroy(pf_token_cache_t **cache);

/* pf_token_verify through the cache: the same contract (thread-safe). */
int pf_token_cache_verify(pf_token_cache_t *cache, const pf_token_policy_t *policy,
                          const char *token, size_t len, int64_t now, pf_token_claims_t *claims_r,
                          const char **error_r);

/* The set a token lands in (for tests that fill one set on purpose). */
size_t pf_token_cache_set_of(const pf_token_cache_t *cache, const char *token, size_t len);

/* Hits and misses so far (for tests and the log). */
void pf_token_cache_stats(pf_token_cache_t *cache, uint64_t *hits_r, uint64_t *misses_r);

#endif
