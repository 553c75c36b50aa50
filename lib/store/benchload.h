#ifndef PF_STORE_BENCHLOAD_H
#define PF_STORE_BENCHLOAD_H
/* The database work of postfach-bench, and nothing the services use:
 * bulk loading of stored copies (COPY ... FORMAT binary, one transaction
 * per batch, durable commits), the same-run ceiling (equally sized rows in
 * large batches into a scratch table shaped like message), and the small
 * queries the set-up needs.
 *
 * A row template (pf_bench_row_t) holds the binary COPY representation of
 * every column of message except mailbox_id, id, created_at and read_at;
 * the copy functions vary mailbox_id and id (a fresh UUIDv7 per row).
 * All functions: 0 ok, -1 with *error_r (see store.h). */
#include "store/store.h"

typedef struct pf_bench_row pf_bench_row_t;

/* The values of a template.  The JWE parts as pf_jwe_t keeps them: the
 * protected header as base64url text, the rest raw bytes. */
typedef struct {
    int64_t sender_id;
    const char *request_id;
    const char *title;
    const char *reference;
    int key_version;
    int64_t size; /* plaintext size, as the broker records it */
    int attachment_count;
    const char *jwe_protected;
    const unsigned char *encrypted_key;
    size_t encrypted_key_len;
    const unsigned char *iv;
    size_t iv_len;
    const unsigned char *ciphertext;
    size_t ciphertext_len;
    const unsigned char *tag;
    size_t tag_len;
} pf_bench_row_values_t;

pf_bench_row_t *pf_bench_row_new(const pf_bench_row_values_t *v);
/* A template equal to a stored copy (found = 1, not found = 0, -1 error). */
int pf_store_bench_row_sample(pf_store_t *st, const char *mailbox_id, const char *message_id,
                              pf_bench_row_t **row_r, const char **error_r);
/* Bytes one row carries (the sum of its column values). */
size_t pf_bench_row_bytes(const pf_bench_row_t *row);
void pf_bench_row_destroy(pf_bench_row_t **row);

/* Loads n copies of row into message, spread round-robin over mailboxes,
 * batch rows per COPY (= per transaction).  progress (may be NULL) is
 * called after every commit with the rows done so far. */
int pf_store_bench_load(pf_store_t *st, const pf_bench_row_t *row, const char *const *mailboxes,
                        size_t nmailboxes, size_t n, size_t batch,
                        void (*progress)(void *ctx, size_t done), void *ctx, const char **error_r);

/* The ceiling: creates (or empties) the scratch table bench_ceiling, shaped
 * like message with its primary key, loads n copies of row (round-robin
 * over the same mailboxes as the run, so the index is hit alike) in batches of
 * batch rows with a durable commit each, drops the table again, and puts
 * the rows per second of the loading alone into *rows_per_s_r. */
int pf_store_bench_ceiling(pf_store_t *st, const pf_bench_row_t *row, const char *const *mailboxes,
                           size_t nmailboxes, size_t n, size_t batch, double *rows_per_s_r,
                           const char **error_r);

/* Number of mailboxes whose id starts with prefix. */
int pf_store_bench_mailbox_count(pf_store_t *st, const char *prefix, int64_t *n_r,
                                 const char **error_r);
/* New mailboxes for the bench, each with key version 1 and, when wrapped
 * is not NULL, its wrapped private key: the same rows as
 * pf_store_mailbox_add_key makes, but n at a time, with one COPY per table
 * in one transaction (a statement per row made a million mailboxes take
 * nine minutes).  All or none of the n are made. */
typedef struct {
    const char *id;
    const char *kid;
    const char *alg;
    const char *public_jwk;
    const char *kek_id;
    const unsigned char *wrapped; /* NULL: the citizen keeps the key */
    size_t wrapped_len;
} pf_bench_mailbox_row_t;

int pf_store_bench_mailboxes_add(pf_store_t *st, const pf_bench_mailbox_row_t *rows, size_t n,
                                 const char **error_r);

/* The server's WAL so far in bytes, the whole cluster (its insert
 * position).  Exact at once, unlike pg_stat_wal's record and full-page
 * image counts, which a session may report only seconds later. */
int pf_store_bench_wal_bytes(pf_store_t *st, double *bytes_r, const char **error_r);

/* Turns synchronous_commit off for this session only: set-up data (test
 * mailboxes) need not survive a crash, and a commit per mailbox would
 * otherwise wait for a WAL flush each.  Never used on a service's session. */
int pf_store_bench_fast_commit(pf_store_t *st, const char **error_r);

#endif
