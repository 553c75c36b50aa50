/* Growable buffer: doubles capacity, keeps a terminating NUL. */
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pf_buf_init(pf_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static void s_reserve(pf_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void pf_buf_append(pf_buf_t *b, const void *p, size_t n)
{
    s_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

char *pf_buf_space(pf_buf_t *b, size_t n)
{
    s_reserve(b, n);
    return b->data + b->len;
}

void pf_buf_grew(pf_buf_t *b, size_t n)
{
    if (b->len + n + 1 > b->cap)
        abort(); /* more than pf_buf_space made room for */
    b->len += n;
    b->data[b->len] = '\0';
}

void pf_buf_puts(pf_buf_t *b, const char *s)
{
    pf_buf_append(b, s, strlen(s));
}

void pf_buf_printf(pf_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        pf_buf_append(b, tmp, (size_t)n);
        return;
    }
    s_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void pf_buf_reset(pf_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *pf_buf_steal(pf_buf_t *b, size_t *len_r)
{
    if (b->data == NULL) {
        s_reserve(b, 0);
        b->data[0] = '\0';
    }
    char *p = b->data;
    if (len_r)
        *len_r = b->len;
    pf_buf_init(b);
    return p;
}

void pf_buf_free(pf_buf_t *b, int wipe)
{
    if (b->data && wipe) {
        volatile char *v = b->data;
        for (size_t i = 0; i < b->cap; i++)
            v[i] = 0;
    }
    free(b->data);
    pf_buf_init(b);
}
