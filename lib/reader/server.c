/* The reader's HTTP server: libmicrohttpd daemon, limits, routing,
 * authentication, common headers, request log (see reader.h).
 *
 * Callers: cmd/postfach-reader/main.c.
 * Threading: MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL with a thread
 * pool.  Each worker thread multiplexes its connections with epoll, so a
 * slow or idle client costs a socket and its memory pool, never a thread
 * (thread-per-connection would let a few hundred slow clients tie up as
 * many threads and stacks).  The handlers block on PostgreSQL, which
 * stalls the other connections of that worker for the length of a query;
 * queries are short indexed lookups bounded by statement_timeout, and the
 * database is the bottleneck anyway, so the pool is sized to the number of
 * database connections we want (one per worker) rather than to clients.
 * Limits: total and per-IP connections, an inactivity timeout, and a
 * per-connection memory pool that bounds the request line and headers
 * (libmicrohttpd answers 431 when they do not fit).  Only GET is served;
 * a request with a body is refused before the body is read.
 * Untrusted input: everything from the socket.  The URL is not unescaped
 * (route.c accepts no escapes), tokens are size-checked before parsing, and
 * nothing the client sent is echoed into a response or logged unescaped;
 * tokens and bodies are never logged. */
#include "reader/reader.h"

#include "auth/tokencache.h"
#include "reader/pool.h"
#include "reader/reader_private.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Larger tokens are refused before any parsing; real IdP tokens are a
 * few KiB at most. */
#define S_MAX_TOKEN PF_TOKEN_MAX
/* Key and JWKS files are small; refuse anything that is not. */
#define S_MAX_KEYFILE (256 * 1024)

static const char *const s_algs[] = {"ES256", "PS256", "RS256", NULL};

struct pf_reader {
    struct MHD_Daemon *mhd;
    pf_pool_t *pool;
    pf_reader_shared_t sh;
    pf_keyset_t *idp_keys;
    pf_token_policy_t policy;
    pf_token_cache_t *token_cache;
    char *issuer;
    char *audience;
    char *receipt_issuer;
    int port;
};

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- responses ------------------------------------------------------------- */

typedef struct {
    void *p;
    size_t len;
} s_wipe_t;

/* Free callback of plaintext bodies: wiped before the memory is reused. */
static void s_free_wiped(void *cls)
{
    s_wipe_t *w = cls;
    pf_wipe(w->p, w->len);
    free(w->p);
    free(w);
}

static struct MHD_Response *s_response(const pf_reader_t *rd, pf_reply_t *rep)
{
    struct MHD_Response *resp;
    if (rep->body_static) {
        resp = MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_PERSISTENT);
    } else if (rep->body != NULL && rep->wipe) {
        s_wipe_t *w = xmalloc(sizeof(*w));
        w->p = rep->body;
        w->len = rep->len;
        resp = MHD_create_response_from_buffer_with_free_callback_cls(rep->len, rep->body,
                                                                      s_free_wiped, w);
        if (resp == NULL)
            free(w); /* body still ours: pf_reply_clear wipes it */
        else
            rep->body = NULL;
    } else if (rep->body != NULL) {
        resp = MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
        if (resp != NULL)
            rep->body = NULL;
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return NULL;
    if (rep->content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    switch (rep->cache) {
    case PF_CACHE_PAGE:
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        break;
    case PF_CACHE_PUBLIC:
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=300");
        break;
    default:
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "Pragma", "no-cache");
        break;
    }
    /* the page gets its own policy; everything else (JSON, downloads) may
     * not run or load anything, even if a browser renders it */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            rep->page ? rd->sh.page_csp
                                      : "default-src 'none'; frame-ancestors 'none'; sandbox");
    if (rep->disposition != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, rep->disposition);
    if (rep->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", rep->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (rep->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"postfach\", error=\"invalid_token\"");
    if (rep->allow_get)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
    return resp;
}

/* --- requests -------------------------------------------------------------- */

/* Verifies the bearer token; fills rq->mailbox/level or rep (401). */
static int s_authenticate(pf_reader_t *rd, struct MHD_Connection *c, pf_token_claims_t *claims,
                          pf_reply_t *rep)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok;
    size_t len;
    if (h == NULL) {
        pf_reply_error(rep, 401, "invalid_token", "a bearer token is required");
        rep->www_authenticate = true;
        return -1;
    }
    if (pf_route_bearer(h, S_MAX_TOKEN, &tok, &len) != 0) {
        pf_reply_error(rep, 401, "invalid_token", "the authorization header is not a bearer token");
        rep->www_authenticate = true;
        return -1;
    }
    const char *err = NULL;
    if (pf_token_cache_verify(rd->token_cache, &rd->policy, tok, len, (int64_t)time(NULL), claims,
                              &err) != 0) {
        char esc[200];
        /* the verifier's reason (static text), never the token */
        pf_info("event=auth_failed reason=\"%s\"",
                pf_log_escape(err ? err : "-", esc, sizeof(esc)));
        pf_reply_error(rep, 401, "invalid_token", "the token is invalid or expired");
        rep->www_authenticate = true;
        return -1;
    }
    if (claims->subject[0] == '\0' || claims->level < PF_LEVEL_NORMAL) {
        pf_reply_error(rep, 401, "invalid_token", "the token names no mailbox or level");
        rep->www_authenticate = true;
        return -1;
    }
    return 0;
}

/* What can be refused from the request line and headers alone: unknown
 * route, wrong method, a body.  Returns true with rep filled. */
static bool s_refuse(struct MHD_Connection *c, const pf_route_t *route, pf_reply_t *rep)
{
    if (route->id == PF_ROUTE_NOT_FOUND) {
        pf_reply_error(rep, 404, "not_found", "no such resource");
        return true;
    }
    if (route->method_not_allowed) {
        pf_reply_error(rep, 405, "method_not_allowed", "only GET is served here");
        rep->allow_get = true;
        return true;
    }
    /* GET has no body here: refuse one before it is read (MHD then closes
     * the connection instead of reading what we did not ask for) */
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if ((cl != NULL && strcmp(cl, "0") != 0) ||
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
            NULL) {
        pf_reply_error(rep, 413, "body_not_allowed", "requests to this service carry no body");
        return true;
    }
    return false;
}

static void s_dispatch(pf_reader_t *rd, struct MHD_Connection *c, const pf_route_t *route,
                       pf_reply_t *rep)
{
    if (route->id == PF_ROUTE_PAGE) {
        rep->status = 200;
        rep->content_type = "text/html; charset=utf-8";
        rep->body = rd->sh.page;
        rep->len = rd->sh.page_len;
        rep->body_static = true;
        rep->page = true;
        rep->cache = PF_CACHE_PAGE;
        return;
    }
    if (route->id == PF_ROUTE_JWKS) {
        rep->status = 200;
        rep->content_type = "application/jwk-set+json";
        rep->body = rd->sh.jwks;
        rep->len = rd->sh.jwks_len;
        rep->body_static = true;
        rep->cache = PF_CACHE_PUBLIC;
        return;
    }
    pf_token_claims_t claims;
    memset(&claims, 0, sizeof(claims));
    if (route->needs_auth && s_authenticate(rd, c, &claims, rep) != 0)
        return;
    if (route->needs_auth && route->id != PF_ROUTE_LIST && !route->id_ok) {
        pf_reply_no_message(rep);
        return;
    }
    if (route->id == PF_ROUTE_ATTACHMENT && route->attachment < 0) {
        pf_reply_error(rep, 404, "not_found", "no such attachment");
        return;
    }
    const char *err = NULL;
    pf_store_t *st = pf_pool_get(rd->pool, &err);
    if (st == NULL) {
        pf_reply_unavailable(rep, "connect", err);
        return;
    }
    pf_request_t rq = {
        .sh = &rd->sh,
        .st = st,
        .route = route,
        .mailbox = claims.subject,
        .level = claims.level,
        .limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
        .cursor = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor"),
    };
    switch (route->id) {
    case PF_ROUTE_HEALTH:
        if (pf_store_ping(st, &err) != 0) {
            pf_reply_unavailable(rep, "health", err);
        } else {
            pf_reply_json(rep, 200, xstrdup("{\"status\":\"ok\"}"), false);
        }
        break;
    case PF_ROUTE_LIST:
        pf_reader_list(&rq, rep);
        break;
    case PF_ROUTE_MESSAGE:
        pf_reader_message(&rq, rep);
        break;
    case PF_ROUTE_JWE:
        pf_reader_jwe(&rq, rep);
        break;
    case PF_ROUTE_ATTACHMENT:
        pf_reader_attachment(&rq, rep);
        break;
    default:
        pf_reply_error(rep, 404, "not_found", "no such resource");
        break;
    }
    pf_pool_put(rd->pool, &st);
}

/* Marks a connection's request as seen (libmicrohttpd's per-request
 * pointer); no per-request allocation is needed. */
static char s_seen;

static enum MHD_Result s_respond(pf_reader_t *rd, struct MHD_Connection *c, const char *method,
                                 const pf_route_t *route, pf_reply_t *rep, int64_t start)
{
    if (rep->status == 0)
        pf_reply_error(rep, 500, "internal", "internal error");
    struct MHD_Response *resp = s_response(rd, rep);
    enum MHD_Result ok = MHD_NO;
    if (resp != NULL) {
        ok = MHD_queue_response(c, (unsigned)rep->status, resp);
        MHD_destroy_response(resp);
    }
    char m[24];
    pf_info("event=request method=%s route=%s status=%d dur_ms=%.1f",
            pf_log_escape(method, m, sizeof(m)), route->pattern, rep->status,
            (double)(s_now_us() - start) / 1000.0);
    pf_reply_clear(rep);
    return ok;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    pf_reader_t *rd = cls;
    int64_t start = s_now_us();
    pf_route_t route;
    pf_route_match(method, url, &route);
    pf_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    if (*con_cls == NULL) {
        /* first call, headers only: refusals are answered at once (for a
         * request with a body MHD then closes the connection rather than
         * read it); a GET we serve is answered on the next call, once MHD
         * knows the request is complete, so the connection can stay open */
        *con_cls = &s_seen;
        if (s_refuse(c, &route, &rep))
            return s_respond(rd, c, method, &route, &rep, start);
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        /* body bytes despite the checks above (cannot happen for a
         * request we accepted): discard them */
        *upload_data_size = 0;
        return MHD_YES;
    }
    s_dispatch(rd, c, &route, &rep);
    return s_respond(rd, c, method, &route, &rep, start);
}

/* No unescaping: route.c treats '%' as a character no route contains, and
 * query values (limit digits, base64url cursor) need none. */
static size_t s_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

__attribute__((format(printf, 2, 0))) static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], esc[600];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    pf_warn("event=http_error msg=\"%s\"", pf_log_escape(msg, esc, sizeof(esc)));
}

/* --- life cycle ------------------------------------------------------------ */

static __thread char s_err[512];

static int s_fail(const char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_fail(const char **error_r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_err, sizeof(s_err), fmt, ap);
    va_end(ap);
    *error_r = s_err;
    return -1;
}

static int s_load_keys(pf_reader_t *rd, const pf_reader_settings_t *s, const char **error_r)
{
    const char *err;
    if (pf_keyring_open(s->kek_file, &rd->sh.keyring, &err) != 0)
        return s_fail(error_r, "cannot load kek_file \"%s\": %s", s->kek_file, err);

    char *text = NULL;
    size_t len = 0;
    if (pf_file_read(s->receipt_key_file, S_MAX_KEYFILE, &text, &len, &err) != 0)
        return s_fail(error_r, "cannot read receipt_key_file \"%s\": %s", s->receipt_key_file, err);
    int rc = pf_key_from_jwk(text, len, &rd->sh.receipt_key, &err);
    pf_wipe(text, len);
    free(text);
    if (rc != 0)
        return s_fail(error_r, "cannot parse receipt_key_file \"%s\": %s", s->receipt_key_file,
                      err);
    if (!pf_key_is_private(rd->sh.receipt_key) || pf_key_is_rsa(rd->sh.receipt_key))
        return s_fail(error_r, "receipt_key_file \"%s\" must hold a private P-256 key",
                      s->receipt_key_file);

    /* idp_jwks_file may name several files, comma-separated: during an
     * identity provider's key rollover the old and the new JWKS are both
     * accepted (each key is still found by its kid). */
    rd->idp_keys = pf_keyset_new();
    char *list = xstrdup(s->idp_jwks_file), *save = NULL;
    int total = 0;
    rc = 0;
    for (char *f = strtok_r(list, ",", &save); f != NULL && rc == 0;
         f = strtok_r(NULL, ",", &save)) {
        while (*f == ' ')
            f++;
        if (pf_file_read(f, S_MAX_KEYFILE, &text, &len, &err) != 0) {
            rc = s_fail(error_r, "cannot read idp_jwks_file \"%s\": %s", f, err);
            break;
        }
        int n = pf_keyset_add_jwks(rd->idp_keys, text, len, true, &err);
        free(text);
        if (n < 0)
            rc = s_fail(error_r, "cannot parse idp_jwks_file \"%s\": %s", f, err);
        total += n > 0 ? n : 0;
    }
    free(list);
    if (rc == 0 && total == 0)
        rc = s_fail(error_r, "idp_jwks_file \"%s\" holds no signature key", s->idp_jwks_file);
    return rc;
}

static int s_start(pf_reader_t *rd, const pf_reader_settings_t *s, const char **error_r)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->listen_address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->listen_port);
    } else if (inet_pton(AF_INET6, s->listen_address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        return s_fail(error_r, "listen_address \"%.64s\" is not an IP address", s->listen_address);
    }
    rd->mhd = MHD_start_daemon(
        flags, (uint16_t)s->listen_port, NULL, NULL, s_access, rd, MHD_OPTION_EXTERNAL_LOGGER,
        s_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)s->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections,
        /* 0 is libmicrohttpd's "no limit" */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->connection_memory,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (rd->mhd == NULL)
        return s_fail(error_r, "cannot listen on %s port %d", s->listen_address, s->listen_port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(rd->mhd, MHD_DAEMON_INFO_BIND_PORT);
    rd->port = info ? info->port : s->listen_port;
    return 0;
}

int pf_reader_new(const pf_reader_settings_t *s, pf_reader_t **r_r, const char **error_r)
{
    pf_reader_t *rd = xcalloc(1, sizeof(*rd));
    /* The development issuer's key is written by `postfach-ctl keys init`
     * into a file anyone running ctl can read: a reader trusting it lets
     * them mint a token for every mailbox. */
    if (strcmp(s->idp_issuer, PF_TOKEN_DEV_ISSUER) == 0 && !s->idp_development) {
        s_fail(error_r,
               "idp_issuer is %s, the development identity provider of postfach-ctl token: "
               "configure the real identity provider (idp_issuer, idp_audience, "
               "idp_jwks_file), or set idp_development = on on a development machine",
               PF_TOKEN_DEV_ISSUER);
        goto fail;
    }
    if (s->idp_development)
        pf_warn("event=idp_development warning=\"DEVELOPMENT ONLY: tokens of the development "
                "identity provider are accepted; never run like this with real mailboxes\"");
    if (s_load_keys(rd, s, error_r) != 0)
        goto fail;
    rd->issuer = xstrdup(s->idp_issuer);
    rd->audience = xstrdup(s->idp_audience);
    rd->receipt_issuer = xstrdup(s->receipt_issuer);
    rd->policy = (pf_token_policy_t){
        .keys = rd->idp_keys,
        .issuer = rd->issuer,
        .audience = rd->audience,
        .skew_seconds = 60,
        .algs = s_algs,
        .max_lifetime_seconds = s->token_max_lifetime,
    };
    /* a few entries per connection: citizens come back with the same token */
    rd->token_cache = pf_token_cache_new((size_t)s->max_connections * 4, s->token_cache_seconds);
    rd->sh.receipt_issuer = rd->receipt_issuer;
    rd->sh.list_limit_default = s->list_limit_default;
    rd->sh.list_limit_max = s->list_limit_max;
    if (s->list_limit_default > s->list_limit_max) {
        s_fail(error_r, "list_limit_default (%d) exceeds list_limit_max (%d)",
               s->list_limit_default, s->list_limit_max);
        goto fail;
    }
    rd->sh.jwks = pf_reader_jwks_render(rd->sh.receipt_key, &rd->sh.jwks_len);
    if (rd->sh.jwks == NULL) {
        s_fail(error_r, "cannot render the receipt key set");
        goto fail;
    }
    rd->sh.page = pf_reader_page_render(&rd->sh.page_len, &rd->sh.page_csp);
    rd->pool = pf_pool_new(s->db, s->threads, s->statement_timeout_ms);
    rd->sh.wake = pf_wake_new(s->db);
    if (rd->sh.wake == NULL) {
        s_fail(error_r, "cannot start the receipt wake-up thread");
        goto fail;
    }

    /* not required: the reader serves 503 until the database is back */
    const char *err;
    pf_store_t *st = pf_pool_get(rd->pool, &err);
    if (st == NULL) {
        char esc[512];
        pf_warn("event=db_unavailable error=\"%s\"", pf_log_escape(err, esc, sizeof(esc)));
    }
    pf_pool_put(rd->pool, &st);

    if (s_start(rd, s, error_r) != 0)
        goto fail;
    pf_info("event=ready listen=%s port=%d threads=%d", s->listen_address, rd->port, s->threads);
    *r_r = rd;
    return 0;
fail:
    pf_reader_destroy(&rd);
    return -1;
}

int pf_reader_port(const pf_reader_t *r)
{
    return r->port;
}

void pf_reader_destroy(pf_reader_t **rp)
{
    pf_reader_t *rd = *rp;
    if (rd == NULL)
        return;
    if (rd->mhd != NULL)
        MHD_stop_daemon(rd->mhd); /* joins the workers: no request runs after this */
    pf_wake_destroy(&rd->sh.wake);
    pf_pool_destroy(&rd->pool);
    pf_keyring_destroy(&rd->sh.keyring);
    pf_key_destroy(&rd->sh.receipt_key);
    pf_keyset_destroy(&rd->idp_keys);
    pf_token_cache_destroy(&rd->token_cache);
    free(rd->sh.jwks);
    free(rd->sh.page);
    free(rd->sh.page_csp);
    free(rd->issuer);
    free(rd->audience);
    free(rd->receipt_issuer);
    free(rd);
    *rp = NULL;
}
