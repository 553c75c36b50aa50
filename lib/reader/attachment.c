/* GET /v1/messages/{id}/attachments/{n}: one attachment's bytes.
 *
 * Callers: server.c after the token was verified.
 * Opening goes through pf_reader_open like the notice itself, so it checks
 * the level and counts as a retrieval (a citizen who downloads the PDF has
 * retrieved the notice).  n is the 0-based index of the "attachments" list
 * of GET /v1/messages/{id}.
 * Untrusted input: the sender chose the file name and media type, and both
 * end up in response headers, so both are reduced to safe forms here
 * (a hostile name must not inject headers or a path, a hostile media type
 * must not turn a download into an HTML page of our origin: the download is
 * also sent with "attachment" disposition and nosniff). */
#include "reader/reader_private.h"

#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (len > 100)
        len = 100;
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
    /* RFC 8187 ext-value: attr-char stays, every other byte %XX (a name cut
     * in the middle of a UTF-8 sequence still only produces escapes) */
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

void pf_reader_attachment(const pf_request_t *rq, pf_reply_t *rep)
{
    pf_mailbox_message_t m;
    pf_notice_t n;
    char *read_at = NULL;
    if (pf_reader_open(rq, true, &m, &n, &read_at, rep) != 0)
        return;
    int i = rq->route->attachment;
    if (i < 0 || (size_t)i >= n.attachment_count) {
        pf_reply_error(rep, 404, "not_found", "no such attachment");
    } else {
        pf_attachment_t *a = &n.attachments[i];
        pf_reply_clear(rep);
        rep->status = 200;
        /* the media type is borrowed from the notice, which is cleared
         * below: the reply keeps its own copy */
        snprintf(rep->content_type_buf, sizeof(rep->content_type_buf), "%s",
                 pf_reader_media_type(a->media_type));
        rep->content_type = rep->content_type_buf;
        rep->disposition = pf_reader_disposition(a->name);
        /* hand the plaintext bytes to the reply, which wipes them once sent */
        rep->body = (char *)a->data;
        rep->len = a->size;
        rep->wipe = true;
        a->data = NULL;
        a->size = 0;
        if (rep->body == NULL)
            rep->body = xstrdup("");
    }
    free(read_at);
    pf_notice_clear(&n);
    pf_mailbox_message_clear(&m);
}
