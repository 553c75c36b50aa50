/* Group commit of submissions (see submit.h).
 *
 * Callers: lib/broker only: the synchronous lookups on the broker's main
 * connection, the group commits on its commit connections.
 * Why one statement with arrays: a durable COMMIT costs one WAL flush, and
 * the cost per row must stay far below it.  A batch is BEGIN, ONE
 * prepared INSERT whose parameters are binary arrays (one element per
 * submission or per copy, unnested on the server; data-modifying CTEs
 * insert the submission rows with ON CONFLICT DO NOTHING and the message
 * and receipt rows of only the new ones, plus the delivery rows of the
 * receipts the broker sends itself after COMMIT, sql/0010; the trigger
 * adds the others), COMMIT, sent in one go in libpq
 * pipeline mode.  The statement text does not depend on the batch size,
 * so it is parsed and planned once per connection; binary arrays carry
 * ciphertexts without hex doubling and integers without printf/parse.
 * Repeats need no second round trip and no fallback: ON CONFLICT turns
 * them into PF_SUBMIT_EXISTS, whose stored ACK is read after the COMMIT.
 * A request id twice in one batch: ON CONFLICT DO NOTHING inserts its
 * submission row once, but the copies joined to that row by (sender,
 * request id) would be inserted for both entries.  So q keeps only the
 * first entry of each (sender, request id) (DISTINCT ON, by ordinal); the
 * others stay PF_SUBMIT_EXISTS and are answered from the first one's
 * stored ACK, as if they had come in a later batch.  This does not rely
 * on the broker, which answers repeats within a batch itself.
 * The JWE's binary parts stay out of the CTE k: k is read three times, so
 * PostgreSQL materialises it, copying every ciphertext into a tuplestore
 * and out again.  The message insert takes them from the arrays by the
 * copy's ordinal instead (with 200 KiB attachments, 6-12% less
 * PostgreSQL CPU per notice in alternating runs).
 * Invariants: parameters only, every PGresult cleared on every path,
 * ROLLBACK on every failure before COMMIT. */
#include "store/submit.h"
#include "store/store_private.h"
#include "util/buf.h"
#include "util/crashpoint.h"
#include "util/digits.h"
#include "util/xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* PostgreSQL type oids of the array elements (pg_type.dat, stable) */
#define S_OID_BOOL 16
#define S_OID_BYTEA 17
#define S_OID_INT8 20
#define S_OID_INT2 21
#define S_OID_INT4 23
#define S_OID_TEXT 25
#define S_OID_TIMESTAMPTZ 1184
#define S_OID_UUID 2950
/* microseconds between the Unix epoch and PostgreSQL's (2000-01-01) */
#define S_PG_EPOCH_US 946684800000000LL

#define S_STMT "pf_submit_v4"
#define S_NPARAMS 23

static const char s_sql[] =
    "WITH q AS (SELECT DISTINCT ON (sender_id, request_id) * FROM unnest($1::bigint[], "
    "$2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::smallint[], "
    "$8::boolean[], $9::integer[], $10::timestamptz[], $23::integer[]) "
    "WITH ORDINALITY AS a (sender_id, request_id, payload_hash, ack, title, reference, "
    "required_level, read_receipt, attachment_count, created_at, hold, n) "
    "ORDER BY sender_id, request_id, n), "
    "s AS (INSERT INTO submission (sender_id, request_id, payload_hash, ack) "
    "SELECT sender_id, request_id, payload_hash, ack FROM q "
    "ON CONFLICT (sender_id, request_id) DO NOTHING RETURNING sender_id, request_id), "
    "k AS (SELECT q.sender_id, q.request_id, q.title, q.reference, q.required_level, "
    "q.read_receipt, q.attachment_count, q.created_at, q.hold, c.* "
    "FROM unnest($11::integer[], $12::text[], $13::uuid[], $14::integer[], $15::bigint[], "
    "$16::text[], $21::uuid[], $22::text[]) WITH ORDINALITY "
    "AS c (sub, mailbox_id, id, key_version, size, jwe_protected, jti, token, ci) "
    "JOIN q ON q.n = c.sub JOIN s ON s.sender_id = q.sender_id AND s.request_id = q.request_id), "
    "m AS (INSERT INTO message (mailbox_id, id, sender_id, request_id, title, reference, "
    "required_level, read_receipt, size, attachment_count, created_at, key_version, "
    "jwe_protected, jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) "
    "SELECT mailbox_id, id, sender_id, request_id, title, reference, required_level, "
    "read_receipt, size, attachment_count, created_at, key_version, jwe_protected, "
    "($17::bytea[])[ci], ($18::bytea[])[ci], ($19::bytea[])[ci], ($20::bytea[])[ci] FROM k), "
    "r AS (INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
    "SELECT jti, sender_id, mailbox_id, id, 'delivered', token FROM k), "
    "d AS (INSERT INTO receipt_delivery (jti, sender_id, attempts, next_attempt_at) "
    "SELECT jti, sender_id, 1, now() + make_interval(secs => hold) FROM k WHERE hold > 0) "
    "SELECT q.n FROM q JOIN s ON s.sender_id = q.sender_id AND s.request_id = q.request_id";

/* ---- binary arrays (the array_send format of PostgreSQL) ---------------- */

typedef struct {
    pf_buf_t b;
    size_t count; /* elements so far */
} s_array_t;

static void s_be32(pf_buf_t *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    pf_buf_append(b, x, 4);
}

static void s_be64(unsigned char out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* One dimension, no NULLs; the header's element count is patched in by
 * s_arr_finish. */
static void s_arr_init(s_array_t *a, uint32_t oid)
{
    pf_buf_init(&a->b);
    a->count = 0;
    s_be32(&a->b, 1);   /* ndim */
    s_be32(&a->b, 0);   /* has no NULLs */
    s_be32(&a->b, oid); /* element type */
    s_be32(&a->b, 0);   /* length, patched */
    s_be32(&a->b, 1);   /* lower bound */
}

static void s_arr_add(s_array_t *a, const void *p, size_t len)
{
    s_be32(&a->b, (uint32_t)len);
    pf_buf_append(&a->b, p, len);
    a->count++;
}

static void s_arr_str(s_array_t *a, const char *s)
{
    s_arr_add(a, s ? s : "", s ? strlen(s) : 0);
}

static void s_arr_i64(s_array_t *a, int64_t v)
{
    unsigned char x[8];
    s_be64(x, (uint64_t)v);
    s_arr_add(a, x, 8);
}

static void s_arr_i32(s_array_t *a, int32_t v)
{
    unsigned char x[4] = {(unsigned char)((uint32_t)v >> 24), (unsigned char)((uint32_t)v >> 16),
                          (unsigned char)((uint32_t)v >> 8), (unsigned char)v};
    s_arr_add(a, x, 4);
}

static void s_arr_i16(s_array_t *a, int v)
{
    unsigned char x[2] = {(unsigned char)((unsigned)v >> 8), (unsigned char)v};
    s_arr_add(a, x, 2);
}

static void s_arr_bool(s_array_t *a, bool v)
{
    unsigned char x = v ? 1 : 0;
    s_arr_add(a, &x, 1);
}

/* A UUID in its 36-character text form (made by lib/util/uuid7) as the
 * 16 bytes of uuid_send. */
static void s_arr_uuid(s_array_t *a, const char *text)
{
    unsigned char u[16] = {0};
    size_t k = 0;
    for (const char *p = text; *p && k < 32; p++) {
        int v = pf_hex_digit(*p);
        if (v < 0)
            continue; /* the dashes */
        u[k / 2] = (unsigned char)(u[k / 2] | (k % 2 ? v : v << 4));
        k++;
    }
    s_arr_add(a, u, sizeof(u));
}

static void s_arr_finish(s_array_t *a)
{
    uint32_t n = (uint32_t)a->count;
    unsigned char *p = (unsigned char *)a->b.data + 12;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

/* The 23 parameters of s_sql for a batch. */
typedef struct {
    s_array_t a[S_NPARAMS];
    const char *v[S_NPARAMS];
    int len[S_NPARAMS];
    int fmt[S_NPARAMS];
} s_params_t;

static void s_params_build(s_params_t *p, const pf_submit_t *subs, size_t n)
{
    static const uint32_t oids[S_NPARAMS] = {
        S_OID_INT8,  S_OID_TEXT,  S_OID_BYTEA, S_OID_TEXT,        S_OID_TEXT,  S_OID_TEXT,
        S_OID_INT2,  S_OID_BOOL,  S_OID_INT4,  S_OID_TIMESTAMPTZ, S_OID_INT4,  S_OID_TEXT,
        S_OID_UUID,  S_OID_INT4,  S_OID_INT8,  S_OID_TEXT,        S_OID_BYTEA, S_OID_BYTEA,
        S_OID_BYTEA, S_OID_BYTEA, S_OID_UUID,  S_OID_TEXT,        S_OID_INT4};
    for (int i = 0; i < S_NPARAMS; i++)
        s_arr_init(&p->a[i], oids[i]);
    for (size_t i = 0; i < n; i++) {
        const pf_submit_t *s = &subs[i];
        s_arr_i64(&p->a[0], s->sender_id);
        s_arr_str(&p->a[1], s->request_id);
        s_arr_add(&p->a[2], s->payload_hash, 32);
        s_arr_str(&p->a[3], s->ack_json);
        s_arr_str(&p->a[4], s->title);
        s_arr_str(&p->a[5], s->reference ? s->reference : "");
        s_arr_i16(&p->a[6], s->level);
        s_arr_bool(&p->a[7], s->read_receipt);
        s_arr_i32(&p->a[8], s->attachment_count);
        s_arr_i64(&p->a[9], s->created_ms * 1000 - S_PG_EPOCH_US);
        s_arr_i32(&p->a[22], s->receipt_hold_seconds > 0 ? s->receipt_hold_seconds : 0);
        for (size_t c = 0; c < s->copy_count; c++) {
            const pf_submit_copy_t *cp = &s->copies[c];
            s_arr_i32(&p->a[10], (int32_t)(i + 1)); /* WITH ORDINALITY counts from 1 */
            s_arr_str(&p->a[11], cp->mailbox_id);
            s_arr_uuid(&p->a[12], cp->message_id);
            s_arr_i32(&p->a[13], cp->key_version);
            s_arr_i64(&p->a[14], cp->size);
            s_arr_str(&p->a[15], cp->jwe_protected);
            s_arr_add(&p->a[16], cp->encrypted_key, cp->encrypted_key_len);
            s_arr_add(&p->a[17], cp->iv, cp->iv_len);
            s_arr_add(&p->a[18], cp->ciphertext, cp->ciphertext_len);
            s_arr_add(&p->a[19], cp->tag, cp->tag_len);
            s_arr_uuid(&p->a[20], cp->receipt_jti);
            s_arr_str(&p->a[21], cp->receipt_token);
        }
    }
    for (int i = 0; i < S_NPARAMS; i++) {
        s_arr_finish(&p->a[i]);
        p->v[i] = p->a[i].b.data;
        p->len[i] = (int)p->a[i].b.len;
        p->fmt[i] = 1;
    }
}

static void s_params_free(s_params_t *p)
{
    for (int i = 0; i < S_NPARAMS; i++)
        pf_buf_free(&p->a[i].b, 0); /* ciphertexts and signed receipts only */
}

/* ---- the committer ---------------------------------------------------------- */

typedef enum { S_IDLE = 0, S_WAITING } s_cstate_t;

struct pf_store_committer {
    pf_store_t *st;
    bool prepared; /* S_STMT exists on this connection */
    bool oneshot;  /* use the unnamed statement instead */
    s_cstate_t state;
    pf_submit_t *subs;
    size_t n;
    int queries; /* sent in this pipeline (each ends its results with NULL) */
    int nulls;
    int step;       /* results seen: 0 BEGIN, [PREPARE], INSERT, COMMIT */
    bool preparing; /* this pipeline holds the PREPARE */
    bool failed;
    bool committed;
};

/* The statement's plan does not depend on the batch (arrays in, the same
 * joins every time): plan it once per session instead of per execution,
 * which PostgreSQL would otherwise do for the first five executions and
 * whenever it thinks a custom plan might win. */
static void s_session(pf_store_committer_t *c)
{
    PQclear(PQexec(c->st->conn, "SET plan_cache_mode = force_generic_plan"));
}

int pf_store_committer_new(const char *conninfo, pf_store_committer_t **c_r, const char **error_r)
{
    pf_store_t *st;
    if (pf_store_open_as(conninfo, "commit", &st, error_r) != 0)
        return -1;
    pf_store_committer_t *c = xcalloc(1, sizeof(*c));
    c->st = st;
    s_session(c);
    *c_r = c;
    return 0;
}

void pf_store_committer_destroy(pf_store_committer_t **cp)
{
    pf_store_committer_t *c = *cp;
    if (c == NULL)
        return;
    pf_store_destroy(&c->st);
    free(c);
    *cp = NULL;
}

pf_store_t *pf_store_committer_store(pf_store_committer_t *c)
{
    return c->st;
}

int pf_store_committer_socket(pf_store_committer_t *c)
{
    return PQsocket(c->st->conn);
}

bool pf_store_committer_busy(const pf_store_committer_t *c)
{
    return c->state != S_IDLE;
}

int pf_store_committer_reconnect(pf_store_committer_t *c, const char **error_r)
{
    c->state = S_IDLE;
    c->prepared = false; /* prepared statements belong to the session */
    if (PQpipelineStatus(c->st->conn) != PQ_PIPELINE_OFF)
        PQexitPipelineMode(c->st->conn);
    if (pf_store_reconnect(c->st, error_r) != 0)
        return -1;
    s_session(c);
    return 0;
}

/* Fault tests only (the fault points drop_before_commit and
 * drop_after_commit of a commit connection): the connection breaks under
 * libpq as in a network failure, and libpq notices it now. */
static void s_drop(PGconn *conn)
{
    shutdown(PQsocket(conn), SHUT_RDWR);
    PQconsumeInput(conn);
}

/* Ends a failed or finished pipeline: back to ordinary mode; after a
 * failure the explicit transaction is still open (aborted) and is rolled
 * back, unless the connection is gone. */
static void s_finish(pf_store_committer_t *c, bool rollback)
{
    PQexitPipelineMode(c->st->conn);
    if (rollback && !pf_store_broken(c->st))
        PQclear(PQexec(c->st->conn, "ROLLBACK"));
    c->state = S_IDLE;
}

int pf_store_committer_send(pf_store_committer_t *c, pf_submit_t *subs, size_t n,
                            const char **error_r)
{
    for (size_t i = 0; i < n; i++) {
        free(subs[i].existing_ack);
        subs[i].existing_ack = NULL;
        subs[i].existing_same = false;
        subs[i].outcome = PF_SUBMIT_EXISTS; /* until the statement says otherwise */
    }
    PGconn *conn = c->st->conn;
    if (c->state != S_IDLE || PQenterPipelineMode(conn) != 1) {
        *error_r = pf_store_fail(c->st, "cannot start the batch", NULL);
        return -1;
    }
    c->subs = subs;
    c->n = n;
    c->queries = 0;
    c->nulls = 0;
    c->step = 0;
    c->failed = false;
    c->committed = false;
    c->preparing = !c->oneshot && !c->prepared;
    s_params_t p;
    s_params_build(&p, subs, n);
    bool ok = PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
    c->queries++;
    if (c->oneshot) {
        ok = ok && PQsendQueryParams(conn, s_sql, S_NPARAMS, NULL, p.v, p.len, p.fmt, 0) == 1;
    } else {
        if (ok && !c->prepared) {
            ok = PQsendPrepare(conn, S_STMT, s_sql, S_NPARAMS, NULL) == 1;
            c->queries++;
        }
        ok = ok && PQsendQueryPrepared(conn, S_STMT, S_NPARAMS, p.v, p.len, p.fmt, 0) == 1;
    }
    c->queries++;
    /* fault tests only: the INSERT reaches the server, its COMMIT is never sent */
    ok = ok && (!pf_crashpoint_armed || PQflush(conn) == 0) && pf_crashpoint("after_insert") == 0;
    /* fault tests only: the connection breaks as the COMMIT goes out, so
     * that it never reaches the server, which rolls back; to the broker
     * the outcome is unknown */
    if (ok && !c->oneshot && pf_faultpoint("drop_before_commit"))
        s_drop(conn);
    ok = ok && PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1;
    c->queries++;
    ok = ok && PQpipelineSync(conn) == 1;
    s_params_free(&p);
    if (ok)
        pf_crashpoint("after_commit_sent");
    if (!ok) {
        *error_r = pf_store_fail(c->st, "cannot send the batch", NULL);
        s_finish(c, true);
        return -1;
    }
    c->state = S_WAITING;
    return 0;
}

/* The stored side of PF_SUBMIT_EXISTS rows, read after the COMMIT (a
 * repeat, or a concurrent broker's insert of the same request id). */
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
            /* refused by ON CONFLICT yet not there: rows are outside data,
             * so report instead of asserting */
            snprintf(st->err, sizeof(st->err), "submission vanished during the batch");
            *error_r = st->err;
            return -1;
        }
        s->existing_same = memcmp(hash, s->payload_hash, 32) == 0;
    }
    return 0;
}

/* Files one result of the pipeline. */
static void s_result(pf_store_committer_t *c, PGresult *res)
{
    ExecStatusType t = PQresultStatus(res);
    if (c->failed)
        return; /* the rest is PGRES_PIPELINE_ABORTED */
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
        pf_store_fail(c->st, "cannot store the batch", res);
        c->failed = true;
        return;
    }
    int insert_step = c->preparing ? 2 : 1;
    if (c->step == 1 && c->preparing)
        c->prepared = true; /* the PREPARE went through */
    else if (c->step == insert_step) {
        for (int r = 0; r < PQntuples(res); r++) {
            long k = strtol(PQgetvalue(res, r, 0), NULL, 10);
            if (k >= 1 && (size_t)k <= c->n)
                c->subs[k - 1].outcome = PF_SUBMIT_STORED;
        }
    } else if (c->step == insert_step + 1) {
        c->committed = true; /* the COMMIT result */
    }
}

int pf_store_committer_poll(pf_store_committer_t *c, const char **error_r)
{
    PGconn *conn = c->st->conn;
    if (c->state != S_WAITING)
        return 0;
    if (PQconsumeInput(conn) != 1) {
        *error_r = pf_store_fail(c->st, "cannot store the batch", NULL);
        s_finish(c, false);
        return -1;
    }
    while (!PQisBusy(conn)) {
        PGresult *res = PQgetResult(conn);
        if (res == NULL) {
            /* the end of one statement's results; a lost connection gives
             * NULL forever, hence the bound */
            if (++c->nulls > c->queries || PQstatus(conn) != CONNECTION_OK) {
                *error_r = pf_store_fail(c->st, "cannot store the batch", NULL);
                s_finish(c, false);
                return -1;
            }
            c->step++;
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            /* fault tests only: the COMMIT went through, and the connection
             * breaks before the broker has seen its result */
            if (c->committed && !c->failed && !c->oneshot && pf_faultpoint("drop_after_commit")) {
                s_drop(conn);
                *error_r = pf_store_fail(c->st, "cannot store the batch", NULL);
                s_finish(c, false);
                return -1;
            }
            bool ok = !c->failed && c->committed;
            if (!ok && !c->failed)
                pf_store_fail(c->st, "cannot store the batch", NULL);
            s_finish(c, !ok);
            if (!ok) {
                *error_r = c->st->err;
                return -1;
            }
            if (s_fill_existing(c->st, c->subs, c->n, error_r) != 0) {
                /* committed; only the answers to repeats are missing: the
                 * caller settles them like an unknown outcome */
                return -1;
            }
            return 1;
        }
        s_result(c, res);
        PQclear(res);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        *error_r = pf_store_fail(c->st, "cannot store the batch", NULL);
        s_finish(c, false);
        return -1;
    }
    return 0;
}

int pf_store_submit_batch(pf_store_t *st, pf_submit_t *subs, size_t n, const char **error_r)
{
    if (n == 0)
        return 0;
    /* a committer borrowing st for one round, with the unnamed statement
     * (st is not the committer's own session, so nothing stays prepared) */
    pf_store_committer_t c = {.st = st, .oneshot = true};
    if (pf_store_committer_send(&c, subs, n, error_r) != 0)
        return -1;
    for (;;) {
        int rc = pf_store_committer_poll(&c, error_r);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN};
        if (pfd.fd < 0 || (poll(&pfd, 1, -1) < 0 && errno != EINTR)) {
            *error_r = pf_store_fail(st, "cannot store the batch", NULL);
            s_finish(&c, false);
            return -1;
        }
    }
}

/* A stored payload hash (encode(payload_hash, 'hex')): a value that is
 * not 64 digits reads as zeros, which no SHA-256 of a payload matches, so
 * a resend is refused as a conflict rather than taken as the same. */
static void s_hash_from_hex(const char *hex, unsigned char out[32])
{
    if (pf_hex_decode(hex, 32, out) != 0 || hex[64] != '\0')
        memset(out, 0, 32);
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
        s_hash_from_hex(PQgetvalue(res, 0, 0), hash_r);
        *ack_r = xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}

int pf_store_sender_by_id(pf_store_t *st, int64_t sender_id, char **name_r, bool *active_r,
                          char key_r[41], const char **error_r)
{
    char sid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)sender_id);
    const char *p[1] = {sid};
    PGresult *res = pf_store_query(
        st, "cannot look up sender",
        "SELECT name, status = 'active', curve_key FROM sender WHERE id = $1::bigint", 1, p,
        error_r);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        *name_r = xstrdup(PQgetvalue(res, 0, 0));
        *active_r = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        snprintf(key_r, 41, "%s", PQgetvalue(res, 0, 2));
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
     * schema's CHECK and the codec both refuse them); quoting and escaping
     * each element keeps the literal unambiguous anyway */
    pf_buf_t arr;
    pf_buf_init(&arr);
    pf_store_array_literal(&arr, ids, n);
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
    pf_store_int_array_literal(&sids, sender_ids, n);
    pf_store_array_literal(&rids, request_ids, n);
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
                s_hash_from_hex(PQgetvalue(res, r, 2), hashes_r[i]);
                acks_r[i] = xstrdup(PQgetvalue(res, r, 3));
            }
        }
    }
    PQclear(res);
    return 0;
}

int pf_store_sender_allowlists(pf_store_t *st, const int64_t *sender_ids, size_t n,
                               pf_store_allow_t *allow_r, const char **error_r)
{
    memset(allow_r, 0, sizeof(*allow_r));
    if (n == 0)
        return 0;
    pf_buf_t sids;
    pf_buf_init(&sids);
    pf_store_int_array_literal(&sids, sender_ids, n);
    const char *p[1] = {sids.data};
    PGresult *res = pf_store_query(st, "cannot look up recipient allowlists",
                                   "SELECT sender_id::text, pattern FROM sender_recipient_allow "
                                   "WHERE sender_id = ANY ($1::bigint[])",
                                   1, p, error_r);
    pf_buf_free(&sids, 0);
    if (res == NULL)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    allow_r->sender_ids = xcalloc(rows ? rows : 1, sizeof(*allow_r->sender_ids));
    allow_r->patterns = xcalloc(rows ? rows : 1, sizeof(*allow_r->patterns));
    for (size_t r = 0; r < rows; r++) {
        allow_r->sender_ids[r] = strtoll(PQgetvalue(res, (int)r, 0), NULL, 10);
        allow_r->patterns[r] = xstrdup(PQgetvalue(res, (int)r, 1));
    }
    allow_r->n = rows;
    PQclear(res);
    return 0;
}

void pf_store_allow_clear(pf_store_allow_t *allow)
{
    for (size_t i = 0; i < allow->n; i++)
        free(allow->patterns[i]);
    free(allow->sender_ids);
    free(allow->patterns);
    memset(allow, 0, sizeof(*allow));
}
