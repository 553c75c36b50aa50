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

/* Claims receipts of the given senders that are unacknowledged and due
 * (receipt_delivery.next_attempt_at <= now()), each sender's oldest
 * first, at most limit per sender and max_total in all, skipping rows
 * another broker holds locked, and pushes their next_attempt_at ahead (so
 * a lost RECEIPT is resent then): retry_seconds after a receipt's first
 * attempt, twice as long after each further one, never more than
 * retry_max_seconds (nor less than retry_seconds), so a procedure that
 * takes its receipts but never acknowledges them is not sent its whole
 * outbox again every retry_seconds.
 * Fairness under the cap: every sender's first due receipt comes before
 * any sender's second, and so on (so with at most max_total senders each
 * one with due receipts gets some); senders that tie at the cut get their
 * turn in id order from the first id above *after (then from the lowest),
 * and *after is set to the sender of the last row claimed (left alone
 * when none was).  A caller that passes the same variable to every claim
 * (0 at first) goes round the senders: with more senders than max_total,
 * each one with due receipts gets some within ceil(senders / max_total)
 * claims (rows another broker holds aside).  Rows not taken stay due for
 * a later claim.
 * Claims, acknowledgements and replays commit without waiting for the WAL
 * flush (losing one only resends a receipt).  *rows_r (release with
 * pf_relay_receipts_free) in claim order, *n_r; *skipped_r (may be NULL):
 * rows picked but passed over because another broker held or had just
 * claimed them (a claim that skipped some may have left others due). */
int pf_store_relay_claim(pf_store_t *st, const int64_t *sender_ids, size_t nsenders, int limit,
                         int max_total, int retry_seconds, int retry_max_seconds, int64_t *after,
                         pf_relay_receipt_t **rows_r, size_t *n_r, size_t *skipped_r,
                         const char **error_r);
void pf_relay_receipts_free(pf_relay_receipt_t **rows, size_t n);

/* Receipts of one sender acknowledged by one pf_store_relay_ack. */
typedef struct {
    int64_t sender_id;
    int count;
} pf_relay_acked_t;

/* Sets receipt_delivery.acked_at on the listed receipts (UUID texts,
 * already validated), jtis[i] only when it belongs to sender_ids[i] (the
 * sender whose RACK named it), keeping the time of an earlier
 * acknowledgement; other jtis are ignored.  Several senders' RACKs in one
 * statement and one transaction.  *acked_r (free(), may be NULL): per
 * sender with receipts among them, how many, *nacked_r entries.  Returns
 * the number of receipts among them that belong to the sender that named
 * them, or -1. */
int pf_store_relay_ack(pf_store_t *st, const int64_t *sender_ids, const char *const *jtis, size_t n,
                       pf_relay_acked_t **acked_r, size_t *nacked_r, const char **error_r);

/* Gives back claimed receipts that were not sent (the connection's queue
 * was full): unacknowledged ones are due again after delay_ms instead of
 * the claim's retry_seconds, their attempt not counted.  Returns the number
 * of rows, or -1. */
int pf_store_relay_release(pf_store_t *st, const char *const *jtis, size_t n, int delay_ms,
                           const char **error_r);

/* Makes unacknowledged receipts of the sender that are not due yet due
 * now (reconnect replay): at most limit of them, those that would have
 * been due first, skipping rows another broker holds locked.  Returns the
 * number of rows, or -1. */
int pf_store_relay_replay(pf_store_t *st, int64_t sender_id, int limit, const char **error_r);

/* ---- expiry: one "expired" receipt per copy not retrieved in time ---- */
typedef struct {
    char *mailbox_id;
    char message_id[37];
    int64_t sender_id;
    char *sender_name;
    char *request_id;
    char *jwe_tag; /* base64url of the copy's JWE authentication tag */
    int64_t created_ms;
    bool expired; /* not retrieved within the period (else: retrieved in time) */
    /* set by the caller for expired rows before pf_store_expiry_finish */
    char jti[37];
    char *token;
} pf_expiry_t;

/* BEGINs a transaction and claims up to limit copies delivered at least
 * period_seconds ago that were not looked at yet, oldest first, locking
 * them (FOR UPDATE SKIP LOCKED: another broker takes other rows, and a
 * citizen's concurrent first retrieval waits for our COMMIT).  expired
 * tells whether the copy was retrieved within the period (read_at compared
 * with created_at, so the answer does not depend on when we look).  On 0
 * the transaction stays open: finish or abort it.  *rows_r (release with
 * pf_expiry_free), *n_r. */
int pf_store_expiry_claim(pf_store_t *st, int period_seconds, int limit, pf_expiry_t **rows_r,
                          size_t *n_r, const char **error_r);
/* Inserts the "expired" receipts of rows with a token (ON CONFLICT on the
 * outbox's UNIQUE (mailbox, message, event): never a second one), marks
 * every claimed row as looked at, and COMMITs.  Returns the number of
 * receipts inserted, or -1 (rolled back, or outcome unknown when the
 * connection broke: harmless, the rows are simply claimed again). */
int pf_store_expiry_finish(pf_store_t *st, pf_expiry_t *rows, size_t n, const char **error_r);
/* ROLLBACK of a claim (when signing failed). */
void pf_store_expiry_abort(pf_store_t *st);
void pf_expiry_free(pf_expiry_t **rows, size_t n);

/* LISTEN on this connection: postfach_receipt (new receipts to relay)
 * and postfach_mailbox (a mailbox's status or keys changed, sql/0011). */
int pf_store_relay_listen(pf_store_t *st, const char **error_r);
/* What a notification said. */
typedef enum { PF_NOTIFY_RECEIPT, PF_NOTIFY_MAILBOX } pf_notify_kind_t;
typedef void pf_notify_fn(void *arg, pf_notify_kind_t kind, const char *payload);
/* Hands every notification libpq holds to fn, after reading what arrived
 * on the socket when `consume` (libpq also collects notifications while
 * it waits for any query's result, so calling this without consume
 * after a query is cheap and catches those).  Returns how many there
 * were, -1 when the connection failed. */
int pf_store_relay_drain(pf_store_t *st, bool consume, pf_notify_fn *fn, void *arg,
                         const char **error_r);

#endif
