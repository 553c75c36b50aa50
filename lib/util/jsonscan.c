/* The in-place JSON scanner (see jsonscan.h).
 *
 * Callers: proto/wire.c (the SEND header), proto/notice.c (the notice
 * document the reader opens).
 * Untrusted input: all of it.  The scanner never reads past end, writes
 * only within the arena (decoded strings are never longer than their
 * quoted form), and keeps no state but the two bits per open level. */
#include "util/jsonscan.h"
#include "util/jsonstr.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int s_fail(pf_jscan_t *s, const char *why)
{
    if (s->error == NULL)
        s->error = why;
    return -1;
}

static bool s_bit(const unsigned char *bits, size_t i)
{
    return (bits[i / 8] >> (i % 8)) & 1;
}

static void s_set_bit(unsigned char *bits, size_t i, bool on)
{
    if (on)
        bits[i / 8] = (unsigned char)(bits[i / 8] | (1u << (i % 8)));
    else
        bits[i / 8] = (unsigned char)(bits[i / 8] & ~(1u << (i % 8)));
}

static void s_ws(pf_jscan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

void pf_jscan_init(pf_jscan_t *s, const char *data, size_t len, char *arena)
{
    memset(s, 0, sizeof(*s));
    s->p = data;
    s->end = data + len;
    s->arena = arena;
}

pf_jscan_kind_t pf_jscan_peek(pf_jscan_t *s)
{
    if (s->error != NULL)
        return PF_JSCAN_ERROR;
    s_ws(s);
    if (s->p == s->end)
        return PF_JSCAN_END;
    switch (*s->p) {
    case '{': return PF_JSCAN_OBJECT;
    case '[': return PF_JSCAN_ARRAY;
    case '"': return PF_JSCAN_STRING;
    case 't': return PF_JSCAN_TRUE;
    case 'f': return PF_JSCAN_FALSE;
    case 'n': return PF_JSCAN_NULL;
    case '-': return PF_JSCAN_NUMBER;
    default:
        if (*s->p >= '0' && *s->p <= '9')
            return PF_JSCAN_NUMBER;
        s_fail(s, "invalid token");
        return PF_JSCAN_ERROR;
    }
}

static int s_open(pf_jscan_t *s, char c, bool object)
{
    if (s->error != NULL)
        return -1;
    s_ws(s);
    if (s->p == s->end || *s->p != c)
        return s_fail(s, object ? "'{' expected" : "'[' expected");
    if (s->depth >= PF_JSCAN_MAX_DEPTH)
        return s_fail(s, "nested too deeply");
    s->p++;
    s->depth++;
    s_set_bit(s->object, s->depth, object);
    s_set_bit(s->started, s->depth, false);
    return 0;
}

int pf_jscan_object(pf_jscan_t *s)
{
    return s_open(s, '{', true);
}

int pf_jscan_array(pf_jscan_t *s)
{
    return s_open(s, '[', false);
}

/* Before a member or element: the closing bracket (0), or the comma that
 * separates it from the previous one (1, consumed), or at the first one
 * nothing (1). */
static int s_next(pf_jscan_t *s, bool object)
{
    if (s->error != NULL)
        return -1;
    if (s->depth == 0 || s_bit(s->object, s->depth) != object)
        return s_fail(s, "not inside an object or array");
    s_ws(s);
    if (s->p == s->end)
        return s_fail(s, "unexpected end of input");
    char close = object ? '}' : ']';
    if (*s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    if (s_bit(s->started, s->depth)) {
        if (*s->p != ',')
            return s_fail(s, object ? "',' or '}' expected" : "',' or ']' expected");
        s->p++;
    }
    s_set_bit(s->started, s->depth, true);
    return 1;
}

int pf_jscan_member(pf_jscan_t *s, const char **key_r)
{
    int r = s_next(s, true);
    if (r != 1)
        return r;
    size_t len;
    if (pf_jscan_peek(s) != PF_JSCAN_STRING)
        return s_fail(s, "string key expected");
    if (pf_jscan_string(s, key_r, &len) != 0)
        return -1;
    s_ws(s);
    if (s->p == s->end || *s->p != ':')
        return s_fail(s, "':' expected");
    s->p++;
    return 1;
}

int pf_jscan_element(pf_jscan_t *s)
{
    return s_next(s, false);
}

static int s_hex4(const char *p, unsigned *v_r)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *v_r = v;
    return 0;
}

static char *s_put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

int pf_jscan_string(pf_jscan_t *s, const char **v_r, size_t *len_r)
{
    if (pf_jscan_peek(s) != PF_JSCAN_STRING)
        return s_fail(s, "string expected");
    const unsigned char *p = (const unsigned char *)s->p + 1;
    const unsigned char *end = (const unsigned char *)s->end;
    char *start = s->arena + s->used, *o = start;
    for (;;) {
        if (p == end)
            return s_fail(s, "unterminated string");
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return s_fail(s, "control character in string");
        if (c >= 0x80) {
            size_t k = pf_utf8_seq_len(p, end);
            if (k == 0)
                return s_fail(s, "invalid UTF-8");
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (end - p < 2)
            return s_fail(s, "unterminated string");
        char e = (char)p[1];
        p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 4 || s_hex4((const char *)p, &cp) != 0)
                return s_fail(s, "invalid \\u escape");
            p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return s_fail(s, "invalid Unicode (lone low surrogate)");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                    s_hex4((const char *)p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                    return s_fail(s, "invalid Unicode (lone high surrogate)");
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0)
                return s_fail(s, "\\u0000 is not allowed");
            o = s_put_utf8(o, cp);
            break;
        }
        default: return s_fail(s, "invalid escape");
        }
    }
    *o = '\0';
    s->p = (const char *)p + 1;
    s->used += (size_t)(o - start) + 1;
    *v_r = start;
    *len_r = (size_t)(o - start);
    return 0;
}

static bool s_digit(const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

int pf_jscan_number(pf_jscan_t *s, const char **text_r, size_t *len_r, bool *integer_r,
                    long long *int_r)
{
    if (pf_jscan_peek(s) != PF_JSCAN_NUMBER)
        return s_fail(s, "number expected");
    const char *p = s->p, *end = s->end, *start = p;
    bool integer = true;
    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
        if (s_digit(p, end))
            return s_fail(s, "leading zero");
    } else if (s_digit(p, end)) {
        while (s_digit(p, end))
            p++;
    } else {
        return s_fail(s, "invalid number");
    }
    if (p < end && *p == '.') {
        integer = false;
        p++;
        if (!s_digit(p, end))
            return s_fail(s, "invalid number");
        while (s_digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!s_digit(p, end))
            return s_fail(s, "invalid number");
        while (s_digit(p, end))
            p++;
    }
    /* converted from a NUL-terminated copy in the arena's free part, which
     * has room: everything consumed so far took at least as many bytes as
     * the arena holds */
    size_t len = (size_t)(p - start);
    char *tmp = s->arena + s->used;
    memcpy(tmp, start, len);
    tmp[len] = '\0';
    errno = 0;
    long long v = 0;
    if (integer) {
        v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return s_fail(s, "integer out of range");
    } else {
        double d = strtod(tmp, NULL);
        if (errno == ERANGE && isinf(d))
            return s_fail(s, "real number overflow");
    }
    s->p = p;
    *text_r = start;
    *len_r = len;
    *integer_r = integer;
    *int_r = v;
    return 0;
}

int pf_jscan_literal(pf_jscan_t *s, pf_jscan_kind_t *kind_r)
{
    pf_jscan_kind_t k = pf_jscan_peek(s);
    const char *word = k == PF_JSCAN_TRUE ? "true"
                       : k == PF_JSCAN_FALSE ? "false"
                       : k == PF_JSCAN_NULL  ? "null"
                                             : NULL;
    if (word == NULL)
        return s_fail(s, "true, false or null expected");
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return s_fail(s, "invalid token");
    /* a longer run of letters ("truex") is one invalid token */
    if (s->p + n < s->end &&
        ((s->p[n] >= 'a' && s->p[n] <= 'z') || (s->p[n] >= 'A' && s->p[n] <= 'Z')))
        return s_fail(s, "invalid token");
    s->p += n;
    *kind_r = k;
    return 0;
}

/* One scalar, or the opening of an object or array. */
static int s_start_value(pf_jscan_t *s)
{
    const char *t;
    size_t n;
    bool integer;
    long long v;
    pf_jscan_kind_t k;
    switch (pf_jscan_peek(s)) {
    case PF_JSCAN_OBJECT: return pf_jscan_object(s);
    case PF_JSCAN_ARRAY: return pf_jscan_array(s);
    case PF_JSCAN_STRING: return pf_jscan_string(s, &t, &n);
    case PF_JSCAN_NUMBER: return pf_jscan_number(s, &t, &n, &integer, &v);
    case PF_JSCAN_TRUE:
    case PF_JSCAN_FALSE:
    case PF_JSCAN_NULL: return pf_jscan_literal(s, &k);
    case PF_JSCAN_END: return s_fail(s, "value expected");
    default: return -1;
    }
}

int pf_jscan_skip(pf_jscan_t *s)
{
    size_t base = s->depth;
    if (s_start_value(s) != 0)
        return -1;
    /* no recursion: the levels opened since are closed here, each member
     * or element starting the next value */
    while (s->depth > base) {
        const char *key;
        int r = s_bit(s->object, s->depth) ? pf_jscan_member(s, &key) : pf_jscan_element(s);
        if (r < 0)
            return -1;
        if (r == 1 && s_start_value(s) != 0)
            return -1;
    }
    return 0;
}

int pf_jscan_done(pf_jscan_t *s)
{
    if (s->error != NULL)
        return -1;
    if (s->depth != 0)
        return s_fail(s, "unclosed object or array");
    s_ws(s);
    return s->p == s->end ? 0 : s_fail(s, "end of input expected");
}

int pf_jscan_key_index(const char *key, const char *const *keys, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(key, keys[i]) == 0)
            return i;
    return -1;
}

bool pf_jscan_twice(unsigned *seen, int k)
{
    bool twice = (*seen >> k) & 1;
    *seen |= 1u << k;
    return twice;
}

int pf_jscan_object_or_skip(pf_jscan_t *s)
{
    if (pf_jscan_peek(s) != PF_JSCAN_OBJECT)
        return pf_jscan_skip(s) == 0 ? 0 : -1;
    return pf_jscan_object(s) == 0 ? 1 : -1;
}
