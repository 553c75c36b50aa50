/* GET /v1/messages: the citizen's listing, newest first, in pages.
 *
 * Callers: server.c after the token was verified; rq->mailbox is its
 * subject and scopes the query.
 * Shows clear metadata only (what the broker stored unencrypted: sender,
 * title, reference, dates, size, counts, required level) - never anything
 * from inside the JWE, so listing needs no private key and no decryption.
 * Paging is by keyset, not offset: the cursor is the last id of the page
 * (ids are UUIDv7, so id order is time order), so a page costs the same
 * however deep, and notices arriving meanwhile do not shift later pages.
 * Untrusted input: limit and cursor (parsed in route.c). */
#include "reader/reader_private.h"

#include "util/xalloc.h"

#include <jansson.h>
#include <stdlib.h>

static json_t *s_entry(const pf_mailbox_entry_t *e)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:i, s:s}", "id", e->id, "sender",
                     e->sender, "title", e->title, "reference", e->reference, "created_at",
                     e->created_at, "read_at", e->read_at ? json_string(e->read_at) : json_null(),
                     "size", (json_int_t)e->size, "attachment_count", e->attachment_count,
                     "required_level", pf_reader_level_name(e->required_level));
}

char *pf_reader_render_list(const pf_mailbox_entry_t *rows, size_t n, const char *next_id)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = s_entry(&rows[i]);
        /* NULL only for invalid UTF-8 from the database, which the text
         * columns cannot hold; skip rather than fail the whole page */
        if (e != NULL)
            json_array_append_new(arr, e);
    }
    json_t *next = json_null();
    char cursor[PF_CURSOR_LEN + 1];
    if (next_id != NULL && pf_cursor_encode(next_id, cursor) == 0) {
        json_decref(next);
        next = json_string(cursor);
    }
    json_t *o = json_pack("{s:o, s:o}", "messages", arr, "next_cursor", next);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        abort(); /* jansson out of memory, like xmalloc */
    return text;
}

void pf_reader_list(const pf_request_t *rq, pf_reply_t *rep)
{
    int limit;
    if (pf_route_limit(rq->limit, rq->sh->list_limit_default, rq->sh->list_limit_max, &limit) !=
        0) {
        pf_reply_error(rep, 400, "invalid_limit", "limit must be a whole number in the allowed range");
        return;
    }
    char before[37];
    if (rq->cursor != NULL && pf_cursor_decode(rq->cursor, before) != 0) {
        pf_reply_error(rep, 400, "invalid_cursor", "cursor is not one this service issued");
        return;
    }
    pf_mailbox_entry_t *rows = NULL;
    size_t n = 0;
    const char *err;
    /* one row more than asked tells whether another page follows, so the
     * last page carries no cursor to an empty page */
    if (pf_store_mailbox_list(rq->st, rq->mailbox, rq->cursor ? before : NULL, limit + 1, &rows,
                              &n, &err) != 0) {
        pf_reply_unavailable(rep, "list", err);
        return;
    }
    const char *next = NULL;
    if (n > (size_t)limit) {
        n = (size_t)limit;
        next = rows[n - 1].id;
    }
    char *json = pf_reader_render_list(rows, n, next);
    pf_mailbox_entries_free(&rows, n + (next ? 1 : 0));
    pf_reply_json(rep, 200, json, false);
}
