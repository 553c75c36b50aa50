/* libFuzzer target: the wrapped private-key blob (lib/crypto/kek.c,
 * pf_kek_unwrap).  The blob comes from the database, where a database
 * writer could have altered it; the reader unwraps one per request.
 *
 * Input: one blob, as stored.  It is unwrapped with the fixed keyring of
 * support.h the way the reader does it: under the current KEK and, as for
 * a row naming the older generation, under that one, with the context
 * PF_FUZZ_KEK_CONTEXT.  The seeds hold real wraps made by pf_kek_wrap
 * (make_seeds.c), so mutations of them reach the tag check.
 * Properties besides "no crash, no leak, no undefined behaviour":
 *   - every refusal says "cannot unwrap key" and hands nothing out;
 *   - what unwraps is exactly one of the plaintexts the seeds wrapped, as
 *     long as the blob less its 29 bytes of overhead, with a NUL after it
 *     (the fuzzer cannot forge a GCM tag, so any other plaintext means a
 *     tampered blob was accepted), and pf_key_from_der reads a key from it
 *     exactly when it was one;
 *   - a blob unwraps under one KEK generation only, and no longer once any
 *     of its bytes is changed, any byte cut off or added, the context
 *     changed, or the KEK's id (its key kept); checked for every input that
 *     unwraps, and once at start on a fresh pf_kek_wrap of each KEK. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/jose.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_OVERHEAD (1 + 12 + 16)
#define S_KEYS 2 /* the first plaintexts are private keys */
#define S_PLAINS 3

static pf_kek_t *s_ring, *s_renamed;
static const pf_kek_t *s_old;
static unsigned char *s_plain[S_PLAINS];
static size_t s_plain_len[S_PLAINS];

/* pf_kek_unwrap, with the properties every call must have.  Returns 0 with
 * the plaintext (caller wipes and frees), or -1. */
static int s_unwrap(const pf_kek_t *kek, const char *context, const unsigned char *blob, size_t len,
                    unsigned char **out_r, size_t *outlen_r)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    const char *err = NULL;
    int rc = pf_kek_unwrap(kek, context, blob, len, &out, &outlen, &err);
    if (rc != 0) {
        if (rc != -1 || out != NULL || outlen != 0 || err == NULL ||
            strcmp(err, "cannot unwrap key") != 0)
            abort();
        return -1;
    }
    if (out == NULL || len <= S_OVERHEAD || outlen != len - S_OVERHEAD || out[outlen] != '\0')
        abort();
    *out_r = out;
    *outlen_r = outlen;
    return 0;
}

/* Refused, on a heap copy of exactly len bytes (so ASan sees a read past
 * its end). */
static void s_refused(const pf_kek_t *kek, const char *context, const unsigned char *blob,
                      size_t len)
{
    unsigned char *copy = xmemdup(blob, len), *out = NULL;
    size_t outlen = 0;
    if (s_unwrap(kek, context, copy, len, &out, &outlen) == 0)
        abort();
    free(copy);
}

/* A blob that unwrapped under kek: every change to it must be refused. */
static void s_tamper(const pf_kek_t *kek, const unsigned char *blob, size_t len)
{
    unsigned char *t = xmemdup(blob, len), *out = NULL;
    size_t outlen = 0;
    /* each byte with one bit flipped, the bit moving along */
    for (size_t i = 0; i < len; i++) {
        t[i] ^= (unsigned char)(1u << (i % 8));
        if (s_unwrap(kek, PF_FUZZ_KEK_CONTEXT, t, len, &out, &outlen) == 0)
            abort();
        t[i] = blob[i];
    }
    /* every other version byte */
    for (unsigned v = 0; v < 256; v++) {
        t[0] = (unsigned char)v;
        if (v != blob[0] && s_unwrap(kek, PF_FUZZ_KEK_CONTEXT, t, len, &out, &outlen) == 0)
            abort();
    }
    free(t);
    /* every truncation, and one byte more */
    for (size_t n = 0; n < len; n++)
        s_refused(kek, PF_FUZZ_KEK_CONTEXT, blob, n);
    t = xmalloc(len + 1);
    memcpy(t, blob, len);
    t[len] = 0;
    s_refused(kek, PF_FUZZ_KEK_CONTEXT, t, len + 1);
    free(t);
    /* another mailbox, another key version, no context; the same key
     * under another KEK id */
    static const char *const others[] = {"citizen-fuzz:2",  "citizen-fuzz:10", "citizen-fuzz",
                                         "citizen-fuzz:1 ", "itizen-fuzz:1",   ""};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        s_refused(kek, others[i], blob, len);
    s_refused(s_renamed, PF_FUZZ_KEK_CONTEXT, blob, len);
}

/* Once per process: keys, plaintexts, and a round trip through
 * pf_kek_wrap with the tamper checks.  The seeds are fixed bytes, so a
 * change that binds wraps to less (no context or KEK id in the AAD) would
 * only make them stop opening; a fresh wrap shows it. */
static void s_init(void)
{
    if (s_ring != NULL)
        return;
    s_ring = pf_fuzz_kek(PF_FUZZ_KEK_RING);
    s_old = pf_kek_find(s_ring, PF_FUZZ_KEK_OLD_ID);
    s_renamed = pf_fuzz_kek(PF_FUZZ_KEK_RENAMED);
    if (s_old == NULL)
        abort();
    s_plain[0] = pf_fuzz_der("jose/enc-p256.jwk", &s_plain_len[0]);
    s_plain[1] = pf_fuzz_der("jose/enc-rsa3072.jwk", &s_plain_len[1]);
    s_plain[2] = (unsigned char *)xstrdup(PF_FUZZ_KEK_TINY);
    s_plain_len[2] = strlen(PF_FUZZ_KEK_TINY);
    const pf_kek_t *keks[2] = {s_ring, s_old};
    for (int i = 0; i < 2; i++) {
        unsigned char *blob = NULL, *out = NULL;
        size_t len = 0, outlen = 0;
        const char *err = NULL;
        if (pf_kek_wrap(keks[i], PF_FUZZ_KEK_CONTEXT, s_plain[0], s_plain_len[0], &blob, &len,
                        &err) != 0 ||
            s_unwrap(keks[i], PF_FUZZ_KEK_CONTEXT, blob, len, &out, &outlen) != 0 ||
            outlen != s_plain_len[0] || memcmp(out, s_plain[0], outlen) != 0)
            abort();
        pf_wipe(out, outlen);
        free(out);
        s_tamper(keks[i], blob, len);
        free(blob);
    }
}

/* The plaintext must be one the seeds wrapped; the reader's next step,
 * reading the key, works exactly for the keys. */
static void s_check_plain(const unsigned char *plain, size_t len)
{
    size_t k = 0;
    while (k < S_PLAINS && (len != s_plain_len[k] || memcmp(plain, s_plain[k], len) != 0))
        k++;
    if (k == S_PLAINS)
        abort();
    pf_key_t *key = NULL;
    const char *err = NULL;
    int rc = pf_key_from_der(plain, len, &key, &err);
    if ((rc == 0) != (k < S_KEYS))
        abort();
    pf_key_destroy(&key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_init();
    const pf_kek_t *keks[2] = {s_ring, s_old};
    int opened = 0;
    for (int i = 0; i < 2; i++) {
        unsigned char *out = NULL;
        size_t outlen = 0;
        if (s_unwrap(keks[i], PF_FUZZ_KEK_CONTEXT, data, size, &out, &outlen) != 0)
            continue;
        opened++;
        s_check_plain(out, outlen);
        pf_wipe(out, outlen);
        free(out);
        s_tamper(keks[i], data, size);
    }
    if (opened > 1)
        abort();
    return 0;
}
