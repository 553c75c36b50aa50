/* The broker's main thread: socket set-up, the event loop, message
 * dispatch, the receipt relay and database reconnects.
 *
 * Callers: cmd/postfach-broker (and e2e tests through it).
 * Threads: this one owns the ROUTER socket and the main database
 * connection; zap.c runs the ZAP handler with a connection of its own.
 * Untrusted input: every frame from the ROUTER socket.  Only the sender id
 * and key that ZAP put into the connection's "User-Id" property are
 * trusted; they are read from each message, never from the payload, and a
 * message from a connection whose key was revoked or replaced since its
 * handshake is refused (pf_broker_key_current).  Frames are counted and
 * bounded while they are read (ZMQ_MAXMSGSIZE bounds one frame before
 * libzmq allocates it), then decoded by lib/proto/wire.
 *
 * The loop: wait (zmq_poll on the socket and the database socket, at most
 * until the next relay poll); read up to batch_max SENDs plus any other
 * commands, handle HELLO/RACK/PING at once, accept the SENDs as one group
 * commit; then relay due receipts to connected senders.  NOTIFY on
 * postfach_receipt only wakes the relay early; the poll every
 * relay_poll_ms is the guarantee.
 *
 * Failures (docs/reliability.md): a lost database connection makes every
 * SEND answer NACK "temporary" (never an ACK without COMMIT) while the loop
 * reconnects with a backoff capped at half a second, so service resumes
 * within about a second of the database; at start-up the broker waits for
 * the database instead of exiting, so a supervisor never sees it
 * crash-loop.  Overload: libzmq queues at most queue_max messages per
 * connection (then it stops reading that peer: backpressure, not loss);
 * when input has been left waiting behind a full write pipeline for
 * busy_after_ms,
 * each round also reads up to 4 x batch_max further SENDs and answers them
 * NACK "busy" at once, so the backlog and the time an answer takes stay
 * bounded.  Crash points (util/crashpoint.h) mark the places the fault
 * tests kill the process at. */
#include "broker/broker_private.h"
#include "broker/expire.h"
#include "proto/curve.h"
#include "store/relay.h"
#include "store/submit.h"
#include "util/crashpoint.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* reconnect backoff: from 100 ms, doubling, at most this: the issue asks
 * for service within 2 s of the database coming back, and a failed attempt
 * against a database that is down costs one refused connect */
#define S_BACKOFF_MAX_MS 500
/* per-peer queue of outgoing messages (receipts, answers): a full one is an
 * EAGAIN we see (ROUTER_MANDATORY), and the receipt is sent again later */
#define S_SNDHWM 1000
/* receipts given back because their connection's queue was full are due
 * again after this (the relay polls every relay_poll_ms) */
#define S_RELAY_FULL_RETRY_MS 200
/* The relay's claims: at most S_RELAY_BATCH receipts per sender and
 * S_RELAY_CLAIM_MAX in all per claim, and at most S_RELAY_ROUNDS claims
 * one after the other while there may be more, so one relay pass sends at
 * most S_RELAY_ROUNDS x S_RELAY_CLAIM_MAX receipts (about 8 MiB of
 * tokens) and the SENDs waiting meanwhile are not starved by a backlog,
 * however many senders are connected (up to PF_ROUTES_MAX: a claim of 256
 * each could have been a million rows).  1024 still gives four senders
 * with a backlog their full 256 a claim; with more, the claim shares the
 * cap out evenly (pf_store_relay_claim: each sender's first receipt
 * before anyone's second) and takes turns round the senders
 * (relay_after), and what is left is claimed at the next pass. */
#define S_RELAY_BATCH 256
#define S_RELAY_CLAIM_MAX 1024
#define S_RELAY_ROUNDS 8
/* Receipt acknowledgements are marked in the database at most this long
 * after their RACK, many in one statement: measured at half the maximum
 * rate, procedures sent about 900 RACKs/s of 2 jtis each, and the main
 * thread spent 14% of its time on their UPDATEs.  Marking late is
 * harmless: a receipt is sent again only after receipt_retry_seconds, or
 * at a HELLO, which marks what is pending first. */
#define S_RACK_DELAY_MS 20
#define S_RACK_MAX 4096 /* pending jtis that make an early flush */
/* NOTIFYs wake the relay at most this often: one claim per commit was one
 * statement per 3-4 notices at moderate load.  50 rather than 10 ms: while
 * citizens opened 1,500-2,000 notices a second, claims every 10 ms cost
 * PostgreSQL 42-86 us and the broker 8-12 us per retrieval, every 50 ms
 * 12-26 and 1-2 us (docs/architecture.md, 2026-12-07).  A read receipt
 * reaches its procedure up to 50 ms later; nobody waits for it. */
#define S_RELAY_GAP_MS 50
/* the schema this broker's statements and triggers rely on: 0010 (the
 * batch inserts delivery rows the trigger then leaves alone) and 0011
 * (mailbox NOTIFYs, without which cached keys would be trusted a minute) */
#define S_SCHEMA_NEEDED 11
/* sender info entries; refreshed after sender_cache_ms */
#define S_MAX_SENDERS 4096

int64_t pf_broker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *pf_broker_esc(const char *s)
{
    static __thread char bufs[4][400];
    static __thread unsigned next;
    char *b = bufs[next++ % 4];
    return pf_log_escape(s ? s : "", b, sizeof(bufs[0]));
}

void pf_broker_config_default(pf_broker_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    pf_wire_limits_default(&cfg->limits);
    cfg->receipt_issuer = "https://postfach.local";
    cfg->batch_max = 64;
    cfg->batch_max_bytes = 256LL * 1024 * 1024;
    cfg->receipt_retry_seconds = 30;
    cfg->receipt_retry_max_seconds = 3600;
    cfg->receipt_window = 512;
    cfg->receipt_direct = true;
    cfg->relay_poll_ms = 1000;
    cfg->sender_cache_ms = 1000;
    cfg->heartbeat_ms = 10000;
    cfg->queue_max = 100;
    cfg->busy_after_ms = 1000;
    cfg->expire_after_seconds = 864000;
    cfg->expire_poll_ms = 5000;
}

/* ---- replies ---------------------------------------------------------- */

bool pf_broker_reply(pf_broker_t *b, const void *rid, size_t rid_len, pf_wire_out_t *out)
{
    /* never block the loop on one slow peer: with ROUTER_MANDATORY a full
     * or vanished peer is an error we see (EAGAIN, EHOSTUNREACH); the
     * procedure retries with the same request id and gets the stored ACK */
    if (zmq_send(b->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        pf_debug("event=reply_dropped error=\"%s\"", zmq_strerror(e));
        errno = e; /* the caller tells a full queue from a vanished peer */
        return false;
    }
    for (size_t i = 0; i < out->count; i++) {
        int flags = (i + 1 < out->count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT;
        /* after the first frame libzmq accepts the rest of the message */
        zmq_send(b->router, out->frames[i].data, out->frames[i].size, flags);
    }
    return true;
}

void pf_broker_nack(pf_broker_t *b, const void *rid, size_t rid_len, const char *request_id,
                    const char *code, const char *reason)
{
    pf_wire_out_t out = {0};
    pf_wire_encode_nack(request_id, code, reason, &out);
    pf_broker_reply(b, rid, rid_len, &out);
    pf_wire_out_clear(&out);
}

/* ---- database state --------------------------------------------------- */

void pf_broker_db_failed(pf_broker_t *b, const char *what, const char *err)
{
    if (!pf_store_broken(b->st))
        return; /* a refused query, the connection is fine */
    if (b->db_ok)
        pf_error("event=db_lost what=\"%s\" error=\"%s\"", what, pf_broker_esc(err));
    b->db_ok = false;
    if (b->db_retry_ms == 0) {
        b->db_backoff_ms = 100;
        b->db_retry_ms = pf_broker_now_ms();
    }
}

/* What a fresh connection needs before it may take work: safe durability
 * settings (the server may have been replaced, e.g. by a failover), and
 * LISTEN, which belongs to the session. */
static int s_db_ready(pf_broker_t *b, const char **error_r)
{
    if (pf_store_check_durability(b->st, error_r) != 0) {
        if (pf_store_broken(b->st) || !b->cfg.allow_unsafe_db)
            return -1;
        pf_warn("event=unsafe_db error=\"%s\" allow_unsafe_db=on", pf_broker_esc(*error_r));
    }
    return pf_store_relay_listen(b->st, error_r);
}

int pf_broker_db_reconnect(pf_broker_t *b)
{
    const char *err;
    if (pf_store_reconnect(b->st, &err) == 0 && s_db_ready(b, &err) == 0) {
        pf_info("event=db_reconnected");
        /* mailbox changes NOTIFYed while we were away are lost to us */
        pf_broker_accept_mailbox_changed(b, NULL);
        b->db_ok = true;
        b->db_retry_ms = 0;
        b->db_backoff_ms = 0;
        b->relay_due = true;
        return 0;
    }
    if (b->db_backoff_ms == 0)
        b->db_backoff_ms = 100;
    pf_warn("event=db_reconnect_failed error=\"%s\" retry_ms=%d", pf_broker_esc(err),
            b->db_backoff_ms);
    b->db_ok = false;
    b->db_retry_ms = pf_broker_now_ms() + b->db_backoff_ms;
    b->db_backoff_ms =
        b->db_backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : b->db_backoff_ms * 2;
    return -1;
}

static void s_db_retry(pf_broker_t *b)
{
    if (b->db_ok || pf_broker_now_ms() < b->db_retry_ms)
        return;
    pf_broker_db_reconnect(b);
}

int pf_broker_sender(pf_broker_t *b, int64_t sender_id, const pf_sender_info_t **info_r)
{
    int64_t now = pf_broker_now_ms();
    pf_sender_info_t *e = NULL;
    for (size_t i = 0; i < b->nsenders && !e; i++)
        if (b->senders[i].sender_id == sender_id)
            e = &b->senders[i];
    if (e && now - e->checked_ms < b->cfg.sender_cache_ms) {
        *info_r = e;
        return 1;
    }
    if (!b->db_ok)
        return -1;
    char *name = NULL;
    bool active = false;
    char key[41] = "";
    const char *err;
    int rc = pf_store_sender_by_id(b->st, sender_id, &name, &active, key, &err);
    if (rc < 0) {
        pf_broker_db_failed(b, "cannot look up sender", err);
        return -1;
    }
    if (rc == 0)
        return 0;
    if (e == NULL) {
        if (b->nsenders == S_MAX_SENDERS) {
            for (size_t i = 0; i < b->nsenders; i++)
                free(b->senders[i].name);
            b->nsenders = 0;
        }
        b->senders = xrealloc(b->senders, (b->nsenders + 1) * sizeof(*b->senders));
        e = &b->senders[b->nsenders++];
        e->name = NULL;
    }
    free(e->name);
    *e = (pf_sender_info_t){
        .sender_id = sender_id, .name = name, .active = active, .checked_ms = now};
    memcpy(e->key, key, sizeof(e->key));
    *info_r = e;
    return 1;
}

int pf_broker_key_current(pf_broker_t *b, int64_t sender_id, const char *key)
{
    const pf_sender_info_t *info;
    int rc = pf_broker_sender(b, sender_id, &info);
    if (rc <= 0)
        return rc;
    return info->active && strcmp(info->key, key) == 0;
}

/* ---- routes: the connections of each sender ------------------------------ *
 * The route table (routes.h) knows each connection that spoke, with its
 * sender, key and when it last spoke.  A receipt goes to the sender's
 * connection heard from last; when that one is gone (the send fails), the
 * entry is dropped and the next one is tried, so a procedure that runs a
 * receipt listener beside short-lived senders keeps getting its receipts.
 * A full table forgets the connection heard from longest ago. */

bool pf_broker_has_route(const pf_broker_t *b, int64_t sender_id)
{
    return pf_routes_find(b->routes, sender_id) != NULL;
}

pf_receipt_sent_t pf_broker_send_receipt(pf_broker_t *b, int64_t sender_id, const char *jti,
                                         const char *token)
{
    /* not to a connection whose key was revoked or replaced since it spoke
     * (nor when the database cannot tell: the receipt stays due) */
    const pf_routes_entry_t *r;
    while ((r = pf_routes_find(b->routes, sender_id)) != NULL) {
        int cur = pf_broker_key_current(b, sender_id, r->key);
        if (cur < 0)
            return PF_RECEIPT_NO_ROUTE;
        if (cur == 0) {
            pf_info("event=route_key_stale sender_id=%lld", (long long)sender_id);
            pf_routes_drop(b->routes, r);
            continue;
        }
        pf_wire_out_t out = {0};
        pf_wire_encode_receipt(jti, token, &out);
        bool sent = pf_broker_reply(b, r->rid, r->rid_len, &out);
        pf_wire_out_clear(&out);
        if (sent) {
            pf_debug("event=receipt_sent sender_id=%lld jti=%s", (long long)sender_id, jti);
            return PF_RECEIPT_SENT;
        }
        if (errno == EAGAIN) {
            /* the connection is there but its queue is full (S_SNDHWM):
             * it keeps its route */
            pf_debug("event=route_full sender_id=%lld", (long long)sender_id);
            return PF_RECEIPT_FULL;
        }
        /* that connection is gone: the sender's next one, if any */
        pf_debug("event=route_gone sender_id=%lld", (long long)sender_id);
        pf_routes_drop(b->routes, r);
    }
    return PF_RECEIPT_NO_ROUTE; /* no connection of the sender: the next attempt is later */
}

/* ---- receipt relay ------------------------------------------------------ */

/* Per sender that said HELLO or RACK: its acknowledgements not yet
 * marked, and whether its replay is under way. */
struct pf_rack_pending {
    int64_t sender_id;
    char (*jtis)[PF_UUID_STRLEN + 1];
    size_t n, cap;
    bool replaying; /* the last replay stopped at its limit: more are waiting */
};

static struct pf_rack_pending *s_rack_entry(pf_broker_t *b, int64_t sender_id)
{
    for (size_t i = 0; i < b->nracks; i++)
        if (b->racks[i].sender_id == sender_id)
            return &b->racks[i];
    b->racks = xrealloc(b->racks, (b->nracks + 1) * sizeof(*b->racks));
    struct pf_rack_pending *r = &b->racks[b->nracks++];
    *r = (struct pf_rack_pending){.sender_id = sender_id};
    return r;
}

/* Makes up to `most` of the sender's unacknowledged receipts that are not
 * due yet due now, those that would have been due first.  A HELLO replays
 * receipt_window; while a replay comes back full, the sender stays
 * `replaying`, and every acknowledgement of its receipts makes one more
 * due (credit, as in a window): a procedure that takes and acknowledges
 * its receipts gets its whole outbox again, at the pace it acknowledges;
 * one that never does gets at most receipt_window per HELLO.  Before,
 * every HELLO made the whole outbox due, and a procedure that never
 * acknowledged and reconnected often was sent it again and again
 * (docs/reliability.md). */
static void s_replay(pf_broker_t *b, struct pf_rack_pending *r, int most)
{
    const char *err;
    int k = pf_store_relay_replay(b->st, r->sender_id, most, &err);
    if (k < 0) {
        pf_broker_db_failed(b, "cannot replay receipts", err);
        return;
    }
    r->replaying = k >= most;
    if (k > 0)
        b->relay_due = true;
    pf_debug("event=replay sender_id=%lld receipts=%d more=%s", (long long)r->sender_id, k,
             r->replaying ? "maybe" : "no");
}

/* Marks the pending acknowledgements of every sender, in one statement;
 * a sender whose replay is under way gets as many more receipts replayed
 * as it acknowledged. */
static void s_rack_flush(pf_broker_t *b)
{
    if (b->rack_jtis > 0 && b->db_ok) {
        int64_t *sids = xcalloc(b->rack_jtis, sizeof(*sids));
        const char **jtis = xcalloc(b->rack_jtis, sizeof(*jtis));
        size_t n = 0;
        for (size_t i = 0; i < b->nracks; i++)
            for (size_t k = 0; k < b->racks[i].n && n < b->rack_jtis; k++, n++) {
                sids[n] = b->racks[i].sender_id;
                jtis[n] = b->racks[i].jtis[k];
            }
        pf_relay_acked_t *acked;
        size_t nacked;
        const char *err;
        int k = pf_store_relay_ack(b->st, sids, jtis, n, &acked, &nacked, &err);
        free(sids);
        free(jtis);
        if (k < 0) {
            pf_broker_db_failed(b, "cannot acknowledge receipts", err);
        } else {
            pf_debug("event=rack jtis=%zu acked=%d senders=%zu", n, k, nacked);
            pf_crashpoint("relay_after_rack");
            for (size_t i = 0; i < nacked && b->db_ok; i++) {
                struct pf_rack_pending *r = s_rack_entry(b, acked[i].sender_id);
                int c = acked[i].count;
                if (r->replaying && c > 0)
                    s_replay(b, r, c < b->cfg.receipt_window ? c : b->cfg.receipt_window);
            }
            free(acked);
        }
    }
    /* with the database down they are dropped, as a RACK then always was:
     * the receipts are sent again and acknowledged again */
    for (size_t i = 0; i < b->nracks; i++)
        b->racks[i].n = 0;
    b->rack_jtis = 0;
    b->rack_due_ms = 0;
}

static void s_rack_add(pf_broker_t *b, int64_t sender_id, const char *const *jtis, size_t n)
{
    struct pf_rack_pending *r = s_rack_entry(b, sender_id);
    if (r->n + n > r->cap) {
        r->cap = (r->n + n) * 2;
        r->jtis = xrealloc(r->jtis, r->cap * sizeof(*r->jtis));
    }
    for (size_t k = 0; k < n; k++)
        snprintf(r->jtis[r->n++], sizeof(r->jtis[0]), "%s", jtis[k]);
    b->rack_jtis += n;
    if (b->rack_due_ms == 0)
        b->rack_due_ms = pf_broker_now_ms() + S_RACK_DELAY_MS;
    if (b->rack_jtis >= S_RACK_MAX)
        s_rack_flush(b);
}

static int s_id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The largest number of rows of one sender among rows (sorted copies of
 * the ids: n log n, not senders times rows). */
static size_t s_most_per_sender(const pf_relay_receipt_t *rows, size_t n)
{
    if (n == 0)
        return 0;
    int64_t *v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = rows[i].sender_id;
    qsort(v, n, sizeof(*v), s_id_cmp);
    size_t most = 1, run = 1;
    for (size_t i = 1; i < n; i++) {
        run = v[i] == v[i - 1] ? run + 1 : 1;
        if (run > most)
            most = run;
    }
    free(v);
    return most;
}

/* Whether id is among ids (ascending, as pf_routes_senders gives them). */
static bool s_has_id(const int64_t *ids, size_t n, int64_t id)
{
    return bsearch(&id, ids, n, sizeof(*ids), s_id_cmp) != NULL;
}

/* Removes id from ids (order kept); returns the new count. */
static size_t s_drop_id(int64_t *ids, size_t n, int64_t id)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != id)
            ids[k++] = ids[i];
    return k;
}

static void s_relay(pf_broker_t *b)
{
    if (!b->db_ok || pf_routes_count(b->routes) == 0)
        return;
    /* each sender once, however many connections it has */
    int64_t *ids;
    size_t nids = pf_routes_senders(b->routes, &ids);
    /* a few rounds at most, so submissions are not starved by a backlog;
     * a pass that ends with more left asks for the next one soon (after
     * S_RELAY_GAP_MS, not relay_poll_ms) */
    bool more = false;
    for (int round = 0; round < S_RELAY_ROUNDS && nids > 0; round++) {
        pf_relay_receipt_t *rows;
        size_t n, skipped;
        const char *err;
        more = false;
        if (pf_store_relay_claim(b->st, ids, nids, S_RELAY_BATCH, S_RELAY_CLAIM_MAX,
                                 b->cfg.receipt_retry_seconds, b->cfg.receipt_retry_max_seconds,
                                 &b->relay_after, &rows, &n, &skipped, &err) != 0) {
            pf_broker_db_failed(b, "cannot claim receipts", err);
            if (b->db_ok)
                pf_error("event=relay_failed error=\"%s\"", pf_broker_esc(err));
            break;
        }
        if (n > 0)
            pf_crashpoint("relay_after_select");
        /* a sender whose connection's queue is full gets nothing more in
         * this pass: the rest of its rows are given back, due again after
         * S_RELAY_FULL_RETRY_MS (not the claim's receipt_retry_seconds),
         * and its later rounds' claims leave it out */
        const char **back = xcalloc(n ? n : 1, sizeof(*back));
        size_t nback = 0, nids0 = nids;
        for (size_t i = 0; i < n; i++) {
            if (!s_has_id(ids, nids, rows[i].sender_id)) {
                back[nback++] = rows[i].jti;
                continue;
            }
            pf_receipt_sent_t r =
                pf_broker_send_receipt(b, rows[i].sender_id, rows[i].jti, rows[i].token);
            if (r == PF_RECEIPT_SENT) {
                pf_crashpoint("relay_after_send");
            } else if (r == PF_RECEIPT_FULL) {
                back[nback++] = rows[i].jti;
                nids = s_drop_id(ids, nids, rows[i].sender_id);
            }
        }
        if (nback > 0 &&
            pf_store_relay_release(b->st, back, nback, S_RELAY_FULL_RETRY_MS, &err) < 0) {
            /* they come again after receipt_retry_seconds */
            pf_broker_db_failed(b, "cannot give receipts back", err);
            if (b->db_ok)
                pf_warn("event=relay_release_failed error=\"%s\"", pf_broker_esc(err));
        }
        if (nids < nids0)
            pf_info("event=relay_queue_full senders=%zu receipts_back=%zu", nids0 - nids, nback);
        free(back);
        /* go on while there may be more: the claim was cut at the overall
         * cap, a sender had S_RELAY_BATCH, or rows were passed over that
         * another broker held (others behind them may be due) */
        more = n >= S_RELAY_CLAIM_MAX || skipped > 0 || s_most_per_sender(rows, n) >= S_RELAY_BATCH;
        pf_relay_receipts_free(&rows, n);
        if (!more || !b->db_ok)
            break;
    }
    if (more)
        b->relay_due = true;
    free(ids);
}

/* ---- notifications ------------------------------------------------------- */

static void s_notified(void *arg, pf_notify_kind_t kind, const char *payload)
{
    pf_broker_t *b = arg;
    if (kind == PF_NOTIFY_RECEIPT)
        b->relay_due = true;
    else
        pf_broker_accept_mailbox_changed(b, payload);
}

void pf_broker_notifications(pf_broker_t *b, bool consume)
{
    if (!b->db_ok)
        return;
    const char *err;
    if (pf_store_relay_drain(b->st, consume, s_notified, b, &err) < 0)
        pf_broker_db_failed(b, "cannot read notifications", err);
}

/* ---- reading and dispatch ----------------------------------------------- */

/* Reads one multipart message; frames beyond max are read and dropped (the
 * codec then refuses the message by its count).  Returns the frame count
 * (frames[0] the routing id), 0 when nothing was waiting. */
static size_t s_read(pf_broker_t *b, zmq_msg_t *frames, size_t max, size_t *dropped_r)
{
    size_t n = 0;
    *dropped_r = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, b->router, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < max) {
            frames[n++] = m;
        } else {
            zmq_msg_close(&m);
            (*dropped_r)++;
        }
    }
    return n;
}

static void s_close_frames(zmq_msg_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}

/* ZAP's User-Id: "<sender id>:<CURVE key, Z85>" (zap.c). */
static int64_t s_user_id(zmq_msg_t *m, char key_r[41])
{
    const char *u = zmq_msg_gets(m, "User-Id");
    if (u == NULL || *u == '\0')
        return 0;
    char *end;
    long long v = strtoll(u, &end, 10);
    if (*end != ':' || v <= 0 || strlen(end + 1) != 40)
        return 0;
    memcpy(key_r, end + 1, 41);
    return v;
}

/* Handles one message that is not a SEND, or queues a SEND.  Returns true
 * when the frames were taken over by the batch. */
/* True when the command frame names a message that gets no answer
 * (HELLO, RACK, PING): a NACK to one of those would arrive while the
 * client waits for the answer to a SEND, and a NACK without request id
 * would be taken for that answer. */
static bool s_unanswered(zmq_msg_t *cmd)
{
    static const char *const names[] = {"HELLO", "RACK", "PING"};
    for (size_t i = 0; i < 3; i++)
        if (zmq_msg_size(cmd) == strlen(names[i]) &&
            memcmp(zmq_msg_data(cmd), names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

static bool s_dispatch(pf_broker_t *b, zmq_msg_t *frames, size_t n, size_t dropped,
                       pf_broker_send_t *batch, size_t *nbatch)
{
    const void *rid = zmq_msg_data(&frames[0]);
    size_t rid_len = zmq_msg_size(&frames[0]);
    /* ZAP's User-Id travels as connection metadata on the frames the peer
     * sent (libzmq versions differ on whether the routing-id frame made by
     * the ROUTER carries it too): take the first frame that has it */
    int64_t sender_id = 0;
    char key[41] = "";
    for (size_t i = 1; i < n && sender_id == 0; i++)
        sender_id = s_user_id(&frames[i], key);
    if (sender_id == 0)
        sender_id = s_user_id(&frames[0], key);
    pf_wire_frame_t wf[PF_WIRE_ABS_MAX_ATTACHMENTS + PF_WIRE_MAX_RACK + 8];
    size_t nf = n - 1;
    for (size_t i = 0; i < nf; i++)
        wf[i] = (pf_wire_frame_t){zmq_msg_data(&frames[i + 1]), zmq_msg_size(&frames[i + 1]), NULL};
    pf_wire_msg_t msg;
    pf_wire_error_t werr;
    int rc;
    if (dropped > 0) {
        rc = -1;
        werr.code = PF_WIRE_E_TOO_LARGE;
        snprintf(werr.reason, sizeof(werr.reason), "too many frames");
        werr.request_id[0] = '\0';
    } else {
        rc = pf_wire_decode(wf, nf, &b->cfg.limits, PF_WIRE_TO_BROKER, &msg, &werr);
    }
    bool answer = nf < 2 || !s_unanswered(&frames[2]);
    if (sender_id == 0) {
        /* only possible if ZAP were bypassed: refuse rather than guess */
        pf_error("event=no_user_id");
        if (answer)
            pf_broker_nack(b, rid, rid_len,
                           rc == 0 && msg.cmd == PF_WIRE_SEND ? msg.send.request_id
                                                              : werr.request_id,
                           PF_WIRE_E_FORBIDDEN, "not authenticated");
        if (rc == 0)
            pf_wire_msg_clear(&msg);
        return false;
    }
    /* revoke and rotate-key reach connections that are open already:
     * nothing from one whose key is no longer current (a database that
     * cannot tell lets the message on: a SEND then waits for it anyway) */
    if (pf_broker_key_current(b, sender_id, key) == 0) {
        pf_info("event=refused sender_id=%lld code=forbidden reason=\"key revoked or replaced\"",
                (long long)sender_id);
        if (answer)
            pf_broker_nack(b, rid, rid_len,
                           rc == 0 && msg.cmd == PF_WIRE_SEND ? msg.send.request_id
                                                              : werr.request_id,
                           PF_WIRE_E_FORBIDDEN, "this key was revoked or replaced");
        if (rc == 0)
            pf_wire_msg_clear(&msg);
        return false;
    }
    pf_routes_heard(b->routes, sender_id, key, rid, rid_len, pf_broker_now_ms());
    if (rc != 0) {
        char esc[240];
        pf_info("event=refused sender_id=%lld code=%s reason=\"%s\" answered=%s",
                (long long)sender_id, werr.code, pf_log_escape(werr.reason, esc, sizeof(esc)),
                answer ? "yes" : "no");
        if (answer)
            pf_broker_nack(b, rid, rid_len, werr.request_id, werr.code, werr.reason);
        return false;
    }
    switch (msg.cmd) {
    case PF_WIRE_SEND:
        batch[*nbatch] =
            (pf_broker_send_t){.frames = frames, .nframes = n, .sender_id = sender_id, .msg = msg};
        (*nbatch)++;
        return true;
    case PF_WIRE_HELLO:
        pf_debug("event=hello sender_id=%lld", (long long)sender_id);
        s_rack_flush(b); /* what was acknowledged is not replayed */
        if (b->db_ok) {
            struct pf_rack_pending *r = s_rack_entry(b, sender_id);
            s_replay(b, r, b->cfg.receipt_window);
            /* for the operator: a procedure with more receipts sent and
             * not acknowledged than one window (postfach-ctl sender
             * receipts tells how many); once per HELLO, not per credit */
            if (r->replaying)
                pf_info("event=replay_window_full sender_id=%lld receipts=%d", (long long)sender_id,
                        b->cfg.receipt_window);
        }
        b->relay_due = true;
        break;
    case PF_WIRE_RACK:
        if (b->db_ok)
            s_rack_add(b, sender_id, (const char *const *)msg.jtis, msg.jti_count);
        break;
    case PF_WIRE_PING: {
        pf_wire_out_t out = {0};
        pf_wire_encode_simple(PF_WIRE_PONG, &out);
        pf_broker_reply(b, rid, rid_len, &out);
        pf_wire_out_clear(&out);
        break;
    }
    default:
        break; /* the accept mask lets nothing else through */
    }
    pf_wire_msg_clear(&msg);
    return false;
}

/* True when a message waits on the socket. */
static bool s_input_waiting(pf_broker_t *b)
{
    int ev = 0;
    size_t sz = sizeof(ev);
    return zmq_getsockopt(b->router, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLIN);
}

/* Overload: reads up to max further messages and answers the SENDs among
 * them NACK busy at once (no database work); HELLO, RACK and PING are
 * handled as always. */
static void s_shed(pf_broker_t *b, size_t max_frames, int max)
{
    int refused = 0;
    for (int seen = 0; seen < max; seen++) {
        zmq_msg_t *frames = xcalloc(max_frames, sizeof(*frames));
        size_t dropped;
        size_t n = s_read(b, frames, max_frames, &dropped);
        if (n == 0) {
            free(frames);
            break;
        }
        pf_broker_send_t one;
        size_t none = 0;
        if (n >= 2 && s_dispatch(b, frames, n, dropped, &one, &none)) {
            pf_broker_nack(b, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                           one.msg.send.request_id, PF_WIRE_E_BUSY,
                           "the broker is overloaded, retry later");
            pf_wire_msg_clear(&one.msg);
            refused++;
        }
        s_close_frames(frames, n);
        free(frames);
    }
    if (refused > 0)
        pf_info("event=busy refused=%d", refused);
}

/* Reads whatever is waiting (up to batch_max SENDs) and processes it. */
static void s_serve(pf_broker_t *b)
{
    size_t max_frames = 1 + 3 + b->cfg.limits.max_attachments;
    if (max_frames < 1 + 2 + PF_WIRE_MAX_RACK)
        max_frames = 1 + 2 + PF_WIRE_MAX_RACK;
    pf_broker_send_t *batch = xcalloc((size_t)b->cfg.batch_max, sizeof(*batch));
    size_t nbatch = 0;
    /* what a batch will hold once sealed (every copy carries the whole
     * notice, base64 and encrypted): stop collecting when it reaches
     * batch_max_bytes, so many large SENDs are not held at once */
    long long cost = 0;
    /* other commands are handled as they come, but bounded per round */
    for (int seen = 0; nbatch < (size_t)b->cfg.batch_max && seen < 4 * b->cfg.batch_max &&
                       cost < b->cfg.batch_max_bytes;
         seen++) {
        zmq_msg_t *frames = xcalloc(max_frames, sizeof(*frames));
        size_t dropped;
        size_t n = s_read(b, frames, max_frames, &dropped);
        if (n == 0) {
            free(frames);
            break;
        }
        if (n < 2) {
            s_close_frames(frames, n); /* a routing id and nothing else */
            free(frames);
            continue;
        }
        if (!s_dispatch(b, frames, n, dropped, batch, &nbatch)) {
            s_close_frames(frames, n);
            free(frames);
            continue;
        }
        pf_crashpoint("after_receive");
        long long bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += (long long)zmq_msg_size(&frames[i]);
        cost += bytes / 3 * 4 * (long long)batch[nbatch - 1].msg.send.recipient_count;
    }
    /* a batch that leaves input waiting, round after round for
     * busy_after_ms: more is offered than we store, so say "busy" to the
     * excess now rather than answer it after the sender gave up */
    int64_t now = pf_broker_now_ms();
    /* input left waiting is a backlog only while the write pipeline is
     * full too; before that it takes over whatever this round read.  The
     * pipeline first: asking the socket costs libzmq a poll and a getpid
     * (its fork check), once per round, on every round */
    if (!pf_broker_accept_saturated(b) || !s_input_waiting(b)) {
        b->backlog_since_ms = 0;
    } else if (b->backlog_since_ms == 0) {
        b->backlog_since_ms = now;
    } else if (now - b->backlog_since_ms >= b->cfg.busy_after_ms) {
        s_shed(b, max_frames, 4 * b->cfg.batch_max);
    }
    if (nbatch > 0)
        pf_broker_accept_batch(b, batch, nbatch);
    for (size_t i = 0; i < nbatch; i++) {
        pf_wire_msg_clear(&batch[i].msg);
        s_close_frames(batch[i].frames, batch[i].nframes);
        free(batch[i].frames);
    }
    free(batch);
}

int pf_broker_run(pf_broker_t *b)
{
    b->next_relay_ms = pf_broker_now_ms();
    /* logged here rather than after bind, so that a supervisor that stops
     * us right after "ready" finds the signal handlers in place */
    pf_info("event=ready bind=%s", b->bind);
    while (!b->stop) {
        int64_t now = pf_broker_now_ms();
        int64_t relay_at = b->next_relay_ms;
        if (b->relay_due && b->last_relay_ms + S_RELAY_GAP_MS < relay_at)
            relay_at = b->last_relay_ms + S_RELAY_GAP_MS;
        long timeout = (long)(relay_at - now);
        if (b->rack_due_ms != 0 && b->rack_due_ms - now < timeout)
            timeout = (long)(b->rack_due_ms - now);
        if (!b->db_ok && b->db_retry_ms - now < timeout)
            timeout = (long)(b->db_retry_ms - now);
        if (timeout < 0)
            timeout = 0;
        if (timeout > 1000)
            timeout = 1000;
        zmq_pollitem_t items[2 + 4] = {{.socket = b->router, .events = ZMQ_POLLIN},
                                       {.socket = NULL, .fd = -1, .events = ZMQ_POLLIN}};
        int nitems = 1;
        if (b->db_ok && pf_store_socket(b->st) >= 0) {
            items[1].fd = pf_store_socket(b->st);
            nitems = 2;
        }
        /* the write pipeline's crypto workers and commit connections */
        int nacc = pf_broker_accept_pollitems(b, items + nitems, 4);
        int rc = zmq_poll(items, nitems + nacc, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ETERM)
                break;
            pf_error("event=poll_failed error=\"%s\"", zmq_strerror(errno));
            return -1;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_serve(b);
        pf_broker_accept_progress(b);
        if (nitems == 2 && b->db_ok)
            pf_broker_notifications(b, (items[1].revents & ZMQ_POLLIN) != 0);
        s_db_retry(b);
        now = pf_broker_now_ms();
        if (b->db_ok && now >= b->next_expire_ms) {
            b->next_expire_ms = now + b->cfg.expire_poll_ms;
            pf_broker_expire(b);
        }
        now = pf_broker_now_ms();
        if (b->rack_due_ms != 0 && now >= b->rack_due_ms)
            s_rack_flush(b);
        if ((b->relay_due && now >= b->last_relay_ms + S_RELAY_GAP_MS) || now >= b->next_relay_ms) {
            b->relay_due = false;
            b->next_relay_ms = now + b->cfg.relay_poll_ms;
            b->last_relay_ms = now;
            s_relay(b);
        }
    }
    pf_info("event=stopping");
    s_rack_flush(b);
    pf_broker_accept_drain(b);
    return 0;
}

/* set by pf_broker_stop(NULL): ends a start-up that waits for the database */
static volatile sig_atomic_t s_start_abort;

void pf_broker_stop(pf_broker_t *b)
{
    if (b == NULL)
        s_start_abort = 1;
    else
        b->stop = 1;
}

/* ---- set-up -------------------------------------------------------------- */

static __thread char s_err[512];

static int s_fail(const char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int s_fail(const char **error_r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_err, sizeof(s_err), fmt, ap);
    va_end(ap);
    *error_r = s_err;
    return -1;
}

static int s_socket(pf_broker_t *b, const char *secret, const char **error_r)
{
    b->router = zmq_socket(b->zctx, ZMQ_ROUTER);
    if (b->router == NULL)
        return s_fail(error_r, "cannot create socket: %s", zmq_strerror(errno));
    int one = 1, linger = 2000;
    /* one frame may not exceed what any frame may legally be: larger ones
     * make libzmq drop the connection before allocating */
    int64_t maxmsg = (int64_t)(b->cfg.limits.max_attachment > b->cfg.limits.max_header
                                   ? b->cfg.limits.max_attachment
                                   : b->cfg.limits.max_header) +
                     1024 * 1024;
    int hb = b->cfg.heartbeat_ms, hbt = b->cfg.heartbeat_ms * 3;
    int rcvhwm = b->cfg.queue_max, sndhwm = S_SNDHWM;
    if (zmq_setsockopt(b->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(b->router, ZMQ_CURVE_SECRETKEY, secret, PF_CURVE_Z85_LEN) != 0 ||
        zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(b->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 ||
        zmq_setsockopt(b->router, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(b->router, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) != 0 ||
        zmq_setsockopt(b->router, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) != 0 ||
        zmq_setsockopt(b->router, ZMQ_ZAP_DOMAIN, "postfach", 8) != 0)
        return s_fail(error_r, "cannot configure socket: %s", zmq_strerror(errno));
    if (hb > 0 && (zmq_setsockopt(b->router, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb)) != 0 ||
                   zmq_setsockopt(b->router, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof(hbt)) != 0))
        return s_fail(error_r, "cannot configure heartbeats: %s", zmq_strerror(errno));
    if (zmq_bind(b->router, b->bind) != 0)
        return s_fail(error_r, "cannot bind \"%s\": %s", b->bind, zmq_strerror(errno));
    return 0;
}

int pf_broker_new(const pf_broker_config_t *cfg, pf_broker_t **b_r, const char **error_r)
{
    pf_broker_t *b = xcalloc(1, sizeof(*b));
    b->cfg = *cfg;
    b->db = xstrdup(cfg->db ? cfg->db : "");
    b->bind = xstrdup(cfg->bind ? cfg->bind : "");
    b->issuer = xstrdup(cfg->receipt_issuer ? cfg->receipt_issuer : "https://postfach.local");
    b->cfg.db = b->db;
    b->cfg.bind = b->bind;
    b->cfg.receipt_issuer = b->issuer;
    b->routes = pf_routes_new();
    const char *err;

    pf_curve_keys_t ck;
    if (pf_curve_load(cfg->curve_secret_file, true, &ck, &err) != 0) {
        s_fail(error_r, "%s", err);
        goto fail;
    }
    char *jwk = NULL;
    size_t jwk_len;
    if (pf_file_read(cfg->receipt_key_file, 64 * 1024, &jwk, &jwk_len, &err) != 0 ||
        pf_key_from_jwk(jwk, jwk_len, &b->receipt_key, &err) != 0) {
        if (jwk)
            pf_wipe(jwk, jwk_len);
        free(jwk);
        pf_curve_keys_clear(&ck);
        s_fail(error_r, "receipt key \"%s\": %s", cfg->receipt_key_file, err);
        goto fail;
    }
    pf_wipe(jwk, jwk_len);
    free(jwk);
    if (!pf_key_is_private(b->receipt_key) || pf_key_is_rsa(b->receipt_key)) {
        pf_curve_keys_clear(&ck);
        s_fail(error_r, "receipt key \"%s\" is not a private P-256 key", cfg->receipt_key_file);
        goto fail;
    }

    pf_crashpoint_init();
    /* a database that is not there yet is waited for: exiting would only
     * make the supervisor start us into the same wait, a crash loop; until
     * then nothing is bound, so senders time out and retry */
    for (int backoff = 100; pf_store_open(b->db, &b->st, &err) != 0;
         backoff = backoff * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : backoff * 2) {
        if (s_start_abort) {
            pf_curve_keys_clear(&ck);
            s_fail(error_r, "stopped while waiting for the database");
            goto fail;
        }
        pf_warn("event=db_unavailable error=\"%s\" retry_ms=%d", pf_broker_esc(err), backoff);
        usleep((useconds_t)backoff * 1000);
    }
    if (pf_store_check_durability(b->st, &err) != 0) {
        if (!cfg->allow_unsafe_db) {
            pf_curve_keys_clear(&ck);
            s_fail(error_r, "%s (set allow_unsafe_db = on to start anyway)", err);
            goto fail;
        }
        pf_warn("event=unsafe_db error=\"%s\" allow_unsafe_db=on", pf_broker_esc(err));
    }
    int schema = 0;
    if (pf_store_schema_version(b->st, &schema, &err) != 0 || schema < S_SCHEMA_NEEDED) {
        pf_curve_keys_clear(&ck);
        s_fail(error_r,
               "the database schema is version %d, this broker needs %d: run postfach-ctl "
               "migrate",
               schema, S_SCHEMA_NEEDED);
        goto fail;
    }
    if (pf_store_relay_listen(b->st, &err) != 0) {
        pf_curve_keys_clear(&ck);
        s_fail(error_r, "%s", err);
        goto fail;
    }
    b->db_ok = true;

    b->zctx = zmq_ctx_new();
    /* the ZAP handler must exist before the socket binds */
    if (pf_zap_start(b->zctx, b->db, cfg->sender_cache_ms, &b->zap, &err) != 0) {
        pf_curve_keys_clear(&ck);
        s_fail(error_r, "%s", err);
        goto fail;
    }
    int rc = s_socket(b, ck.secret_key, error_r);
    pf_curve_keys_clear(&ck);
    if (rc != 0)
        goto fail;
    *b_r = b;
    return 0;
fail:
    pf_broker_destroy(&b);
    return -1;
}

void pf_broker_destroy(pf_broker_t **bp)
{
    pf_broker_t *b = *bp;
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nracks; i++)
        free(b->racks[i].jtis);
    free(b->racks);
    pf_broker_accept_destroy(b);
    if (b->router)
        zmq_close(b->router);
    pf_zap_stop(&b->zap);
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    pf_store_destroy(&b->st);
    pf_key_destroy(&b->receipt_key);
    for (size_t i = 0; i < b->nsenders; i++)
        free(b->senders[i].name);
    free(b->senders);
    for (size_t i = 0; i < b->nkeys; i++) {
        free(b->keys[i].mailbox);
        pf_key_destroy(&b->keys[i].key);
    }
    free(b->keys);
    pf_routes_destroy(&b->routes);
    free(b->db);
    free(b->bind);
    free(b->issuer);
    free(b);
    *bp = NULL;
}
