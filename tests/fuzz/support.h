#ifndef PF_FUZZ_SUPPORT_H
#define PF_FUZZ_SUPPORT_H
/* Shared by the libFuzzer targets of tests/fuzz/ and make_seeds.c: loading
 * the fixed keys from tests/data once per process, and the fixed KEK.  The
 * scripts (fuzz.sh, fuzz-replay.sh) run the targets from the repository
 * root; PF_ROOT overrides that.  A missing fixture is a broken checkout, so
 * it aborts with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/jose.h"
#include "util/fileio.h"
#include "util/xalloc.h"

/* Contents of tests/data/<rel> (caller frees). */
static inline char *pf_fuzz_data(const char *rel, size_t *len_r)
{
    const char *root = getenv("PF_ROOT");
    char *path = xasprintf("%s/tests/data/%s", root != NULL ? root : ".", rel);
    char *data = NULL;
    size_t len = 0;
    const char *err = NULL;
    if (pf_file_read(path, 1024 * 1024, &data, &len, &err) != 0) {
        fprintf(stderr, "fuzz: cannot read \"%s\": %s (run from the repository root)\n", path,
                err);
        abort();
    }
    free(path);
    if (len_r != NULL)
        *len_r = len;
    return data;
}

/* The key in tests/data/<rel> (a JWK file). */
static inline pf_key_t *pf_fuzz_key(const char *rel)
{
    size_t len;
    char *jwk = pf_fuzz_data(rel, &len);
    pf_key_t *key = NULL;
    const char *err = NULL;
    if (pf_key_from_jwk(jwk, len, &key, &err) != 0) {
        fprintf(stderr, "fuzz: bad key in tests/data/%s: %s\n", rel, err);
        abort();
    }
    pf_wipe(jwk, len);
    free(jwk);
    return key;
}

/* A key set from the JWKS in tests/data/<rel>. */
static inline pf_keyset_t *pf_fuzz_keyset(const char *rel)
{
    size_t len;
    char *jwks = pf_fuzz_data(rel, &len);
    pf_keyset_t *set = pf_keyset_new();
    const char *err = NULL;
    if (pf_keyset_add_jwks(set, jwks, len, true, &err) <= 0) {
        fprintf(stderr, "fuzz: bad key set in tests/data/%s: %s\n", rel, err);
        abort();
    }
    free(jwks);
    return set;
}

/* The private key in tests/data/<rel> (a JWK file) as PKCS#8 DER, the
 * form pf_kek_wrap wraps (caller frees). */
static inline unsigned char *pf_fuzz_der(const char *rel, size_t *len_r)
{
    pf_key_t *key = pf_fuzz_key(rel);
    unsigned char *der = NULL;
    const char *err = NULL;
    if (pf_key_to_der(key, &der, len_r, &err) != 0) {
        fprintf(stderr, "fuzz: cannot encode tests/data/%s: %s\n", rel, err);
        abort();
    }
    pf_key_destroy(&key);
    return der;
}

/* The fixed keyring of fuzz_kek and its seeds: the current KEK first, then
 * the generation before it (wraps not yet rewrapped after a rotation). */
#define PF_FUZZ_KEK_CURRENT_HEX "8f1e3c5a7b9d0f2e4c6a8b0d2f4e6c8a1b3d5f7e9c0a2b4d6f8e0c2a4b6d8f0e"
#define PF_FUZZ_KEK_RING                                                                           \
    "fuzz-kek-2 " PF_FUZZ_KEK_CURRENT_HEX "\n"                                                     \
    "fuzz-kek-1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define PF_FUZZ_KEK_OLD_ID "fuzz-kek-1"
/* The current KEK's key under another id: the id is authenticated too. */
#define PF_FUZZ_KEK_RENAMED "fuzz-kek-9 " PF_FUZZ_KEK_CURRENT_HEX "\n"
/* The context the reader would use: mailbox id and key version. */
#define PF_FUZZ_KEK_CONTEXT "citizen-fuzz:1"
/* A plaintext of one byte, the shortest blob that unwraps; not a key. */
#define PF_FUZZ_KEK_TINY "k"

/* A keyring of the given text, loaded through pf_kek_load as the reader
 * loads its kek_file: written 0600 into a fresh temporary directory, read,
 * and removed again. */
static inline pf_kek_t *pf_fuzz_kek(const char *ring)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/pf-fuzz-kek-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "fuzz: cannot create a directory \"%s\"\n", dir);
        abort();
    }
    char *path = xasprintf("%s/kek", dir);
    pf_kek_t *kek = NULL;
    const char *err = NULL;
    if (pf_file_write(path, ring, strlen(ring), 0600, &err) != 0 ||
        pf_kek_load(path, &kek, &err) != 0) {
        fprintf(stderr, "fuzz: cannot load the fixed KEK: %s\n", err);
        abort();
    }
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    return kek;
}

#endif
