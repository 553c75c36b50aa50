#ifndef PF_STORE_ADMIN_H
#define PF_STORE_ADMIN_H
/* Senders and mailboxes with their keys: written by postfach-ctl, read by
 * the broker (sender lookup for ZAP, recipient public keys) and the reader
 * (wrapped private keys).  All functions: 0 ok / -1 error with *error_r;
 * lookups return 1 found, 0 not found, -1 error. */
#include "store/store.h"

typedef struct {
    int64_t id;
    char *name;
    char *curve_key; /* Z85 */
    char *status;    /* "active" | "revoked" */
    char *created_at;
} pf_sender_row_t;

int pf_store_sender_add(pf_store_t *st, const char *name, const char *curve_key, int64_t *id_r,
                        const char **error_r);
/* Active sender by CURVE public key (Z85). */
int pf_store_sender_by_key(pf_store_t *st, const char *curve_key, int64_t *id_r, char **name_r,
                           const char **error_r);
int pf_store_sender_by_name(pf_store_t *st, const char *name, pf_sender_row_t *row_r,
                            const char **error_r);
int pf_store_sender_list(pf_store_t *st, pf_sender_row_t **rows_r, size_t *n_r,
                         const char **error_r);
/* Marks the sender revoked; revoking again keeps the first revoked_at. */
int pf_store_sender_revoke(pf_store_t *st, const char *name, const char **error_r);
/* Replaces the CURVE key of a sender (rotation). */
int pf_store_sender_set_key(pf_store_t *st, const char *name, const char *curve_key,
                            const char **error_r);
void pf_sender_row_clear(pf_sender_row_t *row);

/* Each sender's receipts not yet acknowledged (sql/0023): all of them,
 * those sent at least once, and the most attempts among them. */
typedef struct {
    char *name;
    long long unacknowledged, sent;
    int most_attempts;
} pf_sender_backlog_t;

/* Every sender, by name; *rows_r freed with pf_sender_backlog_free. */
int pf_store_sender_backlog(pf_store_t *st, pf_sender_backlog_t **rows_r, size_t *n_r,
                            const char **error_r);
void pf_sender_backlog_free(pf_sender_backlog_t **rows, size_t n);

/* Recipient allowlist of a sender (sql/0007): an exact mailbox id or a
 * prefix ending in "*".  A sender without entries may address everyone. */
int pf_store_sender_allow(pf_store_t *st, const char *name, const char *pattern,
                          const char **error_r);
/* Removes one allowlist entry.  Removing the last one widens the sender to
 * every mailbox, so it happens only with allow_all.  Returns 1 removed,
 * 3 removed the last entry (allow_all), 0 no such entry (or sender), 2
 * refused as the last entry (nothing changed), -1 error. */
int pf_store_sender_disallow(pf_store_t *st, const char *name, const char *pattern, bool allow_all,
                             const char **error_r);
/* Newline-separated patterns (caller frees); "" when unrestricted. */
int pf_store_sender_allowed(pf_store_t *st, const char *name, char **text_r, const char **error_r);

/* Stores key `version` of mailbox id: version 1 creates the mailbox, a
 * higher one adds a key to an existing mailbox, but only while it is still
 * the next version (checked under the mailbox's row lock, so a wrapped key
 * is never stored under another version than the one its wrap context
 * names).  wrapped may be NULL for a citizen who keeps the private key.
 * Returns 0 when stored, 1 when another key version came first (nothing
 * stored), -1 on error. */
int pf_store_mailbox_add_key(pf_store_t *st, const char *mailbox_id, int version, const char *kid,
                             const char *alg, const char *public_jwk, const char *kek_id,
                             const unsigned char *wrapped, size_t wrapped_len,
                             const char **error_r);
/* Current (highest) public key of an open mailbox. */
int pf_store_mailbox_public_key(pf_store_t *st, const char *mailbox_id, int *version_r,
                                char **public_jwk_r, const char **error_r);
/* Wrapped private key of a mailbox key version (found = 1). */
int pf_store_mailbox_secret(pf_store_t *st, const char *mailbox_id, int version, char **kek_id_r,
                            unsigned char **wrapped_r, size_t *len_r, const char **error_r);

/* KEK rotation: wrapped keys not under kek_id, a batch at a time. */
typedef struct {
    char *mailbox_id;
    int version;
    char *kek_id;
    unsigned char *wrapped;
    size_t wrapped_len;
} pf_secret_row_t;
int pf_store_secrets_not_under(pf_store_t *st, const char *kek_id, int limit,
                               pf_secret_row_t **rows_r, size_t *n_r, const char **error_r);
/* Replaces one wrapped key if it is still under old_kek_id; returns 1 when
 * replaced, 0 when the row changed meanwhile, -1 on error. */
int pf_store_secret_rewrap(pf_store_t *st, const pf_secret_row_t *row, const char *new_kek_id,
                           const unsigned char *wrapped, size_t len, const char **error_r);
/* "kek_id count" lines of the wrapped keys per KEK (caller frees). */
int pf_store_kek_usage(pf_store_t *st, char **text_r, const char **error_r);
void pf_secret_row_clear(pf_secret_row_t *row);

#endif
