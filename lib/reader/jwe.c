/* GET /v1/messages/{id}/jwe: the stored copy as a JWE compact
 * serialisation (RFC 7516), for clients that decrypt themselves.
 *
 * Callers: server.c after the token was verified.
 * No private key is involved: the reader hands out the ciphertext it
 * stores, re-assembled from its parts.  This route does not record a
 * retrieval: handing out ciphertext is not access to the content (the
 * reader cannot know whether the client holds the key, and a portal may
 * fetch copies for offline storage).  It does enforce the assurance level
 * like opening, so that a weaker login does not even get the ciphertext of
 * a notice that demands a stronger one.
 * Untrusted input: the id; the stored parts are checked for plausible
 * lengths before they are assembled. */
#include "reader/reader_private.h"

#include "util/log.h"

#include <stdlib.h>
#include <string.h>

void pf_reader_jwe(const pf_request_t *rq, pf_reply_t *rep)
{
    pf_mailbox_message_t m;
    const char *err = NULL;
    int found = pf_store_message_get(rq->st, rq->mailbox, rq->route->message_id, PF_MESSAGE_JWE, &m,
                                     &err);
    if (found < 0) {
        pf_reply_unavailable(rep, "message", err);
        return;
    }
    if (found == 0) {
        pf_reply_no_message(rep);
        return;
    }
    if ((int)rq->level < m.meta.required_level) {
        pf_reply_error(rep, 403, "insufficient_level",
                       "this notice requires a higher assurance level of your login");
    } else if (m.iv_len != 12 || m.tag_len != 16) {
        pf_error("event=cannot_open message=%s reason=jwe_parts", m.meta.id);
        pf_reply_error(rep, 500, "cannot_open",
                       "this notice cannot be opened; the operator has been notified");
    } else {
        pf_jwe_t jwe;
        memset(&jwe, 0, sizeof(jwe));
        /* borrowed views of the row, not released through pf_jwe_destroy */
        jwe.protected_b64 = m.jwe_protected;
        jwe.encrypted_key = m.encrypted_key;
        jwe.encrypted_key_len = m.encrypted_key_len;
        memcpy(jwe.iv, m.iv, 12);
        jwe.ciphertext = m.ciphertext;
        jwe.ciphertext_len = m.ciphertext_len;
        memcpy(jwe.tag, m.tag, 16);
        char *compact = pf_jwe_compact(&jwe);
        if (compact == NULL) {
            pf_reply_error(rep, 500, "internal", "cannot serialise the copy");
        } else {
            pf_reply_clear(rep);
            rep->status = 200;
            rep->content_type = "application/jose";
            rep->body = compact;
            rep->len = strlen(compact);
        }
    }
    pf_mailbox_message_clear(&m);
}
