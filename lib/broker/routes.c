/* The broker's route table (see routes.h): an array of at most
 * PF_ROUTES_MAX entries in no particular order, searched linearly.
 *
 * Invariants: no two entries have the same routing id; an entry's sender
 * is the one its connection spoke for last, so a receipt never goes to a
 * connection that spoke for another sender since.  Dropping moves the
 * last entry into the hole.  Most messages come from the connection the
 * one before came from, so that entry is looked at first (the hint).
 * Untrusted input: none; routing ids come from libzmq, sender ids and
 * keys from the ZAP handler's User-Id. */
#include "broker/routes.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pf_routes {
    pf_routes_entry_t *v;
    size_t n, cap;
    size_t hint;    /* the entry the last message came from */
    uint64_t heard; /* hearings so far: each entry's heard_seq */
};

pf_routes_t *pf_routes_new(void)
{
    return xcalloc(1, sizeof(pf_routes_t));
}

void pf_routes_destroy(pf_routes_t **rtp)
{
    pf_routes_t *rt = *rtp;
    if (rt == NULL)
        return;
    free(rt->v);
    free(rt);
    *rtp = NULL;
}

/* Heard from before b: by the caller's clock, within one of its ticks in
 * the order of hearing (the clock has milliseconds; a busy broker hears
 * many connections in one). */
static bool s_before(const pf_routes_entry_t *a, const pf_routes_entry_t *b)
{
    return a->heard_ms < b->heard_ms || (a->heard_ms == b->heard_ms && a->heard_seq < b->heard_seq);
}

static bool s_same_rid(const pf_routes_entry_t *e, const void *rid, size_t len)
{
    return e->rid_len == len && memcmp(e->rid, rid, len) == 0;
}

bool pf_routes_heard(pf_routes_t *rt, int64_t sender_id, const char *key, const void *rid,
                     size_t len, int64_t now_ms)
{
    if (len > PF_ROUTES_RID_MAX)
        return false;
    pf_routes_entry_t *e = NULL;
    if (rt->hint < rt->n && s_same_rid(&rt->v[rt->hint], rid, len))
        e = &rt->v[rt->hint];
    for (size_t i = 0; i < rt->n && e == NULL; i++)
        if (s_same_rid(&rt->v[i], rid, len))
            e = &rt->v[i];
    if (e == NULL) {
        if (rt->n == PF_ROUTES_MAX) {
            size_t old = 0;
            for (size_t i = 1; i < rt->n; i++)
                if (s_before(&rt->v[i], &rt->v[old]))
                    old = i;
            e = &rt->v[old];
        } else {
            if (rt->n == rt->cap) {
                rt->cap = rt->cap == 0 ? 16 : rt->cap * 2;
                if (rt->cap > PF_ROUTES_MAX)
                    rt->cap = PF_ROUTES_MAX;
                rt->v = xrealloc(rt->v, rt->cap * sizeof(*rt->v));
            }
            e = &rt->v[rt->n++];
        }
        memcpy(e->rid, rid, len);
        e->rid_len = len;
    }
    e->sender_id = sender_id;
    e->heard_ms = now_ms;
    e->heard_seq = ++rt->heard;
    snprintf(e->key, sizeof(e->key), "%s", key);
    rt->hint = (size_t)(e - rt->v);
    return true;
}

const pf_routes_entry_t *pf_routes_find(const pf_routes_t *rt, int64_t sender_id)
{
    const pf_routes_entry_t *best = NULL;
    for (size_t i = 0; i < rt->n; i++)
        if (rt->v[i].sender_id == sender_id && (best == NULL || s_before(best, &rt->v[i])))
            best = &rt->v[i];
    return best;
}

void pf_routes_drop(pf_routes_t *rt, const pf_routes_entry_t *e)
{
    if (e < rt->v || e >= rt->v + rt->n)
        abort(); /* not an entry of this table */
    size_t i = (size_t)(e - rt->v);
    rt->v[i] = rt->v[--rt->n];
}

size_t pf_routes_count(const pf_routes_t *rt)
{
    return rt->n;
}

static int s_id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t pf_routes_senders(const pf_routes_t *rt, int64_t **ids_r)
{
    *ids_r = NULL;
    if (rt->n == 0)
        return 0;
    int64_t *ids = xcalloc(rt->n, sizeof(*ids));
    for (size_t i = 0; i < rt->n; i++)
        ids[i] = rt->v[i].sender_id;
    qsort(ids, rt->n, sizeof(*ids), s_id_cmp);
    size_t n = 0;
    for (size_t i = 0; i < rt->n; i++)
        if (n == 0 || ids[n - 1] != ids[i])
            ids[n++] = ids[i];
    *ids_r = ids;
    return n;
}
