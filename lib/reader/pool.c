/* Database connection pool of the reader (see pool.h).
 *
 * Callers: server.c, once per request that touches the database.
 * Sized like the worker thread pool, so a get never waits in practice;
 * the wait exists for correctness should the sizes ever differ.
 * Connecting happens outside the lock: a slow or unreachable database
 * stalls only the request that needs the connection.  A connection found
 * broken is closed and opened afresh (rather than PQreset) so that its
 * session settings are applied again. */
#include "reader/pool.h"

#include "util/xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pf_store_t *st;
    bool busy;
} s_slot_t;

struct pf_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *conninfo;
    char *session_sql;
    int size;
    s_slot_t *slots;
};

pf_pool_t *pf_pool_new(const char *conninfo, int size, int statement_timeout_ms)
{
    pf_pool_t *pool = xcalloc(1, sizeof(*pool));
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->freed, NULL);
    pool->conninfo = xstrdup(conninfo);
    /* receipt_wake: the reader wakes the relay itself (wake.h, sql/0012) */
    pool->session_sql = xasprintf(
        "SET statement_timeout = %d; SET postfach.receipt_wake = 'caller'", statement_timeout_ms);
    pool->size = size > 0 ? size : 1;
    pool->slots = xcalloc((size_t)pool->size, sizeof(*pool->slots));
    return pool;
}

pf_store_t *pf_pool_get(pf_pool_t *pool, const char **error_r)
{
    pthread_mutex_lock(&pool->lock);
    s_slot_t *slot = NULL;
    for (;;) {
        /* prefer a slot with an open connection */
        for (int i = 0; i < pool->size && slot == NULL; i++)
            if (!pool->slots[i].busy && pool->slots[i].st != NULL)
                slot = &pool->slots[i];
        for (int i = 0; i < pool->size && slot == NULL; i++)
            if (!pool->slots[i].busy)
                slot = &pool->slots[i];
        if (slot != NULL)
            break;
        pthread_cond_wait(&pool->freed, &pool->lock);
    }
    slot->busy = true;
    pthread_mutex_unlock(&pool->lock);

    if (slot->st != NULL && pf_store_broken(slot->st))
        pf_store_destroy(&slot->st);
    if (slot->st == NULL) {
        if (pf_store_open(pool->conninfo, &slot->st, error_r) != 0 ||
            pf_store_exec(slot->st, pool->session_sql, error_r) != 0) {
            /* error_r of a failed exec points into the store: keep the text */
            static __thread char err[512];
            snprintf(err, sizeof(err), "%s", *error_r);
            *error_r = err;
            pf_store_destroy(&slot->st);
            pthread_mutex_lock(&pool->lock);
            slot->busy = false;
            pthread_cond_signal(&pool->freed);
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
    }
    return slot->st;
}

void pf_pool_put(pf_pool_t *pool, pf_store_t **st)
{
    if (*st == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->size; i++) {
        if (pool->slots[i].st == *st) {
            if (pf_store_broken(*st))
                pf_store_destroy(&pool->slots[i].st);
            pool->slots[i].busy = false;
            break;
        }
    }
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
    *st = NULL;
}

void pf_pool_destroy(pf_pool_t **poolp)
{
    pf_pool_t *pool = *poolp;
    if (pool == NULL)
        return;
    for (int i = 0; i < pool->size; i++)
        pf_store_destroy(&pool->slots[i].st);
    free(pool->slots);
    free(pool->conninfo);
    free(pool->session_sql);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    *poolp = NULL;
}
