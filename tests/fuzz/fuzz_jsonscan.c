/* libFuzzer target: the in-place JSON scanner (lib/util/jsonscan.c)
 * against jansson, whose json_loadb it replaces on the broker's hot path.
 *
 * The input is a document.  The target walks it with the scanner, builds
 * a jansson tree of what it read (duplicate keys refused, as
 * JSON_REJECT_DUPLICATES does), and parses it with json_loadb too.  It
 * aborts unless both refuse it or both accept it with equal trees: the
 * scanner must accept exactly the documents jansson accepts, and read the
 * same values from them (one exception, below: a NUL byte). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/jsonscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value that comes next as a jansson tree, or NULL when the scanner
 * refuses it. */
static json_t *s_value(pf_jscan_t *s)
{
    const char *text, *key;
    size_t len;
    bool integer;
    long long v;
    pf_jscan_kind_t kind;
    json_t *out, *item;
    int r;
    switch (pf_jscan_peek(s)) {
    case PF_JSCAN_OBJECT:
        if (pf_jscan_object(s) != 0)
            return NULL;
        out = json_object();
        while ((r = pf_jscan_member(s, &key)) == 1) {
            if (json_object_get(out, key) != NULL || (item = s_value(s)) == NULL) {
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, key, item);
        }
        if (r < 0) {
            json_decref(out);
            return NULL;
        }
        return out;
    case PF_JSCAN_ARRAY:
        if (pf_jscan_array(s) != 0)
            return NULL;
        out = json_array();
        while ((r = pf_jscan_element(s)) == 1) {
            if ((item = s_value(s)) == NULL) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, item);
        }
        if (r < 0) {
            json_decref(out);
            return NULL;
        }
        return out;
    case PF_JSCAN_STRING:
        if (pf_jscan_string(s, &text, &len) != 0)
            return NULL;
        if (strlen(text) != len)
            abort(); /* a decoded string never holds a NUL */
        return json_stringn(text, len);
    case PF_JSCAN_NUMBER: {
        if (pf_jscan_number(s, &text, &len, &integer, &v) != 0)
            return NULL;
        if (integer)
            return json_integer(v);
        char *copy = strndup(text, len);
        double d = strtod(copy, NULL);
        free(copy);
        return json_real(d);
    }
    case PF_JSCAN_TRUE:
    case PF_JSCAN_FALSE:
    case PF_JSCAN_NULL:
        if (pf_jscan_literal(s, &kind) != 0)
            return NULL;
        return kind == PF_JSCAN_TRUE    ? json_true()
               : kind == PF_JSCAN_FALSE ? json_false()
                                        : json_null();
    default: return NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *arena = malloc(size + 1);
    pf_jscan_t s;
    pf_jscan_init(&s, (const char *)data, size, arena);
    /* jansson without JSON_DECODE_ANY: an object or an array at the top */
    pf_jscan_kind_t top = pf_jscan_peek(&s);
    json_t *mine = top == PF_JSCAN_OBJECT || top == PF_JSCAN_ARRAY ? s_value(&s) : NULL;
    if (mine != NULL && pf_jscan_done(&s) != 0) {
        json_decref(mine);
        mine = NULL;
    }
    json_error_t err;
    json_t *theirs = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    /* one deliberate difference: jansson's lexer drops a NUL byte that it
     * read ahead past a number or a literal ("[0\0]" passes); the scanner
     * refuses every NUL outside a string, as RFC 8259 does, and inside one
     * both refuse it */
    if (memchr(data, 0, size) != NULL) {
        if (mine != NULL)
            abort();
        json_decref(theirs);
        theirs = NULL;
    } else if ((mine == NULL) != (theirs == NULL) || (mine != NULL && !json_equal(mine, theirs))) {
        abort();
    }
    /* the skip walks the same grammar */
    pf_jscan_init(&s, (const char *)data, size, arena);
    bool skipped = (top == PF_JSCAN_OBJECT || top == PF_JSCAN_ARRAY) && pf_jscan_skip(&s) == 0 &&
                   pf_jscan_done(&s) == 0;
    /* duplicates are the caller's to refuse, so skipping may accept more,
     * but never less */
    if (mine != NULL && !skipped)
        abort();
    json_decref(mine);
    json_decref(theirs);
    free(arena);
    return 0;
}
