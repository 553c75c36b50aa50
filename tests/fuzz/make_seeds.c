/* Writes the seed corpora of fuzz_jwe, fuzz_jws, fuzz_jwk, fuzz_notice,
 * fuzz_kek and fuzz_zap into tests/fuzz/corpus/<name>/: a handful of real,
 * valid inputs made with the fixed keys of tests/data/jose (and the fixed
 * KEK of support.h) and the project's own code (plus the node-jose
 * vectors), and a few broken ones.  Run by tests/fuzz/make-seeds.sh; the
 * output is checked in, so this runs only when the seeds should change.
 * JWE, signatures and wrapped keys are randomised, so every run writes
 * different (equally valid) bytes: name the corpora to write
 * (`make_seeds DIR kek zap`) to leave the others as they are. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "crypto/jose.h"
#include "proto/notice.h"
#include "receipt/receipt.h"
#include "support.h"
#include "util/b64url.h"

static const char *s_dir = "tests/fuzz/corpus";

static void s_put(const char *corpus, const char *name, const void *data, size_t len)
{
    char *path = xasprintf("%s/%s/%s", s_dir, corpus, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write \"%s\"\n", path);
        exit(1);
    }
    free(path);
}

static void s_puts(const char *corpus, const char *name, const char *s)
{
    s_put(corpus, name, s, strlen(s));
}

/* A fixture file without its trailing newline. */
static void s_copy(const char *corpus, const char *name, const char *rel)
{
    char *d = pf_fuzz_data(rel, NULL);
    pf_str_rtrim(d);
    s_puts(corpus, name, d);
    free(d);
}

static char *s_b64(const char *s)
{
    return pf_b64url_encode(s, strlen(s));
}

/* header.payload.signature with the given header and payload JSON and a
 * signature of sig_bytes zero bytes (0: empty). */
static char *s_unsigned(const char *hdr, const char *payload, size_t sig_bytes)
{
    unsigned char zero[64] = {0};
    char *h = s_b64(hdr), *p = s_b64(payload), *s = pf_b64url_encode(zero, sig_bytes);
    char *out = xasprintf("%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return out;
}

static char *s_seal(const pf_key_t *key, const char *plain)
{
    pf_jwe_t *jwe = NULL;
    const char *err = NULL;
    if (pf_jwe_seal(key, PF_NOTICE_CTY, plain, strlen(plain), &jwe, &err) != 0)
        abort();
    char *c = pf_jwe_compact(jwe);
    pf_jwe_destroy(&jwe);
    return c;
}

static void s_jwe(const char *notice)
{
    pf_key_t *p256 = pf_fuzz_key("jose/enc-p256.jwk"), *rsa = pf_fuzz_key("jose/enc-rsa3072.jwk");
    pf_key_t *stranger = NULL;
    const char *err = NULL;
    if (pf_key_generate(PF_KEY_P256, &stranger, &err) != 0)
        abort();
    s_copy("jwe", "node_ecdh", "jose/ecdh-es-a256kw.jwe");
    s_copy("jwe", "node_ecdh_apu_apv", "jose/ecdh-es-a256kw-apu-apv.jwe");
    s_copy("jwe", "node_rsa", "jose/rsa-oaep-256.jwe");
    char *c = s_seal(p256, notice);
    s_puts("jwe", "seal_p256", c);
    /* broken: the tag's last character changed, one part missing, one
     * part too many */
    char *t = xstrdup(c);
    t[strlen(t) - 1] = t[strlen(t) - 1] == 'A' ? 'B' : 'A';
    s_puts("jwe", "bad_tag", t);
    *strrchr(t, '.') = '\0';
    s_puts("jwe", "four_parts", t);
    free(t);
    t = xasprintf("%s.AAAA", c);
    s_puts("jwe", "six_parts", t);
    free(t);
    free(c);
    c = s_seal(rsa, notice);
    s_puts("jwe", "seal_rsa3072", c);
    free(c);
    c = s_seal(stranger, "for somebody else");
    s_puts("jwe", "seal_foreign_key", c);
    free(c);
    /* a header with "zip" (refused) and a dir/A128GCM header */
    char *h = s_b64("{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"zip\":\"DEF\"}");
    t = xasprintf("%s.%s.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", h,
                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    s_puts("jwe", "zip_header", t);
    free(t);
    free(h);
    h = s_b64("{\"alg\":\"dir\",\"enc\":\"A128GCM\"}");
    t = xasprintf("%s..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", h);
    s_puts("jwe", "dir_a128gcm", t);
    free(t);
    free(h);
    pf_key_destroy(&p256);
    pf_key_destroy(&rsa);
    pf_key_destroy(&stranger);
}

static void s_jws(void)
{
    pf_key_t *es = pf_fuzz_key("jose/idp-es256.jwk");
    const char *err = NULL;
    s_copy("jws", "node_es256", "jose/es256.jwt");
    s_copy("jws", "node_ps256", "jose/ps256.jwt");
    s_copy("jws", "node_rs256", "jose/rs256.jwt");
    char *t = pf_token_mint(es, "https://idp.example.de", "postfach", "citizen-a", PF_LEVEL_HOCH,
                            1700000000, 600, &err);
    s_puts("jws", "token_minted", t);
    free(t);
    t = pf_token_mint(es, "https://idp.example.de", "postfach", "citizen-a", PF_LEVEL_NORMAL,
                      1600000000, 600, &err);
    s_puts("jws", "token_expired", t);
    free(t);
    pf_receipt_t r = {.jti = "01890a5d-ac96-774b-bcce-b302099a8057",
                      .message_id = "01890a5d-ac96-774b-bcce-b302099a8058",
                      .txn = "req-1",
                      .sender = "tax-office",
                      .mailbox = "citizen-a",
                      .event = PF_EVENT_DELIVERED,
                      .event_time_ms = INT64_C(1700000000123),
                      .iat = 1700000000,
                      .jwe_tag = "AAAAAAAAAAAAAAAAAAAAAA"};
    t = pf_receipt_sign(es, "https://postfach.local", &r, &err);
    s_puts("jws", "receipt_delivered", t);
    free(t);
    r.event = PF_EVENT_REJECTED;
    r.jwe_tag = NULL;
    r.txn = NULL;
    t = pf_receipt_sign(es, "https://postfach.local", &r, &err);
    s_puts("jws", "receipt_rejected", t);
    free(t);
    /* a receipt's claims under typ JWT, and token claims under typ
     * secevent+jwt: each must be refused by the other verifier */
    const char *claims = "{\"iss\":\"https://idp.example.de\",\"aud\":\"postfach\","
                         "\"sub\":\"citizen-a\",\"exp\":1700000600}";
    t = pf_jws_sign(es, "secevent+jwt", claims, strlen(claims), &err);
    s_puts("jws", "token_as_secevent", t);
    free(t);
    /* broken: alg none, HS256, a signature of zeros, two parts */
    t = s_unsigned("{\"alg\":\"none\"}", claims, 0);
    s_puts("jws", "alg_none", t);
    free(t);
    t = s_unsigned("{\"alg\":\"HS256\",\"kid\":\"idp-es\"}", claims, 32);
    s_puts("jws", "hs256", t);
    free(t);
    t = s_unsigned("{\"alg\":\"ES256\",\"kid\":\"idp-es\",\"crit\":[\"exp\"]}", claims, 64);
    s_puts("jws", "crit_zero_sig", t);
    *strrchr(t, '.') = '\0';
    s_puts("jws", "two_parts", t);
    free(t);
    pf_key_destroy(&es);
}

static void s_jwk(void)
{
    s_copy("jwk", "enc_p256_private", "jose/enc-p256.jwk");
    s_copy("jwk", "enc_rsa3072_private", "jose/enc-rsa3072.jwk");
    s_copy("jwk", "idp_es256_private", "jose/idp-es256.jwk");
    s_copy("jwk", "idp_jwks", "jose/idp.jwks");
    pf_key_t *k = pf_fuzz_key("jose/enc-rsa3072.jwk");
    char *pub = pf_key_to_jwk(k, false);
    s_puts("jwk", "rsa3072_public", pub);
    char *set = xasprintf("{\"keys\":[%s,{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"},"
                          "{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
                          pub);
    s_puts("jwk", "jwks_mixed", set);
    free(set);
    free(pub);
    pf_key_destroy(&k);
    /* broken: a point off the curve, a duplicate kid, a multi-prime key,
     * no kty, not JSON */
    s_puts(
        "jwk", "ec_off_curve",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\","
        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}");
    char *p = pf_fuzz_data("jose/enc-p256.jwk", NULL);
    pf_str_rtrim(p);
    set = xasprintf("{\"keys\":[%.*s,\"kid\":\"a\"},%.*s,\"kid\":\"a\"}]}", (int)strlen(p) - 1, p,
                    (int)strlen(p) - 1, p);
    s_puts("jwk", "jwks_same_key_twice", set);
    free(set);
    free(p);
    s_puts("jwk", "rsa_oth",
           "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\",\"oth\":[]}");
    s_puts("jwk", "no_kty", "{\"crv\":\"P-256\"}");
    s_puts("jwk", "not_json", "{\"kty\":\"EC\",");
}

static char *s_notice(size_t natt)
{
    pf_attachment_t att[2] = {
        {.name = "bescheid.pdf",
         .media_type = "application/pdf",
         .data = (unsigned char *)"%PDF-1.7 ...",
         .size = 12},
        {.name = "leer.txt", .media_type = "text/plain", .data = NULL, .size = 0},
    };
    pf_notice_t n = {.title = "Baugenehmigung",
                     .subject = "Ihr Antrag vom 3. Mai",
                     .body = "Ihr Antrag ist genehmigt.\nMit freundlichen Gr\xc3\xbc\xc3\x9f"
                             "en",
                     .reference = "BA-2026-17",
                     .sender = "tax-office",
                     .sent_at = "2026-05-03T10:00:00.000Z",
                     .attachments = att,
                     .attachment_count = natt};
    return pf_notice_encode(&n, NULL);
}

static void s_notices(void)
{
    char *n = s_notice(2);
    s_puts("notice", "two_attachments", n);
    free(n);
    n = s_notice(0);
    s_puts("notice", "no_attachments", n);
    free(n);
    /* broken: a declared size that is not the data's, a wrong version, a
     * missing field, a non-object attachment, not an object */
    s_puts("notice", "size_mismatch",
           "{\"v\":1,\"title\":\"t\",\"subject\":\"s\",\"body\":\"b\",\"reference\":\"\","
           "\"sender\":\"x\",\"sent_at\":\"\",\"attachments\":[{\"name\":\"a\","
           "\"media_type\":\"text/plain\",\"size\":5000,\"data\":\"QUJD\"}]}");
    s_puts("notice", "version_2",
           "{\"v\":2,\"title\":\"t\",\"subject\":\"s\",\"body\":\"b\",\"reference\":\"\","
           "\"sender\":\"x\",\"sent_at\":\"\",\"attachments\":[]}");
    s_puts("notice", "no_body",
           "{\"v\":1,\"title\":\"t\",\"subject\":\"s\",\"reference\":\"\",\"sender\":\"x\","
           "\"sent_at\":\"\",\"attachments\":[]}");
    s_puts("notice", "attachment_not_object",
           "{\"v\":1,\"title\":\"t\",\"subject\":\"s\",\"body\":\"b\",\"reference\":\"\","
           "\"sender\":\"x\",\"sent_at\":\"\",\"attachments\":[7]}");
    s_puts("notice", "array", "[1,2,3]");
}

/* A wrapped key, as pf_kek_wrap stores it (caller frees). */
static unsigned char *s_wrap(const pf_kek_t *kek, const char *context, const void *plain,
                             size_t len, size_t *outlen_r)
{
    unsigned char *out = NULL;
    const char *err = NULL;
    if (pf_kek_wrap(kek, context, plain, len, &out, outlen_r, &err) != 0) {
        fprintf(stderr, "make_seeds: cannot wrap: %s\n", err);
        exit(1);
    }
    return out;
}

/* A seed that is one wrap, as it comes out of pf_kek_wrap. */
static void s_put_wrap(const char *name, const pf_kek_t *kek, const char *context,
                       const void *plain, size_t len)
{
    size_t n;
    unsigned char *b = s_wrap(kek, context, plain, len, &n);
    s_put("kek", name, b, n);
    free(b);
}

static void s_kek(void)
{
    pf_kek_t *ring = pf_fuzz_kek(PF_FUZZ_KEK_RING);
    const pf_kek_t *old = pf_kek_find(ring, PF_FUZZ_KEK_OLD_ID);
    pf_kek_t *renamed = pf_fuzz_kek(PF_FUZZ_KEK_RENAMED);
    pf_kek_t *foreign = pf_fuzz_kek(
        "fuzz-kek-2 0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000\n");
    size_t p256_len, rsa_len, n;
    unsigned char *p256 = pf_fuzz_der("jose/enc-p256.jwk", &p256_len);
    unsigned char *rsa = pf_fuzz_der("jose/enc-rsa3072.jwk", &rsa_len);
    /* valid: what fuzz_kek unwraps (the reader's PKCS#8 keys, under the
     * current KEK and the one before it, and the shortest blob) */
    s_put_wrap("p256_current", ring, PF_FUZZ_KEK_CONTEXT, p256, p256_len);
    s_put_wrap("rsa3072_current", ring, PF_FUZZ_KEK_CONTEXT, rsa, rsa_len);
    s_put_wrap("p256_old_kek", old, PF_FUZZ_KEK_CONTEXT, p256, p256_len);
    s_put_wrap("tiny_current", ring, PF_FUZZ_KEK_CONTEXT, PF_FUZZ_KEK_TINY,
               strlen(PF_FUZZ_KEK_TINY));
    /* real wraps bound to something else: another mailbox, another key
     * version, the same key under another KEK id, another KEK */
    s_put_wrap("p256_other_mailbox", ring, "citizen-other:1", p256, p256_len);
    s_put_wrap("p256_key_version_2", ring, "citizen-fuzz:2", p256, p256_len);
    s_put_wrap("p256_renamed_kek", renamed, PF_FUZZ_KEK_CONTEXT, p256, p256_len);
    s_put_wrap("p256_foreign_kek", foreign, PF_FUZZ_KEK_CONTEXT, p256, p256_len);
    /* broken: version 2, a changed tag, the last byte cut off, no
     * ciphertext at all (header and tag only), nothing */
    unsigned char *b = s_wrap(ring, PF_FUZZ_KEK_CONTEXT, p256, p256_len, &n);
    b[0] = 2;
    s_put("kek", "version_2", b, n);
    b[0] = 1;
    b[n - 1] ^= 0x01;
    s_put("kek", "bad_tag", b, n);
    b[n - 1] ^= 0x01;
    s_put("kek", "truncated", b, n - 1);
    memmove(b + 13, b + n - 16, 16);
    s_put("kek", "no_ciphertext", b, 29);
    free(b);
    s_put("kek", "empty", "", 0);
    pf_wipe(p256, p256_len);
    pf_wipe(rsa, rsa_len);
    free(p256);
    free(rsa);
    pf_kek_destroy(&foreign);
    pf_kek_destroy(&renamed);
    pf_kek_destroy(&ring);
}

/* A ZAP request in fuzz_zap's layout: each frame a 1-byte length and its
 * bytes.  Frames are given as (data, size) pairs, ended by a NULL data. */
static void s_zap(const char *name, ...)
{
    unsigned char buf[4096];
    size_t len = 0;
    va_list ap;
    va_start(ap, name);
    const void *data;
    while ((data = va_arg(ap, const void *)) != NULL) {
        size_t size = va_arg(ap, size_t);
        if (size > 255 || len + 1 + size > sizeof(buf))
            abort();
        buf[len++] = (unsigned char)size;
        memcpy(buf + len, data, size);
        len += size;
    }
    va_end(ap);
    s_put("zap", name, buf, len);
}

#define S_F(s) (const void *)(s), (size_t)(sizeof(s) - 1)

static void s_zaps(void)
{
    /* a client key: 32 bytes that look random */
    unsigned char key[33];
    pf_sha256("fuzz-zap-client", 15, key);
    key[32] = 0x42;
    const void *k = key;
    /* what libzmq sends: for a CURVE handshake (with and without a ZAP
     * domain and a routing id), for NULL and PLAIN */
    s_zap("curve", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"), k,
          (size_t)32, NULL);
    s_zap("curve_domain_identity", S_F("1.0"), S_F("0000002a"), S_F("global"), S_F("2001:db8::17"),
          S_F("sender-1"), S_F("CURVE"), k, (size_t)32, NULL);
    s_zap("null", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("NULL"), NULL);
    s_zap("plain", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("PLAIN"),
          S_F("admin"), S_F("secret"), NULL);
    /* broken: another version, a key one byte short and one long, one
     * frame more and one less, the key in Z85 text, no frames */
    s_zap("version_2", S_F("2.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"), k,
          (size_t)32, NULL);
    s_zap("key_31", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"), k,
          (size_t)31, NULL);
    s_zap("key_33", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"), k,
          (size_t)33, NULL);
    s_zap("eight_frames", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"), k,
          (size_t)32, S_F(""), NULL);
    s_zap("six_frames", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"),
          NULL);
    s_zap("key_z85_text", S_F("1.0"), S_F("1"), S_F(""), S_F("127.0.0.1"), S_F(""), S_F("CURVE"),
          S_F("HelloWorldHelloWorldHelloWorldHelloWorld"), NULL);
    s_put("zap", "empty", "", 0);
}

static bool s_wanted(int argc, char **argv, const char *corpus)
{
    if (argc <= 2)
        return true;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], corpus) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        s_dir = argv[1];
    if (s_wanted(argc, argv, "jwe")) {
        char *notice = s_notice(1);
        s_jwe(notice);
        free(notice);
    }
    if (s_wanted(argc, argv, "jws"))
        s_jws();
    if (s_wanted(argc, argv, "jwk"))
        s_jwk();
    if (s_wanted(argc, argv, "notice"))
        s_notices();
    if (s_wanted(argc, argv, "kek"))
        s_kek();
    if (s_wanted(argc, argv, "zap"))
        s_zaps();
    return 0;
}
