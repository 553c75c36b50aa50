/* End-to-end tests of postfach-reader: notices are delivered through the
 * real broker with the client library, then listed, opened and downloaded
 * over HTTP from the real reader, against a real PostgreSQL (harness.h).
 * What the database holds afterwards (read_at, receipt rows) is checked
 * with SQL, and the read receipt is verified with the service's JWKS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "postfach/postfach.h"

#include "auth/token.h"
#include "crypto/jose.h"
#include "proto/notice.h"
#include "receipt/receipt.h"
#include "util/b64url.h"

typedef struct {
    pf_env_t *env;
    pf_client_t *client;
    int port;
    int seq;
} fx_t;

/* The fixture of every test: the env lives here, so a failed assertion
 * (cmocka jumps out of the test) still stops broker and reader in the
 * teardown. */
static int s_setup(void **state)
{
    *state = calloc(1, sizeof(fx_t));
    return *state ? 0 : -1;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    return pf_fixture_end(f->env, &f->client, f);
}

/* Starts broker and reader for the test (a PostgreSQL cluster of its own
 * with private_pg) and connects a client as tax-office. */
static fx_t *s_fx_on(void **state, const char *name, const char *const *citizens, bool private_pg)
{
    fx_t *fx = *state;
    fx->env = private_pg ? pf_env_new_private_pg(name, citizens) : pf_env_new(name, citizens);
    assert_int_equal(pf_env_start_broker(fx->env, NULL), 0);
    assert_int_equal(pf_env_start_reader(fx->env, NULL), 0);
    fx->port = pf_env_reader_port(fx->env);
    fx->client = pf_env_client(fx->env, "tax-office", NULL, 5000, 3);
    assert_non_null(fx->client);
    return fx;
}

static fx_t *s_fx(void **state, const char *name, const char *const *citizens)
{
    return s_fx_on(state, name, citizens, false);
}

/* The end of every test: the reader is still serving and stops cleanly
 * (the teardown stops the rest). */
static void s_fx_done(fx_t *fx)
{
    assert_true(pf_env_reader_alive(fx->env));
    assert_int_equal(pf_env_stop_reader(fx->env, SIGTERM), 0);
}

typedef struct {
    const char *title, *subject, *body, *reference, *level;
    bool read_receipt;
    const pf_client_attachment_t *atts;
    size_t natts;
    const char *const *to; /* NULL = citizen-a */
} s_notice_t;

/* Sends through the broker; returns the copy id of the first recipient. */
static char *s_send(fx_t *fx, const s_notice_t *n)
{
    static const char *const def_to[] = {"citizen-a"};
    char rid[64];
    snprintf(rid, sizeof(rid), "req-%d-%lld", ++fx->seq, (long long)pf_test_now_ms());
    pf_client_notice_t cn = {
        .request_id = rid,
        .recipients = n->to ? n->to : def_to,
        .recipient_count = 1,
        .title = n->title ? n->title : "Bescheid",
        .subject = n->subject ? n->subject : "Betreff",
        .body = n->body ? n->body : "Text",
        .reference = n->reference,
        .attachments = n->atts,
        .attachment_count = n->natts,
        .read_receipt = n->read_receipt,
        .required_level = n->level,
    };
    pf_client_result_t res;
    const char *err = NULL;
    int rc = pf_client_send(fx->client, &cn, &res, &err);
    if (rc != 0)
        fprintf(stderr, "pf_client_send: %d %s\n", rc, err ? err : "");
    assert_int_equal(rc, 0);
    if (!res.ok)
        fprintf(stderr, "NACK %s %s\n", res.code, res.reason);
    assert_int_equal(res.ok, 1);
    assert_int_equal(res.copy_count, 1);
    char *id = strdup(res.copies[0].message_id);
    pf_client_result_clear(&res);
    return id;
}

static char *s_token(fx_t *fx, const char *citizen, const char *level)
{
    char *out = NULL;
    int rc = level ? pf_env_ctl(fx->env, &out, "token", citizen, "--level", level, NULL)
                   : pf_env_ctl(fx->env, &out, "token", citizen, NULL);
    assert_int_equal(rc, 0);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return out;
}

static json_t *s_get_json(fx_t *fx, const char *path, const char *token, int want_status)
{
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, path, token, &r), 0);
    if (r.status != want_status)
        fprintf(stderr, "GET %s: %d %s\n", path, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, want_status);
    assert_non_null(r.content_type);
    assert_non_null(strstr(r.content_type, "application/json"));
    json_error_t jerr;
    json_t *o = json_loadb(r.body, r.body_len, 0, &jerr);
    assert_non_null(o);
    pf_http_response_clear(&r);
    return o;
}

/* The whole raw response (headers and body) of one request. */
static char *s_raw(int port, const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    int64_t end = pf_test_now_ms() + 10000;
    for (;;) {
        int wait = (int)(end - pf_test_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (wait <= 0 || poll(&p, 1, wait) <= 0)
            break;
        if (got + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
}

static char *s_raw_get(fx_t *fx, const char *path, const char *token)
{
    /* sized to the request: a fixed buffer once cut a 20 KB token short,
     * and the reader waited for the rest of the headers */
    char *req = NULL;
    if (asprintf(&req, "GET %s HTTP/1.1\r\nHost: x\r\n%s%s%sConnection: close\r\n\r\n", path,
                 token ? "Authorization: Bearer " : "", token ? token : "",
                 token ? "\r\n" : "") < 0)
        abort();
    char *raw = s_raw(fx->port, req, strlen(req));
    free(req);
    return raw;
}

static bool s_healthy(fx_t *fx)
{
    pf_http_response_t r;
    bool ok = pf_http_get(fx->port, "/healthz", NULL, &r) == 0 && r.status == 200;
    pf_http_response_clear(&r);
    return ok;
}

/* ------------------------------------------------------------------------ */

static void test_list_pages_newest_first(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_list", citizens);
    char *ids[5];
    char title[5][32];
    for (int i = 0; i < 5; i++) {
        snprintf(title[i], sizeof(title[i]), "Bescheid %d", i);
        s_notice_t n = {.title = title[i], .reference = "AZ-7", .subject = "geheim"};
        ids[i] = s_send(fx, &n);
    }
    char *tok = s_token(fx, "citizen-a", NULL);

    /* three pages of 2, 2, 1; newest first; the last without a cursor */
    char path[256] = "/v1/messages?limit=2";
    int seen = 0;
    for (int page = 0; page < 3; page++) {
        json_t *o = s_get_json(fx, path, tok, 200);
        json_t *msgs = json_object_get(o, "messages");
        size_t n = json_array_size(msgs);
        assert_int_equal(n, page < 2 ? 2 : 1);
        for (size_t i = 0; i < n; i++, seen++) {
            json_t *m = json_array_get(msgs, i);
            int want = 4 - seen;
            assert_string_equal(json_string_value(json_object_get(m, "id")), ids[want]);
            assert_string_equal(json_string_value(json_object_get(m, "title")), title[want]);
            assert_string_equal(json_string_value(json_object_get(m, "sender")), "tax-office");
            assert_string_equal(json_string_value(json_object_get(m, "reference")), "AZ-7");
            assert_true(json_is_null(json_object_get(m, "read_at")));
            assert_string_equal(json_string_value(json_object_get(m, "required_level")), "normal");
            assert_true(json_integer_value(json_object_get(m, "size")) > 0);
            assert_int_equal(json_integer_value(json_object_get(m, "attachment_count")), 0);
            assert_non_null(json_string_value(json_object_get(m, "created_at")));
            /* clear metadata only */
            assert_null(json_object_get(m, "subject"));
            assert_null(json_object_get(m, "body"));
        }
        json_t *next = json_object_get(o, "next_cursor");
        if (page < 2) {
            assert_true(json_is_string(next));
            snprintf(path, sizeof(path), "/v1/messages?limit=2&cursor=%s", json_string_value(next));
        } else {
            assert_true(json_is_null(next));
        }
        json_decref(o);
    }
    assert_int_equal(seen, 5);

    /* default page holds all five */
    json_t *o = s_get_json(fx, "/v1/messages", tok, 200);
    assert_int_equal(json_array_size(json_object_get(o, "messages")), 5);
    json_decref(o);

    /* bad paging parameters are clear 400s */
    const char *bad[] = {"/v1/messages?limit=0", "/v1/messages?limit=101", "/v1/messages?limit=abc",
                         "/v1/messages?cursor=garbage",
                         "/v1/messages?cursor=0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = s_get_json(fx, bad[i], tok, 400);
        assert_non_null(json_string_value(json_object_get(o, "error")));
        json_decref(o);
    }
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(tok);
    s_fx_done(fx);
}

static const unsigned char s_pdf[] = {'%', 'P', 'D', 'F',  '-',  '1', '.', '7',
                                      0,   1,   2,   0xff, 0xfe, 0,   '\n'};

static void test_open_attachment_read_once(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_open", citizens);
    unsigned char big[70000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7 + 3);
    pf_client_attachment_t atts[2] = {
        {.name = "bescheid.pdf",
         .media_type = "application/pdf",
         .data = s_pdf,
         .size = sizeof(s_pdf)},
        {.name = "Anlage \xc3\xa4.bin", .media_type = NULL, .data = big, .size = sizeof(big)},
    };
    s_notice_t n = {.title = "Grundsteuer",
                    .subject = "Ihr Grundsteuerbescheid",
                    .body = "Sehr geehrte Frau A.,\n\nanbei \xe2\x80\x9e Ihr Bescheid\xe2\x80\x9c.",
                    .reference = "GS-2025/0815",
                    .read_receipt = true,
                    .atts = atts,
                    .natts = 2};
    char *id = s_send(fx, &n);
    char *tok = s_token(fx, "citizen-a", NULL);
    char path[256];

    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    json_t *o = s_get_json(fx, path, tok, 200);
    assert_string_equal(json_string_value(json_object_get(o, "id")), id);
    assert_string_equal(json_string_value(json_object_get(o, "subject")), n.subject);
    assert_string_equal(json_string_value(json_object_get(o, "body")), n.body);
    assert_string_equal(json_string_value(json_object_get(o, "title")), n.title);
    assert_string_equal(json_string_value(json_object_get(o, "reference")), n.reference);
    assert_string_equal(json_string_value(json_object_get(o, "sender")), "tax-office");
    const char *read_at = json_string_value(json_object_get(o, "read_at"));
    assert_non_null(read_at);
    char *first_read = strdup(read_at);
    json_t *al = json_object_get(o, "attachments");
    assert_int_equal(json_array_size(al), 2);
    json_t *a0 = json_array_get(al, 0), *a1 = json_array_get(al, 1);
    assert_int_equal(json_integer_value(json_object_get(a0, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "name")), "bescheid.pdf");
    assert_string_equal(json_string_value(json_object_get(a0, "media_type")), "application/pdf");
    assert_int_equal(json_integer_value(json_object_get(a0, "size")), sizeof(s_pdf));
    assert_string_equal(json_string_value(json_object_get(a1, "name")), atts[1].name);
    assert_int_equal(json_integer_value(json_object_get(a1, "size")), sizeof(big));
    json_decref(o);

    /* exactly one read receipt, and the read time does not move */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'", id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    usleep(20 * 1000);
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    o = s_get_json(fx, path, tok, 200);
    assert_string_equal(json_string_value(json_object_get(o, "read_at")), first_read);
    json_decref(o);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);

    /* the listing shows the read time too */
    o = s_get_json(fx, "/v1/messages", tok, 200);
    json_t *m = json_array_get(json_object_get(o, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "read_at")), first_read);
    json_decref(o);

    /* attachment bytes equal what was sent, with their media type */
    pf_http_response_t r;
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/0", id);
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/pdf");
    assert_int_equal(r.body_len, sizeof(s_pdf));
    assert_memory_equal(r.body, s_pdf, sizeof(s_pdf));
    pf_http_response_clear(&r);
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/1", id);
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/octet-stream");
    assert_int_equal(r.body_len, sizeof(big));
    assert_memory_equal(r.body, big, sizeof(big));
    pf_http_response_clear(&r);
    char *raw = s_raw_get(fx, path, tok);
    assert_non_null(strstr(raw, "Content-Disposition: attachment; filename=\"Anlage___.bin\"; "
                                "filename*=UTF-8''Anlage%20%C3%A4.bin\r\n"));
    assert_non_null(strstr(raw, "X-Content-Type-Options: nosniff\r\n"));
    assert_non_null(strstr(raw, "Cache-Control: no-store\r\n"));
    free(raw);
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/2", id);
    o = s_get_json(fx, path, tok, 404);
    json_decref(o);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);

    /* the receipt verifies with the published key and names this copy */
    snprintf(sql, sizeof(sql),
             "SELECT token FROM receipt WHERE message_id = '%s' AND event = 'read'", id);
    char *rtok = pf_env_sql(fx->env, sql);
    assert_non_null(rtok);
    pf_http_get(fx->port, "/.well-known/jwks.json", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "\"d\""));
    pf_keyset_t *set = pf_keyset_new();
    const char *err;
    assert_int_equal(pf_keyset_add_jwks(set, r.body, r.body_len, true, &err), 1);
    pf_http_response_clear(&r);
    pf_receipt_t rc;
    int vrc = pf_receipt_verify(rtok, strlen(rtok), set, "https://postfach.local", &rc, &err);
    if (vrc != 0)
        fprintf(stderr, "receipt: %s\n", err);
    assert_int_equal(vrc, 0);
    assert_int_equal(rc.event, PF_EVENT_READ);
    assert_string_equal(rc.message_id, id);
    assert_string_equal(rc.mailbox, "citizen-a");
    assert_string_equal(rc.sender, "tax-office");
    snprintf(
        sql, sizeof(sql),
        "SELECT floor(extract(epoch FROM read_at) * 1000)::bigint FROM message WHERE id = '%s'",
        id);
    assert_int_equal(rc.event_time_ms, pf_env_sql_int(fx->env, sql));
    snprintf(sql, sizeof(sql),
             "SELECT translate(encode(jwe_tag, 'base64'), E'+/=\\n', '-_') FROM message "
             "WHERE id = '%s'",
             id);
    char *tag = pf_env_sql(fx->env, sql);
    assert_string_equal(rc.jwe_tag, tag);
    free(tag);
    pf_receipt_clear(&rc);
    pf_keyset_destroy(&set);
    free(rtok);

    free(first_read);
    free(id);
    free(tok);
    s_fx_done(fx);
}

/* A scan of 12 MiB is within the broker's limits (20 MiB per attachment,
 * 25 MiB per notice): it is stored, and it comes back byte for byte.  Its
 * cost in the broker's pipeline (frames plus the sealed copy, about 28 MiB)
 * is above the pipeline's whole budget, which once answered it "busy" on
 * every retry. */
static void test_large_attachment_round_trip(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_large", citizens);
    size_t size = 12u * 1024 * 1024;
    unsigned char *scan = malloc(size);
    assert_non_null(scan);
    uint32_t x = 2463534242u; /* xorshift: bytes that do not compress */
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        scan[i] = (unsigned char)x;
    }
    pf_client_attachment_t att = {
        .name = "bauplan.pdf", .media_type = "application/pdf", .data = scan, .size = size};
    s_notice_t n = {.title = "Baugenehmigung", .atts = &att, .natts = 1};
    char *id = s_send(fx, &n);
    char *tok = s_token(fx, "citizen-a", NULL);
    char path[256];
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/0", id);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/pdf");
    assert_int_equal(r.body_len, size);
    assert_memory_equal(r.body, scan, size);
    pf_http_response_clear(&r);
    /* and the broker takes ordinary notices afterwards */
    s_notice_t small = {.title = "Danach"};
    free(s_send(fx, &small));
    free(scan);
    free(id);
    free(tok);
    s_fx_done(fx);
}

static void test_receipts_only_when_asked(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_noreceipt", citizens);
    s_notice_t n = {.title = "Ohne Lesebestaetigung", .read_receipt = false};
    char *id = s_send(fx, &n);
    pf_client_attachment_t att = {
        .name = "a.txt", .media_type = "text/plain", .data = "hallo", .size = 5};
    s_notice_t n2 = {.title = "Mit", .read_receipt = true, .atts = &att, .natts = 1};
    char *id2 = s_send(fx, &n2);
    char *tok = s_token(fx, "citizen-a", NULL);
    char path[256], sql[256];

    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    json_decref(s_get_json(fx, path, tok, 200));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NOT NULL", id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'", id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 0);

    /* an attachment the unread notice does not have: 404, and the notice
     * stays unread without a receipt (the citizen received nothing) */
    const char *const missing[] = {"1", "9999", "01", "x"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        snprintf(path, sizeof(path), "/v1/messages/%s/attachments/%s", id2, missing[i]);
        json_t *e = s_get_json(fx, path, tok, 404);
        assert_string_equal(json_string_value(json_object_get(e, "error")), "not_found");
        json_decref(e);
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NULL",
             id2);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'", id2);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 0);

    /* the attachment download is a first retrieval as well */
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/0", id2);
    for (int i = 0; i < 3; i++) {
        pf_http_response_t r;
        assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hallo");
        pf_http_response_clear(&r);
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NOT NULL", id2);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'", id2);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    free(id);
    free(id2);
    free(tok);
    s_fx_done(fx);
}

static void test_jwe_route(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_jwe", citizens);
    s_notice_t n = {.title = "JWE", .read_receipt = true};
    char *id = s_send(fx, &n);
    char *tok = s_token(fx, "citizen-a", NULL);
    char path[256], sql[512];
    snprintf(path, sizeof(path), "/v1/messages/%s/jwe", id);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/jose");
    /* five parts, each equal to the stored one */
    const char *cols[] = {"jwe_protected", "jwe_encrypted_key", "jwe_iv", "jwe_ciphertext",
                          "jwe_tag"};
    char *p = r.body;
    for (int i = 0; i < 5; i++) {
        char *dot = strchr(p, '.');
        assert_true(i == 4 ? dot == NULL : dot != NULL);
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (i == 0)
            snprintf(sql, sizeof(sql), "SELECT jwe_protected FROM message WHERE id = '%s'", id);
        else
            snprintf(sql, sizeof(sql),
                     "SELECT translate(encode(%s, 'base64'), E'+/=\\n', '-_') FROM message "
                     "WHERE id = '%s'",
                     cols[i], id);
        char *want = pf_env_sql(fx->env, sql);
        assert_non_null(want);
        assert_int_equal(strlen(want), len);
        assert_memory_equal(want, p, len);
        free(want);
        p = dot ? dot + 1 : p + len;
    }
    /* and it parses as a JWE */
    pf_jwe_t *jwe = NULL;
    const char *err;
    assert_int_equal(pf_jwe_parse_compact(r.body, r.body_len, &jwe, &err), 0);
    pf_jwe_destroy(&jwe);
    pf_http_response_clear(&r);
    /* handing out ciphertext is not a retrieval */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NULL",
             id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'", id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 0);
    free(id);
    free(tok);
    s_fx_done(fx);
}

#define FFFD "\xef\xbf\xbd"
#define RLO "\xe2\x80\xae"

/* '\x..' hex of bytes for a bytea literal (caller frees). */
static char *s_bytea(const unsigned char *p, size_t n)
{
    char *hex = malloc(n * 2 + 3);
    strcpy(hex, "\\x");
    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 + i * 2, "%02x", p[i]);
    return hex;
}

/* Stores a copy for citizen-a made the way anyone holding its public key
 * can make one (ECDH-ES does not authenticate the sender), bypassing the
 * broker's checks: the notice document n, sealed to the mailbox's current
 * key, with title as the row's clear title.  Returns the compact JWE
 * (caller frees). */
static char *s_plant(fx_t *fx, const char *id, const pf_notice_t *n, const char *title)
{
    char *jwk = NULL;
    assert_int_equal(pf_env_ctl(fx->env, &jwk, "citizen", "public-key", "citizen-a", NULL), 0);
    pf_key_t *key = NULL;
    const char *err = NULL;
    assert_int_equal(pf_key_from_jwk(jwk, strlen(jwk), &key, &err), 0);
    size_t len = 0;
    char *doc = pf_notice_encode(n, &len);
    pf_jwe_t *jwe = NULL;
    assert_int_equal(pf_jwe_seal(key, PF_NOTICE_CTY, doc, len, &jwe, &err), 0);
    char *ek = s_bytea(jwe->encrypted_key, jwe->encrypted_key_len);
    char *iv = s_bytea(jwe->iv, sizeof(jwe->iv));
    char *ct = s_bytea(jwe->ciphertext, jwe->ciphertext_len);
    char *tag = s_bytea(jwe->tag, sizeof(jwe->tag));
    char *sql = NULL;
    if (asprintf(&sql,
                 "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, reference, "
                 "read_receipt, size, attachment_count, key_version, jwe_protected, "
                 "jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) SELECT 'citizen-a', '%s', "
                 "id, 'planted-%s', '%s', '%s', false, %zu, %zu, 1, '%s', '%s', '%s', '%s', '%s' "
                 "FROM sender WHERE name = 'tax-office' RETURNING 1",
                 id, id, title, n->reference, len, n->attachment_count, jwe->protected_b64, ek, iv,
                 ct, tag) < 0)
        abort();
    char *ok = pf_env_sql(fx->env, sql);
    assert_non_null(ok);
    free(ok);
    char *compact = pf_jwe_compact(jwe);
    free(sql);
    free(ek);
    free(iv);
    free(ct);
    free(tag);
    pf_jwe_destroy(&jwe);
    free(doc);
    pf_key_destroy(&key);
    free(jwk);
    return compact;
}

static const char *s_str_of(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

/* How often needle occurs in hay. */
static int s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* docs/security.md "Texts a citizen sees": a stored notice whose texts the
 * broker would have refused (a right-to-left override that makes
 * "rechnung<RLO>fdp.exe" look like a PDF, a bell and terminal escapes in
 * the body) is shown, not refused, with U+FFFD in their place and
 * everything else as it was; the operator gets one line per request naming
 * the fields, never their content.  A notice that passed the broker comes
 * back byte for byte, line breaks, tabs and the body's bidi controls
 * (right-to-left text) included, and the /jwe copy is the stored
 * ciphertext, untouched. */
static void test_unsafe_texts_replaced(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_unsafe_text", citizens);
    char *tok = s_token(fx, "citizen-a", NULL);
    char path[256];

    /* through the broker: every text as it was sent */
    pf_client_attachment_t att = {.name = "Bescheid \xc3\xa4 \xe2\x82\xac.pdf",
                                  .media_type = "application/pdf",
                                  .data = s_pdf,
                                  .size = sizeof(s_pdf)};
    s_notice_t good = {.title = "Grundsteuer \xc3\xa4\xc3\xb6\xc3\xbc \xf0\x9f\x8f\xa0",
                       .subject = "Ihr Bescheid \xe2\x80\x9eGrundsteuer\xe2\x80\x9c",
                       .body = "Sehr geehrte Frau A.,\r\n\n\tanbei: \xe2\x81\xa7\xd7\xa9\xd7\x9c"
                               "\xd7\x95\xd7\x9d\xe2\x81\xa9 " RLO "RTL\xe2\x80\xac.",
                       .reference = "GS-2025/0815 \xc2\xa7 3",
                       .atts = &att,
                       .natts = 1};
    char *good_id = s_send(fx, &good);
    snprintf(path, sizeof(path), "/v1/messages/%s", good_id);
    json_t *o = s_get_json(fx, path, tok, 200);
    assert_string_equal(s_str_of(o, "title"), good.title);
    assert_string_equal(s_str_of(o, "subject"), good.subject);
    assert_string_equal(s_str_of(o, "body"), good.body);
    assert_string_equal(s_str_of(o, "reference"), good.reference);
    assert_string_equal(s_str_of(json_array_get(json_object_get(o, "attachments"), 0), "name"),
                        att.name);
    json_decref(o);

    /* planted: what the broker would have refused */
    /* the second attachment's name is a path a citizen's own client might
     * write to */
    pf_attachment_t patt[2] = {{.name = "rechnung" RLO "fdp.exe",
                                .media_type = "application/pdf",
                                .data = (unsigned char *)"hi",
                                .size = 2},
                               {.name = "..\\..\\Autostart/run.pdf",
                                .media_type = "application/pdf",
                                .data = (unsigned char *)"ho",
                                .size = 2}};
    pf_notice_t bad = {.title = "Rechnung" RLO "fdp.exe",
                       .subject = "Ihre Rechnung " RLO "fdp.exe",
                       .body = "Guten Tag\x07\r\n\x1b[31mrot\x1b[0m\xc2\x9b",
                       .reference = "AZ 7/11",
                       .sender = "tax-office",
                       .sent_at = "2026-01-05T08:00:00Z",
                       .attachments = patt,
                       .attachment_count = 2};
    const char *bad_id = "01900000-0000-7000-8000-00000000beef";
    char *compact = s_plant(fx, bad_id, &bad, "Rechnung" RLO "fdp.exe");

    snprintf(path, sizeof(path), "/v1/messages/%s", bad_id);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    if (r.status != 200)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    /* neither the override nor a control character is in the answer, raw
     * or escaped */
    assert_null(strstr(r.body, RLO));
    assert_null(strstr(r.body, "\\u202"));
    assert_null(strstr(r.body, "\\u00"));
    assert_null(strstr(r.body, "\x1b"));
    json_error_t jerr;
    o = json_loadb(r.body, r.body_len, 0, &jerr);
    assert_non_null(o);
    pf_http_response_clear(&r);
    assert_string_equal(s_str_of(o, "title"), "Rechnung" FFFD "fdp.exe");
    assert_string_equal(s_str_of(o, "subject"), "Ihre Rechnung " FFFD "fdp.exe");
    assert_string_equal(s_str_of(o, "body"),
                        "Guten Tag" FFFD "\r\n" FFFD "[31mrot" FFFD "[0m" FFFD);
    assert_string_equal(s_str_of(o, "reference"), "AZ 7/11");
    assert_string_equal(s_str_of(o, "sender"), "tax-office");
    assert_string_equal(s_str_of(o, "sent_at"), "2026-01-05T08:00:00Z");
    assert_non_null(json_object_get(o, "read_at"));
    json_t *a0 = json_array_get(json_object_get(o, "attachments"), 0);
    assert_string_equal(s_str_of(a0, "name"), "rechnung" FFFD "fdp.exe");
    assert_string_equal(s_str_of(json_array_get(json_object_get(o, "attachments"), 1), "name"),
                        ".._.._Autostart_run.pdf");
    assert_string_equal(s_str_of(a0, "media_type"), "application/pdf");
    assert_int_equal(json_integer_value(json_object_get(a0, "size")), 2);
    json_decref(o);

    /* the download: the bytes as they were, the name cleaned in the header */
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/0", bad_id);
    char *raw = s_raw_get(fx, path, tok);
    assert_non_null(strstr(raw, "HTTP/1.1 200 "));
    assert_non_null(strstr(raw, "filename*=UTF-8''rechnung%EF%BF%BDfdp.exe\r\n"));
    assert_null(strstr(raw, "%E2%80%AE"));
    assert_non_null(strstr(raw, "\r\n\r\nhi"));
    free(raw);
    /* and the second's: no path left in either form of the name */
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/1", bad_id);
    raw = s_raw_get(fx, path, tok);
    assert_non_null(strstr(raw, "HTTP/1.1 200 "));
    assert_non_null(strstr(raw, "filename*=UTF-8''.._.._Autostart_run.pdf\r\n"));
    assert_null(strstr(raw, "%2F"));
    assert_null(strstr(raw, "%5C"));
    assert_non_null(strstr(raw, "\r\n\r\nho"));
    free(raw);

    /* the listing: the row's clear title likewise; the other row as sent */
    o = s_get_json(fx, "/v1/messages", tok, 200);
    json_t *msgs = json_object_get(o, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *m = json_array_get(msgs, i);
        bool planted = strcmp(s_str_of(m, "id"), bad_id) == 0;
        assert_string_equal(s_str_of(m, "title"), planted ? "Rechnung" FFFD "fdp.exe" : good.title);
        assert_string_equal(s_str_of(m, "reference"), planted ? "AZ 7/11" : good.reference);
    }
    json_decref(o);

    /* the ciphertext is handed out as stored */
    snprintf(path, sizeof(path), "/v1/messages/%s/jwe", bad_id);
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(compact));
    assert_memory_equal(r.body, compact, r.body_len);
    pf_http_response_clear(&r);

    /* one line per request that replaced something: the opening and the
     * downloads name the notice's fields, the listing the row's; the good
     * notice has none (all three name the planted one), and no line quotes
     * a text */
    char logp[1024];
    snprintf(logp, sizeof(logp), "%s/reader.log", pf_env_dir(fx->env));
    char *log = pf_test_read_file(logp, NULL);
    assert_non_null(log);
    char want[256];
    snprintf(want, sizeof(want),
             "event=unsafe_text message=%s route=/v1/messages/{id} replaced=5 "
             "fields=title,subject,body,attachments[0].name,attachments[1].name",
             bad_id);
    assert_int_equal(s_count(log, want), 1);
    snprintf(want, sizeof(want),
             "event=unsafe_text message=%s route=/v1/messages/{id}/attachments/{n} replaced=5 ",
             bad_id);
    assert_int_equal(s_count(log, want), 2); /* the two downloads */
    snprintf(want, sizeof(want), "event=unsafe_text route=/v1/messages replaced=1 fields=%s.title",
             bad_id);
    assert_int_equal(s_count(log, want), 1);
    assert_int_equal(s_count(log, "event=unsafe_text"), 4);
    assert_null(strstr(log, "fdp.exe"));
    assert_null(strstr(log, "Guten Tag"));
    free(log);

    free(compact);
    free(good_id);
    free(tok);
    s_fx_done(fx);
}

/* The one list of a citizen's notices, as ids newest first, must be
 * exactly want (n of them). */
static void s_assert_listing(fx_t *fx, const char *tok, const char *const *want, size_t n)
{
    json_t *o = s_get_json(fx, "/v1/messages", tok, 200);
    json_t *msgs = json_object_get(o, "messages");
    assert_int_equal(json_array_size(msgs), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, i), "id")),
                            want[i]);
    json_decref(o);
}

/* docs/security.md: another citizen's message id gets the 404 of an id
 * that does not exist, identical in status, headers (but Date, the only
 * header that differs between two answers) and body; and a malformed id
 * the same.  The owners open their own notices all the while, so a reader
 * that answered 404 to everything would fail here too. */
static void test_other_citizen_gets_404(void **state)
{
    const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    fx_t *fx = s_fx(state, "reader_isolation", citizens);
    pf_client_attachment_t att = {
        .name = "a.txt", .media_type = "text/plain", .data = "x", .size = 1};
    s_notice_t n = {.title = "Nur fuer A", .read_receipt = true, .atts = &att, .natts = 1};
    char *id = s_send(fx, &n);
    static const char *const to_b[] = {"citizen-b", NULL};
    s_notice_t nb = {
        .title = "Nur fuer B", .body = "B liest", .atts = &att, .natts = 1, .to = to_b};
    char *id_b = s_send(fx, &nb);
    char *tok_a = s_token(fx, "citizen-a", NULL), *tok_b = s_token(fx, "citizen-b", NULL);
    const char *sfx[] = {"", "/jwe", "/attachments/0"};
    const char *random_id = "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b";
    static const char *const per_response[] = {"Date", NULL};
    for (size_t i = 0; i < 3; i++) {
        char paths[3][256];
        snprintf(paths[0], sizeof(paths[0]), "/v1/messages/%s%s", id, sfx[i]);
        snprintf(paths[1], sizeof(paths[1]), "/v1/messages/%s%s", random_id, sfx[i]);
        snprintf(paths[2], sizeof(paths[2]), "/v1/messages/%s%s", "not-an-id", sfx[i]);
        pf_http_response_t r[3];
        char *h[3];
        for (int k = 0; k < 3; k++) {
            assert_int_equal(pf_http_get(fx->port, paths[k], tok_b, &r[k]), 0);
            assert_int_equal(r[k].status, 404);
            assert_string_equal(r[k].body,
                                "{\"error\":\"not_found\",\"message\":\"no such message\"}");
            assert_non_null(strstr(r[k].headers, "\r\nDate: "));
            h[k] = pf_http_headers_except(&r[k], per_response);
        }
        for (int k = 1; k < 3; k++) {
            if (strcmp(h[0], h[k]) != 0)
                fail_msg("404 headers differ:\n%s\n--- and for %s ---\n%s", h[0], paths[k], h[k]);
        }
        /* and B's own copy opens on this route, A's own too */
        char own[256];
        snprintf(own, sizeof(own), "/v1/messages/%s%s", id_b, sfx[i]);
        pf_http_response_t ok;
        assert_int_equal(pf_http_get(fx->port, own, tok_b, &ok), 0);
        if (ok.status != 200)
            fail_msg("B opens its own %s: %d %s", own, ok.status, ok.body ? ok.body : "");
        pf_http_response_clear(&ok);
        for (int k = 0; k < 3; k++) {
            free(h[k]);
            pf_http_response_clear(&r[k]);
        }
    }
    /* each listing holds the owner's notice alone; A's copy stays unread
     * until A opens it, which works */
    s_assert_listing(fx, tok_b, (const char *const[]){id_b}, 1);
    s_assert_listing(fx, tok_a, (const char *const[]){id}, 1);
    char sql[256], path[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NULL",
             id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    json_t *o = s_get_json(fx, path, tok_a, 200);
    assert_string_equal(json_string_value(json_object_get(o, "title")), "Nur fuer A");
    json_decref(o);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 0);
    free(id);
    free(id_b);
    free(tok_a);
    free(tok_b);
    s_fx_done(fx);
}

/* A token signed with the development IdP key, with chosen claims. */
static char *s_mint(fx_t *fx, const char *issuer, const char *audience, int64_t now, int ttl)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/idp.jwk", pf_env_keys(fx->env));
    size_t len;
    char *jwk = pf_test_read_file(path, &len);
    assert_non_null(jwk);
    pf_key_t *key = NULL;
    const char *err;
    assert_int_equal(pf_key_from_jwk(jwk, len, &key, &err), 0);
    free(jwk);
    char *t = pf_token_mint(key, issuer, audience, "citizen-a", PF_LEVEL_HOCH, now, ttl, &err);
    assert_non_null(t);
    pf_key_destroy(&key);
    return t;
}

static void test_bad_tokens_401(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_auth", citizens);
    int64_t now = (int64_t)time(NULL);
    char *expired = s_mint(fx, "https://idp.postfach.local", "postfach-reader", now - 7200, 3600);
    char *wrong_aud = s_mint(fx, "https://idp.postfach.local", "someone-else", now, 600);
    char *wrong_iss = s_mint(fx, "https://evil.example", "postfach-reader", now, 600);
    char *good = s_mint(fx, "https://idp.postfach.local", "postfach-reader", now, 600);
    /* a token of another key */
    pf_key_t *other = NULL;
    const char *err;
    assert_int_equal(pf_key_generate(PF_KEY_P256, &other, &err), 0);
    char *forged = pf_token_mint(other, "https://idp.postfach.local", "postfach-reader",
                                 "citizen-a", PF_LEVEL_HOCH, now, 600, &err);
    pf_key_destroy(&other);
    /* the good token with its signature's last character changed */
    char *tampered = strdup(good);
    size_t tl = strlen(tampered);
    tampered[tl - 2] = tampered[tl - 2] == 'A' ? 'B' : 'A';

    const char *bad[] = {NULL, "garbage", "a.b.c", expired, wrong_aud, wrong_iss, forged, tampered};
    const char *paths[] = {"/v1/messages", "/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b",
                           "/v1/messages/x/jwe"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t j = 0; j < 3; j++) {
            char *raw = s_raw_get(fx, paths[j], bad[i]);
            assert_non_null(strstr(raw, "HTTP/1.1 401 "));
            assert_non_null(strstr(
                raw, "WWW-Authenticate: Bearer realm=\"postfach\", error=\"invalid_token\"\r\n"));
            assert_non_null(strstr(raw, "\"error\":\"invalid_token\""));
            assert_non_null(strstr(raw, "Cache-Control: no-store"));
            /* nothing of the token comes back */
            if (bad[i] != NULL && strlen(bad[i]) > 20)
                assert_null(strstr(raw, bad[i] + strlen(bad[i]) - 20));
            free(raw);
        }
    }
    /* other schemes and malformed headers */
    const char *reqs[] = {
        "GET /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\nConnection: "
        "close\r\n\r\n",
        "GET /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\nConnection: "
        "close\r\n\r\n",
        "GET /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a b\r\nConnection: "
        "close\r\n\r\n",
    };
    for (size_t i = 0; i < 3; i++) {
        char *raw = s_raw(fx->port, reqs[i], strlen(reqs[i]));
        assert_non_null(strstr(raw, "HTTP/1.1 401 "));
        free(raw);
    }
    /* the good one works */
    json_decref(s_get_json(fx, "/v1/messages", good, 200));
    /* the token never shows up in the reader's log */
    char logp[1024];
    snprintf(logp, sizeof(logp), "%s/reader.log", pf_env_dir(fx->env));
    char *log = pf_test_read_file(logp, NULL);
    assert_non_null(log);
    assert_null(strstr(log, good + strlen(good) - 30));
    assert_null(strstr(log, expired + strlen(expired) - 30));
    assert_non_null(strstr(log, "event=request"));
    free(log);
    free(expired);
    free(wrong_aud);
    free(wrong_iss);
    free(good);
    free(forged);
    free(tampered);
    s_fx_done(fx);
}

static void test_level_403(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_level", citizens);
    pf_client_attachment_t att = {
        .name = "a.txt", .media_type = "text/plain", .data = "x", .size = 1};
    s_notice_t n = {
        .title = "Vertraulich", .level = "hoch", .read_receipt = true, .atts = &att, .natts = 1};
    char *id = s_send(fx, &n);
    char *normal = s_token(fx, "citizen-a", "normal");
    char *subst = s_token(fx, "citizen-a", "substantiell");
    char *hoch = s_token(fx, "citizen-a", "hoch");
    char path[256], sql[256];

    /* listed, with its requirement */
    json_t *o = s_get_json(fx, "/v1/messages", normal, 200);
    json_t *m = json_array_get(json_object_get(o, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "id")), id);
    assert_string_equal(json_string_value(json_object_get(m, "required_level")), "hoch");
    json_decref(o);

    const char *sfx[] = {"", "/attachments/0", "/jwe"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/v1/messages/%s%s", id, sfx[i]);
        o = s_get_json(fx, path, normal, 403);
        assert_string_equal(json_string_value(json_object_get(o, "error")), "insufficient_level");
        json_decref(o);
        json_decref(s_get_json(fx, path, subst, 403));
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NULL",
             id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    json_decref(s_get_json(fx, path, hoch, 200));
    assert_int_equal(pf_env_sql_int(fx->env, sql), 0);
    free(id);
    free(normal);
    free(subst);
    free(hoch);
    s_fx_done(fx);
}

static void test_broken_requests(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_broken", citizens);
    char *tok = s_token(fx, "citizen-a", NULL);
    struct {
        const char *req;
        const char *want; /* status line prefix, or NULL: any answer or a close */
    } cases[] = {
        {"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: "
         "close\r\n\r\nhello",
         "HTTP/1.1 405 "},
        {"DELETE /v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b HTTP/1.1\r\nHost: "
         "x\r\nConnection: close\r\n\r\n",
         "HTTP/1.1 405 "},
        {"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
         "HTTP/1.1 405 "},
        {"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 404 "},
        {"GET /v1/messages/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "HTTP/1.1 404 "},
        {"GET /v1/messages/%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody",
         "HTTP/1.1 413 "},
        {"GARBAGE\r\n\r\n", NULL},
        {"GET\r\n\r\n", NULL},
        {"GET / HTTP/9.9\r\nHost: x\r\n\r\n", NULL},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", NULL}, /* a TLS hello */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *raw = s_raw(fx->port, cases[i].req, strlen(cases[i].req));
        if (cases[i].want != NULL) {
            if (strncmp(raw, cases[i].want, strlen(cases[i].want)) != 0)
                fprintf(stderr, "case %zu: %.200s\n", i, raw);
            assert_memory_equal(raw, cases[i].want, strlen(cases[i].want));
            if (strstr(cases[i].want, "405"))
                assert_non_null(strstr(raw, "Allow: GET\r\n"));
        }
        free(raw);
        assert_true(s_healthy(fx));
    }
    /* Headers beyond the per-connection memory (connection_memory, 32 KiB),
     * whether just beyond or far beyond: libmicrohttpd answers 431 itself
     * (its own short HTML page, docs/api.md) and closes, and the reader
     * serves on */
    const size_t bigs[] = {40 * 1024, 200 * 1024};
    for (size_t i = 0; i < 2; i++) {
        char *req = malloc(bigs[i] + 256);
        int off = snprintf(req, 256, "GET /v1/messages HTTP/1.1\r\nHost: x\r\nX-Big: ");
        memset(req + off, 'a', bigs[i]);
        strcpy(req + off + bigs[i], "\r\nConnection: close\r\n\r\n");
        char *raw = s_raw(fx->port, req, strlen(req));
        if (strncmp(raw, "HTTP/1.1 431 ", 13) != 0)
            fail_msg("header of %zu bytes: \"%.80s\"", bigs[i], raw);
        free(raw);
        free(req);
        assert_true(s_healthy(fx));
    }
    /* A token beyond our limit (PF_TOKEN_MAX, 8 KiB) in headers that fit:
     * refused by the reader before any parsing, with the ordinary 401 */
    char *huge = malloc(20000);
    memset(huge, 'a', 19999);
    huge[19999] = '\0';
    char *raw = s_raw_get(fx, "/v1/messages", huge);
    if (strncmp(raw, "HTTP/1.1 401 ", 13) != 0)
        fail_msg("20 KB token: \"%.80s\"", raw);
    assert_non_null(
        strstr(raw, "WWW-Authenticate: Bearer realm=\"postfach\", error=\"invalid_token\"\r\n"));
    assert_non_null(strstr(raw, "\"error\":\"invalid_token\""));
    assert_null(strstr(raw, "aaaaaaaaaaaaaaaaaaaa")); /* not echoed */
    free(raw);
    free(huge);

    /* security headers, the page and the key set */
    raw = s_raw_get(fx, "/", NULL);
    assert_non_null(strstr(raw, "HTTP/1.1 200 "));
    assert_non_null(strstr(raw, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_non_null(
        strstr(raw, "Content-Security-Policy: default-src 'none'; script-src 'sha256-"));
    assert_non_null(strstr(raw, "Referrer-Policy: no-referrer\r\n"));
    assert_non_null(strstr(raw, "X-Content-Type-Options: nosniff\r\n"));
    assert_non_null(strstr(raw, "Postfach"));
    assert_null(strstr(raw, "http://"));
    assert_null(strstr(raw, "https://"));
    free(raw);
    raw = s_raw_get(fx, "/v1/messages", tok);
    assert_non_null(strstr(raw, "HTTP/1.1 200 "));
    assert_non_null(strstr(raw, "Cache-Control: no-store\r\n"));
    assert_non_null(strstr(raw, "Referrer-Policy: no-referrer\r\n"));
    free(raw);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, "/.well-known/jwks.json", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_error_t jerr;
    json_t *o = json_loadb(r.body, r.body_len, 0, &jerr);
    assert_non_null(o);
    json_t *k = json_array_get(json_object_get(o, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
    assert_null(json_object_get(k, "d"));
    json_decref(o);
    pf_http_response_clear(&r);
    assert_true(s_healthy(fx));
    free(tok);
    s_fx_done(fx);
}

/* Behind the TLS proxy every citizen's connection comes from one address:
 * with the default settings, 48 open connections from 127.0.0.1 are all
 * served.  (A default limit of 32 per address capped the whole service
 * behind a proxy: the 33rd connection was closed unanswered.) */
static void test_many_connections_from_one_address(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_conns", citizens);
    enum { N = 48 };
    int fds[N];
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)fx->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
    }
    usleep(200 * 1000); /* the reader has accepted (or refused) them all */
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++)
        assert_int_equal(send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL), sizeof(req) - 1);
    for (int i = 0; i < N; i++) {
        char buf[512];
        size_t got = 0;
        int64_t end = pf_test_now_ms() + 10000;
        while (got < 12 && pf_test_now_ms() < end) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (poll(&p, 1, (int)(end - pf_test_now_ms())) <= 0)
                break;
            ssize_t n = recv(fds[i], buf + got, sizeof(buf) - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        buf[got] = '\0';
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
            fail_msg("connection %d of %d: \"%.40s\"", i + 1, N, buf);
        close(fds[i]);
    }
    s_fx_done(fx);
}

/* The database goes away under a running reader: every request that needs
 * it answers 503 with Retry-After and the JSON error, nothing needing no
 * database changes, the reader stays up, and it serves again once the
 * database is back.  The test has a PostgreSQL cluster of its own, so it
 * can stop it without disturbing other tests. */
static bool s_list_ok(void *arg)
{
    fx_t *fx = ((void **)arg)[0];
    const char *tok = ((void **)arg)[1];
    pf_http_response_t r;
    bool ok = pf_http_get(fx->port, "/v1/messages", tok, &r) == 0 && r.status == 200;
    pf_http_response_clear(&r);
    return ok;
}

static void s_assert_503(fx_t *fx, const char *path, const char *tok)
{
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, path, tok, &r), 0);
    if (r.status != 503)
        fail_msg("GET %s with the database down: %d %s", path, r.status, r.body ? r.body : "");
    assert_non_null(strstr(r.headers, "\r\nRetry-After: 5\r\n"));
    assert_non_null(strstr(r.headers, "\r\nCache-Control: no-store\r\n"));
    assert_string_equal(r.content_type, "application/json");
    json_t *o = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "unavailable");
    assert_non_null(json_string_value(json_object_get(o, "message")));
    json_decref(o);
    pf_http_response_clear(&r);
}

static void test_database_down_503(void **state)
{
    const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx_on(state, "reader_dbdown", citizens, true);
    s_notice_t n = {.title = "Vor dem Ausfall", .read_receipt = true};
    char *id = s_send(fx, &n);
    char *tok = s_token(fx, "citizen-a", NULL);
    json_decref(s_get_json(fx, "/v1/messages", tok, 200));
    /* the broker would only log its own reconnects meanwhile */
    assert_int_equal(pf_env_stop_broker(fx->env, SIGTERM), 0);

    assert_int_equal(pf_env_pg_kill(fx->env), 0);
    char path[256];
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    /* several rounds: the pool's connections are found dead one by one,
     * then reconnecting fails; each request answers 503 all the same */
    for (int i = 0; i < 3; i++) {
        s_assert_503(fx, "/v1/messages", tok);
        s_assert_503(fx, path, tok);
        s_assert_503(fx, "/healthz", NULL);
    }
    /* what needs no database is still served */
    pf_http_response_t r;
    assert_int_equal(pf_http_get(fx->port, "/.well-known/jwks.json", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    pf_http_response_clear(&r);
    assert_true(pf_env_reader_alive(fx->env));

    assert_int_equal(pf_env_pg_start(fx->env), 0);
    void *arg[] = {fx, tok};
    /* generous: a loaded machine may take long to recover; not a figure */
    assert_true(pf_test_wait(s_list_ok, arg, 60000));
    assert_true(s_healthy(fx));
    /* nothing was recorded while it was down; the open works now, once */
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE id = '%s' AND read_at IS NULL",
             id);
    assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
    json_decref(s_get_json(fx, path, tok, 200));
    assert_int_equal(pf_env_sql_int(fx->env, sql), 0);
    free(id);
    free(tok);
    s_fx_done(fx);
}

/* Many requests open the same unread notice at once: each gets the
 * notice with the same read time, and exactly one read receipt is stored
 * (the first retrieval wins once, whoever races it). */
typedef struct {
    int port;
    const char *path, *token;
    pthread_barrier_t *go;
    int status;
    char read_at[40];
} s_opener_t;

static void *s_opener(void *arg)
{
    s_opener_t *o = arg;
    pthread_barrier_wait(o->go);
    pf_http_response_t r;
    if (pf_http_get(o->port, o->path, o->token, &r) != 0)
        return NULL;
    o->status = r.status;
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    const char *ra = json_string_value(json_object_get(j, "read_at"));
    snprintf(o->read_at, sizeof(o->read_at), "%s", ra ? ra : "");
    json_decref(j);
    pf_http_response_clear(&r);
    return NULL;
}

static void test_concurrent_first_opens(void **state)
{
    static const char *const citizens[] = {"citizen-a", NULL};
    fx_t *fx = s_fx(state, "reader_race", citizens);
    char *tok = s_token(fx, "citizen-a", NULL);
    enum { ROUNDS = 6, OPENERS = 8 };
    for (int round = 0; round < ROUNDS; round++) {
        s_notice_t n = {.read_receipt = true};
        char *id = s_send(fx, &n);
        char path[256];
        snprintf(path, sizeof(path), "/v1/messages/%s", id);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, OPENERS);
        s_opener_t o[OPENERS];
        pthread_t th[OPENERS];
        for (int i = 0; i < OPENERS; i++) {
            o[i] = (s_opener_t){.port = fx->port, .path = path, .token = tok, .go = &go};
            assert_int_equal(pthread_create(&th[i], NULL, s_opener, &o[i]), 0);
        }
        for (int i = 0; i < OPENERS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < OPENERS; i++) {
            assert_int_equal(o[i].status, 200);
            assert_true(o[i].read_at[0] != '\0');
            assert_string_equal(o[i].read_at, o[0].read_at);
        }
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'", id);
        assert_int_equal(pf_env_sql_int(fx->env, sql), 1);
        /* what the citizen was told is what is stored */
        snprintf(sql, sizeof(sql),
                 "SELECT to_char(read_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                 "FROM message WHERE id = '%s'",
                 id);
        char *stored = pf_env_sql(fx->env, sql);
        assert_non_null(stored);
        assert_string_equal(stored, o[0].read_at);
        free(stored);
        free(id);
    }
    free(tok);
    s_fx_done(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_pages_newest_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_open_attachment_read_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_opens, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_receipts_only_when_asked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_large_attachment_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_jwe_route, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_texts_replaced, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_other_citizen_gets_404, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens_401, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_level_403, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_broken_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_many_connections_from_one_address, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_database_down_503, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
