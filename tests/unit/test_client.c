/* Unit tests for lib/client (libpostfach) when a reconnect fails, against
 * a fake broker: a CURVE ROUTER socket in a thread of this test that
 * answers SEND with receipts and an ACK, and counts HELLOs and the jtis
 * of RACKs.
 *
 * The client collects receipt acknowledgements in an array of
 * PF_WIRE_MAX_RACK jtis and sends them as one RACK.  When a reconnect
 * fails (the socket NULL; libzmq out of file descriptors, say) there is
 * nothing to send them on: they must be dropped (the broker sends those
 * receipts again), not piled up past the array, and the next wait must
 * reconnect rather than poll without a socket (commit 5fdd3e8).  Before
 * that fix, the 257th acknowledgement after a failed reconnect was
 * written past the array, over the fields behind it, and the next one
 * read past the client (ASan: heap-buffer-overflow).
 *
 * A failed reconnect cannot be had from the outside (zmq_connect does not
 * wait for the peer), so it is made with a link seam: this file defines
 * zmq_socket, to which the library's client.o is bound ahead of libzmq's.
 * It passes every call on (dlsym RTLD_NEXT) except while s_socket_fail is
 * set, when it fails as libzmq does without a file descriptor left for
 * the socket's mailbox (NULL, EMFILE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "postfach/postfach.h"
#include "proto/curve.h"
#include "proto/wire.h"
#include "util/b64url.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

/* more than one RACK's worth: the array would overflow by 44 */
#define S_RECEIPTS (PF_WIRE_MAX_RACK + 44)

/* ---- the seam -------------------------------------------------------------- */

static void *(*s_real_zmq_socket)(void *, int);
static atomic_bool s_socket_fail;

void *zmq_socket(void *ctx, int type)
{
    if (atomic_load(&s_socket_fail)) {
        errno = EMFILE;
        return NULL;
    }
    return s_real_zmq_socket(ctx, type);
}

/* ---- the fake broker -------------------------------------------------------- */

/* routing id, signature, command and a full RACK's jtis */
#define S_BROKER_FRAMES (3 + PF_WIRE_MAX_RACK)

typedef struct {
    char endpoint[300];
    char secret[PF_CURVE_Z85_LEN + 1];
    int receipts; /* RECEIPTs sent before the ACK of each SEND */
    char (*jtis)[PF_UUID_STRLEN + 1];
    char **tokens;
    bool resend_on_hello; /* every receipt sent again after a HELLO */
    pthread_t thread;
    bool running;
    atomic_bool stop, bound;
    atomic_int hellos, sends;
    atomic_int racked[S_RECEIPTS]; /* how often each jti came in a RACK */
} s_broker_t;

static void s_broker_send(void *sock, zmq_msg_t *rid, pf_wire_out_t *out)
{
    zmq_send(sock, zmq_msg_data(rid), zmq_msg_size(rid), ZMQ_SNDMORE);
    for (size_t i = 0; i < out->count; i++)
        zmq_send(sock, out->frames[i].data, out->frames[i].size,
                 i + 1 < out->count ? ZMQ_SNDMORE : 0);
    pf_wire_out_clear(out);
}

static void s_broker_receipts(s_broker_t *b, void *sock, zmq_msg_t *rid)
{
    for (int i = 0; i < b->receipts; i++) {
        pf_wire_out_t out = {0};
        pf_wire_encode_receipt(b->jtis[i], b->tokens[i], &out);
        s_broker_send(sock, rid, &out);
    }
}

static void s_broker_handle(s_broker_t *b, void *sock, zmq_msg_t *frames, size_t n)
{
    pf_wire_frame_t wf[S_BROKER_FRAMES];
    for (size_t i = 1; i < n; i++)
        wf[i - 1] = (pf_wire_frame_t){zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]), NULL};
    pf_wire_limits_t lim;
    pf_wire_limits_default(&lim);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    if (n < 2 || pf_wire_decode(wf, n - 1, &lim, PF_WIRE_TO_BROKER, &m, &err) != 0)
        return;
    if (m.cmd == PF_WIRE_HELLO) {
        atomic_fetch_add(&b->hellos, 1);
        if (b->resend_on_hello)
            s_broker_receipts(b, sock, &frames[0]);
    } else if (m.cmd == PF_WIRE_SEND) {
        atomic_fetch_add(&b->sends, 1);
        s_broker_receipts(b, sock, &frames[0]);
        pf_wire_copy_t copy = {m.send.recipients[0], "01890000-0000-7000-8000-000000000001"};
        char *json = pf_wire_ack_json(m.send.request_id, &copy, 1);
        pf_wire_out_t out = {0};
        pf_wire_encode_ack_json(json, &out);
        s_broker_send(sock, &frames[0], &out);
        free(json);
    } else if (m.cmd == PF_WIRE_RACK) {
        for (size_t k = 0; k < m.jti_count; k++)
            for (int i = 0; i < S_RECEIPTS; i++)
                if (strcmp(m.jtis[k], b->jtis[i]) == 0)
                    atomic_fetch_add(&b->racked[i], 1);
    }
    pf_wire_msg_clear(&m);
}

static void *s_broker_main(void *arg)
{
    s_broker_t *b = arg;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, b->secret, PF_CURVE_Z85_LEN);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_bind(sock, b->endpoint) == 0)
        atomic_store(&b->bound, true);
    while (atomic_load(&b->bound) && !atomic_load(&b->stop)) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 20) <= 0)
            continue;
        zmq_msg_t frames[S_BROKER_FRAMES];
        size_t n = 0;
        for (int more = 1; more;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (n < S_BROKER_FRAMES)
                frames[n++] = m;
            else
                zmq_msg_close(&m); /* the codec then refuses the message */
        }
        s_broker_handle(b, sock, frames, n);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return NULL;
}

static void s_broker_start(s_broker_t *b)
{
    atomic_store(&b->stop, false);
    atomic_store(&b->bound, false);
    atomic_store(&b->hellos, 0);
    atomic_store(&b->sends, 0);
    for (int i = 0; i < S_RECEIPTS; i++)
        atomic_store(&b->racked[i], 0);
    assert_int_equal(pthread_create(&b->thread, NULL, s_broker_main, b), 0);
    b->running = true;
    for (int i = 0; i < 500 && !atomic_load(&b->bound); i++)
        usleep(10000);
    assert_true(atomic_load(&b->bound));
}

static void s_broker_stop(s_broker_t *b)
{
    if (!b->running)
        return;
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    b->running = false;
}

/* ---- fixture ---------------------------------------------------------------- */

typedef struct {
    char dir[64];
    s_broker_t broker;
    pf_client_t *client;
    atomic_int reconnect_failed, rack_dropped, rack_failed;
} s_fix_t;

static void s_log(void *ctx, int level, const char *msg)
{
    s_fix_t *fx = ctx;
    (void)level;
    if (strstr(msg, "event=reconnect_failed"))
        atomic_fetch_add(&fx->reconnect_failed, 1);
    if (strstr(msg, "event=rack_dropped"))
        atomic_fetch_add(&fx->rack_dropped, 1);
    if (strstr(msg, "event=rack_failed"))
        atomic_fetch_add(&fx->rack_failed, 1);
}

/* An unsigned receipt token as the client reads it without receipt keys:
 * only the payload's claims count. */
static char *s_token(const char *jti)
{
    char sub[PF_UUID_STRLEN + 1];
    pf_uuid7_generate(sub);
    char *payload = xasprintf("{\"jti\":\"%s\",\"sub\":\"%s\",\"events\":{\"urn:postfach:event:"
                              "delivered\":{\"mailbox\":\"citizen-1\",\"time_ms\":1}}}",
                              jti, sub);
    char *p64 = pf_b64url_encode(payload, strlen(payload));
    char *token = xasprintf("eyJhbGciOiJub25lIn0.%s.x", p64);
    free(p64);
    free(payload);
    return token;
}

static int s_setup(void **state)
{
    s_fix_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pf-test-client-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    char broker_key[128], broker_pub[128], sender_key[128], pub[PF_CURVE_Z85_LEN + 1];
    snprintf(broker_key, sizeof(broker_key), "%s/broker.curve", fx->dir);
    snprintf(broker_pub, sizeof(broker_pub), "%s/broker.curve.pub", fx->dir);
    snprintf(sender_key, sizeof(sender_key), "%s/sender.curve", fx->dir);
    const char *err;
    pf_curve_keys_t keys;
    if (pf_curve_generate_files(broker_key, broker_pub, pub, &err) != 0 ||
        pf_curve_generate_files(sender_key, NULL, pub, &err) != 0 ||
        pf_curve_load(broker_key, true, &keys, &err) != 0)
        return -1;
    s_broker_t *b = &fx->broker;
    memcpy(b->secret, keys.secret_key, sizeof(b->secret));
    pf_curve_keys_clear(&keys);
    snprintf(b->endpoint, sizeof(b->endpoint), "ipc://%s/broker", fx->dir);
    b->jtis = xcalloc(S_RECEIPTS, sizeof(*b->jtis));
    b->tokens = xcalloc(S_RECEIPTS, sizeof(*b->tokens));
    for (int i = 0; i < S_RECEIPTS; i++) {
        pf_uuid7_generate(b->jtis[i]);
        b->tokens[i] = s_token(b->jtis[i]);
    }
    if (pf_client_new(b->endpoint, broker_pub, sender_key, &fx->client, &err) != 0)
        return -1;
    pf_client_set_log(fx->client, s_log, fx);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    atomic_store(&s_socket_fail, false);
    pf_client_destroy(&fx->client);
    s_broker_stop(&fx->broker);
    for (int i = 0; i < S_RECEIPTS; i++)
        free(fx->broker.tokens[i]);
    free(fx->broker.tokens);
    free(fx->broker.jtis);
    char cmd[100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    int rc = system(cmd) == 0 ? 0 : -1;
    free(fx);
    return rc;
}

static int s_send(pf_client_t *c, const char *request_id)
{
    const char *rcpt[] = {"citizen-1"};
    pf_client_notice_t n = {.request_id = request_id,
                            .recipients = rcpt,
                            .recipient_count = 1,
                            .title = "Bescheid",
                            .subject = "Ihr Antrag",
                            .body = "Text"};
    pf_client_result_t res;
    const char *err;
    int rc = pf_client_send(c, &n, &res, &err);
    pf_client_result_clear(&res);
    return rc;
}

/* One SEND answered with `receipts` receipts before its ACK: they wait in
 * the client's queue. */
static void s_receipts_queued(s_fix_t *fx, int receipts)
{
    fx->broker.receipts = receipts;
    s_broker_start(&fx->broker);
    pf_client_set_timeout(fx->client, 10000, 0);
    assert_int_equal(s_send(fx->client, "req-1"), 0);
    assert_int_equal(atomic_load(&fx->broker.sends), 1);
    assert_int_equal(pf_client_receipts_queued(fx->client), receipts);
}

/* The broker goes away; the client's next SEND times out, and the
 * reconnect after it fails: the client has no socket. */
static void s_lose_socket(s_fix_t *fx)
{
    s_broker_stop(&fx->broker);
    pf_client_set_timeout(fx->client, 200, 0);
    atomic_store(&s_socket_fail, true);
    int rc = s_send(fx->client, "req-2");
    atomic_store(&s_socket_fail, false);
    assert_int_equal(rc, -1);
    assert_int_equal(atomic_load(&fx->reconnect_failed), 1);
}

/* ---- tests ------------------------------------------------------------------ */

/* receipts queued, then no socket: all are handed out, each once, and
 * their acknowledgements dropped (not written past the RACK array) */
static void test_receipts_handed_out_without_socket(void **state)
{
    s_fix_t *fx = *state;
    s_receipts_queued(fx, S_RECEIPTS);
    s_lose_socket(fx);
    for (int i = 0; i < S_RECEIPTS; i++) {
        pf_client_receipt_t r;
        const char *err;
        assert_int_equal(pf_client_next_receipt(fx->client, 0, &r, &err), 1);
        assert_string_equal(r.jti, fx->broker.jtis[i]);
        assert_string_equal(r.event, "delivered");
        pf_client_receipt_clear(&r);
    }
    pf_client_receipt_t r;
    const char *err;
    assert_int_equal(pf_client_next_receipt(fx->client, 0, &r, &err), 0);
    assert_int_equal(pf_client_receipts_queued(fx->client), 0);
    /* a full array (PF_WIRE_MAX_RACK) and the rest when the queue ran dry */
    assert_int_equal(atomic_load(&fx->rack_dropped), 2);
}

/* manual acknowledgements without a socket: dropped one by one */
static void test_acks_without_socket(void **state)
{
    s_fix_t *fx = *state;
    s_receipts_queued(fx, 0);
    s_lose_socket(fx);
    pf_client_set_manual_ack(fx->client, true);
    for (int i = 0; i < S_RECEIPTS; i++) {
        const char *err;
        assert_int_equal(pf_client_ack_receipt(fx->client, fx->broker.jtis[i], &err), 0);
    }
    assert_int_equal(atomic_load(&fx->rack_dropped), S_RECEIPTS);
}

/* after the failed reconnect, the next wait connects again: the broker
 * hears HELLO and sends the receipts whose RACK was dropped again; they
 * are not handed out twice, and acknowledged this time */
static void test_wait_reconnects(void **state)
{
    s_fix_t *fx = *state;
    s_receipts_queued(fx, 3);
    s_lose_socket(fx);
    for (int i = 0; i < 3; i++) {
        pf_client_receipt_t r;
        const char *err;
        assert_int_equal(pf_client_next_receipt(fx->client, 0, &r, &err), 1);
        pf_client_receipt_clear(&r);
    }
    assert_int_equal(atomic_load(&fx->rack_dropped), 1);
    fx->broker.resend_on_hello = true;
    s_broker_start(&fx->broker);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int racked = 0;
    do {
        pf_client_receipt_t r;
        const char *err;
        assert_int_equal(pf_client_next_receipt(fx->client, 100, &r, &err), 0);
        racked = 0;
        for (int i = 0; i < 3; i++)
            racked += atomic_load(&fx->broker.racked[i]) > 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (racked < 3 && t.tv_sec - t0.tv_sec < 10);
    assert_true(atomic_load(&fx->broker.hellos) >= 1);
    assert_int_equal(racked, 3);
}

int main(void)
{
    s_real_zmq_socket = (void *(*)(void *, int))dlsym(RTLD_NEXT, "zmq_socket");
    if (s_real_zmq_socket == NULL) {
        fprintf(stderr, "test_client: cannot find libzmq's zmq_socket: %s\n", dlerror());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_receipts_handed_out_without_socket, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_acks_without_socket, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wait_reconnects, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
