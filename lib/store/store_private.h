#ifndef PF_STORE_PRIVATE_H
#define PF_STORE_PRIVATE_H
/* Shared by the lib/store modules only. */
#include "store/store.h"
#include "util/buf.h"

#include <stdbool.h>

#include <libpq-fe.h>

/* Statements prepared on this connection, found by their text (texts
 * differ within their first words, so the search is a few short compares). */
#define PF_STORE_PREPARED_MAX 48

typedef struct {
    char *sql; /* our copy of the text */
    char name[16];
} pf_prepared_t;

struct pf_store {
    PGconn *conn;
    char *conninfo;
    pf_prepared_t prepared[PF_STORE_PREPARED_MAX];
    int nprepared;
    unsigned prepared_seq;
    char role[24]; /* pf_store_open_as, "" for none */
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
/* PQexecParams through the connection's prepared statements: the first
 * call with a statement text prepares it, later calls skip the parse and
 * plan.  Same contract as PQexecParams (the result may be an error). */
PGresult *pf_store_run(pf_store_t *st, const char *sql, int nparams, const char *const *values,
                       const int *lengths, const int *formats, int result_format);
/* Appends s as a quoted element of a PostgreSQL array literal, after a
 * comma unless first: quotes and backslashes escaped, so the literal does
 * not depend on what the values hold. */
void pf_store_array_elem(pf_buf_t *b, const char *s, bool first);
/* Appends the array literal "{...}" of the n strings, each quoted as
 * pf_store_array_elem does. */
void pf_store_array_literal(pf_buf_t *b, const char *const *items, size_t n);
/* Appends the array literal of n integers (a bigint[] parameter). */
void pf_store_int_array_literal(pf_buf_t *b, const int64_t *items, size_t n);
/* SQLSTATE of a failed result, or "" */
const char *pf_store_sqlstate(const PGresult *res);

#endif
