/* End-to-end tests of the receipt relay's flow control: the real
 * postfach-broker against a real PostgreSQL, with raw ZeroMQ DEALER
 * sockets under CURVE as the procedures, so the test decides exactly when
 * they read and what they say (a RACK only in the last test).
 *
 * Receipts are made due by inserting receipt rows as the superuser (the
 * statement trigger of sql/0012 adds their receipt_delivery rows); the
 * broker relays tokens without verifying them, so they are filler of the
 * size a test needs.  Every test sets receipt_retry_seconds to a day, so a
 * receipt the broker sent is not due again while the test runs and every
 * count below is exact.
 *
 * Covers:
 * - a receipt that meets the connection's full queue (EAGAIN under
 *   ROUTER_MANDATORY, S_SNDHWM) keeps the route and is given back, due
 *   again soon: once the procedure reads, every receipt reaches it, each
 *   once, although it never spoke again (before 1ff1f27 the route was
 *   dropped as if gone, and it got nothing more; then, until they were
 *   given back, those that met the full queue waited receipt_retry_seconds);
 * - a relay pass that ends after its S_RELAY_ROUNDS claims with receipts
 *   left asks for the next pass soon, not after relay_poll_ms: a backlog
 *   of more than one pass arrives in full with relay_poll_ms at its
 *   maximum and no NOTIFY (before 1ff1f27 only what the first pass took,
 *   the rest a minute later);
 * - a HELLO makes at most receipt_window of the receipts sent before due
 *   again, and each receipt acknowledged one more (before 5f98592 every
 *   HELLO made the whole outbox due). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "harness.h"
#include "proto/curve.h"

static const char *const s_citizens[] = {"citizen-a", NULL};

/* the broker's relay (lib/broker/broker.c): one pass makes at most
 * S_RELAY_ROUNDS claims of at most S_RELAY_BATCH receipts per sender and
 * S_RELAY_CLAIM_MAX in all, so it takes at most S_PASS_MAX of one sender's
 * and S_PASS_CLAIMS in all */
#define S_RELAY_ROUNDS 8
#define S_RELAY_BATCH 256
#define S_RELAY_CLAIM_MAX 1024
#define S_PASS_MAX (S_RELAY_ROUNDS * S_RELAY_BATCH)
#define S_PASS_CLAIMS (S_RELAY_ROUNDS * S_RELAY_CLAIM_MAX)
/* test_backlog_passes_follow: senders, and receipts due for each */
#define S_SENDERS 16
#define S_EACH 520

/* The env and the sockets live in the fixture, so a failed assertion
 * (cmocka jumps out of the test) still closes them and stops the broker. */
typedef struct {
    pf_env_t *env;
    void *zctx;
    void *raw;             /* the procedure: tax-office */
    void *many[S_SENDERS]; /* test_backlog_passes_follow's connections */
    char *sid;             /* tax-office's sender id */
    char *extra;           /* the jti of test_full_queue_keeps_route's last receipt */
    char (*got)[40];       /* test_hello_replays_a_window's receipts */
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->env = pf_env_new("relay_flow", s_citizens);
    f->zctx = zmq_ctx_new();
    if (f->env == NULL || f->zctx == NULL) {
        if (f->zctx != NULL)
            zmq_ctx_term(f->zctx);
        pf_env_destroy(&f->env);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    if (f->raw != NULL)
        zmq_close(f->raw);
    for (int i = 0; i < S_SENDERS; i++)
        if (f->many[i] != NULL)
            zmq_close(f->many[i]);
    zmq_ctx_term(f->zctx);
    free(f->sid);
    free(f->extra);
    free(f->got);
    /* a clean stop is part of every test */
    int rc = pf_env_stop_broker(f->env, SIGTERM);
    pf_fixture_end(f->env, NULL, f);
    return rc == 0 ? 0 : -1;
}

/* A DEALER socket with a sender's CURVE keys (Z85), connected to the
 * broker.  rcvhwm and rcvbuf (0: libzmq's defaults) bound what the client
 * side takes off the wire while the test does not read. */
static void *s_raw_keys(fixture_t *f, const char *pub, const char *sec, int rcvhwm, int rcvbuf)
{
    char *pubf = pf_env_broker_pubfile(f->env);
    pf_curve_keys_t server;
    const char *err;
    assert_int_equal(pf_curve_load(pubf, false, &server, &err), 0);
    free(pubf);
    void *s = zmq_socket(f->zctx, ZMQ_DEALER);
    assert_non_null(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (rcvhwm > 0)
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
    if (rcvbuf > 0)
        zmq_setsockopt(s, ZMQ_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server.public_key, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    assert_int_equal(zmq_connect(s, pf_env_broker_endpoint(f->env)), 0);
    return s;
}

/* The same with the key file of a sender made by postfach-ctl. */
static void *s_raw(fixture_t *f, const char *sender, int rcvhwm, int rcvbuf)
{
    char *keyf = pf_env_sender_keyfile(f->env, sender);
    pf_curve_keys_t own;
    const char *err;
    assert_int_equal(pf_curve_load(keyf, true, &own, &err), 0);
    free(keyf);
    void *s = s_raw_keys(f, own.public_key, own.secret_key, rcvhwm, rcvbuf);
    pf_curve_keys_clear(&own);
    return s;
}

/* Sends "PF1" and a command without arguments (HELLO, PING). */
static void s_raw_cmd(void *s, const char *cmd)
{
    assert_int_equal(zmq_send(s, "PF1", 3, ZMQ_SNDMORE), 3);
    assert_int_equal(zmq_send(s, cmd, strlen(cmd), 0), (int)strlen(cmd));
}

/* One message from s within timeout_ms: 1 with its command in cmd, the
 * third frame (a RECEIPT's jti) in jti and the fourth one's size (its
 * token) in *token_len_r; 0 when none came. */
static int s_raw_recv(void *s, int timeout_ms, char cmd[16], char jti[40], size_t *token_len_r)
{
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return 0;
    cmd[0] = jti[0] = '\0';
    *token_len_r = 0;
    int more = 1;
    for (int i = 0; more; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        assert_true(zmq_msg_recv(&m, s, 0) >= 0);
        size_t len = zmq_msg_size(&m);
        if (i == 1 || i == 2) {
            char *dst = i == 1 ? cmd : jti;
            size_t cap = i == 1 ? 16 : 40;
            len = len < cap ? len : cap - 1;
            memcpy(dst, zmq_msg_data(&m), len);
            dst[len] = '\0';
        } else if (i == 3) {
            *token_len_r = len;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return 1;
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

/* Makes n receipts with tokens of token_len bytes due for each sender
 * whose name is LIKE pattern, in one transaction (the statement trigger
 * of sql/0012 adds their delivery rows).  wake false: the session promises
 * to wake the relay itself (postfach.receipt_wake), so the trigger sends no
 * NOTIFY, and nothing but the test's own doing starts a relay pass. */
static void s_make_due(pf_env_t *env, const char *pattern, int n, int token_len, bool wake)
{
    char sql[1024], state[6];
    snprintf(sql, sizeof(sql),
             "BEGIN; %s"
             "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
             "SELECT gen_random_uuid(), s.id, 'citizen-a', gen_random_uuid(), 'delivered', "
             "repeat('x', %d) FROM sender s CROSS JOIN generate_series(1, %d) "
             "WHERE s.name LIKE '%s'; COMMIT",
             wake ? "" : "SET LOCAL postfach.receipt_wake = 'caller'; ", token_len, n, pattern);
    if (pf_env_sql_state(env, sql, state) != 0)
        fail_msg("cannot make receipts due: SQLSTATE %s", state);
}

/* How often needle occurs in the broker's log. */
static long s_log_count(pf_env_t *env, const char *needle)
{
    char *log = pf_env_broker_log(env, 0);
    long n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(log);
    return n;
}

static bool s_none_pending(void *arg)
{
    return pf_env_sql_int(arg, "SELECT count(*) FROM receipt_delivery WHERE acked_at IS NULL") == 0;
}

static bool s_all_claimed(void *arg)
{
    return pf_env_sql_int(arg, "SELECT count(*) FROM receipt_delivery WHERE attempts = 0") == 0;
}

/* ---- tests ------------------------------------------------------------- */

static bool s_queue_full_logged(void *arg)
{
    return s_log_count(arg, "event=route_full ") > 0;
}

static int s_jti_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The procedure says HELLO and then does not read while one relay pass
 * sends it S_PASS_MAX receipts of 8 KiB: more than its queue in the broker
 * (S_SNDHWM 1000), the kernel's socket buffers (a send buffer of at most
 * tcp_wmem's 4 MiB here, a small receive buffer) and its own receive queue
 * (1) hold, so some sends meet a full queue; the positive control checks
 * that they did.  One more receipt is made due meanwhile.  Then it reads,
 * and says nothing: every receipt must reach it, each once, over the route
 * of its HELLO: those queued at first, those that met the full queue (given
 * back, due again after 200 ms, not after receipt_retry_seconds, a day
 * here), and the last one.  Before 1ff1f27 the full queue dropped the route
 * and nothing more came; after it, until the receipts were given back, those
 * that met the full queue waited the day. */
static void test_full_queue_keeps_route(void **state)
{
    fixture_t *f = *state;
    pf_env_t *env = f->env;
    static const char *const settings[] = {"relay_poll_ms=50", "receipt_retry_seconds=86400",
                                           "expire_poll_ms=3600000", "log_level=debug", NULL};
    assert_int_equal(pf_env_start_broker(env, settings), 0);
    f->sid = pf_env_sql(env, "SELECT id FROM sender WHERE name = 'tax-office'");
    assert_non_null(f->sid);
    enum { TOKEN = 8192, ALL = S_PASS_MAX + 1 };
    s_make_due(env, "tax-office", S_PASS_MAX, TOKEN, true);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery"), S_PASS_MAX);

    f->raw = s_raw(f, "tax-office", 1, 16384);
    s_raw_cmd(f->raw, "HELLO");
    /* positive control: the queue really filled up */
    assert_true(pf_test_wait(s_queue_full_logged, env, 30000));
    f->extra = s_sqlf(env,
                      "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, "
                      "token) VALUES (gen_random_uuid(), %s, 'citizen-a', gen_random_uuid(), "
                      "'delivered', repeat('x', %d)) RETURNING jti::text",
                      f->sid, TOKEN);
    assert_non_null(f->extra);

    /* the procedure reads, and says nothing */
    char(*got)[40] = calloc(ALL + 1, sizeof(*got));
    assert_non_null(got);
    long n = 0;
    bool extra = false;
    int64_t deadline = pf_test_now_ms() + 30000;
    while (n <= ALL && pf_test_now_ms() < deadline) {
        char cmd[16], jti[40];
        size_t len;
        if (s_raw_recv(f->raw, 200, cmd, jti, &len) != 1)
            continue;
        if (strcmp(cmd, "RECEIPT") != 0 || len != TOKEN) {
            free(got);
            fail_msg("got %s with %zu bytes, expected a RECEIPT of %d", cmd, len, TOKEN);
        }
        extra = extra || strcmp(jti, f->extra) == 0;
        if (n < ALL)
            memcpy(got[n], jti, sizeof(got[n]));
        n++;
        if (n == ALL) /* a little longer: anything sent twice would show */
            deadline = pf_test_now_ms() + 500;
    }
    qsort(got, (size_t)(n < ALL ? n : ALL), sizeof(*got), s_jti_cmp);
    long twice = 0;
    for (long i = 1; i < n && i < ALL; i++)
        twice += strcmp(got[i - 1], got[i]) == 0;
    free(got);
    print_message("%ld of %d receipts came (the last one %s), %ld twice; route_full %ld, "
                  "relay_queue_full %ld\n",
                  n, ALL, extra ? "among them" : "not", twice,
                  s_log_count(env, "event=route_full "),
                  s_log_count(env, "event=relay_queue_full "));
    if (n != ALL || !extra || twice != 0)
        fail_msg("%ld of %d receipts came, the last one %s, %ld twice (route_gone %ld)", n, ALL,
                 extra ? "among them" : "missing", twice, s_log_count(env, "event=route_gone "));
    assert_true(s_log_count(env, "event=relay_queue_full ") > 0);
    assert_int_equal(s_log_count(env, "event=route_gone "), 0);
}

typedef struct {
    char name[24];
    char pub[41], sec[41];
} sender_keys_t;

/* relay_poll_ms at its maximum (60 s), no NOTIFY: one HELLO starts a
 * relay pass, which claims S_PASS_CLAIMS of the backlog, and the rest must
 * follow without any further wake-up, i.e. long before the next poll.
 *
 * The backlog is spread over S_SENDERS senders, each with one connection
 * that reads all the time and never acknowledges: each claim shares its
 * S_RELAY_CLAIM_MAX out evenly, 64 per sender, so a pass takes 512 of each
 * sender's S_EACH and leaves 8 each for the next.  No connection is ever
 * sent more than S_EACH (< S_SNDHWM 1000) receipts, so none can meet a
 * full queue, however slowly the test reads.  (With one sender, a pass
 * sends 2048 to one connection, and whether that meets a full queue
 * depends on how fast the I/O threads drain it: it did in 2 of 12 runs
 * with two suites at once on two cores.) */
static void test_backlog_passes_follow(void **state)
{
    fixture_t *f = *state;
    pf_env_t *env = f->env;
    /* senders with keys of the test's making: the broker needs their
     * public keys only */
    enum { TOKEN = 64 };
    sender_keys_t k[S_SENDERS];
    for (int i = 0; i < S_SENDERS; i++) {
        snprintf(k[i].name, sizeof(k[i].name), "relay-%02d", i);
        assert_int_equal(zmq_curve_keypair(k[i].pub, k[i].sec), 0);
        char *id = s_sqlf(env,
                          "INSERT INTO sender (name, curve_key) VALUES ('%s', '%s') "
                          "RETURNING id::text",
                          k[i].name, k[i].pub);
        assert_non_null(id);
        free(id);
    }
    static const char *const settings[] = {"relay_poll_ms=60000", "receipt_retry_seconds=86400",
                                           "expire_poll_ms=3600000", "log_level=debug", NULL};
    assert_int_equal(pf_env_start_broker(env, settings), 0);

    /* every connection speaks (PING: it has a route then) before anything
     * is due, and nothing of that wakes the relay */
    for (int i = 0; i < S_SENDERS; i++) {
        f->many[i] = s_raw_keys(f, k[i].pub, k[i].sec, 0, 0);
        s_raw_cmd(f->many[i], "PING");
    }
    char cmd[16], jti[40];
    size_t len;
    for (int i = 0; i < S_SENDERS; i++) {
        assert_int_equal(s_raw_recv(f->many[i], 10000, cmd, jti, &len), 1);
        assert_string_equal(cmd, "PONG");
    }
    /* due all at once, and without NOTIFY (postfach.receipt_wake): the
     * broker's poll at start-up found nothing, the next one is a minute
     * away */
    s_make_due(env, "relay-%", S_EACH, TOKEN, false);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM receipt_delivery"),
                     S_SENDERS * S_EACH);
    /* the one wake-up: a HELLO (nothing to replay, nothing was sent) */
    s_raw_cmd(f->many[0], "HELLO");

    long got[S_SENDERS] = {0}, total = 0;
    zmq_pollitem_t items[S_SENDERS];
    for (int i = 0; i < S_SENDERS; i++)
        items[i] = (zmq_pollitem_t){.socket = f->many[i], .events = ZMQ_POLLIN};
    /* 20 s: far more than this needs, and well before the next poll */
    int64_t deadline = pf_test_now_ms() + 20000;
    while (total < S_SENDERS * S_EACH && pf_test_now_ms() < deadline) {
        if (zmq_poll(items, S_SENDERS, 200) <= 0)
            continue;
        for (int i = 0; i < S_SENDERS; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            assert_int_equal(s_raw_recv(f->many[i], 0, cmd, jti, &len), 1);
            assert_string_equal(cmd, "RECEIPT");
            assert_int_equal(len, TOKEN);
            got[i]++;
            total++;
        }
    }
    if (total != S_SENDERS * S_EACH)
        fail_msg("%ld of %d due receipts arrived (one pass takes %d; route_full %ld)", total,
                 S_SENDERS * S_EACH, S_PASS_CLAIMS, s_log_count(env, "event=route_full "));
    for (int i = 0; i < S_SENDERS; i++)
        assert_int_equal(got[i], S_EACH);
    assert_true(s_all_claimed(env));
}

/* Receives RECEIPTs until `want` more came or 10 s passed, then for
 * another `quiet_ms` (anything more would show); their jtis go into
 * got[*n..], at most cap in all.  A jti that came before fails the test. */
static void s_take(fixture_t *f, char (*got)[40], long *n, long cap, long want, int quiet_ms)
{
    long until = *n + want;
    int64_t deadline = pf_test_now_ms() + 10000;
    bool quiet = false;
    for (;;) {
        if (!quiet && (*n >= until || pf_test_now_ms() >= deadline)) {
            quiet = true;
            deadline = pf_test_now_ms() + quiet_ms;
        } else if (quiet && pf_test_now_ms() >= deadline) {
            break;
        }
        char cmd[16], jti[40];
        size_t len;
        if (s_raw_recv(f->raw, 50, cmd, jti, &len) != 1)
            continue;
        assert_string_equal(cmd, "RECEIPT");
        for (long i = 0; i < *n; i++)
            if (strcmp(got[i], jti) == 0)
                fail_msg("receipt %s came twice (the %ld-th one)", jti, *n + 1);
        if (*n >= cap)
            fail_msg("more receipts came than there are (%ld)", cap);
        memcpy(got[(*n)++], jti, 40);
    }
    if (*n != until)
        fail_msg("%ld receipts came, want %ld (replays: %ld)", *n, until,
                 s_log_count(f->env, "event=replay "));
}

/* Acknowledges got[from..to) in one RACK. */
static void s_rack(fixture_t *f, char (*got)[40], long from, long to)
{
    assert_true(to > from && to - from <= 256);
    assert_int_equal(zmq_send(f->raw, "PF1", 3, ZMQ_SNDMORE), 3);
    assert_int_equal(zmq_send(f->raw, "RACK", 4, ZMQ_SNDMORE), 4);
    for (long i = from; i < to; i++)
        assert_int_equal(zmq_send(f->raw, got[i], 36, i + 1 < to ? ZMQ_SNDMORE : 0), 36);
}

/* The procedure has S_SENT receipts that were sent once and are not due
 * again for an hour (their connection dropped, say).  A HELLO makes only
 * receipt_window of them due, those that would have been due first, and
 * a second HELLO the next ones: a procedure that never acknowledges is
 * not sent its whole outbox on every reconnect (what fed the storm that
 * docs/reliability.md describes).  Once it acknowledges, as many more
 * come as it acknowledged, until every receipt came, each once. */
static void test_hello_replays_a_window(void **state)
{
    fixture_t *f = *state;
    pf_env_t *env = f->env;
    enum { WINDOW = 16, S_SENT = 100 };
    static const char *const settings[] = {"relay_poll_ms=50",  "receipt_retry_seconds=86400",
                                           "receipt_window=16", "expire_poll_ms=3600000",
                                           "log_level=debug",   NULL};
    assert_int_equal(pf_env_start_broker(env, settings), 0);
    char state_[6];
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "BEGIN; SET LOCAL postfach.receipt_wake = 'caller'; "
             "INSERT INTO receipt (jti, sender_id, mailbox_id, message_id, event, token) "
             "SELECT gen_random_uuid(), s.id, 'citizen-a', gen_random_uuid(), 'delivered', 'x' "
             "FROM sender s CROSS JOIN generate_series(1, %d) WHERE s.name = 'tax-office'; "
             "UPDATE receipt_delivery SET attempts = 1, "
             "next_attempt_at = now() + interval '1 hour'; COMMIT",
             S_SENT);
    if (pf_env_sql_state(env, sql, state_) != 0)
        fail_msg("cannot make the receipts: SQLSTATE %s", state_);

    char(*got)[40] = f->got = calloc(S_SENT, sizeof(*got));
    assert_non_null(got);
    long n = 0;
    f->raw = s_raw(f, "tax-office", 0, 0);
    s_raw_cmd(f->raw, "HELLO");
    s_take(f, got, &n, S_SENT, WINDOW, 500);
    s_raw_cmd(f->raw, "HELLO");
    s_take(f, got, &n, S_SENT, WINDOW, 500);
    /* each HELLO cut at the window told the operator so */
    assert_int_equal(s_log_count(env, "event=replay_window_full "), 2);
    /* acknowledging 2 x WINDOW is credit for at most WINDOW more */
    s_rack(f, got, 0, n);
    s_take(f, got, &n, S_SENT, WINDOW, 300);
    while (n < S_SENT) {
        long from = n - WINDOW;
        s_rack(f, got, from, n);
        s_take(f, got, &n, S_SENT, S_SENT - n < WINDOW ? S_SENT - n : WINDOW, 300);
    }
    s_rack(f, got, n - (S_SENT % WINDOW ? S_SENT % WINDOW : WINDOW), n);
    /* every one acknowledged, nothing more comes */
    s_take(f, got, &n, S_SENT, 0, 300);
    assert_true(pf_test_wait(s_none_pending, env, 10000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_queue_keeps_route, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_backlog_passes_follow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hello_replays_a_window, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
