/* Notice document codec (see notice.h for the format).
 * Untrusted input: the decoder checks types, requires every field it uses,
 * and checks each attachment's declared size against its decoded bytes. */
#include "proto/notice.h"
#include "util/b64url.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The attachment slots of a dumped document, in order.  The members of
 * each attachment object are packed in a fixed order with "data" last, and
 * a raw quote occurs only as a string delimiter (inside strings JSON
 * escapes it), so this byte sequence is exactly an empty "data" member. */
static const char s_slot[] = "\"data\":\"\"}";

char *pf_notice_encode(const pf_notice_t *n, size_t *len_r)
{
    /* The base64 of the attachments is dumped as "" and copied into place
     * afterwards: base64 never needs escaping, and jansson would check and
     * escape it byte by byte, which was more than half of the broker's CPU
     * for a notice with a 200 KiB attachment. */
    json_t *atts = json_array();
    for (size_t i = 0; i < n->attachment_count; i++) {
        const pf_attachment_t *a = &n->attachments[i];
        json_array_append_new(atts, json_pack("{s:s, s:s, s:I, s:s}", "name", a->name,
                                              "media_type", a->media_type, "size",
                                              (json_int_t)a->size, "data", ""));
    }
    json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "v", PF_NOTICE_VERSION,
                            "title", n->title ? n->title : "", "subject", n->subject ? n->subject : "",
                            "body", n->body ? n->body : "", "reference",
                            n->reference ? n->reference : "", "sender", n->sender ? n->sender : "",
                            "sent_at", n->sent_at ? n->sent_at : "", "attachments", atts);
    char *skel = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (skel == NULL)
        abort(); /* only on out-of-memory: the inputs are valid UTF-8 checked by the caller */
    size_t skel_len = strlen(skel);
    if (n->attachment_count == 0) {
        if (len_r)
            *len_r = skel_len;
        return skel;
    }
    size_t total = skel_len;
    for (size_t i = 0; i < n->attachment_count; i++)
        total += (n->attachments[i].size + 2) / 3 * 4;
    char *out = xmalloc(total + 1);
    size_t o = 0;
    const char *p = skel;
    for (size_t i = 0; i < n->attachment_count; i++) {
        const char *slot = strstr(p, s_slot);
        if (slot == NULL)
            abort(); /* the document above always has one slot per attachment */
        size_t head = (size_t)(slot - p) + strlen("\"data\":\"");
        memcpy(out + o, p, head);
        o += head;
        char *b64 = pf_b64_encode(n->attachments[i].data, n->attachments[i].size);
        size_t blen = strlen(b64);
        memcpy(out + o, b64, blen);
        o += blen;
        explicit_bzero(b64, blen);
        free(b64);
        p += head;
    }
    memcpy(out + o, p, skel_len - (size_t)(p - skel));
    o += skel_len - (size_t)(p - skel);
    out[o] = '\0';
    explicit_bzero(skel, skel_len); /* it holds the subject and body */
    free(skel);
    if (len_r)
        *len_r = o;
    return out;
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
