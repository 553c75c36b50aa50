/* Citizen bearer tokens: strict JWT verification (RFC 7519, RFC 8725) and
 * minting of development tokens.
 *
 * Callers: the reader verifies the token of every request; postfach-ctl
 * and tests mint tokens with a local "identity provider" key.
 *
 * Untrusted input: the whole token.  Its length is capped before anything
 * is parsed; the signature is checked (lib/crypto, alg from the policy's
 * allowlist only) before any claim is looked at; the claims JSON must be
 * an object without duplicate members.  Errors are short static strings
 * that never echo token contents, so logs cannot be fed attacker text.
 *
 * Time checks follow RFC 7519 4.1.4/4.1.5 with a clock skew allowance:
 * the token is expired when now >= exp + skew, not yet valid when
 * now + skew < nbf, and an "iat" in the future beyond the skew is refused
 * too (a token from the future means a broken or hostile issuer).
 * NumericDates outside 0 .. year 9999 are malformed, which also keeps all
 * arithmetic far from int64 overflow. */
#include "auth/token.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 9999-12-31T23:59:59Z */
#define S_TIME_MAX INT64_C(253402300799)
#define S_TTL_MAX (24 * 3600)

static const char S_MALFORMED[] = "malformed token";

static const char *const s_level_names[] = {"none", "normal", "substantiell", "hoch"};

int pf_level_parse(const char *s, pf_level_t *level_r)
{
    if (s == NULL)
        return -1;
    for (int i = PF_LEVEL_NORMAL; i <= PF_LEVEL_HOCH; i++) {
        if (strcmp(s, s_level_names[i]) == 0) {
            *level_r = (pf_level_t)i;
            return 0;
        }
    }
    return -1;
}

const char *pf_level_name(pf_level_t level)
{
    if ((int)level < PF_LEVEL_NONE || (int)level > PF_LEVEL_HOCH)
        return "unknown";
    return s_level_names[level];
}

/* "sub" doubles as the mailbox id: a conservative alphabet keeps it safe
 * in logs, URLs and SQL parameters alike. */
static bool s_valid_subject(const char *s, size_t len)
{
    if (len == 0 || len > PF_TOKEN_SUBJECT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* A NumericDate claim: -1 malformed, 0 absent, 1 present (*t_r set).
 * RFC 7519 allows non-integer values; they are cut to whole seconds,
 * which moves exp earlier (stricter) and nbf/iat by less than the skew. */
static int s_numeric_date(const json_t *claims, const char *name, int64_t *t_r)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return -1;
    if (!isfinite(d) || d < 0 || d > (double)S_TIME_MAX)
        return -1;
    *t_r = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)floor(d);
    return 1;
}

/* 0 when aud names audience, -1 when it does not (or is absent), -2 when
 * it is neither a string nor an array of strings. */
static int s_check_audience(const json_t *aud, const char *audience)
{
    if (aud == NULL)
        return -1;
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0 ? 0 : -1;
    if (!json_is_array(aud))
        return -2;
    int found = -1;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return -2;
        if (strcmp(json_string_value(v), audience) == 0)
            found = 0;
    }
    return found;
}

/* The claims of a verified token, in the order: issuer, audience, times,
 * subject, level.  Issuer and audience first, so a token meant for
 * another service is reported as such whatever else is wrong with it. */
static const char *s_check_claims(const pf_token_policy_t *policy, const json_t *c, int64_t now,
                                  pf_token_claims_t *claims)
{
    const char *iss = json_string_value(json_object_get(c, "iss"));
    if (iss == NULL || strcmp(iss, policy->issuer) != 0)
        return "wrong issuer";
    int aud = s_check_audience(json_object_get(c, "aud"), policy->audience);
    if (aud == -2)
        return S_MALFORMED;
    if (aud != 0)
        return "wrong audience";

    int64_t exp = 0, nbf = 0, iat = 0;
    int has_exp = s_numeric_date(c, "exp", &exp), has_nbf = s_numeric_date(c, "nbf", &nbf),
        has_iat = s_numeric_date(c, "iat", &iat);
    if (has_exp != 1 || has_nbf < 0 || has_iat < 0)
        return S_MALFORMED; /* exp is required */
    int64_t skew = policy->skew_seconds > 0 ? policy->skew_seconds : 0;
    if (now < 0 || now > S_TIME_MAX || now >= exp + skew)
        return "token expired";
    if ((has_nbf && now + skew < nbf) || (has_iat && now + skew < iat))
        return "token not yet valid";
    if (policy->max_lifetime_seconds > 0 &&
        exp - (has_iat ? iat : now) > (int64_t)policy->max_lifetime_seconds)
        return "token lifetime too long";

    json_t *sub = json_object_get(c, "sub");
    if (!json_is_string(sub) || !s_valid_subject(json_string_value(sub), json_string_length(sub)))
        return S_MALFORMED;
    json_t *acr = json_object_get(c, "acr");
    if (acr != NULL && !json_is_string(acr))
        return S_MALFORMED;
    /* an acr we do not know grants nothing: the level check later refuses
     * whatever needs more than PF_LEVEL_NONE */
    pf_level_t level = PF_LEVEL_NONE;
    if (acr != NULL && pf_level_parse(json_string_value(acr), &level) != 0)
        level = PF_LEVEL_NONE;

    memcpy(claims->subject, json_string_value(sub), json_string_length(sub) + 1);
    claims->level = level;
    claims->exp = exp;
    return NULL;
}

int pf_token_verify(const pf_token_policy_t *policy, const char *token, size_t len, int64_t now,
                    pf_token_claims_t *claims_r, const char **error_r)
{
    memset(claims_r, 0, sizeof(*claims_r));
    if (policy == NULL || policy->keys == NULL || policy->issuer == NULL ||
        policy->audience == NULL || policy->algs == NULL) {
        *error_r = "token policy incomplete";
        return -1;
    }
    if (token == NULL || len == 0 || len > PF_TOKEN_MAX) {
        *error_r = S_MALFORMED;
        return -1;
    }
    char *payload = NULL, *header = NULL;
    size_t plen = 0;
    if (pf_jws_verify(token, len, policy->keys, policy->algs, &payload, &plen, &header, error_r) !=
        0)
        return -1; /* the JWS errors are the token errors */

    const char *err = NULL;
    json_error_t jerr;
    json_t *h = json_loads(header, JSON_REJECT_DUPLICATES, &jerr);
    json_t *c = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, &jerr);
    /* a receipt (typ secevent+jwt) or any other JWT kind is not a bearer
     * token, even when signed by a key the policy trusts (RFC 8725 3.11) */
    json_t *typ = h ? json_object_get(h, "typ") : NULL;
    if (h == NULL || !json_is_object(c))
        err = S_MALFORMED;
    else if (typ != NULL && !pf_jws_typ_is(json_string_value(typ), "JWT") &&
             !pf_jws_typ_is(json_string_value(typ), "at+jwt"))
        err = S_MALFORMED;
    else
        err = s_check_claims(policy, c, now, claims_r);
    json_decref(h);
    json_decref(c);
    free(header);
    free(payload);
    if (err != NULL) {
        memset(claims_r, 0, sizeof(*claims_r));
        *error_r = err;
        return -1;
    }
    return 0;
}

char *pf_token_mint(const pf_key_t *key, const char *issuer, const char *audience,
                    const char *subject, pf_level_t level, int64_t now, int ttl_seconds,
                    const char **error_r)
{
    if (key == NULL || issuer == NULL || audience == NULL || subject == NULL) {
        *error_r = "key, issuer, audience and subject are required";
        return NULL;
    }
    if (!s_valid_subject(subject, strlen(subject))) {
        *error_r = "invalid subject (1-128 of A-Z a-z 0-9 . _ : @ -)";
        return NULL;
    }
    if (ttl_seconds <= 0 || ttl_seconds > S_TTL_MAX || now < 0 || now > S_TIME_MAX - S_TTL_MAX) {
        *error_r = "token lifetime must be 1 second to 1 day";
        return NULL;
    }
    if ((int)level < PF_LEVEL_NONE || (int)level > PF_LEVEL_HOCH) {
        *error_r = "unknown assurance level";
        return NULL;
    }
    char jti[PF_UUID_STRLEN + 1];
    pf_uuid7_generate(jti);
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", issuer, "aud", audience,
                          "sub", subject, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                          (json_int_t)(now + ttl_seconds), "jti", jti);
    if (c == NULL) {
        *error_r = "issuer or audience is not valid UTF-8";
        return NULL;
    }
    if (level != PF_LEVEL_NONE)
        json_object_set_new(c, "acr", json_string(pf_level_name(level)));
    char *payload = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(c);
    if (payload == NULL)
        abort(); /* out of memory */
    char *tok = pf_jws_sign(key, "JWT", payload, strlen(payload), error_r);
    free(payload);
    return tok;
}
