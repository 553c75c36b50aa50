/* GET /.well-known/jwks.json: the public key that verifies the service's
 * receipts (RFC 7517 key set), so that senders, courts and anyone else can
 * check a receipt offline without asking us.
 *
 * Callers: server.c renders it once at start-up and serves the same bytes.
 * Only the public half ever leaves: the JWKS is made from pf_key_public(),
 * a new key object without private parameters, so a mistake in the JWK
 * writer cannot leak "d". */
#include "reader/reader_private.h"

#include <string.h>

char *pf_reader_jwks_render(const pf_key_t *receipt_key, size_t *len_r)
{
    pf_key_t *pub = pf_key_public(receipt_key);
    if (pub == NULL)
        return NULL;
    pf_keyset_t *set = pf_keyset_new();
    /* the kid receipts carry in their header: the RFC 7638 thumbprint */
    pf_keyset_add(set, pub, pf_key_kid(pub));
    char *json = pf_keyset_to_jwks(set);
    pf_keyset_destroy(&set);
    pf_key_destroy(&pub);
    if (json != NULL)
        *len_r = strlen(json);
    return json;
}
