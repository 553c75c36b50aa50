#ifndef PF_STORE_MAILBOX_H
#define PF_STORE_MAILBOX_H
/* The reader's queries: a citizen's listing, one stored copy, and the
 * first-retrieval record with its read receipt.  Every query takes the
 * mailbox id from the verified token and has it in its WHERE clause: a
 * message of another mailbox is indistinguishable from a missing one.
 *
 * Returns: 0 / -1 for actions, 1 found / 0 not found / -1 for lookups.
 * -1 sets *error_r (the store's buffer, see store.h); after -1 check
 * pf_store_broken() to tell a lost connection from a refused query.
 * Times are RFC 3339 text in UTC with milliseconds
 * ("2025-01-31T12:00:00.123Z"). */
#include "store/store.h"

typedef struct {
    char id[37];       /* UUIDv7, lower case */
    char *sender;      /* the sender's name */
    char *title;       /* clear metadata chosen by the sender */
    char *reference;   /* "" when none */
    char *created_at;
    char *read_at;     /* NULL while not retrieved */
    int64_t size;      /* plaintext size as the broker recorded it */
    int attachment_count;
    int required_level; /* 1 normal, 2 substantiell, 3 hoch */
} pf_mailbox_entry_t;

/* One stored copy with everything the reader needs to open it. */
typedef struct {
    pf_mailbox_entry_t meta;
    int64_t sender_id;
    char *request_id; /* the sender's request id: "txn" of the receipt */
    bool read_receipt;
    int key_version;
    /* the JWE parts (only with PF_MESSAGE_JWE) */
    char *jwe_protected; /* base64url text of the protected header */
    unsigned char *encrypted_key;
    size_t encrypted_key_len;
    unsigned char *iv;
    size_t iv_len;
    unsigned char *ciphertext;
    size_t ciphertext_len;
    unsigned char *tag;
    size_t tag_len;
    /* the wrapped private key of key_version (only with PF_MESSAGE_SECRET;
     * NULL when the citizen keeps the private key) */
    char *kek_id;
    unsigned char *wrapped_key;
    size_t wrapped_key_len;
} pf_mailbox_message_t;

/* What pf_store_message_get fetches beyond the metadata. */
#define PF_MESSAGE_JWE 1u    /* the JWE parts (the large part of the row) */
#define PF_MESSAGE_SECRET 3u /* and the wrapped key to open them, in the same query */

/* Newest first: up to limit entries of mailbox_id with an id below
 * before_id (NULL = from the newest).  *rows_r (release with
 * pf_mailbox_entries_free) and *n_r. */
int pf_store_mailbox_list(pf_store_t *st, const char *mailbox_id, const char *before_id,
                          int limit, pf_mailbox_entry_t **rows_r, size_t *n_r,
                          const char **error_r);
void pf_mailbox_entries_free(pf_mailbox_entry_t **rows, size_t n);

/* One copy of mailbox_id, with what `what` asks for (0, PF_MESSAGE_JWE or
 * PF_MESSAGE_SECRET).  Release with pf_mailbox_message_clear. */
int pf_store_message_get(pf_store_t *st, const char *mailbox_id, const char *message_id,
                         unsigned what, pf_mailbox_message_t *m_r, const char **error_r);
void pf_mailbox_message_clear(pf_mailbox_message_t *m);

/* The first retrieval, in one statement (one implicit transaction): sets
 * read_at to read_ms (milliseconds since the epoch, the reader's clock)
 * when it is still NULL and, only then and only when token is not NULL,
 * stores the read receipt (jti, token) in the outbox; the UNIQUE
 * (mailbox, message, event) constraint is the last guard against a second
 * one.  Returns 1 when this call set read_at, 0 when it was already set
 * (or the row is gone), -1 on error.  *read_at_r (caller frees) and
 * *read_ms_r get the stored read time when the row exists; *read_at_r is
 * NULL when it does not.
 * Returns 2, setting nothing, when the copy's "expired" receipt was
 * committed before this call got the row (the expiry decided it unread at
 * the end of the period), unless late: read_ms, taken before, might lie
 * inside the period and contradict that receipt.  *read_ms_r is then the
 * database's clock, after the expiry's decision: sign with it and call
 * again with late. */
int pf_store_message_record_read(pf_store_t *st, const char *mailbox_id, const char *message_id,
                                 int64_t read_ms, bool late, const char *jti, const char *token,
                                 char **read_at_r, int64_t *read_ms_r, const char **error_r);

/* Wakes the broker's receipt relay: a NOTIFY with an empty payload, in a
 * transaction of its own that does not wait for its flush.  For sessions
 * that set postfach.receipt_wake = 'caller' (sql/0012), after the COMMIT
 * of the receipts it is meant for. */
int pf_store_receipts_wake(pf_store_t *st, const char **error_r);

/* A trivial query: does the database answer? */
int pf_store_ping(pf_store_t *st, const char **error_r);

#endif
