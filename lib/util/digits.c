/* Numbers written as text; see digits.h. */
#include "util/digits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

int pf_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void pf_hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

int pf_hex_decode(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        /* the second digit only after the first: a string that ends early
         * is never read past its NUL */
        int hi = pf_hex_digit(s[2 * i]);
        int lo = hi < 0 ? -1 : pf_hex_digit(s[2 * i + 1]);
        if (lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int pf_decimal_id(const char *s, int64_t *v_r)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    intmax_t v = strtoimax(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > INT64_MAX)
        return -1;
    *v_r = (int64_t)v;
    return 0;
}
