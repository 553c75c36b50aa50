/* Group commit of submissions (see submit.h).
 *
 * Callers: lib/broker only, on the broker's main connection.
 * Why multi-row statements: a durable COMMIT costs one WAL flush, and a
 * round trip per row would cost more than the flush; so a batch is
 * BEGIN, one INSERT for all submission rows (RETURNING which were new),
 * one INSERT per chunk of message rows, one per chunk of receipt rows,
 * COMMIT.  bytea parameters go in binary format (no hex doubling of
 * ciphertexts).  Invariants: parameters only, every PGresult cleared on
 * every path, ROLLBACK on every failure before COMMIT. */
#include "store/submit.h"
#include "store/store_private.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rows per INSERT: 17 parameters per message row stays far below the
 * protocol's 65535-parameter limit */
#define S_CHUNK 500

typedef struct {
    const char **v;
    int *len;
    int *fmt;
    char **owned;
    size_t n, cap;
    pf_buf_t sql;
    /* pipeline mode: statements are only sent (see s_submit_pipelined) */
    bool pipeline;
    bool strict; /* submission rows without ON CONFLICT */
    int sent;
} s_params_t;

static void s_p_grow(s_params_t *p)
{
    if (p->n < p->cap)
        return;
    p->cap = p->cap ? p->cap * 2 : 64;
    p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
    p->len = xrealloc(p->len, p->cap * sizeof(*p->len));
    p->fmt = xrealloc(p->fmt, p->cap * sizeof(*p->fmt));
    p->owned = xrealloc(p->owned, p->cap * sizeof(*p->owned));
}

/* Appends a parameter, its placeholder "$k" and the SQL text after it (a
 * cast, a separator) to the statement. */
static void s_p_add(s_params_t *p, const void *data, size_t len, int fmt, char *owned,
                    const char *after)
{
    s_p_grow(p);
    p->v[p->n] = data;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = fmt;
    p->owned[p->n] = owned;
    p->n++;
    pf_buf_printf(&p->sql, "$%zu%s", p->n, after ? after : "");
}

static void s_p_text(s_params_t *p, const char *s, const char *after)
{
    s_p_add(p, s, 0, 0, NULL, after);
}

static void s_p_bin(s_params_t *p, const void *d, size_t len)
{
    s_p_add(p, d ? d : "", len, 1, NULL, NULL);
}

static void s_p_int(s_params_t *p, long long v, const char *after)
{
    char *s = xasprintf("%lld", v);
    s_p_add(p, s, 0, 0, s, after);
}

static void s_p_reset(s_params_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->owned[i]);
    p->n = 0;
    pf_buf_reset(&p->sql);
}

static void s_p_free(s_params_t *p)
{
    s_p_reset(p);
    free(p->v);
    free(p->len);
    free(p->fmt);
    free(p->owned);
    pf_buf_free(&p->sql, 0);
}

static PGresult *s_p_exec(pf_store_t *st, s_params_t *p, const char *what, const char **error_r)
{
    if (!p->pipeline)
        return pf_store_query_bin(st, what, p->sql.data, (int)p->n, p->v, p->len, p->fmt, error_r);
    if (PQsendQueryParams(st->conn, p->sql.data, (int)p->n, NULL, p->v, p->len, p->fmt, 0) != 1) {
        *error_r = pf_store_fail(st, what, NULL);
        return NULL;
    }
    p->sent++;
    /* the results are read after the sync; an empty result keeps the
     * callers' PQclear paths the same */
    return PQmakeEmptyPGresult(st->conn, PGRES_COMMAND_OK);
}

static int s_insert_submissions(pf_store_t *st, pf_submit_t *subs, size_t n, s_params_t *p,
                                const char **error_r)
{
    s_p_reset(p);
    pf_buf_puts(&p->sql, "INSERT INTO submission (sender_id, request_id, payload_hash, ack) "
                         "VALUES ");
    for (size_t i = 0; i < n; i++) {
        pf_buf_puts(&p->sql, i ? ",(" : "(");
        s_p_int(p, subs[i].sender_id, "::bigint");
        pf_buf_puts(&p->sql, ",");
        s_p_text(p, subs[i].request_id, NULL);
        pf_buf_puts(&p->sql, ",");
        s_p_bin(p, subs[i].payload_hash, 32);
        pf_buf_puts(&p->sql, ",");
        s_p_text(p, subs[i].ack_json, NULL);
        pf_buf_puts(&p->sql, ")");
        subs[i].outcome = PF_SUBMIT_EXISTS;
    }
    if (p->strict) {
        /* a conflict aborts the transaction (SQLSTATE 23505) */
        PGresult *res = s_p_exec(st, p, "cannot store submissions", error_r);
        if (res == NULL)
            return -1;
        PQclear(res);
        for (size_t i = 0; i < n; i++)
            subs[i].outcome = PF_SUBMIT_STORED;
        return 0;
    }
    pf_buf_puts(&p->sql, " ON CONFLICT (sender_id, request_id) DO NOTHING "
                         "RETURNING sender_id::text, request_id");
    PGresult *res = s_p_exec(st, p, "cannot store submissions", error_r);
    if (res == NULL)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t sid = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        const char *rid = PQgetvalue(res, r, 1);
        for (size_t i = 0; i < n; i++)
            if (subs[i].sender_id == sid && strcmp(subs[i].request_id, rid) == 0)
                subs[i].outcome = PF_SUBMIT_STORED;
    }
    PQclear(res);
    return 0;
}

/* Runs the pending multi-row INSERT of a chunk. */
static int s_flush(pf_store_t *st, s_params_t *p, size_t *rows, const char *what,
                   const char **error_r)
{
    if (*rows == 0)
        return 0;
    PGresult *res = s_p_exec(st, p, what, error_r);
    s_p_reset(p);
    *rows = 0;
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

static int s_insert_messages(pf_store_t *st, pf_submit_t *subs, size_t n, s_params_t *p,
                             const char **error_r)
{
    static const char head[] =
        "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, reference, "
        "required_level, read_receipt, size, attachment_count, created_at, key_version, "
        "jwe_protected, jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) VALUES ";
    size_t rows = 0;
    s_p_reset(p);
    for (size_t i = 0; i < n; i++) {
        const pf_submit_t *s = &subs[i];
        if (s->outcome != PF_SUBMIT_STORED)
            continue;
        for (size_t c = 0; c < s->copy_count; c++) {
            const pf_submit_copy_t *cp = &s->copies[c];
            pf_buf_puts(&p->sql, rows == 0 ? head : ",");
            pf_buf_puts(&p->sql, "(");
            s_p_text(p, cp->mailbox_id, ",");
            s_p_text(p, cp->message_id, "::uuid,");
            s_p_int(p, s->sender_id, "::bigint,");
            s_p_text(p, s->request_id, ",");
            s_p_text(p, s->title, ",");
            s_p_text(p, s->reference ? s->reference : "", ",");
            s_p_int(p, s->level, "::smallint,");
            s_p_text(p, s->read_receipt ? "t" : "f", "::boolean,");
            s_p_int(p, cp->size, "::bigint,");
            s_p_int(p, s->attachment_count, "::integer,to_timestamp(");
            s_p_int(p, s->created_ms, "::double precision / 1000),");
            s_p_int(p, cp->key_version, "::integer,");
            s_p_text(p, cp->jwe_protected, ",");
            s_p_bin(p, cp->encrypted_key, cp->encrypted_key_len);
            pf_buf_puts(&p->sql, ",");
            s_p_bin(p, cp->iv, cp->iv_len);
            pf_buf_puts(&p->sql, ",");
            s_p_bin(p, cp->ciphertext, cp->ciphertext_len);
            pf_buf_puts(&p->sql, ",");
            s_p_bin(p, cp->tag, cp->tag_len);
            pf_buf_puts(&p->sql, ")");
            if (++rows == S_CHUNK && s_flush(st, p, &rows, "cannot store messages", error_r) != 0)
                return -1;
        }
    }
    return s_flush(st, p, &rows, "cannot store messages", error_r);
}

static int s_insert_receipts(pf_store_t *st, pf_submit_t *subs, size_t n, s_params_t *p,
                             const char **error_r)
{
    static const char head[] =
        "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) VALUES ";
    size_t rows = 0;
    s_p_reset(p);
    for (size_t i = 0; i < n; i++) {
        const pf_submit_t *s = &subs[i];
        if (s->outcome != PF_SUBMIT_STORED)
            continue;
        for (size_t c = 0; c < s->copy_count; c++) {
            const pf_submit_copy_t *cp = &s->copies[c];
            pf_buf_puts(&p->sql, rows == 0 ? head : ",");
            pf_buf_puts(&p->sql, "(");
            s_p_text(p, cp->receipt_jti, "::uuid,");
            s_p_int(p, s->sender_id, "::bigint,");
            s_p_text(p, cp->mailbox_id, ",");
            s_p_text(p, cp->message_id, "::uuid,'delivered',");
            s_p_text(p, cp->receipt_token, ")");
            if (++rows == S_CHUNK && s_flush(st, p, &rows, "cannot store receipts", error_r) != 0)
                return -1;
        }
    }
    return s_flush(st, p, &rows, "cannot store receipts", error_r);
}

int pf_store_submission_get(pf_store_t *st, int64_t sender_id, const char *request_id,
                            unsigned char hash_r[32], char **ack_r, const char **error_r)
{
    char sid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)sender_id);
    const char *p[2] = {sid, request_id};
    PGresult *res = pf_store_query(st, "cannot look up submission",
                                   "SELECT encode(payload_hash, 'hex'), ack FROM submission "
                                   "WHERE sender_id = $1::bigint AND request_id = $2",
                                   2, p, error_r);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        const char *hex = PQgetvalue(res, 0, 0);
        for (int i = 0; i < 32; i++) {
            unsigned v = 0;
            sscanf(hex + 2 * i, "%2x", &v);
            hash_r[i] = (unsigned char)v;
        }
        *ack_r = xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}

/* The stored side of PF_SUBMIT_EXISTS rows, read inside the transaction. */
static int s_fill_existing(pf_store_t *st, pf_submit_t *subs, size_t n, const char **error_r)
{
    for (size_t i = 0; i < n; i++) {
        pf_submit_t *s = &subs[i];
        if (s->outcome != PF_SUBMIT_EXISTS)
            continue;
        unsigned char hash[32];
        int rc = pf_store_submission_get(st, s->sender_id, s->request_id, hash, &s->existing_ack,
                                         error_r);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            /* inserted and gone within our transaction: cannot happen, but
             * rows are outside data, so report instead of asserting */
            snprintf(st->err, sizeof(st->err), "submission vanished during the batch");
            *error_r = st->err;
            return -1;
        }
        s->existing_same = memcmp(hash, s->payload_hash, 32) == 0;
    }
    return 0;
}

/* The common case in one round trip (libpq pipeline mode): BEGIN, the
 * submission rows without ON CONFLICT, messages, receipts, COMMIT, sync.
 * The broker looked every request id up just before, so a conflict means
 * another broker stored the same request id in between: then the
 * transaction fails with 23505 and this returns 1, and the caller takes
 * the careful path that asks the database which rows are new.
 * Returns 0 committed, 1 conflict (nothing stored), -1 error. */
static int s_submit_pipelined(pf_store_t *st, pf_submit_t *subs, size_t n, const char **error_r)
{
    if (PQenterPipelineMode(st->conn) != 1)
        return 1;
    s_params_t p = {.pipeline = true, .strict = true};
    pf_buf_init(&p.sql);
    int rc = 0;
    int sent_ok = PQsendQueryParams(st->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
    p.sent = 1;
    if (!sent_ok || s_insert_submissions(st, subs, n, &p, error_r) != 0 ||
        s_insert_messages(st, subs, n, &p, error_r) != 0 ||
        s_insert_receipts(st, subs, n, &p, error_r) != 0 ||
        PQsendQueryParams(st->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQpipelineSync(st->conn) != 1) {
        *error_r = pf_store_fail(st, "cannot send the batch", NULL);
        rc = -1;
    }
    p.sent++;
    s_p_free(&p);
    /* read every result up to the sync: NULL ends each statement's
     * results; a lost connection gives NULL forever, hence the bound */
    bool conflict = false;
    int nulls = 0;
    while (rc == 0) {
        PGresult *res = PQgetResult(st->conn);
        if (res == NULL) {
            if (PQstatus(st->conn) != CONNECTION_OK || ++nulls > p.sent + 1) {
                *error_r = pf_store_fail(st, "cannot store the batch", NULL);
                rc = -1;
            }
            continue;
        }
        ExecStatusType t = PQresultStatus(res);
        if (t == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (t == PGRES_FATAL_ERROR && !conflict && rc == 0) {
            if (strcmp(pf_store_sqlstate(res), "23505") == 0)
                conflict = true;
            else {
                *error_r = pf_store_fail(st, "cannot store the batch", res);
                rc = -1;
            }
        }
        PQclear(res);
    }
    PQexitPipelineMode(st->conn);
    if (conflict || rc != 0) {
        /* after an error the explicit transaction is still open, failed */
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return rc != 0 ? -1 : 1;
    }
    return 0;
}

int pf_store_submit_batch(pf_store_t *st, pf_submit_t *subs, size_t n, const char **error_r)
{
    for (size_t i = 0; i < n; i++) {
        free(subs[i].existing_ack);
        subs[i].existing_ack = NULL;
        subs[i].existing_same = false;
    }
    if (n == 0)
        return 0;
    int fast = s_submit_pipelined(st, subs, n, error_r);
    if (fast <= 0)
        return fast;
    s_params_t p = {0};
    pf_buf_init(&p.sql);
    if (pf_store_exec(st, "BEGIN", error_r) != 0)
        goto fail_nobegin;
    if (s_insert_submissions(st, subs, n, &p, error_r) != 0 ||
        s_insert_messages(st, subs, n, &p, error_r) != 0 ||
        s_insert_receipts(st, subs, n, &p, error_r) != 0 ||
        s_fill_existing(st, subs, n, error_r) != 0)
        goto fail;
    s_p_free(&p);
    if (pf_store_exec(st, "COMMIT", error_r) == 0)
        return 0;
    goto fail_clear;
fail:
    /* the error text lives in st->err; ROLLBACK must not overwrite it */
    PQclear(PQexec(st->conn, "ROLLBACK"));
fail_nobegin:
    s_p_free(&p);
fail_clear:
    for (size_t i = 0; i < n; i++) {
        free(subs[i].existing_ack);
        subs[i].existing_ack = NULL;
    }
    return -1;
}

int pf_store_sender_by_id(pf_store_t *st, int64_t sender_id, char **name_r, bool *active_r,
                          const char **error_r)
{
    char sid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)sender_id);
    const char *p[1] = {sid};
    PGresult *res = pf_store_query(
        st, "cannot look up sender",
        "SELECT name, status = 'active' FROM sender WHERE id = $1::bigint", 1, p, error_r);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        *name_r = xstrdup(PQgetvalue(res, 0, 0));
        *active_r = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    }
    PQclear(res);
    return found;
}

int pf_store_recipient_keys(pf_store_t *st, const char *const *ids, size_t n, int *versions_r,
                            char **jwks_r, const char **error_r)
{
    for (size_t i = 0; i < n; i++) {
        versions_r[i] = 0;
        jwks_r[i] = NULL;
    }
    if (n == 0)
        return 0;
    /* mailbox ids cannot hold quotes, backslashes, commas or braces (the
     * schema's CHECK and the codec both refuse them); quoting each element
     * keeps the literal unambiguous anyway */
    pf_buf_t arr;
    pf_buf_init(&arr);
    pf_buf_puts(&arr, "{");
    for (size_t i = 0; i < n; i++)
        pf_buf_printf(&arr, "%s\"%s\"", i ? "," : "", ids[i]);
    pf_buf_puts(&arr, "}");
    const char *p[1] = {arr.data};
    PGresult *res = pf_store_query(
        st, "cannot look up recipient keys",
        "SELECT DISTINCT ON (k.mailbox_id) k.mailbox_id, k.version::text, k.public_jwk "
        "FROM mailbox_key k JOIN mailbox m ON m.id = k.mailbox_id "
        "WHERE m.status = 'open' AND k.mailbox_id = ANY ($1::text[]) "
        "ORDER BY k.mailbox_id, k.version DESC",
        1, p, error_r);
    pf_buf_free(&arr, 0);
    if (res == NULL)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        for (size_t i = 0; i < n; i++) {
            if (jwks_r[i] == NULL && strcmp(ids[i], id) == 0) {
                versions_r[i] = atoi(PQgetvalue(res, r, 1));
                jwks_r[i] = xstrdup(PQgetvalue(res, r, 2));
            }
        }
    }
    PQclear(res);
    return 0;
}

/* Appends s as an element of a PostgreSQL array literal: quoted, with
 * quotes and backslashes escaped (request ids are visible ASCII and may
 * hold both). */
static void s_array_elem(pf_buf_t *b, const char *s, bool first)
{
    pf_buf_puts(b, first ? "\"" : ",\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            pf_buf_append(b, "\\", 1);
        pf_buf_append(b, s, 1);
    }
    pf_buf_puts(b, "\"");
}

static void s_hex32(const char *hex, unsigned char out[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

int pf_store_submissions_get(pf_store_t *st, const int64_t *sender_ids,
                             const char *const *request_ids, size_t n,
                             unsigned char (*hashes_r)[32], char **acks_r, const char **error_r)
{
    for (size_t i = 0; i < n; i++)
        acks_r[i] = NULL;
    if (n == 0)
        return 0;
    pf_buf_t sids, rids;
    pf_buf_init(&sids);
    pf_buf_init(&rids);
    pf_buf_puts(&sids, "{");
    pf_buf_puts(&rids, "{");
    for (size_t i = 0; i < n; i++) {
        pf_buf_printf(&sids, "%s%lld", i ? "," : "", (long long)sender_ids[i]);
        s_array_elem(&rids, request_ids[i], i == 0);
    }
    pf_buf_puts(&sids, "}");
    pf_buf_puts(&rids, "}");
    const char *p[2] = {sids.data, rids.data};
    PGresult *res = pf_store_query(
        st, "cannot look up submissions",
        "SELECT s.sender_id::text, s.request_id, encode(s.payload_hash, 'hex'), s.ack "
        "FROM submission s JOIN unnest($1::bigint[], $2::text[]) AS q (sid, rid) "
        "ON s.sender_id = q.sid AND s.request_id = q.rid",
        2, p, error_r);
    pf_buf_free(&sids, 0);
    pf_buf_free(&rids, 0);
    if (res == NULL)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t sid = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        const char *rid = PQgetvalue(res, r, 1);
        for (size_t i = 0; i < n; i++) {
            if (acks_r[i] == NULL && sender_ids[i] == sid && strcmp(request_ids[i], rid) == 0) {
                s_hex32(PQgetvalue(res, r, 2), hashes_r[i]);
                acks_r[i] = xstrdup(PQgetvalue(res, r, 3));
            }
        }
    }
    PQclear(res);
    return 0;
}
