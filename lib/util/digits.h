#ifndef PF_UTIL_DIGITS_H
#define PF_UTIL_DIGITS_H
/* Numbers written as text: bytes in hexadecimal (the KEK file, the audit
 * chain's hashes, ids in URLs) and non-negative decimal ids (audit ids on
 * the command line and in the shipping state file). */
#include <stddef.h>
#include <stdint.h>

/* The value of one hexadecimal digit (either case), or -1. */
int pf_hex_digit(char c);
/* Writes len bytes as 2 * len lower-case digits and a NUL into out. */
void pf_hex_encode(const void *data, size_t len, char *out);
/* Reads exactly 2 * n digits of s into n bytes; -1 (out undefined) when
 * one is not a hexadecimal digit, also when s ends (NUL) before them. */
int pf_hex_decode(const char *s, size_t n, unsigned char *out);

/* A decimal number from 0 to INT64_MAX: digits only (no sign, no space,
 * nothing after them).  Returns -1 for anything else. */
int pf_decimal_id(const char *s, int64_t *v_r);

#endif
