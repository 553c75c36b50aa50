#ifndef PF_STORE_AUDIT_H
#define PF_STORE_AUDIT_H
/* Reading the administration's audit (sql/0020, chained by sql/0021)
 * through the owner's functions admin_audit_rows and admin_audit_last,
 * which postfach_auditor (and the owner) may call; nobody reads the table
 * itself.  For postfach-ctl audit export and verify. */
#include "store/store.h"

#include <stdint.h>

/* One audit row as the database hands it out: every text as the chain's
 * encoding takes it (at in RFC 3339 UTC with microseconds, detail in
 * jsonb's text form), the hashes in lower-case hex. */
typedef struct {
    int64_t id;
    char *at;
    char *login;
    char *program;
    char *action;
    char *subject;
    char *detail;
    char *prev_hash;
    char *hash;
} pf_audit_row_t;

/* Rows with an id above after, oldest first, at most limit (1..10000).
 * 0 with the rows in *rows_r (caller clears each and frees the array; *n_r
 * 0 at the end), or -1 with *error_r, which says what to do when the login
 * may not read the audit or the schema is older than sql/0021. */
int pf_store_audit_rows(pf_store_t *st, int64_t after, int limit, pf_audit_row_t **rows_r,
                        size_t *n_r, const char **error_r);
/* Where the inserts left the chain's end: the last chained id (0 for
 * none) and its hash in hex (64 characters and a NUL).  -1 with *error_r,
 * also when the database has no end recorded. */
int pf_store_audit_last(pf_store_t *st, int64_t *last_id_r, char last_hash_r[65],
                        const char **error_r);
void pf_audit_row_clear(pf_audit_row_t *row);

#endif
