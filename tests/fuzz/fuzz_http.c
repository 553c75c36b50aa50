/* libFuzzer target: the reader as a citizen's browser or an attacker meets
 * it, raw bytes on a TCP connection.  It covers what fuzz_route cannot:
 * libmicrohttpd's parsing of the request line and headers, pipelined and
 * half-closed requests, and the reader's glue around it (lib/reader/
 * server.c: the refusals before the body, authentication, dispatch, the
 * response headers).
 *
 * One reader runs in this process, started once through pf_reader_new with
 * its real settings, on 127.0.0.1 and a free port.  Its database names a
 * socket directory that does not exist, so everything behind
 * authentication answers 503 at once: this target is about what comes
 * before the database (the store has its own tests against a real
 * PostgreSQL).  Each input is written on a fresh connection, the write side
 * is shut, and everything the reader sends until it closes is read.
 *
 * The bytes "@TOKEN@" in an input are replaced by a valid citizen token
 * (minted at start-up with the identity provider key the reader trusts),
 * so that inputs can reach past authentication.
 *
 * Oracle, over every response that parses:
 *  - a response of ours (it carries "X-Content-Type-Options: nosniff")
 *    has all the security headers: Content-Security-Policy, X-Frame-Options
 *    DENY, Referrer-Policy, Cache-Control;
 *  - a response of libmicrohttpd's own (without them) is an error, never
 *    2xx;
 *  - no 2xx carries JSON: every JSON success needs the database;
 *  - without "@TOKEN@" in the input nobody gets past authentication: 503
 *    (the database behind a valid token) may come only from /healthz, so
 *    there are at most as many 503s as "/healthz" in the input. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/token.h"
#include "crypto/jose.h"
#include "reader/reader.h"
#include "util/log.h"

#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MARK "@TOKEN@"
/* Appended to every input.  libmicrohttpd keeps an HTTP/1.1 connection
 * open after the last answer until its inactivity timeout, even when the
 * client has shut its write side (it learns of the end of input only on a
 * read it does not make while idle).  A last request that asks to close
 * ends the exchange at once, whatever came before it. */
#define S_LAST "GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
#define S_MARK_LEN (sizeof(S_MARK) - 1)
/* What the reader may send for one input; the page is the largest answer
 * (about 20 KiB), and a pipelined input asks for it a few hundred times
 * at most within libFuzzer's default input size. */
#define S_MAX_REPLY (16 * 1024 * 1024)

static pf_reader_t *s_reader;
static int s_port;
static char *s_token;
static size_t s_token_len;

static void s_write_file(const char *dir, const char *name, const char *text, char **path_r)
{
    char *path = xasprintf("%s/%s", dir, name);
    const char *err = NULL;
    if (pf_file_write(path, text, strlen(text), 0600, &err) != 0) {
        fprintf(stderr, "fuzz_http: cannot write \"%s\": %s\n", path, err);
        abort();
    }
    *path_r = path;
}

static void s_start(void)
{
    /* the reader writes to connections that the fuzzer may have closed */
    signal(SIGPIPE, SIG_IGN);
    /* one line per request would drown libFuzzer's output */
    pf_log_set_level(PF_LOG_ERROR);
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/pf-fuzz-http-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "fuzz_http: cannot create \"%s\"\n", dir);
        abort();
    }
    const char *err = NULL;
    pf_key_t *receipt = NULL, *idp = NULL;
    if (pf_key_generate(PF_KEY_P256, &receipt, &err) != 0 ||
        pf_key_generate(PF_KEY_P256, &idp, &err) != 0) {
        fprintf(stderr, "fuzz_http: cannot generate keys: %s\n", err);
        abort();
    }
    char *receipt_jwk = pf_key_to_jwk(receipt, true);
    pf_keyset_t *set = pf_keyset_new();
    pf_keyset_add(set, idp, pf_key_kid(idp));
    char *jwks = pf_keyset_to_jwks(set);
    char *kek_path, *receipt_path, *jwks_path;
    s_write_file(dir, "kek", PF_FUZZ_KEK_RING, &kek_path);
    s_write_file(dir, "receipt.jwk", receipt_jwk, &receipt_path);
    s_write_file(dir, "idp.jwks", jwks, &jwks_path);

    char *db = xasprintf("host=%s/no-database dbname=postfach connect_timeout=1", dir);
    pf_reader_settings_t s = {
        .db = db,
        .listen_address = "127.0.0.1",
        .listen_port = 0,
        .kek_file = kek_path,
        .receipt_key_file = receipt_path,
        .receipt_issuer = "https://postfach.fuzz",
        .idp_jwks_file = jwks_path,
        .idp_issuer = "https://idp.fuzz",
        .idp_audience = "postfach-reader",
        .threads = 2,
        .max_connections = 64,
        .max_connections_per_ip = 0,
        .connection_timeout = 2,
        .connection_memory = 32768, /* the reader's default */
        .list_limit_default = 50,
        .list_limit_max = 200,
        .token_max_lifetime = 86400,
        .token_cache_seconds = 60,
        .statement_timeout_ms = 1000,
    };
    if (pf_reader_new(&s, &s_reader, &err) != 0) {
        fprintf(stderr, "fuzz_http: cannot start the reader: %s\n", err);
        abort();
    }
    s_port = pf_reader_port(s_reader);
    s_token = pf_token_mint(idp, s.idp_issuer, s.idp_audience, "citizen-fuzz",
                            PF_LEVEL_SUBSTANTIELL, (int64_t)time(NULL), 86400, &err);
    if (s_token == NULL) {
        fprintf(stderr, "fuzz_http: cannot mint a token: %s\n", err);
        abort();
    }
    s_token_len = strlen(s_token);
    /* the reader has read its files: nothing of them is needed again */
    unlink(kek_path);
    unlink(receipt_path);
    unlink(jwks_path);
    rmdir(dir);
    free(kek_path);
    free(receipt_path);
    free(jwks_path);
    free(db);
    free(dir);
    free(jwks);
    free(receipt_jwk);
    pf_keyset_destroy(&set);
    pf_key_destroy(&idp);
    pf_key_destroy(&receipt);
}

static size_t s_count(const uint8_t *p, size_t n, const char *what)
{
    size_t wl = strlen(what), c = 0;
    for (size_t i = 0; i + wl <= n; i++)
        if (memcmp(p + i, what, wl) == 0) {
            c++;
            i += wl - 1;
        }
    return c;
}

/* The input with every marker replaced by the token, then S_LAST (caller
 * frees). */
static uint8_t *s_expand(const uint8_t *data, size_t size, size_t *len_r)
{
    size_t marks = s_count(data, size, S_MARK);
    uint8_t *out = xmalloc(size + marks * s_token_len + sizeof(S_LAST));
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        if (i + S_MARK_LEN <= size && memcmp(data + i, S_MARK, S_MARK_LEN) == 0) {
            memcpy(out + o, s_token, s_token_len);
            o += s_token_len;
            i += S_MARK_LEN;
        } else {
            out[o++] = data[i++];
        }
    }
    memcpy(out + o, S_LAST, sizeof(S_LAST) - 1);
    *len_r = o + sizeof(S_LAST) - 1;
    return out;
}

/* Writes the request, shuts the write side and reads the whole answer
 * (caller frees; NUL-terminated).  The reader closes the connection after
 * the last answer; should it not, libmicrohttpd's inactivity timeout does. */
static char *s_exchange(const uint8_t *req, size_t len, size_t *len_r)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "fuzz_http: cannot connect: %s\n", strerror(errno));
        abort();
    }
    size_t cap = 65536, got = 0, sent = 0;
    char *buf = xmalloc(cap + 1);
    bool wr_shut = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (wr_shut ? 0 : POLLOUT)};
        int r = poll(&p, 1, 10000);
        if (r == 0) {
            /* libmicrohttpd's own timeout is 2 s: a connection still open
             * after 10 s is a hang of the reader */
            fprintf(stderr, "fuzz_http: the reader neither answered nor closed in 10 s\n");
            abort();
        }
        if (r < 0)
            continue;
        if (!wr_shut && (p.revents & POLLOUT)) {
            ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            if (w < 0 || sent == len) {
                /* the reader may close before it has read everything
                 * (a refused body): then the rest is not sent */
                shutdown(fd, SHUT_WR);
                wr_shut = true;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (got == cap) {
                if (cap >= S_MAX_REPLY)
                    break;
                cap *= 2;
                buf = xrealloc(buf, cap + 1);
            }
            ssize_t n = recv(fd, buf + got, cap - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    close(fd);
    buf[got] = '\0';
    *len_r = got;
    return buf;
}

/* A header's value in the header block [h, end), or NULL. */
static const char *s_header(const char *h, const char *end, const char *name, size_t *len_r)
{
    size_t nl = strlen(name);
    for (const char *l = h; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - l) > nl + 1 && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            *len_r = (size_t)(eol - v);
            return v;
        }
        l = eol + 2;
    }
    return NULL;
}

static bool s_has(const char *h, const char *end, const char *name, const char *value)
{
    size_t vl;
    const char *v = s_header(h, end, name, &vl);
    if (v == NULL)
        return false;
    return value == NULL || (vl == strlen(value) && memcmp(v, value, vl) == 0);
}

static void s_fail(const char *what, const char *resp, size_t len)
{
    fprintf(stderr, "fuzz_http: %s\n--- response ---\n%.*s\n", what, (int)(len > 2048 ? 2048 : len),
            resp);
    abort();
}

/* Checks every response that parses; stops at the first that does not
 * (an answer to HEAD has a length but no body, and the rest of such a
 * stream cannot be told apart). */
static void s_check(const char *buf, size_t len, bool token, size_t healthz)
{
    size_t unavailable = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        if ((size_t)(end - p) < 12 || memcmp(p, "HTTP/1.", 7) != 0)
            return;
        int status = atoi(p + 9);
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL)
            return;
        const char *h = memmem(p, (size_t)(hend - p), "\r\n", 2);
        h = h != NULL ? h + 2 : hend;
        bool ours = s_has(h, hend, "X-Content-Type-Options", "nosniff");
        if (ours) {
            if (!s_has(h, hend, "Content-Security-Policy", NULL) ||
                !s_has(h, hend, "X-Frame-Options", "DENY") ||
                !s_has(h, hend, "Referrer-Policy", "no-referrer") ||
                !s_has(h, hend, "Cache-Control", NULL))
                s_fail("a response of the reader lacks a security header", p, (size_t)(hend - p));
        } else if (status >= 200 && status < 300) {
            s_fail("a success without the reader's headers", p, (size_t)(hend - p));
        }
        size_t vl;
        const char *ct = s_header(h, hend, "Content-Type", &vl);
        if (status >= 200 && status < 300 && ct != NULL && vl >= 16 &&
            memcmp(ct, "application/json", 16) == 0)
            s_fail("a JSON success without a database", p, (size_t)(hend - p));
        if (status == 503 && ours)
            unavailable++;
        if (!token && unavailable > healthz)
            s_fail("past authentication without a valid token", p, (size_t)(hend - p));
        const char *cl = s_header(h, hend, "Content-Length", &vl);
        size_t body = cl != NULL ? strtoul(cl, NULL, 10) : 0;
        p = hend + 4;
        if (body > (size_t)(end - p))
            return;
        p += body;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_reader == NULL)
        s_start();
    bool token = s_count(data, size, S_MARK) > 0;
    size_t healthz = s_count(data, size, "/healthz");
    size_t len;
    uint8_t *req = s_expand(data, size, &len);
    size_t got;
    char *resp = s_exchange(req, len, &got);
    s_check(resp, got, token, healthz);
    free(resp);
    free(req);
    return 0;
}
