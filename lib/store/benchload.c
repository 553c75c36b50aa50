/* Bulk loading for postfach-bench: stored copies for the growth runs, and
 * the same-run ceiling (how fast this PostgreSQL takes equally sized rows
 * when nobody encrypts, validates or answers).
 *
 * Callers: lib/bench only (postfach-bench).  No service links this path.
 * Invariants: rows go in with COPY ... (FORMAT binary), one COPY per
 * transaction, so each batch is one durable commit (the server's
 * synchronous_commit, as for the broker); every PGresult is cleared.
 * A template holds the binary send form of its columns, taken either from
 * a stored copy (binary result format gives exactly the COPY field form)
 * or built from values; only mailbox_id and id change from row to row.
 * Input: the template comes from the database or from our own process;
 * nothing here is untrusted. */
#include "store/benchload.h"
#include "store/store_private.h"
#include "util/buf.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* flush the COPY buffer to libpq at this size (200 KiB attachments make
 * rows of about 280 KB; a batch must not be held in memory at once) */
#define S_FLUSH_BYTES (1024 * 1024)
#define S_NCOLS 16

/* the columns after mailbox_id and id, in the order the template holds them */
#define S_TAIL_COLS                                                                                \
    "sender_id, request_id, title, reference, required_level, read_receipt, size, "                \
    "attachment_count, key_version, jwe_protected, jwe_encrypted_key, jwe_iv, jwe_ciphertext, "    \
    "jwe_tag"
#define S_TAIL_N 14

struct pf_bench_row {
    pf_buf_t tail; /* the 14 fields, each int32 length + bytes */
    size_t bytes;  /* payload bytes of those fields */
};

static void s_field(pf_bench_row_t *r, const void *data, size_t len)
{
    uint32_t n = htonl((uint32_t)len);
    pf_buf_append(&r->tail, &n, 4);
    pf_buf_append(&r->tail, data, len);
    r->bytes += len;
}

static void s_field_i64(pf_bench_row_t *r, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
    s_field(r, b, 8);
}

static void s_field_i32(pf_bench_row_t *r, int32_t v)
{
    uint32_t n = htonl((uint32_t)v);
    s_field(r, &n, 4);
}

pf_bench_row_t *pf_bench_row_new(const pf_bench_row_values_t *v)
{
    pf_bench_row_t *r = xcalloc(1, sizeof(*r));
    pf_buf_init(&r->tail);
    s_field_i64(r, v->sender_id);
    s_field(r, v->request_id, strlen(v->request_id));
    s_field(r, v->title, strlen(v->title));
    s_field(r, v->reference ? v->reference : "", v->reference ? strlen(v->reference) : 0);
    uint16_t level = htons(1);
    s_field(r, &level, 2);
    unsigned char no = 0;
    s_field(r, &no, 1);
    s_field_i64(r, v->size);
    s_field_i32(r, v->attachment_count);
    s_field_i32(r, v->key_version);
    s_field(r, v->jwe_protected, strlen(v->jwe_protected));
    s_field(r, v->encrypted_key, v->encrypted_key_len);
    s_field(r, v->iv, v->iv_len);
    s_field(r, v->ciphertext, v->ciphertext_len);
    s_field(r, v->tag, v->tag_len);
    return r;
}

int pf_store_bench_row_sample(pf_store_t *st, const char *mailbox_id, const char *message_id,
                              pf_bench_row_t **row_r, const char **error_r)
{
    const char *p[2] = {mailbox_id, message_id};
    PGresult *res = PQexecParams(st->conn,
                                 "SELECT " S_TAIL_COLS " FROM message "
                                 "WHERE mailbox_id = $1 AND id = $2::uuid",
                                 2, NULL, p, NULL, NULL, 1 /* binary results */);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *error_r = pf_store_fail(st, "cannot read a sample copy", res);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != S_TAIL_N) {
        PQclear(res);
        return 0;
    }
    pf_bench_row_t *r = xcalloc(1, sizeof(*r));
    pf_buf_init(&r->tail);
    for (int c = 0; c < S_TAIL_N; c++)
        s_field(r, PQgetvalue(res, 0, c), (size_t)PQgetlength(res, 0, c));
    PQclear(res);
    *row_r = r;
    return 1;
}

size_t pf_bench_row_bytes(const pf_bench_row_t *row)
{
    return row->bytes + 16; /* and the uuid; mailbox ids vary */
}

void pf_bench_row_destroy(pf_bench_row_t **rp)
{
    if (*rp == NULL)
        return;
    pf_buf_free(&(*rp)->tail, 0);
    free(*rp);
    *rp = NULL;
}

static int s_put(pf_store_t *st, pf_buf_t *b, const char **error_r)
{
    if (b->len == 0)
        return 0;
    if (PQputCopyData(st->conn, b->data, (int)b->len) != 1) {
        *error_r = pf_store_fail(st, "cannot send copy data", NULL);
        return -1;
    }
    pf_buf_reset(b);
    return 0;
}

/* Starts a binary COPY: sends the statement and puts the file header into b. */
static int s_copy_begin(pf_store_t *st, const char *sql, pf_buf_t *b, const char **error_r)
{
    PGresult *res = PQexec(st->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        *error_r = pf_store_fail(st, "cannot start copy", res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    static const char sig[11] = "PGCOPY\n\377\r\n";
    pf_buf_reset(b);
    pf_buf_append(b, sig, sizeof(sig));
    uint32_t zero[2] = {0, 0}; /* flags, header extension length */
    pf_buf_append(b, zero, sizeof(zero));
    return 0;
}

/* Ends a binary COPY begun by s_copy_begin: the trailer, the rest of b, and
 * the server's verdict.  rc != 0 (an earlier failure) aborts the COPY. */
static int s_copy_end(pf_store_t *st, pf_buf_t *b, int rc, const char **error_r)
{
    uint16_t trailer = 0xffff;
    pf_buf_append(b, &trailer, 2);
    if (rc == 0)
        rc = s_put(st, b, error_r);
    if (PQputCopyEnd(st->conn, rc == 0 ? NULL : "bench load aborted") != 1 && rc == 0) {
        *error_r = pf_store_fail(st, "cannot end copy", NULL);
        rc = -1;
    }
    PGresult *res;
    while ((res = PQgetResult(st->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0) {
            *error_r = pf_store_fail(st, "copy failed", res);
            rc = -1;
        }
        PQclear(res);
    }
    return rc;
}

static void s_put_field(pf_buf_t *b, const void *data, size_t len)
{
    uint32_t n = htonl((uint32_t)len);
    pf_buf_append(b, &n, 4);
    pf_buf_append(b, data, len);
}

static void s_put_text(pf_buf_t *b, const char *s)
{
    s_put_field(b, s, strlen(s));
}

static void s_put_nfields(pf_buf_t *b, uint16_t n)
{
    uint16_t nf = htons(n);
    pf_buf_append(b, &nf, 2);
}

/* One COPY of n rows = one transaction (autocommit): returns when the
 * server has committed it. */
static int s_copy_batch(pf_store_t *st, const char *table, const pf_bench_row_t *row,
                        const char *const *mailboxes, size_t nmailboxes, size_t *next_mailbox,
                        size_t n, pf_buf_t *b, const char **error_r)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "COPY %s (mailbox_id, id, " S_TAIL_COLS ") FROM STDIN (FORMAT binary)", table);
    if (s_copy_begin(st, sql, b, error_r) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *mb = mailboxes[*next_mailbox];
        *next_mailbox = (*next_mailbox + 1) % nmailboxes;
        s_put_nfields(b, S_NCOLS);
        s_put_text(b, mb);
        uint8_t id[16];
        pf_uuid7_generate_bin(id);
        s_put_field(b, id, sizeof(id));
        pf_buf_append(b, row->tail.data, row->tail.len);
        if (b->len >= S_FLUSH_BYTES)
            rc = s_put(st, b, error_r);
    }
    return s_copy_end(st, b, rc, error_r);
}

static int s_load(pf_store_t *st, const char *table, const pf_bench_row_t *row,
                  const char *const *mailboxes, size_t nmailboxes, size_t n, size_t batch,
                  void (*progress)(void *ctx, size_t done), void *ctx, const char **error_r)
{
    if (nmailboxes == 0 || batch == 0) {
        snprintf(st->err, sizeof(st->err), "bench load needs mailboxes and a batch size");
        *error_r = st->err;
        return -1;
    }
    pf_buf_t b;
    pf_buf_init(&b);
    size_t done = 0, next = 0;
    int rc = 0;
    while (done < n && rc == 0) {
        size_t k = n - done < batch ? n - done : batch;
        rc = s_copy_batch(st, table, row, mailboxes, nmailboxes, &next, k, &b, error_r);
        if (rc == 0) {
            done += k;
            if (progress)
                progress(ctx, done);
        }
    }
    pf_buf_free(&b, 0);
    return rc;
}

int pf_store_bench_load(pf_store_t *st, const pf_bench_row_t *row, const char *const *mailboxes,
                        size_t nmailboxes, size_t n, size_t batch,
                        void (*progress)(void *ctx, size_t done), void *ctx, const char **error_r)
{
    return s_load(st, "message", row, mailboxes, nmailboxes, n, batch, progress, ctx, error_r);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int pf_store_bench_ceiling(pf_store_t *st, const pf_bench_row_t *row, const char *const *mailboxes,
                           size_t nmailboxes, size_t n, size_t batch, double *rows_per_s_r,
                           const char **error_r)
{
    /* shaped like message: same columns, defaults, checks and primary key
     * (foreign keys are not copied by LIKE; the broker's inserts check
     * them, so the ceiling is a little generous, never stingy) */
    if (pf_store_exec(st,
                      "SET client_min_messages = warning;"
                      "DROP TABLE IF EXISTS bench_ceiling;"
                      "CREATE TABLE bench_ceiling (LIKE message INCLUDING DEFAULTS "
                      "INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING STORAGE)",
                      error_r) != 0)
        return -1;
    double t0 = s_now();
    int rc = s_load(st, "bench_ceiling", row, mailboxes, nmailboxes, n, batch, NULL, NULL, error_r);
    double t = s_now() - t0;
    const char *err2;
    if (pf_store_exec(st, "DROP TABLE IF EXISTS bench_ceiling", &err2) != 0 && rc == 0) {
        *error_r = err2;
        rc = -1;
    }
    if (rc == 0)
        *rows_per_s_r = t > 0 ? (double)n / t : 0;
    return rc;
}

int pf_store_bench_mailbox_count(pf_store_t *st, const char *prefix, int64_t *n_r,
                                 const char **error_r)
{
    const char *p[1] = {prefix};
    PGresult *res = pf_store_query(st, "cannot count mailboxes",
                                   "SELECT count(*) FROM mailbox WHERE left(id, length($1)) = $1",
                                   1, p, error_r);
    if (res == NULL)
        return -1;
    *n_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int pf_store_bench_wal_bytes(pf_store_t *st, double *bytes_r, const char **error_r)
{
    PGresult *res = pf_store_query(st, "cannot read the WAL position",
                                   "SELECT pg_current_wal_insert_lsn() - '0/0'", 0, NULL, error_r);
    if (res == NULL)
        return -1;
    *bytes_r = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    return 0;
}

int pf_store_bench_fast_commit(pf_store_t *st, const char **error_r)
{
    return pf_store_exec(st, "SET synchronous_commit = off", error_r);
}

static void s_put_i32(pf_buf_t *b, int32_t v)
{
    uint32_t n = htonl((uint32_t)v);
    s_put_field(b, &n, 4);
}

/* a new mailbox's rows: it gets key version 1 */
static void s_mailbox_row(pf_buf_t *b, const pf_bench_mailbox_row_t *r)
{
    s_put_nfields(b, 1);
    s_put_text(b, r->id);
}

static void s_mailbox_key_row(pf_buf_t *b, const pf_bench_mailbox_row_t *r)
{
    s_put_nfields(b, 5);
    s_put_text(b, r->id);
    s_put_i32(b, 1);
    s_put_text(b, r->kid);
    s_put_text(b, r->alg);
    s_put_text(b, r->public_jwk);
}

static void s_mailbox_secret_row(pf_buf_t *b, const pf_bench_mailbox_row_t *r)
{
    if (r->wrapped == NULL)
        return; /* the citizen keeps the key: no row */
    s_put_nfields(b, 4);
    s_put_text(b, r->id);
    s_put_i32(b, 1);
    s_put_text(b, r->kek_id);
    s_put_field(b, r->wrapped, r->wrapped_len);
}

/* One binary COPY (sql) of what put writes for each of the n rows. */
static int s_copy_mailboxes(pf_store_t *st, const char *sql, const pf_bench_mailbox_row_t *rows,
                            size_t n, void (*put)(pf_buf_t *, const pf_bench_mailbox_row_t *),
                            pf_buf_t *b, const char **error_r)
{
    if (s_copy_begin(st, sql, b, error_r) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        put(b, &rows[i]);
    return s_copy_end(st, b, 0, error_r);
}

int pf_store_bench_mailboxes_add(pf_store_t *st, const pf_bench_mailbox_row_t *rows, size_t n,
                                 const char **error_r)
{
    if (n == 0)
        return 0;
    /* a bulk load of test mailboxes is not an administrative change: the
     * bench (the owner) leaves it out of admin_audit (sql/0020) */
    if (pf_store_exec(st, "BEGIN; SET LOCAL postfach.audit = 'off'", error_r) != 0)
        return -1;
    pf_buf_t b;
    pf_buf_init(&b);
    int rc = s_copy_mailboxes(st, "COPY mailbox (id) FROM STDIN (FORMAT binary)", rows, n,
                              s_mailbox_row, &b, error_r);
    if (rc == 0)
        rc = s_copy_mailboxes(st,
                              "COPY mailbox_key (mailbox_id, version, kid, alg, public_jwk) "
                              "FROM STDIN (FORMAT binary)",
                              rows, n, s_mailbox_key_row, &b, error_r);
    if (rc == 0)
        rc = s_copy_mailboxes(st,
                              "COPY mailbox_secret (mailbox_id, version, kek_id, wrapped_key) "
                              "FROM STDIN (FORMAT binary)",
                              rows, n, s_mailbox_secret_row, &b, error_r);
    pf_buf_free(&b, 0);
    if (rc == 0)
        return pf_store_exec(st, "COMMIT", error_r);
    PQclear(PQexec(st->conn, "ROLLBACK"));
    return -1;
}
