#ifndef PF_STORE_RELAY_H
#define PF_STORE_RELAY_H
/* The broker's receipt relay over the outbox table `receipt`: claim due
 * receipts of connected senders, mark acknowledged ones, make a sender's
 * unacknowledged receipts due at once (on HELLO), and the LISTEN/NOTIFY
 * wake-up hint.  Every statement is restricted to the sender ids given by
 * the caller (authenticated by ZAP): a sender never sees or acknowledges
 * another sender's receipts.
 *
 * Returns 0 / -1 (or a count); -1 sets *error_r (the store's buffer). */
#include "store/store.h"

typedef struct {
    char jti[37];
    int64_t sender_id;
    char *token; /* compact JWS */
} pf_relay_receipt_t;

/* Claims up to limit receipts of the given senders that are unacknowledged
 * and due (next_attempt_at <= now()), skipping rows another broker holds
 * locked, and pushes their next_attempt_at retry_seconds ahead (so a lost
 * RECEIPT is resent then).  *rows_r (release with pf_relay_receipts_free),
 * *n_r. */
int pf_store_relay_claim(pf_store_t *st, const int64_t *sender_ids, size_t nsenders, int limit,
                         int retry_seconds, pf_relay_receipt_t **rows_r, size_t *n_r,
                         const char **error_r);
void pf_relay_receipts_free(pf_relay_receipt_t **rows, size_t n);

/* Sets acked_at on the listed receipts (UUID texts, already validated) of
 * this sender that are not acknowledged yet; others' jtis are ignored.
 * Returns the number of rows marked, or -1. */
int pf_store_relay_ack(pf_store_t *st, int64_t sender_id, const char *const *jtis, size_t n,
                       const char **error_r);

/* Makes every unacknowledged receipt of the sender due now (reconnect
 * replay).  Returns the number of rows, or -1. */
int pf_store_relay_replay(pf_store_t *st, int64_t sender_id, const char **error_r);

/* LISTEN postfach_receipt on this connection. */
int pf_store_relay_listen(pf_store_t *st, const char **error_r);
/* Reads what arrived on the socket and drops the notifications: returns
 * how many there were (0 when none), -1 when the connection failed. */
int pf_store_relay_drain(pf_store_t *st, const char **error_r);

#endif
