/* libpostfach: the client side of the wire protocol (include/postfach/
 * postfach.h is the contract, docs/protocol.md the protocol).
 *
 * Callers: procedures' own programs, postfach-send, the e2e tests.
 * Reliability (the ZeroMQ guide's Lazy Pirate): one request at a time on
 * a DEALER socket; when no answer comes within the timeout the socket is
 * closed and opened again (dropping whatever the old connection still
 * holds, so no stale answer can be mistaken for a new one) and the same
 * request, with the same request id, is sent again.  The broker's
 * idempotency makes that safe: a repeat gets the stored ACK.
 * Receipts arrive whenever they like; they are queued (bounded: what does
 * not fit is not acknowledged, so the broker sends it again later),
 * deduplicated by jti (bounded memory), optionally verified, handed out,
 * and acknowledged with RACK.  A socket monitor reports each completed
 * CURVE handshake, upon which the client sends HELLO, so a broker that
 * restarted learns where to send receipts and replays pending ones.
 * Untrusted input: every frame from the broker (decoded by lib/proto/
 * wire) and the receipt tokens (verified by lib/receipt when keys are
 * set).  The library never prints; it logs through the callback. */
#include "postfach/postfach.h"
#include "client/seen.h"
#include "crypto/jose.h"
#include "proto/curve.h"
#include "proto/wire.h"
#include "receipt/receipt.h"
#include "util/b64url.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_QUEUE_MAX 1024
#define S_MAX_FRAMES 8 /* nothing the broker sends has more */
#define S_WINDOW_DEFAULT 64
#define S_WINDOW_MAX 4096
/* how long pf_client_destroy lets its last RACK try to leave */
#define S_CLOSE_LINGER_MS 200

typedef struct {
    char jti[37];
    char *token;
} s_pending_t;

/* One asynchronous submission in flight: the encoded frames are kept for
 * the resend after a timeout. */
typedef struct {
    char *request_id;
    pf_wire_out_t out;
    int64_t deadline;
    int attempts;
} s_req_t;

struct pf_client {
    void *zctx;
    void *sock;
    void *mon;
    /* Both sockets are waited for by their ZMQ_FD descriptors (see
     * s_wait).  unsignaled says that a message may be waiting on sock
     * without its descriptor saying so: after a send (libzmq may have
     * taken the signal while sending), after a message was read, and on
     * a new socket; a read that finds nothing clears it. */
    int sock_fd, mon_fd;
    bool unsignaled;
    unsigned mon_seq;
    char *endpoint;
    pf_curve_keys_t keys;
    char server_key[PF_CURVE_Z85_LEN + 1];
    int timeout_ms;
    int retries;
    bool manual_ack;
    pf_client_log_fn *log_fn;
    void *log_ctx;
    pf_keyset_t *receipt_keys;
    char *issuer;
    char *audience; /* the procedure's own sender name: the receipts' "aud" */
    pf_wire_limits_t lim;
    s_pending_t queue[S_QUEUE_MAX];
    size_t qhead, qlen;
    pf_seen_t seen;
    /* receipt acknowledgements not yet sent: one RACK carries many */
    char rack[PF_WIRE_MAX_RACK][37];
    size_t nrack;
    /* asynchronous submissions (pf_client_submit): in flight, and
     * answered but not yet collected */
    s_req_t *reqs;
    size_t nreqs;
    size_t window;
    pf_client_result_t *ready;
    size_t rhead, rlen;
    char err[256];
};

static void s_log(pf_client_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_log(pf_client_t *c, int level, const char *fmt, ...)
{
    if (c->log_fn == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->log_fn(c->log_ctx, level, line);
}

static int s_fail(pf_client_t *c, const char **error_r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_fail(pf_client_t *c, const char **error_r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    if (error_r)
        *error_r = c->err;
    return rc;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- socket --------------------------------------------------------------- */

static int s_send_out(pf_client_t *c, pf_wire_out_t *out)
{
    c->unsignaled = true;
    for (size_t i = 0; i < out->count; i++) {
        int flags = i + 1 < out->count ? ZMQ_SNDMORE : 0;
        if (zmq_send(c->sock, out->frames[i].data, out->frames[i].size, flags) < 0)
            return -1;
    }
    return 0;
}

static void s_send_simple(pf_client_t *c, pf_wire_cmd_t cmd)
{
    pf_wire_out_t out = {0};
    pf_wire_encode_simple(cmd, &out);
    if (s_send_out(c, &out) != 0)
        s_log(c, 2, "event=send_failed command=%s error=\"%s\"", pf_wire_cmd_name(cmd),
              zmq_strerror(errno));
    pf_wire_out_clear(&out);
}

static void s_monitor_events(pf_client_t *c);

static void s_disconnect(pf_client_t *c)
{
    /* Monitoring stops before the monitor's socket closes: libzmq's I/O
     * thread sends each event to that PAIR socket and, once it has no
     * peer, blocks there for good while holding the lock that
     * zmq_socket_monitor(NULL) takes (libzmq issue 3575).  Closing first
     * hung test_sender_cases in pf_client_destroy, on a client whose
     * refused handshakes made an event every few hundred ms.  What is
     * queued is read off first, so that a full queue cannot block the I/O
     * thread either. */
    if (c->sock) {
        if (c->mon) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            while (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) >= 0)
                ;
            zmq_msg_close(&m);
        }
        zmq_socket_monitor(c->sock, NULL, 0);
    }
    if (c->mon) {
        zmq_close(c->mon);
        c->mon = NULL;
    }
    if (c->sock) {
        zmq_close(c->sock);
        c->sock = NULL;
    }
}

static int s_connect(pf_client_t *c, const char **error_r)
{
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (c->sock == NULL)
        return s_fail(c, error_r, -1, "cannot create socket: %s", zmq_strerror(errno));
    /* unsent requests die with the socket: Lazy Pirate resends them */
    int linger = 0, sndtimeo = c->timeout_ms;
    if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, c->server_key, PF_CURVE_Z85_LEN) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, c->keys.public_key, PF_CURVE_Z85_LEN) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, c->keys.secret_key, PF_CURVE_Z85_LEN) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo)) != 0) {
        s_disconnect(c);
        return s_fail(c, error_r, -1, "cannot configure socket: %s", zmq_strerror(errno));
    }
    size_t fdlen = sizeof(c->sock_fd);
    if (zmq_getsockopt(c->sock, ZMQ_FD, &c->sock_fd, &fdlen) != 0) {
        s_disconnect(c);
        return s_fail(c, error_r, -1, "cannot get the socket's descriptor: %s",
                      zmq_strerror(errno));
    }
    c->unsignaled = true; /* a new pipe signals only after a read found it empty */
    char mon_ep[64];
    snprintf(mon_ep, sizeof(mon_ep), "inproc://pf-client-monitor-%u", ++c->mon_seq);
    if (zmq_socket_monitor(c->sock, mon_ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_DISCONNECTED) == 0) {
        c->mon = zmq_socket(c->zctx, ZMQ_PAIR);
        fdlen = sizeof(c->mon_fd);
        if (c->mon && (zmq_connect(c->mon, mon_ep) != 0 ||
                       zmq_getsockopt(c->mon, ZMQ_FD, &c->mon_fd, &fdlen) != 0)) {
            zmq_close(c->mon);
            c->mon = NULL;
        }
        if (c->mon == NULL) /* no reader: the first event would block libzmq */
            zmq_socket_monitor(c->sock, NULL, 0);
        else
            /* a new pipe signals its reader's descriptor only after a
             * read has found it empty: without this first read the
             * descriptor would stay silent and s_wait miss every event */
            s_monitor_events(c);
    }
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        s_disconnect(c);
        return s_fail(c, error_r, -1, "cannot connect to \"%s\": %s", c->endpoint,
                      zmq_strerror(errno));
    }
    if (c->mon == NULL)
        s_send_simple(c, PF_WIRE_HELLO); /* queued until the handshake is done */
    return 0;
}

static void s_reconnect(pf_client_t *c)
{
    s_disconnect(c);
    const char *err;
    char esc[300];
    if (s_connect(c, &err) != 0)
        s_log(c, 3, "event=reconnect_failed error=\"%s\"", pf_log_escape(err, esc, sizeof(esc)));
}

/* Reads every waiting monitor event and reacts to each.  Reading until
 * nothing is left also makes libzmq take the signal off the monitor's
 * ZMQ_FD, which s_wait polls: the descriptor then signals again only
 * for an event that comes later, so none can sit unread. */
static void s_monitor_events(pf_client_t *c)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&m) >= 6)
            memcpy(&event, zmq_msg_data(&m), sizeof(event));
        bool more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) < 0)
                more = false;
            else
                more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            s_log(c, 0, "event=connected endpoint=%s", c->endpoint);
            s_send_simple(c, PF_WIRE_HELLO);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            s_log(c, 3, "event=refused endpoint=%s error=\"the broker refused our key\"",
                  c->endpoint);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            s_log(c, 1, "event=disconnected endpoint=%s", c->endpoint);
        }
    }
}

/* ---- receipts ----------------------------------------------------------- */

/* Sends the acknowledgements collected so far in one RACK (a broker
 * updates them in one statement, one commit for many receipts). */
static void s_rack_flush(pf_client_t *c)
{
    if (c->nrack == 0)
        return;
    if (c->sock == NULL) {
        /* no socket (a reconnect failed): these acknowledgements are
         * dropped, and the broker sends their receipts again */
        s_log(c, 2, "event=rack_dropped count=%zu", c->nrack);
        c->nrack = 0;
        return;
    }
    const char *jtis[PF_WIRE_MAX_RACK];
    for (size_t i = 0; i < c->nrack; i++)
        jtis[i] = c->rack[i];
    pf_wire_out_t out = {0};
    pf_wire_encode_rack(jtis, c->nrack, &out);
    if (s_send_out(c, &out) != 0)
        s_log(c, 2, "event=rack_failed count=%zu error=\"%s\"", c->nrack, zmq_strerror(errno));
    pf_wire_out_clear(&out);
    c->nrack = 0;
}

/* Queues an acknowledgement; it leaves with the next flush (when the
 * batch is full, before the library waits, when the receipt queue is
 * empty, or when the client is destroyed).  A RACK that is lost only
 * makes the broker send the receipt again, which the jti dedup drops. */
static void s_rack(pf_client_t *c, const char *jti)
{
    for (size_t i = 0; i < c->nrack; i++)
        if (strcmp(c->rack[i], jti) == 0)
            return;
    snprintf(c->rack[c->nrack++], sizeof(c->rack[0]), "%s", jti);
    if (c->nrack == PF_WIRE_MAX_RACK)
        s_rack_flush(c);
}

static void s_enqueue(pf_client_t *c, const char *jti, const char *token)
{
    if (c->qlen == S_QUEUE_MAX) {
        /* not acknowledged, so the broker sends it again later */
        s_log(c, 2, "event=receipt_queue_full jti=%s", jti);
        return;
    }
    s_pending_t *p = &c->queue[(c->qhead + c->qlen++) % S_QUEUE_MAX];
    snprintf(p->jti, sizeof(p->jti), "%s", jti);
    p->token = xstrdup(token);
}

/* Receives one message if one is waiting and files it: receipts into the
 * queue; an ACK/NACK is returned in *m_r (decoded) for the caller.
 * Returns 1 for an ACK/NACK, 0 for anything else (filed or dropped), -1
 * when nothing was waiting.  The frames stay with the caller. */
static int s_receive(pf_client_t *c, pf_wire_msg_t *m_r, zmq_msg_t *frames, size_t *nframes_r)
{
    size_t n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        c->unsignaled = true; /* there may be more behind it */
        more = zmq_msg_more(&m);
        if (n < S_MAX_FRAMES)
            frames[n++] = m;
        else
            zmq_msg_close(&m);
    }
    *nframes_r = n;
    if (n == 0) {
        /* nothing waiting: libzmq has taken the signal off the
         * descriptor, which now signals the next message */
        c->unsignaled = false;
        return -1;
    }
    pf_wire_frame_t wf[S_MAX_FRAMES];
    for (size_t i = 0; i < n; i++)
        wf[i] = (pf_wire_frame_t){zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]), NULL};
    pf_wire_error_t werr;
    if (pf_wire_decode(wf, n, &c->lim, PF_WIRE_TO_CLIENT, m_r, &werr) != 0) {
        s_log(c, 2, "event=bad_message code=%s reason=\"%s\"", werr.code, werr.reason);
        return 0;
    }
    if (m_r->cmd == PF_WIRE_RECEIPT) {
        s_enqueue(c, m_r->jti, m_r->token);
        pf_wire_msg_clear(m_r);
        return 0;
    }
    if (m_r->cmd == PF_WIRE_PONG) {
        pf_wire_msg_clear(m_r);
        return 0;
    }
    return 1; /* ACK or NACK */
}

static bool s_file_answer(pf_client_t *c, const pf_wire_msg_t *m);
static void s_close_frames(zmq_msg_t *frames, size_t n);

/* Reads everything that is waiting (up to a bound, so that a flood cannot
 * keep the caller here): answers into the ready queue, receipts into the
 * receipt queue.  Returns how many messages it read.  Receiving until
 * nothing is left costs libzmq two system calls at the end (a poll of its
 * mailbox and a getpid, its fork check); asking zmq_poll before every
 * message, as this library did, cost that for every message. */
static size_t s_pump(pf_client_t *c)
{
    size_t got = 0;
    while (c->sock != NULL && got < 1024) {
        zmq_msg_t frames[S_MAX_FRAMES];
        size_t nf;
        pf_wire_msg_t m;
        int r = s_receive(c, &m, frames, &nf);
        if (r < 0)
            break;
        got++;
        if (r == 1) {
            if (!s_file_answer(c, &m))
                s_log(c, 1, "event=stale_answer request_id=\"%s\"", m.request_id);
            pf_wire_msg_clear(&m);
        }
        s_close_frames(frames, nf);
    }
    return got;
}

static void s_close_frames(zmq_msg_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}

/* Waits until deadline for socket or monitor activity.  Returns 1 when a
 * message may be waiting on the socket (the caller reads to find out), 0
 * at the deadline, -1 on error.
 *
 * Both sockets are waited for by their ZMQ_FD descriptors with one
 * poll(2).  zmq_poll asks every socket in its set for its state before
 * and after it waits, and polls once more with no timeout first: at
 * least five system calls per wait, two of them per socket (libzmq's
 * command poll and its fork check), and a client in an open loop waits
 * several times per notice.  A descriptor is only a hint: it signals
 * that libzmq has work, not that a message is there, and it does not
 * signal for a message that arrived while a send or a read had libzmq
 * process its commands.  So whenever that may have happened
 * (unsignaled), the socket is asked once (ZMQ_EVENTS), which also
 * re-arms the descriptor when nothing is there. */
static int s_wait(pf_client_t *c, int64_t deadline)
{
    if (c->sock == NULL) {
        /* a reconnect failed (out of file descriptors, say): try again,
         * and wait out the time if it fails again */
        s_reconnect(c);
        if (c->sock == NULL) {
            int64_t left = deadline < 0 ? 1000 : deadline - s_now_ms();
            if (left > 1000)
                left = 1000;
            if (left > 0)
                usleep((useconds_t)left * 1000);
            return 0;
        }
    }
    s_rack_flush(c);
    for (;;) {
        if (c->unsignaled) {
            int events = 0;
            size_t len = sizeof(events);
            if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) != 0)
                return errno == EINTR ? 0 : -1;
            if (events & ZMQ_POLLIN)
                return 1;
            c->unsignaled = false;
        }
        int64_t left = deadline < 0 ? -1 : deadline - s_now_ms();
        if (deadline >= 0 && left < 0)
            left = 0;
        if (left > INT_MAX)
            left = INT_MAX;
        struct pollfd fds[2] = {{.fd = c->sock_fd, .events = POLLIN},
                                {.fd = c->mon ? c->mon_fd : -1, .events = POLLIN}};
        int rc = poll(fds, 2, (int)left);
        if (rc < 0)
            return errno == EINTR ? 0 : -1;
        if (fds[1].revents != 0) {
            s_monitor_events(c); /* a HELLO it sends sets unsignaled */
            continue;
        }
        if (fds[0].revents != 0)
            return 1;
        if (rc == 0)
            return 0;
    }
}

/* ---- public API ----------------------------------------------------------- */

int pf_client_new(const char *endpoint, const char *broker_public_key_file,
                  const char *sender_key_file, pf_client_t **c_r, const char **error_r)
{
    static __thread char err[300];
    const char *e;
    pf_curve_keys_t server, own;
    if (pf_curve_load(broker_public_key_file, false, &server, &e) != 0) {
        snprintf(err, sizeof(err), "%s", e);
        *error_r = err;
        return -1;
    }
    if (pf_curve_load(sender_key_file, true, &own, &e) != 0) {
        snprintf(err, sizeof(err), "%s", e);
        *error_r = err;
        return -1;
    }
    pf_client_t *c = xcalloc(1, sizeof(*c));
    c->endpoint = xstrdup(endpoint);
    c->keys = own;
    memcpy(c->server_key, server.public_key, sizeof(c->server_key));
    pf_curve_keys_clear(&server);
    pf_curve_keys_clear(&own);
    c->timeout_ms = 3000;
    c->retries = 3;
    c->window = S_WINDOW_DEFAULT;
    /* the broker enforces its own (configurable) size limits; the client
     * checks structure and only the absolute caps, so a broker configured
     * for larger notices is not second-guessed here */
    pf_wire_limits_default(&c->lim);
    c->lim.max_header = 64u * 1024 * 1024;
    c->lim.max_attachment = 1024u * 1024 * 1024;
    c->lim.max_total = 1024u * 1024 * 1024;
    c->lim.max_attachments = PF_WIRE_ABS_MAX_ATTACHMENTS;
    c->lim.max_recipients = PF_WIRE_ABS_MAX_RECIPIENTS;
    c->lim.max_body = 64u * 1024 * 1024;
    c->zctx = zmq_ctx_new();
    if (s_connect(c, &e) != 0) {
        snprintf(err, sizeof(err), "%s", e);
        *error_r = err;
        pf_client_destroy(&c);
        return -1;
    }
    *c_r = c;
    return 0;
}

void pf_client_set_timeout(pf_client_t *c, int timeout_ms, int retries)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 3000;
    c->retries = retries >= 0 ? retries : 0;
    if (c->sock)
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &c->timeout_ms, sizeof(c->timeout_ms));
}

void pf_client_set_log(pf_client_t *c, pf_client_log_fn *fn, void *ctx)
{
    c->log_fn = fn;
    c->log_ctx = ctx;
}

int pf_client_set_receipt_keys(pf_client_t *c, const char *jwks_file, const char **error_r)
{
    char *text = NULL;
    size_t len;
    const char *e;
    if (pf_file_read(jwks_file, 1024 * 1024, &text, &len, &e) != 0)
        return s_fail(c, error_r, -1, "cannot read \"%s\": %s", jwks_file, e);
    pf_keyset_t *set = pf_keyset_new();
    int n = pf_keyset_add_jwks(set, text, len, true, &e);
    free(text);
    if (n <= 0) {
        pf_keyset_destroy(&set);
        return s_fail(c, error_r, -1, "\"%s\" holds no usable key: %s", jwks_file,
                      n < 0 ? e : "empty key set");
    }
    pf_keyset_destroy(&c->receipt_keys);
    c->receipt_keys = set;
    return 0;
}

void pf_client_set_receipt_issuer(pf_client_t *c, const char *issuer)
{
    free(c->issuer);
    c->issuer = issuer ? xstrdup(issuer) : NULL;
}

void pf_client_set_receipt_audience(pf_client_t *c, const char *audience)
{
    free(c->audience);
    c->audience = audience ? xstrdup(audience) : NULL;
}

void pf_client_set_manual_ack(pf_client_t *c, bool manual)
{
    c->manual_ack = manual;
}

int pf_client_hello(pf_client_t *c, const char **error_r)
{
    pf_wire_out_t out = {0};
    pf_wire_encode_simple(PF_WIRE_HELLO, &out);
    int rc = s_send_out(c, &out);
    pf_wire_out_clear(&out);
    if (rc != 0)
        return s_fail(c, error_r, -1, "cannot send HELLO: %s", zmq_strerror(errno));
    return 0;
}

static void s_fill_result(const pf_wire_msg_t *m, pf_client_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->request_id = xstrdup(m->request_id);
    if (m->cmd == PF_WIRE_ACK) {
        r->ok = 1;
        r->copy_count = m->copy_count;
        r->copies = xcalloc(m->copy_count ? m->copy_count : 1, sizeof(*r->copies));
        for (size_t i = 0; i < m->copy_count; i++) {
            r->copies[i].recipient = xstrdup(m->copies[i].recipient);
            r->copies[i].message_id = xstrdup(m->copies[i].message_id);
        }
    } else {
        r->code = xstrdup(m->code);
        r->reason = xstrdup(m->reason);
    }
}

/* The codes with which a broker refuses a SEND before it could read its
 * request id (frame count or sizes, the signature, the header's JSON): a
 * NACK with an empty request id and one of these answers our SEND. */
static bool s_pre_parse_code(const char *code)
{
    return strcmp(code, PF_WIRE_E_MALFORMED) == 0 || strcmp(code, PF_WIRE_E_TOO_LARGE) == 0 ||
           strcmp(code, PF_WIRE_E_UNSUPPORTED_VERSION) == 0;
}

/* Encodes a notice as SEND frames; -2 (invalid) with *error_r set. */
static int s_encode(pf_client_t *c, const pf_client_notice_t *n, pf_wire_out_t *out,
                    const char **error_r)
{
    int level = n->required_level ? pf_wire_level_parse(n->required_level) : 1;
    if (level < 0)
        return s_fail(c, error_r, -2, "required_level must be normal, substantiell or hoch");
    pf_wire_attachment_t *atts =
        xcalloc(n->attachment_count ? n->attachment_count : 1, sizeof(*atts));
    for (size_t i = 0; i < n->attachment_count; i++)
        atts[i] = (pf_wire_attachment_t){n->attachments[i].name, n->attachments[i].media_type,
                                         n->attachments[i].data, n->attachments[i].size};
    /* the codec's struct is shared with the decoder, whose arrays are its
     * own; encoding only reads through these pointers */
    pf_wire_send_t s = {.request_id = n->request_id,
                        .recipients = (const char **)n->recipients,
                        .recipient_count = n->recipient_count,
                        .title = n->title,
                        .subject = n->subject,
                        .body = n->body,
                        .reference = n->reference,
                        .read_receipt = n->read_receipt,
                        .level = level,
                        .attachments = atts,
                        .attachment_count = n->attachment_count};
    pf_wire_error_t werr;
    int rc = pf_wire_encode_send(&s, &c->lim, out, &werr);
    free(atts);
    if (rc != 0)
        return s_fail(c, error_r, -2, "%s: %s", werr.code, werr.reason);
    return 0;
}

int pf_client_send(pf_client_t *c, const pf_client_notice_t *n, pf_client_result_t *res_r,
                   const char **error_r)
{
    memset(res_r, 0, sizeof(*res_r));
    if (c->nreqs > 0 || c->rlen > 0)
        return s_fail(c, error_r, -2,
                      "asynchronous submissions are pending: collect them with "
                      "pf_client_poll_result first");
    pf_wire_out_t out = {0};
    int rc = s_encode(c, n, &out, error_r);
    if (rc != 0)
        return rc;

    rc = -1;
    for (int attempt = 0; attempt <= c->retries && rc == -1; attempt++) {
        if (attempt > 0) {
            s_log(c, 2, "event=retry request_id=\"%s\" attempt=%d", n->request_id, attempt + 1);
            s_reconnect(c);
        }
        if (c->sock == NULL || s_send_out(c, &out) != 0) {
            s_log(c, 2, "event=send_failed error=\"%s\"", zmq_strerror(errno));
            continue;
        }
        int64_t deadline = s_now_ms() + c->timeout_ms;
        for (;;) {
            int w = s_wait(c, deadline);
            if (w <= 0)
                break;
            zmq_msg_t frames[S_MAX_FRAMES];
            size_t nf;
            pf_wire_msg_t m;
            if (s_receive(c, &m, frames, &nf) == 1) {
                /* one request at a time per socket, and a fresh socket per
                 * attempt: a NACK without request id (the broker could not
                 * read ours) answers this request too; the broker never
                 * answers HELLO or RACK, so nothing else sends one */
                bool ours =
                    strcmp(m.request_id, n->request_id) == 0 ||
                    (m.cmd == PF_WIRE_NACK && m.request_id[0] == '\0' && s_pre_parse_code(m.code));
                if (ours) {
                    s_fill_result(&m, res_r);
                    rc = 0;
                } else {
                    s_log(c, 1, "event=stale_answer request_id=\"%s\"", m.request_id);
                }
                pf_wire_msg_clear(&m);
            }
            s_close_frames(frames, nf);
            if (rc == 0)
                break;
        }
    }
    pf_wire_out_clear(&out);
    if (rc != 0) {
        /* the next call starts on a fresh connection */
        s_reconnect(c);
        return s_fail(c, error_r, -1, "no answer from %s after %d attempts", c->endpoint,
                      c->retries + 1);
    }
    return 0;
}

/* ---- asynchronous submissions (a window) ---------------------------------- */

static void s_req_free(s_req_t *r)
{
    free(r->request_id);
    pf_wire_out_clear(&r->out);
}

/* Moves an answer into the ready queue; the request leaves the window. */
static void s_ready_push(pf_client_t *c, size_t k, const pf_wire_msg_t *m)
{
    pf_client_result_t *r = &c->ready[(c->rhead + c->rlen++) % S_WINDOW_MAX];
    if (m != NULL) {
        s_fill_result(m, r);
        free(r->request_id);
        r->request_id = xstrdup(c->reqs[k].request_id); /* an id-less NACK has none */
    } else {
        memset(r, 0, sizeof(*r));
        r->request_id = xstrdup(c->reqs[k].request_id);
        r->code = xstrdup("no_answer");
        r->reason = xasprintf("no answer from %s after %d attempts; the outcome is unknown, "
                              "send again with the same request id",
                              c->endpoint, c->reqs[k].attempts);
    }
    s_req_free(&c->reqs[k]);
    c->reqs[k] = c->reqs[--c->nreqs];
}

/* Files an ACK or NACK that answers an asynchronous submission.  Returns
 * false when it answers none (a stale answer). */
static bool s_file_answer(pf_client_t *c, const pf_wire_msg_t *m)
{
    for (size_t k = 0; k < c->nreqs; k++) {
        if (strcmp(c->reqs[k].request_id, m->request_id) == 0) {
            s_ready_push(c, k, m);
            return true;
        }
    }
    /* a NACK the broker sent before it could read the request id: ours
     * only when exactly one submission is in flight; otherwise the one it
     * answers times out and is sent again */
    if (m->cmd == PF_WIRE_NACK && m->request_id[0] == '\0' && s_pre_parse_code(m->code) &&
        c->nreqs == 1) {
        s_ready_push(c, 0, m);
        return true;
    }
    return false;
}

void pf_client_set_window(pf_client_t *c, size_t window)
{
    c->window = window < 1 ? 1 : window > S_WINDOW_MAX ? S_WINDOW_MAX : window;
}

size_t pf_client_in_flight(const pf_client_t *c)
{
    return c->nreqs + c->rlen;
}

int pf_client_submit(pf_client_t *c, const pf_client_notice_t *n, const char **error_r)
{
    if (c->nreqs + c->rlen >= c->window)
        return s_fail(c, error_r, -3, "the window is full: collect results first");
    if (n->request_id == NULL)
        return s_fail(c, error_r, -2, "request_id is required");
    for (size_t k = 0; k < c->nreqs; k++)
        if (strcmp(c->reqs[k].request_id, n->request_id) == 0)
            return s_fail(c, error_r, -2, "request id \"%s\" is already in flight", n->request_id);
    s_req_t r = {0};
    int rc = s_encode(c, n, &r.out, error_r);
    if (rc != 0)
        return rc;
    /* kept for resends after this call, when the caller's attachment
     * buffers may be gone */
    pf_wire_out_own(&r.out);
    if (c->reqs == NULL) {
        c->reqs = xcalloc(S_WINDOW_MAX, sizeof(*c->reqs));
        c->ready = xcalloc(S_WINDOW_MAX, sizeof(*c->ready));
    }
    r.request_id = xstrdup(n->request_id);
    r.deadline = s_now_ms() + c->timeout_ms;
    r.attempts = 1;
    if (c->sock == NULL || s_send_out(c, &r.out) != 0)
        s_log(c, 2, "event=send_failed error=\"%s\"", zmq_strerror(errno)); /* resent later */
    c->reqs[c->nreqs++] = r;
    return 0;
}

/* Lazy Pirate for the whole window: when the oldest submission's answer
 * is overdue, open a fresh socket (nothing stale can arrive on it) and
 * send every submission in flight again, with the same request ids;
 * those that used all their attempts end with "no_answer". */
static void s_window_timeouts(pf_client_t *c)
{
    int64_t now = s_now_ms();
    bool overdue = false;
    for (size_t k = 0; k < c->nreqs && !overdue; k++)
        overdue = c->reqs[k].deadline <= now;
    if (!overdue)
        return;
    for (size_t k = 0; k < c->nreqs;) {
        if (c->reqs[k].deadline <= now && c->reqs[k].attempts > c->retries)
            s_ready_push(c, k, NULL);
        else
            k++;
    }
    s_log(c, 2, "event=retry in_flight=%zu", c->nreqs);
    s_reconnect(c);
    for (size_t k = 0; k < c->nreqs; k++) {
        s_req_t *r = &c->reqs[k];
        r->attempts++;
        r->deadline = now + c->timeout_ms;
        if (c->sock == NULL || s_send_out(c, &r->out) != 0)
            s_log(c, 2, "event=send_failed error=\"%s\"", zmq_strerror(errno));
    }
}

int pf_client_poll_result(pf_client_t *c, int timeout_ms, pf_client_result_t *res_r,
                          const char **error_r)
{
    memset(res_r, 0, sizeof(*res_r));
    int64_t deadline = timeout_ms < 0 ? -1 : s_now_ms() + timeout_ms;
    bool pumped = false;
    for (;;) {
        if (c->rlen > 0) {
            *res_r = c->ready[c->rhead];
            memset(&c->ready[c->rhead], 0, sizeof(c->ready[0]));
            c->rhead = (c->rhead + 1) % S_WINDOW_MAX;
            c->rlen--;
            return 1;
        }
        if (c->nreqs == 0)
            return 0;
        s_window_timeouts(c);
        if (c->rlen > 0)
            continue;
        /* what is waiting already needs no wait */
        if (!pumped) {
            pumped = true;
            if (s_pump(c) > 0)
                continue;
        }
        /* wake for the earliest resend as well */
        int64_t until = deadline;
        for (size_t k = 0; k < c->nreqs; k++)
            if (until < 0 || c->reqs[k].deadline < until)
                until = c->reqs[k].deadline;
        int w = s_wait(c, until);
        if (w < 0)
            return s_fail(c, error_r, -1, "cannot wait for answers: %s", zmq_strerror(errno));
        if (w == 0) {
            if (deadline >= 0 && s_now_ms() >= deadline)
                return 0;
            continue;
        }
        s_pump(c);
    }
}

int pf_client_ack_receipt(pf_client_t *c, const char *jti, const char **error_r)
{
    if (jti == NULL || pf_uuid_valid(jti) != 0)
        return s_fail(c, error_r, -1, "not a receipt id");
    pf_seen_entry_t *s = pf_seen_find(&c->seen, jti);
    if (s)
        s->acked = true;
    s_rack(c, jti);
    s_rack_flush(c);
    return 0;
}

/* Claims of a token whose signature is not checked (no keys configured). */
static int s_parse_unverified(const char *token, pf_receipt_t *r)
{
    memset(r, 0, sizeof(*r));
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL)
        return -1;
    unsigned char *payload;
    size_t plen;
    if (pf_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &payload, &plen) != 0)
        return -1;
    json_t *j = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, NULL);
    free(payload);
    int rc = -1;
    json_t *events = json_object_get(j, "events");
    const char *jti = json_string_value(json_object_get(j, "jti"));
    const char *sub = json_string_value(json_object_get(j, "sub"));
    if (!json_is_object(events) || json_object_size(events) != 1 || jti == NULL || sub == NULL ||
        pf_uuid_valid(jti) != 0 || pf_uuid_valid(sub) != 0)
        goto out;
    const char *name = json_object_iter_key(json_object_iter(events));
    json_t *ev = json_object_iter_value(json_object_iter(events));
    const char *prefix = "urn:postfach:event:";
    if (strncmp(name, prefix, strlen(prefix)) != 0 ||
        pf_event_parse(name + strlen(prefix), &r->event) != 0 || !json_is_object(ev))
        goto out;
    snprintf(r->jti, sizeof(r->jti), "%s", jti);
    snprintf(r->message_id, sizeof(r->message_id), "%s", sub);
    const char *txn = json_string_value(json_object_get(j, "txn"));
    const char *aud = json_string_value(json_object_get(j, "aud"));
    const char *mb = json_string_value(json_object_get(ev, "mailbox"));
    r->txn = txn ? xstrdup(txn) : NULL;
    r->sender = aud ? xstrdup(aud) : NULL;
    r->mailbox = mb ? xstrdup(mb) : NULL;
    r->event_time_ms = json_integer_value(json_object_get(ev, "time_ms"));
    rc = 0;
out:
    json_decref(j);
    return rc;
}

size_t pf_client_receipts_queued(const pf_client_t *c)
{
    return c->qlen;
}

int pf_client_next_receipt(pf_client_t *c, int timeout_ms, pf_client_receipt_t *r_r,
                           const char **error_r)
{
    memset(r_r, 0, sizeof(*r_r));
    int64_t deadline = timeout_ms < 0 ? -1 : s_now_ms() + timeout_ms;
    for (;;) {
        while (c->qlen > 0) {
            s_pending_t p = c->queue[c->qhead];
            c->qhead = (c->qhead + 1) % S_QUEUE_MAX;
            c->qlen--;
            pf_seen_entry_t *seen = pf_seen_find(&c->seen, p.jti);
            if (seen != NULL && (seen->acked || !c->manual_ack)) {
                /* a resend: our RACK got lost */
                if (seen->acked)
                    s_rack(c, p.jti);
                free(p.token);
                continue;
            }
            /* else new, or handed out with manual acknowledgement and not
             * acknowledged (the procedure could not store it): out again */
            pf_receipt_t rr;
            const char *e = NULL;
            int ok = c->receipt_keys ? pf_receipt_verify(p.token, strlen(p.token), c->receipt_keys,
                                                         c->issuer, &rr, &e)
                                     : s_parse_unverified(p.token, &rr);
            if (ok == 0 && strcmp(rr.jti, p.jti) != 0) {
                e = "jti of the token differs from the frame";
                pf_receipt_clear(&rr);
                ok = -1;
            }
            if (ok == 0 && c->receipt_keys && c->audience &&
                (e = pf_receipt_check_audience(&rr, c->audience)) != NULL) {
                /* signed by the service, but for another procedure: a
                 * misrouting, or our own name set wrong; either way not
                 * ours to take, and not ours to acknowledge */
                pf_receipt_clear(&rr);
                ok = -1;
            }
            if (ok != 0 && pf_receipt_error_is_config(e)) {
                /* perhaps genuine, and our keys or issuer are out of date:
                 * not acknowledged, so the broker sends it again (after its
                 * retry interval, or at the next HELLO) until they are right */
                s_log(c, 3, "event=receipt_unverifiable jti=%s error=\"%s\" action=\"kept "
                            "unacknowledged: update the receipt keys, issuer or audience\"",
                      p.jti, e);
                free(p.token);
                continue;
            }
            if (ok != 0) {
                /* acknowledged anyway: resending cannot make it valid */
                char esc[300];
                s_log(c, 3, "event=bad_receipt jti=%s error=\"%s\"", p.jti,
                      pf_log_escape(e ? e : "cannot parse", esc, sizeof(esc)));
                (seen ? seen : pf_seen_add(&c->seen, p.jti))->acked = true;
                s_rack(c, p.jti);
                free(p.token);
                continue;
            }
            r_r->jti = xstrdup(rr.jti);
            r_r->event = xstrdup(pf_event_name(rr.event) ? pf_event_name(rr.event) : "?");
            r_r->message_id = xstrdup(rr.message_id);
            r_r->request_id = rr.txn ? xstrdup(rr.txn) : NULL;
            r_r->mailbox = rr.mailbox ? xstrdup(rr.mailbox) : NULL;
            r_r->token = p.token;
            r_r->time_ms = rr.event_time_ms;
            r_r->verified = c->receipt_keys != NULL;
            pf_receipt_clear(&rr);
            pf_seen_entry_t *s = seen ? seen : pf_seen_add(&c->seen, p.jti);
            if (!c->manual_ack) {
                s->acked = true;
                s_rack(c, p.jti);
            }
            /* the last one queued: its acknowledgement leaves now, with
             * those of the receipts that arrived with it (the queue is
             * filled by bursts, everything that was waiting at once) */
            if (c->qlen == 0)
                s_rack_flush(c);
            return 1;
        }
        /* the queue is empty: take what is waiting, and only then wait */
        if (s_pump(c) > 0)
            continue;
        s_rack_flush(c); /* acknowledgements of resends dropped above */
        if (timeout_ms == 0 || (deadline >= 0 && s_now_ms() >= deadline))
            return 0;
        int w = s_wait(c, deadline);
        if (w < 0)
            return s_fail(c, error_r, -1, "cannot wait for receipts: %s", zmq_strerror(errno));
        if (w == 0 && deadline >= 0)
            return 0;
    }
}

void pf_client_result_clear(pf_client_result_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->copy_count; i++) {
        free(r->copies[i].recipient);
        free(r->copies[i].message_id);
    }
    free(r->copies);
    free(r->request_id);
    free(r->code);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

void pf_client_receipt_clear(pf_client_receipt_t *r)
{
    if (r == NULL)
        return;
    free(r->jti);
    free(r->event);
    free(r->message_id);
    free(r->request_id);
    free(r->mailbox);
    free(r->token);
    memset(r, 0, sizeof(*r));
}

void pf_client_destroy(pf_client_t **cp)
{
    pf_client_t *c = *cp;
    if (c == NULL)
        return;
    s_rack_flush(c);
    if (c->sock != NULL) {
        /* the last RACK gets a moment to leave (the socket's linger is 0
         * so that a reconnect drops what is stale); without it, the
         * receipts just taken would come again to the next client */
        int linger = S_CLOSE_LINGER_MS;
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
    }
    s_disconnect(c);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    for (size_t k = 0; k < c->nreqs; k++)
        s_req_free(&c->reqs[k]);
    free(c->reqs);
    while (c->rlen > 0) {
        pf_client_result_clear(&c->ready[c->rhead]);
        c->rhead = (c->rhead + 1) % S_WINDOW_MAX;
        c->rlen--;
    }
    free(c->ready);
    while (c->qlen > 0) {
        free(c->queue[c->qhead].token);
        c->qhead = (c->qhead + 1) % S_QUEUE_MAX;
        c->qlen--;
    }
    pf_keyset_destroy(&c->receipt_keys);
    pf_curve_keys_clear(&c->keys);
    free(c->issuer);
    free(c->audience);
    free(c->endpoint);
    free(c);
    *cp = NULL;
}
