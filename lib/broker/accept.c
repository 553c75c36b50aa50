/* Accepting submissions: the broker's write path, a pipeline of three
 * stages that run at the same time on different batches.
 *
 *   forming  SENDs collected on the main thread as they arrive (checked:
 *            active sender, size, repeats within the batch);
 *   sealing  the batch's lookups (stored request ids, recipient keys,
 *            the sender's recipient allowlist: one query each per batch)
 *            on the main thread, then encryption and receipt signing on
 *            the crypto workers (seal.c);
 *   commit   the sealed batch as ONE transaction on one of S_COMMITTERS
 *            connections of its own, sent without waiting (libpq pipeline
 *            mode); each SEND of the batch is answered when, and only
 *            when, that transaction's COMMIT result has arrived.
 *
 * Batch sizes adapt to the load: a forming batch moves on as soon as no
 * batch is sealing or waiting for a free connection, so one SEND on an
 * idle broker goes straight through, and under load everything that
 * arrived during one COMMIT goes into the next (group commit).
 *
 * Callers: broker.c (pf_broker_accept_batch with each round of SENDs,
 * which this module takes over; pf_broker_accept_progress after every
 * poll).  Invariants: every SEND gets exactly one answer (ACK or NACK),
 * or none when the peer is gone or the broker stops before it was
 * sealed; ACK only after COMMIT; the notice plaintext never leaves
 * pf_seal_item; memory is bounded by S_INFLIGHT_MAX SENDs and
 * S_INFLIGHT_BYTES, beyond which SENDs are answered "busy", plus one large
 * SEND (see S_LARGE_COST).  A COMMIT
 * whose outcome is unknown (connection lost) is settled by looking the
 * request ids up after reconnecting, never by guessing. */
#include "broker/broker_private.h"
#include "broker/seal.h"
#include "store/submit.h"
#include "util/buf.h"
#include "util/crashpoint.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <malloc.h> /* malloc_trim */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Two connections: while one waits for its WAL flush, the other's batch
 * is inserted (PostgreSQL flushes concurrent commits together). */
#define S_COMMITTERS 2
/* one transaction: more rows amortise the flush better, but a batch
 * also waits for its slowest part */
#define S_BATCH_MAX 512
/* bytes per transaction: libpq's output buffer grows to one whole batch
 * and keeps that size, per commit connection */
#define S_BATCH_BYTES (4LL * 1024 * 1024)
/* a batch this large goes on while another is under way (s_pump) */
#define S_BATCH_PAIR 8
/* everything the pipeline may hold (frames, sealed copies) */
#define S_INFLIGHT_MAX 4096
#define S_INFLIGHT_BYTES (24LL * 1024 * 1024)
/* A SEND that would hold more than this (a notice with a 10 MiB scan
 * costs its frames plus about 4/3 of them sealed) never fits beside much
 * else, and one above S_INFLIGHT_BYTES never fits at all: answered "busy"
 * on every retry, it would never be stored although the wire limits
 * allow it.  So one large SEND at a time goes in whatever else is in
 * flight; the next large one waits for it ("busy").  The bound is then
 * S_INFLIGHT_BYTES plus one SEND, which max_message_size and
 * batch_max_bytes bound. */
#define S_LARGE_COST (S_INFLIGHT_BYTES / 2)
/* batches this small are sealed on the main thread when no worker is busy */
#define S_INLINE_MAX 2
/* parsed recipient keys; a full cache is emptied when no batch is being
 * sealed (keys are cheap to parse once; a bound matters more) */
#define S_KEY_SLOTS 8192
#define S_KEY_MAX 4096
/* the safety net behind the mailbox NOTIFYs */
#define S_CURRENT_TRUST_MS 60000
/* Memory freed after a burst of large notices goes back to the system
 * once the pipeline has been empty this long (malloc_trim): glibc keeps
 * the freed chunks of every thread's arena otherwise, and RSS stays at
 * the burst's height.  Only after a pipeline that held this many bytes:
 * small notices never pay for it, and a pipeline that is empty only for
 * a moment between batches is not trimmed while it refills. */
#define S_TRIM_PEAK_BYTES (4LL * 1024 * 1024)
#define S_TRIM_IDLE_MS 1000

typedef enum { S_OPEN = 0, S_SEALING, S_SEALED, S_ANSWERED, S_FOLLOWER } s_state_t;

typedef struct s_sub {
    pf_broker_send_t it; /* owned: frames and decoded message */
    s_state_t state;
    char *sender_name;
    unsigned char hash[32];
    struct s_sub *leader;  /* S_FOLLOWER: the first SEND with this request id */
    const pf_key_t **keys; /* borrowed from the cache while sealing */
    int *versions;
    long long cost;
    bool large;           /* cost > S_LARGE_COST: counted in a->large */
    pf_seal_item_t *item; /* in the batch's seal items */
    /* the answer sent */
    char *ack; /* ACK JSON, or NULL for a NACK */
    const char *nack_code;
    char nack_reason[256];
} s_sub_t;

typedef struct s_batch {
    s_sub_t **subs;
    size_t n, cap;
    long long bytes;
    pf_seal_batch_t seal;
    pf_submit_t *store; /* what goes to the committer */
    s_sub_t **store_subs;
    size_t nstore;
    struct s_batch *next; /* waiting for a committer */
    /* where a batch's time goes (debug log): launched, looked up,
     * sealed, sent to the database (monotonic microseconds) */
    int64_t t_launch, t_lookup, t_sealed, t_sent;
} s_batch_t;

typedef struct {
    char *mailbox;
    int version;
    pf_key_t *key;
} s_key_t;

/* Which version is a mailbox's current one, and when the database said
 * so, so that a batch of known recipients needs no query.  An entry is
 * forgotten when the mailbox's status or keys change (NOTIFY on
 * postfach_mailbox, sql/0011, read before every batch's lookup: a rotated
 * key or a closed mailbox applies within milliseconds of its COMMIT; the
 * old key still opens what was sealed to it) and after a reconnect, and
 * is asked for again after S_CURRENT_TRUST_MS in any case. */
typedef struct {
    const char *mailbox; /* that of keys[slot] */
    size_t slot;
    int64_t checked_ms;
} s_current_t;

/* A sender's recipient allowlist, trusted for sender_cache_ms like the
 * sender's state (a change applies within that delay). */
typedef struct {
    int64_t sender_id;
    int64_t checked_ms;
    char **patterns;
    size_t n; /* 0: unrestricted */
} s_allow_t;
#define S_ALLOW_MAX 1024

struct pf_accept {
    pf_seal_pool_t *pool;
    pf_store_committer_t *com[S_COMMITTERS];
    s_batch_t *at_com[S_COMMITTERS];
    bool com_ok[S_COMMITTERS];
    int64_t com_retry_ms[S_COMMITTERS];
    s_batch_t *forming;
    s_batch_t *wait_head, *wait_tail; /* sealed, no committer free yet */
    int sealing;
    int workers; /* crypto worker threads */
    size_t inflight;
    long long inflight_bytes;
    size_t large;              /* SENDs in flight above S_LARGE_COST: at most one */
    long long bytes_peak;      /* most inflight_bytes since the last trim */
    int64_t idle_since_ms;     /* when inflight last fell to 0 */
    s_key_t keys[S_KEY_SLOTS]; /* open addressing, mailbox id hashed */
    size_t nkeys;
    s_current_t current[S_KEY_SLOTS]; /* open addressing, mailbox id hashed */
    s_allow_t *allow;
    size_t nallow;
};

/* ---- answers ----------------------------------------------------------- */

static const void *s_rid(const s_sub_t *w, size_t *len_r)
{
    *len_r = zmq_msg_size(&w->it.frames[0]);
    return zmq_msg_data(&w->it.frames[0]);
}

static void s_ack(pf_broker_t *b, s_sub_t *w, const char *ack_json)
{
    size_t rl;
    const void *rid = s_rid(w, &rl);
    pf_wire_out_t out = {0};
    pf_wire_encode_ack_json(ack_json, &out);
    pf_broker_reply(b, rid, rl, &out);
    pf_wire_out_clear(&out);
    free(w->ack);
    w->ack = xstrdup(ack_json);
    w->state = S_ANSWERED;
    /* debug, not info: one line per notice is too much at thousands per
     * second; the batch line and the stored rows are the record */
    char esc[300];
    pf_debug("event=ack sender=%s request_id=\"%s\"", w->sender_name ? w->sender_name : "?",
             pf_log_escape(w->it.msg.send.request_id, esc, sizeof(esc)));
    pf_crashpoint("after_ack");
}

static void s_nack(pf_broker_t *b, s_sub_t *w, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_nack(pf_broker_t *b, s_sub_t *w, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->nack_reason, sizeof(w->nack_reason), fmt, ap);
    va_end(ap);
    w->nack_code = code;
    size_t rl;
    const void *rid = s_rid(w, &rl);
    pf_broker_nack(b, rid, rl, w->it.msg.send.request_id, code, w->nack_reason);
    w->state = S_ANSWERED;
    char esc[300], resc[300];
    pf_info("event=nack sender=%s request_id=\"%s\" code=%s reason=\"%s\"",
            w->sender_name ? w->sender_name : "?",
            pf_log_escape(w->it.msg.send.request_id, esc, sizeof(esc)), code,
            pf_log_escape(w->nack_reason, resc, sizeof(resc)));
}

/* Answers an already stored submission: the same ACK again, or conflict. */
static void s_answer_existing(pf_broker_t *b, s_sub_t *w, const char *ack, bool same)
{
    if (same)
        s_ack(b, w, ack);
    else
        s_nack(b, w, PF_WIRE_E_CONFLICT,
               "request id \"%s\" was used before for a different submission",
               w->it.msg.send.request_id);
}

/* ---- payload hash -------------------------------------------------------- */

static void s_hash_field(pf_buf_t *c, const void *p, size_t len)
{
    unsigned char l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    pf_buf_append(c, l, 8);
    pf_buf_append(c, p, len);
}

static void s_hash_str(pf_buf_t *c, const char *s)
{
    s_hash_field(c, s ? s : "", s ? strlen(s) : 0);
}

void pf_broker_payload_hash(const pf_wire_send_t *s, unsigned char out[32])
{
    pf_buf_t c;
    pf_buf_init(&c);
    s_hash_str(&c, "postfach submission v1");
    s_hash_str(&c, s->request_id);
    char num[32];
    snprintf(num, sizeof(num), "%zu", s->recipient_count);
    s_hash_str(&c, num);
    for (size_t i = 0; i < s->recipient_count; i++)
        s_hash_str(&c, s->recipients[i]);
    s_hash_str(&c, s->title);
    s_hash_str(&c, s->subject);
    s_hash_str(&c, s->body);
    s_hash_str(&c, s->reference);
    snprintf(num, sizeof(num), "%d %d %zu", s->read_receipt ? 1 : 0, s->level, s->attachment_count);
    s_hash_str(&c, num);
    for (size_t i = 0; i < s->attachment_count; i++) {
        const pf_wire_attachment_t *a = &s->attachments[i];
        unsigned char d[32];
        pf_sha256(a->data ? (const void *)a->data : "", a->size, d);
        s_hash_str(&c, a->name);
        s_hash_str(&c, a->media_type ? a->media_type : "application/octet-stream");
        s_hash_field(&c, d, sizeof(d));
    }
    pf_sha256(c.data, c.len, out);
    pf_buf_free(&c, 1); /* it holds the subject and body */
}

/* ---- recipient key cache --------------------------------------------------- */

static uint32_t s_hash(const char *mailbox)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)mailbox; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static size_t s_key_slot(const char *mailbox, int version)
{
    return ((s_hash(mailbox) ^ (uint32_t)version) * 16777619u) % S_KEY_SLOTS;
}

static void s_keys_flush(pf_accept_t *a)
{
    for (size_t i = 0; i < S_KEY_SLOTS; i++) {
        free(a->keys[i].mailbox);
        pf_key_destroy(&a->keys[i].key);
        a->keys[i].mailbox = NULL;
    }
    memset(a->current, 0, sizeof(a->current));
    a->nkeys = 0;
}

/* The current-version entry of mailbox (found or empty). */
static s_current_t *s_current(pf_accept_t *a, const char *mailbox)
{
    size_t i = s_hash(mailbox) % S_KEY_SLOTS;
    while (a->current[i].mailbox != NULL && strcmp(a->current[i].mailbox, mailbox) != 0)
        i = (i + 1) % S_KEY_SLOTS;
    return &a->current[i];
}

/* The parsed key of (mailbox, version), parsing jwk on a miss (the point
 * is validated once, here, not on every seal).  NULL when the stored JWK
 * does not parse: data corruption, reported as such. */
static const pf_key_t *s_cached_key(pf_accept_t *a, const char *mailbox, int version,
                                    const char *jwk, size_t *slot_r)
{
    size_t i = s_key_slot(mailbox, version);
    while (a->keys[i].mailbox != NULL) {
        if (a->keys[i].version == version && strcmp(a->keys[i].mailbox, mailbox) == 0) {
            *slot_r = i;
            return a->keys[i].key;
        }
        i = (i + 1) % S_KEY_SLOTS;
    }
    if (a->nkeys >= S_KEY_SLOTS * 3 / 4)
        return NULL; /* cannot happen: flushed at S_KEY_MAX between batches */
    pf_key_t *key;
    const char *err;
    if (pf_key_from_jwk(jwk, strlen(jwk), &key, &err) != 0) {
        char esc[200];
        pf_error("event=bad_recipient_key mailbox=\"%s\" version=%d error=\"%s\"",
                 pf_log_escape(mailbox, esc, sizeof(esc)), version, pf_broker_esc(err));
        return NULL;
    }
    a->keys[i] = (s_key_t){xstrdup(mailbox), version, key};
    a->nkeys++;
    *slot_r = i;
    return key;
}

/* ---- batches ----------------------------------------------------------------- */

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static s_batch_t *s_batch_new(void)
{
    return xcalloc(1, sizeof(s_batch_t));
}

static void s_batch_add(s_batch_t *bt, s_sub_t *w)
{
    if (bt->n == bt->cap) {
        bt->cap = bt->cap ? bt->cap * 2 : 64;
        bt->subs = xrealloc(bt->subs, bt->cap * sizeof(*bt->subs));
    }
    bt->subs[bt->n++] = w;
    bt->bytes += w->cost;
}

static void s_sub_free(s_sub_t *w)
{
    pf_wire_msg_clear(&w->it.msg);
    for (size_t i = 0; i < w->it.nframes; i++)
        zmq_msg_close(&w->it.frames[i]);
    free(w->it.frames);
    free(w->keys);
    free(w->versions);
    free(w->ack);
    free(w->sender_name);
    free(w);
}

/* Answers the followers (repeats within the batch share the first one's
 * answer) and frees the batch. */
static void s_batch_done(pf_broker_t *b, s_batch_t *bt, bool quiet)
{
    pf_accept_t *a = b->acc;
    for (size_t i = 0; i < bt->n && !quiet; i++) {
        s_sub_t *w = bt->subs[i];
        if (w->state != S_FOLLOWER)
            continue;
        const s_sub_t *l = w->leader;
        if (l->ack != NULL)
            s_answer_existing(b, w, l->ack, memcmp(l->hash, w->hash, 32) == 0);
        else if (memcmp(l->hash, w->hash, 32) != 0 && l->nack_code == NULL)
            s_nack(b, w, PF_WIRE_E_CONFLICT, "request id used twice with different content");
        else
            s_nack(b, w, l->nack_code ? l->nack_code : PF_WIRE_E_TEMPORARY, "%s",
                   l->nack_reason[0] ? l->nack_reason : "retry later");
    }
    for (size_t i = 0; i < bt->seal.count; i++)
        pf_seal_item_clear(&bt->seal.items[i]);
    for (size_t i = 0; i < bt->n; i++) {
        a->inflight--;
        a->inflight_bytes -= bt->subs[i]->cost;
        a->large -= bt->subs[i]->large;
        s_sub_free(bt->subs[i]);
    }
    if (a->inflight == 0)
        a->idle_since_ms = pf_broker_now_ms();
    free(bt->seal.items);
    free(bt->store);
    free(bt->store_subs);
    free(bt->subs);
    free(bt);
}

/* ---- forming ------------------------------------------------------------------- */

/* Checks one SEND as it arrives; it stays S_OPEN when it goes on. */
static void s_prepare(pf_broker_t *b, s_batch_t *bt, s_sub_t *w)
{
    pf_accept_t *a = b->acc;
    const pf_wire_send_t *s = &w->it.msg.send;
    const pf_sender_info_t *info;
    int rc = pf_broker_sender(b, w->it.sender_id, &info);
    if (rc < 0) {
        s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        return;
    }
    if (rc == 0 || !info->active) {
        s_nack(b, w, PF_WIRE_E_FORBIDDEN, "sender is not active");
        return;
    }
    w->sender_name = xstrdup(info->name);
    if (!b->db_ok) {
        s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        return;
    }
    /* each copy carries all attachments (base64 in the JSON, then
     * encrypted): bound what one SEND may make the broker hold */
    long long bytes = (long long)(strlen(s->body) + strlen(s->subject) + 4096);
    for (size_t k = 0; k < s->attachment_count; k++)
        bytes += (long long)(s->attachments[k].size / 3 * 4 + 4);
    bytes *= (long long)s->recipient_count;
    if (bytes > b->cfg.batch_max_bytes) {
        s_nack(b, w, PF_WIRE_E_TOO_LARGE,
               "submission too large for %zu recipients; send it in smaller groups",
               s->recipient_count);
        return;
    }
    /* what the pipeline holds for it: the frames, and the sealed copies */
    for (size_t i = 0; i < w->it.nframes; i++)
        w->cost += (long long)zmq_msg_size(&w->it.frames[i]);
    w->cost += bytes;
    bool large = w->cost > S_LARGE_COST;
    bool room = large ? a->large == 0 : a->inflight_bytes + w->cost <= S_INFLIGHT_BYTES;
    if (a->inflight > S_INFLIGHT_MAX || !room) {
        w->cost = 0;
        s_nack(b, w, PF_WIRE_E_BUSY, "the broker is busy, retry later");
        return;
    }
    w->large = large;
    pf_broker_payload_hash(s, w->hash);
    for (size_t j = 0; j < bt->n; j++) {
        s_sub_t *o = bt->subs[j];
        if (o->state == S_OPEN && o->it.sender_id == w->it.sender_id &&
            strcmp(o->it.msg.send.request_id, s->request_id) == 0) {
            w->state = S_FOLLOWER;
            w->leader = o;
            return;
        }
    }
}

/* ---- sealing --------------------------------------------------------------------- */

/* The current keys of every recipient of a batch, fetched in one query:
 * ids sorted and unique, so each SEND finds its recipients by bsearch. */
typedef struct {
    const char **ids;
    int *versions;
    char **jwks;
    const pf_key_t **keys; /* parsed, from the cache */
    size_t n;
} s_keytab_t;

static int s_cmp_id(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static size_t s_keytab_find(const s_keytab_t *t, const char *id)
{
    const char **p = bsearch(&id, t->ids, t->n, sizeof(*t->ids), s_cmp_id);
    return p ? (size_t)(p - t->ids) : (size_t)-1;
}

static void s_keytab_free(s_keytab_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->jwks[i]);
    free(t->ids);
    free(t->versions);
    free(t->jwks);
    free(t->keys);
    memset(t, 0, sizeof(*t));
}

static void s_allow_free(s_allow_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->patterns[i]);
    free(e->patterns);
    e->patterns = NULL;
    e->n = 0;
}

static s_allow_t *s_allow_find(pf_accept_t *a, int64_t sender_id)
{
    for (size_t i = 0; i < a->nallow; i++)
        if (a->allow[i].sender_id == sender_id)
            return &a->allow[i];
    return NULL;
}

static bool s_allow_permits(const s_allow_t *e, const char *mailbox)
{
    if (e->n == 0)
        return true;
    for (size_t i = 0; i < e->n; i++) {
        const char *pat = e->patterns[i];
        size_t len = strlen(pat);
        if (len > 0 && pat[len - 1] == '*' ? strncmp(mailbox, pat, len - 1) == 0
                                           : strcmp(mailbox, pat) == 0)
            return true;
    }
    return false;
}

/* Refreshes the allowlists of the batch's senders that are older than
 * sender_cache_ms (one query for all of them).  Returns 0 or -1. */
static int s_allow_refresh(pf_broker_t *b, s_batch_t *bt)
{
    pf_accept_t *a = b->acc;
    int64_t now = pf_broker_now_ms();
    int64_t *sids = xcalloc(bt->n, sizeof(*sids));
    size_t k = 0;
    for (size_t i = 0; i < bt->n; i++) {
        if (bt->subs[i]->state != S_OPEN)
            continue;
        int64_t sid = bt->subs[i]->it.sender_id;
        const s_allow_t *e = s_allow_find(a, sid);
        bool seen = e != NULL && now - e->checked_ms < b->cfg.sender_cache_ms;
        for (size_t j = 0; j < k && !seen; j++)
            seen = sids[j] == sid;
        if (!seen)
            sids[k++] = sid;
    }
    int rc = 0;
    if (k > 0) {
        pf_store_allow_t rows = {0};
        const char *err;
        rc = pf_store_sender_allowlists(b->st, sids, k, &rows, &err);
        if (rc != 0) {
            pf_broker_db_failed(b, "cannot look up recipient allowlists", err);
        } else {
            if (a->nallow + k > S_ALLOW_MAX) {
                for (size_t i = 0; i < a->nallow; i++)
                    s_allow_free(&a->allow[i]);
                a->nallow = 0;
            }
            for (size_t j = 0; j < k; j++) {
                s_allow_t *e = s_allow_find(a, sids[j]);
                if (e == NULL) {
                    a->allow = xrealloc(a->allow, (a->nallow + 1) * sizeof(*a->allow));
                    e = &a->allow[a->nallow++];
                    memset(e, 0, sizeof(*e));
                    e->sender_id = sids[j];
                }
                s_allow_free(e);
                e->checked_ms = now;
                for (size_t r = 0; r < rows.n; r++) {
                    if (rows.sender_ids[r] != sids[j])
                        continue;
                    e->patterns = xrealloc(e->patterns, (e->n + 1) * sizeof(*e->patterns));
                    e->patterns[e->n++] = xstrdup(rows.patterns[r]);
                }
            }
            pf_store_allow_clear(&rows);
        }
    }
    free(sids);
    return rc;
}

/* Refuses the SENDs with a recipient outside their sender's allowlist
 * (senders without one may deliver to every mailbox). */
static int s_check_allowed(pf_broker_t *b, s_batch_t *bt)
{
    if (s_allow_refresh(b, bt) != 0) {
        for (size_t i = 0; i < bt->n; i++)
            if (bt->subs[i]->state == S_OPEN)
                s_nack(b, bt->subs[i], PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        return -1;
    }
    for (size_t i = 0; i < bt->n; i++) {
        s_sub_t *w = bt->subs[i];
        if (w->state != S_OPEN)
            continue;
        const s_allow_t *e = s_allow_find(b->acc, w->it.sender_id);
        const pf_wire_send_t *s = &w->it.msg.send;
        for (size_t r = 0; e != NULL && r < s->recipient_count; r++) {
            if (!s_allow_permits(e, s->recipients[r])) {
                s_nack(b, w, PF_WIRE_E_FORBIDDEN,
                       "sender \"%s\" may not deliver to mailbox \"%s\" (recipient allowlist)",
                       w->sender_name, s->recipients[r]);
                break;
            }
        }
    }
    return 0;
}

/* Finds every recipient's key (one query for the batch; the current
 * version every time, so a key rotation applies at once; only parsing is
 * cached).  SENDs without keys for all recipients are answered. */
static void s_find_keys(pf_broker_t *b, s_batch_t *bt)
{
    pf_accept_t *a = b->acc;
    s_keytab_t tab = {0};
    size_t total = 0;
    for (size_t i = 0; i < bt->n; i++)
        if (bt->subs[i]->state == S_OPEN)
            total += bt->subs[i]->it.msg.send.recipient_count;
    if (total == 0)
        return;
    /* mailbox changes committed so far, also those libpq collected
     * during other queries */
    pf_broker_notifications(b, true);
    tab.ids = xcalloc(total, sizeof(*tab.ids));
    for (size_t i = 0; i < bt->n; i++) {
        const pf_wire_send_t *s = &bt->subs[i]->it.msg.send;
        for (size_t r = 0; bt->subs[i]->state == S_OPEN && r < s->recipient_count; r++)
            tab.ids[tab.n++] = s->recipients[r];
    }
    qsort(tab.ids, tab.n, sizeof(*tab.ids), s_cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < tab.n; i++)
        if (u == 0 || strcmp(tab.ids[u - 1], tab.ids[i]) != 0)
            tab.ids[u++] = tab.ids[i];
    tab.n = u;
    tab.versions = xcalloc(tab.n, sizeof(*tab.versions));
    tab.jwks = xcalloc(tab.n, sizeof(*tab.jwks));
    tab.keys = xcalloc(tab.n, sizeof(*tab.keys));
    if (a->nkeys + tab.n > S_KEY_MAX && a->sealing == 0)
        s_keys_flush(a);
    /* recipients whose current key is known and fresh need no query */
    int64_t now = pf_broker_now_ms();
    const char **miss = xcalloc(tab.n, sizeof(*miss));
    size_t nmiss = 0;
    for (size_t i = 0; i < tab.n; i++) {
        const s_current_t *c = s_current(a, tab.ids[i]);
        if (c->mailbox != NULL && now - c->checked_ms < S_CURRENT_TRUST_MS) {
            tab.versions[i] = a->keys[c->slot].version;
            tab.keys[i] = a->keys[c->slot].key;
        } else {
            miss[nmiss++] = tab.ids[i];
        }
    }
    int *mversions = xcalloc(nmiss ? nmiss : 1, sizeof(*mversions));
    char **mjwks = xcalloc(nmiss ? nmiss : 1, sizeof(*mjwks));
    const char *err;
    if (nmiss > 0 && pf_store_recipient_keys(b->st, miss, nmiss, mversions, mjwks, &err) != 0) {
        pf_broker_db_failed(b, "cannot look up recipient keys", err);
        for (size_t i = 0; i < bt->n; i++)
            if (bt->subs[i]->state == S_OPEN)
                s_nack(b, bt->subs[i], PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        free(miss);
        free(mversions);
        free(mjwks);
        s_keytab_free(&tab);
        return;
    }
    /* miss is in the order of tab.ids (both sorted) */
    for (size_t i = 0, m = 0; i < tab.n && m < nmiss; i++) {
        if (tab.ids[i] != miss[m])
            continue;
        tab.versions[i] = mversions[m];
        tab.jwks[i] = mjwks[m++];
        if (tab.jwks[i] == NULL)
            continue; /* no such open mailbox */
        size_t slot;
        tab.keys[i] = s_cached_key(a, tab.ids[i], tab.versions[i], tab.jwks[i], &slot);
        if (tab.keys[i] != NULL && a->nkeys < S_KEY_SLOTS * 3 / 4) {
            s_current_t *c = s_current(a, tab.ids[i]);
            *c = (s_current_t){a->keys[slot].mailbox, slot, now};
        }
    }
    free(miss);
    free(mversions);
    free(mjwks);
    for (size_t i = 0; i < bt->n; i++) {
        s_sub_t *w = bt->subs[i];
        if (w->state != S_OPEN)
            continue;
        const pf_wire_send_t *s = &w->it.msg.send;
        w->keys = xcalloc(s->recipient_count, sizeof(*w->keys));
        w->versions = xcalloc(s->recipient_count, sizeof(*w->versions));
        for (size_t r = 0; r < s->recipient_count; r++) {
            size_t k = s_keytab_find(&tab, s->recipients[r]);
            if (k == (size_t)-1 || (tab.keys[k] == NULL && tab.jwks[k] == NULL)) {
                s_nack(b, w, PF_WIRE_E_UNKNOWN_RECIPIENT,
                       "mailbox \"%s\" does not exist or is closed", s->recipients[r]);
                break;
            }
            w->versions[r] = tab.versions[k];
            w->keys[r] = tab.keys[k];
            if (w->keys[r] == NULL) {
                s_nack(b, w, PF_WIRE_E_TEMPORARY, "the key of mailbox \"%s\" cannot be used",
                       s->recipients[r]);
                break;
            }
        }
    }
    s_keytab_free(&tab);
}

static void s_sealed(pf_broker_t *b, s_batch_t *bt);

/* Sends the forming batch on: lookups, then to the crypto workers. */
static void s_launch(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    s_batch_t *bt = a->forming;
    a->forming = NULL;
    bt->t_launch = s_now_us();
    /* stored request ids are not looked up first: the insert's ON
     * CONFLICT finds them in the same round trip as the COMMIT (a repeat
     * is sealed for nothing, which is rare and cheaper than a query per
     * batch on the path of every notice) */
    if (s_check_allowed(b, bt) == 0)
        s_find_keys(b, bt);
    bt->t_lookup = s_now_us();
    size_t k = 0;
    for (size_t i = 0; i < bt->n; i++)
        k += bt->subs[i]->state == S_OPEN;
    bt->seal.items = xcalloc(k ? k : 1, sizeof(*bt->seal.items));
    bt->seal.owner = bt;
    for (size_t i = 0; i < bt->n; i++) {
        s_sub_t *w = bt->subs[i];
        if (w->state != S_OPEN)
            continue;
        pf_seal_item_t *it = &bt->seal.items[bt->seal.count++];
        *it = (pf_seal_item_t){.send = &w->it.msg.send,
                               .sender_name = w->sender_name,
                               .sender_id = w->it.sender_id,
                               .hash = w->hash,
                               .keys = w->keys,
                               .versions = w->versions};
        w->item = it;
        w->state = S_SEALING;
    }
    if (bt->seal.count <= S_INLINE_MAX && a->sealing == 0) {
        /* one or two SENDs on a quiet broker: handing them to a worker
         * and back costs two thread wake-ups, more than sealing here */
        for (size_t i = 0; i < bt->seal.count; i++)
            pf_seal_item(&bt->seal.items[i], b->receipt_key, b->issuer);
        s_sealed(b, bt);
        return;
    }
    a->sealing++;
    pf_seal_pool_submit(a->pool, &bt->seal);
}

/* ---- commit -------------------------------------------------------------------------- */

/* A COMMIT whose result never arrived: look each request id up. */
static void s_settle_unknown(pf_broker_t *b, int ci, s_batch_t *bt)
{
    pf_accept_t *a = b->acc;
    const char *err;
    bool reconnected = pf_store_committer_reconnect(a->com[ci], &err) == 0;
    if (!reconnected) {
        a->com_ok[ci] = false;
        a->com_retry_ms[ci] = pf_broker_now_ms() + 500;
        pf_warn("event=db_reconnect_failed connection=commit error=\"%s\"", pf_broker_esc(err));
    }
    pf_store_t *st = pf_store_committer_store(a->com[ci]);
    size_t found = 0, not_found = 0, failed = 0;
    for (size_t j = 0; j < bt->nstore; j++) {
        s_sub_t *w = bt->store_subs[j];
        unsigned char hash[32];
        char *ack = NULL;
        int rc = reconnected ? pf_store_submission_get(st, w->it.sender_id,
                                                       w->it.msg.send.request_id, hash, &ack, &err)
                             : -1;
        if (rc == 1)
            s_answer_existing(b, w, ack, memcmp(hash, w->hash, 32) == 0);
        else
            s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        found += rc == 1;
        not_found += rc == 0;
        failed += rc < 0;
        free(ack);
        /* repeats whose stored ACK was read after the COMMIT, before the
         * connection broke */
        free(bt->store[j].existing_ack);
        bt->store[j].existing_ack = NULL;
    }
    /* found: answered from the stored ACK (or conflict); not found or not
     * looked up: NACK temporary */
    pf_warn("event=commit_unknown sends=%zu found=%zu not_found=%zu lookup_failed=%zu", bt->nstore,
            found, not_found, failed);
}

/* The delivered receipts of a stored submission, from memory (sql/0010):
 * after its ACK, so a procedure sees the notice accepted before it is
 * reported delivered.  A receipt that does not get out (the connection
 * went away since the batch was sent) is sent by the relay when it is due
 * again, or at the procedure's next HELLO. */
static void s_send_receipts(pf_broker_t *b, const pf_submit_t *sub)
{
    for (size_t c = 0; c < sub->copy_count; c++) {
        const pf_submit_copy_t *cp = &sub->copies[c];
        if (pf_broker_send_receipt(b, sub->sender_id, cp->receipt_jti, cp->receipt_token) !=
            PF_RECEIPT_SENT)
            return; /* no route or a full queue: for the rest too */
        pf_crashpoint("direct_after_send");
    }
}

static void s_answer_stored(pf_broker_t *b, s_sub_t *w, const pf_submit_t *sub)
{
    if (sub->outcome == PF_SUBMIT_STORED) {
        s_ack(b, w, sub->ack_json);
        if (sub->receipt_hold_seconds > 0)
            s_send_receipts(b, sub);
    } else {
        s_answer_existing(b, w, sub->existing_ack, sub->existing_same);
    }
}

/* The transaction failed without losing the connection (a mailbox closed
 * meanwhile, a deadlock with another broker): store the SENDs one by
 * one, so one failure does not refuse its neighbours. */
static void s_store_one_by_one(pf_broker_t *b, int ci, s_batch_t *bt)
{
    pf_store_t *st = pf_store_committer_store(b->acc->com[ci]);
    for (size_t j = 0; j < bt->nstore; j++) {
        s_sub_t *w = bt->store_subs[j];
        const char *err;
        if (pf_store_submit_batch(st, &bt->store[j], 1, &err) == 0) {
            s_answer_stored(b, w, &bt->store[j]);
        } else {
            pf_error("event=store_failed error=\"%s\"", pf_broker_esc(err));
            s_nack(b, w, PF_WIRE_E_TEMPORARY, "cannot store the notice, retry later");
        }
        free(bt->store[j].existing_ack);
        bt->store[j].existing_ack = NULL;
    }
}

/* The result of a committer's transaction has arrived (rc 1) or it failed
 * (rc -1): answer every SEND of its batch. */
static void s_committed(pf_broker_t *b, int ci, int rc, const char *err)
{
    pf_accept_t *a = b->acc;
    s_batch_t *bt = a->at_com[ci];
    a->at_com[ci] = NULL;
    if (rc > 0) {
        pf_crashpoint("after_commit_result");
        for (size_t j = 0; j < bt->nstore; j++) {
            s_answer_stored(b, bt->store_subs[j], &bt->store[j]);
            free(bt->store[j].existing_ack);
            bt->store[j].existing_ack = NULL;
        }
    } else if (pf_store_broken(pf_store_committer_store(a->com[ci]))) {
        pf_error("event=db_lost what=\"cannot store submissions\" error=\"%s\"",
                 pf_broker_esc(err));
        s_settle_unknown(b, ci, bt);
    } else {
        pf_error("event=batch_failed error=\"%s\"", pf_broker_esc(err));
        s_store_one_by_one(b, ci, bt);
    }
    int64_t now = s_now_us();
    pf_debug("event=batch_done sends=%zu stored=%zu lookup_us=%lld seal_us=%lld wait_us=%lld "
             "commit_us=%lld",
             bt->n, bt->nstore, (long long)(bt->t_lookup - bt->t_launch),
             (long long)(bt->t_sealed - bt->t_lookup), (long long)(bt->t_sent - bt->t_sealed),
             (long long)(now - bt->t_sent));
    s_batch_done(b, bt, false);
}

/* Hands a sealed batch to committer ci. */
static void s_commit(pf_broker_t *b, int ci, s_batch_t *bt)
{
    pf_accept_t *a = b->acc;
    bt->store = xcalloc(bt->seal.count ? bt->seal.count : 1, sizeof(*bt->store));
    bt->store_subs = xcalloc(bt->seal.count ? bt->seal.count : 1, sizeof(*bt->store_subs));
    bt->nstore = 0;
    for (size_t i = 0; i < bt->n; i++) {
        s_sub_t *w = bt->subs[i];
        if (w->state != S_SEALED)
            continue;
        bt->store[bt->nstore] = w->item->sub;
        /* a sender without a connection gets its receipts from the relay
         * when it says HELLO */
        if (b->cfg.receipt_direct && pf_broker_has_route(b, w->it.sender_id))
            bt->store[bt->nstore].receipt_hold_seconds = b->cfg.receipt_retry_seconds;
        bt->store_subs[bt->nstore++] = w;
    }
    if (bt->nstore == 0) {
        s_batch_done(b, bt, false);
        return;
    }
    const char *err;
    if (!a->com_ok[ci]) {
        if (pf_store_committer_reconnect(a->com[ci], &err) != 0) {
            a->com_retry_ms[ci] = pf_broker_now_ms() + 500;
            for (size_t j = 0; j < bt->nstore; j++)
                s_nack(b, bt->store_subs[j], PF_WIRE_E_TEMPORARY,
                       "database unavailable, retry later");
            s_batch_done(b, bt, false);
            return;
        }
        a->com_ok[ci] = true;
    }
    a->at_com[ci] = bt;
    bt->t_sent = s_now_us();
    if (pf_store_committer_send(a->com[ci], bt->store, bt->nstore, &err) != 0)
        s_committed(b, ci, -1, err);
}

/* A committer that can take a batch now, or -1. */
static int s_free_committer(pf_accept_t *a)
{
    int64_t now = pf_broker_now_ms();
    for (int i = 0; i < S_COMMITTERS; i++)
        if (a->at_com[i] == NULL && (a->com_ok[i] || now >= a->com_retry_ms[i]))
            return i;
    return -1;
}

/* Collects sealed batches, feeds free committers, launches the forming
 * batch when the pipeline has room for it. */
static void s_sealed(pf_broker_t *b, s_batch_t *bt)
{
    pf_accept_t *a = b->acc;
    bt->t_sealed = s_now_us();
    for (size_t i = 0; i < bt->n; i++) {
        s_sub_t *w = bt->subs[i];
        if (w->state != S_SEALING)
            continue;
        if (w->item->ok) {
            w->state = S_SEALED;
        } else {
            pf_error("event=seal_failed error=\"%s\"", pf_broker_esc(w->item->error));
            s_nack(b, w, PF_WIRE_E_TEMPORARY, "cannot encrypt the notice, retry later");
        }
    }
    if (a->wait_tail)
        a->wait_tail->next = bt;
    else
        a->wait_head = bt;
    a->wait_tail = bt;
}

/* Batches sealing, sealed and waiting, or committing. */
static int s_batches_under_way(const pf_accept_t *a)
{
    int n = a->sealing;
    for (const s_batch_t *w = a->wait_head; w != NULL; w = w->next)
        n++;
    for (int i = 0; i < S_COMMITTERS; i++)
        n += a->at_com[i] != NULL;
    return n;
}

static void s_pump(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    pf_seal_batch_t *sb;
    while ((sb = pf_seal_pool_done(a->pool)) != NULL) {
        a->sealing--;
        s_sealed(b, sb->owner);
    }
    for (;;) {
        int ci;
        while (a->wait_head != NULL && (ci = s_free_committer(a)) >= 0) {
            s_batch_t *bt = a->wait_head;
            a->wait_head = bt->next;
            if (a->wait_head == NULL)
                a->wait_tail = NULL;
            bt->next = NULL;
            s_commit(b, ci, bt);
        }
        /* the forming batch moves on while a worker is free and no sealed
         * batch waits for a committer, and either nothing is under way or
         * the batch has S_BATCH_PAIR SENDs: at low load each SEND starts at
         * once (latency); at moderate load the next batch collects what
         * arrives during one seal + commit instead of going alone to the
         * second committer (measured at 1,000 notices/s: 1.1 SENDs per
         * transaction, 260 us of PostgreSQL each, so half the CPU per
         * notice went to per-transaction costs); when the committers are
         * the bottleneck, batches grow to what arrives during one commit
         * (throughput) */
        s_batch_t *f = a->forming;
        if (f == NULL || f->n == 0 ||
            !((a->sealing < a->workers && a->wait_head == NULL &&
               (s_batches_under_way(a) == 0 || f->n >= S_BATCH_PAIR)) ||
              f->n >= S_BATCH_MAX || f->bytes >= S_BATCH_BYTES))
            return;
        s_launch(b);
        /* a small batch was sealed right here (S_INLINE_MAX) and waits for
         * a committer: hand it over now, since nothing else would wake the
         * loop for it (no worker's signal, no commit under way) until the
         * next message or timer, up to a second later */
    }
}

/* ---- the interface to broker.c ---------------------------------------------------------- */

static int s_accept_new(pf_broker_t *b)
{
    pf_accept_t *a = xcalloc(1, sizeof(*a));
    const char *err;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    a->workers = cpus > 0 ? (int)cpus : 2;
    if (pf_seal_pool_new(a->workers, b->receipt_key, b->issuer, &a->pool, &err) != 0) {
        pf_error("event=seal_pool_failed error=\"%s\"", pf_broker_esc(err));
        free(a);
        return -1;
    }
    for (int i = 0; i < S_COMMITTERS; i++) {
        if (pf_store_committer_new(b->cfg.db, &a->com[i], &err) != 0) {
            pf_warn("event=db_connect_failed connection=commit error=\"%s\"", pf_broker_esc(err));
            for (int j = 0; j < i; j++)
                pf_store_committer_destroy(&a->com[j]);
            pf_seal_pool_destroy(&a->pool);
            free(a);
            return -1;
        }
        a->com_ok[i] = true;
    }
    b->acc = a;
    return 0;
}

void pf_broker_accept_batch(pf_broker_t *b, pf_broker_send_t *items, size_t n)
{
    if (b->acc == NULL && s_accept_new(b) != 0) {
        for (size_t i = 0; i < n; i++)
            pf_broker_nack(b, zmq_msg_data(&items[i].frames[0]), zmq_msg_size(&items[i].frames[0]),
                           items[i].msg.send.request_id, PF_WIRE_E_TEMPORARY,
                           "database unavailable, retry later");
        return;
    }
    pf_accept_t *a = b->acc;
    for (size_t i = 0; i < n; i++) {
        /* take the frames and the decoded message over: the caller's
         * clean-up then finds nothing left to free */
        s_sub_t *w = xcalloc(1, sizeof(*w));
        w->it = items[i];
        items[i].frames = NULL;
        items[i].nframes = 0;
        memset(&items[i].msg, 0, sizeof(items[i].msg));
        if (a->forming == NULL)
            a->forming = s_batch_new();
        s_prepare(b, a->forming, w);
        if (w->state == S_ANSWERED) {
            /* refused at once ("busy" above all): no later SEND can follow
             * it, so its frames need not wait for the batch */
            s_sub_free(w);
            continue;
        }
        s_batch_add(a->forming, w);
        a->inflight++;
        a->inflight_bytes += w->cost;
        a->large += w->large;
        if (a->inflight_bytes > a->bytes_peak)
            a->bytes_peak = a->inflight_bytes;
        if (a->forming->n >= S_BATCH_MAX || a->forming->bytes >= S_BATCH_BYTES)
            s_pump(b);
    }
    s_pump(b);
}

int pf_broker_accept_pollitems(pf_broker_t *b, zmq_pollitem_t *items, int max)
{
    pf_accept_t *a = b->acc;
    int n = 0;
    if (a == NULL)
        return 0;
    if (n < max)
        items[n++] =
            (zmq_pollitem_t){.socket = NULL, .fd = pf_seal_pool_fd(a->pool), .events = ZMQ_POLLIN};
    for (int i = 0; i < S_COMMITTERS && n < max; i++)
        if (a->at_com[i] != NULL)
            items[n++] = (zmq_pollitem_t){
                .socket = NULL, .fd = pf_store_committer_socket(a->com[i]), .events = ZMQ_POLLIN};
    return n;
}

/* Gives memory back after a burst of large notices (S_TRIM_PEAK_BYTES). */
static void s_maybe_trim(pf_accept_t *a)
{
    if (a->inflight != 0 || a->bytes_peak < S_TRIM_PEAK_BYTES ||
        pf_broker_now_ms() - a->idle_since_ms < S_TRIM_IDLE_MS)
        return;
    a->bytes_peak = 0;
    malloc_trim(0);
    pf_debug("event=memory_trimmed");
}

void pf_broker_accept_progress(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    if (a == NULL)
        return;
    for (int i = 0; i < S_COMMITTERS; i++) {
        if (a->at_com[i] == NULL)
            continue;
        const char *err = NULL;
        int rc = pf_store_committer_poll(a->com[i], &err);
        if (rc != 0)
            s_committed(b, i, rc, err);
    }
    s_pump(b);
    s_maybe_trim(a);
}

bool pf_broker_accept_saturated(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    return a != NULL &&
           (a->inflight >= S_INFLIGHT_MAX / 2 || a->inflight_bytes >= S_INFLIGHT_BYTES / 2);
}

void pf_broker_accept_mailbox_changed(pf_broker_t *b, const char *mailbox)
{
    pf_accept_t *a = b->acc;
    if (a == NULL)
        return;
    /* made stale, not removed: the entry stays in the probe sequences of
     * the others (older than any trust window, and now - stale cannot
     * overflow) */
    const int64_t stale = INT64_MIN / 2;
    if (mailbox == NULL) {
        for (size_t i = 0; i < S_KEY_SLOTS; i++)
            a->current[i].checked_ms = stale;
        return;
    }
    s_current_t *c = s_current(a, mailbox);
    if (c->mailbox != NULL) {
        c->checked_ms = stale;
        char esc[200];
        pf_debug("event=mailbox_changed mailbox=\"%s\"", pf_log_escape(mailbox, esc, sizeof(esc)));
    }
}

bool pf_broker_accept_idle(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    return a == NULL || a->inflight == 0;
}

void pf_broker_accept_drain(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    if (a == NULL)
        return;
    /* finish what was accepted: every batch is sealed and committed, and
     * answered; nothing new arrives because the loop has ended */
    int64_t deadline = pf_broker_now_ms() + 10000;
    while (a->inflight > 0 && pf_broker_now_ms() < deadline) {
        zmq_pollitem_t items[1 + S_COMMITTERS];
        int n = pf_broker_accept_pollitems(b, items, 1 + S_COMMITTERS);
        if (zmq_poll(items, n, 100) < 0 && errno != EINTR)
            break;
        pf_broker_accept_progress(b);
    }
}

void pf_broker_accept_destroy(pf_broker_t *b)
{
    pf_accept_t *a = b->acc;
    if (a == NULL)
        return;
    /* the workers finish what they hold; then the batches are freed
     * unanswered (the senders retry with the same request id) */
    while (a->sealing > 0) {
        pf_seal_batch_t *sb = pf_seal_pool_done(a->pool);
        if (sb == NULL) {
            zmq_pollitem_t it = {
                .socket = NULL, .fd = pf_seal_pool_fd(a->pool), .events = ZMQ_POLLIN};
            zmq_poll(&it, 1, 100);
            continue;
        }
        a->sealing--;
        s_batch_done(b, sb->owner, true);
    }
    pf_seal_pool_destroy(&a->pool);
    for (int i = 0; i < S_COMMITTERS; i++) {
        if (a->at_com[i])
            s_batch_done(b, a->at_com[i], true);
        pf_store_committer_destroy(&a->com[i]);
    }
    while (a->wait_head) {
        s_batch_t *bt = a->wait_head;
        a->wait_head = bt->next;
        s_batch_done(b, bt, true);
    }
    if (a->forming)
        s_batch_done(b, a->forming, true);
    s_keys_flush(a);
    for (size_t i = 0; i < a->nallow; i++)
        s_allow_free(&a->allow[i]);
    free(a->allow);
    free(a);
    b->acc = NULL;
}
