/* Reading the administration's audit; see audit.h.
 *
 * Callers: lib/admin/audit.c (postfach-ctl audit export and verify).  The
 * rows are the database's word: lib/admin recomputes their hashes rather
 * than trusting them, so nothing here interprets them beyond the id. */
#include "store/audit.h"
#include "store/store_private.h"
#include "util/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs one of the audit functions; on failure says who may, or that the
 * schema is too old, besides what the server said. */
static PGresult *s_query(pf_store_t *st, const char *sql, int nparams, const char *const *p,
                         const char **error_r)
{
    PGresult *res = pf_store_run(st, sql, nparams, p, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    const char *state = pf_store_sqlstate(res);
    const char *hint = strcmp(state, "42501") == 0
                           ? " (the audit is read by a login in postfach_auditor, "
                             "postfach-ctl role login NAME auditor, or by the owner)"
                       : strcmp(state, "42883") == 0
                           ? " (the schema is older than sql/0021: run postfach-ctl migrate)"
                           : "";
    pf_store_fail(st, "cannot read the audit", res);
    PQclear(res);
    size_t n = strlen(st->err);
    snprintf(st->err + n, sizeof(st->err) - n, "%s", hint);
    *error_r = st->err;
    return NULL;
}

int pf_store_audit_rows(pf_store_t *st, int64_t after, int limit, pf_audit_row_t **rows_r,
                        size_t *n_r, const char **error_r)
{
    char a[24], l[16];
    snprintf(a, sizeof(a), "%" PRId64, after);
    snprintf(l, sizeof(l), "%d", limit);
    const char *p[2] = {a, l};
    PGresult *res = s_query(st,
                            "SELECT id, at, login, program, action, subject, detail, prev_hash, "
                            "hash FROM admin_audit_rows($1, $2)",
                            2, p, error_r);
    if (res == NULL)
        return -1;
    size_t n = (size_t)PQntuples(res);
    pf_audit_row_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        rows[i].id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        char **f[8] = {&rows[i].at,      &rows[i].login,  &rows[i].program,   &rows[i].action,
                       &rows[i].subject, &rows[i].detail, &rows[i].prev_hash, &rows[i].hash};
        /* a NULL (a column the owner made nullable) reads as "": the hash
         * will not match, which is the point */
        for (int c = 0; c < 8; c++)
            *f[c] = xstrdup(PQgetvalue(res, r, c + 1));
    }
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

int pf_store_audit_last(pf_store_t *st, int64_t *last_id_r, char last_hash_r[65],
                        const char **error_r)
{
    PGresult *res =
        s_query(st, "SELECT last_id, last_hash FROM admin_audit_last()", 0, NULL, error_r);
    if (res == NULL)
        return -1;
    int ok = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 1) == 64;
    if (ok) {
        *last_id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        memcpy(last_hash_r, PQgetvalue(res, 0, 1), 65);
    }
    PQclear(res);
    if (!ok) {
        snprintf(st->err, sizeof(st->err),
                 "cannot read the audit: admin_audit_head holds no end of the chain");
        *error_r = st->err;
        return -1;
    }
    return 0;
}

void pf_audit_row_clear(pf_audit_row_t *row)
{
    free(row->at);
    free(row->login);
    free(row->program);
    free(row->action);
    free(row->subject);
    free(row->detail);
    free(row->prev_hash);
    free(row->hash);
    memset(row, 0, sizeof(*row));
}
