#ifndef PF_BROKER_SEAL_H
#define PF_BROKER_SEAL_H
/* The broker's crypto workers: threads that turn an accepted SEND into
 * its stored form (the notice document, one JWE per recipient, one signed
 * "delivered" receipt per copy, the ACK text), so that encryption uses
 * every core while the main thread keeps the ROUTER socket and the
 * database connections.
 *
 * Work is handed over in batches: pf_seal_pool_submit queues every item
 * of a batch; workers take items one by one; when the last item of a
 * batch is done the batch is put on the done list and the pool's eventfd
 * becomes readable.  The main thread polls that fd and collects batches
 * with pf_seal_pool_done.  Items only borrow (the SEND, the sender name,
 * the recipient keys): the caller keeps them alive and unchanged until
 * the batch comes back.  pf_key_t is immutable, so a key may be used by
 * several workers at once. */
#include "crypto/jose.h"
#include "proto/wire.h"
#include "store/submit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* in (borrowed) */
    const pf_wire_send_t *send;
    const char *sender_name;
    int64_t sender_id;
    const unsigned char *hash;   /* 32 bytes, the payload hash */
    const pf_key_t *const *keys; /* one per recipient */
    const int *versions;
    /* out: sub (with copies) is ready for pf_store_committer_send; the
     * rest is owned here and freed by pf_seal_item_clear */
    bool ok;
    const char *error; /* static text when !ok */
    pf_submit_t sub;
    pf_jwe_t **jwes;
    char **tokens;
} pf_seal_item_t;

typedef struct pf_seal_batch {
    pf_seal_item_t *items;
    size_t count;
    void *owner; /* the caller's, untouched */
    /* the pool's bookkeeping */
    size_t next_, done_;
    struct pf_seal_batch *link_;
} pf_seal_batch_t;

typedef struct pf_seal_pool pf_seal_pool_t;

/* Starts threads workers (at least 1) that sign receipts with
 * receipt_key (borrowed, immutable) as issuer (copied).  Returns 0 or -1
 * with *error_r. */
int pf_seal_pool_new(int threads, const pf_key_t *receipt_key, const char *issuer,
                     pf_seal_pool_t **pool_r, const char **error_r);
/* Queues a batch (borrowed until it comes back from pf_seal_pool_done). */
void pf_seal_pool_submit(pf_seal_pool_t *pool, pf_seal_batch_t *batch);
/* Readable when a batch is done. */
int pf_seal_pool_fd(const pf_seal_pool_t *pool);
/* A finished batch, or NULL when none is. */
pf_seal_batch_t *pf_seal_pool_done(pf_seal_pool_t *pool);
/* Waits for every queued batch, then stops the threads; finished batches
 * not collected are lost to the caller, so collect first. */
void pf_seal_pool_destroy(pf_seal_pool_t **pool);

/* Seals one item on the calling thread (what the workers run). */
void pf_seal_item(pf_seal_item_t *it, const pf_key_t *receipt_key, const char *issuer);
void pf_seal_item_clear(pf_seal_item_t *it);

#endif
