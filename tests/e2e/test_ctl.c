/* postfach-ctl against a real database: migrations are idempotent, names
 * are checked, keys are stored the way the broker and reader expect them
 * (public JWK in mailbox_key, wrapped private key in mailbox_secret), a
 * citizen-held key has no secret row, and the errors are clear.  A
 * deployment's `keys init --no-dev-idp` leaves no development identity key,
 * and `role login` gives a daemon a login of its own in its group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static int setup(void **state)
{
    static const char *const citizens[] = {"citizen-a", NULL};
    *state = pf_env_new("ctl", citizens);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    pf_env_t *env = *state;
    pf_env_destroy(&env);
    return 0;
}

static void test_migrate_is_idempotent(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL, *dir = NULL;
    if (asprintf(&dir, "%s/sql", getenv("PF_ROOT") ? getenv("PF_ROOT") : ".") < 0)
        abort();
    assert_int_equal(pf_env_ctl(env, &out, "migrate", "--sql-dir", dir, NULL), 0);
    assert_non_null(strstr(out, "(0 migrations applied)"));
    free(out);
    free(dir);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM schema_migration WHERE version = 1"),
                     1);
}

static void test_sender_names_and_duplicates(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(pf_env_ctl(env, &out, "sender", "add", "Bad Name", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "add", "tax-office", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "add", "dog-registry", NULL), 0);
    assert_non_null(strstr(out, "sender dog-registry added"));
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "list", NULL), 0);
    assert_non_null(strstr(out, "dog-registry"));
    assert_non_null(strstr(out, "tax-office"));
    free(out);
    /* rotation changes the stored key; revocation marks the sender */
    char *before = pf_env_sql(env, "SELECT curve_key FROM sender WHERE name = 'dog-registry'");
    assert_int_equal(pf_env_ctl(env, &out, "sender", "rotate-key", "dog-registry", NULL), 0);
    free(out);
    char *after = pf_env_sql(env, "SELECT curve_key FROM sender WHERE name = 'dog-registry'");
    assert_string_not_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "revoke", "dog-registry", NULL), 0);
    free(out);
    assert_int_equal(pf_env_sql_int(env,
                                    "SELECT count(*) FROM sender WHERE name = 'dog-registry' AND "
                                    "status = 'revoked' AND revoked_at IS NOT NULL"),
                     1);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "revoke", "nobody", NULL), 1);
    free(out);
}

static void test_sender_allowlist(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allowed", "tax-office", NULL), 0);
    assert_non_null(strstr(out, "every mailbox"));
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allow", "tax-office", "bw-*", NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allow", "tax-office", "citizen-a", NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allow", "tax-office", "bad pattern", NULL),
                     1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allow", "nobody", "x", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allowed", "tax-office", NULL), 0);
    assert_string_equal(out, "bw-*\ncitizen-a\n");
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "disallow", "tax-office", "bw-*", NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "disallow", "tax-office", "bw-*", NULL), 1);
    free(out);
    /* removing the last entry would open the sender to every mailbox:
     * refused unless asked for explicitly */
    char *err = NULL;
    assert_int_equal(pf_env_run(env, &out, &err, "postfach-ctl", "--db", pf_env_conninfo(env),
                                "--keys", pf_env_keys(env), "sender", "disallow", "tax-office",
                                "citizen-a", NULL),
                     1);
    assert_non_null(strstr(err, "every mailbox"));
    assert_non_null(strstr(err, "--allow-all"));
    free(out);
    free(err);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM sender_recipient_allow"), 1);
    assert_int_equal(
        pf_env_ctl(env, &out, "sender", "disallow", "tax-office", "citizen-a", "--allow-all", NULL),
        0);
    assert_non_null(strstr(out, "every mailbox"));
    free(out);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM sender_recipient_allow"), 0);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allowed", "tax-office", NULL), 0);
    assert_non_null(strstr(out, "every mailbox"));
    free(out);
}

/* The line of sender `name` in the output of `sender receipts`: its three
 * counts, or a failure when there is none. */
static void s_backlog_line(const char *out, const char *name, long long want_unacked,
                           long long want_sent, int want_most)
{
    char key[64];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *line = strstr(out, key);
    if (line == NULL)
        fail_msg("no line for %s in:\n%s", name, out);
    char got_name[64];
    long long unacked, sent;
    int most;
    assert_int_equal(sscanf(line + 1, "%63s %lld %lld %d", got_name, &unacked, &sent, &most), 4);
    if (unacked != want_unacked || sent != want_sent || most != want_most)
        fail_msg("%s: %lld unacknowledged, %lld sent, most attempts %d; want %lld, %lld, %d", name,
                 unacked, sent, most, want_unacked, want_sent, want_most);
}

/* sender receipts: per sender, the receipts not yet acknowledged, those
 * of them sent at least once, and the most attempts among them; an
 * acknowledged receipt counts nowhere, a sender without any shows zeros. */
static void test_sender_receipts(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(pf_env_ctl(env, &out, "sender", "add", "quiet-agency", NULL), 0);
    free(out);
    /* tax-office: three never sent, two sent twice and five times, one
     * acknowledged after seven attempts */
    char state_[6];
    if (pf_env_sql_state(env,
                         "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, "
                         "token) SELECT gen_random_uuid(), s.id, 'citizen-a', gen_random_uuid(), "
                         "'delivered', 't' || k FROM sender s, generate_series(1, 6) AS g (k) "
                         "WHERE s.name = 'tax-office'; "
                         "UPDATE receipt_delivery d SET attempts = CASE r.token WHEN 't4' THEN 2 "
                         "WHEN 't5' THEN 5 ELSE 7 END, acked_at = CASE r.token WHEN 't6' THEN "
                         "now() END FROM receipt r WHERE r.jti = d.jti AND r.token IN ('t4', "
                         "'t5', 't6')",
                         state_) != 0)
        fail_msg("cannot make receipts: SQLSTATE %s", state_);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "receipts", NULL), 0);
    s_backlog_line(out, "tax-office", 5, 2, 5);
    s_backlog_line(out, "quiet-agency", 0, 0, 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "receipts", "extra", NULL), 2);
    free(out);
}

static void test_citizen_keys(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    /* the harness made citizen-a with P-256; its secret is wrapped */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key k JOIN "
                                         "mailbox_secret s USING (mailbox_id, version) WHERE "
                                         "mailbox_id = 'citizen-a' AND k.alg = 'ECDH-ES+A256KW'"),
                     1);
    /* the wrapped key is not the DER key in clear: no PKCS#8 header */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret WHERE "
                                         "position('\\x308187020100'::bytea in wrapped_key) > 0"),
                     0);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "citizen-a", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "bad id!", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "c-x", "--key-type", "dsa", NULL), 1);
    free(out);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "add", "citizen-r", "--key-type", "rsa3072", NULL), 0);
    assert_non_null(strstr(out, "RSA-OAEP-256"));
    free(out);

    /* export-key gives the private JWK matching the stored public key */
    char *priv = NULL, *pub = NULL;
    assert_int_equal(pf_env_ctl(env, &priv, "citizen", "export-key", "citizen-r", NULL), 0);
    assert_int_equal(pf_env_ctl(env, &pub, "citizen", "public-key", "citizen-r", NULL), 0);
    json_error_t e;
    json_t *jp = json_loads(priv, 0, &e), *ju = json_loads(pub, 0, &e);
    assert_non_null(jp);
    assert_non_null(ju);
    assert_string_equal(json_string_value(json_object_get(jp, "n")),
                        json_string_value(json_object_get(ju, "n")));
    assert_non_null(json_object_get(jp, "d"));
    assert_null(json_object_get(ju, "d"));

    /* a citizen who keeps the private key: import the public JWK only */
    char *path = NULL;
    if (asprintf(&path, "%s/own.jwk", pf_env_dir(env)) < 0)
        abort();
    FILE *fp = fopen(path, "w");
    fputs(pub, fp);
    fclose(fp);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "add", "citizen-own", "--public-jwk", path, NULL), 0);
    free(out);
    assert_int_equal(
        pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret WHERE mailbox_id = 'citizen-own'"),
        0);
    /* importing a private key as "public" is refused */
    fp = fopen(path, "w");
    fputs(priv, fp);
    fclose(fp);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "add", "citizen-own2", "--public-jwk", path, NULL), 1);
    free(out);
    json_decref(jp);
    json_decref(ju);
    free(priv);
    free(pub);
    free(path);

    /* rotation adds version 2; version 1 stays */
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-a", NULL), 0);
    free(out);
    assert_int_equal(
        pf_env_sql_int(env,
                       "SELECT max(version) FROM mailbox_secret WHERE mailbox_id = 'citizen-a'"),
        2);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "export-key", "citizen-a", "--version", "1", NULL), 0);
    free(out);
}

/* Writes the current public JWK of mailbox id to <dir>/name; returns the path. */
static char *s_public_jwk_file(pf_env_t *env, const char *id, const char *name)
{
    char *jwk = NULL, *path = NULL;
    assert_int_equal(pf_env_ctl(env, &jwk, "citizen", "public-key", id, NULL), 0);
    if (asprintf(&path, "%s/%s", pf_env_dir(env), name) < 0)
        abort();
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(jwk, fp);
    fclose(fp);
    free(jwk);
    return path;
}

/* Rotation keeps the key type unless told otherwise, and never gives a
 * mailbox whose citizen holds the private key a key the service holds. */
static void test_citizen_rotate_kind(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "add", "citizen-rsa", "--key-type", "rsa3072", NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-rsa", NULL), 0);
    free(out);
    /* RSA 3072: n is 384 bytes, 512 base64url characters */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key WHERE mailbox_id = "
                                         "'citizen-rsa' AND version = 2 AND alg = 'RSA-OAEP-256' "
                                         "AND length(public_jwk::json->>'n') = 512"),
                     1);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-rsa", "--key-type", "p256", NULL),
        0);
    free(out);
    assert_int_equal(pf_env_sql_int(env,
                                    "SELECT count(*) FROM mailbox_key WHERE mailbox_id = "
                                    "'citizen-rsa' AND version = 3 AND alg = 'ECDH-ES+A256KW'"),
                     1);

    /* a citizen-held key: rotation without a new public key is refused */
    char *held = s_public_jwk_file(env, "citizen-rsa", "held.jwk");
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "add", "citizen-held", "--public-jwk", held, NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-held", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-held", "--key-type",
                                "rsa4096", NULL),
                     1);
    free(out);
    assert_int_equal(
        pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key WHERE mailbox_id = 'citizen-held'"),
        1);
    /* with the citizen's new public key it works, and stores no secret */
    char *next = s_public_jwk_file(env, "citizen-a", "held-next.jwk");
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-held", "--public-jwk", next, NULL),
        0);
    assert_non_null(strstr(out, "held by the citizen"));
    free(out);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key WHERE mailbox_id = "
                                         "'citizen-held' AND version = 2"),
                     1);
    assert_int_equal(
        pf_env_sql_int(env,
                       "SELECT count(*) FROM mailbox_secret WHERE mailbox_id = 'citizen-held'"),
        0);
    free(held);
    free(next);
}

/* Runs postfach-ctl in a child process, so the test can act while it runs. */
static pid_t s_ctl_start(pf_env_t *env, const char *a1, const char *a2, const char *a3)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(pf_env_ctl(env, NULL, a1, a2, a3, NULL));
    return pid;
}

static int s_ctl_wait(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool s_lock_waiter(void *arg)
{
    return pf_env_sql_int(arg, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND wait_event_type = 'Lock'") > 0;
}

/* rotate-key wraps the new private key for "<id>:<version>" before it
 * stores it; when another key version lands in between, nothing may be
 * stored (a blob bound to the wrong version could never be unwrapped). */
static void test_citizen_rotate_race(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "citizen-race", NULL), 0);
    free(out);
    pf_env_session_t *s = pf_env_session_new(env);
    assert_non_null(s);
    assert_int_equal(pf_env_session_exec(s, "BEGIN; SELECT 1 FROM mailbox WHERE id = "
                                            "'citizen-race' FOR UPDATE"),
                     0);
    pid_t pid = s_ctl_start(env, "citizen", "rotate-key", "citizen-race");
    bool waited = pf_test_wait(s_lock_waiter, env, 20000);
    /* another administrator's version 2 commits while ctl waits */
    assert_int_equal(pf_env_session_exec(
                         s, "INSERT INTO mailbox_key (mailbox_id, version, kid, alg, public_jwk) "
                            "SELECT mailbox_id, 2, 'other', alg, public_jwk FROM mailbox_key "
                            "WHERE mailbox_id = 'citizen-race' AND version = 1; COMMIT"),
                     0);
    pf_env_session_destroy(&s);
    assert_int_equal(s_ctl_wait(pid), 1);
    assert_true(waited);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_key WHERE mailbox_id = "
                                         "'citizen-race' AND version > 2"),
                     0);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret WHERE mailbox_id = "
                                         "'citizen-race' AND version > 1"),
                     0);
}

/* After `kek rotate --no-rewrap` the stored keys are still under the old
 * KEK, which stays in the keyring: export finds it there. */
static void test_export_after_rotation_without_rewrap(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(
        pf_env_ctl(env, &out, "kek", "rotate", "--id", "kek-later", "--no-rewrap", NULL), 0);
    free(out);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret WHERE mailbox_id = "
                                         "'citizen-race' AND kek_id <> 'kek-later'"),
                     1);
    /* (version 2 of citizen-race came from another "administrator" above) */
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "export-key", "citizen-race", "--version", "1", NULL), 0);
    assert_non_null(strstr(out, "\"d\""));
    free(out);
    /* a KEK the keyring does not hold is named in the error */
    assert_int_equal(pf_env_sql_int(env, "WITH u AS (UPDATE mailbox_secret SET kek_id = 'gone' "
                                         "WHERE mailbox_id = 'citizen-race' RETURNING 1) "
                                         "SELECT count(*) FROM u"),
                     1);
    char *err = NULL;
    assert_int_equal(pf_env_run(env, &out, &err, "postfach-ctl", "--db", pf_env_conninfo(env),
                                "--keys", pf_env_keys(env), "citizen", "export-key", "citizen-race",
                                "--version", "1", NULL),
                     1);
    assert_non_null(strstr(err, "\"gone\""));
    free(out);
    free(err);
    assert_int_equal(pf_env_ctl(env, &out, "kek", "rewrap", NULL), 1);
    free(out);
}

/* A mistyped or incomplete option is a usage error (exit 2) that changes
 * nothing, never a silent default. */
static void test_usage_errors(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    /* --public-jwk without its file would have made a server-held key */
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "c-opt", "--public-jwk", NULL), 2);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "c-opt", "--public-jwk", "--key-type",
                                "p256", NULL),
                     2);
    free(out);
    /* a misspelt option would have given P-256 */
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "c-opt", "--key-typ", "rsa4096", NULL),
                     2);
    free(out);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "rotate-key", "citizen-a", "--keytype", "rsa4096", NULL),
        2);
    free(out);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM mailbox WHERE id = 'c-opt'"), 0);
    assert_int_equal(
        pf_env_ctl(env, &out, "citizen", "export-key", "citizen-a", "--version", "latest", NULL),
        2);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "allow", "tax-office", "a*", "b*", NULL), 2);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "list", "--all", NULL), 2);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "kek", "rotate", "--no-rewarp", NULL), 2);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "token", "citizen-a", "--ttl", NULL), 2);
    free(out);
    /* the options still work where they belong */
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "c-opt", "--key-type", "p256", NULL),
                     0);
    free(out);
}

/* Revoking twice keeps the time of the first revocation. */
static void test_revoke_keeps_first_time(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(pf_env_ctl(env, &out, "sender", "add", "twice", NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "revoke", "twice", NULL), 0);
    free(out);
    char *first = pf_env_sql(env, "SELECT revoked_at::text FROM sender WHERE name = 'twice'");
    assert_non_null(first);
    assert_int_equal(pf_env_ctl(env, &out, "sender", "revoke", "twice", NULL), 0);
    free(out);
    char *second = pf_env_sql(env, "SELECT revoked_at::text FROM sender WHERE name = 'twice'");
    assert_non_null(second);
    assert_string_equal(first, second);
    free(first);
    free(second);
}

static void test_token_levels(void **state)
{
    pf_env_t *env = *state;
    char *out = NULL;
    assert_int_equal(pf_env_ctl(env, &out, "token", "citizen-a", "--level", "hoch", NULL), 0);
    assert_int_equal((int)(strchr(out, '.') != NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "token", "citizen-a", "--level", "max", NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "bogus", NULL), 2);
    free(out);
}

static bool s_exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int s_ctl_keys(pf_env_t *env, const char *keys, char **out_r, char **err_r, const char *a1,
                      const char *a2, const char *a3)
{
    return pf_env_run(env, out_r, err_r, "postfach-ctl", "--db", pf_env_conninfo(env), "--keys",
                      keys, a1, a2, a3, NULL);
}

static void test_keys_init_without_dev_idp(void **state)
{
    pf_env_t *env = *state;
    char *dir = NULL, *fresh = NULL, *out = NULL, *err = NULL;
    if (asprintf(&dir, "%s/deploy-keys", pf_env_dir(env)) < 0 ||
        asprintf(&fresh, "%s/fresh-keys", pf_env_dir(env)) < 0)
        abort();
    /* a key directory of an earlier deployment, with the development key */
    assert_int_equal(s_ctl_keys(env, dir, &out, NULL, "keys", "init", NULL), 0);
    free(out);
    assert_true(s_exists(dir, "idp.jwk"));
    char *kek_before = NULL;
    if (asprintf(&kek_before, "%s/kek", dir) < 0)
        abort();
    char *kek1 = pf_test_read_file(kek_before, NULL);

    assert_int_equal(s_ctl_keys(env, dir, &out, NULL, "keys", "init", "--no-dev-idp"), 0);
    assert_non_null(strstr(out, "removed"));
    free(out);
    assert_false(s_exists(dir, "idp.jwk"));
    assert_false(s_exists(dir, "idp.jwks"));
    assert_true(s_exists(dir, "broker.curve") && s_exists(dir, "receipt.jwk"));
    char *kek2 = pf_test_read_file(kek_before, NULL);
    assert_string_equal(kek1, kek2); /* the service keys are kept */
    free(kek1);
    free(kek2);
    free(kek_before);

    assert_int_equal(s_ctl_keys(env, dir, &out, &err, "token", "citizen-a", NULL), 1);
    assert_non_null(strstr(err, "no development identity key"));
    free(out);
    free(err);

    /* a new deployment never has one */
    assert_int_equal(s_ctl_keys(env, fresh, &out, NULL, "keys", "init", "--no-dev-idp"), 0);
    free(out);
    assert_true(s_exists(fresh, "kek") && s_exists(fresh, "broker.curve"));
    assert_false(s_exists(fresh, "idp.jwk"));
    assert_false(s_exists(fresh, "idp.jwks"));
    assert_int_equal(s_ctl_keys(env, fresh, &out, NULL, "keys", "init", "--bogus"), 2);
    free(out);
    free(dir);
    free(fresh);
}

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_role_login(void **state)
{
    pf_env_t *env = *state;
    char login[64], pw1[1024], pw2[1024], empty[1024], sql[512];
    snprintf(login, sizeof(login), "pf_t_login_%ld", (long)getpid());
    snprintf(pw1, sizeof(pw1), "%s/pw1", pf_env_dir(env));
    snprintf(pw2, sizeof(pw2), "%s/pw2", pf_env_dir(env));
    snprintf(empty, sizeof(empty), "%s/pw-empty", pf_env_dir(env));
    s_write(pw1, "first-password-0123456789\n");
    s_write(pw2, "second-password-0123456789\n");
    s_write(empty, "\n");
    char *out = NULL;

    assert_int_equal(
        pf_env_ctl(env, &out, "role", "login", login, "reader", "--password-file", pw1, NULL), 0);
    free(out);
    snprintf(sql, sizeof(sql),
             "SELECT rolcanlogin AND rolinherit AND NOT rolsuper AND NOT rolcreaterole"
             " AND NOT rolcreatedb AND NOT rolbypassrls"
             " AND pg_has_role(oid, 'postfach_reader', 'MEMBER')"
             " AND NOT pg_has_role(oid, 'postfach_broker', 'MEMBER')"
             " AND NOT pg_has_role(oid, 'postfach_admin', 'MEMBER')"
             " FROM pg_authid WHERE rolname = '%s'",
             login);
    char *ok = pf_env_sql(env, sql);
    assert_non_null(ok);
    assert_string_equal(ok, "t");
    free(ok);
    /* hashed by ctl: the server never held the password itself */
    char q[256];
    snprintf(q, sizeof(q), "SELECT rolpassword FROM pg_authid WHERE rolname = '%s'", login);
    char *hash1 = pf_env_sql(env, q);
    assert_non_null(hash1);
    assert_true(strncmp(hash1, "SCRAM-SHA-256$", 14) == 0);
    assert_null(strstr(hash1, "first-password"));

    /* again, with a new password, and an attribute and groups it must not keep */
    char alter[128];
    snprintf(alter, sizeof(alter), "ALTER ROLE %s CREATEDB", login);
    char st[6];
    assert_int_equal(pf_env_sql_state(env, alter, st), 0);
    snprintf(alter, sizeof(alter), "GRANT postfach_admin, postfach_broker TO %s", login);
    assert_int_equal(pf_env_sql_state(env, alter, st), 0);
    assert_int_equal(
        pf_env_ctl(env, &out, "role", "login", login, "reader", "--password-file", pw2, NULL), 0);
    free(out);
    ok = pf_env_sql(env, sql);
    assert_string_equal(ok, "t");
    free(ok);
    char *hash2 = pf_env_sql(env, q);
    assert_non_null(hash2);
    assert_string_not_equal(hash1, hash2);
    free(hash1);
    free(hash2);

    /* refusals: a superuser, a group, an unknown group, an empty password, usage */
    assert_int_equal(
        pf_env_ctl(env, &out, "role", "login", "postgres", "broker", "--password-file", pw1, NULL),
        1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "role", "login", "postfach_broker", "broker",
                                "--password-file", pw1, NULL),
                     1);
    free(out);
    assert_int_equal(
        pf_env_ctl(env, &out, "role", "login", login, "root", "--password-file", pw1, NULL), 1);
    free(out);
    assert_int_equal(
        pf_env_ctl(env, &out, "role", "login", login, "reader", "--password-file", empty, NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "role", "login", login, "reader", NULL), 2);
    free(out);
    snprintf(alter, sizeof(alter), "DROP ROLE %s", login);
    assert_int_equal(pf_env_sql_state(env, alter, st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_is_idempotent),
        cmocka_unit_test(test_sender_names_and_duplicates),
        cmocka_unit_test(test_sender_allowlist),
        cmocka_unit_test(test_sender_receipts),
        cmocka_unit_test(test_citizen_keys),
        cmocka_unit_test(test_citizen_rotate_race),
        cmocka_unit_test(test_citizen_rotate_kind),
        cmocka_unit_test(test_export_after_rotation_without_rewrap),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_revoke_keeps_first_time),
        cmocka_unit_test(test_token_levels),
        cmocka_unit_test(test_keys_init_without_dev_idp),
        cmocka_unit_test(test_role_login),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
