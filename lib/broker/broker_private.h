#ifndef PF_BROKER_PRIVATE_H
#define PF_BROKER_PRIVATE_H
/* Shared by the lib/broker modules only. */
#include "broker/broker.h"
#include "broker/routes.h"
#include "crypto/jose.h"
#include "store/store.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* ---- zap.c: the ZAP handler thread ---- */
typedef struct pf_zap pf_zap_t;
/* Binds inproc://zeromq.zap.01 in ctx (must happen before the ROUTER
 * binds, or libzmq lets every CURVE client in) and starts the thread with
 * its own database connection. */
int pf_zap_start(void *ctx, const char *conninfo, int cache_ms, pf_zap_t **zap_r,
                 const char **error_r);
void pf_zap_stop(pf_zap_t **zap);
/* One frame of a ZAP request, borrowed from the caller's message. */
typedef struct {
    const void *data;
    size_t size;
} pf_zap_frame_t;
/* What the handler needs of a well-formed request. */
typedef struct {
    const void *request_id; /* frame 1, borrowed ("" when there is none) */
    size_t request_id_len;
    char key[41]; /* the client's CURVE public key in Z85 ("" when refused) */
} pf_zap_request_t;
/* Checks the n frames of a ZAP request (RFC 27: version, request id,
 * domain, address, identity, mechanism, credentials) without touching a
 * socket or the database.  Well-formed: version "1.0", mechanism "CURVE",
 * exactly seven frames, a 32-byte key.  Returns 0 with req_r filled, or -1
 * with *error_r (static text) saying what is wrong; the request id is set
 * either way, since the reply echoes it even to a malformed request. */
int pf_zap_parse(const pf_zap_frame_t *frames, size_t n, pf_zap_request_t *req_r,
                 const char **error_r);

/* ---- broker.c: state of the main thread ---- */
typedef struct {
    int64_t sender_id;
    char *name;
    bool active;
    char key[41]; /* the sender's current CURVE key (Z85) */
    int64_t checked_ms;
} pf_sender_info_t;

typedef struct {
    char *mailbox;
    int version;
    pf_key_t *key;
} pf_key_entry_t;

struct pf_broker {
    pf_broker_config_t cfg;
    char *db, *bind, *issuer;
    void *zctx, *router;
    pf_zap_t *zap;
    pf_store_t *st;
    bool db_ok;
    int64_t db_retry_ms;
    int db_backoff_ms;
    pf_key_t *receipt_key;
    volatile sig_atomic_t stop;
    pf_routes_t *routes; /* one per connection that spoke (routes.h) */
    pf_sender_info_t *senders;
    size_t nsenders;
    pf_key_entry_t *keys;
    size_t nkeys;
    bool relay_due;
    int64_t relay_after; /* the relay's turn among senders (pf_store_relay_claim) */
    int64_t next_relay_ms;
    int64_t last_relay_ms;
    /* RACKed jtis not yet marked in the database (see s_rack_flush) */
    struct pf_rack_pending *racks;
    size_t nracks;
    size_t rack_jtis;
    int64_t rack_due_ms; /* 0: nothing pending */
    /* overload: since when input has been left waiting after every batch
     * (0 = the last batch took everything) */
    int64_t backlog_since_ms;
    int64_t next_expire_ms;
    /* accept.c: the write pipeline (created on the first SEND) */
    struct pf_accept *acc;
};

/* One SEND of a batch, with the frames it borrows from. */
typedef struct {
    zmq_msg_t *frames; /* frames[0] is the routing id */
    size_t nframes;
    int64_t sender_id;
    pf_wire_msg_t msg;
} pf_broker_send_t;

int64_t pf_broker_now_ms(void);
/* Whether a connection that authenticated with key (Z85) still speaks for
 * sender_id: the sender is active and key is its current one (revoke and
 * rotate-key apply to open connections too, within sender_cache_ms).
 * 1 yes, 0 no, -1 the database cannot tell now. */
int pf_broker_key_current(pf_broker_t *b, int64_t sender_id, const char *key);
/* An outside string (database or libzmq error text, names) escaped for a
 * log value; thread-local, four calls may be used in one log line. */
const char *pf_broker_esc(const char *s);
/* Sends out to the peer with routing id rid; false when it is gone. */
bool pf_broker_reply(pf_broker_t *b, const void *rid, size_t rid_len, pf_wire_out_t *out);
void pf_broker_nack(pf_broker_t *b, const void *rid, size_t rid_len, const char *request_id,
                    const char *code, const char *reason);
/* Whether the sender has a connection receipts can be sent on (it said
 * HELLO on it, and no send to it has failed since). */
bool pf_broker_has_route(const pf_broker_t *b, int64_t sender_id);
/* What became of a RECEIPT (pf_broker_send_receipt). */
typedef enum {
    PF_RECEIPT_SENT,     /* handed to ZeroMQ for the sender's latest connection */
    PF_RECEIPT_NO_ROUTE, /* the sender has no connection (a failed send dropped
                          * the route), or the database cannot tell its key */
    PF_RECEIPT_FULL      /* the connection's queue is full (S_SNDHWM); it keeps
                          * its route */
} pf_receipt_sent_t;
/* Sends one RECEIPT to the sender's latest connection.  Unless SENT, the
 * receipt waits for its next attempt or the sender's next HELLO. */
pf_receipt_sent_t pf_broker_send_receipt(pf_broker_t *b, int64_t sender_id, const char *jti,
                                         const char *token);
/* The sender's name and state, from a cache trusted for sender_cache_ms.
 * Returns 1 (found), 0 (unknown), -1 (database trouble). */
int pf_broker_sender(pf_broker_t *b, int64_t sender_id, const pf_sender_info_t **info_r);
/* Acts on the notifications of the main connection (receipts to relay,
 * changed mailboxes); reads the socket first when consume. */
void pf_broker_notifications(pf_broker_t *b, bool consume);
/* Marks the database connection as failed (reconnect with backoff). */
void pf_broker_db_failed(pf_broker_t *b, const char *what, const char *err);
/* Reconnects now (and LISTENs again); 0 or -1 (then retried with backoff). */
int pf_broker_db_reconnect(pf_broker_t *b);

/* ---- accept.c: a batch of submissions ---- */
/* Validates, encrypts, stores and answers every SEND of the batch.  Every
 * SEND gets exactly one answer (ACK or NACK), or none when the peer is
 * gone. */
void pf_broker_accept_batch(pf_broker_t *b, pf_broker_send_t *items, size_t n);
/* The write pipeline keeps SENDs across loop rounds: it takes the frames
 * and messages of items over (leaving them empty for the caller), seals
 * on worker threads and commits on connections of its own.  The loop
 * polls the descriptors it names (at most 4) and calls progress after
 * every poll; drain finishes and answers what it holds (at stop). */
typedef struct pf_accept pf_accept_t;
int pf_broker_accept_pollitems(pf_broker_t *b, zmq_pollitem_t *items, int max);
void pf_broker_accept_progress(pf_broker_t *b);
bool pf_broker_accept_idle(pf_broker_t *b);
/* Forgets what is cached about the mailbox's current key (NULL: about
 * every mailbox), after a NOTIFY on postfach_mailbox or a reconnect. */
void pf_broker_accept_mailbox_changed(pf_broker_t *b, const char *mailbox);
/* True when the pipeline holds half of what it may (overload). */
bool pf_broker_accept_saturated(pf_broker_t *b);
void pf_broker_accept_drain(pf_broker_t *b);
void pf_broker_accept_destroy(pf_broker_t *b);
/* SHA-256 over a canonical encoding of a submission (field order fixed,
 * every field length-prefixed, attachments by their own SHA-256), so the
 * JSON's key order or whitespace does not make a retry a "conflict". */
void pf_broker_payload_hash(const pf_wire_send_t *s, unsigned char out[32]);

#endif
