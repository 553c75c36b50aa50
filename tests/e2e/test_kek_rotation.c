/* KEK rotation without downtime (issue 3): while the reader runs,
 * `postfach-ctl kek rotate` puts a new KEK in front of the keyring and
 * rewraps every stored private key; the running reader picks the new KEK
 * up by itself and keeps opening old and new notices; the old KEK can be
 * retired afterwards and not before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "postfach/postfach.h"

static char *s_send(pf_env_t *env, pf_client_t *c, const char *to, const char *rid)
{
    const char *rcpt[] = {to};
    pf_client_notice_t n = {.request_id = rid,
                            .recipients = rcpt,
                            .recipient_count = 1,
                            .title = "KEK",
                            .subject = "rotation",
                            .body = "still readable"};
    pf_client_result_t res;
    const char *err;
    assert_int_equal(pf_client_send(c, &n, &res, &err), 0);
    assert_true(res.ok);
    char *id = strdup(res.copies[0].message_id);
    pf_client_result_clear(&res);
    (void)env;
    return id;
}

static int s_open(pf_env_t *env, const char *token, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(pf_env_reader_port(env), path, token, &r), 0);
    int status = r.status;
    if (status != 200)
        fprintf(stderr, "open %s: %d %s\n", id, r.status, r.body);
    else
        assert_non_null(strstr(r.body, "still readable"));
    pf_http_response_clear(&r);
    return status;
}

static void test_rotate_while_serving(void **state)
{
    pf_env_fixture_t *f = *state;
    static const char *const citizens[] = {"citizen-a", "citizen-b", NULL};
    pf_env_t *env = f->env = pf_env_new("kek", citizens);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    assert_int_equal(pf_env_start_reader(env, NULL), 0);
    f->c = pf_env_client(env, "tax-office", NULL, 3000, 3);
    assert_non_null(f->c);
    pf_client_t *c = f->c;
    char *token_a = pf_env_token(env, "citizen-a"), *token_b = pf_env_token(env, "citizen-b");
    char *old_id = pf_env_sql(env, "SELECT kek_id FROM mailbox_secret LIMIT 1");
    assert_non_null(old_id);

    char *a1 = s_send(env, c, "citizen-a", "kek-1");
    char *b1 = s_send(env, c, "citizen-b", "kek-2");
    assert_int_equal(s_open(env, token_a, a1), 200);

    char *out = NULL;
    /* the current KEK cannot be retired */
    assert_int_equal(pf_env_ctl(env, &out, "kek", "retire", old_id, NULL), 1);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "kek", "rotate", "--id", "kek-next", NULL), 0);
    assert_non_null(strstr(out, "rewrapped 2 keys"));
    free(out);
    assert_int_equal(
        pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret WHERE kek_id <> 'kek-next'"), 0);

    /* the reader, never restarted, opens notices made before and after */
    assert_int_equal(s_open(env, token_a, a1), 200);
    assert_int_equal(s_open(env, token_b, b1), 200);
    char *a2 = s_send(env, c, "citizen-a", "kek-3");
    assert_int_equal(s_open(env, token_a, a2), 200);
    assert_true(pf_env_reader_alive(env));

    /* a new mailbox is wrapped under the new KEK; the old one can go now */
    assert_int_equal(pf_env_ctl(env, &out, "citizen", "add", "citizen-c", NULL), 0);
    free(out);
    assert_int_equal(
        pf_env_sql_int(env, "SELECT count(*) FROM mailbox_secret WHERE mailbox_id = 'citizen-c' "
                            "AND kek_id = 'kek-next'"),
        1);
    assert_int_equal(pf_env_ctl(env, &out, "kek", "retire", old_id, NULL), 0);
    free(out);
    assert_int_equal(pf_env_ctl(env, &out, "kek", "status", NULL), 0);
    assert_non_null(strstr(out, "current KEK: kek-next"));
    assert_null(strstr(out, old_id));
    free(out);
    assert_int_equal(s_open(env, token_b, b1), 200);
    /* rotating again is a no-op rewrap when nothing is stale */
    assert_int_equal(pf_env_ctl(env, &out, "kek", "rewrap", NULL), 0);
    assert_non_null(strstr(out, "rewrapped 0 keys"));
    free(out);

    free(a1);
    free(a2);
    free(b1);
    free(old_id);
    free(token_a);
    free(token_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotate_while_serving, pf_env_fixture_setup,
                                        pf_env_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
