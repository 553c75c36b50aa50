#ifndef PF_UTIL_B64URL_H
#define PF_UTIL_B64URL_H
/* base64url without padding (RFC 4648 section 5), as JOSE uses it. */
#include <stddef.h>

/* Returns a NUL-terminated string the caller frees. */
char *pf_b64url_encode(const void *data, size_t len);
/* Decodes exactly len characters; refuses padding, whitespace, characters
 * outside the alphabet and non-canonical trailing bits.  On success *out_r
 * (caller frees, NUL-terminated for convenience) and *outlen_r are set. */
int pf_b64url_decode(const char *s, size_t len, unsigned char **out_r, size_t *outlen_r);
/* Standard base64 with padding (for JSON attachment payloads). */
char *pf_b64_encode(const void *data, size_t len);
/* The same into out, which has room for PF_B64_LEN(len) bytes (no NUL is
 * written); returns the length written. */
#define PF_B64_LEN(n) (((n) + 2) / 3 * 4)
size_t pf_b64_encode_to(const void *data, size_t len, char *out);
int pf_b64_decode(const char *s, size_t len, unsigned char **out_r, size_t *outlen_r);

#endif
