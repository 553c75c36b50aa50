/* libFuzzer target: JWE compact parsing and decryption (lib/crypto/jwe.c).
 * A stored copy is untrusted when it is opened: a citizen's own client may
 * have made it, and a database writer could have altered it.
 *
 * Input: one compact JWE.  It is opened with the two fixed mailbox keys
 * of tests/data/jose (P-256 and RSA-3072), so the valid seeds reach the
 * plaintext and mutations of them reach every check on the way.
 * Properties besides "no crash, no leak, no undefined behaviour":
 *   - whatever parses serialises back to exactly the input (the parser
 *     accepts one canonical form only, so nothing is silently dropped);
 *   - every refusal says "cannot decrypt" and nothing else (no oracle);
 *   - one ciphertext opens under at most one of the two keys. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/jose.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pf_key_t *s_keys[2];

static void s_init(void)
{
    if (s_keys[0] != NULL)
        return;
    s_keys[0] = pf_fuzz_key("jose/enc-p256.jwk");
    s_keys[1] = pf_fuzz_key("jose/enc-rsa3072.jwk");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    s_init();
    pf_jwe_t *jwe = NULL;
    const char *err = NULL;
    if (pf_jwe_parse_compact((const char *)data, size, &jwe, &err) != 0) {
        if (jwe != NULL || err == NULL || strcmp(err, "cannot decrypt") != 0)
            abort();
        return 0;
    }
    char *again = pf_jwe_compact(jwe);
    if (strlen(again) != size || memcmp(again, data, size) != 0)
        abort();
    free(again);
    char *hdr = pf_jwe_header_json(jwe);
    free(hdr);

    int opened = 0;
    for (int i = 0; i < 2; i++) {
        unsigned char *pt = NULL;
        size_t len = 0;
        err = NULL;
        if (pf_jwe_open(s_keys[i], jwe, &pt, &len, &err) == 0) {
            if (pt == NULL || len != jwe->ciphertext_len || pt[len] != '\0')
                abort();
            pf_wipe(pt, len);
            free(pt);
            opened++;
        } else if (err == NULL || strcmp(err, "cannot decrypt") != 0 || pt != NULL) {
            abort();
        }
    }
    if (opened > 1)
        abort();
    pf_jwe_destroy(&jwe);
    return 0;
}
