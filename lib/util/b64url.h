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
int pf_b64_decode(const char *s, size_t len, unsigned char **out_r, size_t *outlen_r);

#endif
