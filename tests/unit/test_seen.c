/* Unit tests for lib/client/seen: the latest PF_SEEN_MAX receipt ids are
 * found, older ones are not, and the chains stay whole while the ring
 * drops its oldest entries, also when many ids share a chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/seen.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

/* n receipt ids as the broker makes them (UUIDv7: ids of one millisecond
 * share their first characters) */
static char (*s_ids(size_t n))[37]
{
    char(*ids)[37] = xcalloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        pf_uuid7_generate(ids[i]);
    return ids;
}

static void test_finds_what_was_added(void **state)
{
    (void)state;
    pf_seen_t *s = xcalloc(1, sizeof(*s));
    char(*ids)[37] = s_ids(100);
    for (size_t i = 0; i < 100; i++) {
        assert_null(pf_seen_find(s, ids[i]));
        pf_seen_entry_t *e = pf_seen_add(s, ids[i]);
        assert_false(e->acked);
        e->acked = i % 2 == 0;
    }
    for (size_t i = 0; i < 100; i++) {
        pf_seen_entry_t *e = pf_seen_find(s, ids[i]);
        assert_non_null(e);
        assert_string_equal(e->jti, ids[i]);
        assert_int_equal(e->acked, i % 2 == 0);
    }
    assert_null(pf_seen_find(s, "0190a000-0000-7000-8000-000000000000"));
    free(ids);
    free(s);
}

/* three times round the ring: after every add exactly the latest
 * PF_SEEN_MAX ids are there */
static void test_keeps_the_latest(void **state)
{
    (void)state;
    size_t n = 3 * PF_SEEN_MAX + 17;
    pf_seen_t *s = xcalloc(1, sizeof(*s));
    char(*ids)[37] = s_ids(n);
    for (size_t i = 0; i < n; i++) {
        pf_seen_add(s, ids[i]);
        if (i % 997 == 0 || i + 1 == n) {
            size_t first = i + 1 > PF_SEEN_MAX ? i + 1 - PF_SEEN_MAX : 0;
            for (size_t k = 0; k <= i; k++) {
                pf_seen_entry_t *e = pf_seen_find(s, ids[k]);
                if (k < first && e != NULL)
                    fail_msg("id %zu still found after %zu adds", k, i + 1);
                if (k >= first && (e == NULL || strcmp(e->jti, ids[k]) != 0))
                    fail_msg("id %zu lost after %zu adds", k, i + 1);
            }
        }
    }
    assert_int_equal(s->count, PF_SEEN_MAX);
    free(ids);
    free(s);
}

/* the same id again (the caller checks first, but a repeat must not
 * break a chain): the newer entry is found, and dropping either keeps
 * the other findable until it is dropped too */
static void test_repeated_id(void **state)
{
    (void)state;
    pf_seen_t *s = xcalloc(1, sizeof(*s));
    const char *id = "0190a000-0000-7000-8000-0000000000aa";
    pf_seen_add(s, id);
    pf_seen_add(s, id)->acked = true;
    assert_true(pf_seen_find(s, id)->acked);
    char(*ids)[37] = s_ids(PF_SEEN_MAX);
    for (size_t i = 0; i < PF_SEEN_MAX - 2; i++)
        pf_seen_add(s, ids[i]);
    pf_seen_add(s, ids[PF_SEEN_MAX - 2]); /* drops the first copy */
    assert_non_null(pf_seen_find(s, id));
    pf_seen_add(s, ids[PF_SEEN_MAX - 1]); /* drops the second */
    assert_null(pf_seen_find(s, id));
    assert_non_null(pf_seen_find(s, ids[0]));
    free(ids);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_what_was_added),
        cmocka_unit_test(test_keeps_the_latest),
        cmocka_unit_test(test_repeated_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
