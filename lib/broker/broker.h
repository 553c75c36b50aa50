#ifndef PF_BROKER_BROKER_H
#define PF_BROKER_BROKER_H
/* postfach-broker as a library: a ZeroMQ ROUTER socket (CURVE server,
 * senders authenticated by a ZAP handler against the sender table) that
 * accepts submissions, encrypts one copy per recipient, stores each batch
 * in one transaction, answers ACK only after COMMIT, and relays receipts
 * from the outbox to the procedures.  cmd/postfach-broker only parses the
 * configuration and calls this. */
#include <stdbool.h>

#include "proto/wire.h"

typedef struct {
    const char *db;                /* libpq connection string */
    const char *bind;              /* e.g. "tcp://127.0.0.1:7400" */
    const char *curve_secret_file; /* the broker's CURVE key pair */
    const char *receipt_key_file;  /* private P-256 JWK signing receipts */
    const char *receipt_issuer;    /* "iss" of receipts */
    bool allow_unsafe_db;          /* start even when the database may lose commits */
    pf_wire_limits_t limits;
    int batch_max;                 /* SENDs per group commit */
    long long batch_max_bytes;     /* plaintext bytes x recipients per batch (and per SEND) */
    int receipt_retry_seconds;     /* resend an unacknowledged receipt after this */
    int receipt_retry_max_seconds; /* ... and after twice as long each further time, up to this */
    int receipt_window;            /* unacknowledged receipts a HELLO makes due at once (more follow
                                      as the procedure acknowledges) */
    bool receipt_direct;      /* send delivered receipts right after COMMIT (else: the relay) */
    int relay_poll_ms;        /* outbox polling interval (NOTIFY only wakes early) */
    int sender_cache_ms;      /* how long a sender lookup is trusted (revocation delay) */
    int heartbeat_ms;         /* ZMTP heartbeats to find dead peers; 0 = off */
    int queue_max;            /* ZMQ_RCVHWM: messages queued per connection before libzmq
                                 stops reading from it (backpressure, never a drop) */
    int busy_after_ms;        /* a backlog older than this is refused with NACK busy */
    int expire_after_seconds; /* an unretrieved copy gets its "expired" receipt after this */
    int expire_poll_ms;       /* how often to look for copies due to expire */
} pf_broker_config_t;

typedef struct pf_broker pf_broker_t;

/* Sets the defaults documented in docs/protocol.md (strings NULL). */
void pf_broker_config_default(pf_broker_config_t *cfg);

/* Loads keys, connects to the database, checks its durability settings,
 * starts the ZAP handler and binds the socket.  Returns 0, or -1 with
 * *error_r (static or thread-local text). */
int pf_broker_new(const pf_broker_config_t *cfg, pf_broker_t **b_r, const char **error_r);
/* Logs "event=ready", then serves until pf_broker_stop.  Returns 0 after a clean stop, -1 on an
 * unrecoverable error (logged). */
int pf_broker_run(pf_broker_t *b);
/* Async-signal-safe: asks pf_broker_run to return.  With NULL (a signal
 * before pf_broker_new returned) it ends a start-up that waits for the
 * database: pf_broker_new then fails with "stopped while waiting". */
void pf_broker_stop(pf_broker_t *b);
void pf_broker_destroy(pf_broker_t **b);

#endif
