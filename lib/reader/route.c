/* Request parsing for the reader (see route.h).
 *
 * Callers: server.c for every request, before any database work; the unit
 * tests and the fuzz target directly.
 * Input: entirely untrusted (method, path, header and query values as the
 * client sent them).  Nothing here allocates except the cursor codec's
 * short-lived base64 buffers, and nothing reads past a NUL.  Matching is
 * exact: no trailing slashes, no empty or dot segments, no percent
 * escapes, so one resource has exactly one spelling and the route pattern
 * logged is unambiguous. */
#include "reader/route.h"

#include "util/b64url.h"
#include "util/digits.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const s_patterns[] = {
    [PF_ROUTE_NOT_FOUND] = "-",
    [PF_ROUTE_PAGE] = "/",
    [PF_ROUTE_HEALTH] = "/healthz",
    [PF_ROUTE_JWKS] = "/.well-known/jwks.json",
    [PF_ROUTE_LIST] = "/v1/messages",
    [PF_ROUTE_MESSAGE] = "/v1/messages/{id}",
    [PF_ROUTE_JWE] = "/v1/messages/{id}/jwe",
    [PF_ROUTE_ATTACHMENT] = "/v1/messages/{id}/attachments/{n}",
};

/* Canonical 8-4-4-4-12 hex form, either case; writes the lower-case text
 * to out (37 bytes) and, when bin is not NULL, the 16 bytes. */
static bool s_uuid_parse(const char *s, size_t len, char out[37], unsigned char *bin)
{
    if (len != 36)
        return false;
    size_t b = 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            out[i] = '-';
            continue;
        }
        int v = pf_hex_digit(s[i]);
        if (v < 0)
            return false;
        out[i] = "0123456789abcdef"[v];
        if (bin != NULL) {
            if (b % 2 == 0)
                bin[b / 2] = (unsigned char)(v << 4);
            else
                bin[b / 2] |= (unsigned char)v;
        }
        b++;
    }
    out[36] = '\0';
    return true;
}

/* Attachment index: decimal, no sign, no leading zeros, bounded. */
static int s_index(const char *s, size_t len)
{
    if (len == 0 || len > 4 || (len > 1 && s[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= PF_ROUTE_MAX_INDEX ? v : -1;
}

static bool s_seg_eq(const char *seg, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(seg, lit, len) == 0;
}

pf_route_id_t pf_route_match(const char *method, const char *path, pf_route_t *r)
{
    memset(r, 0, sizeof(*r));
    r->attachment = -1;
    r->id = PF_ROUTE_NOT_FOUND;
    if (path == NULL || path[0] != '/')
        goto done;

    if (strcmp(path, "/") == 0)
        r->id = PF_ROUTE_PAGE;
    else if (strcmp(path, "/healthz") == 0)
        r->id = PF_ROUTE_HEALTH;
    else if (strcmp(path, "/.well-known/jwks.json") == 0)
        r->id = PF_ROUTE_JWKS;
    else if (strcmp(path, "/v1/messages") == 0)
        r->id = PF_ROUTE_LIST;
    else if (strncmp(path, "/v1/messages/", 13) == 0) {
        /* split the rest into at most three segments: {id}[/jwe | /attachments/{n}] */
        const char *seg[4];
        size_t len[4], n = 0;
        const char *p = path + 13;
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t l = slash ? (size_t)(slash - p) : strlen(p);
            if (l == 0 || n == 3)
                goto done; /* empty segment (//, trailing /) or too deep */
            seg[n] = p;
            len[n++] = l;
            if (slash == NULL)
                break;
            p = slash + 1;
        }
        if (n == 1)
            r->id = PF_ROUTE_MESSAGE;
        else if (n == 2 && s_seg_eq(seg[1], len[1], "jwe"))
            r->id = PF_ROUTE_JWE;
        else if (n == 3 && s_seg_eq(seg[1], len[1], "attachments")) {
            r->id = PF_ROUTE_ATTACHMENT;
            r->attachment = s_index(seg[2], len[2]);
        } else
            goto done;
        r->id_ok = s_uuid_parse(seg[0], len[0], r->message_id, NULL);
        if (!r->id_ok)
            r->message_id[0] = '\0';
    }
done:
    r->pattern = s_patterns[r->id];
    r->needs_auth = r->id >= PF_ROUTE_LIST;
    if (r->id != PF_ROUTE_NOT_FOUND && (method == NULL || strcmp(method, "GET") != 0))
        r->method_not_allowed = true;
    return r->id;
}

int pf_route_bearer(const char *header, size_t max_len, const char **token_r, size_t *len_r)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return -1;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = 0;
    /* token68: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then "="* */
    while (t[n] != '\0') {
        char c = t[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
        if (!ok)
            break;
        n++;
    }
    while (t[n] == '=')
        n++;
    /* nothing may follow but trailing spaces (MHD strips them already) */
    size_t end = n;
    while (t[end] == ' ')
        end++;
    if (n == 0 || n > max_len || t[end] != '\0')
        return -1;
    *token_r = t;
    *len_r = n;
    return 0;
}

int pf_route_limit(const char *s, int def, int max, int *limit_r)
{
    if (s == NULL) {
        *limit_r = def;
        return 0;
    }
    size_t len = strlen(s);
    if (len == 0 || len > 6)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > max)
        return -1;
    *limit_r = v;
    return 0;
}

int pf_cursor_encode(const char *message_id, char out[PF_CURSOR_LEN + 1])
{
    unsigned char raw[17];
    char text[37];
    if (message_id == NULL || !s_uuid_parse(message_id, strlen(message_id), text, raw + 1))
        return -1;
    raw[0] = 1; /* cursor format version */
    char *enc = pf_b64url_encode(raw, sizeof(raw));
    memcpy(out, enc, PF_CURSOR_LEN + 1);
    free(enc);
    return 0;
}

int pf_cursor_decode(const char *s, char id_r[37])
{
    if (s == NULL || strlen(s) != PF_CURSOR_LEN)
        return -1;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (pf_b64url_decode(s, PF_CURSOR_LEN, &raw, &n) != 0)
        return -1;
    int rc = -1;
    if (n == 17 && raw[0] == 1) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (size_t i = 1; i < 17; i++) {
            if (o == 8 || o == 13 || o == 18 || o == 23)
                id_r[o++] = '-';
            id_r[o++] = hex[raw[i] >> 4];
            id_r[o++] = hex[raw[i] & 15];
        }
        id_r[36] = '\0';
        rc = 0;
    }
    free(raw);
    return rc;
}
