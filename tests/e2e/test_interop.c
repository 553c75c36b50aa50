/* Interop with an independent JOSE implementation (Debian's node-jose):
 *  - a stored copy fetched from /v1/messages/{id}/jwe decrypts in node-jose
 *    with the citizen's exported private JWK, for P-256 and RSA mailboxes;
 *  - a JWE made by node-jose for the citizen's public key, stored as a
 *    copy, is opened by our reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "postfach/postfach.h"
#include "util/b64url.h"

typedef struct {
    pf_env_t *env;
    pf_client_t *client;
} fixture_t;

static int setup(void **state)
{
    static const char *const citizens[] = {"citizen-ec", NULL};
    fixture_t *f = calloc(1, sizeof(*f));
    f->env = pf_env_new("interop", citizens);
    *state = f;
    char *out = NULL;
    if (pf_env_ctl(f->env, &out, "citizen", "add", "citizen-rsa", "--key-type", "rsa3072", NULL) !=
        0)
        return -1;
    free(out);
    if (pf_env_start_broker(f->env, NULL) != 0 || pf_env_start_reader(f->env, NULL) != 0)
        return -1;
    f->client = pf_env_client(f->env, "tax-office", NULL, 3000, 3);
    *state = f;
    return f->client ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pf_client_destroy(&f->client);
    return pf_fixture_end(f->env, NULL, f);
}

static char *s_path(fixture_t *f, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", pf_env_dir(f->env), name) < 0)
        abort();
    return p;
}

static void s_write(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* Runs node with the interop script; stdout into *out_r. */
static int s_node(const char *cmd, const char *keyfile, const char *datafile, char **out_r)
{
    char *root = getenv("PF_ROOT") ? getenv("PF_ROOT") : ".";
    char *script = NULL, *outfile = NULL, *line = NULL;
    if (asprintf(&script, "%s/tests/interop/mailbox_jwe.js", root) < 0 ||
        asprintf(&outfile, "%s.out", datafile) < 0 ||
        asprintf(&line, "NODE_PATH=/usr/share/nodejs node '%s' %s '%s' '%s' > '%s'", script, cmd,
                 keyfile, datafile, outfile) < 0)
        abort();
    int rc = system(line);
    *out_r = pf_test_read_file(outfile, NULL);
    free(script);
    free(outfile);
    free(line);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void s_our_copy_opens_in_node(fixture_t *f, const char *citizen)
{
    const char *to[] = {citizen};
    pf_client_notice_t n = {.request_id = citizen,
                            .recipients = to,
                            .recipient_count = 1,
                            .title = "Interop",
                            .subject = "Betreff äöü",
                            .body = "Text"};
    pf_client_result_t res;
    const char *err;
    assert_int_equal(pf_client_send(f->client, &n, &res, &err), 0);
    assert_true(res.ok);
    char *token = pf_env_token(f->env, citizen), path[200];
    snprintf(path, sizeof(path), "/v1/messages/%s/jwe", res.copies[0].message_id);
    pf_client_result_clear(&res);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(pf_env_reader_port(f->env), path, token, &r), 0);
    assert_int_equal(r.status, 200);
    free(token);

    char *jwk = NULL;
    assert_int_equal(pf_env_ctl(f->env, &jwk, "citizen", "export-key", citizen, NULL), 0);
    char *keyfile = s_path(f, "citizen.jwk"), *jwefile = s_path(f, "copy.jwe");
    s_write(keyfile, jwk, strlen(jwk));
    s_write(jwefile, r.body, r.body_len);
    pf_http_response_clear(&r);
    char *plain = NULL;
    assert_int_equal(s_node("decrypt", keyfile, jwefile, &plain), 0);
    json_error_t e;
    json_t *doc = json_loads(plain, 0, &e);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "subject")), "Betreff äöü");
    assert_string_equal(json_string_value(json_object_get(doc, "body")), "Text");
    json_decref(doc);
    free(plain);
    free(jwk);
    free(keyfile);
    free(jwefile);
}

static void test_stored_p256_copy_decrypts_in_node_jose(void **state)
{
    s_our_copy_opens_in_node(*state, "citizen-ec");
}

static void test_stored_rsa_copy_decrypts_in_node_jose(void **state)
{
    s_our_copy_opens_in_node(*state, "citizen-rsa");
}

static char *s_hex(const char *b64, size_t len)
{
    unsigned char *raw;
    size_t n;
    assert_int_equal(pf_b64url_decode(b64, len, &raw, &n), 0);
    char *hex = malloc(n * 2 + 3);
    strcpy(hex, "\\x");
    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 + i * 2, "%02x", raw[i]);
    free(raw);
    return hex;
}

static void s_node_copy_opens_in_reader(fixture_t *f, const char *citizen)
{
    char *pub = NULL;
    assert_int_equal(pf_env_ctl(f->env, &pub, "citizen", "public-key", citizen, NULL), 0);
    char *keyfile = s_path(f, "public.jwk"), *docfile = s_path(f, "notice.json");
    s_write(keyfile, pub, strlen(pub));
    const char *doc = "{\"v\":1,\"title\":\"Von node-jose\",\"subject\":\"Fremd verschlüsselt\","
                      "\"body\":\"Hallo\",\"reference\":\"X-1\",\"sender\":\"tax-office\","
                      "\"sent_at\":\"2026-11-22T08:00:00Z\",\"attachments\":[{\"name\":\"a.txt\","
                      "\"media_type\":\"text/plain\",\"size\":2,\"data\":\"aGk=\"}]}";
    s_write(docfile, doc, strlen(doc));
    char *jwe = NULL;
    assert_int_equal(s_node("encrypt", keyfile, docfile, &jwe), 0);

    /* split the compact form into the stored columns */
    char *parts[5];
    char *save = NULL, *p = jwe;
    for (int i = 0; i < 5; i++) {
        parts[i] = strsep(&p, ".");
        assert_non_null(parts[i]);
    }
    (void)save;
    char *ek = s_hex(parts[1], strlen(parts[1])), *iv = s_hex(parts[2], strlen(parts[2]));
    char *ct = s_hex(parts[3], strlen(parts[3])), *tag = s_hex(parts[4], strlen(parts[4]));
    char id[] = "01900000-0000-7000-8000-00000000abcd";
    char *sql = NULL;
    if (asprintf(&sql,
                 "INSERT INTO message (mailbox_id, id, sender_id, request_id, title, reference, "
                 "read_receipt, size, attachment_count, key_version, jwe_protected, "
                 "jwe_encrypted_key, jwe_iv, jwe_ciphertext, jwe_tag) SELECT '%s', '%s', id, "
                 "'node-1', 'Von node-jose', 'X-1', false, %zu, 1, 1, '%s', '%s', '%s', '%s', "
                 "'%s' FROM sender WHERE name = 'tax-office' RETURNING 1",
                 citizen, id, strlen(doc), parts[0], ek, iv, ct, tag) < 0)
        abort();
    char *ok = pf_env_sql(f->env, sql);
    assert_non_null(ok);
    free(ok);
    free(sql);

    char *token = pf_env_token(f->env, citizen), path[200];
    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    pf_http_response_t r;
    assert_int_equal(pf_http_get(pf_env_reader_port(f->env), path, token, &r), 0);
    if (r.status != 200)
        fail_msg("reader could not open node-jose's JWE: %d %s", r.status, r.body);
    json_error_t e;
    json_t *m = json_loadb(r.body, r.body_len, 0, &e);
    assert_string_equal(json_string_value(json_object_get(m, "subject")), "Fremd verschlüsselt");
    json_decref(m);
    pf_http_response_clear(&r);
    snprintf(path, sizeof(path), "/v1/messages/%s/attachments/0", id);
    assert_int_equal(pf_http_get(pf_env_reader_port(f->env), path, token, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "hi", 2);
    pf_http_response_clear(&r);
    /* clean up so the other key type's case can reuse the id */
    ok = pf_env_sql(f->env, "DELETE FROM message WHERE request_id = 'node-1' RETURNING 1");
    free(ok);
    free(token);
    free(ek);
    free(iv);
    free(ct);
    free(tag);
    free(jwe);
    free(pub);
    free(keyfile);
    free(docfile);
}

static void test_node_jose_p256_copy_opens_in_reader(void **state)
{
    s_node_copy_opens_in_reader(*state, "citizen-ec");
}

static void test_node_jose_rsa_copy_opens_in_reader(void **state)
{
    s_node_copy_opens_in_reader(*state, "citizen-rsa");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stored_p256_copy_decrypts_in_node_jose),
        cmocka_unit_test(test_stored_rsa_copy_decrypts_in_node_jose),
        cmocka_unit_test(test_node_jose_p256_copy_opens_in_reader),
        cmocka_unit_test(test_node_jose_rsa_copy_opens_in_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
