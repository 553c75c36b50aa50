/* Cache of verified tokens (see tokencache.h).
 *
 * Callers: the reader's request handlers, on MHD's worker threads.
 * Design: a table of sets of PF_TOKEN_CACHE_WAYS entries, the set chosen
 * by the first bytes of the token's SHA-256; one mutex around lookups and
 * stores (a few dozen nanoseconds held, against ~100 us of signature
 * verification outside it).  A store takes a free or stale entry of the
 * set, else the one used least recently, so a token is pushed out only by
 * WAYS newer ones in its own set, never by one unlucky collision (a
 * direct-mapped table lost a live token whenever two shared a slot).
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
    uint64_t touched; /* c->tick at the last store or hit */
    pf_token_claims_t claims;
} s_entry_t;

struct pf_token_cache {
    pthread_mutex_t mu;
    s_entry_t *slots; /* sets of PF_TOKEN_CACHE_WAYS, one after the other */
    size_t set_mask;
    int ttl;
    uint64_t tick;
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
    c->set_mask = n / PF_TOKEN_CACHE_WAYS - 1;
    c->ttl = ttl_seconds > 0 ? ttl_seconds : 0;
    return c;
}

void pf_token_cache_destroy(pf_token_cache_t **cp)
{
    pf_token_cache_t *c = *cp;
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    pf_wipe(c->slots, (c->set_mask + 1) * PF_TOKEN_CACHE_WAYS * sizeof(*c->slots));
    free(c->slots);
    free(c);
    *cp = NULL;
}

static size_t s_set_of_hash(const pf_token_cache_t *c, const unsigned char hash[32])
{
    size_t i = 0;
    memcpy(&i, hash, sizeof(i));
    return i & c->set_mask;
}

size_t pf_token_cache_set_of(const pf_token_cache_t *c, const char *token, size_t len)
{
    unsigned char hash[32];
    pf_sha256(token, len, hash);
    return s_set_of_hash(c, hash);
}

static bool s_fresh(const pf_token_cache_t *c, const s_entry_t *e, int64_t now, int64_t skew)
{
    return now >= e->stored && now - e->stored < c->ttl && now < e->claims.exp + skew;
}

int pf_token_cache_verify(pf_token_cache_t *c, const pf_token_policy_t *policy, const char *token,
                          size_t len, int64_t now, pf_token_claims_t *claims_r,
                          const char **error_r)
{
    if (c == NULL || c->ttl == 0 || len == 0 || len > PF_TOKEN_MAX)
        return pf_token_verify(policy, token, len, now, claims_r, error_r);
    unsigned char hash[32];
    pf_sha256(token, len, hash);
    s_entry_t *set = &c->slots[s_set_of_hash(c, hash) * PF_TOKEN_CACHE_WAYS];
    int64_t skew = policy->skew_seconds > 0 ? policy->skew_seconds : 0;
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    for (int w = 0; w < PF_TOKEN_CACHE_WAYS; w++) {
        s_entry_t *e = &set[w];
        if (!e->used || memcmp(e->hash, hash, sizeof(hash)) != 0)
            continue;
        if (s_fresh(c, e, now, skew)) {
            *claims_r = e->claims;
            e->touched = ++c->tick;
            hit = true;
        } else {
            e->used = false; /* stale: verify again, and store afresh */
        }
        break;
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
    /* another thread may have stored the same token meanwhile: reuse its
     * entry, so a token never holds two ways of its set */
    s_entry_t *victim = NULL;
    for (int w = 0; w < PF_TOKEN_CACHE_WAYS && victim == NULL; w++)
        if (set[w].used && memcmp(set[w].hash, hash, sizeof(hash)) == 0)
            victim = &set[w];
    for (int w = 0; w < PF_TOKEN_CACHE_WAYS && victim == NULL; w++)
        if (!set[w].used || !s_fresh(c, &set[w], now, skew))
            victim = &set[w];
    if (victim == NULL) {
        victim = &set[0];
        for (int w = 1; w < PF_TOKEN_CACHE_WAYS; w++)
            if (set[w].touched < victim->touched)
                victim = &set[w];
    }
    memcpy(victim->hash, hash, sizeof(hash));
    victim->claims = *claims_r;
    victim->stored = now;
    victim->touched = ++c->tick;
    victim->used = true;
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
