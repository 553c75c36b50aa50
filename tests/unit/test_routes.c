/* Unit tests for lib/broker/routes: the broker's table of connections
 * that receipts can go to.  A receipt goes to the sender's connection
 * heard from last, fails over to its others when that one is dropped,
 * never goes to a connection that spoke for another sender since, and a
 * full table (PF_ROUTES_MAX, the broker's own limit) forgets the
 * connection heard from longest ago; a sender whose connection was
 * forgotten is found again as soon as it speaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/routes.h"

/* a routing id as libzmq makes them: a zero byte and a 32-bit counter */
typedef struct {
    unsigned char b[5];
} s_rid_t;

static s_rid_t s_rid(uint32_t n)
{
    s_rid_t r = {{0, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                  (unsigned char)n}};
    return r;
}

static void s_heard(pf_routes_t *rt, int64_t sender, uint32_t rid, int64_t now)
{
    s_rid_t r = s_rid(rid);
    char key[41];
    snprintf(key, sizeof(key), "key-of-%lld", (long long)sender);
    assert_true(pf_routes_heard(rt, sender, key, r.b, sizeof(r.b), now));
}

/* The routing id of the sender's entry as a number, -1 when it has none;
 * fails when the entry belongs to another sender or has another's key. */
static int64_t s_find(const pf_routes_t *rt, int64_t sender)
{
    const pf_routes_entry_t *e = pf_routes_find(rt, sender);
    if (e == NULL)
        return -1;
    char key[41];
    snprintf(key, sizeof(key), "key-of-%lld", (long long)sender);
    if (e->sender_id != sender || strcmp(e->key, key) != 0 || e->rid_len != 5)
        fail_msg("sender %lld found entry of sender %lld, key %s", (long long)sender,
                 (long long)e->sender_id, e->key);
    return (int64_t)((uint32_t)e->rid[1] << 24 | (uint32_t)e->rid[2] << 16 |
                     (uint32_t)e->rid[3] << 8 | e->rid[4]);
}

/* The table of a test, freed by the teardown also when an assertion
 * failed (cmocka then leaves the test function by longjmp). */
static int s_setup(void **state)
{
    *state = pf_routes_new();
    return 0;
}

static int s_teardown(void **state)
{
    pf_routes_t *rt = *state;
    pf_routes_destroy(&rt);
    return 0;
}

static void test_latest_connection_of_the_sender(void **state)
{
    pf_routes_t *rt = *state;
    assert_int_equal(s_find(rt, 1), -1);
    s_heard(rt, 1, 10, 100); /* sender 1: a receipt listener */
    s_heard(rt, 2, 20, 110);
    s_heard(rt, 1, 11, 120); /* sender 1: a short-lived sender */
    assert_int_equal(pf_routes_count(rt), 3);
    assert_int_equal(s_find(rt, 1), 11);
    assert_int_equal(s_find(rt, 2), 20);
    assert_int_equal(s_find(rt, 3), -1);
    s_heard(rt, 1, 10, 130); /* the listener speaks again (PING) */
    assert_int_equal(pf_routes_count(rt), 3);
    assert_int_equal(s_find(rt, 1), 10);
}

/* the send to the latest connection failed: drop it, and the sender's
 * other one takes over; other senders' entries stay as they were */
static void test_failover(void **state)
{
    pf_routes_t *rt = *state;
    s_heard(rt, 1, 10, 100);
    s_heard(rt, 2, 20, 105);
    s_heard(rt, 1, 11, 110);
    s_heard(rt, 3, 30, 115);
    s_heard(rt, 1, 12, 120);
    assert_int_equal(s_find(rt, 1), 12);
    pf_routes_drop(rt, pf_routes_find(rt, 1));
    assert_int_equal(s_find(rt, 1), 11);
    pf_routes_drop(rt, pf_routes_find(rt, 1));
    assert_int_equal(s_find(rt, 1), 10);
    pf_routes_drop(rt, pf_routes_find(rt, 1));
    assert_int_equal(s_find(rt, 1), -1);
    assert_int_equal(pf_routes_count(rt), 2);
    assert_int_equal(s_find(rt, 2), 20);
    assert_int_equal(s_find(rt, 3), 30);
}

/* a connection that speaks for another sender (a routing id the peer
 * chose, used again by another sender) is that sender's from then on: no
 * receipt of the first sender goes there any more */
static void test_connection_speaks_for_another_sender(void **state)
{
    pf_routes_t *rt = *state;
    s_heard(rt, 1, 10, 100);
    s_heard(rt, 1, 11, 110);
    s_heard(rt, 2, 11, 120);
    assert_int_equal(pf_routes_count(rt), 2);
    assert_int_equal(s_find(rt, 1), 10);
    assert_int_equal(s_find(rt, 2), 11);
    s_heard(rt, 2, 10, 130);
    assert_int_equal(s_find(rt, 1), -1);
    assert_int_equal(s_find(rt, 2), 10);
}

/* the table full: each new connection takes the place of the one heard
 * from longest ago, whichever sender it belongs to; one that spoke again
 * meanwhile is kept */
static void test_eviction_order(void **state)
{
    pf_routes_t *rt = *state;
    /* connection i of sender 1000 + i, heard at time i */
    for (uint32_t i = 0; i < PF_ROUTES_MAX; i++)
        s_heard(rt, 1000 + i, i, i);
    assert_int_equal(pf_routes_count(rt), PF_ROUTES_MAX);
    /* the first ten speak again, in reverse order */
    int64_t now = PF_ROUTES_MAX;
    for (uint32_t i = 10; i-- > 0;)
        s_heard(rt, 1000 + i, i, now++);
    /* new connections push out 10, 11, 12, ... in that order */
    for (uint32_t k = 0; k < 100; k++) {
        s_heard(rt, 900000 + k, 100000 + k, now++);
        assert_int_equal(pf_routes_count(rt), PF_ROUTES_MAX);
        assert_int_equal(s_find(rt, 900000 + k), 100000 + k);
        for (uint32_t i = 0; i < 10; i++)
            assert_int_equal(s_find(rt, 1000 + i), i);
        for (uint32_t i = 10; i < 10 + k + 1; i++)
            if (s_find(rt, 1000 + i) != -1)
                fail_msg("connection %u still there after %u new ones", i, k + 1);
        for (uint32_t i = 10 + k + 1; i < 10 + k + 50; i++)
            if (s_find(rt, 1000 + i) != (int64_t)i)
                fail_msg("connection %u evicted after %u new ones", i, k + 1);
    }
    /* now the ten that spoke again are the oldest: they go next, in the
     * order they spoke (9 first) */
    for (uint32_t i = 110; i < PF_ROUTES_MAX; i++)
        s_heard(rt, 1000 + i, i, now++); /* all the others speak */
    assert_int_equal(pf_routes_count(rt), PF_ROUTES_MAX);
    for (uint32_t k = 0; k < 10; k++) {
        s_heard(rt, 800000 + k, 200000 + k, now++);
        assert_int_equal(s_find(rt, 1000 + (9 - k)), -1);
        if (k < 9)
            assert_int_equal(s_find(rt, 1000 + (8 - k)), 8 - k);
    }
}

/* a sender whose connection was forgotten gets no receipt (and none of
 * another sender's connections for it) until it speaks again; then its
 * connection is there again, in place of the oldest; a sender with two
 * connections keeps the one that was not forgotten */
static void test_evicted_sender_speaks_again(void **state)
{
    pf_routes_t *rt = *state;
    int64_t now = 1;
    s_heard(rt, 7, 70, now++); /* sender 7: one connection, heard first */
    s_heard(rt, 8, 80, now++); /* sender 8: a listener heard long ago ... */
    s_heard(rt, 9, 90, now++); /* (sender 9, heard just after) */
    s_heard(rt, 8, 81, now++); /* ... and a sender connection */
    s_heard(rt, 8, 82, now++); /* ... and another one, latest */
    for (uint32_t i = 0; i < PF_ROUTES_MAX - 5; i++)
        s_heard(rt, 1000 + i, 1000 + i, now++);
    assert_int_equal(pf_routes_count(rt), PF_ROUTES_MAX);
    /* two new connections push out 7's and then 8's oldest */
    s_heard(rt, 500, 100000, now++);
    assert_int_equal(s_find(rt, 7), -1);
    assert_int_equal(s_find(rt, 8), 82);
    s_heard(rt, 501, 100001, now++);
    assert_int_equal(s_find(rt, 8), 82);
    /* 8's latest connection is gone: the one left takes over */
    pf_routes_drop(rt, pf_routes_find(rt, 8));
    assert_int_equal(s_find(rt, 8), 81);
    /* 7 speaks again on its connection: it is found again, in the place
     * the drop left free, so 9 (the oldest now) stays until the next new
     * connection needs room */
    s_heard(rt, 7, 70, now++);
    assert_int_equal(s_find(rt, 7), 70);
    assert_int_equal(s_find(rt, 9), 90);
    s_heard(rt, 502, 100002, now++);
    assert_int_equal(s_find(rt, 9), -1);
    assert_int_equal(s_find(rt, 7), 70);
    assert_int_equal(s_find(rt, 8), 81);
    assert_int_equal(pf_routes_count(rt), PF_ROUTES_MAX);
    /* 8's first connection was pushed out: nothing left after 81 */
    pf_routes_drop(rt, pf_routes_find(rt, 8));
    assert_int_equal(s_find(rt, 8), -1);
}

/* the longest routing id libzmq makes fits; a longer one is not noted */
static void test_rid_length(void **state)
{
    pf_routes_t *rt = *state;
    unsigned char rid[PF_ROUTES_RID_MAX + 1];
    memset(rid, 'r', sizeof(rid));
    assert_false(pf_routes_heard(rt, 1, "k", rid, sizeof(rid), 1));
    assert_int_equal(pf_routes_count(rt), 0);
    assert_null(pf_routes_find(rt, 1));
    assert_true(pf_routes_heard(rt, 1, "k", rid, PF_ROUTES_RID_MAX, 2));
    const pf_routes_entry_t *e = pf_routes_find(rt, 1);
    assert_non_null(e);
    assert_int_equal(e->rid_len, PF_ROUTES_RID_MAX);
    assert_memory_equal(e->rid, rid, PF_ROUTES_RID_MAX);
    /* a prefix of a known id is another connection */
    assert_true(pf_routes_heard(rt, 2, "k", rid, PF_ROUTES_RID_MAX - 1, 3));
    assert_int_equal(pf_routes_count(rt), 2);
    assert_int_equal(pf_routes_find(rt, 1)->rid_len, PF_ROUTES_RID_MAX);
}

static void test_senders(void **state)
{
    pf_routes_t *rt = *state;
    int64_t *ids;
    assert_int_equal(pf_routes_senders(rt, &ids), 0);
    assert_null(ids);
    s_heard(rt, 5, 1, 1);
    s_heard(rt, 3, 2, 2);
    s_heard(rt, 5, 3, 3);
    s_heard(rt, 9, 4, 4);
    s_heard(rt, 3, 5, 5);
    assert_int_equal(pf_routes_senders(rt, &ids), 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 9);
    free(ids);
    pf_routes_t *none = NULL;
    pf_routes_destroy(&none); /* accepts NULL */
}

/* ---- against a model ------------------------------------------------------ *
 * A full table, then random steps: connections speak (mostly a few busy
 * ones, often one the table does not hold, now and then for another
 * sender) and receipts fail (the sender's latest connection is dropped).
 * After every step each sender's entry must be the one the obvious model
 * says: its connection heard from last among those the table still holds,
 * where a full table forgot the connection heard from longest ago. */

typedef struct {
    int64_t sender; /* 0: not in the table */
    int64_t heard;
} s_model_t;

static uint64_t s_rand_state = 0x9e3779b97f4a7c15u;

static uint32_t s_rand(uint32_t n)
{
    s_rand_state ^= s_rand_state << 13;
    s_rand_state ^= s_rand_state >> 7;
    s_rand_state ^= s_rand_state << 17;
    return (uint32_t)(s_rand_state % n);
}

enum { S_NRID = PF_ROUTES_MAX + 2000, S_NSENDER = 16 };

static void s_model_heard(s_model_t *m, size_t *in, int64_t sender, uint32_t rid, int64_t now)
{
    if (m[rid].sender == 0 && *in == PF_ROUTES_MAX) {
        uint32_t old = S_NRID;
        for (uint32_t i = 0; i < S_NRID; i++)
            if (m[i].sender != 0 && (old == S_NRID || m[i].heard < m[old].heard))
                old = i;
        m[old].sender = 0;
        (*in)--;
    }
    if (m[rid].sender == 0)
        (*in)++;
    m[rid] = (s_model_t){sender, now};
}

static void test_against_model(void **state)
{
    static s_model_t m[S_NRID];
    size_t in = 0;
    size_t evictions = 0;
    pf_routes_t *rt = *state;
    int64_t now = 1;
    for (uint32_t rid = 0; rid < PF_ROUTES_MAX; rid++, now++) {
        s_model_heard(m, &in, 1 + rid % S_NSENDER, rid, now);
        s_heard(rt, 1 + rid % S_NSENDER, rid, now);
    }
    for (int step = 0; step < 4000; step++, now++) {
        if (s_rand(10) == 0) {
            int64_t s = 1 + s_rand(S_NSENDER);
            int64_t rid = s_find(rt, s);
            if (rid >= 0) {
                pf_routes_drop(rt, pf_routes_find(rt, s));
                m[rid].sender = 0;
                in--;
            }
        } else {
            uint32_t rid = s_rand(3) == 0 ? s_rand(S_NRID) : s_rand(64);
            int64_t s = s_rand(50) == 0 ? 1 + s_rand(S_NSENDER) : 1 + rid % S_NSENDER;
            evictions += m[rid].sender == 0 && in == PF_ROUTES_MAX;
            s_model_heard(m, &in, s, rid, now);
            s_heard(rt, s, rid, now);
        }
        assert_int_equal(pf_routes_count(rt), in);
        int64_t want[1 + S_NSENDER];
        for (int64_t s = 0; s <= S_NSENDER; s++)
            want[s] = -1;
        for (uint32_t i = 0; i < S_NRID; i++) {
            int64_t s = m[i].sender;
            if (s != 0 && (want[s] < 0 || m[i].heard > m[want[s]].heard))
                want[s] = i;
        }
        for (int64_t s = 1; s <= S_NSENDER; s++) {
            int64_t got = s_find(rt, s);
            if (got != want[s])
                fail_msg("step %d: sender %lld found %lld, the model %lld", step, (long long)s,
                         (long long)got, (long long)want[s]);
        }
    }
    assert_true(evictions > 100);
}

/* Within one millisecond the order of hearing decides: the connection
 * heard first is forgotten first, and a receipt goes to the sender's
 * connection heard last, wherever drops have moved the entries. */
static void test_same_millisecond(void **state)
{
    pf_routes_t *rt = *state;
    /* sender 1 on rid 0, then sender 2 on rid 1 and 2: all at 5 ms */
    s_heard(rt, 1, 0, 5);
    s_heard(rt, 2, 1, 5);
    s_heard(rt, 2, 2, 5);
    assert_int_equal(s_find(rt, 2), 2);
    /* drop sender 1's entry: rid 2 moves into slot 0, before rid 1 */
    pf_routes_drop(rt, pf_routes_find(rt, 1));
    assert_int_equal(s_find(rt, 2), 2);
    s_heard(rt, 2, 1, 5); /* rid 1 again, still at 5 ms: now the latest */
    assert_int_equal(s_find(rt, 2), 1);
    /* fill the table at 5 ms with sender 3; the next new connection
     * forgets rid 2, the one heard first */
    for (uint32_t rid = 3; pf_routes_count(rt) < PF_ROUTES_MAX; rid++)
        s_heard(rt, 3, rid, 5);
    s_heard(rt, 4, 100000, 5);
    assert_int_equal(pf_routes_count(rt), PF_ROUTES_MAX);
    assert_int_equal(s_find(rt, 2), 1);
    s_heard(rt, 4, 100001, 5); /* then rid 1, sender 2's last */
    assert_int_equal(s_find(rt, 2), -1);
    assert_int_equal(s_find(rt, 3), PF_ROUTES_MAX); /* rids 3 .. PF_ROUTES_MAX */
    assert_int_equal(s_find(rt, 4), 100001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_latest_connection_of_the_sender, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_failover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_connection_speaks_for_another_sender, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_eviction_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_evicted_sender_speaks_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rid_length, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_senders, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_against_model, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_same_millisecond, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
