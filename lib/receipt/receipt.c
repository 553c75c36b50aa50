/* Receipts as Security Event Tokens (RFC 8417): signing with the
 * service's ES256 receipt key, and offline verification and parsing.
 *
 * Callers: the broker (delivered, rejected, expired) and the reader (read)
 * sign receipts into the outbox in the transaction that changes the state
 * they report; postfach-ctl and the client library verify them.
 *
 * Untrusted input: a receipt given to pf_receipt_verify, which may come
 * from anywhere (a sender shows it to a court years later).  It must be
 * an ES256 JWS with typ "secevent+jwt" under a key of the given set; its
 * claims must be exactly what pf_receipt_sign writes: one event of a known
 * name, UUID ids, bounded strings, a "time" text that agrees with
 * "time_ms".  The typ check keeps receipts and bearer tokens apart even if
 * one key were (wrongly) used for both (RFC 8725 3.11). */
#include "receipt/receipt.h"
#include "util/b64url.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_TYP "secevent+jwt"
#define S_EVENT_PREFIX "urn:postfach:event:"
/* a receipt is well under 2 KiB; the cap applies before parsing */
#define S_RECEIPT_MAX (64 * 1024)
#define S_NAME_MAX 256    /* sender names, request ids, issuer */
#define S_MAILBOX_MAX 128 /* like a token subject */
/* 9999-12-31T23:59:59.999Z */
#define S_TIME_MS_MAX INT64_C(253402300799999)

static const char S_MALFORMED[] = "malformed receipt";
static const char S_WRONG_ISSUER[] = "wrong issuer";
static const char S_WRONG_AUDIENCE[] = "wrong audience";

static const char *const s_events[] = {NULL, "delivered", "read", "expired", "rejected"};
#define S_NEVENTS (sizeof(s_events) / sizeof(s_events[0]))

const char *pf_event_name(pf_event_t e)
{
    if ((int)e < PF_EVENT_DELIVERED || (size_t)e >= S_NEVENTS)
        return NULL;
    return s_events[e];
}

int pf_event_parse(const char *s, pf_event_t *e_r)
{
    for (size_t i = 1; s != NULL && i < S_NEVENTS; i++) {
        if (strcmp(s, s_events[i]) == 0) {
            *e_r = (pf_event_t)i;
            return 0;
        }
    }
    return -1;
}

/* RFC 3339 UTC with milliseconds: "2025-01-31T12:34:56.789Z". */
static int s_rfc3339(int64_t ms, char out[32])
{
    if (ms < 0 || ms > S_TIME_MS_MAX)
        return -1;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL)
        return -1;
    /* the bound on ms keeps the year at four digits: always 24 characters */
    int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return n == 24 ? 0 : -1;
}

/* Printable text of 1..max bytes (control characters would end up in
 * logs and terminals of whoever inspects a receipt). */
static bool s_valid_text(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* The base64url of a 16-byte GCM tag. */
static bool s_valid_tag(const char *s)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    if (s == NULL || strlen(s) != 22 || pf_b64url_decode(s, 22, &raw, &n) != 0)
        return false;
    free(raw);
    return n == 16;
}

char *pf_receipt_sign(const pf_key_t *key, const char *issuer, const pf_receipt_t *r,
                      const char **error_r)
{
    char when[32];
    const char *name = r ? pf_event_name(r->event) : NULL;
    if (r == NULL || name == NULL || !s_valid_text(issuer, S_NAME_MAX) ||
        pf_uuid_valid(r->jti) != 0 || pf_uuid_valid(r->message_id) != 0 ||
        !s_valid_text(r->sender, S_NAME_MAX) || !s_valid_text(r->mailbox, S_MAILBOX_MAX) ||
        (r->txn != NULL && !s_valid_text(r->txn, S_NAME_MAX)) ||
        (r->jwe_tag != NULL && !s_valid_tag(r->jwe_tag)) || r->iat < 0 ||
        s_rfc3339(r->event_time_ms, when) != 0) {
        *error_r = "receipt fields missing or not well-formed";
        return NULL;
    }
    long long iat = r->iat > 0 ? (long long)r->iat : (long long)time(NULL);
    /* the claims written straight, byte for byte as jansson wrote them
     * (compact, this order, its escapes): a receipt signed today reads
     * like one signed before.  ids, the time and the tag were checked
     * above and need no escaping. */
    pf_buf_t b;
    pf_buf_init(&b);
    pf_buf_puts(&b, "{\"iss\":");
    bool ok = pf_buf_json_str(&b, issuer) == 0;
    pf_buf_printf(&b, ",\"iat\":%lld,\"jti\":\"%s\",\"sub\":\"%s\"", iat, r->jti,
                  r->message_id);
    if (r->txn != NULL) {
        pf_buf_puts(&b, ",\"txn\":");
        ok = ok && pf_buf_json_str(&b, r->txn) == 0;
    }
    pf_buf_puts(&b, ",\"aud\":");
    ok = ok && pf_buf_json_str(&b, r->sender) == 0;
    pf_buf_printf(&b, ",\"events\":{\"" S_EVENT_PREFIX "%s\":{\"time\":\"%s\",\"time_ms\":%lld,"
                      "\"mailbox\":",
                  name, when, (long long)r->event_time_ms);
    ok = ok && pf_buf_json_str(&b, r->mailbox) == 0;
    if (r->jwe_tag != NULL)
        pf_buf_printf(&b, ",\"jwe_tag\":\"%s\"", r->jwe_tag);
    pf_buf_puts(&b, "}}}");
    if (!ok) {
        pf_buf_free(&b, 0);
        *error_r = "receipt fields are not valid UTF-8";
        return NULL;
    }
    size_t plen = 0;
    char *payload = pf_buf_steal(&b, &plen);
    char *tok = pf_jws_sign(key, S_TYP, payload, strlen(payload), error_r);
    free(payload);
    return tok;
}

/* Copies an optional bounded string claim; -1 when present but bad. */
static int s_opt_text(const json_t *o, const char *name, size_t max, char **out_r)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || !s_valid_text(json_string_value(v), max))
        return -1;
    *out_r = xstrdup(json_string_value(v));
    return 0;
}

static const char *s_parse_event(const json_t *events, pf_receipt_t *r)
{
    if (!json_is_object(events) || json_object_size(events) != 1)
        return S_MALFORMED;
    const char *urn;
    json_t *ev;
    json_object_foreach((json_t *)events, urn, ev)
    {
        size_t plen = strlen(S_EVENT_PREFIX);
        if (strncmp(urn, S_EVENT_PREFIX, plen) != 0 || pf_event_parse(urn + plen, &r->event) != 0)
            return S_MALFORMED;
    }
    ev = json_object_iter_value(json_object_iter((json_t *)events));
    json_t *ms = json_object_get(ev, "time_ms");
    const char *when = json_string_value(json_object_get(ev, "time"));
    char expect[32];
    if (!json_is_object(ev) || !json_is_integer(ms) || when == NULL ||
        s_rfc3339(json_integer_value(ms), expect) != 0 || strcmp(expect, when) != 0)
        return S_MALFORMED;
    r->event_time_ms = json_integer_value(ms);
    json_t *mb = json_object_get(ev, "mailbox");
    if (mb == NULL || s_opt_text(ev, "mailbox", S_MAILBOX_MAX, &r->mailbox) != 0 ||
        s_opt_text(ev, "jwe_tag", 32, &r->jwe_tag) != 0 ||
        (r->jwe_tag != NULL && !s_valid_tag(r->jwe_tag)))
        return S_MALFORMED;
    return NULL;
}

static const char *s_parse_claims(const json_t *c, const char *issuer, pf_receipt_t *r)
{
    if (!json_is_object(c))
        return S_MALFORMED;
    const char *iss = json_string_value(json_object_get(c, "iss"));
    if (iss == NULL)
        return S_MALFORMED;
    if (issuer != NULL && strcmp(iss, issuer) != 0)
        return S_WRONG_ISSUER;
    json_t *iat = json_object_get(c, "iat");
    const char *jti = json_string_value(json_object_get(c, "jti"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    json_t *aud = json_object_get(c, "aud");
    if (!json_is_integer(iat) || json_integer_value(iat) < 0 ||
        json_integer_value(iat) > S_TIME_MS_MAX / 1000 || jti == NULL || pf_uuid_valid(jti) != 0 ||
        sub == NULL || pf_uuid_valid(sub) != 0 || !json_is_string(aud) ||
        s_opt_text(c, "aud", S_NAME_MAX, &r->sender) != 0 ||
        s_opt_text(c, "txn", S_NAME_MAX, &r->txn) != 0)
        return S_MALFORMED;
    r->iat = json_integer_value(iat);
    memcpy(r->jti, jti, sizeof(r->jti)); /* 36 characters and the NUL */
    memcpy(r->message_id, sub, sizeof(r->message_id));
    return s_parse_event(json_object_get(c, "events"), r);
}

bool pf_receipt_error_is_config(const char *error)
{
    /* pf_jws_verify's errors are fixed texts (crypto/jose.h) */
    return error != NULL &&
           (strcmp(error, "unknown key") == 0 || strcmp(error, S_WRONG_ISSUER) == 0 ||
            strcmp(error, S_WRONG_AUDIENCE) == 0);
}

const char *pf_receipt_check_audience(const pf_receipt_t *r, const char *audience)
{
    return r->sender != NULL && strcmp(r->sender, audience) == 0 ? NULL : S_WRONG_AUDIENCE;
}

int pf_receipt_verify(const char *token, size_t len, const pf_keyset_t *keys,
                      const char *issuer_or_null, pf_receipt_t *r_r, const char **error_r)
{
    memset(r_r, 0, sizeof(*r_r));
    if (token == NULL || len == 0 || len > S_RECEIPT_MAX) {
        *error_r = S_MALFORMED;
        return -1;
    }
    static const char *const es256[] = {"ES256", NULL};
    char *payload = NULL, *header = NULL;
    size_t plen = 0;
    if (pf_jws_verify(token, len, keys, es256, &payload, &plen, &header, error_r) != 0)
        return -1;
    json_error_t jerr;
    json_t *h = json_loads(header, JSON_REJECT_DUPLICATES, &jerr);
    json_t *c = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, &jerr);
    const char *err = NULL;
    if (h == NULL || !pf_jws_typ_is(json_string_value(json_object_get(h, "typ")), S_TYP))
        err = S_MALFORMED;
    else
        err = s_parse_claims(c, issuer_or_null, r_r);
    json_decref(h);
    json_decref(c);
    free(header);
    free(payload);
    if (err != NULL) {
        pf_receipt_clear(r_r);
        *error_r = err;
        return -1;
    }
    return 0;
}

void pf_receipt_clear(pf_receipt_t *r)
{
    if (r == NULL)
        return;
    free(r->txn);
    free(r->sender);
    free(r->mailbox);
    free(r->jwe_tag);
    memset(r, 0, sizeof(*r));
}
