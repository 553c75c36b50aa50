/* Keep-alive HTTP/1.1 GETs over one TCP connection.
 *
 * Callers: lib/bench/reader.c, one client per thread.
 * Why our own and not wrk: the reader needs a different bearer token per
 * citizen and a different message id per request, with p99 computed the
 * same way as the broker figures (lib/bench/hist); doing that in wrk means
 * Lua that generates tokens and a second latency method.  This is 150
 * lines and no extra package.
 * Input from outside: the server's response; the status line and headers
 * are bounded (S_HEAD_MAX), the body is read and discarded by its length. */
#include "bench/http.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_HEAD_MAX 16384
#define S_BUF 65536

struct pf_bench_http {
    struct sockaddr_in addr;
    int fd;
    char buf[S_BUF];
    size_t len; /* bytes in buf not yet consumed */
};

pf_bench_http_t *pf_bench_http_new(const char *host, int port)
{
    pf_bench_http_t *h = xcalloc(1, sizeof(*h));
    h->addr.sin_family = AF_INET;
    h->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &h->addr.sin_addr) != 1) {
        free(h);
        return NULL;
    }
    h->fd = -1;
    return h;
}

static int s_connect(pf_bench_http_t *h)
{
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (h->fd < 0)
        return -1;
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(h->fd, (struct sockaddr *)&h->addr, sizeof(h->addr)) != 0) {
        close(h->fd);
        h->fd = -1;
        return -1;
    }
    h->len = 0;
    return 0;
}

static void s_close(pf_bench_http_t *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->len = 0;
}

static int s_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t s_fill(pf_bench_http_t *h)
{
    if (h->len >= sizeof(h->buf))
        return -1;
    for (;;) {
        ssize_t r = recv(h->fd, h->buf + h->len, sizeof(h->buf) - h->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            h->len += (size_t)r;
        return r;
    }
}

/* One request/response on an open connection: 0 ok, -1 failed, -2 the
 * server had closed the connection before answering (retry once). */
static int s_exchange(pf_bench_http_t *h, const char *req, size_t reqlen, int *status_r,
                      size_t *body_len_r, bool *close_r, const char **error_r)
{
    if (s_write_all(h->fd, req, reqlen) != 0)
        return -2;
    char *end = NULL;
    while ((end = memmem(h->buf, h->len, "\r\n\r\n", 4)) == NULL) {
        if (h->len >= S_HEAD_MAX) {
            *error_r = "response headers too large";
            return -1;
        }
        ssize_t r = s_fill(h);
        if (r <= 0) {
            *error_r = "connection closed before the response";
            return h->len == 0 ? -2 : -1;
        }
    }
    size_t head_len = (size_t)(end - h->buf) + 4;
    end[2] = '\0';
    int status = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599) {
        *error_r = "malformed status line";
        return -1;
    }
    long long clen = -1;
    *close_r = false;
    for (char *line = strstr(h->buf, "\r\n"); line && line + 2 < end + 2;
         line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = strtoll(l + 15, NULL, 10);
        else if (strncasecmp(l, "Connection:", 11) == 0 && strstr(l, "close") != NULL &&
                 strstr(l, "close") < strstr(l, "\r\n"))
            *close_r = true;
        else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0) {
            *error_r = "chunked responses are not supported";
            return -1;
        }
    }
    if (clen < 0) {
        *error_r = "response without Content-Length";
        return -1;
    }
    /* consume headers, then the body */
    memmove(h->buf, h->buf + head_len, h->len - head_len);
    h->len -= head_len;
    size_t left = (size_t)clen;
    while (left > 0) {
        if (h->len == 0 && s_fill(h) <= 0) {
            *error_r = "connection closed inside the body";
            return -1;
        }
        size_t take = h->len < left ? h->len : left;
        memmove(h->buf, h->buf + take, h->len - take);
        h->len -= take;
        left -= take;
    }
    *status_r = status;
    *body_len_r = (size_t)clen;
    return 0;
}

int pf_bench_http_get(pf_bench_http_t *h, const char *path, const char *bearer, int *status_r,
                      size_t *body_len_r, const char **error_r)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: reader\r\n%s%s%sAccept: application/json\r\n\r\n",
                     path, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                     bearer ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(req)) {
        *error_r = "request too long";
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (h->fd < 0 && s_connect(h) != 0) {
            *error_r = "cannot connect";
            return -1;
        }
        bool close_after = false;
        int rc = s_exchange(h, req, (size_t)n, status_r, body_len_r, &close_after, error_r);
        if (rc == 0) {
            if (close_after)
                s_close(h);
            return 0;
        }
        s_close(h);
        if (rc == -1)
            return -1;
        /* -2: a kept-alive connection the server had closed: once more */
    }
    *error_r = "connection closed";
    return -1;
}

void pf_bench_http_destroy(pf_bench_http_t **hp)
{
    if (*hp == NULL)
        return;
    s_close(*hp);
    free(*hp);
    *hp = NULL;
}
