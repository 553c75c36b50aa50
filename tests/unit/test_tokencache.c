/* Unit tests for lib/auth/tokencache: a verified token is trusted again
 * without a signature check, but never past its expiry, never longer than
 * the TTL, never for other bytes, and a refused token is never kept.
 * Real tokens, minted and verified by lib/auth/token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/tokencache.h"
#include "crypto/jose.h"
#include "util/xalloc.h"

#define ISS "https://idp.example.de"
#define AUD "postfach"
#define NOW INT64_C(1700000000)

static const char *const s_algs[] = {"ES256", NULL};

static pf_key_t *s_idp, *s_stranger;
static pf_keyset_t *s_keys;
static pf_token_policy_t s_policy;

static int s_setup(void **state)
{
    (void)state;
    const char *err;
    if (pf_key_generate(PF_KEY_P256, &s_idp, &err) != 0 ||
        pf_key_generate(PF_KEY_P256, &s_stranger, &err) != 0)
        return -1;
    s_keys = pf_keyset_new();
    pf_keyset_add(s_keys, s_idp, NULL);
    s_policy = (pf_token_policy_t){
        .keys = s_keys, .issuer = ISS, .audience = AUD, .skew_seconds = 60, .algs = s_algs};
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    pf_keyset_destroy(&s_keys);
    pf_key_destroy(&s_idp);
    pf_key_destroy(&s_stranger);
    return 0;
}

static char *s_mint(const pf_key_t *key, const char *sub, pf_level_t level, int64_t now, int ttl)
{
    const char *err;
    char *t = pf_token_mint(key, ISS, AUD, sub, level, now, ttl, &err);
    if (t == NULL)
        fail_msg("mint: %s", err);
    return t;
}

static const char *s_verify(pf_token_cache_t *c, const char *tok, int64_t now,
                            pf_token_claims_t *cl)
{
    const char *err = NULL;
    return pf_token_cache_verify(c, &s_policy, tok, strlen(tok), now, cl, &err) == 0 ? NULL : err;
}

static void s_expect_stats(pf_token_cache_t *c, uint64_t hits, uint64_t misses)
{
    uint64_t h, m;
    pf_token_cache_stats(c, &h, &m);
    assert_int_equal(h, hits);
    assert_int_equal(m, misses);
}

static void test_hit_gives_the_same_claims(void **state)
{
    (void)state;
    pf_token_cache_t *c = pf_token_cache_new(64, 30);
    char *a = s_mint(s_idp, "citizen-a", PF_LEVEL_SUBSTANTIELL, NOW, 600);
    char *b = s_mint(s_idp, "citizen-b", PF_LEVEL_NORMAL, NOW, 600);
    pf_token_claims_t ca, cb, again;
    assert_null(s_verify(c, a, NOW, &ca));
    assert_null(s_verify(c, b, NOW, &cb));
    s_expect_stats(c, 0, 2);
    assert_null(s_verify(c, a, NOW + 1, &again));
    s_expect_stats(c, 1, 2);
    assert_string_equal(again.subject, "citizen-a");
    assert_int_equal(again.level, PF_LEVEL_SUBSTANTIELL);
    assert_int_equal(again.exp, ca.exp);
    assert_null(s_verify(c, b, NOW + 2, &again));
    assert_string_equal(again.subject, "citizen-b");
    assert_int_equal(again.level, PF_LEVEL_NORMAL);
    s_expect_stats(c, 2, 2);
    free(a);
    free(b);
    pf_token_cache_destroy(&c);
    assert_null(c);
}

static void test_expiry_and_ttl_apply(void **state)
{
    (void)state;
    pf_token_cache_t *c = pf_token_cache_new(64, 30);
    char *t = s_mint(s_idp, "citizen-a", PF_LEVEL_NORMAL, NOW, 20);
    pf_token_claims_t cl;
    /* within the TTL, but the token's exp + skew (60 s) has passed */
    pf_token_cache_destroy(&c);
    c = pf_token_cache_new(64, 300);
    assert_null(s_verify(c, t, NOW, &cl));
    assert_null(s_verify(c, t, NOW + 79, &cl)); /* exp + skew - 1: a hit */
    s_expect_stats(c, 1, 1);
    assert_string_equal(s_verify(c, t, NOW + 80, &cl), "token expired");
    s_expect_stats(c, 1, 2);
    free(t);
    /* past the TTL: verified again (a miss), though still valid */
    pf_token_cache_destroy(&c);
    c = pf_token_cache_new(64, 30);
    t = s_mint(s_idp, "citizen-a", PF_LEVEL_NORMAL, NOW, 600);
    assert_null(s_verify(c, t, NOW, &cl));
    assert_null(s_verify(c, t, NOW + 29, &cl));
    s_expect_stats(c, 1, 1);
    assert_null(s_verify(c, t, NOW + 30, &cl));
    s_expect_stats(c, 1, 2);
    /* a clock that went back is no reason to trust an entry */
    assert_null(s_verify(c, t, NOW + 10, &cl));
    s_expect_stats(c, 1, 3);
    free(t);
    pf_token_cache_destroy(&c);
}

static void test_refused_never_kept(void **state)
{
    (void)state;
    pf_token_cache_t *c = pf_token_cache_new(64, 30);
    pf_token_claims_t cl;
    /* signed by a key the policy does not know */
    char *forged = s_mint(s_stranger, "citizen-a", PF_LEVEL_HOCH, NOW, 600);
    for (int i = 0; i < 3; i++)
        assert_non_null(s_verify(c, forged, NOW, &cl));
    s_expect_stats(c, 0, 3);
    /* a good token cached, then the same bytes but one changed */
    char *t = s_mint(s_idp, "citizen-a", PF_LEVEL_NORMAL, NOW, 600);
    assert_null(s_verify(c, t, NOW, &cl));
    size_t n = strlen(t);
    t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
    assert_string_equal(s_verify(c, t, NOW, &cl), "bad signature");
    /* not yet valid when verified: refused, and not stored for later */
    char *early = s_mint(s_idp, "citizen-a", PF_LEVEL_NORMAL, NOW + 3600, 600);
    assert_non_null(s_verify(c, early, NOW, &cl));
    assert_non_null(s_verify(c, early, NOW, &cl));
    s_expect_stats(c, 0, 7);
    free(early);
    free(forged);
    free(t);
    /* off: every call verifies */
    pf_token_cache_t *off = pf_token_cache_new(64, 0);
    t = s_mint(s_idp, "citizen-a", PF_LEVEL_NORMAL, NOW, 600);
    assert_null(s_verify(off, t, NOW, &cl));
    assert_null(s_verify(off, t, NOW, &cl));
    s_expect_stats(off, 0, 0);
    free(t);
    pf_token_cache_destroy(&off);
    pf_token_cache_destroy(&c);
}

/* WAYS + 1 tokens of one set: the one used least recently goes, and only
 * that one; a hit counts as a use */
static void test_full_set_drops_least_recent(void **state)
{
    (void)state;
    enum { W = PF_TOKEN_CACHE_WAYS };
    pf_token_cache_t *c = pf_token_cache_new(64, 300);
    char *tok[W + 1];
    int found = 0, minted = 0;
    char *first = s_mint(s_idp, "citizen-0", PF_LEVEL_NORMAL, NOW, 600);
    size_t set = pf_token_cache_set_of(c, first, strlen(first));
    tok[found++] = first;
    while (found < W + 1) {
        char sub[32];
        snprintf(sub, sizeof(sub), "citizen-%d", ++minted);
        char *t = s_mint(s_idp, sub, PF_LEVEL_NORMAL, NOW, 600);
        if (pf_token_cache_set_of(c, t, strlen(t)) == set)
            tok[found++] = t;
        else
            free(t);
        assert_true(minted < 10000);
    }
    pf_token_claims_t cl;
    for (int i = 0; i < W; i++)
        assert_null(s_verify(c, tok[i], NOW, &cl));
    s_expect_stats(c, 0, W);
    /* the set is full: every token in it is a hit */
    for (int i = 0; i < W; i++)
        assert_null(s_verify(c, tok[i], NOW + 1, &cl));
    s_expect_stats(c, W, W);
    /* use tok[0] again, so tok[1] is now the least recent */
    assert_null(s_verify(c, tok[0], NOW + 2, &cl));
    assert_null(s_verify(c, tok[W], NOW + 3, &cl)); /* stored over tok[1] */
    s_expect_stats(c, W + 1, W + 1);
    assert_null(s_verify(c, tok[0], NOW + 4, &cl));
    assert_string_equal(cl.subject, "citizen-0");
    for (int i = 2; i <= W; i++)
        assert_null(s_verify(c, tok[i], NOW + 4, &cl));
    s_expect_stats(c, W + 1 + W, W + 1);
    assert_null(s_verify(c, tok[1], NOW + 5, &cl)); /* gone: verified again */
    s_expect_stats(c, W + 1 + W, W + 2);
    for (int i = 0; i <= W; i++)
        free(tok[i]);
    pf_token_cache_destroy(&c);
}

/* many tokens over few slots from several threads: every answer is the
 * subject of the token asked about */
typedef struct {
    pf_token_cache_t *c;
    char **tokens;
    int n;
    int wrong;
} s_job_t;

static void *s_worker(void *arg)
{
    s_job_t *j = arg;
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < j->n; i++) {
            pf_token_claims_t cl;
            char want[32];
            snprintf(want, sizeof(want), "citizen-%d", i);
            /* twice: the second is a hit unless PF_TOKEN_CACHE_WAYS
             * other tokens of its set came in between */
            for (int twice = 0; twice < 2; twice++)
                if (s_verify(j->c, j->tokens[i], NOW, &cl) != NULL ||
                    strcmp(cl.subject, want) != 0)
                    __atomic_add_fetch(&j->wrong, 1, __ATOMIC_RELAXED);
        }
    return NULL;
}

static void test_threads_and_collisions(void **state)
{
    (void)state;
    enum { N = 200 };
    s_job_t j = {.c = pf_token_cache_new(64, 30), .n = N};
    j.tokens = xcalloc(N, sizeof(*j.tokens));
    for (int i = 0; i < N; i++) {
        char sub[32];
        snprintf(sub, sizeof(sub), "citizen-%d", i);
        j.tokens[i] = s_mint(s_idp, sub, PF_LEVEL_NORMAL, NOW, 600);
    }
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, s_worker, &j), 0);
    s_worker(&j);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(j.wrong, 0);
    uint64_t h, m;
    pf_token_cache_stats(j.c, &h, &m);
    assert_int_equal(h + m, 4 * 20 * N * 2);
    assert_true(h > 0);
    for (int i = 0; i < N; i++)
        free(j.tokens[i]);
    free(j.tokens);
    pf_token_cache_destroy(&j.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_gives_the_same_claims),
        cmocka_unit_test(test_expiry_and_ttl_apply),
        cmocka_unit_test(test_refused_never_kept),
        cmocka_unit_test(test_full_set_drops_least_recent),
        cmocka_unit_test(test_threads_and_collisions),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
