#ifndef PF_BROKER_ROUTES_H
#define PF_BROKER_ROUTES_H
/* The broker's route table: where receipts can go.  One entry per
 * connection (ROUTER routing id) that spoke, with the sender it
 * authenticated as, the CURVE key it used and when it last spoke.  A
 * receipt for a sender goes to the sender's entry heard from last; when
 * that connection is gone, the caller drops the entry and asks again, so
 * a procedure that runs a receipt listener beside short-lived senders
 * keeps getting its receipts.  Bounded: a full table forgets the entry
 * heard from longest ago (whichever sender it belongs to).
 *
 * A plain data structure, no sockets: the caller passes the time, which
 * makes the order of eviction testable.  Callers: lib/broker/broker.c
 * (main thread only; no locking).  An entry pointer returned by
 * pf_routes_find is valid until the next pf_routes_heard or
 * pf_routes_drop. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_ROUTES_MAX 4096    /* entries; then the one heard from longest ago goes */
#define PF_ROUTES_RID_MAX 256 /* libzmq's routing ids are at most 255 bytes */

typedef struct {
    int64_t sender_id;
    unsigned char rid[PF_ROUTES_RID_MAX]; /* ROUTER routing id of the connection */
    size_t rid_len;
    char key[41];       /* the CURVE key (Z85) that connection authenticated with */
    int64_t heard_ms;   /* when it last spoke */
    uint64_t heard_seq; /* the table's count of hearings then: orders the
                         * entries heard within one millisecond */
} pf_routes_entry_t;

typedef struct pf_routes pf_routes_t;

pf_routes_t *pf_routes_new(void);
void pf_routes_destroy(pf_routes_t **rt);

/* Notes that connection rid spoke at now_ms as sender_id with key (Z85; at
 * most 40 characters are kept).  A connection already known takes the
 * sender and key it speaks with now (the last word counts, and receipts
 * for the sender it spoke for before no longer go there); a new one gets
 * an entry, in place of the one heard from longest ago when the table is
 * full (within one millisecond: the one heard first).  Returns false, noting nothing, when
 * rid is longer than PF_ROUTES_RID_MAX. */
bool pf_routes_heard(pf_routes_t *rt, int64_t sender_id, const char *key, const void *rid,
                     size_t rid_len, int64_t now_ms);

/* The sender's entry heard from last (within one millisecond: the one
 * heard last), or NULL when the sender has none. */
const pf_routes_entry_t *pf_routes_find(const pf_routes_t *rt, int64_t sender_id);

/* Forgets an entry that pf_routes_find returned (its connection is gone,
 * or its key is no longer the sender's). */
void pf_routes_drop(pf_routes_t *rt, const pf_routes_entry_t *e);

/* The number of entries. */
size_t pf_routes_count(const pf_routes_t *rt);

/* The senders that have an entry, each once, ascending, in *ids_r (the
 * caller frees it; NULL when there are none).  Returns their number. */
size_t pf_routes_senders(const pf_routes_t *rt, int64_t **ids_r);

#endif
