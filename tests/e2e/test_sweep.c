/* Cross-citizen sweep (issue 3): citizen A's token against every route of
 * the reader with citizen B's message ids, with random ids and with cursors
 * made from B's ids.  A "leak" is any answer that is not exactly the
 * answer for a message that does not exist (same status, same body), any
 * listing entry that is not A's own, or any change to B's notices (read
 * state, receipts).  Prints "N probes over K routes: leaks 0". */
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

static void test_cross_citizen_sweep(void **state)
{
    (void)state;
    static const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    pf_env_t *env = pf_env_new("sweep", citizens);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    assert_int_equal(pf_env_start_reader(env, NULL), 0);
    char *pub = pf_env_broker_pubfile(env), *key = pf_env_sender_keyfile(env, "tax-office");
    pf_client_t *c = NULL;
    const char *err;
    assert_int_equal(pf_client_new(pf_env_broker_endpoint(env), pub, key, &c, &err), 0);
    free(pub);
    free(key);

    /* B's notices, each with two attachments and a read receipt wanted */
    char b_ids[B_NOTICES][40];
    const char *to_b[] = {"citizen-b"}, *to_a[] = {"citizen-a"};
    pf_client_attachment_t atts[2] = {{"a.txt", "text/plain", "secret-b-1", 10},
                                      {"b.txt", "text/plain", "secret-b-2", 10}};
    for (int i = 0; i < B_NOTICES; i++) {
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
        assert_int_equal(pf_client_send(c, &n, &res, &err), 0);
        assert_true(res.ok);
        snprintf(b_ids[i], sizeof(b_ids[i]), "%s", res.copies[0].message_id);
        pf_client_result_clear(&res);
    }
    /* and one of A's own, so A's listing is not trivially empty */
    pf_client_notice_t na = {.request_id = "sweep-a",
                             .recipients = to_a,
                             .recipient_count = 1,
                             .title = "A's",
                             .subject = "for A",
                             .body = "A"};
    pf_client_result_t ra;
    assert_int_equal(pf_client_send(c, &na, &ra, &err), 0);
    assert_true(ra.ok);
    char a_id[40];
    snprintf(a_id, sizeof(a_id), "%s", ra.copies[0].message_id);
    pf_client_result_clear(&ra);

    char *token_a = pf_env_token(env, "citizen-a");
    int port = pf_env_reader_port(env);
    const char *routes[] = {"", "/attachments/0", "/attachments/1", "/jwe"};
    const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

    /* the canonical "does not exist" answer, per route */
    pf_http_response_t missing[4];
    char fresh[PF_UUID_STRLEN + 1], path[256];
    pf_uuid7_generate(fresh);
    for (size_t r = 0; r < nroutes; r++) {
        snprintf(path, sizeof(path), "/v1/messages/%s%s", fresh, routes[r]);
        assert_int_equal(pf_http_get(port, path, token_a, &missing[r]), 0);
        assert_int_equal(missing[r].status, 404);
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
            if (resp.status != missing[r].status || resp.body_len != missing[r].body_len ||
                memcmp(resp.body, missing[r].body, resp.body_len) != 0 ||
                (resp.body && strstr(resp.body, "secret") != NULL)) {
                leaks++;
                fprintf(stderr, "LEAK: %s -> %d %s\n", path, resp.status, resp.body);
            }
            pf_http_response_clear(&resp);
        }
    }
    /* listing with cursors made from B's ids: only A's own notice, ever */
    for (int i = 0; i < B_NOTICES; i++) {
        char cur[PF_CURSOR_LEN + 1];
        assert_int_equal(pf_cursor_encode(b_ids[i], cur), 0);
        const char *forms[] = {"", "limit=100&"};
        for (int k = 0; k < 2; k++) {
            pf_http_response_t resp;
            snprintf(path, sizeof(path), "/v1/messages?%scursor=%s", forms[k], cur);
            assert_int_equal(pf_http_get(port, path, token_a, &resp), 0);
            probes++;
            json_error_t je;
            json_t *j = resp.status == 200 ? json_loadb(resp.body, resp.body_len, 0, &je) : NULL;
            json_t *items = json_object_get(j, "messages");
            for (size_t x = 0; x < json_array_size(items); x++) {
                const char *mid =
                    json_string_value(json_object_get(json_array_get(items, x), "id"));
                if (mid == NULL || strcmp(mid, a_id) != 0) {
                    leaks++;
                    fprintf(stderr, "LEAK: %s lists %s\n", path, mid ? mid : "?");
                }
            }
            if (resp.status != 200 && resp.status != 400) {
                leaks++;
                fprintf(stderr, "unexpected %d for %s\n", resp.status, path);
            }
            json_decref(j);
            pf_http_response_clear(&resp);
        }
    }
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

    for (size_t r = 0; r < nroutes; r++)
        pf_http_response_clear(&missing[r]);
    free(token_a);
    pf_client_destroy(&c);
    pf_env_destroy(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_citizen_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
