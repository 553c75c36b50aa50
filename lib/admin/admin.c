/* postfach-ctl's commands.
 *
 * Callers: cmd/postfach-ctl only.  Secrets (KEK, private keys) are read
 * from and written to files in the key directory with mode 0600, never
 * taken from argv; unwrapped private key material is wiped after use.
 * Input from files (JWKs, receipts) is untrusted and parsed by lib/crypto. */
#include "admin/admin.h"
#include "auth/token.h"
#include "crypto/jose.h"
#include "proto/curve.h"
#include "receipt/receipt.h"
#include "store/admin.h"
#include "store/role.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *s_fail(pf_admin_ctx_t *ctx, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *s_fail(pf_admin_ctx_t *ctx, const char **error_r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    *error_r = ctx->err;
    return ctx->err;
}

static char *s_path(const pf_admin_ctx_t *ctx, const char *name)
{
    return xasprintf("%s/%s", ctx->keys, name);
}

static int s_open(pf_admin_ctx_t *ctx, pf_store_t **st_r, const char **error_r)
{
    return pf_store_open(ctx->db, st_r, error_r);
}

int pf_admin_migrate(pf_admin_ctx_t *ctx, const char *sql_dir, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    int applied = 0, version = 0;
    int rc = pf_store_migrate(st, sql_dir, &applied, error_r);
    if (rc == 0)
        rc = pf_store_schema_version(st, &version, error_r);
    if (rc == 0)
        fprintf(ctx->out, "schema version %d (%d migration%s applied)\n", version, applied,
                applied == 1 ? "" : "s");
    if (rc != 0 && strstr(*error_r, "permission denied") != NULL)
        /* the daemons' and the administration's logins may not change
         * the schema; say who may */
        s_fail(ctx, error_r,
               "%s (migrations need the database owner's login; in compose: docker compose run "
               "--rm init)",
               *error_r);
    else if (rc != 0)
        s_fail(ctx, error_r, "%s", *error_r);
    pf_store_destroy(&st);
    return rc;
}

/* Loads a JWK file (private or public). */
static int s_load_jwk(pf_admin_ctx_t *ctx, const char *path, pf_key_t **key_r, const char **error_r)
{
    char *data;
    size_t len;
    const char *err;
    if (pf_file_read(path, 64 * 1024, &data, &len, &err) != 0) {
        s_fail(ctx, error_r, "cannot read key file \"%s\": %s", path, err);
        return -1;
    }
    int rc = pf_key_from_jwk(data, len, key_r, &err);
    pf_wipe(data, len);
    free(data);
    if (rc != 0)
        s_fail(ctx, error_r, "cannot parse key file \"%s\": %s", path, err);
    return rc;
}

/* Writes key as private JWK to name and its public JWKS to name_pub. */
static int s_write_signing_key(pf_admin_ctx_t *ctx, const char *name, const char *name_pub,
                               const char **error_r)
{
    char *path = s_path(ctx, name), *pub_path = s_path(ctx, name_pub);
    pf_key_t *key = NULL;
    const char *err;
    int rc = -1;
    if (access(path, F_OK) == 0) {
        fprintf(ctx->out, "kept %s\n", path);
        rc = 0;
        goto out;
    }
    if (pf_key_generate(PF_KEY_P256, &key, &err) != 0) {
        s_fail(ctx, error_r, "cannot generate key: %s", err);
        goto out;
    }
    char *jwk = pf_key_to_jwk(key, true);
    rc = pf_file_write(path, jwk, strlen(jwk), 0600, &err);
    pf_wipe(jwk, strlen(jwk));
    free(jwk);
    if (rc != 0) {
        s_fail(ctx, error_r, "cannot write \"%s\": %s", path, err);
        goto out;
    }
    pf_keyset_t *set = pf_keyset_new();
    pf_keyset_add(set, key, NULL);
    char *jwks = pf_keyset_to_jwks(set);
    pf_keyset_destroy(&set);
    rc = pf_file_write(pub_path, jwks, strlen(jwks), 0644, &err);
    free(jwks);
    if (rc != 0) {
        s_fail(ctx, error_r, "cannot write \"%s\": %s", pub_path, err);
        goto out;
    }
    fprintf(ctx->out, "created %s and %s\n", path, pub_path);
out:
    pf_key_destroy(&key);
    free(path);
    free(pub_path);
    return rc;
}

int pf_admin_keys_init(pf_admin_ctx_t *ctx, bool dev_idp, const char **error_r)
{
    const char *err;
    if (mkdir(ctx->keys, 0700) != 0 && errno != EEXIST)
        return s_fail(ctx, error_r, "cannot create key directory \"%s\"", ctx->keys), -1;
    char *senders = s_path(ctx, "senders");
    if (mkdir(senders, 0700) != 0 && errno != EEXIST) {
        s_fail(ctx, error_r, "cannot create \"%s\"", senders);
        free(senders);
        return -1;
    }
    free(senders);

    char *curve = s_path(ctx, "broker.curve"), *curve_pub = s_path(ctx, "broker.curve.pub");
    int rc = 0;
    if (access(curve, F_OK) == 0) {
        fprintf(ctx->out, "kept %s\n", curve);
    } else {
        char pub[41];
        rc = pf_curve_generate_files(curve, curve_pub, pub, &err);
        if (rc != 0)
            s_fail(ctx, error_r, "cannot create broker key: %s", err);
        else
            fprintf(ctx->out, "created %s (public key %s)\n", curve, pub);
    }
    free(curve);
    free(curve_pub);
    if (rc != 0)
        return -1;

    char *kek = s_path(ctx, "kek");
    if (access(kek, F_OK) == 0) {
        fprintf(ctx->out, "kept %s\n", kek);
    } else {
        /* the KEK id names the key generation; rotation adds a new one */
        char kek_id[32];
        snprintf(kek_id, sizeof(kek_id), "kek-%ld", (long)time(NULL));
        rc = pf_kek_generate_file(kek, kek_id, &err);
        if (rc != 0)
            s_fail(ctx, error_r, "cannot create KEK: %s", err);
        else
            fprintf(ctx->out, "created %s\n", kek);
    }
    free(kek);
    if (rc != 0)
        return -1;
    if (s_write_signing_key(ctx, "receipt.jwk", "receipt.jwks", error_r) != 0)
        return -1;
    if (dev_idp)
        return s_write_signing_key(ctx, "idp.jwk", "idp.jwks", error_r);
    /* a deployment: no development identity key, not even one left from
     * an earlier keys init (whoever reads it can mint any citizen's token) */
    static const char *const dev[] = {"idp.jwk", "idp.jwks"};
    for (size_t i = 0; i < 2; i++) {
        char *path = s_path(ctx, dev[i]);
        if (unlink(path) == 0)
            fprintf(ctx->out, "removed %s (development identity provider)\n", path);
        else if (errno != ENOENT)
            rc = -1, s_fail(ctx, error_r, "cannot remove \"%s\": %s", path, strerror(errno));
        free(path);
    }
    return rc;
}

int pf_admin_role_login(pf_admin_ctx_t *ctx, const char *login, const char *group,
                        const char *password_file, const char **error_r)
{
    static const char *const groups[][2] = {{"broker", "postfach_broker"},
                                            {"reader", "postfach_reader"},
                                            {"admin", "postfach_admin"},
                                            {"auditor", "postfach_auditor"}};
    const char *role = NULL;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strcmp(group, groups[i][0]) == 0)
            role = groups[i][1];
    if (role == NULL)
        return s_fail(ctx, error_r,
                      "unknown group \"%.32s\" (use broker, reader, admin or auditor)", group),
               -1;
    char *pw = NULL;
    size_t len = 0;
    const char *err;
    if (pf_file_read(password_file, 4096, &pw, &len, &err) != 0)
        return s_fail(ctx, error_r, "cannot read the password file \"%s\": %s", password_file, err),
               -1;
    /* as the shell's $(cat FILE) and the postgres image read such files */
    while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
        pw[--len] = '\0';
    int rc = -1;
    pf_store_t *st = NULL;
    if (len == 0 || strlen(pw) != len)
        s_fail(ctx, error_r, "the password file \"%s\" is empty or holds a NUL byte",
               password_file);
    else if (s_open(ctx, &st, error_r) != 0)
        s_fail(ctx, error_r, "%s", *error_r);
    else if ((rc = pf_store_role_login(st, login, role, pw, error_r)) != 0)
        s_fail(ctx, error_r, "cannot set up login %.64s: %s", login, *error_r);
    else
        fprintf(ctx->out, "login %s in %s\n", login, role);
    pf_wipe(pw, len);
    free(pw);
    pf_store_destroy(&st);
    return rc;
}

static int s_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

int pf_admin_sender_add(pf_admin_ctx_t *ctx, const char *name, const char **error_r)
{
    if (!s_valid_name(name))
        return s_fail(ctx, error_r,
                      "invalid sender name \"%.64s\": use 1-64 of a-z 0-9 . _ - (starting with "
                      "a letter or digit)",
                      name),
               -1;
    char *dir = s_path(ctx, "senders");
    mkdir(dir, 0700);
    char *path = xasprintf("%s/%s.curve", dir, name),
         *pub_path = xasprintf("%s/%s.curve.pub", dir, name);
    free(dir);
    const char *err;
    pf_store_t *st = NULL;
    char pub[41];
    int rc = -1;
    if (access(path, F_OK) == 0) {
        s_fail(ctx, error_r, "key file \"%s\" exists already", path);
        goto out;
    }
    if (s_open(ctx, &st, error_r) != 0)
        goto out;
    if (pf_curve_generate_files(path, pub_path, pub, &err) != 0) {
        s_fail(ctx, error_r, "cannot create sender key: %s", err);
        goto out;
    }
    int64_t id;
    if (pf_store_sender_add(st, name, pub, &id, &err) != 0) {
        unlink(path);
        unlink(pub_path);
        s_fail(ctx, error_r, "%s", err);
        goto out;
    }
    fprintf(ctx->out, "sender %s added (id %lld), key %s, public key %s\n", name, (long long)id,
            path, pub);
    rc = 0;
out:
    pf_store_destroy(&st);
    free(path);
    free(pub_path);
    return rc;
}

int pf_admin_sender_list(pf_admin_ctx_t *ctx, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    pf_sender_row_t *rows;
    size_t n;
    int rc = pf_store_sender_list(st, &rows, &n, error_r);
    if (rc == 0) {
        fprintf(ctx->out, "%-6s %-24s %-8s %-20s %s\n", "id", "name", "status", "created",
                "curve public key");
        for (size_t i = 0; i < n; i++) {
            fprintf(ctx->out, "%-6lld %-24s %-8s %-20s %s\n", (long long)rows[i].id, rows[i].name,
                    rows[i].status, rows[i].created_at, rows[i].curve_key);
            pf_sender_row_clear(&rows[i]);
        }
        free(rows);
    } else {
        s_fail(ctx, error_r, "%s", *error_r);
    }
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_sender_receipts(pf_admin_ctx_t *ctx, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    pf_sender_backlog_t *rows;
    size_t n;
    int rc = pf_store_sender_backlog(st, &rows, &n, error_r);
    if (rc == 0) {
        fprintf(ctx->out, "%-24s %14s %14s %13s\n", "name", "unacknowledged", "of them sent",
                "most attempts");
        for (size_t i = 0; i < n; i++)
            fprintf(ctx->out, "%-24s %14lld %14lld %13d\n", rows[i].name, rows[i].unacknowledged,
                    rows[i].sent, rows[i].most_attempts);
        pf_sender_backlog_free(&rows, n);
    } else {
        s_fail(ctx, error_r, "%s", *error_r);
    }
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_sender_revoke(pf_admin_ctx_t *ctx, const char *name, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    int rc = pf_store_sender_revoke(st, name, error_r);
    if (rc == 0)
        fprintf(ctx->out, "sender %s revoked\n", name);
    else
        s_fail(ctx, error_r, "%s", *error_r);
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_sender_rotate_key(pf_admin_ctx_t *ctx, const char *name, const char **error_r)
{
    if (!s_valid_name(name))
        return s_fail(ctx, error_r, "invalid sender name"), -1;
    char *path = xasprintf("%s/senders/%s.curve", ctx->keys, name);
    char *pub_path = xasprintf("%s/senders/%s.curve.pub", ctx->keys, name);
    char *tmp = xasprintf("%s.new", path), *tmp_pub = xasprintf("%s.new", pub_path);
    pf_store_t *st = NULL;
    const char *err;
    char pub[41];
    int rc = -1;
    if (s_open(ctx, &st, error_r) != 0)
        goto out;
    if (pf_curve_generate_files(tmp, tmp_pub, pub, &err) != 0) {
        s_fail(ctx, error_r, "cannot create sender key: %s", err);
        goto out;
    }
    if (pf_store_sender_set_key(st, name, pub, &err) != 0) {
        unlink(tmp);
        unlink(tmp_pub);
        s_fail(ctx, error_r, "%s", err);
        goto out;
    }
    if (rename(tmp, path) != 0 || rename(tmp_pub, pub_path) != 0) {
        s_fail(ctx, error_r, "key changed in the database, but cannot move \"%s\" into place", tmp);
        goto out;
    }
    fprintf(ctx->out, "sender %s has a new key %s (public key %s); the old key is refused now\n",
            name, path, pub);
    rc = 0;
out:
    pf_store_destroy(&st);
    free(path);
    free(pub_path);
    free(tmp);
    free(tmp_pub);
    return rc;
}

static int s_key_kind(const char *type, pf_key_kind_t *kind_r)
{
    if (type == NULL || strcmp(type, "p256") == 0)
        *kind_r = PF_KEY_P256;
    else if (strcmp(type, "rsa3072") == 0)
        *kind_r = PF_KEY_RSA3072;
    else if (strcmp(type, "rsa4096") == 0)
        *kind_r = PF_KEY_RSA4096;
    else
        return -1;
    return 0;
}

/* The key type of a server-held key, to keep it on rotation. */
static const char *s_key_type_of(pf_admin_ctx_t *ctx, const char *jwk, const char **error_r)
{
    pf_key_t *key = NULL;
    const char *err;
    if (pf_key_from_jwk(jwk, strlen(jwk), &key, &err) != 0) {
        s_fail(ctx, error_r, "cannot parse the current public key: %s", err);
        return NULL;
    }
    const char *type = !pf_key_is_rsa(key)        ? "p256"
                       : pf_key_bits(key) >= 4096 ? "rsa4096"
                                                  : "rsa3072";
    pf_key_destroy(&key);
    return type;
}

/* Generates (or imports) a key for mailbox id and stores it as a new
 * mailbox (add_version false) or the next key version.  On rotation
 * without a key type the new key has the type of the current one; a
 * mailbox whose citizen holds the private key gets a new key only from a
 * public JWK, never a server-held one behind the citizen's back. */
static int s_citizen_key(pf_admin_ctx_t *ctx, const char *id, const char *key_type,
                         const char *public_jwk_file, bool add_version, const char **error_r)
{
    pf_key_kind_t kind = PF_KEY_P256;
    pf_key_t *key = NULL, *pub = NULL;
    pf_kek_t *kek = NULL;
    pf_store_t *st = NULL;
    unsigned char *der = NULL, *wrapped = NULL;
    size_t der_len = 0, wrapped_len = 0;
    char *jwk = NULL, *kek_path = NULL, *context = NULL, *cur_jwk = NULL, *cur_kek_id = NULL;
    unsigned char *cur_wrapped = NULL;
    size_t cur_wrapped_len = 0;
    const char *err;
    int rc = -1, version = 0, current = 0;

    if (key_type != NULL && public_jwk_file != NULL)
        return s_fail(ctx, error_r, "give either --key-type or --public-jwk, not both"), -1;
    if (key_type != NULL && s_key_kind(key_type, &kind) != 0)
        return s_fail(ctx, error_r, "unknown key type \"%.32s\" (use p256, rsa3072 or rsa4096)",
                      key_type),
               -1;
    if (s_open(ctx, &st, error_r) != 0)
        goto out;
    if (add_version) {
        int found = pf_store_mailbox_public_key(st, id, &current, &cur_jwk, &err);
        if (found <= 0) {
            s_fail(ctx, error_r, "no open mailbox \"%.128s\"", id);
            goto out;
        }
        found = pf_store_mailbox_secret(st, id, current, &cur_kek_id, &cur_wrapped,
                                        &cur_wrapped_len, &err);
        if (found < 0) {
            s_fail(ctx, error_r, "%s", err);
            goto out;
        }
        if (found == 0 && public_jwk_file == NULL) {
            s_fail(ctx, error_r,
                   "the citizen holds the private key of mailbox \"%.128s\": give the new "
                   "public key with --public-jwk FILE (the service generates no key it could "
                   "read the citizen's notices with)",
                   id);
            goto out;
        }
        if (public_jwk_file == NULL && key_type == NULL) {
            const char *type = s_key_type_of(ctx, cur_jwk, error_r);
            if (type == NULL || s_key_kind(type, &kind) != 0)
                goto out;
        }
    }

    if (public_jwk_file != NULL) {
        if (s_load_jwk(ctx, public_jwk_file, &key, error_r) != 0)
            goto out;
        if (pf_key_is_private(key)) {
            s_fail(ctx, error_r, "\"%s\" holds a private key: import the public key only",
                   public_jwk_file);
            goto out;
        }
        if (pf_key_is_rsa(key) && pf_key_bits(key) < 3072) {
            s_fail(ctx, error_r, "RSA keys for mailboxes need at least 3072 bits");
            goto out;
        }
    } else if (pf_key_generate(kind, &key, &err) != 0) {
        s_fail(ctx, error_r, "cannot generate key: %s", err);
        goto out;
    }
    pub = pf_key_public(key);
    jwk = pf_key_to_jwk(pub, false);
    const char *alg = pf_key_is_rsa(key) ? "RSA-OAEP-256" : "ECDH-ES+A256KW";
    if (public_jwk_file == NULL) {
        kek_path = s_path(ctx, "kek");
        if (pf_kek_load(kek_path, &kek, &err) != 0) {
            s_fail(ctx, error_r, "cannot load KEK \"%s\": %s", kek_path, err);
            goto out;
        }
        if (pf_key_to_der(key, &der, &der_len, &err) != 0) {
            s_fail(ctx, error_r, "cannot encode key: %s", err);
            goto out;
        }
    }
    /* The wrap context names mailbox and version, so the version must be
     * known before the insert: predict the next one from the current one,
     * and let the store insert it only if it is still the next one under
     * the mailbox's row lock; else nothing is stored. */
    version = current + 1;
    context = xasprintf("%s:%d", id, version);
    if (kek != NULL && pf_kek_wrap(kek, context, der, der_len, &wrapped, &wrapped_len, &err) != 0) {
        s_fail(ctx, error_r, "cannot wrap key: %s", err);
        goto out;
    }
    int stored = pf_store_mailbox_add_key(st, id, version, pf_key_kid(pub), alg, jwk,
                                          kek ? pf_kek_id(kek) : NULL, wrapped, wrapped_len, &err);
    if (stored < 0) {
        s_fail(ctx, error_r, "%s", err);
        goto out;
    }
    if (stored == 1) {
        s_fail(ctx, error_r,
               "mailbox \"%.128s\" got key version %d from another change meanwhile; nothing "
               "stored, run the command again",
               id, version);
        goto out;
    }
    fprintf(ctx->out, "mailbox %s key version %d (%s, kid %s)%s\n", id, version, alg,
            pf_key_kid(pub), kek ? "" : ", private key held by the citizen");
    rc = 0;
out:
    if (der) {
        pf_wipe(der, der_len);
        free(der);
    }
    free(wrapped);
    free(jwk);
    free(kek_path);
    free(context);
    free(cur_jwk);
    free(cur_kek_id);
    free(cur_wrapped);
    pf_key_destroy(&key);
    pf_key_destroy(&pub);
    pf_kek_destroy(&kek);
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_citizen_add(pf_admin_ctx_t *ctx, const char *id, const char *key_type,
                         const char *public_jwk_file, const char **error_r)
{
    return s_citizen_key(ctx, id, key_type, public_jwk_file, false, error_r);
}

int pf_admin_citizen_rotate_key(pf_admin_ctx_t *ctx, const char *id, const char *key_type,
                                const char *public_jwk_file, const char **error_r)
{
    return s_citizen_key(ctx, id, key_type, public_jwk_file, true, error_r);
}

int pf_admin_citizen_public_key(pf_admin_ctx_t *ctx, const char *id, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    int version;
    char *jwk = NULL;
    int found = pf_store_mailbox_public_key(st, id, &version, &jwk, error_r);
    pf_store_destroy(&st);
    if (found < 0)
        return s_fail(ctx, error_r, "%s", *error_r), -1;
    if (found == 0)
        return s_fail(ctx, error_r, "no open mailbox \"%.128s\"", id), -1;
    fprintf(ctx->out, "%s\n", jwk);
    free(jwk);
    return 0;
}

int pf_admin_citizen_export_key(pf_admin_ctx_t *ctx, const char *id, int version,
                                const char **error_r)
{
    pf_store_t *st = NULL;
    pf_kek_t *kek = NULL;
    pf_key_t *key = NULL;
    unsigned char *wrapped = NULL, *der = NULL;
    size_t wrapped_len = 0, der_len = 0;
    char *kek_id = NULL, *kek_path = s_path(ctx, "kek"), *context = NULL;
    const char *err;
    int rc = -1;
    if (s_open(ctx, &st, error_r) != 0)
        goto out;
    if (version == 0) {
        char *jwk = NULL;
        int found = pf_store_mailbox_public_key(st, id, &version, &jwk, &err);
        free(jwk);
        if (found <= 0) {
            s_fail(ctx, error_r, "no open mailbox \"%.128s\"", id);
            goto out;
        }
    }
    int found = pf_store_mailbox_secret(st, id, version, &kek_id, &wrapped, &wrapped_len, &err);
    if (found <= 0) {
        s_fail(ctx, error_r, "no stored private key for mailbox \"%.128s\" version %d", id,
               version);
        goto out;
    }
    if (pf_kek_load(kek_path, &kek, &err) != 0) {
        s_fail(ctx, error_r, "cannot load KEK \"%s\": %s", kek_path, err);
        goto out;
    }
    /* after `kek rotate --no-rewrap` the key is still under an older KEK of
     * the ring, not the first */
    const pf_kek_t *under = pf_kek_find(kek, kek_id);
    if (under == NULL) {
        s_fail(ctx, error_r,
               "key is wrapped under KEK \"%s\", which the key file \"%s\" does "
               "not hold",
               kek_id, kek_path);
        goto out;
    }
    context = xasprintf("%s:%d", id, version);
    if (pf_kek_unwrap(under, context, wrapped, wrapped_len, &der, &der_len, &err) != 0 ||
        pf_key_from_der(der, der_len, &key, &err) != 0) {
        s_fail(ctx, error_r, "cannot unwrap key: %s", err);
        goto out;
    }
    char *jwk = pf_key_to_jwk(key, true);
    fprintf(ctx->out, "%s\n", jwk);
    pf_wipe(jwk, strlen(jwk));
    free(jwk);
    rc = 0;
out:
    if (der) {
        pf_wipe(der, der_len);
        free(der);
    }
    free(wrapped);
    free(kek_id);
    free(kek_path);
    free(context);
    pf_key_destroy(&key);
    pf_kek_destroy(&kek);
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_token(pf_admin_ctx_t *ctx, const char *subject, const char *level, int ttl,
                   const char **error_r)
{
    pf_level_t lv = PF_LEVEL_NORMAL;
    if (level != NULL && pf_level_parse(level, &lv) != 0)
        return s_fail(ctx, error_r,
                      "unknown assurance level \"%.32s\" (use normal, substantiell or hoch)",
                      level),
               -1;
    char *path = s_path(ctx, "idp.jwk");
    if (access(path, F_OK) != 0) {
        s_fail(ctx, error_r,
               "no development identity key \"%s\" (a deployment has none: citizens' tokens "
               "come from the identity provider)",
               path);
        free(path);
        return -1;
    }
    pf_key_t *key = NULL;
    int rc = s_load_jwk(ctx, path, &key, error_r);
    free(path);
    if (rc != 0)
        return -1;
    const char *err;
    char *tok = pf_token_mint(key, PF_TOKEN_DEV_ISSUER, PF_TOKEN_DEV_AUDIENCE, subject, lv,
                              (int64_t)time(NULL), ttl, &err);
    pf_key_destroy(&key);
    if (tok == NULL)
        return s_fail(ctx, error_r, "cannot mint token: %s", err), -1;
    fprintf(ctx->out, "%s\n", tok);
    free(tok);
    return 0;
}

int pf_admin_receipt_verify(pf_admin_ctx_t *ctx, const char *file, const char *jwks_file,
                            const char **error_r)
{
    char *tok = NULL, *jwks = NULL,
         *jwks_path = jwks_file ? xstrdup(jwks_file) : s_path(ctx, "receipt.jwks");
    size_t tok_len = 0, jwks_len = 0;
    const char *err;
    int rc = -1;
    pf_keyset_t *set = pf_keyset_new();
    pf_receipt_t r;
    memset(&r, 0, sizeof(r));

    if (file == NULL || strcmp(file, "-") == 0) {
        size_t cap = 4096;
        tok = xmalloc(cap);
        size_t n;
        while ((n = fread(tok + tok_len, 1, cap - tok_len - 1, stdin)) > 0) {
            tok_len += n;
            if (tok_len + 1 == cap) {
                if (cap >= 1024 * 1024)
                    break;
                cap *= 2;
                tok = xrealloc(tok, cap);
            }
        }
        tok[tok_len] = '\0';
    } else if (pf_file_read(file, 1024 * 1024, &tok, &tok_len, &err) != 0) {
        s_fail(ctx, error_r, "cannot read \"%s\": %s", file, err);
        goto out;
    }
    pf_str_rtrim(tok);
    tok_len = strlen(tok);
    if (pf_file_read(jwks_path, 1024 * 1024, &jwks, &jwks_len, &err) != 0) {
        s_fail(ctx, error_r, "cannot read \"%s\": %s", jwks_path, err);
        goto out;
    }
    if (pf_keyset_add_jwks(set, jwks, jwks_len, true, &err) < 0) {
        s_fail(ctx, error_r, "cannot parse \"%s\": %s", jwks_path, err);
        goto out;
    }
    if (pf_receipt_verify(tok, tok_len, set, NULL, &r, &err) != 0) {
        s_fail(ctx, error_r, "receipt not valid: %s", err);
        goto out;
    }
    json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "valid", 1, "jti", r.jti,
                          "event", pf_event_name(r.event), "message_id", r.message_id, "request_id",
                          r.txn ? r.txn : "", "sender", r.sender ? r.sender : "", "mailbox",
                          r.mailbox ? r.mailbox : "", "time_ms", (json_int_t)r.event_time_ms,
                          "jwe_tag", r.jwe_tag ? r.jwe_tag : "");
    char *s = json_dumps(o, JSON_COMPACT);
    fprintf(ctx->out, "%s\n", s);
    free(s);
    json_decref(o);
    rc = 0;
out:
    pf_receipt_clear(&r);
    pf_keyset_destroy(&set);
    free(tok);
    free(jwks);
    free(jwks_path);
    return rc;
}

int pf_admin_kek_rewrap(pf_admin_ctx_t *ctx, const char **error_r)
{
    char *path = s_path(ctx, "kek");
    pf_kek_t *ring = NULL;
    pf_store_t *st = NULL;
    const char *err;
    int rc = -1;
    long done = 0, raced = 0;
    if (pf_kek_load(path, &ring, &err) != 0) {
        s_fail(ctx, error_r, "cannot load KEK \"%s\": %s", path, err);
        goto out;
    }
    if (s_open(ctx, &st, error_r) != 0)
        goto out;
    for (;;) {
        pf_secret_row_t *rows = NULL;
        size_t n = 0;
        if (pf_store_secrets_not_under(st, pf_kek_id(ring), 200, &rows, &n, &err) != 0) {
            s_fail(ctx, error_r, "%s", err);
            goto out;
        }
        int failed = 0;
        for (size_t i = 0; i < n && !failed; i++) {
            pf_secret_row_t *r = &rows[i];
            const pf_kek_t *old = pf_kek_find(ring, r->kek_id);
            unsigned char *der = NULL, *wrapped = NULL;
            size_t der_len = 0, wrapped_len = 0;
            char *context = xasprintf("%s:%d", r->mailbox_id, r->version);
            if (old == NULL) {
                s_fail(ctx, error_r,
                       "mailbox \"%s\" key %d is wrapped under KEK \"%s\", which the key file "
                       "does not hold",
                       r->mailbox_id, r->version, r->kek_id);
                failed = 1;
            } else if (pf_kek_unwrap(old, context, r->wrapped, r->wrapped_len, &der, &der_len,
                                     &err) != 0 ||
                       pf_kek_wrap(ring, context, der, der_len, &wrapped, &wrapped_len, &err) !=
                           0) {
                s_fail(ctx, error_r, "cannot rewrap mailbox \"%s\" key %d: %s", r->mailbox_id,
                       r->version, err);
                failed = 1;
            } else {
                int u = pf_store_secret_rewrap(st, r, pf_kek_id(ring), wrapped, wrapped_len, &err);
                if (u < 0) {
                    s_fail(ctx, error_r, "%s", err);
                    failed = 1;
                } else if (u == 0) {
                    raced++;
                } else {
                    done++;
                }
            }
            if (der) {
                pf_wipe(der, der_len);
                free(der);
            }
            free(wrapped);
            free(context);
        }
        for (size_t i = 0; i < n; i++)
            pf_secret_row_clear(&rows[i]);
        free(rows);
        if (failed)
            goto out;
        if (n == 0)
            break;
        /* a row that changed under us is picked up by the next batch */
        if (raced > 1000) {
            s_fail(ctx, error_r, "rewrap keeps racing with other changes; run it again");
            goto out;
        }
    }
    fprintf(ctx->out, "rewrapped %ld key%s under KEK %s\n", done, done == 1 ? "" : "s",
            pf_kek_id(ring));
    rc = 0;
out:
    pf_kek_destroy(&ring);
    pf_store_destroy(&st);
    free(path);
    return rc;
}

int pf_admin_kek_rotate(pf_admin_ctx_t *ctx, const char *new_id, bool rewrap, const char **error_r)
{
    char *path = s_path(ctx, "kek"), idbuf[32];
    const char *err;
    if (new_id == NULL) {
        snprintf(idbuf, sizeof(idbuf), "kek-%ld", (long)time(NULL));
        new_id = idbuf;
    }
    int rc = pf_kek_rotate_file(path, new_id, &err);
    if (rc != 0)
        s_fail(ctx, error_r, "cannot rotate KEK in \"%s\": %s", path, err);
    else
        fprintf(ctx->out, "KEK %s is current in %s; older KEKs stay for unwrapping\n", new_id,
                path);
    free(path);
    if (rc != 0)
        return -1;
    if (!rewrap) {
        fprintf(ctx->out, "copy %s/kek to every reader host, then run: postfach-ctl kek rewrap\n",
                ctx->keys);
        return 0;
    }
    return pf_admin_kek_rewrap(ctx, error_r);
}

int pf_admin_kek_retire(pf_admin_ctx_t *ctx, const char *kek_id, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    char *usage = NULL;
    const char *err;
    int rc = pf_store_kek_usage(st, &usage, &err);
    pf_store_destroy(&st);
    if (rc != 0)
        return s_fail(ctx, error_r, "%s", err), -1;
    /* lines are "<id> <count>": refuse while any key is wrapped under it */
    size_t idlen = strlen(kek_id);
    for (const char *l = usage; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
        if (strncmp(l, kek_id, idlen) == 0 && l[idlen] == ' ') {
            s_fail(ctx, error_r, "KEK \"%s\" still wraps %ld key(s): run kek rewrap first", kek_id,
                   strtol(l + idlen + 1, NULL, 10));
            free(usage);
            return -1;
        }
    }
    free(usage);
    char *path = s_path(ctx, "kek");
    rc = pf_kek_retire_file(path, kek_id, &err);
    if (rc != 0)
        s_fail(ctx, error_r, "cannot retire KEK \"%s\": %s", kek_id, err);
    else
        fprintf(ctx->out, "KEK %s removed from %s\n", kek_id, path);
    free(path);
    return rc;
}

int pf_admin_kek_status(pf_admin_ctx_t *ctx, const char **error_r)
{
    char *path = s_path(ctx, "kek"), *usage = NULL;
    pf_kek_t *ring = NULL;
    pf_store_t *st = NULL;
    const char *err;
    int rc = -1;
    if (pf_kek_load(path, &ring, &err) != 0) {
        s_fail(ctx, error_r, "cannot load KEK \"%s\": %s", path, err);
        goto out;
    }
    if (s_open(ctx, &st, error_r) != 0)
        goto out;
    if (pf_store_kek_usage(st, &usage, &err) != 0) {
        s_fail(ctx, error_r, "%s", err);
        goto out;
    }
    fprintf(ctx->out, "current KEK: %s\nwrapped keys per KEK:\n%s", pf_kek_id(ring), usage);
    rc = 0;
out:
    free(usage);
    free(path);
    pf_kek_destroy(&ring);
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_sender_allow(pf_admin_ctx_t *ctx, const char *name, const char *pattern,
                          const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    int rc = pf_store_sender_allow(st, name, pattern, error_r);
    if (rc == 0)
        fprintf(ctx->out, "sender %s may address %s\n", name, pattern);
    else
        s_fail(ctx, error_r, "%s", *error_r);
    pf_store_destroy(&st);
    return rc;
}

int pf_admin_sender_disallow(pf_admin_ctx_t *ctx, const char *name, const char *pattern,
                             bool allow_all, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    int rc = pf_store_sender_disallow(st, name, pattern, allow_all, error_r);
    if (rc == 1 || rc == 3)
        fprintf(ctx->out, "removed %s from the allowlist of %s%s\n", pattern, name,
                rc == 3 ? "; it was the last entry: the sender may address every mailbox now" : "");
    else if (rc == 0)
        s_fail(ctx, error_r, "sender %s has no allowlist entry \"%s\"", name, pattern);
    else if (rc == 2)
        s_fail(ctx, error_r,
               "\"%s\" is the last allowlist entry of sender %s: without entries the sender "
               "may address every mailbox; nothing changed (to allow that, add --allow-all; to "
               "stop the sender, use sender revoke)",
               pattern, name);
    else
        s_fail(ctx, error_r, "%s", *error_r);
    pf_store_destroy(&st);
    return rc == 1 || rc == 3 ? 0 : -1;
}

int pf_admin_sender_allowed(pf_admin_ctx_t *ctx, const char *name, const char **error_r)
{
    pf_store_t *st;
    if (s_open(ctx, &st, error_r) != 0)
        return -1;
    char *text = NULL;
    int rc = pf_store_sender_allowed(st, name, &text, error_r);
    if (rc == 0)
        fprintf(ctx->out, "%s", *text ? text : "(no allowlist: every mailbox)\n");
    else
        s_fail(ctx, error_r, "%s", *error_r);
    free(text);
    pf_store_destroy(&st);
    return rc;
}
