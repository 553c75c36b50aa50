#ifndef PF_STORE_SUBMIT_H
#define PF_STORE_SUBMIT_H
/* The broker's write path: a batch of accepted submissions (each with one
 * encrypted copy and one "delivered" receipt per recipient) stored in ONE
 * transaction (group commit), and the idempotency lookups around it.
 *
 * All inputs are borrowed.  Returns 0 / -1 for actions, 1 found / 0 not
 * found / -1 for lookups; -1 sets *error_r (the store's buffer).  After -1
 * check pf_store_broken(): a lost connection during COMMIT leaves the
 * outcome unknown, and the caller settles it with pf_store_submission_get
 * after reconnecting (never by guessing). */
#include "store/store.h"

typedef struct {
    const char *mailbox_id;
    char message_id[37]; /* UUIDv7 */
    int key_version;
    int64_t size; /* plaintext size of the notice document */
    /* JWE parts */
    const char *jwe_protected;
    const unsigned char *encrypted_key;
    size_t encrypted_key_len;
    const unsigned char *iv;
    size_t iv_len;
    const unsigned char *ciphertext;
    size_t ciphertext_len;
    const unsigned char *tag;
    size_t tag_len;
    /* the "delivered" receipt of this copy */
    char receipt_jti[37];
    const char *receipt_token;
} pf_submit_copy_t;

typedef enum {
    PF_SUBMIT_STORED = 1, /* inserted by this batch */
    PF_SUBMIT_EXISTS,     /* (sender, request id) was there already: see existing_* */
} pf_submit_outcome_t;

typedef struct {
    int64_t sender_id;
    const char *request_id;
    const unsigned char *payload_hash; /* 32 bytes */
    const char *ack_json;              /* stored, resent verbatim for repeats */
    const char *title;
    const char *reference;
    int level; /* 1..3 */
    bool read_receipt;
    int attachment_count;
    int64_t created_ms; /* message created_at; also the delivered receipt's time */
    /* > 0: the caller sends the delivered receipts itself right after the
     * COMMIT, so their delivery rows are stored as sent once and due again
     * (for the relay) only after this many seconds; 0: the relay sends
     * them (the trigger's NOTIFY wakes it) */
    int receipt_hold_seconds;
    pf_submit_copy_t *copies;
    size_t copy_count;
    /* out */
    pf_submit_outcome_t outcome;
    char *existing_ack; /* PF_SUBMIT_EXISTS: the stored ACK (caller frees) */
    bool existing_same; /* PF_SUBMIT_EXISTS: stored payload hash equals ours */
} pf_submit_t;

/* Stores the batch in one transaction and waits for the COMMIT: one
 * statement inserts the submission rows (ON CONFLICT DO NOTHING, so a
 * request id stored before, or by a concurrent broker, turns into
 * PF_SUBMIT_EXISTS with existing_* filled in) and the message and receipt
 * rows of the submissions actually inserted.  A (sender, request id)
 * that occurs more than once in the batch is stored once, from its first
 * entry; the later entries come back PF_SUBMIT_EXISTS with the first
 * one's ACK, existing_same telling whether their payload hash matches
 * (exactly as if they had come in a later batch), and none of their
 * copies or receipts is stored.  On -1 nothing is stored (or, when the
 * connection broke during COMMIT, the outcome is unknown). */
int pf_store_submit_batch(pf_store_t *st, pf_submit_t *subs, size_t n, const char **error_r);

/* The asynchronous form on a connection of its own (the broker's commit
 * connections): pf_store_committer_send sends BEGIN, the insert, COMMIT
 * and a pipeline sync without waiting; the caller polls the socket and
 * calls pf_store_committer_poll until it returns 1 (committed: outcome
 * and existing_* set in subs) or -1 (failed; after pf_store_broken() the
 * outcome is unknown, otherwise nothing is stored and the transaction is
 * rolled back).  One batch at a time per committer; subs stays borrowed
 * until the poll returned non-zero. */
typedef struct pf_store_committer pf_store_committer_t;
int pf_store_committer_new(const char *conninfo, pf_store_committer_t **c_r, const char **error_r);
void pf_store_committer_destroy(pf_store_committer_t **c);
/* The connection (for the synchronous calls above: settling, fallback). */
pf_store_t *pf_store_committer_store(pf_store_committer_t *c);
int pf_store_committer_socket(pf_store_committer_t *c);
bool pf_store_committer_busy(const pf_store_committer_t *c);
int pf_store_committer_send(pf_store_committer_t *c, pf_submit_t *subs, size_t n,
                            const char **error_r);
int pf_store_committer_poll(pf_store_committer_t *c, const char **error_r);
/* Reconnects a broken committer; 0 or -1. */
int pf_store_committer_reconnect(pf_store_committer_t *c, const char **error_r);

/* The stored submission of (sender, request id): its payload hash (32
 * bytes) and ACK (caller frees). */
int pf_store_submission_get(pf_store_t *st, int64_t sender_id, const char *request_id,
                            unsigned char hash_r[32], char **ack_r, const char **error_r);

/* pf_store_submission_get for n (sender, request id) pairs in one query:
 * acks_r[i] (caller frees) is NULL when pair i is not stored, else
 * hashes_r[i] holds its payload hash. */
int pf_store_submissions_get(pf_store_t *st, const int64_t *sender_ids,
                             const char *const *request_ids, size_t n,
                             unsigned char (*hashes_r)[32], char **acks_r, const char **error_r);

/* The current (highest-version) public key of each open mailbox among
 * ids[0..n), in one query: versions_r[i] and jwks_r[i] (caller frees) are
 * 0 and NULL when mailbox i does not exist or is closed.  The ids must be
 * valid mailbox ids (pf_wire_mailbox_id_valid). */
int pf_store_recipient_keys(pf_store_t *st, const char *const *ids, size_t n, int *versions_r,
                            char **jwks_r, const char **error_r);

/* A sender by id (the ZAP-authenticated User-Id): its name (caller frees),
 * whether it is active, and its current CURVE public key (Z85, 40
 * characters and a NUL into key_r). */
int pf_store_sender_by_id(pf_store_t *st, int64_t sender_id, char **name_r, bool *active_r,
                          char key_r[41], const char **error_r);

/* Recipient allowlists (sql/0007): a sender with rows in
 * sender_recipient_allow may deliver only to mailboxes that match one of
 * its patterns (an exact mailbox id, or a prefix followed by "*"); a
 * sender without rows may deliver to every mailbox. */
typedef struct {
    int64_t *sender_ids; /* one per row */
    char **patterns;
    size_t n;
} pf_store_allow_t;

/* The allowlist rows of n senders, in one query, into *allow_r (release
 * with pf_store_allow_clear).  Returns 0 or -1. */
int pf_store_sender_allowlists(pf_store_t *st, const int64_t *sender_ids, size_t n,
                               pf_store_allow_t *allow_r, const char **error_r);
void pf_store_allow_clear(pf_store_allow_t *allow);

#endif
