/* GET /v1/messages/{id}/attachments/{n}: one attachment's bytes.
 *
 * Callers: server.c after the token was verified.
 * Opening goes through pf_reader_open like the notice itself, so it checks
 * the level and counts as a retrieval (a citizen who downloads the PDF has
 * retrieved the notice).  n is the 0-based index of the "attachments" list
 * of GET /v1/messages/{id}; an index the notice does not have answers 404
 * and records nothing (the citizen received nothing).
 * Untrusted input: the sender chose the file name and media type, and both
 * end up in response headers, so both are reduced to safe forms here (the
 * name has already been cleaned like every text shown, in pf_reader_open)
 * (a hostile name must not inject headers or a path, a hostile media type
 * must not turn a download into an HTML page of our origin: the download is
 * also sent with "attachment" disposition and nosniff); see
 * pf_reader_disposition and pf_reader_media_type in reply.c. */
#include "reader/reader_private.h"

#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pf_reader_attachment(const pf_request_t *rq, pf_reply_t *rep)
{
    pf_mailbox_message_t m;
    pf_notice_t n;
    char *read_at = NULL;
    if (pf_reader_open(rq, true, &m, &n, &read_at, rep) != 0)
        return;
    /* pf_reader_open refused an index the notice does not have, before it
     * recorded anything */
    pf_attachment_t *a = &n.attachments[rq->route->attachment];
    pf_reply_clear(rep);
    rep->status = 200;
    /* the media type is borrowed from the notice, which is cleared
     * below: the reply keeps its own copy */
    snprintf(rep->content_type_buf, sizeof(rep->content_type_buf), "%s",
             pf_reader_media_type(a->media_type));
    rep->content_type = rep->content_type_buf;
    rep->disposition = pf_reader_disposition(a->name);
    /* hand the plaintext bytes to the reply, which wipes them once sent */
    rep->body = (char *)a->data;
    rep->len = a->size;
    rep->wipe = true;
    a->data = NULL;
    a->size = 0;
    if (rep->body == NULL)
        rep->body = xstrdup("");
    free(read_at);
    pf_notice_clear(&n);
    pf_mailbox_message_clear(&m);
}
