/* CURVE key files (format in curve.h).
 *
 * Callers: postfach-ctl (keys init, sender add/rotate-key), the broker
 * (its secret key), the client library (the sender's pair and the
 * broker's public key).  Key files are local configuration, but still
 * parsed strictly: an unknown line, a repeated key or a public key that
 * does not belong to the secret is an error rather than a guess, because a
 * wrong key shows up only later as a silent handshake failure.  Secret
 * text is wiped from every buffer it passed through. */
#include "proto/curve.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static __thread char s_err[256];

static int s_fail(const char **error_r, const char *path, const char *what)
{
    snprintf(s_err, sizeof(s_err), "key file \"%s\": %s", path, what);
    *error_r = s_err;
    return -1;
}

bool pf_curve_z85_valid(const char *z85)
{
    if (z85 == NULL || strlen(z85) != PF_CURVE_Z85_LEN)
        return false;
    uint8_t raw[32];
    bool ok = zmq_z85_decode(raw, z85) != NULL;
    explicit_bzero(raw, sizeof(raw));
    return ok;
}

void pf_curve_keys_clear(pf_curve_keys_t *keys)
{
    if (keys != NULL)
        explicit_bzero(keys, sizeof(*keys));
}

int pf_curve_generate_files(const char *secret_path, const char *public_path,
                            char pub_r[PF_CURVE_Z85_LEN + 1], const char **error_r)
{
    char pub[PF_CURVE_Z85_LEN + 1], sec[PF_CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        *error_r = "cannot generate a CURVE key pair (libzmq built without CURVE?)";
        return -1;
    }
    char text[128];
    int n = snprintf(text, sizeof(text), "public = %s\nsecret = %s\n", pub, sec);
    explicit_bzero(sec, sizeof(sec));
    const char *err;
    int rc = pf_file_write(secret_path, text, (size_t)n, 0600, &err);
    explicit_bzero(text, sizeof(text));
    if (rc != 0)
        return s_fail(error_r, secret_path, err);
    if (public_path != NULL) {
        n = snprintf(text, sizeof(text), "public = %s\n", pub);
        if (pf_file_write(public_path, text, (size_t)n, 0644, &err) != 0)
            return s_fail(error_r, public_path, err);
    }
    memcpy(pub_r, pub, sizeof(pub));
    return 0;
}

/* Parses one "name = value" line in place; false when it is not one. */
static bool s_split(char *line, char **name_r, char **value_r)
{
    char *eq = strchr(line, '=');
    if (eq == NULL)
        return false;
    char *name = line, *value = eq + 1, *end = eq;
    while (*name == ' ' || *name == '\t')
        name++;
    while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    while (*value == ' ' || *value == '\t')
        value++;
    size_t vl = strlen(value);
    while (vl > 0 && (value[vl - 1] == ' ' || value[vl - 1] == '\t' || value[vl - 1] == '\r'))
        value[--vl] = '\0';
    *name_r = name;
    *value_r = value;
    return *name != '\0';
}

int pf_curve_load(const char *path, bool need_secret, pf_curve_keys_t *keys_r, const char **error_r)
{
    memset(keys_r, 0, sizeof(*keys_r));
    char *text = NULL;
    size_t len = 0;
    const char *err;
    if (pf_file_read(path, 4096, &text, &len, &err) != 0)
        return s_fail(error_r, path, err);
    const char *why = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !why;
         line = strtok_r(NULL, "\n", &save)) {
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char *name, *value;
        if (!s_split(p, &name, &value)) {
            why = "expected \"public = <Z85>\" or \"secret = <Z85>\" lines";
        } else if (strcmp(name, "public") == 0 || strcmp(name, "secret") == 0) {
            char *dst = name[0] == 'p' ? keys_r->public_key : keys_r->secret_key;
            if (*dst != '\0')
                why = name[0] == 'p' ? "public key given twice" : "secret key given twice";
            else if (!pf_curve_z85_valid(value))
                why = name[0] == 'p' ? "public key is not 40 characters of Z85"
                                     : "secret key is not 40 characters of Z85";
            else
                memcpy(dst, value, PF_CURVE_Z85_LEN + 1);
        } else {
            why = "unknown setting (only \"public\" and \"secret\")";
        }
    }
    explicit_bzero(text, len);
    free(text);
    if (why == NULL && need_secret && keys_r->secret_key[0] == '\0')
        why = "no secret key";
    if (why == NULL && keys_r->secret_key[0] != '\0') {
        char derived[PF_CURVE_Z85_LEN + 1];
        if (zmq_curve_public(derived, keys_r->secret_key) != 0)
            why = "cannot derive the public key";
        else if (keys_r->public_key[0] == '\0')
            memcpy(keys_r->public_key, derived, sizeof(derived));
        else if (strcmp(derived, keys_r->public_key) != 0)
            why = "public key does not belong to the secret key";
    }
    if (why == NULL && keys_r->public_key[0] == '\0')
        why = "no public key";
    if (why != NULL) {
        pf_curve_keys_clear(keys_r);
        return s_fail(error_r, path, why);
    }
    return 0;
}
