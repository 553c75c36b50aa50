/* libFuzzer target: the check of a ZAP request's frames (pf_zap_parse in
 * lib/broker/zap.c), which decides whether the broker's ZAP handler looks
 * a CURVE key up in the database.  libzmq builds the request; the client
 * chooses the key in it.
 *
 * Input layout: frames, each a 1-byte length and that many bytes; bytes
 * left over after the last whole frame form one last frame; at most
 * S_MAX_FRAMES frames (the handler keeps 16, so more than it ever passes).
 * Each frame is handed over in its own heap buffer of its exact size, and
 * the frame array has exactly n entries, so ASan sees any read past one.
 * Properties besides "no crash, no leak, no undefined behaviour":
 *   - a request is accepted exactly when it has seven frames, version
 *     "1.0", mechanism "CURVE" and 32 bytes of credentials (an oracle
 *     written apart from the function), and a refusal names the first
 *     rule broken in the documented order (count below six, version,
 *     mechanism, count, key length);
 *   - an accepted key comes back as 40 characters of Z85 that decode to
 *     the credentials frame (it goes into a log line and the User-Id);
 *   - the request id to echo is frame 1 when there is one, else empty. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_private.h"
#include "proto/curve.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_FRAMES 32

static bool s_is(const pf_zap_frame_t *f, const char *s)
{
    return f->size == strlen(s) && memcmp(f->data, s, f->size) == 0;
}

/* The refusal the rules give, or NULL for a well-formed request. */
static const char *s_expected(const pf_zap_frame_t *f, size_t n)
{
    if (n < 6)
        return "wrong number of frames";
    if (!s_is(&f[0], "1.0"))
        return "unsupported ZAP version";
    if (!s_is(&f[5], "CURVE"))
        return "mechanism is not CURVE";
    if (n != 7)
        return "wrong number of frames";
    if (f[6].size != 32)
        return "CURVE key is not 32 bytes";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off[S_MAX_FRAMES], len[S_MAX_FRAMES];
    size_t n = 0, pos = 0;
    while (pos < size && n < S_MAX_FRAMES) {
        size_t l = data[pos];
        if (l <= size - pos - 1) {
            off[n] = pos + 1;
            len[n++] = l;
            pos += 1 + l;
        } else {
            off[n] = pos;
            len[n++] = size - pos;
            pos = size;
        }
    }
    pf_zap_frame_t *f = xcalloc(n > 0 ? n : 1, sizeof(*f));
    for (size_t i = 0; i < n; i++)
        f[i] = (pf_zap_frame_t){xmemdup(data + off[i], len[i]), len[i]};

    pf_zap_request_t req;
    memset(&req, 0x55, sizeof(req));
    const char *err = NULL;
    int rc = pf_zap_parse(f, n, &req, &err);
    const char *want = s_expected(f, n);
    if (want == NULL) {
        unsigned char back[32];
        if (rc != 0 || strlen(req.key) != 40 || !pf_curve_z85_valid(req.key) ||
            zmq_z85_decode(back, req.key) == NULL || memcmp(back, f[6].data, 32) != 0)
            abort();
    } else if (rc != -1 || err == NULL || strcmp(err, want) != 0 || req.key[0] != '\0') {
        abort();
    }
    if (n >= 2 ? req.request_id != f[1].data || req.request_id_len != f[1].size
               : req.request_id == NULL || req.request_id_len != 0)
        abort();

    for (size_t i = 0; i < n; i++)
        free((void *)f[i].data);
    free(f);
    return 0;
}
