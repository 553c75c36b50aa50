/* Wire protocol codec (format in wire.h and docs/protocol.md).
 *
 * Callers: the broker (decodes what procedures send, encodes answers and
 * receipts), the client library (the reverse) and the fuzz target.
 * Untrusted input: every frame handed to pf_wire_decode.  The order of the
 * checks is the point of this file: first frame count and frame sizes
 * (integers only, nothing allocated), then UTF-8 and JSON syntax, then
 * fields one by one; any allocation is bounded by a limit checked before
 * it.  All failures leave through s_fail and the single "fail:" exit of
 * pf_wire_decode, which clears the half-built message.
 *
 * Decoded strings are borrowed from the parsed JSON (kept in the message)
 * and attachment bytes from the caller's frames: a 25 MiB submission is not
 * copied by the codec. */
#include "proto/wire.h"
#include "util/buf.h"
#include "util/jsonscan.h"
#include "util/jsonstr.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_cmd_names[] = {
    [PF_WIRE_SEND] = "SEND",   [PF_WIRE_ACK] = "ACK",         [PF_WIRE_NACK] = "NACK",
    [PF_WIRE_HELLO] = "HELLO", [PF_WIRE_RECEIPT] = "RECEIPT", [PF_WIRE_RACK] = "RACK",
    [PF_WIRE_PING] = "PING",   [PF_WIRE_PONG] = "PONG",
};
#define S_CMD_MAX PF_WIRE_PONG

static const char *const s_levels[] = {NULL, "normal", "substantiell", "hoch"};

void pf_wire_limits_default(pf_wire_limits_t *lim)
{
    lim->max_header = 1024 * 1024;
    lim->max_attachment = 20 * 1024 * 1024;
    lim->max_total = 25 * 1024 * 1024;
    lim->max_attachments = 32;
    lim->max_recipients = 100;
    lim->max_body = 512 * 1024;
}

const char *pf_wire_cmd_name(pf_wire_cmd_t cmd)
{
    if ((int)cmd < 1 || cmd > S_CMD_MAX)
        return "?";
    return s_cmd_names[cmd];
}

int pf_wire_level_parse(const char *s)
{
    for (int i = 1; i <= 3; i++)
        if (strcmp(s, s_levels[i]) == 0)
            return i;
    return -1;
}

const char *pf_wire_level_name(int level)
{
    return level >= 1 && level <= 3 ? s_levels[level] : "normal";
}

bool pf_wire_utf8_valid(const void *data, size_t len)
{
    const unsigned char *s = data;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms and surrogates would let two byte strings mean the
         * same text, which the idempotency hash and the reader must not see */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

bool pf_wire_mailbox_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > PF_WIRE_MAX_RECIPIENT_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i == 0 ? !alnum : !(alnum || strchr("._:@-", c) != NULL))
            return false;
    }
    return true;
}

/* Request ids appear in logs and NACKs: visible ASCII only. */
static bool s_request_id_valid(const char *s, bool allow_empty)
{
    size_t n = strlen(s);
    if (n > PF_WIRE_MAX_REQUEST_ID || (n == 0 && !allow_empty))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* The code point or invalid sequence at s (before end): its length in
 * bytes in *len_r, and whether pf_wire_text_ok lets it through.  The
 * second byte's range per lead byte is Unicode's table 3-7 (no overlongs,
 * surrogates or values above U+10FFFF: what pf_wire_utf8_valid refuses);
 * a sequence that breaks off is as long as its valid start, at least one
 * byte, so the byte that broke it is looked at again on its own. */
static bool s_unit_ok(const unsigned char *s, const unsigned char *end, bool multiline,
                      size_t *len_r)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *len_r = 1;
        return (c >= 0x20 && c != 0x7f) || (multiline && (c == '\n' || c == '\r' || c == '\t'));
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        need = 0; /* a continuation byte, or a lead byte no valid text has */
    size_t k = 1;
    while (k <= need && k < (size_t)(end - s) && s[k] >= (k == 1 ? lo : 0x80) &&
           s[k] <= (k == 1 ? hi : 0xbf))
        k++;
    *len_r = k;
    if (need == 0 || k <= need)
        return false;
    if (c == 0xc2 && s[1] <= 0x9f)
        return false; /* C1 control */
    if (!multiline && c == 0xe2 &&
        ((s[1] == 0x80 && s[2] >= 0xaa && s[2] <= 0xae) ||
         (s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9)))
        return false; /* bidirectional embedding, override or isolate */
    return true;
}

/* Text shown to a citizen: valid UTF-8, length in bytes, no control
 * characters (C0, DEL and C1, U+0080-U+009F) except line breaks and tabs
 * where a multi-line text is expected.  A one-line text (title, subject,
 * reference, file name) also has no bidirectional embedding, override or
 * isolate (U+202A-U+202E, U+2066-U+2069): they make "Rechnung<RLO>fdp.exe"
 * show as "Rechnungexe.pdf".  A multi-line body may need them for
 * right-to-left text.  The rules are s_unit_ok's, which
 * pf_wire_text_clean applies too, so what one refuses the other repairs. */
bool pf_wire_text_ok(const char *s, size_t min, size_t max, bool multiline)
{
    size_t n = strlen(s), k;
    if (n < min || n > max)
        return false;
    const unsigned char *end = (const unsigned char *)s + n;
    for (const unsigned char *p = (const unsigned char *)s; p < end; p += k) {
        k = 1;
        if (*p >= 0x20 && *p < 0x7f)
            continue; /* most of a German text: no call for it */
        if (!s_unit_ok(p, end, multiline, &k))
            return false;
    }
    return true;
}

/* Two passes over the text: the first is the whole cost of a text that
 * passes (no allocation, no copy; the reader opens notices on its hot
 * path) and sizes the copy of one that does not. */
char *pf_wire_text_clean(const char *text, bool multiline)
{
    static const char repl[3] = {'\xef', '\xbf', '\xbd'}; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)text, *end = s + strlen(text);
    size_t out_len = 0, bad = 0, k;
    for (const unsigned char *p = s; p < end; p += k) {
        if (s_unit_ok(p, end, multiline, &k)) {
            out_len += k;
        } else {
            out_len += sizeof(repl);
            bad++;
        }
    }
    if (bad == 0)
        return NULL;
    char *out = xmalloc(out_len + 1), *o = out;
    for (const unsigned char *p = s; p < end; p += k) {
        if (s_unit_ok(p, end, multiline, &k)) {
            memcpy(o, p, k);
            o += k;
        } else {
            memcpy(o, repl, sizeof(repl));
            o += sizeof(repl);
        }
    }
    *o = '\0';
    return out;
}

/* type "/" subtype with RFC 6838 restricted-name characters; parameters
 * are not accepted (a charset belongs inside the document). */
static bool s_media_type_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > PF_WIRE_MAX_MEDIA_TYPE)
        return false;
    int slashes = 0;
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') {
            if (seg == 0 || ++slashes > 1)
                return false;
            seg = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (seg == 0 || strchr("!#$&-^_.+", c) == NULL))
            return false;
        seg++;
    }
    return slashes == 1 && seg > 0;
}

static bool s_file_name_ok(const char *s)
{
    if (!pf_wire_text_ok(s, 1, PF_WIRE_MAX_NAME, false))
        return false;
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    return strpbrk(s, "/\\") == NULL;
}

static int s_fail(pf_wire_error_t *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(pf_wire_error_t *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return -1;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The rules a submission must meet, shared by decoder and encoder so a
 * client never sends what the broker would refuse.  Frame-size limits are
 * checked separately (before parsing, in the decoder). */
static int s_check_send(const pf_wire_send_t *s, const pf_wire_limits_t *lim, pf_wire_error_t *err)
{
    if (s->request_id == NULL || !s_request_id_valid(s->request_id, false))
        return s_fail(err, PF_WIRE_E_MALFORMED, "request_id must be 1-%d visible ASCII characters",
                      PF_WIRE_MAX_REQUEST_ID);
    if (s->recipient_count < 1)
        return s_fail(err, PF_WIRE_E_MALFORMED, "no recipients");
    if (s->recipient_count > lim->max_recipients)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "more than %zu recipients", lim->max_recipients);
    for (size_t i = 0; i < s->recipient_count; i++)
        if (s->recipients[i] == NULL || !pf_wire_mailbox_id_valid(s->recipients[i]))
            return s_fail(err, PF_WIRE_E_MALFORMED, "recipient %zu is not a valid mailbox id",
                          i + 1);
    /* duplicates would make two copies of one notice in one mailbox */
    const char **sorted = xmemdup(s->recipients, s->recipient_count * sizeof(*sorted));
    qsort(sorted, s->recipient_count, sizeof(*sorted), s_cmp_str);
    bool dup = false;
    for (size_t i = 1; i < s->recipient_count && !dup; i++)
        dup = strcmp(sorted[i - 1], sorted[i]) == 0;
    free(sorted);
    if (dup)
        return s_fail(err, PF_WIRE_E_MALFORMED, "a recipient is listed twice");
    if (s->title == NULL || !pf_wire_text_ok(s->title, 1, PF_WIRE_MAX_TITLE, false))
        return s_fail(err, PF_WIRE_E_MALFORMED,
                      "title must be 1-%d bytes of UTF-8 text without control characters",
                      PF_WIRE_MAX_TITLE);
    if (s->subject == NULL || !pf_wire_text_ok(s->subject, 1, PF_WIRE_MAX_SUBJECT, false))
        return s_fail(err, PF_WIRE_E_MALFORMED,
                      "subject must be 1-%d bytes of UTF-8 text without control characters",
                      PF_WIRE_MAX_SUBJECT);
    if (s->body == NULL)
        return s_fail(err, PF_WIRE_E_MALFORMED, "body missing");
    if (strlen(s->body) > lim->max_body)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "body larger than %zu bytes", lim->max_body);
    if (!pf_wire_text_ok(s->body, 0, lim->max_body, true))
        return s_fail(err, PF_WIRE_E_MALFORMED,
                      "body must be UTF-8 text without control characters other than line breaks "
                      "and tabs");
    if (s->reference != NULL && !pf_wire_text_ok(s->reference, 0, PF_WIRE_MAX_REFERENCE, false))
        return s_fail(err, PF_WIRE_E_MALFORMED,
                      "reference must be at most %d bytes of UTF-8 text without control characters",
                      PF_WIRE_MAX_REFERENCE);
    if (s->level < 1 || s->level > 3)
        return s_fail(err, PF_WIRE_E_MALFORMED, "unknown required_level");
    if (s->attachment_count > lim->max_attachments)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "more than %zu attachments", lim->max_attachments);
    for (size_t i = 0; i < s->attachment_count; i++) {
        const pf_wire_attachment_t *a = &s->attachments[i];
        if (a->name == NULL || !s_file_name_ok(a->name))
            return s_fail(err, PF_WIRE_E_MALFORMED,
                          "attachment %zu: name must be 1-%d bytes of text without control "
                          "characters or slashes",
                          i + 1, PF_WIRE_MAX_NAME);
        if (a->media_type != NULL && !s_media_type_ok(a->media_type))
            return s_fail(err, PF_WIRE_E_MALFORMED,
                          "attachment %zu: media_type must look like \"type/subtype\"", i + 1);
        if (a->size > lim->max_attachment)
            return s_fail(err, PF_WIRE_E_TOO_LARGE, "attachment %zu is larger than %zu bytes",
                          i + 1, lim->max_attachment);
        if (a->size > 0 && a->data == NULL)
            return s_fail(err, PF_WIRE_E_MALFORMED, "attachment %zu has no data", i + 1);
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------ */

static bool s_frame_is(const pf_wire_frame_t *f, const char *s)
{
    size_t n = strlen(s);
    return f->size == n && memcmp(f->data, s, n) == 0;
}

/* A string member: NULL when absent or not a string (the caller decides). */
static const char *s_json_str(json_t *o, const char *key, bool *present_r)
{
    json_t *v = json_object_get(o, key);
    if (present_r)
        *present_r = v != NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Refuses members other than the allowed ones: a misspelt field must not
 * be silently ignored (e.g. "read_reciept": true). */
static bool s_only_keys(json_t *o, const char *const *allowed, const char **bad_r)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            *bad_r = key;
            return false;
        }
    }
    return true;
}

/* A key from untrusted JSON, made safe for a reason text. */
static const char *s_safe_key(const char *key, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; key[i] && j + 1 < outlen && i < 32; i++) {
        unsigned char c = (unsigned char)key[i];
        out[j++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[j] = '\0';
    return out;
}

/* ---- the SEND header ----------------------------------------------------- *
 * Read in place by the scanner (util/jsonscan.h: it accepts the documents
 * json_loadb accepted, which fuzz_jsonscan checks), first all of it, then
 * checked in the order the checks always had: so a header is refused for
 * the same reason as before, whatever else is wrong with it. */

enum {
    S_H_REQUEST_ID,
    S_H_RECIPIENTS,
    S_H_TITLE,
    S_H_SUBJECT,
    S_H_BODY,
    S_H_REFERENCE,
    S_H_READ_RECEIPT,
    S_H_REQUIRED_LEVEL,
    S_H_ATTACHMENTS,
    S_H_N
};
static const char *const s_header_keys[S_H_N] = {
    "request_id", "recipients",   "title",          "subject",     "body",
    "reference",  "read_receipt", "required_level", "attachments"};
enum { S_A_NAME, S_A_MEDIA_TYPE, S_A_SIZE, S_A_N };
static const char *const s_attachment_keys[S_A_N] = {"name", "media_type", "size"};

/* A member as read: absent, a string, true, false, or another JSON value
 * (read to its end, but of a type that member never has). */
typedef enum { S_ABSENT, S_STRING, S_TRUE, S_FALSE, S_OTHER } s_kind_t;

typedef struct {
    s_kind_t kind;
    const char *str;
} s_member_t;

typedef struct {
    bool object;         /* else another JSON value */
    const char *unknown; /* its first member that is not allowed */
    s_member_t name, media_type;
    bool size_present, size_integer;
    long long size;
} s_att_t;

typedef struct {
    bool array; /* the whole header is an array: valid JSON, not an object */
    s_member_t m[S_H_N];
    const char *unknown;
    bool recipients_array, attachments_array;
    const char **rcpt; /* NULL for an element that is not a string */
    size_t nrcpt;      /* elements listed; only the first keep_rcpt are kept */
    s_att_t *att;
    size_t natt; /* elements listed; only the first keep_att are kept */
    /* what may be kept: more elements are counted and skipped, so a long
     * array costs its bytes in the header, not 8 or 64 bytes per element
     * more; the checks refuse the header before they would look at them */
    size_t keep_rcpt, keep_att;
} s_header_t;

static int s_member_read(pf_jscan_t *js, s_member_t *mem)
{
    size_t len;
    pf_jscan_kind_t k;
    switch (pf_jscan_peek(js)) {
    case PF_JSCAN_STRING:
        mem->kind = S_STRING;
        return pf_jscan_string(js, &mem->str, &len);
    case PF_JSCAN_TRUE:
    case PF_JSCAN_FALSE:
        if (pf_jscan_literal(js, &k) != 0)
            return -1;
        mem->kind = k == PF_JSCAN_TRUE ? S_TRUE : S_FALSE;
        return 0;
    default: mem->kind = S_OTHER; return pf_jscan_skip(js);
    }
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
        int k = pf_jscan_key_index(key, s_attachment_keys, S_A_N);
        if (k < 0) {
            if (a->unknown == NULL)
                a->unknown = key;
            r = pf_jscan_skip(js);
        } else if (pf_jscan_twice(&seen, k)) {
            return -1;
        } else if (k == S_A_SIZE) {
            a->size_present = true;
            const char *text;
            size_t len;
            r = pf_jscan_peek(js) == PF_JSCAN_NUMBER
                    ? pf_jscan_number(js, &text, &len, &a->size_integer, &a->size)
                    : pf_jscan_skip(js);
        } else {
            r = s_member_read(js, k == S_A_NAME ? &a->name : &a->media_type);
        }
        if (r != 0)
            return -1;
    }
    return r;
}

/* Reads the whole header into h; 0, or -1 when it is not valid JSON (or
 * is an array: h->array). */
static int s_header_read(pf_jscan_t *js, s_header_t *h)
{
    pf_jscan_kind_t top = pf_jscan_peek(js);
    if (top == PF_JSCAN_ARRAY) {
        if (pf_jscan_skip(js) == 0 && pf_jscan_done(js) == 0)
            h->array = true;
        return -1;
    }
    if (top != PF_JSCAN_OBJECT || pf_jscan_object(js) != 0)
        return -1;
    unsigned seen = 0;
    const char *key;
    int r;
    size_t cap = 0;
    while ((r = pf_jscan_member(js, &key)) == 1) {
        int k = pf_jscan_key_index(key, s_header_keys, S_H_N);
        if (k < 0) {
            if (h->unknown == NULL)
                h->unknown = key;
            r = pf_jscan_skip(js);
        } else if (pf_jscan_twice(&seen, k)) {
            return -1;
        } else if (k == S_H_RECIPIENTS && pf_jscan_peek(js) == PF_JSCAN_ARRAY) {
            h->recipients_array = true;
            r = pf_jscan_array(js);
            while (r == 0 && (r = pf_jscan_element(js)) == 1) {
                if (h->nrcpt >= h->keep_rcpt) {
                    h->nrcpt++;
                    r = pf_jscan_skip(js);
                    continue;
                }
                if (h->nrcpt == cap) {
                    cap = cap ? 2 * cap : 4;
                    h->rcpt = xrealloc(h->rcpt, cap * sizeof(*h->rcpt));
                }
                const char **slot = &h->rcpt[h->nrcpt++];
                size_t len;
                *slot = NULL;
                r = pf_jscan_peek(js) == PF_JSCAN_STRING ? pf_jscan_string(js, slot, &len)
                                                         : pf_jscan_skip(js);
            }
        } else if (k == S_H_ATTACHMENTS && pf_jscan_peek(js) == PF_JSCAN_ARRAY) {
            h->attachments_array = true;
            size_t acap = 0;
            r = pf_jscan_array(js);
            while (r == 0 && (r = pf_jscan_element(js)) == 1) {
                if (h->natt >= h->keep_att) {
                    h->natt++;
                    r = pf_jscan_skip(js);
                    continue;
                }
                if (h->natt == acap) {
                    acap = acap ? 2 * acap : 2;
                    h->att = xrealloc(h->att, acap * sizeof(*h->att));
                }
                s_att_t *a = &h->att[h->natt++];
                memset(a, 0, sizeof(*a));
                r = s_attachment_read(js, a);
            }
        } else {
            r = s_member_read(js, &h->m[k]);
        }
        if (r != 0)
            return -1;
    }
    if (r != 0)
        return -1;
    return pf_jscan_done(js);
}

static const char *s_str(const s_member_t *m)
{
    return m->kind == S_STRING ? m->str : NULL;
}

static int s_header_check(const s_header_t *h, const pf_wire_frame_t *frames, size_t natt,
                          const pf_wire_limits_t *lim, pf_wire_send_t *s, pf_wire_error_t *err)
{
    char kbuf[40];
    if (h->unknown != NULL)
        return s_fail(err, PF_WIRE_E_MALFORMED, "unknown header field \"%s\"",
                      s_safe_key(h->unknown, kbuf, sizeof(kbuf)));
    s->request_id = s_str(&h->m[S_H_REQUEST_ID]);
    if (s->request_id != NULL && s_request_id_valid(s->request_id, false))
        snprintf(err->request_id, sizeof(err->request_id), "%s", s->request_id);

    if (!h->recipients_array)
        return s_fail(err, PF_WIRE_E_MALFORMED, "recipients must be an array of mailbox ids");
    size_t nr = h->nrcpt;
    if (nr > lim->max_recipients || nr > PF_WIRE_ABS_MAX_RECIPIENTS)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "more than %zu recipients", lim->max_recipients);
    s->recipient_count = nr; /* s->recipients is h->rcpt (set by the caller) */
    for (size_t i = 0; i < nr; i++)
        if (h->rcpt[i] == NULL)
            return s_fail(err, PF_WIRE_E_MALFORMED, "recipient %zu is not a string", i + 1);

    s->title = s_str(&h->m[S_H_TITLE]);
    s->subject = s_str(&h->m[S_H_SUBJECT]);
    s->body = s_str(&h->m[S_H_BODY]);
    const s_member_t *ref = &h->m[S_H_REFERENCE];
    if (ref->kind != S_ABSENT && ref->kind != S_STRING)
        return s_fail(err, PF_WIRE_E_MALFORMED, "reference must be a string");
    s->reference = ref->kind == S_STRING ? ref->str : "";
    s_kind_t rr = h->m[S_H_READ_RECEIPT].kind;
    if (rr != S_ABSENT && rr != S_TRUE && rr != S_FALSE)
        return s_fail(err, PF_WIRE_E_MALFORMED, "read_receipt must be true or false");
    s->read_receipt = rr == S_TRUE;
    const s_member_t *lv = &h->m[S_H_REQUIRED_LEVEL];
    if (lv->kind != S_ABSENT && lv->kind != S_STRING)
        return s_fail(err, PF_WIRE_E_MALFORMED, "required_level must be a string");
    s->level = lv->kind == S_STRING ? pf_wire_level_parse(lv->str) : 1;
    if (s->level < 0)
        return s_fail(err, PF_WIRE_E_MALFORMED,
                      "required_level must be \"normal\", \"substantiell\" or \"hoch\"");

    if (h->m[S_H_ATTACHMENTS].kind != S_ABSENT && !h->attachments_array)
        return s_fail(err, PF_WIRE_E_MALFORMED, "attachments must be an array");
    size_t listed = h->attachments_array ? h->natt : 0;
    if (listed != natt)
        return s_fail(err, PF_WIRE_E_MALFORMED,
                      "header lists %zu attachments but %zu attachment frames follow", listed,
                      natt);
    s->attachments = xcalloc(natt ? natt : 1, sizeof(*s->attachments));
    s->attachment_count = natt;
    for (size_t i = 0; i < natt; i++) {
        const s_att_t *a = &h->att[i];
        pf_wire_attachment_t *wa = &s->attachments[i];
        if (!a->object)
            return s_fail(err, PF_WIRE_E_MALFORMED, "attachment %zu is not an object", i + 1);
        if (a->unknown != NULL)
            return s_fail(err, PF_WIRE_E_MALFORMED, "attachment %zu: unknown field \"%s\"", i + 1,
                          s_safe_key(a->unknown, kbuf, sizeof(kbuf)));
        wa->name = s_str(&a->name);
        wa->media_type = s_str(&a->media_type);
        if (wa->media_type == NULL)
            return s_fail(err, PF_WIRE_E_MALFORMED, "attachment %zu: media_type missing", i + 1);
        if (!a->size_present || !a->size_integer || a->size < 0 ||
            (uint64_t)a->size != (uint64_t)frames[3 + i].size)
            return s_fail(err, PF_WIRE_E_MALFORMED,
                          "attachment %zu: size does not match its frame (%zu bytes)", i + 1,
                          frames[3 + i].size);
        wa->data = frames[3 + i].data;
        wa->size = frames[3 + i].size;
    }
    return s_check_send(s, lim, err);
}

static int s_decode_send(const pf_wire_frame_t *frames, size_t count, const pf_wire_limits_t *lim,
                         pf_wire_msg_t *m, pf_wire_error_t *err)
{
    if (count < 3)
        return s_fail(err, PF_WIRE_E_MALFORMED, "SEND needs a header frame");
    size_t natt = count - 3;
    if (natt > lim->max_attachments || natt > PF_WIRE_ABS_MAX_ATTACHMENTS)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "more than %zu attachments", lim->max_attachments);
    const pf_wire_frame_t *hf = &frames[2];
    if (hf->size == 0)
        return s_fail(err, PF_WIRE_E_MALFORMED, "empty header frame");
    if (hf->size > lim->max_header)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "header larger than %zu bytes", lim->max_header);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (i >= 3 && frames[i].size > lim->max_attachment)
            return s_fail(err, PF_WIRE_E_TOO_LARGE, "attachment %zu is larger than %zu bytes",
                          i - 2, lim->max_attachment);
        total += frames[i].size; /* each term is bounded above, no overflow */
    }
    if (total > lim->max_total)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "submission larger than %zu bytes", lim->max_total);
    if (!pf_wire_utf8_valid(hf->data, hf->size))
        return s_fail(err, PF_WIRE_E_MALFORMED, "header is not valid UTF-8");

    /* the arena of the decoded strings, owned by the message */
    char *arena = xmalloc(hf->size + 1);
    m->text_[0] = arena;
    m->wipe_len_ = hf->size + 1;
    s_header_t h;
    memset(&h, 0, sizeof(h));
    /* one past the limit, so that "too many" is still told apart; as many
     * attachments as there are attachment frames (a header listing more
     * is refused whatever they say) */
    h.keep_rcpt = (lim->max_recipients < PF_WIRE_ABS_MAX_RECIPIENTS ? lim->max_recipients
                                                                      : PF_WIRE_ABS_MAX_RECIPIENTS) +
                  1;
    h.keep_att = natt;
    pf_jscan_t js;
    pf_jscan_init(&js, hf->data, hf->size, arena);
    int rc = s_header_read(&js, &h);
    m->send.recipients = h.rcpt; /* freed with the message, whatever happens */
    if (rc == 0)
        rc = s_header_check(&h, frames, natt, lim, &m->send, err);
    else if (h.array)
        rc = s_fail(err, PF_WIRE_E_MALFORMED, "header is not a JSON object");
    else
        rc = s_fail(err, PF_WIRE_E_MALFORMED, "header is not valid JSON (at byte %zu: %s)",
                    (size_t)(js.p - (const char *)hf->data),
                    js.error != NULL ? js.error : "duplicate member");
    free(h.att);
    return rc;
}

static int s_decode_ack(const pf_wire_frame_t *frames, size_t count, const pf_wire_limits_t *lim,
                        pf_wire_msg_t *m, pf_wire_error_t *err)
{
    if (count != 3)
        return s_fail(err, PF_WIRE_E_MALFORMED, "ACK has %zu frames, expected 3", count);
    size_t max = 256 + lim->max_recipients * (PF_WIRE_MAX_RECIPIENT_ID + 96);
    if (frames[2].size > max)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "ACK frame larger than %zu bytes", max);
    if (!pf_wire_utf8_valid(frames[2].data, frames[2].size))
        return s_fail(err, PF_WIRE_E_MALFORMED, "ACK is not valid UTF-8");
    json_error_t jerr;
    json_t *j = json_loadb(frames[2].data, frames[2].size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return s_fail(err, PF_WIRE_E_MALFORMED, "ACK is not valid JSON");
    m->json_ = j;
    static const char *const keys[] = {"request_id", "copies", NULL};
    static const char *const ckeys[] = {"recipient", "message_id", NULL};
    const char *bad;
    json_t *copies = json_object_get(j, "copies");
    m->request_id = s_json_str(j, "request_id", NULL);
    if (!json_is_object(j) || !s_only_keys(j, keys, &bad) || m->request_id == NULL ||
        !s_request_id_valid(m->request_id, false) || !json_is_array(copies) ||
        json_array_size(copies) < 1 || json_array_size(copies) > lim->max_recipients)
        return s_fail(err, PF_WIRE_E_MALFORMED, "ACK lacks request_id or copies");
    size_t n = json_array_size(copies);
    m->copies = xcalloc(n, sizeof(*m->copies));
    m->copy_count = n;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(copies, i);
        if (!json_is_object(c) || !s_only_keys(c, ckeys, &bad))
            return s_fail(err, PF_WIRE_E_MALFORMED, "ACK copy %zu is not valid", i + 1);
        m->copies[i].recipient = s_json_str(c, "recipient", NULL);
        m->copies[i].message_id = s_json_str(c, "message_id", NULL);
        if (m->copies[i].recipient == NULL || !pf_wire_mailbox_id_valid(m->copies[i].recipient) ||
            m->copies[i].message_id == NULL || pf_uuid_valid(m->copies[i].message_id) != 0)
            return s_fail(err, PF_WIRE_E_MALFORMED, "ACK copy %zu is not valid", i + 1);
    }
    return 0;
}

static int s_decode_nack(const pf_wire_frame_t *frames, size_t count, pf_wire_msg_t *m,
                         pf_wire_error_t *err)
{
    if (count != 3)
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK has %zu frames, expected 3", count);
    if (frames[2].size > PF_WIRE_MAX_SMALL_FRAME)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "NACK frame too large");
    if (!pf_wire_utf8_valid(frames[2].data, frames[2].size))
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK is not valid UTF-8");
    json_error_t jerr;
    json_t *j = json_loadb(frames[2].data, frames[2].size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK is not valid JSON");
    m->json_ = j;
    static const char *const keys[] = {"request_id", "code", "reason", NULL};
    const char *bad;
    if (!json_is_object(j) || !s_only_keys(j, keys, &bad))
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK is not a valid object");
    m->request_id = s_json_str(j, "request_id", NULL);
    m->code = s_json_str(j, "code", NULL);
    m->reason = s_json_str(j, "reason", NULL);
    if (m->request_id == NULL || !s_request_id_valid(m->request_id, true))
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK request_id is not valid");
    bool code_ok = m->code != NULL && strlen(m->code) >= 1 && strlen(m->code) <= PF_WIRE_MAX_CODE;
    for (const char *p = code_ok ? m->code : ""; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
            code_ok = false;
    if (!code_ok)
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK code is not valid");
    if (m->reason == NULL || !pf_wire_text_ok(m->reason, 0, PF_WIRE_MAX_REASON, false))
        return s_fail(err, PF_WIRE_E_MALFORMED, "NACK reason is not valid");
    return 0;
}

/* A UUID text frame copied into dst (37 bytes). */
static bool s_uuid_frame(const pf_wire_frame_t *f, char *dst)
{
    if (f->size != PF_UUID_STRLEN)
        return false;
    memcpy(dst, f->data, PF_UUID_STRLEN);
    dst[PF_UUID_STRLEN] = '\0';
    return pf_uuid_valid(dst) == 0;
}

static int s_decode_receipt(const pf_wire_frame_t *frames, size_t count, pf_wire_msg_t *m,
                            pf_wire_error_t *err)
{
    if (count != 4)
        return s_fail(err, PF_WIRE_E_MALFORMED, "RECEIPT has %zu frames, expected 4", count);
    m->text_[0] = xmalloc(PF_UUID_STRLEN + 1);
    if (!s_uuid_frame(&frames[2], m->text_[0]))
        return s_fail(err, PF_WIRE_E_MALFORMED, "RECEIPT jti is not a UUID");
    const pf_wire_frame_t *t = &frames[3];
    if (t->size < 5 || t->size > PF_WIRE_MAX_TOKEN)
        return s_fail(err, PF_WIRE_E_MALFORMED, "RECEIPT token has a bad length");
    /* a compact JWS: three base64url parts */
    const unsigned char *p = t->data;
    int dots = 0;
    for (size_t i = 0; i < t->size; i++) {
        unsigned char c = p[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            return s_fail(err, PF_WIRE_E_MALFORMED, "RECEIPT token is not a compact JWS");
    }
    if (dots != 2)
        return s_fail(err, PF_WIRE_E_MALFORMED, "RECEIPT token is not a compact JWS");
    m->text_[1] = xstrndup(t->data, t->size);
    m->jti = m->text_[0];
    m->token = m->text_[1];
    return 0;
}

static int s_decode_rack(const pf_wire_frame_t *frames, size_t count, pf_wire_msg_t *m,
                         pf_wire_error_t *err)
{
    if (count < 3)
        return s_fail(err, PF_WIRE_E_MALFORMED, "RACK without a jti");
    size_t n = count - 2;
    if (n > PF_WIRE_MAX_RACK)
        return s_fail(err, PF_WIRE_E_TOO_LARGE, "more than %d jtis in one RACK", PF_WIRE_MAX_RACK);
    m->text_[0] = xmalloc(n * (PF_UUID_STRLEN + 1));
    m->jtis = xcalloc(n, sizeof(*m->jtis));
    for (size_t i = 0; i < n; i++) {
        char *dst = m->text_[0] + i * (PF_UUID_STRLEN + 1);
        if (!s_uuid_frame(&frames[2 + i], dst))
            return s_fail(err, PF_WIRE_E_MALFORMED, "RACK jti %zu is not a UUID", i + 1);
        m->jtis[i] = dst;
    }
    m->jti_count = n;
    return 0;
}

void pf_wire_msg_clear(pf_wire_msg_t *m)
{
    if (m == NULL)
        return;
    json_decref(m->json_);
    if (m->wipe_len_ > 0) {
        /* the notice's text, as the wiping allocator of jansson did for
         * its tree (util/jsonwipe.h) */
        volatile char *v = m->text_[0];
        for (size_t i = 0; i < m->wipe_len_; i++)
            v[i] = 0;
    }
    free(m->send.recipients);
    free(m->send.attachments);
    free(m->copies);
    free(m->jtis);
    free(m->text_[0]);
    free(m->text_[1]);
    memset(m, 0, sizeof(*m));
}

int pf_wire_decode(const pf_wire_frame_t *frames, size_t count, const pf_wire_limits_t *lim,
                   unsigned accept, pf_wire_msg_t *m_r, pf_wire_error_t *err_r)
{
    memset(m_r, 0, sizeof(*m_r));
    err_r->code = NULL;
    err_r->reason[0] = '\0';
    err_r->request_id[0] = '\0';
    int rc = -1;
    if (count < 2) {
        s_fail(err_r, PF_WIRE_E_MALFORMED, "message has %zu frames, at least 2 expected", count);
        goto fail;
    }
    if (!s_frame_is(&frames[0], PF_WIRE_SIGNATURE)) {
        /* "PF" and a few more bytes: a version we do not speak, so the peer
         * learns to downgrade instead of guessing at "malformed" */
        const char *p = frames[0].data;
        if (frames[0].size >= 3 && frames[0].size <= 8 && p[0] == 'P' && p[1] == 'F')
            s_fail(err_r, PF_WIRE_E_UNSUPPORTED_VERSION, "only protocol %s is supported",
                   PF_WIRE_SIGNATURE);
        else
            s_fail(err_r, PF_WIRE_E_MALFORMED, "first frame is not the protocol signature");
        goto fail;
    }
    pf_wire_cmd_t cmd = 0;
    for (int i = 1; i <= S_CMD_MAX && cmd == 0; i++)
        if (s_frame_is(&frames[1], s_cmd_names[i]))
            cmd = (pf_wire_cmd_t)i;
    if (cmd == 0 || !(accept & PF_WIRE_BIT(cmd))) {
        s_fail(err_r, PF_WIRE_E_UNSUPPORTED_COMMAND, "command not supported here");
        goto fail;
    }
    m_r->cmd = cmd;
    switch (cmd) {
    case PF_WIRE_SEND:
        rc = s_decode_send(frames, count, lim, m_r, err_r);
        break;
    case PF_WIRE_ACK:
        rc = s_decode_ack(frames, count, lim, m_r, err_r);
        break;
    case PF_WIRE_NACK:
        rc = s_decode_nack(frames, count, m_r, err_r);
        break;
    case PF_WIRE_RECEIPT:
        rc = s_decode_receipt(frames, count, m_r, err_r);
        break;
    case PF_WIRE_RACK:
        rc = s_decode_rack(frames, count, m_r, err_r);
        break;
    case PF_WIRE_HELLO:
    case PF_WIRE_PING:
    case PF_WIRE_PONG:
        rc = count == 2 ? 0
                        : s_fail(err_r, PF_WIRE_E_MALFORMED, "%s takes no frames after the command",
                                 s_cmd_names[cmd]);
        break;
    }
    if (rc == 0)
        return 0;
fail:
    pf_wire_msg_clear(m_r);
    return -1;
}

/* ---- encoding ------------------------------------------------------------ */

static void s_add(pf_wire_out_t *out, const void *data, size_t size, void *owned)
{
    out->frames = xrealloc(out->frames, (out->count + 1) * sizeof(*out->frames));
    out->frames[out->count++] = (pf_wire_frame_t){.data = data, .size = size, .owned = owned};
}

static void s_add_start(pf_wire_out_t *out, pf_wire_cmd_t cmd)
{
    s_add(out, PF_WIRE_SIGNATURE, strlen(PF_WIRE_SIGNATURE), NULL);
    s_add(out, s_cmd_names[cmd], strlen(s_cmd_names[cmd]), NULL);
}

static void s_add_json(pf_wire_out_t *out, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL)
        abort(); /* out of memory: all strings were checked to be valid UTF-8 */
    s_add(out, s, strlen(s), s);
}

void pf_wire_out_clear(pf_wire_out_t *out)
{
    for (size_t i = 0; i < out->count; i++)
        free(out->frames[i].owned);
    free(out->frames);
    out->frames = NULL;
    out->count = 0;
}

void pf_wire_out_own(pf_wire_out_t *out)
{
    for (size_t i = 0; i < out->count; i++) {
        pf_wire_frame_t *f = &out->frames[i];
        if (f->owned == NULL && f->size > 0) {
            f->owned = xmemdup(f->data, f->size);
            f->data = f->owned;
        }
    }
}

int pf_wire_encode_send(const pf_wire_send_t *s, const pf_wire_limits_t *lim, pf_wire_out_t *out,
                        pf_wire_error_t *err_r)
{
    err_r->code = NULL;
    err_r->reason[0] = '\0';
    err_r->request_id[0] = '\0';
    if (s_check_send(s, lim, err_r) != 0)
        return -1;
    snprintf(err_r->request_id, sizeof(err_r->request_id), "%s", s->request_id);
    /* written straight, not through a jansson tree and its dump: that was
     * 27% of a sending procedure's CPU for a 2 KiB body.  Every string
     * was checked above, so none fails the UTF-8 check here. */
    pf_buf_t h;
    pf_buf_init(&h);
    bool ok = true;
    pf_buf_puts(&h, "{\"request_id\":");
    ok = ok && pf_buf_json_str(&h, s->request_id) == 0;
    pf_buf_puts(&h, ",\"recipients\":[");
    for (size_t i = 0; i < s->recipient_count; i++) {
        if (i > 0)
            pf_buf_puts(&h, ",");
        ok = ok && pf_buf_json_str(&h, s->recipients[i]) == 0;
    }
    pf_buf_puts(&h, "],\"title\":");
    ok = ok && pf_buf_json_str(&h, s->title) == 0;
    pf_buf_puts(&h, ",\"subject\":");
    ok = ok && pf_buf_json_str(&h, s->subject) == 0;
    pf_buf_puts(&h, ",\"body\":");
    ok = ok && pf_buf_json_str(&h, s->body) == 0;
    pf_buf_puts(&h, ",\"reference\":");
    ok = ok && pf_buf_json_str(&h, s->reference ? s->reference : "") == 0;
    pf_buf_printf(&h, ",\"read_receipt\":%s,\"required_level\":\"%s\"",
                  s->read_receipt ? "true" : "false", pf_wire_level_name(s->level));
    if (s->attachment_count > 0) {
        pf_buf_puts(&h, ",\"attachments\":[");
        for (size_t i = 0; i < s->attachment_count; i++) {
            const pf_wire_attachment_t *a = &s->attachments[i];
            pf_buf_puts(&h, i > 0 ? ",{\"name\":" : "{\"name\":");
            ok = ok && pf_buf_json_str(&h, a->name) == 0;
            pf_buf_puts(&h, ",\"media_type\":");
            ok = ok && pf_buf_json_str(&h, a->media_type ? a->media_type
                                                         : "application/octet-stream") == 0;
            pf_buf_printf(&h, ",\"size\":%zu}", a->size);
        }
        pf_buf_puts(&h, "]");
    }
    pf_buf_puts(&h, "}");
    if (!ok) {
        pf_buf_free(&h, 0);
        return s_fail(err_r, PF_WIRE_E_MALFORMED, "a text is not valid UTF-8");
    }
    size_t hlen = 0;
    char *hdata = pf_buf_steal(&h, &hlen);
    pf_wire_out_t tmp = {0};
    s_add_start(&tmp, PF_WIRE_SEND);
    s_add(&tmp, hdata, hlen, hdata);
    size_t total = tmp.frames[0].size + tmp.frames[1].size + tmp.frames[2].size;
    if (tmp.frames[2].size > lim->max_header) {
        pf_wire_out_clear(&tmp);
        return s_fail(err_r, PF_WIRE_E_TOO_LARGE, "header larger than %zu bytes", lim->max_header);
    }
    for (size_t i = 0; i < s->attachment_count; i++) {
        s_add(&tmp, s->attachments[i].data, s->attachments[i].size, NULL);
        total += s->attachments[i].size;
    }
    if (total > lim->max_total) {
        pf_wire_out_clear(&tmp);
        return s_fail(err_r, PF_WIRE_E_TOO_LARGE, "submission larger than %zu bytes",
                      lim->max_total);
    }
    for (size_t i = 0; i < tmp.count; i++)
        s_add(out, tmp.frames[i].data, tmp.frames[i].size, tmp.frames[i].owned);
    free(tmp.frames);
    return 0;
}

char *pf_wire_ack_json(const char *request_id, const pf_wire_copy_t *copies, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "recipient", copies[i].recipient,
                                             "message_id", copies[i].message_id));
    json_t *j = json_pack("{s:s, s:o}", "request_id", request_id, "copies", arr);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (s == NULL)
        abort(); /* inputs come from a decoded SEND: valid UTF-8 */
    return s;
}

void pf_wire_encode_ack_json(const char *ack_json, pf_wire_out_t *out)
{
    s_add_start(out, PF_WIRE_ACK);
    char *copy = xstrdup(ack_json);
    s_add(out, copy, strlen(copy), copy);
}

void pf_wire_encode_nack(const char *request_id, const char *code, const char *reason,
                         pf_wire_out_t *out)
{
    /* reasons may quote configuration or peer data: keep what is valid
     * UTF-8 text, so the NACK itself always decodes */
    char r[PF_WIRE_MAX_REASON + 1];
    snprintf(r, sizeof(r), "%s", reason ? reason : "");
    for (char *p = r; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    if (!pf_wire_utf8_valid(r, strlen(r)))
        snprintf(r, sizeof(r), "%s", code);
    s_add_start(out, PF_WIRE_NACK);
    const char *rid = request_id && s_request_id_valid(request_id, true) ? request_id : "";
    s_add_json(out, json_pack("{s:s, s:s, s:s}", "request_id", rid, "code", code, "reason", r));
}

void pf_wire_encode_simple(pf_wire_cmd_t cmd, pf_wire_out_t *out)
{
    s_add_start(out, cmd);
}

void pf_wire_encode_receipt(const char *jti, const char *token, pf_wire_out_t *out)
{
    s_add_start(out, PF_WIRE_RECEIPT);
    char *j = xstrdup(jti), *t = xstrdup(token);
    s_add(out, j, strlen(j), j);
    s_add(out, t, strlen(t), t);
}

void pf_wire_encode_rack(const char *const *jtis, size_t n, pf_wire_out_t *out)
{
    s_add_start(out, PF_WIRE_RACK);
    for (size_t i = 0; i < n; i++) {
        char *j = xstrdup(jtis[i]);
        s_add(out, j, strlen(j), j);
    }
}
