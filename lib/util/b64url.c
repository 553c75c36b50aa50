/* base64 / base64url codecs.  Decoding is strict (canonical only) because
 * its input is untrusted: JOSE compact strings and JSON from the network. */
#include "util/b64url.h"
#include "util/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char s_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char s_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the encoding of in to out (room for (len + 2) / 3 * 4 bytes;
 * no NUL) and returns its length. */
static size_t s_encode_to(const unsigned char *in, size_t len, const char *alpha, int pad,
                          char *out)
{
    size_t o = 0, i = 0;
    while (i + 3 <= len) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        out[o++] = alpha[v & 63];
        i += 3;
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    return o;
}

static char *s_encode(const unsigned char *in, size_t len, const char *alpha, int pad)
{
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    out[s_encode_to(in, len, alpha, pad, out)] = '\0';
    return out;
}

static int s_val(char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (url ? c == '-' : c == '+')
        return 62;
    if (url ? c == '_' : c == '/')
        return 63;
    return -1;
}

static int s_decode(const char *s, size_t len, int url, unsigned char **out_r, size_t *outlen_r)
{
    if (!url) {
        if (len % 4 != 0)
            return -1;
        size_t padn = 0;
        while (padn < 2 && len > padn && s[len - 1 - padn] == '=')
            padn++;
        len -= padn;
        if (padn > 0 && (len + padn) % 4 != 0)
            return -1;
    }
    if (len % 4 == 1)
        return -1;
    size_t outlen = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    unsigned char *out = xmalloc(outlen + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_val(s[i], url);
        if (v < 0) {
            free(out);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* leftover bits must be zero: only one encoding per byte string */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(out);
        return -1;
    }
    out[o] = '\0';
    *out_r = out;
    *outlen_r = o;
    return 0;
}

char *pf_b64url_encode(const void *data, size_t len)
{
    return s_encode(data, len, s_url, 0);
}

int pf_b64url_decode(const char *s, size_t len, unsigned char **out_r, size_t *outlen_r)
{
    return s_decode(s, len, 1, out_r, outlen_r);
}

char *pf_b64_encode(const void *data, size_t len)
{
    return s_encode(data, len, s_std, 1);
}

size_t pf_b64_encode_to(const void *data, size_t len, char *out)
{
    return s_encode_to(data, len, s_std, 1, out);
}

int pf_b64_decode(const char *s, size_t len, unsigned char **out_r, size_t *outlen_r)
{
    return s_decode(s, len, 0, out_r, outlen_r);
}
