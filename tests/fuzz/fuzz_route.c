/* libFuzzer target: the reader's request path before any database work -
 * routing, the Authorization header, the listing's limit and cursor, and
 * the token verification the header leads to (lib/reader/route.c,
 * lib/auth/token.c).  Everything here is reachable by anyone who can open
 * a TCP connection to the reader, before authentication.
 *
 * Input layout: "METHOD\nPATH\nAUTHORIZATION\nLIMIT\nCURSOR" (later
 * fields may be missing).  The token verifier gets a fixed policy with a
 * key generated once, so well-formed but foreign tokens reach the
 * signature check. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "crypto/jose.h"
#include "reader/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pf_keyset_t *s_keys;

static const pf_token_policy_t *s_policy(void)
{
    static const char *const algs[] = {"ES256", "PS256", "RS256", NULL};
    static pf_token_policy_t policy;
    if (s_keys == NULL) {
        pf_key_t *key = NULL;
        const char *err;
        if (pf_key_generate(PF_KEY_P256, &key, &err) != 0)
            abort();
        s_keys = pf_keyset_new();
        pf_keyset_add(s_keys, key, pf_key_kid(key));
        pf_key_destroy(&key);
        policy = (pf_token_policy_t){.keys = s_keys,
                                     .issuer = "https://idp.postfach.local",
                                     .audience = "postfach-reader",
                                     .skew_seconds = 60,
                                     .algs = algs,
                                     .max_lifetime_seconds = 86400};
    }
    return &policy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    /* NUL-terminated copy split at newlines: the C strings MHD would hand us */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *field[5] = {NULL, NULL, NULL, NULL, NULL};
    char *p = buf;
    for (int i = 0; i < 5 && p != NULL; i++) {
        field[i] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }

    pf_route_t r;
    pf_route_match(field[0], field[1] ? field[1] : "", &r);
    if (r.id_ok && strlen(r.message_id) != 36)
        abort();
    if (r.attachment > PF_ROUTE_MAX_INDEX)
        abort();

    const char *tok;
    size_t len;
    if (field[2] != NULL && pf_route_bearer(field[2], PF_TOKEN_MAX, &tok, &len) == 0) {
        if (len == 0 || len > PF_TOKEN_MAX)
            abort();
        pf_token_claims_t claims;
        const char *err = NULL;
        if (pf_token_verify(s_policy(), tok, len, 1700000000, &claims, &err) != 0 && err == NULL)
            abort();
    }

    int limit;
    if (pf_route_limit(field[3], 50, 100, &limit) == 0 && (limit < 1 || limit > 100))
        abort();

    char id[37];
    if (field[4] != NULL && pf_cursor_decode(field[4], id) == 0) {
        /* whatever decodes must encode back to the same cursor */
        char again[PF_CURSOR_LEN + 1];
        if (pf_cursor_encode(id, again) != 0 || strcmp(again, field[4]) != 0)
            abort();
    }
    free(buf);
    return 0;
}
