#ifndef PF_READER_ROUTE_H
#define PF_READER_ROUTE_H
/* Request parsing for the reader: path routing, the bearer header, the
 * listing's query parameters and its opaque cursor.  Pure functions over
 * untrusted bytes (no I/O, no allocation except where noted), so they are
 * unit-tested and fuzzed on their own (tests/unit/test_router.c,
 * tests/fuzz/fuzz_route.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PF_ROUTE_NOT_FOUND = 0,
    PF_ROUTE_PAGE,       /* GET /                                   */
    PF_ROUTE_HEALTH,     /* GET /healthz                            */
    PF_ROUTE_JWKS,       /* GET /.well-known/jwks.json              */
    PF_ROUTE_LIST,       /* GET /v1/messages                        */
    PF_ROUTE_MESSAGE,    /* GET /v1/messages/{id}                   */
    PF_ROUTE_JWE,        /* GET /v1/messages/{id}/jwe               */
    PF_ROUTE_ATTACHMENT, /* GET /v1/messages/{id}/attachments/{n}   */
} pf_route_id_t;

/* Largest attachment index accepted in a path; the notice codec bounds the
 * real count far lower, this only keeps the number parse trivially safe. */
#define PF_ROUTE_MAX_INDEX 9999

typedef struct {
    pf_route_id_t id;
    /* The route pattern ("/v1/messages/{id}"), static: what the request
     * log shows instead of the raw path.  "-" for unknown routes. */
    const char *pattern;
    /* The path matched but the method is not GET: answer 405. */
    bool method_not_allowed;
    /* Needs a citizen token (every /v1/ route). */
    bool needs_auth;
    /* For routes with {id}: the id, lower-cased, and whether it is a
     * well-formed UUID.  A malformed id still matches the route, so that
     * authentication comes first and the answer is the same 404 as for a
     * missing message. */
    bool id_ok;
    char message_id[37];
    int attachment; /* {n}, or -1 when not a valid index */
} pf_route_t;

/* Routes method + path (the path without query string, not unescaped:
 * percent-encoding is not part of any resource name, so '%' never
 * matches).  Always fills *r; returns r->id. */
pf_route_id_t pf_route_match(const char *method, const char *path, pf_route_t *r);

/* Extracts the token from an "Authorization" header value: the scheme
 * "Bearer" (case-insensitive), one or more spaces, then the token68
 * characters (RFC 6750 section 2.1) up to the end, at most max_len bytes.
 * Returns 0 with *token_r and *len_r pointing into header, or -1. */
int pf_route_bearer(const char *header, size_t max_len, const char **token_r, size_t *len_r);

/* Parses the "limit" parameter: NULL gives def; otherwise decimal digits
 * only, 1..max.  Returns 0 or -1. */
int pf_route_limit(const char *s, int def, int max, int *limit_r);

/* The listing cursor: opaque to clients, a versioned encoding of the last
 * message id of the previous page (base64url of 0x01 || 16 UUID bytes, 23
 * characters).  Versioned so that it may carry more later.
 * encode: out gets 24 bytes with the NUL.  Returns 0, or -1 when id is not
 * a UUID.  decode: fills id_r (37 bytes, lower-case UUID text); -1 when
 * s is not a cursor this version made. */
#define PF_CURSOR_LEN 23
int pf_cursor_encode(const char *message_id, char out[PF_CURSOR_LEN + 1]);
int pf_cursor_decode(const char *s, char id_r[37]);

#endif
