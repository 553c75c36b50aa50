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
    /* the JWE parts (only when asked for with with_jwe) */
    char *jwe_protected; /* base64url text of the protected header */
    unsigned char *encrypted_key;
    size_t encrypted_key_len;
    unsigned char *iv;
    size_t iv_len;
    unsigned char *ciphertext;
    size_t ciphertext_len;
    unsigned char *tag;
    size_t tag_len;
} pf_mailbox_message_t;

/* Newest first: up to limit entries of mailbox_id with an id below
 * before_id (NULL = from the newest).  *rows_r (release with
 * pf_mailbox_entries_free) and *n_r. */
int pf_store_mailbox_list(pf_store_t *st, const char *mailbox_id, const char *before_id,
                          int limit, pf_mailbox_entry_t **rows_r, size_t *n_r,
                          const char **error_r);
void pf_mailbox_entries_free(pf_mailbox_entry_t **rows, size_t n);

/* One copy of mailbox_id; with_jwe also fetches the JWE parts (the large
 * part of the row).  Release with pf_mailbox_message_clear. */
int pf_store_message_get(pf_store_t *st, const char *mailbox_id, const char *message_id,
                         bool with_jwe, pf_mailbox_message_t *m_r, const char **error_r);
void pf_mailbox_message_clear(pf_mailbox_message_t *m);

/* Inside a transaction the caller opened: sets read_at = now() when it is
 * still NULL.  Returns 1 when this call set it, 0 when it was already set
 * (or the row is gone), -1 on error.  *read_at_r (caller frees) and
 * *read_ms_r get the stored read time in both cases when the row exists;
 * *read_at_r is NULL when it does not. */
int pf_store_message_mark_read(pf_store_t *st, const char *mailbox_id, const char *message_id,
                               char **read_at_r, int64_t *read_ms_r, const char **error_r);

/* Inserts a receipt into the outbox; the UNIQUE (mailbox, message, event)
 * constraint makes a second one for the same event a no-op.  Returns 1
 * inserted, 0 already there, -1 error. */
int pf_store_receipt_add(pf_store_t *st, const char *jti, int64_t sender_id,
                         const char *mailbox_id, const char *message_id, const char *event,
                         const char *token, const char **error_r);

/* A trivial query: does the database answer? */
int pf_store_ping(pf_store_t *st, const char **error_r);

#endif
