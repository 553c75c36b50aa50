/* libFuzzer target: the wire codec (lib/proto/wire.c), the first code
 * that touches bytes from the network in the broker and in the client
 * library.
 *
 * Input layout: byte 0 picks the side (even: what a broker accepts, odd:
 * what a client accepts); then frames, each a 2-byte little-endian length
 * and that many bytes; bytes left over after the last whole frame form one
 * last frame.  Limits are small so the fuzzer reaches every limit check.
 * Besides "no crash, no leak, no undefined behaviour" the target checks
 * one property: a SEND the decoder accepts is accepted by the encoder, and
 * its encoding decodes to the same fields again (decoder and encoder apply
 * the same rules).  And one of pf_wire_text_clean, over every frame read
 * as a text (up to its first NUL, so invalid UTF-8 reaches it too): the
 * cleaned text passes pf_wire_text_ok, one-line and multi-line, and a text
 * that passes already is left alone. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_FRAMES 300
#define S_MAX_TEXT 4096

static void s_same_send(const pf_wire_send_t *a, const pf_wire_send_t *b)
{
    if (strcmp(a->request_id, b->request_id) != 0 || a->recipient_count != b->recipient_count ||
        strcmp(a->title, b->title) != 0 || strcmp(a->subject, b->subject) != 0 ||
        strcmp(a->body, b->body) != 0 || strcmp(a->reference, b->reference) != 0 ||
        a->read_receipt != b->read_receipt || a->level != b->level ||
        a->attachment_count != b->attachment_count)
        abort();
    for (size_t i = 0; i < a->recipient_count; i++)
        if (strcmp(a->recipients[i], b->recipients[i]) != 0)
            abort();
    for (size_t i = 0; i < a->attachment_count; i++) {
        const pf_wire_attachment_t *x = &a->attachments[i], *y = &b->attachments[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->media_type, y->media_type) != 0 ||
            x->size != y->size || (x->size && memcmp(x->data, y->data, x->size) != 0))
            abort();
    }
}

static void s_clean_holds(const pf_wire_frame_t *f)
{
    char text[S_MAX_TEXT + 1];
    size_t len = f->size < S_MAX_TEXT ? f->size : S_MAX_TEXT;
    memcpy(text, f->data, len);
    text[len] = '\0';
    for (int multiline = 0; multiline < 2; multiline++) {
        char *clean = pf_wire_text_clean(text, multiline);
        bool ok = pf_wire_text_ok(text, 0, SIZE_MAX, multiline);
        if (ok != (clean == NULL) ||
            (clean != NULL && !pf_wire_text_ok(clean, 0, SIZE_MAX, multiline)))
            abort();
        free(clean);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned accept = (data[0] & 1) ? PF_WIRE_TO_CLIENT : PF_WIRE_TO_BROKER;
    pf_wire_limits_t lim = {.max_header = 8192,
                            .max_attachment = 1024,
                            .max_total = 12288,
                            .max_attachments = 8,
                            .max_recipients = 8,
                            .max_body = 2048};
    static pf_wire_frame_t frames[S_MAX_FRAMES];
    size_t n = 0, off = 1;
    while (off < size && n < S_MAX_FRAMES) {
        if (size - off >= 2) {
            size_t len = (size_t)data[off] | ((size_t)data[off + 1] << 8);
            if (len <= size - off - 2) {
                frames[n++] = (pf_wire_frame_t){data + off + 2, len, NULL};
                off += 2 + len;
                continue;
            }
        }
        frames[n++] = (pf_wire_frame_t){data + off, size - off, NULL};
        off = size;
    }
    for (size_t i = 0; i < n; i++)
        s_clean_holds(&frames[i]);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    if (pf_wire_decode(frames, n, &lim, accept, &m, &err) != 0) {
        if (err.code == NULL || err.reason[0] == '\0')
            abort(); /* every refusal must say what and why */
        return 0;
    }
    if (m.cmd == PF_WIRE_SEND) {
        pf_wire_out_t out = {0};
        pf_wire_error_t e2;
        if (pf_wire_encode_send(&m.send, &lim, &out, &e2) == 0) {
            pf_wire_msg_t m2;
            if (pf_wire_decode(out.frames, out.count, &lim, PF_WIRE_TO_BROKER, &m2, &e2) != 0)
                abort();
            s_same_send(&m.send, &m2.send);
            pf_wire_msg_clear(&m2);
        } else if (strcmp(e2.code, PF_WIRE_E_TOO_LARGE) != 0) {
            /* re-encoding may grow the header (escapes, defaults), so only a
             * size refusal is acceptable here */
            abort();
        }
        pf_wire_out_clear(&out);
    }
    pf_wire_msg_clear(&m);
    return 0;
}
