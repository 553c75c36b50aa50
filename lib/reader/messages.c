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
 * Untrusted input: limit and cursor (parsed in route.c), and the rows'
 * texts, which are cleaned before they are shown (text.c). */
#include "reader/reader_private.h"

#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/log.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Appends "key":"value"; -1 when value is NULL or not UTF-8. */
static int s_str(pf_buf_t *b, const char *key, const char *value)
{
    pf_buf_puts(b, key);
    return value != NULL ? pf_buf_json_str(b, value) : -1;
}

/* One entry, written straight into the page (a jansson tree per entry
 * and its dump were 58% of the reader's CPU per listing of 50, measured
 * with perf; docs/architecture.md); -1 with b unchanged when a text is
 * not UTF-8, which the text columns cannot hold, so the entry is skipped
 * rather than the whole page failed. */
static int s_entry(pf_buf_t *b, const pf_mailbox_entry_t *e, bool first)
{
    size_t mark = b->len;
    pf_buf_puts(b, first ? "{" : ",{");
    if (s_str(b, "\"id\":", e->id) != 0 || s_str(b, ",\"sender\":", e->sender) != 0 ||
        s_str(b, ",\"title\":", e->title) != 0 ||
        s_str(b, ",\"reference\":", e->reference) != 0 ||
        s_str(b, ",\"created_at\":", e->created_at) != 0)
        goto skip;
    if (e->read_at == NULL)
        pf_buf_puts(b, ",\"read_at\":null");
    else if (s_str(b, ",\"read_at\":", e->read_at) != 0)
        goto skip;
    pf_buf_printf(b, ",\"size\":%lld,\"attachment_count\":%d", (long long)e->size,
                  e->attachment_count);
    if (s_str(b, ",\"required_level\":", pf_reader_level_name(e->required_level)) != 0)
        goto skip;
    pf_buf_puts(b, "}");
    return 0;
skip:
    b->len = mark;
    b->data[mark] = '\0';
    return -1;
}

char *pf_reader_render_list(const pf_mailbox_entry_t *rows, size_t n, const char *next_id)
{
    pf_buf_t b;
    pf_buf_init(&b);
    pf_buf_puts(&b, "{\"messages\":[");
    bool first = true;
    for (size_t i = 0; i < n; i++)
        if (s_entry(&b, &rows[i], first) == 0)
            first = false;
    char cursor[PF_CURSOR_LEN + 1];
    if (next_id != NULL && pf_cursor_encode(next_id, cursor) == 0)
        pf_buf_printf(&b, "],\"next_cursor\":\"%s\"}", cursor); /* base64url */
    else
        pf_buf_puts(&b, "],\"next_cursor\":null}");
    return pf_buf_steal(&b, NULL);
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
    /* title and reference are the sender's texts, stored in clear: they
     * are cleaned like an opened notice's (text.c) */
    pf_cleaned_t cleaned;
    memset(&cleaned, 0, sizeof(cleaned));
    for (size_t i = 0; i < n; i++)
        pf_reader_clean_entry(&rows[i], &cleaned);
    if (cleaned.count > 0)
        pf_warn("event=unsafe_text route=%s replaced=%d fields=%s", rq->route->pattern,
                cleaned.count, cleaned.list);
    char *json = pf_reader_render_list(rows, n, next);
    pf_mailbox_entries_free(&rows, n + (next ? 1 : 0));
    pf_reply_json(rep, 200, json, false);
}
