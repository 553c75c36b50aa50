/* libFuzzer target: the notice document decoder (lib/proto/notice.c), the
 * plaintext inside each stored JWE.  The reader decodes it after
 * decryption; the JWE may have been made by anyone who holds the mailbox's
 * public key, so the document is untrusted.
 *
 * Input: one JSON text, decoded without and with attachment data (the
 * listing and the download paths).  Properties besides "no crash, no
 * leak, no undefined behaviour":
 *   - what decodes with data also decodes without, with the same fields;
 *   - a decoded notice encodes to a document that decodes to the same
 *     fields again (encoder and decoder agree);
 *   - every text the reader shows a citizen, cleaned as the reader cleans
 *     it (pf_wire_text_clean), passes pf_wire_text_ok, and is left alone
 *     exactly when it passes already. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/notice.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_same(const pf_notice_t *a, const pf_notice_t *b, int with_data)
{
    if (strcmp(a->title, b->title) != 0 || strcmp(a->subject, b->subject) != 0 ||
        strcmp(a->body, b->body) != 0 || strcmp(a->reference, b->reference) != 0 ||
        strcmp(a->sender, b->sender) != 0 || strcmp(a->sent_at, b->sent_at) != 0 ||
        a->attachment_count != b->attachment_count)
        abort();
    for (size_t i = 0; i < a->attachment_count; i++) {
        const pf_attachment_t *x = &a->attachments[i], *y = &b->attachments[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->media_type, y->media_type) != 0 ||
            x->size != y->size)
            abort();
        if (with_data && x->size > 0 && memcmp(x->data, y->data, x->size) != 0)
            abort();
    }
}

static void s_clean_holds(const char *text, bool multiline)
{
    char *clean = pf_wire_text_clean(text, multiline);
    bool ok = pf_wire_text_ok(text, 0, SIZE_MAX, multiline);
    if (ok != (clean == NULL) || (clean != NULL && !pf_wire_text_ok(clean, 0, SIZE_MAX, multiline)))
        abort();
    free(clean);
}

/* The texts lib/reader shows (message.c): the body may run over lines. */
static void s_clean_texts(const pf_notice_t *n)
{
    s_clean_holds(n->title, false);
    s_clean_holds(n->subject, false);
    s_clean_holds(n->body, true);
    s_clean_holds(n->reference, false);
    s_clean_holds(n->sent_at, false);
    for (size_t i = 0; i < n->attachment_count; i++)
        s_clean_holds(n->attachments[i].name, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    const char *json = (const char *)data;
    pf_notice_t meta, full;
    const char *err = NULL;
    int meta_ok = pf_notice_decode(json, size, 0, &meta, &err) == 0;
    if (!meta_ok && err == NULL)
        abort();
    err = NULL;
    int full_ok = pf_notice_decode(json, size, 1, &full, &err) == 0;
    if (!full_ok && (err == NULL || full.title != NULL || full.attachments != NULL))
        abort();
    if (full_ok) {
        if (!meta_ok)
            abort();
        s_same(&meta, &full, 0);
        s_clean_texts(&full);
        size_t len = 0;
        char *enc = pf_notice_encode(&full, &len);
        pf_notice_t again;
        if (pf_notice_decode(enc, len, 1, &again, &err) != 0)
            abort();
        s_same(&full, &again, 1);
        pf_notice_clear(&again);
        free(enc);
        pf_notice_clear(&full);
    }
    if (meta_ok)
        pf_notice_clear(&meta);
    return 0;
}
