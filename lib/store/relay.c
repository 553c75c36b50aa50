/* Receipt outbox queries for the broker's relay (see relay.h).
 *
 * Callers: lib/broker, on the broker's main connection.
 * Invariants: every statement has "sender_id = ..." from the ZAP-
 * authenticated sender in its WHERE clause; claims use FOR UPDATE SKIP
 * LOCKED so several brokers can relay from one outbox without sending a
 * receipt twice at the same moment (twice over time is allowed: delivery
 * is at least once, the procedure dedups by jti).  Arrays are passed as
 * array literals built from integers and validated UUID texts only. */
#include "store/relay.h"
#include "store/store_private.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pf_store_relay_claim(pf_store_t *st, const int64_t *sender_ids, size_t nsenders, int limit,
                         int retry_seconds, pf_relay_receipt_t **rows_r, size_t *n_r,
                         const char **error_r)
{
    *rows_r = NULL;
    *n_r = 0;
    if (nsenders == 0)
        return 0;
    pf_buf_t ids;
    pf_buf_init(&ids);
    pf_buf_puts(&ids, "{");
    for (size_t i = 0; i < nsenders; i++)
        pf_buf_printf(&ids, "%s%lld", i ? "," : "", (long long)sender_ids[i]);
    pf_buf_puts(&ids, "}");
    char lim[16], retry[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(retry, sizeof(retry), "%d", retry_seconds);
    const char *p[3] = {ids.data, lim, retry};
    PGresult *res =
        pf_store_query(st, "cannot claim receipts",
                       "UPDATE receipt r SET attempts = r.attempts + 1, "
                       "next_attempt_at = now() + make_interval(secs => $3::integer) "
                       "FROM (SELECT jti FROM receipt WHERE sender_id = ANY ($1::bigint[]) "
                       "      AND acked_at IS NULL AND next_attempt_at <= now() "
                       "      ORDER BY next_attempt_at, created_at LIMIT $2::integer "
                       "      FOR UPDATE SKIP LOCKED) due "
                       "WHERE r.jti = due.jti RETURNING r.jti::text, r.sender_id::text, r.token",
                       3, p, error_r);
    pf_buf_free(&ids, 0);
    if (res == NULL)
        return -1;
    size_t n = (size_t)PQntuples(res);
    pf_relay_receipt_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        snprintf(rows[i].jti, sizeof(rows[i].jti), "%s", PQgetvalue(res, (int)i, 0));
        rows[i].sender_id = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        rows[i].token = xstrdup(PQgetvalue(res, (int)i, 2));
    }
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

void pf_relay_receipts_free(pf_relay_receipt_t **rows, size_t n)
{
    if (*rows == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((*rows)[i].token);
    free(*rows);
    *rows = NULL;
}

static int s_count(PGresult *res)
{
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n;
}

int pf_store_relay_ack(pf_store_t *st, int64_t sender_id, const char *const *jtis, size_t n,
                       const char **error_r)
{
    if (n == 0)
        return 0;
    pf_buf_t arr;
    pf_buf_init(&arr);
    pf_buf_puts(&arr, "{");
    for (size_t i = 0; i < n; i++)
        pf_buf_printf(&arr, "%s%s", i ? "," : "", jtis[i]);
    pf_buf_puts(&arr, "}");
    char sid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)sender_id);
    const char *p[2] = {sid, arr.data};
    PGresult *res = pf_store_query(st, "cannot acknowledge receipts",
                                   "UPDATE receipt SET acked_at = now() "
                                   "WHERE sender_id = $1::bigint AND jti = ANY ($2::uuid[]) "
                                   "AND acked_at IS NULL",
                                   2, p, error_r);
    pf_buf_free(&arr, 0);
    return res ? s_count(res) : -1;
}

int pf_store_relay_replay(pf_store_t *st, int64_t sender_id, const char **error_r)
{
    char sid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)sender_id);
    const char *p[1] = {sid};
    PGresult *res = pf_store_query(st, "cannot replay receipts",
                                   "UPDATE receipt SET next_attempt_at = now() "
                                   "WHERE sender_id = $1::bigint AND acked_at IS NULL "
                                   "AND next_attempt_at > now()",
                                   1, p, error_r);
    return res ? s_count(res) : -1;
}

int pf_store_relay_listen(pf_store_t *st, const char **error_r)
{
    return pf_store_exec(st, "LISTEN postfach_receipt", error_r);
}

int pf_store_relay_drain(pf_store_t *st, const char **error_r)
{
    if (PQconsumeInput(st->conn) == 0) {
        *error_r = pf_store_fail(st, "cannot read notifications", NULL);
        return -1;
    }
    int n = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(st->conn)) != NULL) {
        PQfreemem(nt);
        n++;
    }
    return n;
}
