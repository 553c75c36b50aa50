/* pf-jose-tool: drives lib/crypto, lib/auth and lib/receipt from the
 * interop test (tests/interop/jose_interop.js), which checks them against
 * node-jose in both directions.  Not installed; built by run_jose.sh.
 *
 * Commands (files are paths; results on stdout, errors on stderr):
 *   genkey p256|rsa3072|rsa4096 OUT.jwk   write a new private JWK
 *   kid JWK                               print the RFC 7638 thumbprint
 *   jwks JWK                              print {"keys":[public JWK]}
 *   seal JWK CTY|- PLAINTEXT              print a compact JWE
 *   open JWK JWE                          print the plaintext bytes
 *   sign JWK TYP|- PAYLOAD                print a compact ES256 JWS
 *   mint JWK ISS AUD SUB LEVEL NOW TTL    print a development token
 *   receipt JWK ISS SENDER MAILBOX EVENT  print a signed receipt
 *   verify-token JWKS ISS AUD NOW TOKEN   print {"sub","level","exp"}
 *   verify-receipt JWKS ISS TOKEN         print the receipt's fields
 * Exit status: 0 ok, 1 refused/failed (message on stderr), 2 usage. */
#include "auth/token.h"
#include "crypto/jose.h"
#include "receipt/receipt.h"
#include "util/fileio.h"
#include "util/uuid7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILE (64 * 1024 * 1024)

static char *s_read(const char *path, size_t *len_r)
{
    char *data = NULL;
    size_t len = 0;
    const char *err;
    if (pf_file_read(path, MAX_FILE, &data, &len, &err) != 0) {
        fprintf(stderr, "cannot read %s: %s\n", path, err);
        exit(1);
    }
    if (len_r)
        *len_r = len;
    return data;
}

/* A compact token or JWK from a file, without its trailing newline. */
static char *s_read_text(const char *path, size_t *len_r)
{
    char *s = s_read(path, NULL);
    pf_str_rtrim(s);
    *len_r = strlen(s);
    return s;
}

static pf_key_t *s_key(const char *path)
{
    size_t len;
    char *j = s_read_text(path, &len);
    pf_key_t *key = NULL;
    const char *err;
    if (pf_key_from_jwk(j, len, &key, &err) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", path, err);
        exit(1);
    }
    pf_wipe(j, len);
    free(j);
    return key;
}

static pf_keyset_t *s_keys(const char *path)
{
    size_t len;
    char *j = s_read_text(path, &len);
    pf_keyset_t *set = pf_keyset_new();
    const char *err;
    if (pf_keyset_add_jwks(set, j, len, true, &err) < 0) {
        fprintf(stderr, "cannot load %s: %s\n", path, err);
        exit(1);
    }
    free(j);
    return set;
}

static int s_fail(const char *what, const char *err)
{
    fprintf(stderr, "%s: %s\n", what, err);
    return 1;
}

static int s_usage(void)
{
    fputs("usage: pf-jose-tool COMMAND ARGS... (see the source)\n", stderr);
    return 2;
}

static int s_genkey(const char *kind, const char *out)
{
    pf_key_kind_t k;
    if (strcmp(kind, "p256") == 0)
        k = PF_KEY_P256;
    else if (strcmp(kind, "rsa3072") == 0)
        k = PF_KEY_RSA3072;
    else if (strcmp(kind, "rsa4096") == 0)
        k = PF_KEY_RSA4096;
    else
        return s_usage();
    pf_key_t *key = NULL;
    const char *err;
    if (pf_key_generate(k, &key, &err) != 0)
        return s_fail("genkey", err);
    char *jwk = pf_key_to_jwk(key, true);
    int rc = pf_file_write(out, jwk, strlen(jwk), 0600, &err);
    pf_wipe(jwk, strlen(jwk));
    free(jwk);
    pf_key_destroy(&key);
    return rc == 0 ? 0 : s_fail("genkey", err);
}

static int s_seal(const char *jwk, const char *cty, const char *file)
{
    pf_key_t *key = s_key(jwk);
    size_t len;
    char *pt = s_read(file, &len);
    pf_jwe_t *jwe = NULL;
    const char *err;
    int rc = pf_jwe_seal(key, strcmp(cty, "-") == 0 ? NULL : cty, pt, len, &jwe, &err);
    if (rc == 0) {
        char *c = pf_jwe_compact(jwe);
        printf("%s\n", c);
        free(c);
    }
    pf_jwe_destroy(&jwe);
    free(pt);
    pf_key_destroy(&key);
    return rc == 0 ? 0 : s_fail("seal", err);
}

static int s_open(const char *jwk, const char *file)
{
    pf_key_t *key = s_key(jwk);
    size_t len;
    char *c = s_read_text(file, &len);
    pf_jwe_t *jwe = NULL;
    unsigned char *pt = NULL;
    size_t ptlen = 0;
    const char *err;
    int rc = pf_jwe_parse_compact(c, len, &jwe, &err);
    if (rc == 0)
        rc = pf_jwe_open(key, jwe, &pt, &ptlen, &err);
    if (rc == 0) {
        fwrite(pt, 1, ptlen, stdout);
        pf_wipe(pt, ptlen);
        free(pt);
    }
    pf_jwe_destroy(&jwe);
    free(c);
    pf_key_destroy(&key);
    return rc == 0 ? 0 : s_fail("open", err);
}

static int s_sign(const char *jwk, const char *typ, const char *file)
{
    pf_key_t *key = s_key(jwk);
    size_t len;
    char *p = s_read(file, &len);
    const char *err;
    char *jws = pf_jws_sign(key, strcmp(typ, "-") == 0 ? NULL : typ, p, len, &err);
    if (jws != NULL)
        printf("%s\n", jws);
    free(jws);
    free(p);
    pf_key_destroy(&key);
    return jws != NULL ? 0 : s_fail("sign", err);
}

static int s_mint(char **a)
{
    pf_key_t *key = s_key(a[0]);
    pf_level_t level = PF_LEVEL_NONE;
    if (strcmp(a[4], "none") != 0 && pf_level_parse(a[4], &level) != 0)
        return s_usage();
    const char *err;
    char *tok =
        pf_token_mint(key, a[1], a[2], a[3], level, strtoll(a[5], NULL, 10), atoi(a[6]), &err);
    if (tok != NULL)
        printf("%s\n", tok);
    free(tok);
    pf_key_destroy(&key);
    return tok != NULL ? 0 : s_fail("mint", err);
}

static int s_receipt(char **a)
{
    pf_key_t *key = s_key(a[0]);
    pf_receipt_t r;
    memset(&r, 0, sizeof(r));
    pf_uuid7_generate(r.jti);
    pf_uuid7_generate(r.message_id);
    r.txn = "interop-request-1";
    r.sender = a[2];
    r.mailbox = a[3];
    if (pf_event_parse(a[4], &r.event) != 0)
        return s_usage();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r.event_time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    r.iat = ts.tv_sec;
    r.jwe_tag = "AAECAwQFBgcICQoLDA0ODw";
    const char *err;
    char *tok = pf_receipt_sign(key, a[1], &r, &err);
    if (tok != NULL)
        printf("%s\n", tok);
    free(tok);
    pf_key_destroy(&key);
    return tok != NULL ? 0 : s_fail("receipt", err);
}

static int s_verify_token(char **a)
{
    pf_keyset_t *keys = s_keys(a[0]);
    static const char *const algs[] = {"ES256", "PS256", "RS256", NULL};
    pf_token_policy_t p = {.keys = keys,
                           .issuer = a[1],
                           .audience = a[2],
                           .skew_seconds = 60,
                           .algs = algs,
                           .max_lifetime_seconds = 0};
    size_t len;
    char *tok = s_read_text(a[4], &len);
    pf_token_claims_t c;
    const char *err;
    int rc = pf_token_verify(&p, tok, len, strtoll(a[3], NULL, 10), &c, &err);
    if (rc == 0)
        printf("{\"sub\":\"%s\",\"level\":\"%s\",\"exp\":%lld}\n", c.subject,
               pf_level_name(c.level), (long long)c.exp);
    free(tok);
    pf_keyset_destroy(&keys);
    return rc == 0 ? 0 : s_fail("verify-token", err);
}

static int s_verify_receipt(char **a)
{
    pf_keyset_t *keys = s_keys(a[0]);
    size_t len;
    char *tok = s_read_text(a[2], &len);
    pf_receipt_t r;
    const char *err;
    int rc = pf_receipt_verify(tok, len, keys, a[1], &r, &err);
    if (rc == 0)
        printf("{\"jti\":\"%s\",\"event\":\"%s\",\"sub\":\"%s\",\"time_ms\":%lld}\n", r.jti,
               pf_event_name(r.event), r.message_id, (long long)r.event_time_ms);
    pf_receipt_clear(&r);
    free(tok);
    pf_keyset_destroy(&keys);
    return rc == 0 ? 0 : s_fail("verify-receipt", err);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return s_usage();
    const char *cmd = argv[1];
    char **a = argv + 2;
    int n = argc - 2;
    if (strcmp(cmd, "genkey") == 0 && n == 2)
        return s_genkey(a[0], a[1]);
    if ((strcmp(cmd, "kid") == 0 || strcmp(cmd, "jwks") == 0) && n == 1) {
        pf_key_t *key = s_key(a[0]);
        if (strcmp(cmd, "kid") == 0) {
            printf("%s\n", pf_key_kid(key));
        } else {
            pf_keyset_t *set = pf_keyset_new();
            pf_keyset_add(set, key, NULL);
            char *j = pf_keyset_to_jwks(set);
            printf("%s\n", j);
            free(j);
            pf_keyset_destroy(&set);
        }
        pf_key_destroy(&key);
        return 0;
    }
    if (strcmp(cmd, "seal") == 0 && n == 3)
        return s_seal(a[0], a[1], a[2]);
    if (strcmp(cmd, "open") == 0 && n == 2)
        return s_open(a[0], a[1]);
    if (strcmp(cmd, "sign") == 0 && n == 3)
        return s_sign(a[0], a[1], a[2]);
    if (strcmp(cmd, "mint") == 0 && n == 7)
        return s_mint(a);
    if (strcmp(cmd, "receipt") == 0 && n == 5)
        return s_receipt(a);
    if (strcmp(cmd, "verify-token") == 0 && n == 5)
        return s_verify_token(a);
    if (strcmp(cmd, "verify-receipt") == 0 && n == 3)
        return s_verify_receipt(a);
    return s_usage();
}
