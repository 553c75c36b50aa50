/* Notice document codec (see notice.h for the format).
 * Untrusted input: the decoder checks types, requires every field it uses,
 * and checks each attachment's declared size against its decoded bytes. */
#include "proto/notice.h"
#include "util/b64url.h"
#include "util/jsonstr.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The document is written by hand into one buffer of its exact size.
 * jansson checked and escaped the body byte by byte and dumped through a
 * growing buffer (8% of the broker's CPU per 2 KiB notice, and every
 * growth left a copy of the plaintext behind in freed memory); the
 * attachments' base64 was already copied into place for the same reason
 * (more than half of the broker's CPU with a 200 KiB attachment).  The
 * output is the JSON jansson wrote (compact, same member order, same
 * escapes: '"', '\\', the control characters; UTF-8 as it is). */

static char *s_put(char *out, const char *lit)
{
    size_t n = strlen(lit);
    memcpy(out, lit, n);
    return out + n;
}

#define S_STR(p) ((p) ? (p) : "")

char *pf_notice_encode(const pf_notice_t *n, size_t *len_r)
{
    const char *keys[6] = {"title", "subject", "body", "reference", "sender", "sent_at"};
    const char *vals[6] = {S_STR(n->title),     S_STR(n->subject), S_STR(n->body),
                           S_STR(n->reference), S_STR(n->sender),  S_STR(n->sent_at)};
    char v[24];
    snprintf(v, sizeof(v), "{\"v\":%d", PF_NOTICE_VERSION);
    /* the size first: every string's escaped length plus the punctuation */
    size_t total = strlen(v) + strlen(",\"attachments\":[]}");
    for (int i = 0; i < 6; i++) {
        long e = pf_json_escaped_len(vals[i]);
        if (e < 0)
            abort(); /* the caller passes UTF-8 it has checked (as jansson required) */
        total += 4 + strlen(keys[i]) + 2 + (size_t)e; /* ,"key":"..." */
    }
    for (size_t i = 0; i < n->attachment_count; i++) {
        const pf_attachment_t *a = &n->attachments[i];
        long en = pf_json_escaped_len(S_STR(a->name)), em = pf_json_escaped_len(S_STR(a->media_type));
        if (en < 0 || em < 0)
            abort();
        /* {"name":"..","media_type":"..","size":N,"data":".."}, */
        total += 64 + (size_t)en + (size_t)em + 24 + PF_B64_LEN(a->size);
    }
    char *doc = xmalloc(total + 1);
    char *o = s_put(doc, v);
    for (int i = 0; i < 6; i++) {
        *o++ = ',';
        *o++ = '"';
        o = s_put(o, keys[i]);
        o = s_put(o, "\":");
        o = pf_json_put_str(o, vals[i]);
    }
    o = s_put(o, ",\"attachments\":[");
    for (size_t i = 0; i < n->attachment_count; i++) {
        const pf_attachment_t *a = &n->attachments[i];
        if (i > 0)
            *o++ = ',';
        o = s_put(o, "{\"name\":");
        o = pf_json_put_str(o, S_STR(a->name));
        o = s_put(o, ",\"media_type\":");
        o = pf_json_put_str(o, S_STR(a->media_type));
        char size[32];
        snprintf(size, sizeof(size), ",\"size\":%zu,\"data\":\"", a->size);
        o = s_put(o, size);
        o += pf_b64_encode_to(a->data, a->size, o);
        o = s_put(o, "\"}");
    }
    o = s_put(o, "]}");
    *o = '\0';
    if ((size_t)(o - doc) > total)
        abort(); /* the size computed above is an upper bound by construction */
    if (len_r)
        *len_r = (size_t)(o - doc);
    return doc;
}

static void s_wipe_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    volatile unsigned char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
    free(p);
}

static char *s_str(json_t *o, const char *key, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) {
        *bad = 1;
        return xstrdup("");
    }
    return xstrndup(json_string_value(v), json_string_length(v));
}

int pf_notice_decode(const char *json, size_t len, int want_data, pf_notice_t *n_r,
                     const char **error_r)
{
    memset(n_r, 0, sizeof(*n_r));
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        *error_r = "notice is not a JSON object";
        return -1;
    }
    json_t *v = json_object_get(doc, "v");
    if (!json_is_integer(v) || json_integer_value(v) != PF_NOTICE_VERSION) {
        json_decref(doc);
        *error_r = "unsupported notice version";
        return -1;
    }
    int bad = 0;
    n_r->title = s_str(doc, "title", &bad);
    n_r->subject = s_str(doc, "subject", &bad);
    n_r->body = s_str(doc, "body", &bad);
    n_r->reference = s_str(doc, "reference", &bad);
    n_r->sender = s_str(doc, "sender", &bad);
    n_r->sent_at = s_str(doc, "sent_at", &bad);
    json_t *atts = json_object_get(doc, "attachments");
    if (!bad && !json_is_array(atts))
        bad = 1;
    if (!bad) {
        size_t na = json_array_size(atts);
        n_r->attachments = xcalloc(na ? na : 1, sizeof(pf_attachment_t));
        for (size_t i = 0; i < na && !bad; i++) {
            json_t *a = json_array_get(atts, i);
            pf_attachment_t *out = &n_r->attachments[i];
            n_r->attachment_count = i + 1;
            json_t *size = json_object_get(a, "size"), *data = json_object_get(a, "data");
            if (!json_is_object(a) || !json_is_integer(size) || json_integer_value(size) < 0 ||
                !json_is_string(data)) {
                bad = 1;
                break;
            }
            out->name = s_str(a, "name", &bad);
            out->media_type = s_str(a, "media_type", &bad);
            out->size = (size_t)json_integer_value(size);
            if (want_data && !bad) {
                /* out->data holds exactly out->size bytes or is NULL:
                 * pf_notice_clear wipes out->size bytes of it */
                unsigned char *bytes = NULL;
                size_t dlen = 0;
                if (pf_b64_decode(json_string_value(data), json_string_length(data), &bytes,
                                  &dlen) != 0) {
                    bad = 1;
                } else if (dlen != out->size) {
                    s_wipe_free(bytes, dlen);
                    bad = 1;
                } else {
                    out->data = bytes;
                }
            }
        }
    }
    json_decref(doc);
    if (bad) {
        pf_notice_clear(n_r);
        *error_r = "malformed notice document";
        return -1;
    }
    return 0;
}

static void s_wipe_str(char *s)
{
    if (s)
        s_wipe_free(s, strlen(s));
}

void pf_notice_clear(pf_notice_t *n)
{
    s_wipe_str(n->title);
    s_wipe_str(n->subject);
    s_wipe_str(n->body);
    s_wipe_str(n->reference);
    s_wipe_str(n->sender);
    s_wipe_str(n->sent_at);
    for (size_t i = 0; i < n->attachment_count; i++) {
        s_wipe_str(n->attachments[i].name);
        s_wipe_str(n->attachments[i].media_type);
        s_wipe_free(n->attachments[i].data, n->attachments[i].size);
    }
    free(n->attachments);
    memset(n, 0, sizeof(*n));
}
