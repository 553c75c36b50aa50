/* Sender and mailbox administration queries.
 *
 * Callers: postfach-ctl (writes), the broker's ZAP handler and recipient
 * key cache (reads), the reader (wrapped private keys).
 * Wrapped private keys travel as binary parameters and results; they are
 * opaque here (lib/crypto unwraps them with the KEK). */
#include "store/admin.h"
#include "store/store_private.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pf_store_sender_add(pf_store_t *st, const char *name, const char *curve_key, int64_t *id_r,
                        const char **error_r)
{
    const char *p[2] = {name, curve_key};
    PGresult *res = pf_store_query(
        st, "cannot add sender",
        "INSERT INTO sender (name, curve_key) VALUES ($1, $2) RETURNING id", 2, p, error_r);
    if (res == NULL)
        return -1;
    *id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int pf_store_sender_by_key(pf_store_t *st, const char *curve_key, int64_t *id_r, char **name_r,
                           const char **error_r)
{
    const char *p[1] = {curve_key};
    PGresult *res = pf_store_query(
        st, "cannot look up sender",
        "SELECT id, name FROM sender WHERE curve_key = $1 AND status = 'active'", 1, p, error_r);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        *id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (name_r)
            *name_r = xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}

static void s_sender_row(PGresult *res, int i, pf_sender_row_t *row)
{
    row->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    row->name = xstrdup(PQgetvalue(res, i, 1));
    row->curve_key = xstrdup(PQgetvalue(res, i, 2));
    row->status = xstrdup(PQgetvalue(res, i, 3));
    row->created_at = xstrdup(PQgetvalue(res, i, 4));
}

#define SENDER_COLS                                                                                \
    "id, name, curve_key, status, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

int pf_store_sender_by_name(pf_store_t *st, const char *name, pf_sender_row_t *row_r,
                            const char **error_r)
{
    const char *p[1] = {name};
    PGresult *res =
        pf_store_query(st, "cannot look up sender",
                       "SELECT " SENDER_COLS " FROM sender WHERE name = $1", 1, p, error_r);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found)
        s_sender_row(res, 0, row_r);
    PQclear(res);
    return found;
}

int pf_store_sender_list(pf_store_t *st, pf_sender_row_t **rows_r, size_t *n_r,
                         const char **error_r)
{
    PGresult *res =
        pf_store_query(st, "cannot list senders",
                       "SELECT " SENDER_COLS " FROM sender ORDER BY name", 0, NULL, error_r);
    if (res == NULL)
        return -1;
    size_t n = (size_t)PQntuples(res);
    pf_sender_row_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        s_sender_row(res, (int)i, &rows[i]);
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

int pf_store_sender_backlog(pf_store_t *st, pf_sender_backlog_t **rows_r, size_t *n_r,
                            const char **error_r)
{
    PGresult *res =
        pf_store_query(st, "cannot count unacknowledged receipts",
                       "SELECT s.name, coalesce(b.unacknowledged, 0), coalesce(b.sent, 0), "
                       "coalesce(b.most_attempts, 0) FROM sender s "
                       "LEFT JOIN sender_receipt_backlog() b ON b.sender_id = s.id ORDER BY s.name",
                       0, NULL, error_r);
    if (res == NULL)
        return -1;
    size_t n = (size_t)PQntuples(res);
    pf_sender_backlog_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i].name = xstrdup(PQgetvalue(res, (int)i, 0));
        rows[i].unacknowledged = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        rows[i].sent = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
        rows[i].most_attempts = atoi(PQgetvalue(res, (int)i, 3));
    }
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

void pf_sender_backlog_free(pf_sender_backlog_t **rows, size_t n)
{
    if (*rows == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((*rows)[i].name);
    free(*rows);
    *rows = NULL;
}

static int s_update_one(pf_store_t *st, const char *what, const char *sql, int np,
                        const char *const *p, const char **error_r)
{
    PGresult *res = pf_store_query(st, what, sql, np, p, error_r);
    if (res == NULL)
        return -1;
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n != 1) {
        snprintf(st->err, sizeof(st->err), "%s: no such sender", what);
        *error_r = st->err;
        return -1;
    }
    return 0;
}

int pf_store_sender_revoke(pf_store_t *st, const char *name, const char **error_r)
{
    const char *p[1] = {name};
    return s_update_one(
        st, "cannot revoke sender",
        "UPDATE sender SET status = 'revoked', revoked_at = coalesce(revoked_at, now()) "
        "WHERE name = $1",
        1, p, error_r);
}

int pf_store_sender_set_key(pf_store_t *st, const char *name, const char *curve_key,
                            const char **error_r)
{
    const char *p[2] = {name, curve_key};
    return s_update_one(st, "cannot change sender key",
                        "UPDATE sender SET curve_key = $2 WHERE name = $1 AND status = 'active'", 2,
                        p, error_r);
}

void pf_sender_row_clear(pf_sender_row_t *row)
{
    free(row->name);
    free(row->curve_key);
    free(row->status);
    free(row->created_at);
    memset(row, 0, sizeof(*row));
}

int pf_store_mailbox_add_key(pf_store_t *st, const char *mailbox_id, int version, const char *kid,
                             const char *alg, const char *public_jwk, const char *kek_id,
                             const unsigned char *wrapped, size_t wrapped_len, const char **error_r)
{
    if (version < 1) {
        snprintf(st->err, sizeof(st->err), "cannot add key: invalid version %d", version);
        *error_r = st->err;
        return -1;
    }
    if (pf_store_exec(st, "BEGIN", error_r) != 0)
        return -1;
    PGresult *res;
    const char *p1[1] = {mailbox_id};
    if (version == 1) {
        res = pf_store_query(st, "cannot create mailbox", "INSERT INTO mailbox (id) VALUES ($1)", 1,
                             p1, error_r);
    } else {
        res = pf_store_query(st, "cannot find mailbox",
                             "SELECT id FROM mailbox WHERE id = $1 FOR UPDATE", 1, p1, error_r);
        if (res != NULL && PQntuples(res) != 1) {
            PQclear(res);
            res = NULL;
            snprintf(st->err, sizeof(st->err), "cannot add key: no such mailbox");
            *error_r = st->err;
        }
    }
    if (res == NULL)
        goto fail;
    PQclear(res);
    /* Under the row lock (a new statement, so a fresh snapshot in READ
     * COMMITTED) the version must still be the next one: the caller bound
     * the wrapped key to it. */
    char v[16];
    snprintf(v, sizeof(v), "%d", version);
    const char *p2[5] = {mailbox_id, v, kid, alg, public_jwk};
    res = pf_store_query(st, "cannot store mailbox key",
                         "INSERT INTO mailbox_key (mailbox_id, version, kid, alg, public_jwk) "
                         "SELECT $1, $2::integer, $3, $4, $5 WHERE $2::integer = "
                         "(SELECT coalesce(max(version), 0) + 1 FROM mailbox_key "
                         "WHERE mailbox_id = $1) RETURNING version",
                         5, p2, error_r);
    if (res == NULL)
        goto fail;
    int stored = PQntuples(res) == 1;
    PQclear(res);
    if (!stored) {
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return 1;
    }
    if (wrapped != NULL) {
        const char *p3[4] = {mailbox_id, v, kek_id, (const char *)wrapped};
        int len[4] = {0, 0, 0, (int)wrapped_len};
        int fmt[4] = {0, 0, 0, 1};
        res = pf_store_query_bin(st, "cannot store wrapped key",
                                 "INSERT INTO mailbox_secret (mailbox_id, version, kek_id, "
                                 "wrapped_key) VALUES ($1, $2, $3, $4)",
                                 4, p3, len, fmt, error_r);
        if (res == NULL)
            goto fail;
        PQclear(res);
    }
    if (pf_store_exec(st, "COMMIT", error_r) != 0)
        goto fail;
    return 0;
fail:
    PQclear(PQexec(st->conn, "ROLLBACK"));
    return -1;
}

int pf_store_mailbox_public_key(pf_store_t *st, const char *mailbox_id, int *version_r,
                                char **public_jwk_r, const char **error_r)
{
    const char *p[1] = {mailbox_id};
    PGresult *res = pf_store_query(st, "cannot look up recipient key",
                                   "SELECT k.version, k.public_jwk FROM mailbox m "
                                   "JOIN mailbox_key k ON k.mailbox_id = m.id "
                                   "WHERE m.id = $1 AND m.status = 'open' "
                                   "ORDER BY k.version DESC LIMIT 1",
                                   1, p, error_r);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        *version_r = atoi(PQgetvalue(res, 0, 0));
        *public_jwk_r = xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}

int pf_store_mailbox_secret(pf_store_t *st, const char *mailbox_id, int version, char **kek_id_r,
                            unsigned char **wrapped_r, size_t *len_r, const char **error_r)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", version);
    const char *p[2] = {mailbox_id, v};
    int fmt[2] = {0, 0};
    PGresult *res = pf_store_run(st,
                                 "SELECT kek_id, wrapped_key FROM mailbox_secret "
                                 "WHERE mailbox_id = $1 AND version = $2",
                                 2, p, NULL, fmt, 1 /* binary results */);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *error_r = pf_store_fail(st, "cannot read wrapped key", res);
        PQclear(res);
        return -1;
    }
    int found = PQntuples(res) == 1;
    if (found) {
        *kek_id_r = xstrndup(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        *len_r = (size_t)PQgetlength(res, 0, 1);
        *wrapped_r = xmemdup(PQgetvalue(res, 0, 1), *len_r);
    }
    PQclear(res);
    return found;
}

int pf_store_secrets_not_under(pf_store_t *st, const char *kek_id, int limit,
                               pf_secret_row_t **rows_r, size_t *n_r, const char **error_r)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[2] = {kek_id, lim};
    PGresult *res = PQexecParams(st->conn,
                                 "SELECT mailbox_id, version, kek_id, wrapped_key FROM "
                                 "mailbox_secret WHERE kek_id <> $1 "
                                 "ORDER BY mailbox_id, version LIMIT $2",
                                 2, NULL, p, NULL, NULL, 1 /* binary results */);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *error_r = pf_store_fail(st, "cannot list wrapped keys", res);
        PQclear(res);
        return -1;
    }
    size_t n = (size_t)PQntuples(res);
    pf_secret_row_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        rows[i].mailbox_id = xstrndup(PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0));
        const unsigned char *v = (const unsigned char *)PQgetvalue(res, r, 1);
        rows[i].version =
            (int)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3]);
        rows[i].kek_id = xstrndup(PQgetvalue(res, r, 2), (size_t)PQgetlength(res, r, 2));
        rows[i].wrapped_len = (size_t)PQgetlength(res, r, 3);
        rows[i].wrapped = xmemdup(PQgetvalue(res, r, 3), rows[i].wrapped_len);
    }
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

int pf_store_secret_rewrap(pf_store_t *st, const pf_secret_row_t *row, const char *new_kek_id,
                           const unsigned char *wrapped, size_t len, const char **error_r)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", row->version);
    const char *p[5] = {row->mailbox_id, v, row->kek_id, new_kek_id, (const char *)wrapped};
    int lens[5] = {0, 0, 0, 0, (int)len};
    int fmts[5] = {0, 0, 0, 0, 1};
    PGresult *res = pf_store_query_bin(st, "cannot store rewrapped key",
                                       "UPDATE mailbox_secret SET kek_id = $4, wrapped_key = $5 "
                                       "WHERE mailbox_id = $1 AND version = $2 AND kek_id = $3",
                                       5, p, lens, fmts, error_r);
    if (res == NULL)
        return -1;
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n == 1 ? 1 : 0;
}

int pf_store_kek_usage(pf_store_t *st, char **text_r, const char **error_r)
{
    PGresult *res = pf_store_query(st, "cannot count wrapped keys",
                                   "SELECT kek_id, count(*) FROM mailbox_secret GROUP BY kek_id "
                                   "ORDER BY kek_id",
                                   0, NULL, error_r);
    if (res == NULL)
        return -1;
    char *text = xstrdup("");
    for (int i = 0; i < PQntuples(res); i++) {
        char *t = xasprintf("%s%s %s\n", text, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        free(text);
        text = t;
    }
    PQclear(res);
    *text_r = text;
    return 0;
}

void pf_secret_row_clear(pf_secret_row_t *row)
{
    free(row->mailbox_id);
    free(row->kek_id);
    free(row->wrapped);
    memset(row, 0, sizeof(*row));
}

int pf_store_sender_allow(pf_store_t *st, const char *name, const char *pattern,
                          const char **error_r)
{
    const char *p[2] = {name, pattern};
    PGresult *res = pf_store_query(st, "cannot add allowlist entry",
                                   "INSERT INTO sender_recipient_allow (sender_id, pattern) "
                                   "SELECT id, $2 FROM sender WHERE name = $1 "
                                   "ON CONFLICT DO NOTHING RETURNING 1",
                                   2, p, error_r);
    if (res == NULL)
        return -1;
    PQclear(res);
    pf_sender_row_t row;
    int found = pf_store_sender_by_name(st, name, &row, error_r);
    if (found > 0)
        pf_sender_row_clear(&row);
    if (found == 0) {
        snprintf(st->err, sizeof(st->err), "cannot add allowlist entry: no such sender");
        *error_r = st->err;
        return -1;
    }
    return found < 0 ? -1 : 0;
}

int pf_store_sender_disallow(pf_store_t *st, const char *name, const char *pattern, bool allow_all,
                             const char **error_r)
{
    if (pf_store_exec(st, "BEGIN", error_r) != 0)
        return -1;
    /* the sender's row lock serialises removals: two removing the last two
     * entries at once would otherwise both see one left */
    const char *p1[1] = {name};
    PGresult *res =
        pf_store_query(st, "cannot remove allowlist entry",
                       "SELECT id FROM sender WHERE name = $1 FOR UPDATE", 1, p1, error_r);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) != 1) {
        PQclear(res);
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return 0;
    }
    char id[24];
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *p2[2] = {id, pattern};
    res = pf_store_query(st, "cannot remove allowlist entry",
                         "DELETE FROM sender_recipient_allow WHERE sender_id = $1 AND pattern = $2",
                         2, p2, error_r);
    if (res == NULL)
        goto fail;
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n == 0) {
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return 0;
    }
    res = pf_store_query(st, "cannot remove allowlist entry",
                         "SELECT count(*) FROM sender_recipient_allow WHERE sender_id = $1", 1, p2,
                         error_r);
    if (res == NULL)
        goto fail;
    long left = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (left == 0 && !allow_all) {
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return 2;
    }
    if (pf_store_exec(st, "COMMIT", error_r) != 0)
        goto fail;
    return left == 0 ? 3 : 1;
fail:
    PQclear(PQexec(st->conn, "ROLLBACK"));
    return -1;
}

int pf_store_sender_allowed(pf_store_t *st, const char *name, char **text_r, const char **error_r)
{
    const char *p[1] = {name};
    PGresult *res = pf_store_query(st, "cannot read allowlist",
                                   "SELECT a.pattern FROM sender_recipient_allow a JOIN sender s "
                                   "ON s.id = a.sender_id WHERE s.name = $1 ORDER BY a.pattern",
                                   1, p, error_r);
    if (res == NULL)
        return -1;
    char *text = xstrdup("");
    for (int i = 0; i < PQntuples(res); i++) {
        char *t = xasprintf("%s%s\n", text, PQgetvalue(res, i, 0));
        free(text);
        text = t;
    }
    PQclear(res);
    *text_r = text;
    return 0;
}
