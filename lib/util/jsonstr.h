#ifndef PF_UTIL_JSONSTR_H
#define PF_UTIL_JSONSTR_H
/* JSON strings written by hand, for documents built in one pass (the
 * notice, the listing) instead of through a jansson tree: the escapes
 * jansson uses, and its strict UTF-8 check. */
#include "util/buf.h"

#include <stddef.h>

/* The length of the UTF-8 sequence at p, whose first byte is >= 0x80, or
 * 0 when it is not strict UTF-8 (see below) or does not end before end. */
size_t pf_utf8_seq_len(const unsigned char *p, const unsigned char *end);
/* Length of s as a JSON string body (without quotes); -1 when s is not
 * valid UTF-8 (strict: no overlong forms, no surrogates, <= U+10FFFF). */
long pf_json_escaped_len(const char *s);
/* Writes s as a JSON string (with quotes) at out, which has room for
 * pf_json_escaped_len(s) + 2 bytes; returns the end.  s must be valid
 * UTF-8 (checked with pf_json_escaped_len). */
char *pf_json_put_str(char *out, const char *s);
/* Appends s as a JSON string (with quotes); -1, appending nothing, when s
 * is not valid UTF-8. */
int pf_buf_json_str(pf_buf_t *b, const char *s);

#endif
