/* Cache of verified tokens (see tokencache.h).
 *
 * Callers: the reader's request handlers, on MHD's worker threads.
 * Design: a direct-mapped table indexed by the first bytes of the token's
 * SHA-256, one mutex around lookups and stores (a few dozen nanoseconds
 * held, against ~100 us of signature verification outside it).  A
 * collision replaces the older entry; nothing is ever evicted by scanning.
 * Invariants: an entry is stored only after pf_token_verify succeeded for
 * exactly those bytes; a hit compares all 32 bytes of the hash and checks
 * the token's exp with the policy's skew at the time of the request, so a
 * cached token expires exactly when a verified one would.  The policy's
 * key set, issuer and audience are fixed for the reader's lifetime, so an
 * entry cannot outlive what it was verified against by more than its TTL. */
#include "auth/tokencache.h"

#include "crypto/jose.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char hash[32];
    bool used;
    int64_t stored; /* seconds since the epoch */
    pf_token_claims_t claims;
} s_entry_t;

struct pf_token_cache {
    pthread_mutex_t mu;
    s_entry_t *slots;
    size_t mask;
    int ttl;
    uint64_t hits, misses;
};

pf_token_cache_t *pf_token_cache_new(size_t slots, int ttl_seconds)
{
    size_t n = 64;
    while (n < slots && n < ((size_t)1 << 24))
        n <<= 1;
    pf_token_cache_t *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->slots = xcalloc(n, sizeof(*c->slots));
    c->mask = n - 1;
    c->ttl = ttl_seconds > 0 ? ttl_seconds : 0;
    return c;
}

void pf_token_cache_destroy(pf_token_cache_t **cp)
{
    pf_token_cache_t *c = *cp;
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    pf_wipe(c->slots, (c->mask + 1) * sizeof(*c->slots));
    free(c->slots);
    free(c);
    *cp = NULL;
}

static size_t s_index(const pf_token_cache_t *c, const unsigned char hash[32])
{
    size_t i = 0;
    memcpy(&i, hash, sizeof(i));
    return i & c->mask;
}

int pf_token_cache_verify(pf_token_cache_t *c, const pf_token_policy_t *policy, const char *token,
                          size_t len, int64_t now, pf_token_claims_t *claims_r,
                          const char **error_r)
{
    if (c == NULL || c->ttl == 0 || len == 0 || len > PF_TOKEN_MAX)
        return pf_token_verify(policy, token, len, now, claims_r, error_r);
    unsigned char hash[32];
    pf_sha256(token, len, hash);
    size_t i = s_index(c, hash);
    int64_t skew = policy->skew_seconds > 0 ? policy->skew_seconds : 0;
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    s_entry_t *e = &c->slots[i];
    if (e->used && memcmp(e->hash, hash, sizeof(hash)) == 0) {
        if (now >= e->stored && now - e->stored < c->ttl && now < e->claims.exp + skew) {
            *claims_r = e->claims;
            hit = true;
        } else {
            e->used = false; /* stale: verify again, and store afresh */
        }
    }
    if (hit)
        c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    if (hit)
        return 0;

    if (pf_token_verify(policy, token, len, now, claims_r, error_r) != 0)
        return -1;
    pthread_mutex_lock(&c->mu);
    e = &c->slots[i];
    memcpy(e->hash, hash, sizeof(hash));
    e->claims = *claims_r;
    e->stored = now;
    e->used = true;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void pf_token_cache_stats(pf_token_cache_t *c, uint64_t *hits_r, uint64_t *misses_r)
{
    pthread_mutex_lock(&c->mu);
    *hits_r = c->hits;
    *misses_r = c->misses;
    pthread_mutex_unlock(&c->mu);
}
