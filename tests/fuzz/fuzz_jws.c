/* libFuzzer target: JWS verification (lib/crypto/jws.c) and the two
 * verifiers built on it, citizen bearer tokens (lib/auth/token.c) and
 * receipts (lib/receipt/receipt.c).  Tokens arrive from anyone who can
 * reach the reader; receipts from anyone who shows one (a sender, a court).
 *
 * Input: one compact JWS, given to all three verifiers.  Fixed key sets:
 * the identity provider's JWKS of tests/data/jose/idp.jwks (ES256, PS256,
 * RS256 under kids) plus its ES256 key under its thumbprint, which is
 * also the receipt key, so the seeds (node-jose tokens, minted tokens and
 * receipts, see make_seeds.c) verify and their mutations reach the claim
 * checks.  Properties besides "no crash, no leak, no undefined behaviour":
 *   - each refusal carries one of the documented static messages;
 *   - a token or receipt that verifies is a JWS that verifies;
 *   - nothing is both a bearer token and a receipt (typ separates them);
 *   - a refused token leaves no claims behind. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "crypto/jose.h"
#include "receipt/receipt.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the fixture tokens are valid from 1700000000 to 1700000600 */
#define S_NOW INT64_C(1700000100)

static pf_keyset_t *s_idp, *s_receipt;
static pf_token_policy_t s_policy;

static void s_init(void)
{
    static const char *const algs[] = {"ES256", "PS256", "RS256", NULL};
    if (s_idp != NULL)
        return;
    pf_key_t *es = pf_fuzz_key("jose/idp-es256.jwk");
    s_idp = pf_fuzz_keyset("jose/idp.jwks");
    pf_keyset_add(s_idp, es, NULL);
    s_receipt = pf_keyset_new();
    pf_keyset_add(s_receipt, es, NULL);
    pf_key_destroy(&es);
    s_policy = (pf_token_policy_t){.keys = s_idp,
                                   .issuer = "https://idp.example.de",
                                   .audience = "postfach",
                                   .skew_seconds = 60,
                                   .algs = algs,
                                   .max_lifetime_seconds = 86400};
}

static bool s_one_of(const char *err, const char *const *allowed)
{
    for (size_t i = 0; err != NULL && allowed[i] != NULL; i++)
        if (strcmp(err, allowed[i]) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const jws_errors[] = {"malformed token", "unsupported algorithm",
                                             "unknown key", "bad signature", NULL};
    static const char *const token_errors[] = {
        "token expired",  "token not yet valid",   "token lifetime too long",
        "wrong issuer",   "wrong audience",        "bad signature",
        "unsupported algorithm", "malformed token", "unknown key",
        NULL};
    static const char *const receipt_errors[] = {"malformed receipt",     "wrong issuer",
                                                 "malformed token",       "unsupported algorithm",
                                                 "unknown key",           "bad signature",
                                                 NULL};
    static const char *const all_algs[] = {"ES256", "PS256", "RS256", NULL};
    if (size > 64 * 1024)
        return 0;
    s_init();
    const char *s = (const char *)data;

    char *payload = NULL, *header = NULL;
    size_t plen = 0;
    const char *err = NULL;
    int jws_ok = pf_jws_verify(s, size, s_idp, all_algs, &payload, &plen, &header, &err) == 0;
    if (jws_ok) {
        if (payload == NULL || header == NULL || payload[plen] != '\0')
            abort();
        free(payload);
        free(header);
    } else if (!s_one_of(err, jws_errors)) {
        abort();
    }

    pf_token_claims_t claims;
    err = NULL;
    int token_ok = pf_token_verify(&s_policy, s, size, S_NOW, &claims, &err) == 0;
    if (token_ok) {
        if (!jws_ok || claims.subject[0] == '\0')
            abort();
    } else if (!s_one_of(err, token_errors) || claims.subject[0] != '\0') {
        abort();
    }

    pf_receipt_t r;
    err = NULL;
    int receipt_ok = pf_receipt_verify(s, size, s_receipt, NULL, &r, &err) == 0;
    if (receipt_ok) {
        if (pf_event_name(r.event) == NULL || r.sender == NULL || r.mailbox == NULL)
            abort();
        pf_receipt_clear(&r);
    } else if (!s_one_of(err, receipt_errors) || r.sender != NULL || r.mailbox != NULL) {
        abort();
    }
    if (receipt_ok && (token_ok || !jws_ok))
        abort();
    return 0;
}
