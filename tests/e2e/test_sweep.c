/* Cross-citizen sweep (issue 3): citizen A's token against every route of
 * the reader with citizen B's message ids, with random ids and with cursors
 * made from B's ids.  A "leak" is any answer that is not exactly the
 * answer for a message that does not exist (same status, same headers but
 * Date, same body), any listing that is not exactly A's own notices older
 * than the cursor's id (docs/api.md: pages are cut by id), or any change to
 * B's notices (read state, receipts).  Prints "N probes over K routes:
 * leaks 0".  Positive controls: A lists and opens its own notices, B its
 * own, so a reader that refused everything would fail too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "postfach/postfach.h"
#include "reader/route.h"
#include "util/uuid7.h"

#define B_NOTICES 6
#define A_NOTICES (B_NOTICES + 1)

static void s_send_a(pf_client_t *c, int i, char id_r[40])
{
    const char *to_a[] = {"citizen-a"};
    char rid[32];
    snprintf(rid, sizeof(rid), "sweep-a-%d", i);
    pf_client_notice_t na = {.request_id = rid,
                             .recipients = to_a,
                             .recipient_count = 1,
                             .title = "A's",
                             .subject = "for A",
                             .body = "A"};
    pf_client_result_t ra;
    const char *err;
    assert_int_equal(pf_client_send(c, &na, &ra, &err), 0);
    assert_true(ra.ok);
    snprintf(id_r, 40, "%s", ra.copies[0].message_id);
    pf_client_result_clear(&ra);
}

static int s_newest_first(const void *a, const void *b)
{
    return -strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET path with token: 200 and exactly the ids want[0..n) in this order,
 * with no next page; 0, or -1 with the difference on stderr. */
static int s_listing_is(int port, const char *path, const char *token, const char *const *want,
                        size_t n)
{
    pf_http_response_t resp;
    assert_int_equal(pf_http_get(port, path, token, &resp), 0);
    int rc = 0;
    json_error_t je;
    json_t *j = resp.status == 200 ? json_loadb(resp.body, resp.body_len, 0, &je) : NULL;
    json_t *items = json_object_get(j, "messages");
    if (resp.status != 200 || !json_is_array(items) ||
        !json_is_null(json_object_get(j, "next_cursor"))) {
        fprintf(stderr, "LEAK? %s -> %d %s\n", path, resp.status, resp.body);
        rc = -1;
    } else if (json_array_size(items) != n) {
        fprintf(stderr, "LEAK? %s lists %zu, want %zu: %s\n", path, json_array_size(items), n,
                resp.body);
        rc = -1;
    }
    for (size_t x = 0; rc == 0 && x < n; x++) {
        const char *mid = json_string_value(json_object_get(json_array_get(items, x), "id"));
        if (mid == NULL || strcmp(mid, want[x]) != 0) {
            fprintf(stderr, "LEAK? %s lists %s at %zu, want %s\n", path, mid ? mid : "?", x,
                    want[x]);
            rc = -1;
        }
    }
    json_decref(j);
    pf_http_response_clear(&resp);
    return rc;
}

static void test_cross_citizen_sweep(void **state)
{
    pf_env_fixture_t *fx = *state;
    static const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    pf_env_t *env = fx->env = pf_env_new("sweep", citizens);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    assert_int_equal(pf_env_start_reader(env, NULL), 0);
    fx->c = pf_env_client(env, "tax-office", NULL, 3000, 3);
    assert_non_null(fx->c);
    pf_client_t *c = fx->c;

    /* B's notices, each with two attachments and a read receipt wanted,
     * and A's between them (one before each of B's and one after all), so
     * a cursor made from B's id has some of A's notices before it */
    char b_ids[B_NOTICES][40], a_ids[A_NOTICES][40];
    const char *to_b[] = {"citizen-b"};
    pf_client_attachment_t atts[2] = {{"a.txt", "text/plain", "secret-b-1", 10},
                                      {"b.txt", "text/plain", "secret-b-2", 10}};
    for (int i = 0; i < B_NOTICES; i++) {
        s_send_a(c, i, a_ids[i]);
        char rid[32];
        snprintf(rid, sizeof(rid), "sweep-b-%d", i);
        pf_client_notice_t n = {.request_id = rid,
                                .recipients = to_b,
                                .recipient_count = 1,
                                .title = "B only",
                                .subject = "secret of B",
                                .body = "body of B",
                                .attachments = atts,
                                .attachment_count = 2,
                                .read_receipt = true};
        pf_client_result_t res;
        const char *err;
        assert_int_equal(pf_client_send(c, &n, &res, &err), 0);
        assert_true(res.ok);
        snprintf(b_ids[i], sizeof(b_ids[i]), "%s", res.copies[0].message_id);
        pf_client_result_clear(&res);
    }
    s_send_a(c, B_NOTICES, a_ids[B_NOTICES]);
    /* A's ids newest first: what A's listings must show (id order) */
    const char *a_sorted[A_NOTICES], *b_sorted[B_NOTICES];
    for (int i = 0; i < A_NOTICES; i++)
        a_sorted[i] = a_ids[i];
    for (int i = 0; i < B_NOTICES; i++)
        b_sorted[i] = b_ids[i];
    qsort(a_sorted, A_NOTICES, sizeof(a_sorted[0]), s_newest_first);
    qsort(b_sorted, B_NOTICES, sizeof(b_sorted[0]), s_newest_first);

    char *token_a = pf_env_token(env, "citizen-a"), *token_b = pf_env_token(env, "citizen-b");
    assert_non_null(token_a);
    assert_non_null(token_b);
    int port = pf_env_reader_port(env);
    const char *routes[] = {"", "/attachments/0", "/attachments/1", "/jwe"};
    const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
    static const char *const per_response[] = {"Date", NULL};

    /* positive control: A lists all its own notices and opens one */
    assert_int_equal(s_listing_is(port, "/v1/messages", token_a, a_sorted, A_NOTICES), 0);
    char path[256];
    pf_http_response_t own;
    snprintf(path, sizeof(path), "/v1/messages/%s", a_ids[0]);
    assert_int_equal(pf_http_get(port, path, token_a, &own), 0);
    assert_int_equal(own.status, 200);
    assert_non_null(strstr(own.body, "\"subject\":\"for A\""));
    pf_http_response_clear(&own);

    /* the canonical "does not exist" answer, per route */
    pf_http_response_t missing[4];
    char *missing_h[4];
    char fresh[PF_UUID_STRLEN + 1];
    pf_uuid7_generate(fresh);
    for (size_t r = 0; r < nroutes; r++) {
        snprintf(path, sizeof(path), "/v1/messages/%s%s", fresh, routes[r]);
        assert_int_equal(pf_http_get(port, path, token_a, &missing[r]), 0);
        assert_int_equal(missing[r].status, 404);
        missing_h[r] = pf_http_headers_except(&missing[r], per_response);
        assert_non_null(strstr(missing[r].headers, "\r\nDate: "));
    }

    int probes = 0, leaks = 0;
    for (int round = 0; round < 2 * B_NOTICES; round++) {
        char id[PF_UUID_STRLEN + 1];
        if (round < B_NOTICES)
            snprintf(id, sizeof(id), "%s", b_ids[round]);
        else
            pf_uuid7_generate(id); /* random ids, including ones "near" B's in time */
        for (size_t r = 0; r < nroutes; r++) {
            pf_http_response_t resp;
            snprintf(path, sizeof(path), "/v1/messages/%s%s", id, routes[r]);
            assert_int_equal(pf_http_get(port, path, token_a, &resp), 0);
            probes++;
            char *h = pf_http_headers_except(&resp, per_response);
            if (resp.status != missing[r].status || resp.body_len != missing[r].body_len ||
                memcmp(resp.body, missing[r].body, resp.body_len) != 0 ||
                strcmp(h, missing_h[r]) != 0 ||
                (resp.body && strstr(resp.body, "secret") != NULL)) {
                leaks++;
                fprintf(stderr, "LEAK: %s -> %s%s\n--- not as for a missing id ---\n%s%s\n", path,
                        h, resp.body, missing_h[r], missing[r].body);
            }
            free(h);
            pf_http_response_clear(&resp);
        }
    }
    /* listing with cursors made from B's ids: a cursor is opaque but a
     * well-formed one (docs/api.md: the encoding of an id, pages cut by
     * id), so 200 with exactly A's notices older than that id, never one
     * of B's; A's notices before B's make these lists not all empty */
    size_t listed = 0;
    for (int i = 0; i < B_NOTICES; i++) {
        char cur[PF_CURSOR_LEN + 1];
        assert_int_equal(pf_cursor_encode(b_ids[i], cur), 0);
        size_t first_older = 0;
        while (first_older < A_NOTICES && strcmp(a_sorted[first_older], b_ids[i]) > 0)
            first_older++;
        const char *forms[] = {"", "limit=100&"};
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof(path), "/v1/messages?%scursor=%s", forms[k], cur);
            probes++;
            if (s_listing_is(port, path, token_a, a_sorted + first_older,
                             A_NOTICES - first_older) != 0)
                leaks++;
        }
        listed += A_NOTICES - first_older;
    }
    assert_true(listed >= B_NOTICES);
    /* B's notices are untouched: unread, no read receipts */
    if (pf_env_sql_int(env, "SELECT count(*) FROM message WHERE mailbox_id = 'citizen-b' AND "
                            "read_at IS NOT NULL") != 0 ||
        pf_env_sql_int(env, "SELECT count(*) FROM receipt WHERE event = 'read'") != 0) {
        leaks++;
        fprintf(stderr, "LEAK: B's read state changed\n");
    }
    printf("%d probes over %zu routes: leaks %d\n", probes, nroutes + 1, leaks);
    assert_int_equal(leaks, 0);
    assert_true(probes >= 50);

    /* positive control, after the check above: B lists its own notices,
     * and opens one and its attachments on every route */
    assert_int_equal(s_listing_is(port, "/v1/messages", token_b, b_sorted, B_NOTICES), 0);
    const char *want[] = {"\"subject\":\"secret of B\"", "secret-b-1", "secret-b-2", "."};
    for (size_t r = 0; r < nroutes; r++) {
        snprintf(path, sizeof(path), "/v1/messages/%s%s", b_ids[0], routes[r]);
        assert_int_equal(pf_http_get(port, path, token_b, &own), 0);
        if (own.status != 200 || strstr(own.body, want[r]) == NULL)
            fail_msg("B opens its own %s: %d %s", path, own.status, own.body);
        pf_http_response_clear(&own);
    }

    for (size_t r = 0; r < nroutes; r++) {
        pf_http_response_clear(&missing[r]);
        free(missing_h[r]);
    }
    free(token_a);
    free(token_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cross_citizen_sweep, pf_env_fixture_setup,
                                        pf_env_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
