#ifndef POSTFACH_POSTFACH_H
#define POSTFACH_POSTFACH_H
/* libpostfach: the C client library for specialist procedures
 * ("Fachverfahren") that deliver notices into citizens' mailboxes.
 *
 * It speaks the Postfach wire protocol (docs/protocol.md) over a ZeroMQ
 * DEALER socket with CURVE encryption to postfach-broker, retries with the
 * same request id when no answer comes (Lazy Pirate), and hands out the
 * signed receipts (delivered, read, expired, rejected) the broker relays.
 *
 * Conventions
 *   - Functions return 0 (or a count) on success and a negative value on
 *     failure, with *error_r set to a static, lower-case English message
 *     (borrowed; valid until the next call on the same client).  error_r
 *     may be NULL.
 *   - Strings in result structs belong to the caller after a successful
 *     call and are released with the matching _clear function.
 *   - The library never prints; it reports through return values and the
 *     optional log callback.
 *   - A pf_client_t is used from one thread at a time (it owns one socket).
 *   - Receipt acknowledgements (RACK) are collected and sent several in
 *     one message, before the library waits and when no receipt is left
 *     queued; pf_client_ack_receipt sends at once.
 *   - All strings are UTF-8, NUL-terminated. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_client pf_client_t;

typedef struct {
    const char *name;       /* file name shown to the citizen, required */
    const char *media_type; /* e.g. "application/pdf"; NULL = application/octet-stream */
    const void *data;
    size_t size;
} pf_client_attachment_t;

/* One notice to one or more recipients.  All pointers are borrowed for the
 * duration of pf_client_send. */
typedef struct {
    const char *request_id;        /* the sender's own id for this submission, required;
                                      a retry (also after a restart) uses the same one */
    const char *const *recipients; /* mailbox ids, at least one, no duplicates */
    size_t recipient_count;
    const char *title;   /* non-sensitive, shown in the listing unencrypted */
    const char *subject; /* encrypted like everything below */
    const char *body;
    const char *reference; /* Aktenzeichen, may be NULL */
    const pf_client_attachment_t *attachments;
    size_t attachment_count;
    bool read_receipt;          /* ask for a "read" receipt on first retrieval */
    const char *required_level; /* "normal" (NULL = normal) | "substantiell" | "hoch" */
} pf_client_notice_t;

typedef struct {
    char *recipient;
    char *message_id; /* UUIDv7 of this recipient's copy */
} pf_client_copy_t;

/* The broker's answer.  ok = 1: ACK, copies holds one entry per recipient
 * in the order of the request.  ok = 0: NACK, code is machine-readable
 * (see docs/protocol.md: "malformed", "too_large", "unknown_recipient",
 * "conflict", "busy", "temporary", "forbidden", "unsupported_version", ...)
 * and reason is for humans.  "temporary" and "busy" mean: retry later with
 * the same request id. */
typedef struct {
    int ok;
    char *request_id;
    char *code;   /* NULL on ACK */
    char *reason; /* NULL on ACK */
    pf_client_copy_t *copies;
    size_t copy_count;
} pf_client_result_t;

/* A receipt: a Security Event Token (RFC 8417) signed by the service.
 * token is the compact JWS itself, the legal proof; keep it.  The other
 * fields are taken from the token; when receipt keys are set (see
 * pf_client_set_receipt_keys) they come from the verified token and
 * verified is true, otherwise from the unverified payload. */
typedef struct {
    char *jti;        /* unique id of this receipt: apply it once */
    char *event;      /* "delivered" | "read" | "expired" | "rejected" */
    char *message_id; /* the copy it speaks of */
    char *request_id; /* the sender's request id of the submission */
    char *mailbox;    /* recipient */
    char *token;      /* compact JWS */
    int64_t time_ms;  /* when the event happened (Unix ms) */
    bool verified;
} pf_client_receipt_t;

/* Log callback: level 0 debug, 1 info, 2 warn, 3 error; msg is a
 * key=value line without newline (borrowed). */
typedef void pf_client_log_fn(void *ctx, int level, const char *msg);

/* Creates a client and connects (ZeroMQ connects lazily: an unreachable
 * broker is not an error here).
 *   endpoint                e.g. "tcp://127.0.0.1:7400"
 *   broker_public_key_file  a file with a line "public = <Z85>"
 *   sender_key_file         the sender's own key pair ("public = ..." and
 *                           "secret = ..." lines, written by
 *                           `postfach-ctl sender add`)
 * After every completed handshake (the first and each reconnect) the
 * client sends HELLO, so the broker relays pending receipts to it; this
 * happens while the client waits in pf_client_send or
 * pf_client_next_receipt.  A broker that refuses our key never completes
 * the handshake: sends then end with -1 (no answer).
 * Returns 0 and *c_r, or -1 (bad key files, bad endpoint). */
int pf_client_new(const char *endpoint, const char *broker_public_key_file,
                  const char *sender_key_file, pf_client_t **c_r, const char **error_r);

/* Per-attempt answer timeout (default 3000 ms) and number of retries after
 * the first attempt (default 3).  After each timeout the socket is closed
 * and reopened, then the same request is sent again. */
void pf_client_set_timeout(pf_client_t *c, int timeout_ms, int retries);

void pf_client_set_log(pf_client_t *c, pf_client_log_fn *fn, void *ctx);

/* Loads a JWKS (e.g. receipt.jwks) and from then on verifies each receipt
 * before handing it out: receipts that fail verification are logged and
 * not handed out.  A forged or malformed one is acknowledged (resending
 * cannot make it valid); one signed by a key the JWKS does not have, or
 * with another issuer than set, is not, so that the broker sends it again
 * and it arrives once the keys or the issuer are brought up to date
 * (call this again with the new JWKS, then pf_client_hello).  Returns 0 or
 * -1. */
int pf_client_set_receipt_keys(pf_client_t *c, const char *jwks_file, const char **error_r);
/* With receipt keys set, also require this "iss" (copied; NULL = any). */
void pf_client_set_receipt_issuer(pf_client_t *c, const char *issuer);
/* With receipt keys set, also require this "aud": the procedure's own
 * sender name, as the operator registered it (copied; NULL = any).  A
 * verified receipt for another procedure is logged and not acknowledged,
 * like one with a wrong issuer. */
void pf_client_set_receipt_audience(pf_client_t *c, const char *audience);

/* Submits a notice and waits for the broker's answer, retrying with the
 * same request id on timeout.
 *   0   an answer arrived: ACK or NACK in *res_r (release with
 *       pf_client_result_clear)
 *   -1  no answer after all retries (broker down or unreachable, or our
 *       key not accepted): the outcome is unknown; send again later with
 *       the same request id, which is safe
 *   -2  not sent: the notice is invalid (too large, missing fields, bad
 *       UTF-8, ...); *error_r says why
 * Receipts that arrive while waiting are queued for pf_client_next_receipt. */
int pf_client_send(pf_client_t *c, const pf_client_notice_t *n, pf_client_result_t *res_r,
                   const char **error_r);

/* Waits up to timeout_ms (0 = just look, -1 = forever) for the next
 * receipt.  Returns 1 with *r_r filled (release with
 * pf_client_receipt_clear), 0 on timeout, -1 on error.  The receipt is
 * acknowledged to the broker (RACK) as it is handed out, unless manual
 * acknowledgement is on.  Receipts already handed out (same jti) are
 * dropped: the broker delivers at least once; with manual acknowledgement,
 * a receipt handed out but not acknowledged is handed out again when the
 * broker resends it.  The dedup memory holds the
 * last 4096 jtis; store jtis durably if you need more. */
int pf_client_next_receipt(pf_client_t *c, int timeout_ms, pf_client_receipt_t *r_r,
                           const char **error_r);

/* How many receipts have arrived and wait in the library's queue:
 * pf_client_next_receipt hands them out without touching the socket.
 * No I/O; an event loop can call it after every other call to see
 * whether receipts are there to collect. */
size_t pf_client_receipts_queued(const pf_client_t *c);

/* With manual acknowledgement on, pf_client_next_receipt does not RACK;
 * the procedure calls pf_client_ack_receipt once it has stored the
 * receipt durably, and unacknowledged receipts are resent by the broker
 * (after its retry interval, or on the next connect).  Off by default. */
void pf_client_set_manual_ack(pf_client_t *c, bool manual);
int pf_client_ack_receipt(pf_client_t *c, const char *jti, const char **error_r);

/* Asynchronous submission: many notices in flight on one client.
 *
 * A sender that waits for each answer before the next is capped by the
 * round trip and by the broker's commit interval; with a window, the
 * broker stores everything that arrived during one COMMIT in the next
 * (group commit).  pf_client_submit encodes and sends a notice and
 * returns at once; pf_client_poll_result hands out the answers in the
 * order they arrive.  Retries work as in pf_client_send (Lazy Pirate with
 * the same request ids): when the oldest answer is overdue, the socket is
 * reopened and every submission in flight is sent again; one that used
 * all its attempts ends with ok = 0 and code "no_answer" (outcome
 * unknown: send it again later with the same request id, which is safe).
 * Do not mix with pf_client_send while submissions are in flight (it
 * returns -2 then).  Answers that arrive while pf_client_next_receipt
 * waits are kept for pf_client_poll_result. */

/* Largest number of submissions in flight plus answers not yet collected
 * (default 64, at most 4096). */
void pf_client_set_window(pf_client_t *c, size_t window);
/* Submissions in flight plus answers not yet collected. */
size_t pf_client_in_flight(const pf_client_t *c);
/* Queues and sends a notice (all pointers are borrowed for the call
 * only: the library keeps its own copy of the encoded notice, attachment
 * bytes included, for resends).
 *   0   sent (or queued for sending); its answer comes from
 *       pf_client_poll_result
 *   -2  not sent: the notice is invalid, or its request id is in flight
 *   -3  not sent: the window is full; collect results first */
int pf_client_submit(pf_client_t *c, const pf_client_notice_t *n, const char **error_r);
/* Waits up to timeout_ms (0 = just look, -1 = until one is there) for the
 * next answer.  Returns 1 with *res_r filled (release with
 * pf_client_result_clear; request_id says which submission it answers),
 * 0 when none arrived in time or nothing is in flight, -1 on error.
 * Receipts that arrive meanwhile are queued for pf_client_next_receipt. */
int pf_client_poll_result(pf_client_t *c, int timeout_ms, pf_client_result_t *res_r,
                          const char **error_r);

/* Announces the client again (HELLO), e.g. after a long pause: the broker
 * then resends unacknowledged receipts at once, up to its receipt_window
 * of them, and more as these are acknowledged.  Returns 0 or -1. */
int pf_client_hello(pf_client_t *c, const char **error_r);

void pf_client_result_clear(pf_client_result_t *r);
void pf_client_receipt_clear(pf_client_receipt_t *r);
/* Sends the acknowledgements still pending, closes the socket (what has
 * not left after 200 ms is dropped) and frees; accepts NULL and
 * *c == NULL. */
void pf_client_destroy(pf_client_t **c);

#ifdef __cplusplus
}
#endif
#endif
