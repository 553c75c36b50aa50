/* JSON string bodies written by hand (see jsonstr.h).
 *
 * Callers: proto/notice.c (the notice document), reader/messages.c (the
 * listing), reader/message.c (an opened notice).  The escapes are jansson's: '"', '\\', the control
 * characters (short forms where JSON has them), UTF-8 as it is; so what
 * we write reads back the same through any JSON parser, and the strictness
 * of the UTF-8 check is the one jansson applied before. */
#include "util/jsonstr.h"

#include <string.h>

size_t pf_utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t k;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) <= k)
        return 0;
    /* byte by byte: in a NUL-terminated string the NUL stops it */
    for (size_t i = 1; i <= k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k + 1;
}

long pf_json_escaped_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
                c == '\t')
                n += 2;
            else if (c < 0x20)
                n += 6;
            else
                n += 1;
            p++;
            continue;
        }
        /* a sequence is at most 4 bytes; it is read only up to its first
         * byte that is not a continuation, which the NUL is not */
        size_t k = pf_utf8_seq_len(p, p + 4);
        if (k == 0)
            return -1;
        n += (long)k;
        p += k;
    }
    return n;
}

char *pf_json_put_str(char *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            memcpy(out, "u00", 3);
            out[3] = hex[c >> 4];
            out[4] = hex[c & 15];
            out += 5;
        }
    }
    *out++ = '"';
    return out;
}

int pf_buf_json_str(pf_buf_t *b, const char *s)
{
    long n = pf_json_escaped_len(s);
    if (n < 0)
        return -1;
    char *out = pf_buf_space(b, (size_t)n + 2);
    pf_buf_grew(b, (size_t)(pf_json_put_str(out, s) - out));
    return 0;
}
