/* End-to-end tests of the sending side: the real postfach-broker against a
 * real PostgreSQL, driven through libpostfach and, for what a well-behaved
 * client never sends, a raw ZeroMQ DEALER socket with CURVE.
 *
 * Covers: ACK with one message id per recipient; no plaintext in the
 * stored row; separate copies per recipient; idempotent retries; conflict;
 * unknown recipient; malformed, oversize and trailing frames answered with
 * a clear NACK while the broker keeps serving; an unregistered key gets no
 * answer; a revoked sender is refused; a closed mailbox and a rotated key
 * apply to the next notices (NOTIFY); an old schema is refused at start;
 * the delivered receipt arrives once,
 * sent from memory after the COMMIT (or through the relay, when off);
 * receipts queued while the procedure was offline arrive on reconnect;
 * sender B never sees or acknowledges sender A's receipts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "postfach/postfach.h"
#include "proto/curve.h"
#include "util/uuid7.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", NULL};

#define SECRET_SUBJECT "Geheimer Betreff 7f3a"
#define SECRET_BODY "Vertraulicher Inhalt 91c2: Ihr Einkommen betraegt 12345 EUR."

/* test_kill9's killer thread: kills the broker after delay_ms, starts it
 * again */
typedef struct {
    pf_env_t *env;
    int delay_ms;
    atomic_bool done; /* killed and started again */
    pthread_t thread;
    bool running; /* started and not yet joined */
} killer_t;

/* The env lives in the fixture, and so does whatever else of a test holds
 * a connection or a thread: a failed assertion (cmocka jumps out of the
 * test) still closes them and stops the broker in the teardown.  A test
 * that passes has closed them itself. */
typedef struct {
    pf_env_t *env;
    pf_client_t *c;     /* the test's client */
    pf_client_t *other; /* a second one, in the tests that need two at once */
    void *zctx, *raw;   /* a raw DEALER socket (s_raw) and its context */
    killer_t killer;
} fixture_t;

static int s_setup_with(void **state, const char *const *settings)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->env = pf_env_new("broker", s_citizens);
    if (f->env == NULL || pf_env_start_broker(f->env, settings) != 0) {
        pf_env_destroy(&f->env);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_setup(void **state)
{
    /* small limits so oversize cases stay small */
    static const char *const settings[] = {"max_attachment_size=65536", "max_message_size=200000",
                                           NULL};
    return s_setup_with(state, settings);
}

/* Closes the raw socket and its context (both may be NULL). */
static void s_raw_close(fixture_t *f)
{
    if (f->raw != NULL)
        zmq_close(f->raw);
    if (f->zctx != NULL)
        zmq_ctx_term(f->zctx);
    f->raw = f->zctx = NULL;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    /* what a failed test left: the killer first, since it uses the env */
    if (f->killer.running)
        pthread_join(f->killer.thread, NULL);
    s_raw_close(f);
    pf_client_destroy(&f->other);
    pf_client_destroy(&f->c);
    /* a clean stop is part of every test */
    int rc = pf_env_stop_broker(f->env, SIGTERM);
    pf_fixture_end(f->env, NULL, f);
    return rc == 0 ? 0 : -1;
}

static pf_client_t *s_client_for(pf_env_t *env, const char *sender, int timeout_ms, int retries)
{
    pf_client_t *c = pf_env_client(env, sender, NULL, timeout_ms, retries);
    assert_non_null(c);
    return c;
}

static pf_client_t *s_client(pf_env_t *env)
{
    return s_client_for(env, "tax-office", 5000, 2);
}

static int s_send(pf_client_t *c, const char *request_id, const char *const *to, size_t nto,
                  const char *body, pf_client_result_t *res)
{
    static const unsigned char pdf[] = "%PDF-1.7\n% test attachment\n";
    pf_client_attachment_t att = {"bescheid.pdf", "application/pdf", pdf, sizeof(pdf) - 1};
    pf_client_notice_t n = {.request_id = request_id,
                            .recipients = to,
                            .recipient_count = nto,
                            .title = "Grundsteuerbescheid",
                            .subject = SECRET_SUBJECT,
                            .body = body,
                            .reference = "AZ 4711/25",
                            .attachments = &att,
                            .attachment_count = 1};
    const char *err = NULL;
    int rc = pf_client_send(c, &n, res, &err);
    if (rc != 0)
        fprintf(stderr, "pf_client_send: %s\n", err);
    return rc;
}

/* Sends and asserts the ACK. */
static void s_send_acked(pf_client_t *c, const char *request_id, const char *const *to, size_t nto,
                         const char *body)
{
    pf_client_result_t res;
    assert_int_equal(s_send(c, request_id, to, nto, body, &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_result_clear(&res);
}

/* Sends and asserts a NACK with this code. */
static void s_send_refused(pf_client_t *c, const char *request_id, const char *const *to,
                           size_t nto, const char *body, const char *code)
{
    pf_client_result_t res;
    assert_int_equal(s_send(c, request_id, to, nto, body, &res), 0);
    assert_int_equal(res.ok, 0);
    assert_string_equal(res.code, code);
    pf_client_result_clear(&res);
}

static char *s_sqlf(pf_env_t *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *s_sqlf(pf_env_t *env, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return pf_env_sql(env, sql);
}

static long long s_count(pf_env_t *env, const char *sql)
{
    return pf_env_sql_int(env, sql);
}

/* The broker's log from offset on contains needle. */
static bool s_log_has(pf_env_t *env, long offset, const char *needle)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/broker.log", pf_env_dir(env));
    size_t len = 0;
    char *log = pf_test_read_file(path, &len);
    bool has = log && (size_t)offset <= len && strstr(log + offset, needle) != NULL;
    free(log);
    return has;
}

static long s_log_size(pf_env_t *env)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/broker.log", pf_env_dir(env));
    size_t len = 0;
    char *log = pf_test_read_file(path, &len);
    free(log);
    return (long)len;
}

/* ---- raw socket, for what the client library would refuse to send ---- */

static void *s_raw(void *ctx, pf_env_t *env, const char *sender)
{
    char *pubf = pf_env_broker_pubfile(env), *keyf = pf_env_sender_keyfile(env, sender);
    pf_curve_keys_t server, own;
    const char *err;
    assert_int_equal(pf_curve_load(pubf, false, &server, &err), 0);
    assert_int_equal(pf_curve_load(keyf, true, &own, &err), 0);
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server.public_key, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, own.public_key, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, own.secret_key, 40);
    assert_int_equal(zmq_connect(s, pf_env_broker_endpoint(env)), 0);
    pf_curve_keys_clear(&own);
    free(pubf);
    free(keyf);
    return s;
}

/* Sends frames given as (pointer, size) pairs, NULL-terminated. */
static void s_raw_send(void *s, ...)
{
    va_list ap;
    va_start(ap, s);
    const void *p = va_arg(ap, const void *);
    while (p != NULL) {
        size_t n = va_arg(ap, size_t);
        const void *next = va_arg(ap, const void *);
        zmq_send(s, p, n, next ? ZMQ_SNDMORE : 0);
        p = next;
    }
    va_end(ap);
}

#define F(str) (const void *)(str), strlen(str)

/* Receives a NACK and returns its JSON frame (caller frees), NULL on
 * timeout or when the answer is not a NACK. */
static char *s_raw_nack(void *s, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    char frames[4][4096];
    int n = 0, more = 1;
    while (more && n < 4) {
        int len = zmq_recv(s, frames[n], sizeof(frames[n]) - 1, 0);
        if (len < 0)
            return NULL;
        frames[n][len < (int)sizeof(frames[n]) ? len : (int)sizeof(frames[n]) - 1] = '\0';
        n++;
        size_t sz = sizeof(more);
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
    }
    if (n != 3 || strcmp(frames[0], "PF1") != 0 || strcmp(frames[1], "NACK") != 0)
        return NULL;
    return strdup(frames[2]);
}

static void s_expect_raw_nack(void *s, const char *code)
{
    char *j = s_raw_nack(s, 5000);
    if (j == NULL)
        fail_msg("no NACK, expected %s", code);
    char want[64];
    snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
    if (strstr(j, want) == NULL)
        fail_msg("NACK %s, expected %s", j, code);
    free(j);
}

/* ---- tests ------------------------------------------------------------- */

static void test_send_ack_no_plaintext_stored(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-plain-1", to, 1, SECRET_BODY, &res), 0);
    assert_int_equal(res.ok, 1);
    assert_int_equal(res.copy_count, 1);
    assert_string_equal(res.copies[0].recipient, "citizen-a");
    assert_int_equal(pf_uuid_valid(res.copies[0].message_id), 0);
    assert_true(pf_uuid7_millis(res.copies[0].message_id) > 0);

    char *v = s_sqlf(f->env,
                     "SELECT mailbox_id || ' ' || title || ' ' || request_id FROM message "
                     "WHERE id = '%s'",
                     res.copies[0].message_id);
    assert_non_null(v);
    assert_string_equal(v, "citizen-a Grundsteuerbescheid req-plain-1");
    free(v);
    /* neither subject nor body appear anywhere in the row, as text or bytes */
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message m WHERE m::text LIKE "
                                     "'%Geheimer%' OR m::text LIKE '%Vertraulich%'"),
                     0);
    assert_int_equal(s_count(f->env,
                             "SELECT count(*) FROM message WHERE "
                             "position(convert_to('Geheimer', 'UTF8') in jwe_ciphertext) > 0 OR "
                             "position(convert_to('Vertraulich', 'UTF8') in jwe_ciphertext) > 0"),
                     0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission s WHERE s::text LIKE "
                                     "'%Geheimer%' OR s::text LIKE '%Vertraulich%'"),
                     0);
    /* a JWE for the notice content type, A256GCM, 12-byte IV, 16-byte tag */
    v = pf_env_sql(f->env, "SELECT convert_from(decode(translate(jwe_protected, '-_', '+/') || "
                           "repeat('=', (4 - length(jwe_protected) % 4) % 4), 'base64'), 'UTF8') "
                           "FROM message");
    assert_non_null(v);
    assert_non_null(strstr(v, "\"enc\":\"A256GCM\""));
    assert_non_null(strstr(v, "application/vnd.postfach.notice+json"));
    free(v);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message WHERE length(jwe_iv) = 12 AND "
                                     "length(jwe_tag) = 16 AND attachment_count = 1"),
                     1);
    /* stored with the wall-clock time (the receipt's proof time) */
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message WHERE "
                                     "abs(extract(epoch FROM now() - created_at)) < 60"),
                     1);
    /* its delivered receipt sits in the outbox */
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt WHERE event = 'delivered'"), 1);
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
}

static void test_multi_recipient_separate_copies(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a", "citizen-b", "citizen-c"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-multi", to, 3, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    assert_int_equal(res.copy_count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(res.copies[i].recipient, to[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(res.copies[i].message_id, res.copies[j].message_id);
        char *v = s_sqlf(f->env, "SELECT mailbox_id FROM message WHERE id = '%s'",
                         res.copies[i].message_id);
        assert_non_null(v);
        assert_string_equal(v, to[i]);
        free(v);
    }
    assert_int_equal(s_count(f->env, "SELECT count(DISTINCT jwe_ciphertext) FROM message"), 3);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt"), 3);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission"), 1);
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
}

static void test_retry_same_request_id(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a", "citizen-b"};
    pf_client_result_t r1, r2;
    assert_int_equal(s_send(f->c, "req-retry", to, 2, "Text", &r1), 0);
    assert_int_equal(r1.ok, 1);
    /* a retry, also from a new connection (as after a restart) */
    pf_client_destroy(&f->c);
    f->c = s_client(f->env);
    assert_int_equal(s_send(f->c, "req-retry", to, 2, "Text", &r2), 0);
    assert_int_equal(r2.ok, 1);
    assert_int_equal(r2.copy_count, 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(r1.copies[i].message_id, r2.copies[i].message_id);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 2);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt"), 2);
    pf_client_result_clear(&r1);
    pf_client_result_clear(&r2);
    pf_client_destroy(&f->c);
}

static void test_same_request_id_different_payload_conflict(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    pf_client_result_t r1, r2;
    assert_int_equal(s_send(f->c, "req-conflict", to, 1, "Erste Fassung", &r1), 0);
    assert_int_equal(r1.ok, 1);
    assert_int_equal(s_send(f->c, "req-conflict", to, 1, "Zweite Fassung", &r2), 0);
    assert_int_equal(r2.ok, 0);
    assert_string_equal(r2.code, "conflict");
    assert_string_equal(r2.request_id, "req-conflict");
    assert_non_null(r2.reason);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 1);
    pf_client_result_clear(&r1);
    pf_client_result_clear(&r2);
    pf_client_destroy(&f->c);
}

/* Sends a notice to `to` every 20 ms (request ids prefix-0, prefix-1, ...)
 * until done() holds for an answer; returns the milliseconds that took,
 * -1 when it did not within 3 s.  For changes that must apply at once
 * but reach the broker asynchronously (NOTIFY). */
typedef bool s_until_fn(pf_env_t *env, const pf_client_result_t *res);
static long long s_send_until(pf_env_t *env, pf_client_t *c, const char *prefix,
                              const char *const *to, s_until_fn *done)
{
    int64_t t0 = pf_test_now_ms();
    for (int i = 0; pf_test_now_ms() - t0 < 3000; i++) {
        char rid[48];
        snprintf(rid, sizeof(rid), "%s-%d", prefix, i);
        pf_client_result_t res;
        assert_int_equal(s_send(c, rid, to, 1, "Text", &res), 0);
        bool ok = done(env, &res);
        pf_client_result_clear(&res);
        if (ok)
            return (long long)(pf_test_now_ms() - t0);
        usleep(20 * 1000);
    }
    return -1;
}

static bool s_refused(pf_env_t *env, const pf_client_result_t *res)
{
    (void)env;
    return !res->ok && strcmp(res->code, "unknown_recipient") == 0;
}

static bool s_sealed_to_v2(pf_env_t *env, const pf_client_result_t *res)
{
    assert_int_equal(res->ok, 1);
    char *ver =
        s_sqlf(env, "SELECT key_version FROM message WHERE id = '%s'", res->copies[0].message_id);
    assert_non_null(ver);
    bool v2 = strcmp(ver, "2") == 0;
    free(ver);
    return v2;
}

static void test_unknown_recipient_nothing_stored(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a", "nobody-here"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-unknown", to, 2, "Text", &res), 0);
    assert_int_equal(res.ok, 0);
    assert_string_equal(res.code, "unknown_recipient");
    assert_non_null(strstr(res.reason, "nobody-here"));
    pf_client_result_clear(&res);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission"), 0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt"), 0);
    /* a closed mailbox counts as unknown, also one the broker has just
     * delivered to and whose current key it caches: the closing's NOTIFY
     * (sql/0011) makes it forget the entry, which it would otherwise
     * trust for a minute */
    const char *to2[] = {"citizen-b"};
    s_send_acked(f->c, "req-open", to2, 1, "Text");
    char *v = pf_env_sql(f->env, "UPDATE mailbox SET status = 'closed' WHERE id = 'citizen-b' "
                                 "RETURNING id");
    free(v);
    long long ms = s_send_until(f->env, f->c, "req-closed", to2, s_refused);
    printf("closed mailbox refused after %lld ms\n", ms);
    assert_true(ms >= 0);
    pf_client_destroy(&f->c);
}

/* A broker refuses to start on a schema older than its statements and
 * triggers need (sql/0010, 0011), naming the fix, instead of failing
 * batches later; the broker of the fixture keeps serving. */
static void test_old_schema_refused_at_start(void **state)
{
    fixture_t *f = *state;
    /* hide 11 and every later migration from max(version), then bring
     * them back (negative versions are never applied ones) */
    char *hidden = pf_env_sql(f->env, "WITH h AS (UPDATE schema_migration SET version = -version "
                                      "WHERE version >= 11 RETURNING 1) SELECT count(*) FROM h");
    assert_non_null(hidden);
    assert_true(atoi(hidden) >= 1);
    free(hidden);
    assert_int_equal(pf_env_start_broker_slot(f->env, 1, NULL, NULL), -1);
    char *again = pf_env_sql(f->env, "WITH h AS (UPDATE schema_migration SET version = -version "
                                     "WHERE version < 0 RETURNING 1) SELECT count(*) FROM h");
    assert_non_null(again);
    free(again);
    char path[512], text[8192];
    snprintf(path, sizeof(path), "%s/broker-1.log", pf_env_dir(f->env));
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    assert_non_null(strstr(text, "schema is version 10, this broker needs 11"));
    assert_non_null(strstr(text, "postfach-ctl migrate"));
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    s_send_acked(f->c, "req-after-schema", to, 1, "Text");
    pf_client_destroy(&f->c);
}

/* A new key version applies to the next notices as soon as the broker
 * has read the NOTIFY (sql/0011), not after the minute it would
 * otherwise trust its cached current version. */
static void test_rotated_key_applies_at_once(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-v1", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    char *ver =
        s_sqlf(f->env, "SELECT key_version FROM message WHERE id = '%s'", res.copies[0].message_id);
    assert_non_null(ver);
    assert_string_equal(ver, "1");
    free(ver);
    pf_client_result_clear(&res);
    /* version 2 (the same public key under a new version number: enough
     * for the broker, which only seals) */
    free(pf_env_sql(f->env, "INSERT INTO mailbox_key (mailbox_id, version, kid, alg, public_jwk) "
                            "SELECT mailbox_id, 2, kid || '-v2', alg, public_jwk FROM mailbox_key "
                            "WHERE mailbox_id = 'citizen-a' AND version = 1 RETURNING 1"));
    long long ms = s_send_until(f->env, f->c, "req-v2", to, s_sealed_to_v2);
    printf("rotated key used after %lld ms\n", ms);
    assert_true(ms >= 0);
    pf_client_destroy(&f->c);
}

static void test_malformed_frames_clear_nack_and_serving(void **state)
{
    fixture_t *f = *state;
    f->zctx = zmq_ctx_new();
    f->raw = s_raw(f->zctx, f->env, "tax-office");
    const char *hdr = "{\"request_id\":\"raw-1\",\"recipients\":[\"citizen-a\"],\"title\":\"t\","
                      "\"subject\":\"s\",\"body\":\"b\"}";

    s_raw_send(f->raw, F("PF1"), NULL);
    s_expect_raw_nack(f->raw, "malformed");
    s_raw_send(f->raw, F("XYZ"), F("SEND"), NULL);
    s_expect_raw_nack(f->raw, "malformed");
    s_raw_send(f->raw, F("PF9"), F("SEND"), F(hdr), NULL);
    s_expect_raw_nack(f->raw, "unsupported_version");
    s_raw_send(f->raw, F("PF1"), F("FETCH"), NULL);
    s_expect_raw_nack(f->raw, "unsupported_command");
    s_raw_send(f->raw, F("PF1"), F("SEND"), F("{\"request_id\":\"raw-2\",\"recipients\":["), NULL);
    s_expect_raw_nack(f->raw, "malformed");
    s_raw_send(f->raw, F("PF1"), F("SEND"), F("{\"request_id\":\"r\xff\"}"), NULL);
    s_expect_raw_nack(f->raw, "malformed");
    /* trailing frame after the announced attachments */
    s_raw_send(f->raw, F("PF1"), F("SEND"), F(hdr), F("extra"), NULL);
    s_expect_raw_nack(f->raw, "malformed");
    /* HELLO, RACK and PING get no answer, not even when malformed: it
     * would be taken for the answer to a pending SEND */
    s_raw_send(f->raw, F("PF1"), F("HELLO"), F("extra"), NULL);
    s_raw_send(f->raw, F("PF1"), F("RACK"), F("not-a-jti"), NULL);
    s_raw_send(f->raw, F("PF1"), F("PING"), F("extra"), NULL);
    s_raw_send(f->raw, F("PF1"), F("PING"), NULL);
    {
        /* the well-formed PING's PONG is the next thing that arrives */
        zmq_pollitem_t it = {.socket = f->raw, .events = ZMQ_POLLIN};
        assert_int_equal(zmq_poll(&it, 1, 5000), 1);
        char f0[8], f1[8];
        int more = 0;
        size_t sz = sizeof(more);
        assert_int_equal(zmq_recv(f->raw, f0, sizeof(f0), 0), 3);
        assert_int_equal(zmq_recv(f->raw, f1, sizeof(f1), 0), 4);
        assert_memory_equal(f1, "PONG", 4);
        zmq_getsockopt(f->raw, ZMQ_RCVMORE, &more, &sz);
        assert_int_equal(more, 0);
    }
    /* an attachment above max_attachment_size (64 KiB in this test) */
    size_t big = 70000;
    char *blob = calloc(1, big);
    char bighdr[512];
    snprintf(bighdr, sizeof(bighdr),
             "{\"request_id\":\"raw-big\",\"recipients\":[\"citizen-a\"],\"title\":\"t\","
             "\"subject\":\"s\",\"body\":\"b\",\"attachments\":[{\"name\":\"big.bin\","
             "\"media_type\":\"application/octet-stream\",\"size\":%zu}]}",
             big);
    s_raw_send(f->raw, F("PF1"), F("SEND"), F(bighdr), (const void *)blob, big, NULL);
    s_expect_raw_nack(f->raw, "too_large");
    free(blob);
    /* the header names the request id when it could be read */
    s_raw_send(f->raw, F("PF1"), F("SEND"),
               F("{\"request_id\":\"raw-lvl\",\"recipients\":[\"citizen-a\"],\"title\":\"t\","
                 "\"subject\":\"s\",\"body\":\"b\",\"required_level\":\"ultra\"}"),
               NULL);
    char *j = s_raw_nack(f->raw, 5000);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"request_id\":\"raw-lvl\""));
    free(j);
    s_raw_close(f);

    assert_true(pf_env_broker_alive(f->env));
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 0);
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    s_send_acked(f->c, "req-after-garbage", to, 1, "Text");
    pf_client_destroy(&f->c);
}

static void test_oversize_through_client_nacked(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    size_t big = 100000;
    unsigned char *blob = calloc(1, big);
    pf_client_attachment_t att = {"scan.bin", NULL, blob, big};
    const char *to[] = {"citizen-a"};
    pf_client_notice_t n = {.request_id = "req-big",
                            .recipients = to,
                            .recipient_count = 1,
                            .title = "t",
                            .subject = "s",
                            .body = "b",
                            .attachments = &att,
                            .attachment_count = 1};
    pf_client_result_t res;
    const char *err;
    assert_int_equal(pf_client_send(f->c, &n, &res, &err), 0);
    assert_int_equal(res.ok, 0);
    assert_string_equal(res.code, "too_large");
    pf_client_result_clear(&res);
    free(blob);
    /* invalid notices are refused locally */
    n.attachment_count = 0;
    n.title = "";
    assert_int_equal(pf_client_send(f->c, &n, &res, &err), -2);
    pf_client_destroy(&f->c);
}

static void test_unregistered_key_gets_no_answer(void **state)
{
    fixture_t *f = *state;
    char *keyf = NULL;
    if (asprintf(&keyf, "%s/stranger.curve", pf_env_dir(f->env)) < 0)
        abort();
    char pub[41];
    const char *err;
    assert_int_equal(pf_curve_generate_files(keyf, NULL, pub, &err), 0);
    char *brokerpub = pf_env_broker_pubfile(f->env);
    assert_int_equal(pf_client_new(pf_env_broker_endpoint(f->env), brokerpub, keyf, &f->c, &err),
                     0);
    pf_client_set_timeout(f->c, 700, 1);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    long off = s_log_size(f->env);
    assert_int_equal(s_send(f->c, "req-stranger", to, 1, "Text", &res), -1);
    /* refused by the ZAP handler, not merely unanswered */
    char want[80];
    snprintf(want, sizeof(want), "event=zap_refused key=%s", pub);
    assert_true(s_log_has(f->env, off, want));
    pf_client_destroy(&f->c);
    free(keyf);
    free(brokerpub);
    assert_true(pf_env_broker_alive(f->env));
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 0);
    /* registered senders are still served */
    f->c = s_client(f->env);
    s_send_acked(f->c, "req-registered", to, 1, "Text");
    pf_client_destroy(&f->c);
}

static void test_revoked_sender_refused(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    s_send_acked(f->c, "req-before-revoke", to, 1, "Text");
    assert_int_equal(pf_env_ctl(f->env, NULL, "sender", "revoke", "tax-office", NULL), 0);
    usleep(1500 * 1000); /* sender_cache_ms defaults to 1 s */
    /* on the open connection: refused */
    s_send_refused(f->c, "req-after-revoke", to, 1, "Text", "forbidden");
    pf_client_destroy(&f->c);
    /* a new connection does not get through the handshake */
    f->c = s_client_for(f->env, "tax-office", 700, 1);
    assert_int_equal(s_send(f->c, "req-after-revoke-2", to, 1, "Text", &res), -1);
    pf_client_destroy(&f->c);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 1);
}

/* rotate-key reaches a connection that is open already: a procedure (or
 * whoever stole its key) that connected with the old key can send nothing
 * more on it, while the new key gets in. */
static void test_rotated_sender_key_closes_open_connection(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    s_send_acked(f->c, "req-before-rotate", to, 1, "Text");
    assert_int_equal(pf_env_ctl(f->env, NULL, "sender", "rotate-key", "tax-office", NULL), 0);
    usleep(1500 * 1000); /* sender_cache_ms defaults to 1 s */
    s_send_refused(f->c, "req-old-key", to, 1, "Text", "forbidden");
    pf_client_destroy(&f->c);
    /* the key file now holds the new key, which gets in */
    f->c = s_client(f->env);
    s_send_acked(f->c, "req-new-key", to, 1, "Text");
    pf_client_destroy(&f->c);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 2);
}

/* A connection made with a sender's replaced key gets no receipts: the
 * one still pending goes to a connection with the new key only. */
static void test_rotated_sender_key_gets_no_receipts(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    pf_client_set_manual_ack(f->c, true);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-rotate-receipt", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_receipt_t r;
    const char *err;
    /* handed out, not acknowledged: it stays pending */
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    pf_client_receipt_clear(&r);
    assert_int_equal(pf_env_ctl(f->env, NULL, "sender", "rotate-key", "tax-office", NULL), 0);
    usleep(1500 * 1000); /* sender_cache_ms defaults to 1 s */
    free(pf_env_sql(f->env, "UPDATE receipt_delivery SET next_attempt_at = now() RETURNING 1"));
    (void)pf_client_hello(f->c, &err); /* asks for everything pending */
    assert_int_equal(pf_client_next_receipt(f->c, 2500, &r, &err), 0);
    pf_client_destroy(&f->c);
    f->c = s_client(f->env); /* the key file holds the new key */
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    assert_string_equal(r.message_id, res.copies[0].message_id);
    pf_client_receipt_clear(&r);
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
}

/* Collects receipts for up to timeout_ms; returns how many had message_id
 * (or all when NULL); events checked to be "delivered". */
static int s_receipts(pf_client_t *c, const char *message_id, int timeout_ms, int stop_at)
{
    int got = 0;
    int64_t end = pf_test_now_ms() + timeout_ms;
    while (pf_test_now_ms() < end && (stop_at == 0 || got < stop_at)) {
        pf_client_receipt_t r;
        const char *err;
        int rc = pf_client_next_receipt(c, 200, &r, &err);
        assert_true(rc >= 0);
        if (rc == 0)
            continue;
        assert_true(r.verified);
        assert_string_equal(r.event, "delivered");
        assert_non_null(r.token);
        if (message_id == NULL || strcmp(r.message_id, message_id) == 0)
            got++;
        pf_client_receipt_clear(&r);
    }
    return got;
}

static bool s_acked(void *arg)
{
    pf_env_t *env = arg;
    return pf_env_sql_int(env,
                          "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NOT NULL") == 1;
}

static void test_delivered_receipt_exactly_once(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-receipt", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);

    pf_client_receipt_t r;
    const char *err;
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    assert_true(r.verified);
    assert_string_equal(r.event, "delivered");
    assert_string_equal(r.message_id, res.copies[0].message_id);
    assert_string_equal(r.request_id, "req-receipt");
    assert_string_equal(r.mailbox, "citizen-a");
    /* the event time is wall-clock time, within a minute of ours */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(r.time_ms > wall - 60000 && r.time_ms < wall + 60000);
    char *jti = s_sqlf(f->env, "SELECT jti FROM receipt WHERE message_id = '%s'", r.message_id);
    assert_non_null(jti);
    assert_string_equal(jti, r.jti);
    free(jti);
    pf_client_receipt_clear(&r);
    /* acknowledged in the outbox, and not sent again */
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    assert_int_equal(s_receipts(f->c, NULL, 2500, 0), 0);
    /* a resend of the same receipt (made due again) is not handed out twice */
    free(pf_env_sql(f->env, "UPDATE receipt_delivery SET acked_at = NULL RETURNING 1"));
    assert_int_equal(pf_client_hello(f->c, &err), 0);
    assert_int_equal(s_receipts(f->c, NULL, 2500, 0), 0);
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
}

/* With manual acknowledgement, a receipt the procedure did not
 * acknowledge (it could not store it) comes out again when the broker
 * resends it; once acknowledged, a resend is dropped. */
static void test_manual_ack_unacked_receipt_comes_again(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    pf_client_set_manual_ack(f->c, true);
    const char *to[] = {"citizen-a"};
    s_send_acked(f->c, "req-manual", to, 1, "Text");
    pf_client_receipt_t r;
    const char *err;
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    char *jti = strdup(r.jti);
    pf_client_receipt_clear(&r);
    /* not acknowledged: a HELLO makes the broker send it again */
    assert_int_equal(pf_client_hello(f->c, &err), 0);
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    assert_string_equal(r.jti, jti);
    assert_true(r.verified);
    pf_client_receipt_clear(&r);
    assert_int_equal(pf_client_ack_receipt(f->c, jti, &err), 0);
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    /* acknowledged: a resend (made due again) is not handed out */
    free(pf_env_sql(f->env, "UPDATE receipt_delivery SET acked_at = NULL RETURNING 1"));
    assert_int_equal(pf_client_hello(f->c, &err), 0);
    assert_int_equal(pf_client_next_receipt(f->c, 2500, &r, &err), 0);
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    free(jti);
    pf_client_destroy(&f->c);
}

/* A receipt signed by a key the procedure's JWKS does not have yet (the
 * receipt key was rotated) is not acknowledged: once the procedure loads
 * the new JWKS, it arrives.  (It was acknowledged like a forgery and lost
 * for good.) */
static void test_receipt_with_unknown_key_waits_for_new_jwks(void **state)
{
    fixture_t *f = *state;
    char *good = NULL, *stale = NULL;
    assert_true(asprintf(&good, "%s/receipt.jwks", pf_env_keys(f->env)) > 0);
    assert_true(asprintf(&stale, "%s/stale.jwks", pf_env_dir(f->env)) > 0);
    size_t len = 0;
    char *jwks = pf_test_read_file(good, &len);
    assert_non_null(jwks);
    char *kid = strstr(jwks, "\"kid\":\"");
    assert_non_null(kid);
    kid[7] = kid[7] == 'A' ? 'B' : 'A'; /* the same key under a kid no receipt names */
    FILE *fp = fopen(stale, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(jwks, 1, len, fp), len);
    fclose(fp);
    free(jwks);

    f->c = s_client(f->env);
    const char *err;
    assert_int_equal(pf_client_set_receipt_keys(f->c, stale, &err), 0);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-stale-jwks", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_receipt_t r;
    assert_int_equal(pf_client_next_receipt(f->c, 2000, &r, &err), 0);
    assert_int_equal(
        s_count(f->env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL"), 1);
    /* the new JWKS, and the broker asked to send what is pending */
    assert_int_equal(pf_client_set_receipt_keys(f->c, good, &err), 0);
    assert_int_equal(pf_client_hello(f->c, &err), 0);
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    assert_true(r.verified);
    assert_string_equal(r.message_id, res.copies[0].message_id);
    pf_client_receipt_clear(&r);
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
    free(good);
    free(stale);
}

static void s_db_set_sync(pf_env_t *env, bool on)
{
    char *db = pf_env_sql(env, "SELECT current_database()");
    assert_non_null(db);
    char sql[256], state[6];
    snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" %s", db,
             on ? "RESET synchronous_commit" : "SET synchronous_commit = off");
    assert_int_equal(pf_env_sql_state(env, sql, state), 0);
    free(db);
}

/* G1: a database that could lose a committed notice is refused, at start
 * (unless allow_unsafe_db) and at every reconnect: no ACK while it is
 * unsafe, service again once it is safe. */
static void test_unsafe_database_refused(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(pf_env_stop_broker(f->env, SIGTERM), 0);
    s_db_set_sync(f->env, false);
    long off = s_log_size(f->env);
    assert_int_not_equal(pf_env_start_broker(f->env, NULL), 0);
    assert_int_equal(pf_env_start_exit(f->env), 1);
    assert_true(s_log_has(f->env, off, "unsafe database setting synchronous_commit"));
    static const char *const unsafe_ok[] = {"allow_unsafe_db=on", NULL};
    assert_int_equal(pf_env_start_broker(f->env, unsafe_ok), 0);
    assert_int_equal(pf_env_stop_broker(f->env, SIGTERM), 0);

    s_db_set_sync(f->env, true);
    assert_int_equal(pf_env_start_broker(f->env, NULL), 0);
    f->c = s_client(f->env);
    /* while unsafe, no answer within a short time is as good as a NACK:
     * f->other gives up quickly */
    f->other = s_client_for(f->env, "tax-office", 1500, 0);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    s_send_acked(f->c, "req-safe-1", to, 1, "Text");

    /* the server turns unsafe behind the broker's back (a failover to a
     * replica set up carelessly), and its sessions are cut */
    s_db_set_sync(f->env, false);
    off = s_log_size(f->env);
    free(pf_env_sql(f->env, "SELECT count(pg_terminate_backend(pid))::text FROM "
                            "pg_stat_activity WHERE application_name LIKE 'postfach-broker%'"));
    for (int i = 0; i < 3; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "req-unsafe-%d", i);
        int rc = s_send(f->other, rid, to, 1, "Text", &res);
        /* NACK temporary or no answer; never an ACK */
        if (rc == 0) {
            assert_int_equal(res.ok, 0);
            pf_client_result_clear(&res);
        }
    }
    assert_int_equal(
        s_count(f->env, "SELECT count(*) FROM submission WHERE request_id LIKE 'req-unsafe-%'"), 0);
    bool refused = false;
    for (int64_t end = pf_test_now_ms() + 10000; !refused && pf_test_now_ms() < end;) {
        refused = s_log_has(f->env, off, "unsafe database setting synchronous_commit");
        if (!refused)
            usleep(50 * 1000);
    }
    assert_true(refused);
    assert_true(pf_env_broker_alive(f->env));

    /* safe again: served (within a generous deadline) */
    s_db_set_sync(f->env, true);
    int ok = 0;
    for (int64_t end = pf_test_now_ms() + 30000; !ok && pf_test_now_ms() < end;) {
        if (s_send(f->c, "req-safe-2", to, 1, "Text", &res) == 0) {
            ok = res.ok;
            pf_client_result_clear(&res);
        }
        if (!ok)
            usleep(200 * 1000);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(
        s_count(f->env, "SELECT count(*) FROM submission WHERE request_id LIKE 'req-unsafe-%'"), 0);
    pf_client_destroy(&f->other);
    pf_client_destroy(&f->c);
}

/* A procedure that names itself as the receipts' audience takes only its
 * own: a receipt whose "aud" is another procedure is not handed out and
 * not acknowledged (it stays pending); with the right name it comes.
 * (The client never looked at "aud".) */
static void test_receipt_for_another_audience_is_not_taken(void **state)
{
    fixture_t *f = *state;
    char *jwks = NULL;
    assert_true(asprintf(&jwks, "%s/receipt.jwks", pf_env_keys(f->env)) > 0);
    f->c = s_client(f->env);
    const char *err;
    assert_int_equal(pf_client_set_receipt_keys(f->c, jwks, &err), 0);
    pf_client_set_receipt_audience(f->c, "dog-registry");
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-aud", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_receipt_t r;
    assert_int_equal(pf_client_next_receipt(f->c, 2000, &r, &err), 0);
    assert_int_equal(
        s_count(f->env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL"), 1);
    pf_client_set_receipt_audience(f->c, "tax-office");
    assert_int_equal(pf_client_hello(f->c, &err), 0);
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    assert_true(r.verified);
    assert_string_equal(r.message_id, res.copies[0].message_id);
    pf_client_receipt_clear(&r);
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
    free(jwks);
}

/* A procedure with a receipt listener beside a short-lived sender (a
 * command-line send): when the sender's connection is gone, its receipts
 * go to the listener's connection, which has said nothing since its
 * HELLO.  (The broker kept one connection per sender, the one heard from
 * last; when a send to it failed, the listener got nothing until it spoke
 * again.) */
static void test_receipts_reach_a_second_connection(void **state)
{
    fixture_t *f = *state;
    const char *err;
    f->c = s_client(f->env); /* the listener */
    pf_client_receipt_t r;
    /* connected, and its HELLO (sent when the library sees the handshake
     * done) has gone out: the listener says nothing from here on */
    assert_int_equal(pf_client_next_receipt(f->c, 500, &r, &err), 0);
    f->other = s_client(f->env); /* the sender */
    pf_client_set_manual_ack(f->other, true);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->other, "req-second-conn", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    pf_client_destroy(&f->other); /* its delivered receipt not acknowledged */
    usleep(300 * 1000);
    /* due again now, not after receipt_retry_seconds */
    free(pf_env_sql(f->env, "UPDATE receipt_delivery SET next_attempt_at = now() RETURNING 1"));
    assert_int_equal(pf_client_next_receipt(f->c, 5000, &r, &err), 1);
    assert_string_equal(r.message_id, res.copies[0].message_id);
    pf_client_receipt_clear(&r);
    assert_true(pf_test_wait(s_acked, f->env, 5000));
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
}

/* Delivered receipts go out from the broker's memory right after the
 * COMMIT (sql/0010): the batch stores their delivery rows as sent once and
 * due again after receipt_retry_seconds (30 here), in its own transaction,
 * so the trigger adds none and wakes no relay.  With receipt_direct=off
 * they take the relay (NOTIFY, then a claim in a later transaction). */
static void test_delivered_receipts_sent_from_memory(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(pf_env_listen(f->env, "postfach_receipt"), 0);
    const char *to[] = {"citizen-a", "citizen-b"};
    for (int round = 0; round < 2; round++) {
        bool direct = round == 0;
        if (!direct) {
            static const char *const off[] = {"receipt_direct=off", NULL};
            assert_int_equal(pf_env_stop_broker(f->env, SIGTERM), 0);
            assert_int_equal(pf_env_start_broker(f->env, off), 0);
        }
        f->c = s_client(f->env);
        pf_client_result_t res;
        char rid[32];
        snprintf(rid, sizeof(rid), "req-direct-%d", round);
        assert_int_equal(s_send(f->c, rid, to, 2, "Text", &res), 0);
        assert_int_equal(res.ok, 1);
        assert_int_equal(s_receipts(f->c, NULL, 5000, 2), 2);
        /* the NOTIFY of a trigger that inserted delivery rows */
        int woke = pf_env_notifications(f->env, direct ? 500 : 5000, 1);
        assert_int_equal(woke, direct ? 0 : 1);
        /* sent once; due again 30 s after the batch's own transaction
         * time, or after the relay's later claim */
        char *same = s_sqlf(f->env,
                            "SELECT count(*) FILTER (WHERE d.next_attempt_at = r.created_at + "
                            "interval '30 seconds') || '/' || count(*) "
                            "FROM receipt_delivery d JOIN receipt r USING (jti) "
                            "WHERE d.attempts = 1 AND r.message_id IN ('%s', '%s')",
                            res.copies[0].message_id, res.copies[1].message_id);
        assert_non_null(same);
        assert_string_equal(same, direct ? "2/2" : "0/2");
        free(same);
        pf_client_result_clear(&res);
        pf_client_destroy(&f->c);
    }
}

static void test_receipts_queued_offline_arrive_on_reconnect(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a", "citizen-b"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-offline", to, 2, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    /* gone before reading any receipt */
    pf_client_destroy(&f->c);
    /* and the broker restarted in between, so nothing is in memory */
    assert_int_equal(pf_env_stop_broker(f->env, SIGTERM), 0);
    assert_int_equal(pf_env_start_broker(f->env, NULL), 0);
    assert_int_equal(
        s_count(f->env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL"), 2);

    f->c = s_client(f->env);
    int got = s_receipts(f->c, res.copies[0].message_id, 8000, 1);
    got += s_receipts(f->c, res.copies[1].message_id, 8000, 1);
    assert_int_equal(got, 2);
    pf_client_result_clear(&res);
    pf_client_destroy(&f->c);
}

static bool s_acked_a(void *arg)
{
    pf_env_t *env = arg;
    return pf_env_sql_int(env,
                          "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NOT NULL") >= 1;
}

static void test_sender_isolation(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(pf_env_ctl(f->env, NULL, "sender", "add", "building-office", NULL), 0);
    /* B (f->other) connects first and waits, so any misrouting would reach
     * it */
    f->other = s_client_for(f->env, "building-office", 5000, 2);
    const char *err;
    pf_client_receipt_t r;
    assert_int_equal(pf_client_next_receipt(f->other, 300, &r, &err), 0);

    f->c = s_client(f->env); /* A */
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    assert_int_equal(s_send(f->c, "req-iso", to, 1, "Text", &res), 0);
    assert_int_equal(res.ok, 1);
    /* B may not acknowledge A's receipt */
    char *jti = pf_env_sql(f->env, "SELECT jti FROM receipt");
    assert_non_null(jti);
    assert_int_equal(pf_client_ack_receipt(f->other, jti, &err), 0);
    assert_int_equal(s_receipts(f->other, NULL, 2500, 0), 0);
    assert_int_equal(
        s_count(f->env, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NOT NULL"), 0);
    /* A gets its own */
    assert_int_equal(s_receipts(f->c, res.copies[0].message_id, 5000, 1), 1);
    assert_true(pf_test_wait(s_acked_a, f->env, 5000));
    /* B's own submission: only B's receipt comes to B */
    pf_client_result_t rb;
    assert_int_equal(s_send(f->other, "req-iso", to, 1, "Text from B", &rb), 0);
    assert_int_equal(rb.ok, 1); /* same request id, other sender: no conflict */
    assert_int_equal(s_receipts(f->other, rb.copies[0].message_id, 5000, 1), 1);
    assert_int_equal(s_receipts(f->c, NULL, 1500, 0), 0);
    free(jti);
    pf_client_result_clear(&res);
    pf_client_result_clear(&rb);
    pf_client_destroy(&f->c);
    pf_client_destroy(&f->other);
}

static void test_send_cli(void **state)
{
    fixture_t *f = *state;
    pf_env_t *env = f->env;
    char *pub = pf_env_broker_pubfile(env), *key = pf_env_sender_keyfile(env, "tax-office");
    char *jwks = NULL, *att = NULL;
    if (asprintf(&jwks, "%s/receipt.jwks", pf_env_keys(env)) < 0 ||
        asprintf(&att, "%s/bescheid.pdf", pf_env_dir(env)) < 0)
        abort();
    FILE *fp = fopen(att, "w");
    assert_non_null(fp);
    fputs("%PDF-1.7 cli test\n", fp);
    fclose(fp);
    char *out = NULL, *err = NULL;
    int rc = pf_env_run(env, &out, &err, "postfach-send", "--broker", pf_env_broker_endpoint(env),
                        "--broker-key", pub, "--key", key, "--to", "citizen-a", "--to", "citizen-b",
                        "--title", "Bescheid", "--subject", "Betreff", "--body", "Text",
                        "--reference", "AZ 1", "--attach", att, "--request-id", "cli-1",
                        "--wait-receipts", "--receipt-jwks", jwks, "--wait-seconds", "10", NULL);
    if (rc != 0)
        fail_msg("postfach-send exited %d: %s", rc, err ? err : "");
    /* two ACK lines, then two delivered receipts */
    char *m1 = s_sqlf(env, "SELECT id FROM message WHERE mailbox_id = 'citizen-a'");
    char *m2 = s_sqlf(env, "SELECT id FROM message WHERE mailbox_id = 'citizen-b'");
    assert_non_null(m1);
    assert_non_null(m2);
    char line[128];
    snprintf(line, sizeof(line), "citizen-a %s\n", m1);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "citizen-b %s\n", m2);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "receipt delivered %s ", m1);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "receipt delivered %s ", m2);
    assert_non_null(strstr(out, line));
    assert_int_equal(s_count(env, "SELECT count(*) FROM message WHERE attachment_count = 1"), 2);
    free(out);
    free(err);

    /* a NACK: exit 1, "nack <code> <reason>" */
    rc = pf_env_run(env, &out, &err, "postfach-send", "--broker", pf_env_broker_endpoint(env),
                    "--broker-key", pub, "--key", key, "--to", "nobody", "--title", "t",
                    "--subject", "s", "--body", "b", NULL);
    assert_int_equal(rc, 1);
    assert_true(strncmp(out, "nack unknown_recipient ", 23) == 0);
    free(out);
    free(err);

    /* usage errors: exit 2 */
    rc =
        pf_env_run(env, &out, &err, "postfach-send", "--broker", pf_env_broker_endpoint(env), NULL);
    assert_int_equal(rc, 2);
    free(out);
    free(err);

    /* receipts-only: nothing pending, exits 0 after the wait */
    rc = pf_env_run(env, &out, &err, "postfach-send", "--broker", pf_env_broker_endpoint(env),
                    "--broker-key", pub, "--key", key, "--receipts-only", "--wait-seconds", "1",
                    NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);
    free(err);

    /* no broker: exit 3 */
    rc = pf_env_run(env, &out, &err, "postfach-send", "--broker", "tcp://127.0.0.1:1",
                    "--broker-key", pub, "--key", key, "--to", "citizen-a", "--title", "t",
                    "--subject", "s", "--body", "b", "--timeout", "300", "--retries", "1", NULL);
    assert_int_equal(rc, 3);
    free(out);
    free(err);
    free(m1);
    free(m2);
    free(pub);
    free(key);
    free(jwks);
    free(att);
}

static void test_db_connection_lost_then_served(void **state)
{
    fixture_t *f = *state;
    f->c = s_client(f->env);
    const char *to[] = {"citizen-a"};
    pf_client_result_t res;
    s_send_acked(f->c, "req-db-1", to, 1, "Text");
    /* the broker's sessions by their names: main, ZAP and committers */
    assert_int_equal(pf_env_sql_int(f->env, "SELECT count(DISTINCT application_name) FROM "
                                            "pg_stat_activity WHERE datname = current_database() "
                                            "AND application_name IN ('postfach-broker', "
                                            "'postfach-broker/zap', 'postfach-broker/commit')"),
                     3);
    /* cut every connection of the broker */
    assert_true(pf_env_sql_int(f->env, "SELECT count(pg_terminate_backend(pid)) FROM "
                                       "pg_stat_activity WHERE datname = current_database() AND "
                                       "application_name LIKE 'postfach-broker%'") >= 3);
    /* answers are NACK temporary until it reconnected, never a false ACK */
    int tries = 0, acked = 0;
    while (tries++ < 50 && !acked) {
        assert_int_equal(s_send(f->c, "req-db-2", to, 1, "Text", &res), 0);
        if (res.ok)
            acked = 1;
        else
            assert_string_equal(res.code, "temporary");
        pf_client_result_clear(&res);
        if (!acked)
            usleep(100 * 1000);
    }
    assert_true(acked);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 2);
    /* the relay works on the new connection too (LISTEN renewed) */
    assert_true(s_receipts(f->c, NULL, 5000, 2) == 2);
    pf_client_destroy(&f->c);
}

static void *s_killer(void *arg)
{
    killer_t *k = arg;
    usleep((useconds_t)k->delay_ms * 1000);
    pf_env_stop_broker(k->env, SIGKILL);
    usleep(300 * 1000);
    pf_env_start_broker(k->env, NULL);
    atomic_store(&k->done, true);
    return NULL;
}

/* The client library's log: counts its resends after a timeout. */
static void s_count_retries(void *ctx, int level, const char *msg)
{
    (void)level;
    if (strncmp(msg, "event=retry ", 12) == 0)
        atomic_fetch_add((atomic_long *)ctx, 1);
}

static void test_kill9_nothing_lost_or_duplicated(void **state)
{
    fixture_t *f = *state;
    /* at least N sends, and on until the broker was killed and is back,
     * so the kill falls into the load however long the start took */
    enum { N = 40, NMAX = 2000 };
    f->c = s_client_for(f->env, "tax-office", 1000, 20);
    atomic_long retries = 0;
    pf_client_set_log(f->c, s_count_retries, &retries);
    const char *to[] = {"citizen-a", "citizen-b"};
    static char ids[NMAX][2][37];
    killer_t *k = &f->killer;
    k->env = f->env;
    k->delay_ms = 150;
    assert_int_equal(pthread_create(&k->thread, NULL, s_killer, k), 0);
    k->running = true;
    int n = 0;
    int64_t deadline = pf_test_now_ms() + 60000;
    while (n < NMAX && (n < N || (!atomic_load(&k->done) && pf_test_now_ms() < deadline))) {
        char rid[32];
        snprintf(rid, sizeof(rid), "k9-%d", n);
        pf_client_result_t res;
        assert_int_equal(s_send(f->c, rid, to, 2, "Text", &res), 0);
        assert_int_equal(res.ok, 1);
        for (int j = 0; j < 2; j++)
            snprintf(ids[n][j], sizeof(ids[n][j]), "%s", res.copies[j].message_id);
        pf_client_result_clear(&res);
        n++;
    }
    k->running = false;
    pthread_join(k->thread, NULL);
    printf("broker kill9: %d notices sent, %ld resends of the client library\n", n,
           (long)atomic_load(&retries));
    /* the kill hit the load: some SEND went unanswered and was resent */
    assert_true(atomic_load(&retries) > 0);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 2 * n);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM submission"), n);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM receipt"), 2 * n);
    /* every acknowledged id is the stored one */
    for (int i = 0; i < n; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "k9-%d", i);
        pf_client_result_t res;
        assert_int_equal(s_send(f->c, rid, to, 2, "Text", &res), 0);
        assert_int_equal(res.ok, 1);
        assert_string_equal(res.copies[0].message_id, ids[i][0]);
        assert_string_equal(res.copies[1].message_id, ids[i][1]);
        pf_client_result_clear(&res);
    }
    pf_client_destroy(&f->c);
}

typedef struct {
    pf_env_t *env;
    int id;
    int acked;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    char *pub = pf_env_broker_pubfile(w->env), *key = pf_env_sender_keyfile(w->env, "tax-office");
    pf_client_t *c = NULL;
    const char *err;
    if (pf_client_new(pf_env_broker_endpoint(w->env), pub, key, &c, &err) == 0) {
        pf_client_set_timeout(c, 5000, 3);
        const char *to[] = {"citizen-a", "citizen-c"};
        for (int i = 0; i < 15; i++) {
            char rid[32];
            snprintf(rid, sizeof(rid), "w%d-%d", w->id, i);
            pf_client_result_t res;
            if (s_send(c, rid, to, 2, "Text", &res) == 0 && res.ok)
                w->acked++;
            pf_client_result_clear(&res);
        }
        pf_client_destroy(&c);
    }
    free(pub);
    free(key);
    return NULL;
}

static void test_concurrent_senders(void **state)
{
    fixture_t *f = *state;
    enum { T = 4 };
    worker_t w[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker_t){f->env, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, s_worker, &w[i]), 0);
    }
    /* all joined before any is judged: a failed assertion must not leave
     * a worker running on this stack frame's w[] */
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < T; i++)
        assert_int_equal(w[i].acked, 15);
    assert_int_equal(s_count(f->env, "SELECT count(*) FROM message"), 2 * 15 * T);
    assert_int_equal(s_count(f->env, "SELECT count(DISTINCT id) FROM message"), 2 * 15 * T);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send_ack_no_plaintext_stored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_multi_recipient_separate_copies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retry_same_request_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_same_request_id_different_payload_conflict, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_recipient_nothing_stored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_clear_nack_and_serving, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_oversize_through_client_nacked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_key_gets_no_answer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_revoked_sender_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rotated_key_applies_at_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rotated_sender_key_closes_open_connection, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_rotated_sender_key_gets_no_receipts, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_old_schema_refused_at_start, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_delivered_receipt_exactly_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_manual_ack_unacked_receipt_comes_again, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_database_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_receipt_for_another_audience_is_not_taken, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_receipt_with_unknown_key_waits_for_new_jwks, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_receipts_reach_a_second_connection, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_delivered_receipts_sent_from_memory, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_receipts_queued_offline_arrive_on_reconnect, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_sender_isolation, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_send_cli, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_db_connection_lost_then_served, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_nothing_lost_or_duplicated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_senders, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
