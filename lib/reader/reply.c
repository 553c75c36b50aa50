/* Building replies (see reader_private.h): the JSON error body every
 * failure uses, and the release of reply buffers.
 *
 * Callers: every handler and server.c.
 * Also the reduction of sender-chosen attachment names and media types to
 * forms safe in response headers (untrusted: the sender wrote them).
 * Invariant: error bodies contain only our own static texts, so nothing a
 * client sent (least of all a token) is ever echoed back. */
#include "reader/reader_private.h"

#include "util/log.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pf_reply_json(pf_reply_t *rep, int status, char *json, bool wipe)
{
    pf_reply_clear(rep);
    rep->status = status;
    rep->content_type = "application/json";
    rep->body = json;
    rep->len = strlen(json);
    rep->wipe = wipe;
}

void pf_reply_error(pf_reply_t *rep, int status, const char *code, const char *message)
{
    json_t *o = json_pack("{s:s, s:s}", "error", code, "message", message);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) /* jansson out of memory: fail like xmalloc */
        abort();
    pf_reply_json(rep, status, text, false);
}

void pf_reply_unavailable(pf_reply_t *rep, const char *what, const char *error)
{
    char esc[512];
    pf_warn("event=db_error op=%s error=\"%s\"", what,
            pf_log_escape(error ? error : "unknown", esc, sizeof(esc)));
    pf_reply_error(rep, 503, "unavailable", "temporary failure, retry later");
    rep->retry_after = 5;
}

void pf_reply_no_message(pf_reply_t *rep)
{
    pf_reply_error(rep, 404, "not_found", "no such message");
}

void pf_reply_clear(pf_reply_t *rep)
{
    if (!rep->body_static && rep->body != NULL) {
        if (rep->wipe)
            pf_wipe(rep->body, rep->len);
        free(rep->body);
    }
    free(rep->disposition);
    memset(rep, 0, sizeof(*rep));
}

const char *pf_reader_level_name(int level)
{
    static const char *const names[] = {"none", "normal", "substantiell", "hoch"};
    return level >= 0 && level <= 3 ? names[level] : "unknown";
}

/* RFC 6838 restricted-name characters. */
static bool s_mt_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '!' || c == '#' || c == '$' || c == '&' || c == '-' || c == '^' || c == '_' ||
           c == '.' || c == '+';
}

const char *pf_reader_media_type(const char *s)
{
    static const char *const fallback = "application/octet-stream";
    if (s == NULL)
        return fallback;
    size_t len = strlen(s), slash = 0, slashes = 0;
    if (len == 0 || len > 127)
        return fallback;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/') {
            slash = i;
            slashes++;
        } else if (!s_mt_char(s[i])) {
            return fallback;
        }
    }
    if (slashes != 1 || slash == 0 || slash == len - 1)
        return fallback;
    return s;
}

char *pf_reader_disposition(const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    /* cap the header: names are for humans, 100 bytes of them suffice */
    size_t len = name ? strnlen(name, 1000) : 0;
    if (len > 100) {
        len = 100;
        /* cut at the start of a code point (at most three continuation
         * bytes back): the name is clean UTF-8 (pf_reader_clean_text), and
         * so stays the filename* a browser decodes */
        for (int k = 0; k < 3 && ((unsigned char)name[len] & 0xc0) == 0x80; k++)
            len--;
    }
    char ascii[101];
    size_t a = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        /* no leading dot: no hidden files, no ".." */
        ascii[a] = ok && !(a == 0 && c == '.') ? c : '_';
        a++;
    }
    ascii[a] = '\0';
    if (a == 0)
        snprintf(ascii, sizeof(ascii), "attachment");
    /* RFC 8187 ext-value: attr-char stays, every other byte %XX (a name
     * that is not UTF-8 still only produces escapes) */
    char ext[301];
    size_t e = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool attr = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    strchr("!#$&+-.^_`|~", c) != NULL;
        if (c != 0 && attr) {
            ext[e++] = (char)c;
        } else {
            ext[e++] = '%';
            ext[e++] = hex[c >> 4];
            ext[e++] = hex[c & 15];
        }
    }
    ext[e] = '\0';
    if (e == 0)
        return xasprintf("attachment; filename=\"%s\"", ascii);
    return xasprintf("attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, ext);
}
