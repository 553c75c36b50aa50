#ifndef PF_FUZZ_SUPPORT_H
#define PF_FUZZ_SUPPORT_H
/* Shared by the libFuzzer targets of tests/fuzz/: loading the fixed keys
 * from tests/data once per process.  The scripts (fuzz.sh, fuzz-replay.sh)
 * run the targets from the repository root; PF_ROOT overrides that.  A
 * missing fixture is a broken checkout, so it aborts with a message. */
#include <stdio.h>
#include <stdlib.h>

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

#endif
