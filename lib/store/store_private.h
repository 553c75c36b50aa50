#ifndef PF_STORE_PRIVATE_H
#define PF_STORE_PRIVATE_H
/* Shared by the lib/store modules only. */
#include "store/store.h"

#include <libpq-fe.h>

struct pf_store {
    PGconn *conn;
    char *conninfo;
    char err[512];
};

/* Formats the store's error buffer: "what: libpq message" (one line). */
const char *pf_store_fail(pf_store_t *st, const char *what, const PGresult *res);
/* Runs a parameterised statement (text parameters, text results) and checks
 * the status; returns the result (caller PQclear()s) or NULL with *error_r. */
PGresult *pf_store_query(pf_store_t *st, const char *what, const char *sql, int nparams,
                         const char *const *values, const char **error_r);
/* Same with explicit lengths and formats (binary parameters). */
PGresult *pf_store_query_bin(pf_store_t *st, const char *what, const char *sql, int nparams,
                             const char *const *values, const int *lengths, const int *formats,
                             const char **error_r);
/* SQLSTATE of a failed result, or "" */
const char *pf_store_sqlstate(const PGresult *res);

#endif
