#ifndef PF_PROTO_CURVE_H
#define PF_PROTO_CURVE_H
/* CURVE (Curve25519) key files for the ZeroMQ link, as described in
 * docs/conventions-dev.md:
 *
 *   # comment lines and blank lines are allowed
 *   public = <40 Z85 characters>
 *   secret = <40 Z85 characters>     (key pair files only, mode 0600)
 *
 * A pair file holds both lines, a ".pub" file only the public one.  Keys
 * are kept as Z85 text, the form zmq_setsockopt and the sender table use.
 * Errors: -1 with *error_r (thread-local text, valid until the next call
 * of this module in the same thread). */
#include <stdbool.h>

#define PF_CURVE_Z85_LEN 40

typedef struct {
    char public_key[PF_CURVE_Z85_LEN + 1];
    char secret_key[PF_CURVE_Z85_LEN + 1]; /* "" when the file had none */
} pf_curve_keys_t;

/* Generates a key pair with zmq_curve_keypair, writes secret_path (both
 * lines, mode 0600) and public_path (the public line, mode 0644; may be
 * NULL), each atomically.  The public key's Z85 text goes to pub_r. */
int pf_curve_generate_files(const char *secret_path, const char *public_path,
                            char pub_r[PF_CURVE_Z85_LEN + 1], const char **error_r);

/* Loads a key file.  need_secret: the file must hold a secret key, and the
 * public key (when present) must be the one derived from it (when absent
 * it is derived).  Without need_secret a secret line is still checked but
 * not required. */
int pf_curve_load(const char *path, bool need_secret, pf_curve_keys_t *keys_r,
                  const char **error_r);

/* True for 40 characters of the Z85 alphabet that decode to 32 bytes. */
bool pf_curve_z85_valid(const char *z85);

/* Wipes the secret key. */
void pf_curve_keys_clear(pf_curve_keys_t *keys);

#endif
