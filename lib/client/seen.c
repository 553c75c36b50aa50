/* The latest receipt ids of a client: a ring in the order they came, and
 * chains through it by hash value (see seen.h). */
#include "client/seen.h"

#include <stdio.h>
#include <string.h>

/* FNV-1a over the text: the ids come from the broker, which the procedure
 * trusts with its receipts anyway, so a keyed hash would buy nothing. */
static uint32_t s_bucket(const char *jti)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)jti; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (PF_SEEN_BUCKETS - 1);
}

pf_seen_entry_t *pf_seen_find(pf_seen_t *s, const char *jti)
{
    for (uint32_t i = s->chain[s_bucket(jti)]; i != 0; i = s->ring[i - 1].next)
        if (strcmp(s->ring[i - 1].jti, jti) == 0)
            return &s->ring[i - 1];
    return NULL;
}

pf_seen_entry_t *pf_seen_add(pf_seen_t *s, const char *jti)
{
    uint32_t slot = (uint32_t)s->next;
    pf_seen_entry_t *e = &s->ring[slot];
    s->next = (s->next + 1) % PF_SEEN_MAX;
    if (s->count < PF_SEEN_MAX) {
        s->count++;
    } else {
        /* full: this slot holds the oldest id, which leaves its chain */
        uint32_t *link = &s->chain[s_bucket(e->jti)];
        while (*link != slot + 1)
            link = &s->ring[*link - 1].next;
        *link = e->next;
    }
    snprintf(e->jti, sizeof(e->jti), "%s", jti);
    e->acked = false;
    uint32_t *head = &s->chain[s_bucket(e->jti)];
    e->next = *head;
    *head = slot + 1;
    return e;
}
