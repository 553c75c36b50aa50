/* Receipt outbox queries for the broker's relay and its "expired"
 * receipts (see relay.h).
 *
 * Callers: lib/broker, on the broker's main connection.
 * Invariants: every statement has "sender_id = ..." from the ZAP-
 * authenticated sender in its WHERE clause; claims use FOR UPDATE SKIP
 * LOCKED so several brokers can relay from one outbox without sending a
 * receipt twice at the same moment (twice over time is allowed: delivery
 * is at least once, the procedure dedups by jti).  Expiry looks at each
 * copy once (message.expiry_checked), under a row lock with SKIP LOCKED,
 * and the outbox's UNIQUE (mailbox, message, event) is the last guard
 * against a second "expired" receipt.  Arrays are passed as
 * array literals built from integers and validated UUID texts only. */
#include "store/relay.h"
#include "store/store_private.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Claims, acknowledgements and replays are at-least-once by design: a
 * claim or an acknowledgement lost in a database crash only means a
 * receipt is sent again, and the procedure drops it by its jti.  So their
 * transactions do not wait for the WAL flush (5-13 ms under load, measured
 * with strace), which would stop the broker's main thread, and with it
 * every SEND, for that long.  Everything else stays synchronous.
 *
 * Their statements run with the plan made once (force_generic_plan).
 * Left to choose, PostgreSQL planned every claim afresh, because the
 * generic plan's estimate is higher than a plan for the one array of
 * sender ids at hand: 0.54 ms of planning per claim, against 0.85 ms to
 * execute it, at about 90 claims a second while citizens open notices.
 * Both plans are the same index scans (per sender on receipt_delivery_due,
 * then the primary keys). */
static int s_async_begin(pf_store_t *st, const char **error_r)
{
    return pf_store_exec(st,
                         "BEGIN; SET LOCAL synchronous_commit = off; "
                         "SET LOCAL plan_cache_mode = force_generic_plan",
                         error_r);
}

/* Commits after res (the statement's result, NULL when it failed); on
 * failure rolls back and returns NULL. */
static PGresult *s_async_end(pf_store_t *st, PGresult *res, const char **error_r)
{
    if (res == NULL) {
        if (!pf_store_broken(st))
            PQclear(PQexec(st->conn, "ROLLBACK"));
        return NULL;
    }
    if (pf_store_exec(st, "COMMIT", error_r) != 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

int pf_store_relay_claim(pf_store_t *st, const int64_t *sender_ids, size_t nsenders, int limit,
                         int max_total, int retry_seconds, int retry_max_seconds, int64_t *after,
                         pf_relay_receipt_t **rows_r, size_t *n_r, size_t *skipped_r,
                         const char **error_r)
{
    *rows_r = NULL;
    *n_r = 0;
    if (skipped_r)
        *skipped_r = 0;
    if (nsenders == 0 || limit <= 0 || max_total <= 0)
        return 0;
    pf_buf_t ids;
    pf_buf_init(&ids);
    pf_store_int_array_literal(&ids, sender_ids, nsenders);
    char lim[16], retry[16], total[16], turn[32], retry_max[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(retry, sizeof(retry), "%d", retry_seconds);
    snprintf(total, sizeof(total), "%d", max_total);
    snprintf(turn, sizeof(turn), "%lld", (long long)*after);
    snprintf(retry_max, sizeof(retry_max), "%d", retry_max_seconds);
    const char *p[6] = {ids.data, lim, retry, total, turn, retry_max};
    /* live: the listed senders with anything due (one probe of the index
     * each), d of them.  c: the candidates, per sender in the order of its
     * index (no sort over all senders' pending receipts), ranked by their
     * depth k in the sender's queue; all senders' first ones, then all
     * second ones, ..., ties in turn from the sender after $5 on, cut at
     * the overall cap.  A sender's k-th row comes after the d first rows
     * and its own k - 2 before it, so only k <= cap - d + 1 can make the
     * cut: no sender is read further than that (with d >= cap, one row
     * each).  The candidates are read without locks, so only the rows
     * handed out are locked: those of another broker's claim are skipped,
     * and a row it claimed since is re-checked (no longer due); how many
     * were passed over comes back with the rows (a claim that skipped
     * rows may have left others due).  The delivery rows only (small),
     * the token from the immutable receipt row; in claim order, and one
     * row of NULLs when nothing was claimed.  The next attempt: $3
     * seconds after a first one, doubling with every attempt made before
     * (d.attempts is the value before this claim), at most $6 (or $3 when
     * that is larger); in float8, as $3 times 2^30 is no integer. */
    PGresult *res = NULL;
    if (s_async_begin(st, error_r) == 0) {
        res = pf_store_query(
            st, "cannot claim receipts",
            "WITH live AS (SELECT s.id FROM unnest($1::bigint[]) AS s (id) "
            "  WHERE EXISTS (SELECT 1 FROM receipt_delivery WHERE sender_id = s.id "
            "  AND acked_at IS NULL AND next_attempt_at <= now())), "
            "deep AS (SELECT least($2::integer, greatest(1, $4::integer - count(*)::integer + 1)) "
            "  AS k FROM live), "
            "c AS (SELECT x.jti, x.k, s.id FROM live AS s CROSS JOIN LATERAL "
            "  (SELECT jti, row_number() OVER (ORDER BY next_attempt_at, jti) AS k "
            "   FROM receipt_delivery WHERE sender_id = s.id "
            "   AND acked_at IS NULL AND next_attempt_at <= now() "
            "   ORDER BY next_attempt_at, jti LIMIT (SELECT k FROM deep)) x "
            "  ORDER BY x.k, s.id <= $5::bigint, s.id LIMIT $4::integer), "
            "u AS (UPDATE receipt_delivery d SET attempts = d.attempts + 1, "
            "  next_attempt_at = now() + make_interval(secs => least("
            "    $3::float8 * power(2::float8, least(d.attempts, 30)), "
            "    greatest($3::integer, $6::integer)::float8)) "
            "  FROM (SELECT l.jti, c.k FROM receipt_delivery l JOIN c ON l.jti = c.jti "
            "        WHERE l.sender_id = c.id AND l.acked_at IS NULL "
            "        AND l.next_attempt_at <= now() FOR UPDATE OF l SKIP LOCKED) due, "
            "  receipt r "
            "  WHERE d.jti = due.jti AND r.jti = d.jti "
            "  RETURNING d.jti, d.sender_id, r.token, due.k) "
            "SELECT u.jti::text, u.sender_id::text, u.token, (SELECT count(*) FROM c)::text "
            "FROM (VALUES (1)) AS one (x) LEFT JOIN u ON true "
            "ORDER BY u.k, u.sender_id <= $5::bigint, u.sender_id",
            6, p, error_r);
        res = s_async_end(st, res, error_r);
    }
    pf_buf_free(&ids, 0);
    if (res == NULL)
        return -1;
    size_t n = (size_t)PQntuples(res);
    if (n == 1 && PQgetisnull(res, 0, 0))
        n = 0; /* nothing claimed: the row of NULLs */
    size_t candidates = PQntuples(res) > 0 ? strtoull(PQgetvalue(res, 0, 3), NULL, 10) : 0;
    if (skipped_r)
        *skipped_r = candidates > n ? candidates - n : 0;
    pf_relay_receipt_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        snprintf(rows[i].jti, sizeof(rows[i].jti), "%s", PQgetvalue(res, (int)i, 0));
        rows[i].sender_id = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        rows[i].token = xstrdup(PQgetvalue(res, (int)i, 2));
    }
    PQclear(res);
    if (n > 0)
        *after = rows[n - 1].sender_id; /* the next claim goes on after it */
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

int pf_store_relay_release(pf_store_t *st, const char *const *jtis, size_t n, int delay_ms,
                           const char **error_r)
{
    if (n == 0)
        return 0;
    pf_buf_t arr;
    pf_buf_init(&arr);
    pf_store_array_literal(&arr, jtis, n);
    char delay[16];
    snprintf(delay, sizeof(delay), "%d", delay_ms);
    const char *p[2] = {arr.data, delay};
    PGresult *res = NULL;
    if (s_async_begin(st, error_r) == 0)
        res = s_async_end(st,
                          pf_store_query(st, "cannot release receipts",
                                         "UPDATE receipt_delivery SET attempts = "
                                         "greatest(attempts - 1, 0), next_attempt_at = now() + "
                                         "make_interval(secs => $2::integer / 1000.0) "
                                         "WHERE jti = ANY ($1::uuid[]) AND acked_at IS NULL",
                                         2, p, error_r),
                          error_r);
    pf_buf_free(&arr, 0);
    return res ? s_count(res) : -1;
}

int pf_store_relay_ack(pf_store_t *st, const int64_t *sender_ids, const char *const *jtis, size_t n,
                       pf_relay_acked_t **acked_r, size_t *nacked_r, const char **error_r)
{
    if (acked_r) {
        *acked_r = NULL;
        *nacked_r = 0;
    }
    if (n == 0)
        return 0;
    pf_buf_t ids, arr;
    pf_buf_init(&ids);
    pf_buf_init(&arr);
    pf_store_int_array_literal(&ids, sender_ids, n);
    pf_store_array_literal(&arr, jtis, n);
    const char *p[2] = {ids.data, arr.data};
    PGresult *res = NULL;
    if (s_async_begin(st, error_r) == 0)
        res = s_async_end(st,
                          /* no "acked_at IS NULL" in the WHERE clause: with it,
                           * the planner may (and under load did) take the
                           * partial index receipt_delivery_due and walk all
                           * of the sender's receipts not yet vacuumed, 2.5 ms
                           * a statement on the broker's main thread.  Without
                           * it only the primary key on jti serves, one probe
                           * per pair, and the first time stays.  Every
                           * sender's RACKs in one statement: one per sender
                           * (with its own BEGIN and COMMIT) was, at half the
                           * maximum rate with four procedures, 170
                           * transactions a second and 8-9% of the main
                           * thread's time spent waiting for them. */
                          pf_store_query(st, "cannot acknowledge receipts",
                                         "WITH u AS (UPDATE receipt_delivery d "
                                         "  SET acked_at = coalesce(d.acked_at, now()) "
                                         "  FROM unnest($1::bigint[], $2::uuid[]) AS a (sid, jti) "
                                         "  WHERE d.jti = a.jti AND d.sender_id = a.sid "
                                         "  RETURNING d.sender_id) "
                                         "SELECT sender_id::text, count(*)::text FROM u "
                                         "GROUP BY sender_id",
                                         2, p, error_r),
                          error_r);
    pf_buf_free(&ids, 0);
    pf_buf_free(&arr, 0);
    if (res == NULL)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    pf_relay_acked_t *acked = xcalloc(rows ? rows : 1, sizeof(*acked));
    int total = 0;
    for (size_t i = 0; i < rows; i++) {
        acked[i].sender_id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        acked[i].count = atoi(PQgetvalue(res, (int)i, 1));
        total += acked[i].count;
    }
    PQclear(res);
    if (acked_r) {
        *acked_r = acked;
        *nacked_r = rows;
    } else {
        free(acked);
    }
    return total;
}

int pf_store_relay_replay(pf_store_t *st, int64_t sender_id, int limit, const char **error_r)
{
    if (limit <= 0)
        return 0;
    char sid[32], lim[16];
    snprintf(sid, sizeof(sid), "%lld", (long long)sender_id);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[2] = {sid, lim};
    PGresult *res = NULL;
    /* the sender's part of receipt_delivery_due from now() on, in index
     * order: at most limit rows are read and written, however large the
     * outbox (it was every row, on every HELLO) */
    if (s_async_begin(st, error_r) == 0)
        res = s_async_end(st,
                          pf_store_query(st, "cannot replay receipts",
                                         "UPDATE receipt_delivery d SET next_attempt_at = now() "
                                         "FROM (SELECT jti FROM receipt_delivery "
                                         "  WHERE sender_id = $1::bigint AND acked_at IS NULL "
                                         "  AND next_attempt_at > now() "
                                         "  ORDER BY next_attempt_at, jti LIMIT $2::integer "
                                         "  FOR UPDATE SKIP LOCKED) w "
                                         "WHERE d.jti = w.jti",
                                         2, p, error_r),
                          error_r);
    return res ? s_count(res) : -1;
}

int pf_store_relay_listen(pf_store_t *st, const char **error_r)
{
    return pf_store_exec(st, "LISTEN postfach_receipt; LISTEN postfach_mailbox", error_r);
}

int pf_store_relay_drain(pf_store_t *st, bool consume, pf_notify_fn *fn, void *arg,
                         const char **error_r)
{
    if (consume && PQconsumeInput(st->conn) == 0) {
        *error_r = pf_store_fail(st, "cannot read notifications", NULL);
        return -1;
    }
    int n = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(st->conn)) != NULL) {
        if (strcmp(nt->relname, "postfach_mailbox") == 0)
            fn(arg, PF_NOTIFY_MAILBOX, nt->extra);
        else
            fn(arg, PF_NOTIFY_RECEIPT, nt->extra);
        PQfreemem(nt);
        n++;
    }
    return n;
}

/* ---- expiry -------------------------------------------------------------- */

int pf_store_expiry_claim(pf_store_t *st, int period_seconds, int limit, pf_expiry_t **rows_r,
                          size_t *n_r, const char **error_r)
{
    *rows_r = NULL;
    *n_r = 0;
    if (pf_store_exec(st, "BEGIN", error_r) != 0)
        return -1;
    char period[16], lim[16];
    snprintf(period, sizeof(period), "%d", period_seconds);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[2] = {period, lim};
    /* base64url of the tag in SQL: 16 bytes never make a line break */
    PGresult *res =
        pf_store_query(st, "cannot claim copies due to expire",
                       "SELECT m.mailbox_id, m.id::text, m.sender_id::text, s.name, m.request_id, "
                       "translate(rtrim(encode(m.jwe_tag, 'base64'), '='), '+/', '-_'), "
                       "floor(extract(epoch FROM m.created_at) * 1000)::bigint::text, "
                       "(m.read_at IS NULL OR m.read_at > m.created_at + "
                       "  make_interval(secs => $1::double precision))::text "
                       "FROM message m JOIN sender s ON s.id = m.sender_id "
                       "WHERE NOT m.expiry_checked "
                       "AND m.created_at <= now() - make_interval(secs => $1::double precision) "
                       "ORDER BY m.created_at LIMIT $2::integer FOR UPDATE OF m SKIP LOCKED",
                       2, p, error_r);
    if (res == NULL) {
        if (!pf_store_broken(st))
            PQclear(PQexec(st->conn, "ROLLBACK"));
        return -1;
    }
    size_t n = (size_t)PQntuples(res);
    pf_expiry_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        rows[i].mailbox_id = xstrdup(PQgetvalue(res, r, 0));
        snprintf(rows[i].message_id, sizeof(rows[i].message_id), "%s", PQgetvalue(res, r, 1));
        rows[i].sender_id = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        rows[i].sender_name = xstrdup(PQgetvalue(res, r, 3));
        rows[i].request_id = xstrdup(PQgetvalue(res, r, 4));
        rows[i].jwe_tag = xstrdup(PQgetvalue(res, r, 5));
        rows[i].created_ms = strtoll(PQgetvalue(res, r, 6), NULL, 10);
        rows[i].expired = strcmp(PQgetvalue(res, r, 7), "true") == 0;
    }
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

int pf_store_expiry_finish(pf_store_t *st, pf_expiry_t *rows, size_t n, const char **error_r)
{
    /* two statements for the whole claim, whatever its size: the receipts
     * and the marks go as arrays */
    pf_buf_t a[7];
    for (int k = 0; k < 7; k++) {
        pf_buf_init(&a[k]);
        pf_buf_puts(&a[k], "{");
    }
    size_t ntok = 0;
    for (size_t i = 0; i < n; i++) {
        const pf_expiry_t *e = &rows[i];
        pf_store_array_elem(&a[5], e->mailbox_id, i == 0);
        pf_store_array_elem(&a[6], e->message_id, i == 0);
        if (e->token == NULL)
            continue;
        char sid[32];
        snprintf(sid, sizeof(sid), "%lld", (long long)e->sender_id);
        pf_store_array_elem(&a[0], e->jti, ntok == 0);
        pf_store_array_elem(&a[1], sid, ntok == 0);
        pf_store_array_elem(&a[2], e->mailbox_id, ntok == 0);
        pf_store_array_elem(&a[3], e->message_id, ntok == 0);
        pf_store_array_elem(&a[4], e->token, ntok == 0);
        ntok++;
    }
    for (int k = 0; k < 7; k++)
        pf_buf_puts(&a[k], "}");
    int inserted = 0;
    PGresult *res = NULL;
    if (ntok > 0) {
        const char *q[5] = {a[0].data, a[1].data, a[2].data, a[3].data, a[4].data};
        res = pf_store_query(st, "cannot add expired receipts",
                             "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, "
                             "token) SELECT jti, sid, mb, mid, 'expired', tok FROM "
                             "unnest($1::uuid[], $2::bigint[], $3::text[], $4::uuid[], "
                             "$5::text[]) AS u (jti, sid, mb, mid, tok) "
                             "ON CONFLICT (mailbox_id, message_id, event) DO NOTHING",
                             5, q, error_r);
        if (res == NULL)
            goto fail;
        inserted = atoi(PQcmdTuples(res));
        PQclear(res);
    }
    const char *m[2] = {a[5].data, a[6].data};
    res = pf_store_query(st, "cannot mark copies as looked at",
                         "UPDATE message m SET expiry_checked = true "
                         "FROM unnest($1::text[], $2::uuid[]) AS u (mb, mid) "
                         "WHERE m.mailbox_id = u.mb AND m.id = u.mid",
                         2, m, error_r);
    if (res == NULL)
        goto fail;
    PQclear(res);
    for (int k = 0; k < 7; k++)
        pf_buf_free(&a[k], 0);
    if (pf_store_exec(st, "COMMIT", error_r) != 0)
        return -1;
    return inserted;
fail:
    for (int k = 0; k < 7; k++)
        pf_buf_free(&a[k], 0);
    if (!pf_store_broken(st))
        PQclear(PQexec(st->conn, "ROLLBACK"));
    return -1;
}

void pf_store_expiry_abort(pf_store_t *st)
{
    if (!pf_store_broken(st))
        PQclear(PQexec(st->conn, "ROLLBACK"));
}

void pf_expiry_free(pf_expiry_t **rows, size_t n)
{
    if (*rows == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free((*rows)[i].mailbox_id);
        free((*rows)[i].sender_name);
        free((*rows)[i].request_id);
        free((*rows)[i].jwe_tag);
        free((*rows)[i].token);
    }
    free(*rows);
    *rows = NULL;
}
