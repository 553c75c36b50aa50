#ifndef PF_READER_POOL_H
#define PF_READER_POOL_H
/* A fixed-size pool of database connections for the reader's worker
 * threads (a libpq connection must not be used by two threads at once).
 * Connections are opened on first use and replaced when broken, so the
 * reader starts and keeps running while the database is away. */
#include "store/store.h"

typedef struct pf_pool pf_pool_t;

/* statement_timeout_ms bounds every statement of the pool's sessions. */
pf_pool_t *pf_pool_new(const char *conninfo, int size, int statement_timeout_ms);
/* Takes a connection, waiting while all are in use.  Returns NULL with
 * *error_r when none can be opened (the database is down). */
pf_store_t *pf_pool_get(pf_pool_t *pool, const char **error_r);
/* Gives it back; a broken connection is closed, to be reopened on the next
 * get.  *st is NULL afterwards. */
void pf_pool_put(pf_pool_t *pool, pf_store_t **st);
/* All connections must have been put back. */
void pf_pool_destroy(pf_pool_t **pool);

#endif
