/* ZAP handler (RFC 27/ZAP): decides which CURVE clients may connect.
 *
 * Callers: pf_broker_new starts it, pf_broker_destroy stops it.  It runs
 * in its own thread with its own database connection, because libzmq's
 * I/O threads wait for its answer during every handshake and the broker's
 * main thread may be busy in a COMMIT.
 * Untrusted input: the client's public key (32 bytes) and whatever else a
 * ZAP request carries (libzmq builds the request; the client chooses the
 * key).  pf_zap_parse checks the frames for count, size and content apart
 * from any socket or database, so tests/unit/test_zap.c and
 * tests/fuzz/fuzz_zap.c reach it directly.
 * Policy: accept ("200") only a key that belongs to an active row of the
 * `sender` table, and set the ZAP User-Id to that sender's id and the key
 * ("<id>:<key>"); the broker bases every decision on that id, and checks
 * with every message that the key is still the sender's current one, so
 * that revoke and rotate-key reach open connections too.  Lookups are cached for cache_ms (also
 * negative ones, so a flood of unknown keys does not become a flood of
 * queries); a revoked sender is therefore refused within cache_ms.  When
 * the database cannot answer the handshake is refused ("500"): failing
 * closed costs a retry, failing open would let anyone in.  The ZAP
 * connection reconnects by itself on the next handshake after the
 * database came back. */
#include "broker/broker_private.h"
#include "store/admin.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CACHE 256
#define S_MAX_FRAMES 16

typedef struct {
    char key[41];
    int64_t id; /* 0 = not an active sender */
    int64_t expires_ms;
} s_entry_t;

struct pf_zap {
    void *sock;
    pthread_t thread;
    atomic_int stop;
    char *conninfo;
    pf_store_t *st;
    int cache_ms;
    s_entry_t cache[S_CACHE];
    size_t next_slot;
};

/* Returns the sender id, 0 when refused, -1 when the database failed. */
static int64_t s_lookup(pf_zap_t *z, const char *key)
{
    int64_t now = pf_broker_now_ms();
    for (size_t i = 0; i < S_CACHE; i++)
        if (z->cache[i].expires_ms > now && strcmp(z->cache[i].key, key) == 0)
            return z->cache[i].id;
    const char *err;
    if (z->st == NULL || pf_store_broken(z->st)) {
        if (z->st == NULL ? pf_store_open_as(z->conninfo, "zap", &z->st, &err) != 0
                          : pf_store_reconnect(z->st, &err) != 0) {
            pf_warn("event=zap_db_error error=\"%s\"", pf_broker_esc(err));
            return -1;
        }
    }
    int64_t id = 0;
    int rc = pf_store_sender_by_key(z->st, key, &id, NULL, &err);
    /* a connection that broke while idle (the database restarted) shows
     * only now: one new connection and one more try, so the first
     * handshake after a restart is not refused for nothing */
    if (rc < 0 && pf_store_broken(z->st) && pf_store_reconnect(z->st, &err) == 0)
        rc = pf_store_sender_by_key(z->st, key, &id, NULL, &err);
    if (rc < 0) {
        pf_warn("event=zap_db_error error=\"%s\"", pf_broker_esc(err));
        return -1;
    }
    s_entry_t *e = &z->cache[z->next_slot++ % S_CACHE];
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->id = rc == 1 ? id : 0;
    e->expires_ms = now + z->cache_ms;
    return e->id;
}

int pf_zap_parse(const pf_zap_frame_t *frames, size_t n, pf_zap_request_t *req_r,
                 const char **error_r)
{
    req_r->request_id = n >= 2 ? frames[1].data : "";
    req_r->request_id_len = n >= 2 ? frames[1].size : 0;
    req_r->key[0] = '\0';
    /* version, request id, domain, address, identity, mechanism, credentials */
    if (n < 6) {
        *error_r = "wrong number of frames";
        return -1;
    }
    if (frames[0].size != 3 || memcmp(frames[0].data, "1.0", 3) != 0) {
        *error_r = "unsupported ZAP version";
        return -1;
    }
    if (frames[5].size != 5 || memcmp(frames[5].data, "CURVE", 5) != 0) {
        *error_r = "mechanism is not CURVE";
        return -1;
    }
    if (n != 7) {
        *error_r = "wrong number of frames";
        return -1;
    }
    if (frames[6].size != 32) {
        *error_r = "CURVE key is not 32 bytes";
        return -1;
    }
    zmq_z85_encode(req_r->key, frames[6].data, 32);
    return 0;
}

static void s_handle(pf_zap_t *z)
{
    zmq_msg_t m[S_MAX_FRAMES];
    size_t n = 0;
    int more = 1;
    while (more) {
        /* frames past the limit are read and dropped: the request is
         * refused for its frame count */
        zmq_msg_t spare, *cur = n < S_MAX_FRAMES ? &m[n] : &spare;
        zmq_msg_init(cur);
        if (zmq_msg_recv(cur, z->sock, 0) < 0) {
            zmq_msg_close(cur);
            break;
        }
        more = zmq_msg_more(cur);
        if (cur == &spare)
            zmq_msg_close(cur);
        else
            n++;
    }
    pf_zap_frame_t f[S_MAX_FRAMES];
    for (size_t i = 0; i < n; i++)
        f[i] = (pf_zap_frame_t){zmq_msg_data(&m[i]), zmq_msg_size(&m[i])};
    pf_zap_request_t req;
    /* a malformed request gets "400" without a log line (an unknown key
     * gets one): libzmq builds the frames, so only a change in libzmq or
     * in our socket options could make one */
    const char *malformed = NULL;
    const char *status = "400", *text = "not allowed";
    char user[64] = "";
    if (pf_zap_parse(f, n, &req, &malformed) == 0) {
        int64_t id = s_lookup(z, req.key);
        if (id > 0) {
            status = "200", text = "OK";
            /* the key too: the broker checks on every message that it
             * is still the sender's current one (rotate-key, revoke) */
            snprintf(user, sizeof(user), "%lld:%s", (long long)id, req.key);
        } else if (id < 0) {
            status = "500", text = "database unavailable";
        } else {
            pf_info("event=zap_refused key=%s", req.key);
        }
    }
    /* the reply: version, request id, status code, status text, user id,
     * metadata; the request id is echoed even from a malformed request */
    zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(z->sock, req.request_id, req.request_id_len, ZMQ_SNDMORE);
    zmq_send(z->sock, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(z->sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(z->sock, "", 0, 0);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&m[i]);
}

static void *s_thread(void *arg)
{
    pf_zap_t *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t item = {.socket = z->sock, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&item, 1, 200);
        if (rc > 0 && (item.revents & ZMQ_POLLIN))
            s_handle(z);
    }
    return NULL;
}

int pf_zap_start(void *ctx, const char *conninfo, int cache_ms, pf_zap_t **zap_r,
                 const char **error_r)
{
    pf_zap_t *z = xcalloc(1, sizeof(*z));
    z->conninfo = xstrdup(conninfo);
    z->cache_ms = cache_ms;
    z->sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger));
    if (z->sock == NULL || zmq_bind(z->sock, "inproc://zeromq.zap.01") != 0) {
        *error_r = "cannot bind the ZAP handler (inproc://zeromq.zap.01)";
        if (z->sock)
            zmq_close(z->sock);
        free(z->conninfo);
        free(z);
        return -1;
    }
    /* connect now so a database that is down shows at start-up; failures
     * later are retried per request */
    const char *err;
    if (pf_store_open_as(conninfo, "zap", &z->st, &err) != 0)
        pf_warn("event=zap_db_error error=\"%s\"", pf_broker_esc(err));
    if (pthread_create(&z->thread, NULL, s_thread, z) != 0) {
        *error_r = "cannot start the ZAP thread";
        zmq_close(z->sock);
        pf_store_destroy(&z->st);
        free(z->conninfo);
        free(z);
        return -1;
    }
    *zap_r = z;
    return 0;
}

void pf_zap_stop(pf_zap_t **zp)
{
    pf_zap_t *z = *zp;
    if (z == NULL)
        return;
    atomic_store(&z->stop, 1);
    pthread_join(z->thread, NULL);
    zmq_close(z->sock);
    pf_store_destroy(&z->st);
    free(z->conninfo);
    free(z);
    *zp = NULL;
}
