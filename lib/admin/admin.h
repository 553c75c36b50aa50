#ifndef PF_ADMIN_ADMIN_H
#define PF_ADMIN_ADMIN_H
/* The administration commands behind postfach-ctl: migrations, service
 * keys, senders, mailboxes and their keys, development tokens, receipt
 * verification.  Each writes its result to ctx->out and returns 0, or -1
 * with *error_r (static or ctx-owned text). */
#include <stdbool.h>
#include <stdio.h>

typedef struct {
    const char *db;   /* libpq connection string */
    const char *keys; /* key directory (see docs/conventions-dev.md) */
    FILE *out;
    char err[512];
} pf_admin_ctx_t;

int pf_admin_migrate(pf_admin_ctx_t *ctx, const char *sql_dir, const char **error_r);
/* dev_idp: also the development identity provider's key (idp.jwk, for
 * `postfach-ctl token`); without it an idp.jwk there is removed. */
int pf_admin_keys_init(pf_admin_ctx_t *ctx, bool dev_idp, const char **error_r);
/* A login of its own for a daemon instance in group "broker", "reader" or
 * "admin" (sql/0008), or for the job that ships the audit, "auditor"
 * (sql/0021); password from a file; created or updated. */
int pf_admin_role_login(pf_admin_ctx_t *ctx, const char *login, const char *group,
                        const char *password_file, const char **error_r);
int pf_admin_sender_add(pf_admin_ctx_t *ctx, const char *name, const char **error_r);
int pf_admin_sender_list(pf_admin_ctx_t *ctx, const char **error_r);
/* Per sender: receipts not yet acknowledged, those of them sent at least
 * once, and the most attempts among them (sql/0023). */
int pf_admin_sender_receipts(pf_admin_ctx_t *ctx, const char **error_r);
int pf_admin_sender_revoke(pf_admin_ctx_t *ctx, const char *name, const char **error_r);
int pf_admin_sender_rotate_key(pf_admin_ctx_t *ctx, const char *name, const char **error_r);
/* Recipient allowlist: limit a sender to mailbox ids (exact, or a prefix
 * ending in "*"); a sender without entries may address every mailbox, so
 * disallow removes the last entry only with allow_all (refused otherwise). */
int pf_admin_sender_allow(pf_admin_ctx_t *ctx, const char *name, const char *pattern,
                          const char **error_r);
int pf_admin_sender_disallow(pf_admin_ctx_t *ctx, const char *name, const char *pattern,
                             bool allow_all, const char **error_r);
int pf_admin_sender_allowed(pf_admin_ctx_t *ctx, const char *name, const char **error_r);
/* key_type "p256", "rsa3072", "rsa4096" (NULL: p256); public_jwk_file
 * imports a citizen-held key instead (no private key stored); not both. */
int pf_admin_citizen_add(pf_admin_ctx_t *ctx, const char *id, const char *key_type,
                         const char *public_jwk_file, const char **error_r);
/* Adds the next key version.  key_type NULL keeps the type of the current
 * key.  A mailbox whose current key the citizen holds (no stored private
 * key) needs public_jwk_file: it is refused otherwise. */
int pf_admin_citizen_rotate_key(pf_admin_ctx_t *ctx, const char *id, const char *key_type,
                                const char *public_jwk_file, const char **error_r);
int pf_admin_citizen_public_key(pf_admin_ctx_t *ctx, const char *id, const char **error_r);
/* Prints the unwrapped private JWK (needs the KEK): for development and
 * for handing a citizen its own key. version 0 = current. */
int pf_admin_citizen_export_key(pf_admin_ctx_t *ctx, const char *id, int version,
                                const char **error_r);
int pf_admin_token(pf_admin_ctx_t *ctx, const char *subject, const char *level, int ttl,
                   const char **error_r);
/* Verifies a receipt token (file path or "-" for stdin) against
 * keys/receipt.jwks or jwks_file; prints its claims as JSON. */
int pf_admin_receipt_verify(pf_admin_ctx_t *ctx, const char *file, const char *jwks_file,
                            const char **error_r);

/* KEK rotation without downtime: prepends a new KEK to the keyring file
 * (new_id NULL = "kek-<unix time>"), then rewraps every stored private key
 * under it.  Readers reload the keyring when they meet the new id.  Safe to
 * run again after an interruption (it resumes the rewrap). */
int pf_admin_kek_rotate(pf_admin_ctx_t *ctx, const char *new_id, bool rewrap, const char **error_r);
/* Rewraps keys still under older KEKs (the second half of rotate). */
int pf_admin_kek_rewrap(pf_admin_ctx_t *ctx, const char **error_r);
/* Drops an old KEK from the keyring once no stored key uses it. */
int pf_admin_kek_retire(pf_admin_ctx_t *ctx, const char *kek_id, const char **error_r);
/* Prints the keyring's ids and how many keys each wraps. */
int pf_admin_kek_status(pf_admin_ctx_t *ctx, const char **error_r);

#endif
