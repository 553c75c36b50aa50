/* The reader's queries (see mailbox.h).
 *
 * Callers: lib/reader, one pf_store_t per worker thread.
 * Invariants: every statement carries the mailbox id of the verified token
 * in its WHERE clause; parameters only; every PGresult cleared on every
 * path.  Message rows are fetched in binary result format so the bytea
 * JWE parts arrive as raw bytes (no hex round trip for ciphertexts of
 * several MiB); every other column is cast to text in SQL, whose binary
 * form is its plain bytes.  Row values are database content and are still
 * checked (lengths, NULLs) rather than asserted. */
#include "store/mailbox.h"
#include "store/store_private.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3339 in UTC with milliseconds; the session time zone is UTC anyway,
 * AT TIME ZONE makes the text independent of it. */
#define S_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define S_META_COLS                                                                               \
    "m.id::text, s.name, m.title, m.reference, " S_TS("m.created_at") ", " S_TS("m.read_at")     \
    ", m.size::text, m.attachment_count::text, m.required_level::text"
#define S_META_N 9

static char *s_val(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return xstrndup(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static int64_t s_int(const PGresult *res, int row, int col)
{
    char buf[32];
    int len = PQgetlength(res, row, col);
    if (PQgetisnull(res, row, col) || len <= 0 || len >= (int)sizeof(buf))
        return 0;
    memcpy(buf, PQgetvalue(res, row, col), (size_t)len);
    buf[len] = '\0';
    return strtoll(buf, NULL, 10);
}

static unsigned char *s_bytes(const PGresult *res, int row, int col, size_t *len_r)
{
    *len_r = (size_t)PQgetlength(res, row, col);
    return xmemdup(PQgetvalue(res, row, col), *len_r ? *len_r : 1);
}

static void s_meta(const PGresult *res, int row, pf_mailbox_entry_t *e)
{
    char *id = s_val(res, row, 0);
    snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
    free(id);
    e->sender = s_val(res, row, 1);
    e->title = s_val(res, row, 2);
    e->reference = s_val(res, row, 3);
    e->created_at = s_val(res, row, 4);
    e->read_at = s_val(res, row, 5);
    e->size = s_int(res, row, 6);
    e->attachment_count = (int)s_int(res, row, 7);
    e->required_level = (int)s_int(res, row, 8);
    if (e->sender == NULL)
        e->sender = xstrdup("");
    if (e->title == NULL)
        e->title = xstrdup("");
    if (e->reference == NULL)
        e->reference = xstrdup("");
    if (e->created_at == NULL)
        e->created_at = xstrdup("");
}

static void s_entry_clear(pf_mailbox_entry_t *e)
{
    free(e->sender);
    free(e->title);
    free(e->reference);
    free(e->created_at);
    free(e->read_at);
    memset(e, 0, sizeof(*e));
}

/* Parameterised statement with text parameters and binary results. */
static PGresult *s_query(pf_store_t *st, const char *what, const char *sql, int n,
                         const char *const *values, const char **error_r)
{
    PGresult *res = pf_store_run(st, sql, n, values, NULL, NULL, 1);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        *error_r = pf_store_fail(st, what, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

int pf_store_mailbox_list(pf_store_t *st, const char *mailbox_id, const char *before_id,
                          int limit, pf_mailbox_entry_t **rows_r, size_t *n_r,
                          const char **error_r)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[3] = {mailbox_id, before_id, lim};
    /* (mailbox_id, id) is the primary key: a backward index range scan,
     * whatever the page, because ids are time-ordered UUIDv7 */
    PGresult *res = s_query(st, "cannot list mailbox",
                            "SELECT " S_META_COLS " FROM message m "
                            "JOIN sender s ON s.id = m.sender_id "
                            "WHERE m.mailbox_id = $1 AND ($2::uuid IS NULL OR m.id < $2::uuid) "
                            "ORDER BY m.id DESC LIMIT $3::integer",
                            3, p, error_r);
    if (res == NULL)
        return -1;
    size_t n = (size_t)PQntuples(res);
    pf_mailbox_entry_t *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        s_meta(res, (int)i, &rows[i]);
    PQclear(res);
    *rows_r = rows;
    *n_r = n;
    return 0;
}

void pf_mailbox_entries_free(pf_mailbox_entry_t **rows, size_t n)
{
    if (*rows == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        s_entry_clear(&(*rows)[i]);
    free(*rows);
    *rows = NULL;
}

#define S_MESSAGE_COLS                                                                            \
    "SELECT " S_META_COLS ", m.sender_id::text, m.request_id, m.read_receipt::text, "            \
    "m.key_version::text"
#define S_JWE_COLS ", m.jwe_protected, m.jwe_encrypted_key, m.jwe_iv, m.jwe_ciphertext, m.jwe_tag"
#define S_MESSAGE_FROM                                                                            \
    " FROM message m JOIN sender s ON s.id = m.sender_id"
#define S_MESSAGE_WHERE " WHERE m.mailbox_id = $1 AND m.id = $2::uuid"

int pf_store_message_get(pf_store_t *st, const char *mailbox_id, const char *message_id,
                         unsigned what, pf_mailbox_message_t *m_r, const char **error_r)
{
    memset(m_r, 0, sizeof(*m_r));
    const char *p[2] = {mailbox_id, message_id};
    bool with_jwe = (what & PF_MESSAGE_JWE) != 0;
    bool with_secret = what == PF_MESSAGE_SECRET;
    /* the wrapped key comes with the copy (a round trip less on every
     * open); LEFT JOIN: a mailbox whose citizen keeps the key has none */
    const char *sql = with_secret ? S_MESSAGE_COLS S_JWE_COLS ", k.kek_id, k.wrapped_key"
                                    S_MESSAGE_FROM " LEFT JOIN mailbox_secret k"
                                    " ON k.mailbox_id = m.mailbox_id AND k.version = m.key_version"
                                    S_MESSAGE_WHERE
                      : with_jwe ? S_MESSAGE_COLS S_JWE_COLS S_MESSAGE_FROM S_MESSAGE_WHERE
                                 : S_MESSAGE_COLS S_MESSAGE_FROM S_MESSAGE_WHERE;
    PGresult *res = s_query(st, "cannot read message", sql, 2, p, error_r);
    if (res == NULL)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 0;
    }
    int c = S_META_N;
    s_meta(res, 0, &m_r->meta);
    m_r->sender_id = s_int(res, 0, c);
    m_r->request_id = s_val(res, 0, c + 1);
    if (m_r->request_id == NULL)
        m_r->request_id = xstrdup("");
    char *rr = s_val(res, 0, c + 2);
    m_r->read_receipt = rr != NULL && strcmp(rr, "true") == 0;
    free(rr);
    m_r->key_version = (int)s_int(res, 0, c + 3);
    if (with_jwe) {
        m_r->jwe_protected = s_val(res, 0, c + 4);
        if (m_r->jwe_protected == NULL)
            m_r->jwe_protected = xstrdup("");
        m_r->encrypted_key = s_bytes(res, 0, c + 5, &m_r->encrypted_key_len);
        m_r->iv = s_bytes(res, 0, c + 6, &m_r->iv_len);
        m_r->ciphertext = s_bytes(res, 0, c + 7, &m_r->ciphertext_len);
        m_r->tag = s_bytes(res, 0, c + 8, &m_r->tag_len);
    }
    if (with_secret && !PQgetisnull(res, 0, c + 10)) {
        m_r->kek_id = s_val(res, 0, c + 9);
        m_r->wrapped_key = s_bytes(res, 0, c + 10, &m_r->wrapped_key_len);
        if (m_r->kek_id == NULL)
            m_r->kek_id = xstrdup("");
    }
    PQclear(res);
    return 1;
}

void pf_mailbox_message_clear(pf_mailbox_message_t *m)
{
    if (m == NULL)
        return;
    s_entry_clear(&m->meta);
    free(m->request_id);
    free(m->jwe_protected);
    free(m->encrypted_key);
    free(m->iv);
    free(m->ciphertext);
    free(m->tag);
    free(m->kek_id);
    free(m->wrapped_key);
    memset(m, 0, sizeof(*m));
}

int pf_store_message_record_read(pf_store_t *st, const char *mailbox_id, const char *message_id,
                                 int64_t read_ms, bool late, const char *jti, const char *token,
                                 char **read_at_r, int64_t *read_ms_r, const char **error_r)
{
    *read_at_r = NULL;
    *read_ms_r = 0;
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", (long long)read_ms);
    const char *p[6] = {mailbox_id, message_id, ms, jti, token, late ? "true" : "false"};
    /* read_at IS NULL makes the first retrieval win exactly once, also
     * against a concurrent request for the same copy: the second UPDATE
     * waits for the row lock, finds read_at set and changes nothing, and
     * then its receipt CTE inserts nothing either.  The second branch
     * reports the time that stands for a copy read before.  When that
     * time is NULL, this statement lost the race to a request that
     * committed after its snapshot was taken: the same statement again
     * (a new snapshot) changes nothing and reports that request's time. */
    PGresult *res = NULL;
    int updated = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        PQclear(res);
        res = s_query(
            st, "cannot record retrieval",
            "WITH u AS (UPDATE message SET read_at = timestamptz 'epoch' + $3::bigint * "
            "interval '1 millisecond' "
            "WHERE mailbox_id = $1 AND id = $2::uuid AND read_at IS NULL "
            "AND (NOT expiry_checked OR $6::boolean) RETURNING sender_id, read_at), "
            "r AS (INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
            "SELECT $4::uuid, u.sender_id, $1, $2::uuid, 'read', $5::text FROM u "
            "WHERE $5::text IS NOT NULL ON CONFLICT (mailbox_id, message_id, event) DO NOTHING) "
            "SELECT 'set', " S_TS("u.read_at") ", "
            "floor(extract(epoch FROM u.read_at) * 1000)::bigint::text FROM u "
            "UNION ALL SELECT CASE WHEN m.read_at IS NULL AND m.expiry_checked THEN 'late' "
            "ELSE 'was' END, " S_TS("m.read_at") ", "
            "floor(extract(epoch FROM coalesce(m.read_at, clock_timestamp())) * 1000)::bigint::text "
            "FROM message m "
            "WHERE m.mailbox_id = $1 AND m.id = $2::uuid AND NOT EXISTS (SELECT 1 FROM u)",
            6, p, error_r);
        if (res == NULL)
            return -1;
        if (PQntuples(res) != 1) /* the copy is gone */
            break;
        char *how = s_val(res, 0, 0);
        updated = how == NULL ? 0 : strcmp(how, "set") == 0 ? 1 : strcmp(how, "late") == 0 ? 2 : 0;
        free(how);
        if (updated == 2) {
            /* expired while this read time was taken: the database's clock */
            *read_ms_r = s_int(res, 0, 2);
            PQclear(res);
            return 2;
        }
        if (!PQgetisnull(res, 0, 1))
            break;
    }
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
        *read_at_r = s_val(res, 0, 1);
        *read_ms_r = s_int(res, 0, 2);
    }
    PQclear(res);
    return updated;
}

int pf_store_ping(pf_store_t *st, const char **error_r)
{
    PGresult *res = pf_store_query(st, "database does not answer", "SELECT 1", 0, NULL, error_r);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int pf_store_receipts_wake(pf_store_t *st, const char **error_r)
{
    /* its own transaction: the lock a NOTIFY takes is held for as long as
     * a statement without writes needs, and not flushing the commit is
     * fine for a wake-up that carries no data (sql/0012) */
    return pf_store_exec(st,
                         "SET synchronous_commit = off; "
                         "SELECT pg_notify('postfach_receipt', '')",
                         error_r);
}
