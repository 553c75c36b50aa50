#ifndef PF_READER_KEYRING_H
#define PF_READER_KEYRING_H
/* The reader's KEK keyring, reloaded from its file when a row names a KEK
 * generation it does not know yet: after `postfach-ctl kek rotate` the
 * readers pick up the new KEK by themselves, so rewrapping can start
 * without restarting them (no downtime). */
#include "crypto/jose.h"

typedef struct pf_keyring pf_keyring_t;

int pf_keyring_open(const char *path, pf_keyring_t **kr_r, const char **error_r);
/* The KEK with that id, or NULL when the file does not hold it either.
 * Thread-safe; the result stays valid until pf_keyring_destroy. */
const pf_kek_t *pf_keyring_find(pf_keyring_t *kr, const char *kek_id);
void pf_keyring_destroy(pf_keyring_t **kr);

#endif
