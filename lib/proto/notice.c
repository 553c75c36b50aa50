/* Notice document codec (see notice.h for the format).
 * Untrusted input: the decoder checks types, requires every field it uses,
 * and checks each attachment's declared size against its decoded bytes. */
#include "proto/notice.h"
#include "util/b64url.h"
#include "util/jsonscan.h"
#include "util/jsonstr.h"
#include "util/xalloc.h"

#include <stdbool.h>
#include <stdio.h>
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

/* The decoder reads the document in place (util/jsonscan.h) instead of
 * through a jansson tree: json_loadb and the tree were 8-10% of the
 * reader's CPU per opened notice.  The texts are copied out of the
 * scanner's arena, which is wiped before it is freed. */

static const char *const s_fields[6] = {"title", "subject", "body", "reference", "sender",
                                        "sent_at"};

typedef struct {
    bool object;
    const char *name, *media_type, *data; /* NULL: missing or not a string */
    size_t data_len;
    bool size_integer;
    long long size;
} s_att_t;

typedef struct {
    bool version_ok;
    const char *field[6];
    bool attachments_array;
    s_att_t *att;
    size_t natt;
} s_doc_t;

/* A string member's value, or NULL (the value is skipped) when it is
 * another type; -1 when the document is not JSON. */
static int s_string_or_skip(pf_jscan_t *js, const char **v_r, size_t *len_r)
{
    size_t len = 0;
    *v_r = NULL;
    if (pf_jscan_peek(js) != PF_JSCAN_STRING)
        return pf_jscan_skip(js);
    int r = pf_jscan_string(js, v_r, &len);
    if (len_r != NULL)
        *len_r = len;
    return r;
}

/* An integer member (size, v); *integer_r false when it is another type. */
static int s_integer_or_skip(pf_jscan_t *js, bool *integer_r, long long *v_r)
{
    const char *text;
    size_t len;
    *integer_r = false;
    if (pf_jscan_peek(js) != PF_JSCAN_NUMBER)
        return pf_jscan_skip(js);
    return pf_jscan_number(js, &text, &len, integer_r, v_r);
}

static int s_attachment_read(pf_jscan_t *js, s_att_t *a)
{
    int r = pf_jscan_object_or_skip(js);
    if (r != 1)
        return r;
    a->object = true;
    unsigned seen = 0;
    const char *key;
    while ((r = pf_jscan_member(js, &key)) == 1) {
        if (strcmp(key, "name") == 0)
            r = pf_jscan_twice(&seen, 0) ? -1 : s_string_or_skip(js, &a->name, NULL);
        else if (strcmp(key, "media_type") == 0)
            r = pf_jscan_twice(&seen, 1) ? -1 : s_string_or_skip(js, &a->media_type, NULL);
        else if (strcmp(key, "data") == 0)
            r = pf_jscan_twice(&seen, 2) ? -1 : s_string_or_skip(js, &a->data, &a->data_len);
        else if (strcmp(key, "size") == 0)
            r = pf_jscan_twice(&seen, 3) ? -1 : s_integer_or_skip(js, &a->size_integer, &a->size);
        else
            r = pf_jscan_skip(js); /* members of later versions are left alone */
        if (r != 0)
            return -1;
    }
    return r;
}

/* 0, or -1 when the document is not a JSON object */
static int s_doc_read(pf_jscan_t *js, s_doc_t *d)
{
    if (pf_jscan_peek(js) != PF_JSCAN_OBJECT || pf_jscan_object(js) != 0)
        return -1;
    unsigned seen = 0;
    size_t cap = 0;
    const char *key;
    int r;
    while ((r = pf_jscan_member(js, &key)) == 1) {
        int k = pf_jscan_key_index(key, s_fields, 6);
        if (k >= 0) {
            r = pf_jscan_twice(&seen, k) ? -1 : s_string_or_skip(js, &d->field[k], NULL);
        } else if (strcmp(key, "v") == 0) {
            bool integer;
            long long v = 0;
            r = pf_jscan_twice(&seen, 6) ? -1 : s_integer_or_skip(js, &integer, &v);
            d->version_ok = r == 0 && integer && v == PF_NOTICE_VERSION;
        } else if (strcmp(key, "attachments") == 0) {
            if (pf_jscan_twice(&seen, 7))
                return -1;
            if (pf_jscan_peek(js) != PF_JSCAN_ARRAY) {
                r = pf_jscan_skip(js);
            } else {
                d->attachments_array = true;
                r = pf_jscan_array(js);
                while (r == 0 && (r = pf_jscan_element(js)) == 1) {
                    if (d->natt == cap) {
                        cap = cap ? 2 * cap : 4;
                        d->att = xrealloc(d->att, cap * sizeof(*d->att));
                    }
                    s_att_t *a = &d->att[d->natt++];
                    memset(a, 0, sizeof(*a));
                    r = s_attachment_read(js, a);
                }
            }
        } else {
            r = pf_jscan_skip(js);
        }
        if (r != 0)
            return -1;
    }
    return r == 0 ? pf_jscan_done(js) : -1;
}

/* Copies the document's fields into n_r; 0, or -1 when one is missing or
 * of the wrong type, or an attachment's data does not match its size. */
static int s_doc_take(const s_doc_t *d, int want_data, pf_notice_t *n_r)
{
    char **out[6] = {&n_r->title,     &n_r->subject, &n_r->body,
                     &n_r->reference, &n_r->sender,  &n_r->sent_at};
    int bad = 0;
    for (int i = 0; i < 6; i++) {
        *out[i] = xstrdup(d->field[i] ? d->field[i] : "");
        bad |= d->field[i] == NULL;
    }
    if (bad || !d->attachments_array)
        return -1;
    n_r->attachments = xcalloc(d->natt ? d->natt : 1, sizeof(pf_attachment_t));
    for (size_t i = 0; i < d->natt; i++) {
        const s_att_t *a = &d->att[i];
        pf_attachment_t *o = &n_r->attachments[i];
        n_r->attachment_count = i + 1;
        if (!a->object || !a->size_integer || a->size < 0 || a->data == NULL)
            return -1;
        o->name = xstrdup(a->name ? a->name : "");
        o->media_type = xstrdup(a->media_type ? a->media_type : "");
        o->size = (size_t)a->size;
        if (a->name == NULL || a->media_type == NULL)
            return -1;
        if (want_data) {
            /* o->data holds exactly o->size bytes or is NULL:
             * pf_notice_clear wipes o->size bytes of it */
            unsigned char *bytes = NULL;
            size_t dlen = 0;
            if (pf_b64_decode(a->data, a->data_len, &bytes, &dlen) != 0)
                return -1;
            if (dlen != o->size) {
                s_wipe_free(bytes, dlen);
                return -1;
            }
            o->data = bytes;
        }
    }
    return 0;
}

int pf_notice_decode(const char *json, size_t len, int want_data, pf_notice_t *n_r,
                     const char **error_r)
{
    memset(n_r, 0, sizeof(*n_r));
    char *arena = xmalloc(len + 1);
    pf_jscan_t js;
    pf_jscan_init(&js, json, len, arena);
    s_doc_t d;
    memset(&d, 0, sizeof(d));
    int rc = -1;
    if (s_doc_read(&js, &d) != 0)
        *error_r = "notice is not a JSON object";
    else if (!d.version_ok)
        *error_r = "unsupported notice version";
    else if (s_doc_take(&d, want_data, n_r) != 0)
        *error_r = "malformed notice document";
    else
        rc = 0;
    if (rc != 0)
        pf_notice_clear(n_r);
    free(d.att);
    s_wipe_free(arena, len + 1);
    return rc;
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
