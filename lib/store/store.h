#ifndef PF_STORE_STORE_H
#define PF_STORE_STORE_H
/* The PostgreSQL connection of one thread, and the schema migrations.
 * lib/store is the only place that includes libpq; no libpq type leaves it.
 * Query modules beside this one (admin.c, submit.c, relay.c, mailbox.c)
 * work on the same pf_store_t.
 *
 * Errors: -1 with *error_r pointing into the store's own buffer, valid
 * until the next call on that store.  pf_store_broken() tells whether the
 * connection itself failed (then retry after pf_store_reconnect()). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pf_store pf_store_t;

/* conninfo: a libpq connection string ("host=/path port=5432 dbname=x"). */
int pf_store_open(const char *conninfo, pf_store_t **st_r, const char **error_r);
/* The same, with the session named "<program>/<role>" in pg_stat_activity
 * (pf_store_open's sessions are "<program>"), also after a reconnect:
 * role says which of a program's connections it is ("commit", "zap",
 * "wake").  Letters, digits, '.', '_' and '-'; anything else becomes '_'. */
int pf_store_open_as(const char *conninfo, const char *role, pf_store_t **st_r,
                     const char **error_r);
void pf_store_destroy(pf_store_t **st);
/* True when the connection is gone (as opposed to a query being refused). */
bool pf_store_broken(pf_store_t *st);
int pf_store_reconnect(pf_store_t *st, const char **error_r);
/* The socket to poll for NOTIFY messages (after pf_store_listen). */
int pf_store_socket(pf_store_t *st);

/* Applies every sql/NNNN_*.sql not yet applied, in order, each in its own
 * transaction under an advisory lock (several processes may race). */
int pf_store_migrate(pf_store_t *st, const char *sql_dir, int *applied_r, const char **error_r);
/* Current schema version (0 when none). */
int pf_store_schema_version(pf_store_t *st, int *version_r, const char **error_r);
/* Refuses (returns -1 with the reason) when fsync, synchronous_commit or
 * full_page_writes make an acknowledged commit losable. */
int pf_store_check_durability(pf_store_t *st, const char **error_r);

/* Runs a statement without parameters or results (BEGIN, COMMIT, ...). */
int pf_store_exec(pf_store_t *st, const char *sql, const char **error_r);

#endif
