#ifndef PF_CLIENT_SEEN_H
#define PF_CLIENT_SEEN_H
/* The receipt ids a client saw last, so that a receipt the broker sends
 * again (its RACK was lost) is acknowledged again but not handed out
 * twice.  Bounded: the latest PF_SEEN_MAX ids, the oldest dropped first.
 * Found through a hash table of chains; it was a linear scan, 4,096 string
 * compares per receipt, and 16% of a sending procedure's CPU.
 * Callers: lib/client/client.c.  Zero the struct to initialise it; it
 * owns no memory. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_SEEN_MAX 4096
#define PF_SEEN_BUCKETS 8192 /* a power of two, twice PF_SEEN_MAX */

typedef struct {
    char jti[37];
    bool acked;
    uint32_t next; /* 1 + index of the next entry in its chain, 0: none */
} pf_seen_entry_t;

typedef struct {
    pf_seen_entry_t ring[PF_SEEN_MAX];
    uint32_t chain[PF_SEEN_BUCKETS]; /* 1 + index of a chain's first entry, 0: empty */
    size_t count, next;
} pf_seen_t;

/* The entry of jti, or NULL when it is not among the latest. */
pf_seen_entry_t *pf_seen_find(pf_seen_t *s, const char *jti);
/* Adds jti (not acked yet; at most 36 characters are kept), dropping the
 * oldest id when full; returns its entry.  The caller has checked with
 * pf_seen_find that it is not there. */
pf_seen_entry_t *pf_seen_add(pf_seen_t *s, const char *jti);

#endif
