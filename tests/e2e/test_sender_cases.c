/* End-to-end: the sender cases of the trust model in one table, through the
 * real broker, client library and postfach-ctl.  Every case is something a
 * procedure must not get away with; each is checked for being refused and
 * for leaving nothing behind, and the test prints
 * "sender cases: N refused of N".
 *
 *   unknown CURVE key          no handshake, no answer, nothing stored
 *   revoked key, new socket    no handshake
 *   revoked, open socket       NACK forbidden, nothing stored
 *   key replaced by rotate-key the old key file no longer gets in
 *   recipient outside the allowlist  NACK forbidden, nothing stored
 *   another sender's receipt   never delivered to it
 *   ack of another's receipt   leaves the receipt unacknowledged
 * After all of them the broker still serves a registered sender. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "postfach/postfach.h"
#include "proto/curve.h"

static const char *const s_citizens[] = {"citizen-a", "bw-citizen-b", NULL};

typedef struct {
    pf_env_t *env;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    *state = f;
    f->env = pf_env_new("sender_cases", s_citizens);
    if (f->env == NULL || pf_env_start_broker(f->env, NULL) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = pf_env_stop_broker(f->env, SIGTERM);
    pf_fixture_end(f->env, NULL, f);
    return rc == 0 ? 0 : -1;
}

/* A client with the given CURVE key file (a short timeout, one try: a
 * refused handshake shows as no answer at all). */
static pf_client_t *s_client_key(pf_env_t *env, const char *keyfile, int timeout_ms)
{
    pf_client_t *c = pf_env_client(env, NULL, keyfile, timeout_ms, 1);
    assert_non_null(c);
    return c;
}

static pf_client_t *s_client(pf_env_t *env, const char *sender, int timeout_ms)
{
    char *key = pf_env_sender_keyfile(env, sender);
    pf_client_t *c = s_client_key(env, key, timeout_ms);
    free(key);
    return c;
}

/* 0 with *res filled (ACK or NACK), -1 without any answer. */
static int s_send(pf_client_t *c, const char *request_id, const char *to, pf_client_result_t *res)
{
    const char *rcpt[] = {to};
    pf_client_notice_t n = {.request_id = request_id,
                            .recipients = rcpt,
                            .recipient_count = 1,
                            .title = "Hundesteuerbescheid",
                            .subject = "Ihr Hund Bello",
                            .body = "Die Steuer betraegt 120 EUR im Jahr."};
    const char *err = NULL;
    return pf_client_send(c, &n, res, &err);
}

static long long s_stored(pf_env_t *env, const char *request_id)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE request_id = '%s'", request_id);
    return pf_env_sql_int(env, sql);
}

static size_t s_broker_log(pf_env_t *env, char **log_r)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/broker.log", pf_env_dir(env));
    size_t len = 0;
    *log_r = pf_test_read_file(path, &len);
    return *log_r ? len : 0;
}

/* No answer at all, nothing stored, and the broker's ZAP handler said it
 * refused the key (not merely a broker too slow to answer). */
static bool s_no_handshake(pf_env_t *env, pf_client_t *c, const char *request_id)
{
    char *log = NULL;
    size_t offset = s_broker_log(env, &log);
    free(log);
    pf_client_result_t res;
    int rc = s_send(c, request_id, "citizen-a", &res);
    if (rc == 0)
        pf_client_result_clear(&res);
    bool refused = false;
    for (int64_t end = pf_test_now_ms() + 5000; !refused && pf_test_now_ms() < end;) {
        size_t len = s_broker_log(env, &log);
        refused = log && len > offset && strstr(log + offset, "event=zap_refused") != NULL;
        free(log);
        if (!refused)
            usleep(50 * 1000);
    }
    return rc == -1 && refused && s_stored(env, request_id) == 0;
}

/* NACK with code, and nothing stored. */
static bool s_nack(pf_env_t *env, pf_client_t *c, const char *request_id, const char *to,
                   const char *code)
{
    pf_client_result_t res;
    if (s_send(c, request_id, to, &res) != 0)
        return false;
    bool ok = res.ok == 0 && res.code != NULL && strcmp(res.code, code) == 0;
    pf_client_result_clear(&res);
    return ok && s_stored(env, request_id) == 0;
}

static bool s_receipt_for(pf_client_t *c, const char *message_id, int timeout_ms)
{
    int64_t end = pf_test_now_ms() + timeout_ms;
    while (pf_test_now_ms() < end) {
        pf_client_receipt_t r;
        const char *err;
        int rc = pf_client_next_receipt(c, 200, &r, &err);
        if (rc < 0)
            return false;
        if (rc == 0)
            continue;
        bool match = strcmp(r.message_id, message_id) == 0;
        pf_client_receipt_clear(&r);
        if (match)
            return true;
    }
    return false;
}

static void test_sender_cases(void **state)
{
    fixture_t *f = *state;
    pf_env_t *env = f->env;
    const char *err;
    size_t cases = 0, refused = 0;
#define CASE(name, cond)                                                                           \
    do {                                                                                           \
        cases++;                                                                                   \
        if (cond)                                                                                  \
            refused++;                                                                             \
        else                                                                                       \
            fprintf(stderr, "sender case not refused: %s\n", name);                                \
    } while (0)

    assert_int_equal(pf_env_ctl(env, NULL, "sender", "add", "dog-registry", NULL), 0);
    assert_int_equal(pf_env_ctl(env, NULL, "sender", "add", "building-office", NULL), 0);
    assert_int_equal(pf_env_ctl(env, NULL, "sender", "add", "old-office", NULL), 0);
    assert_int_equal(pf_env_ctl(env, NULL, "sender", "allow", "dog-registry", "bw-*", NULL), 0);

    /* 1. a key nobody registered */
    char *stranger = NULL;
    if (asprintf(&stranger, "%s/stranger.curve", pf_env_dir(env)) < 0)
        abort();
    char pub[41];
    assert_int_equal(pf_curve_generate_files(stranger, NULL, pub, &err), 0);
    pf_client_t *c = s_client_key(env, stranger, 700);
    CASE("unknown CURVE key", s_no_handshake(env, c, "req-stranger"));
    pf_client_destroy(&c);
    free(stranger);

    /* 2, 3. revoked: the open connection is refused, a new one never gets in */
    pf_client_t *old = s_client(env, "old-office", 5000);
    pf_client_result_t res;
    assert_int_equal(s_send(old, "req-old-1", "citizen-a", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_result_clear(&res);
    assert_int_equal(pf_env_ctl(env, NULL, "sender", "revoke", "old-office", NULL), 0);
    usleep(1500 * 1000); /* sender_cache_ms defaults to 1 s */
    CASE("revoked sender, open connection",
         s_nack(env, old, "req-old-2", "citizen-a", "forbidden"));
    pf_client_destroy(&old);
    old = s_client(env, "old-office", 700);
    CASE("revoked sender, new connection", s_no_handshake(env, old, "req-old-3"));
    pf_client_destroy(&old);

    /* 4. the key replaced by rotate-key */
    char *keyf = pf_env_sender_keyfile(env, "building-office"), *kept = NULL;
    if (asprintf(&kept, "%s/building-office-old.curve", pf_env_dir(env)) < 0)
        abort();
    size_t len = 0;
    char *key = pf_test_read_file(keyf, &len);
    assert_non_null(key);
    FILE *fp = fopen(kept, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(key, 1, len, fp), len);
    fclose(fp);
    free(key);
    assert_int_equal(pf_env_ctl(env, NULL, "sender", "rotate-key", "building-office", NULL), 0);
    usleep(1500 * 1000);
    c = s_client_key(env, kept, 700);
    CASE("key replaced by rotate-key", s_no_handshake(env, c, "req-rotated-old"));
    pf_client_destroy(&c);
    /* the new key works */
    c = s_client_key(env, keyf, 5000);
    assert_int_equal(s_send(c, "req-rotated-new", "citizen-a", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_result_clear(&res);
    pf_client_destroy(&c);
    free(keyf);
    free(kept);

    /* 5. a recipient outside the sender's allowlist */
    pf_client_t *dog = s_client(env, "dog-registry", 5000);
    CASE("recipient outside the allowlist",
         s_nack(env, dog, "req-dog-outside", "citizen-a", "forbidden"));
    assert_int_equal(s_send(dog, "req-dog-inside", "bw-citizen-b", &res), 0);
    assert_int_equal(res.ok, 1);
    char *dog_mid = strdup(res.copies[0].message_id);
    pf_client_result_clear(&res);

    /* 6, 7. the tax office connects and waits: the dog registry's receipt
     * never reaches it, and its acknowledgement of that receipt counts for
     * nothing */
    pf_client_t *tax = s_client(env, "tax-office", 5000);
    char *jti = NULL;
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT jti FROM receipt WHERE message_id = '%s'", dog_mid);
    jti = pf_env_sql(env, sql);
    assert_non_null(jti);
    assert_int_equal(pf_client_ack_receipt(tax, jti, &err), 0);
    CASE("receipt of another sender delivered", !s_receipt_for(tax, dog_mid, 2500));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM receipt_delivery WHERE jti = '%s' AND acked_at IS NULL", jti);
    CASE("receipt of another sender acknowledged", pf_env_sql_int(env, sql) == 1);
    /* its own sender gets it */
    assert_true(s_receipt_for(dog, dog_mid, 5000));
    free(jti);
    free(dog_mid);

    /* the broker still serves */
    assert_int_equal(s_send(tax, "req-after", "citizen-a", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_result_clear(&res);
    pf_client_destroy(&tax);
    pf_client_destroy(&dog);
    assert_true(pf_env_broker_alive(env));

    printf("sender cases: %zu refused of %zu\n", refused, cases);
    assert_int_equal(refused, cases);
#undef CASE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sender_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
