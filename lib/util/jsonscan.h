#ifndef PF_UTIL_JSONSCAN_H
#define PF_UTIL_JSONSCAN_H
/* A JSON scanner that reads a document in place, value by value, for the
 * hot paths that know the shape they expect (the SEND header the broker
 * decodes for every notice).  jansson builds a tree of the whole document
 * and lexes it one byte at a time through a stream: 24 us for a 2 KiB
 * header, 12% of the broker's CPU per notice.
 *
 * It accepts exactly what json_loadb(JSON_REJECT_DUPLICATES) accepts,
 * except duplicate keys, which the caller detects: RFC 8259 JSON, an
 * object or an array at the top, strict UTF-8 (no overlong forms, no
 * surrogates), no \u0000, integers within long long, reals within double,
 * nesting at most 2048 deep, nothing but whitespace at the end.
 * tests/fuzz/fuzz_jsonscan.c compares the two on every input it makes.
 *
 * Decoded strings go to an arena the caller gives (len + 1 bytes: a
 * string and its NUL never need more than its quoted form took); they
 * stay valid as long as the arena does.  Each call skips the whitespace
 * before its token.  After the first error every call fails. */
#include <stdbool.h>
#include <stddef.h>

#define PF_JSCAN_MAX_DEPTH 2048

typedef enum {
    PF_JSCAN_ERROR = -1,
    PF_JSCAN_END = 0, /* only whitespace left */
    PF_JSCAN_OBJECT,
    PF_JSCAN_ARRAY,
    PF_JSCAN_STRING,
    PF_JSCAN_NUMBER,
    PF_JSCAN_TRUE,
    PF_JSCAN_FALSE,
    PF_JSCAN_NULL
} pf_jscan_kind_t;

typedef struct {
    const char *p, *end;
    char *arena;
    size_t used;
    const char *error; /* static text of the first error, NULL while none */
    size_t depth;
    /* per open level: is it an object, has it had a member or element */
    unsigned char object[PF_JSCAN_MAX_DEPTH / 8 + 1];
    unsigned char started[PF_JSCAN_MAX_DEPTH / 8 + 1];
} pf_jscan_t;

void pf_jscan_init(pf_jscan_t *s, const char *data, size_t len, char *arena);
/* The kind of the next value (whitespace skipped, nothing consumed); END
 * when only whitespace is left, ERROR when the next byte starts no value. */
pf_jscan_kind_t pf_jscan_peek(pf_jscan_t *s);
/* Opens the object or array that comes next; 0 or -1. */
int pf_jscan_object(pf_jscan_t *s);
int pf_jscan_array(pf_jscan_t *s);
/* In an open object: 1 when a member follows (its key decoded into *key_r,
 * the colon consumed, its value next), 0 when the object closed, -1. */
int pf_jscan_member(pf_jscan_t *s, const char **key_r);
/* In an open array: 1 when an element follows (its value next), 0 when
 * the array closed, -1. */
int pf_jscan_element(pf_jscan_t *s);
/* The string that comes next, decoded (*len_r without the NUL); 0 or -1. */
int pf_jscan_string(pf_jscan_t *s, const char **v_r, size_t *len_r);
/* The number that comes next: its text in the input, and whether it is an
 * integer (no fraction, no exponent) within long long; 0 or -1 (not a
 * number, or out of the range jansson accepts). */
int pf_jscan_number(pf_jscan_t *s, const char **text_r, size_t *len_r, bool *integer_r,
                    long long *int_r);
/* true, false or null, whichever comes next: 0 with *kind_r, or -1. */
int pf_jscan_literal(pf_jscan_t *s, pf_jscan_kind_t *kind_r);
/* Skips the value that comes next, whatever it is; 0 or -1. */
int pf_jscan_skip(pf_jscan_t *s);
/* 0 when only whitespace is left and no level is open, else -1. */
int pf_jscan_done(pf_jscan_t *s);

/* For the callers' own shapes: the index of key among keys[0..n-1], or
 * -1; and whether member k (< 32) of an object comes twice, marking it in
 * *seen (a key twice is what json_loadb(JSON_REJECT_DUPLICATES) refused). */
int pf_jscan_key_index(const char *key, const char *const *keys, int n);
/* Opens the object that comes next (1), or skips the value of another
 * type that comes instead (0); -1 when the input is not JSON. */
int pf_jscan_object_or_skip(pf_jscan_t *s);
bool pf_jscan_twice(unsigned *seen, int k);

#endif
