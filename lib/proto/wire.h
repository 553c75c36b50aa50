#ifndef PF_PROTO_WIRE_H
#define PF_PROTO_WIRE_H
/* The Postfach wire protocol between a procedure's DEALER socket and the
 * broker's ROUTER socket (docs/protocol.md is the normative description).
 * Every message is a list of ZeroMQ frames:
 *
 *   frame 0  protocol signature "PF1"
 *   frame 1  command: SEND ACK NACK HELLO RECEIPT RACK PING PONG
 *   ...      command-specific frames
 *
 * This codec knows nothing of ZeroMQ: it decodes from and encodes to
 * arrays of (pointer, size) frames, so it is testable and fuzzable on its
 * own.  Decoding treats every byte as untrusted: frame count and sizes are
 * checked against the limits before anything is allocated, strings must be
 * valid UTF-8 within their length limits, unknown JSON keys and trailing
 * frames are refused.  Every failure leaves through one exit with a
 * machine-readable code and a human-readable reason. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_WIRE_SIGNATURE "PF1"

/* NACK codes (the wire strings) */
#define PF_WIRE_E_MALFORMED "malformed"
#define PF_WIRE_E_TOO_LARGE "too_large"
#define PF_WIRE_E_UNSUPPORTED_VERSION "unsupported_version"
#define PF_WIRE_E_UNSUPPORTED_COMMAND "unsupported_command"
#define PF_WIRE_E_UNKNOWN_RECIPIENT "unknown_recipient"
#define PF_WIRE_E_CONFLICT "conflict"
#define PF_WIRE_E_BUSY "busy"
#define PF_WIRE_E_TEMPORARY "temporary"
#define PF_WIRE_E_FORBIDDEN "forbidden"

typedef enum {
    PF_WIRE_SEND = 1,
    PF_WIRE_ACK,
    PF_WIRE_NACK,
    PF_WIRE_HELLO,
    PF_WIRE_RECEIPT,
    PF_WIRE_RACK,
    PF_WIRE_PING,
    PF_WIRE_PONG,
} pf_wire_cmd_t;

/* Masks for pf_wire_decode: which commands a side accepts. */
#define PF_WIRE_BIT(cmd) (1u << (cmd))
#define PF_WIRE_TO_BROKER                                                                          \
    (PF_WIRE_BIT(PF_WIRE_SEND) | PF_WIRE_BIT(PF_WIRE_HELLO) | PF_WIRE_BIT(PF_WIRE_RACK) |          \
     PF_WIRE_BIT(PF_WIRE_PING))
#define PF_WIRE_TO_CLIENT                                                                          \
    (PF_WIRE_BIT(PF_WIRE_ACK) | PF_WIRE_BIT(PF_WIRE_NACK) | PF_WIRE_BIT(PF_WIRE_RECEIPT) |         \
     PF_WIRE_BIT(PF_WIRE_PONG))

/* Limits; pf_wire_limits_default gives the documented defaults.  A broker
 * may lower or raise the size limits by configuration; the absolute caps
 * below bound what any configuration can allow. */
typedef struct {
    size_t max_header;      /* SEND header frame, bytes (default 1 MiB) */
    size_t max_attachment;  /* one attachment frame (default 20 MiB) */
    size_t max_total;       /* all frames of a SEND together (default 25 MiB) */
    size_t max_attachments; /* default 32 */
    size_t max_recipients;  /* default 100 */
    size_t max_body;        /* body text, bytes (default 512 KiB) */
} pf_wire_limits_t;

#define PF_WIRE_ABS_MAX_ATTACHMENTS 256
#define PF_WIRE_ABS_MAX_RECIPIENTS 10000
#define PF_WIRE_MAX_REQUEST_ID 128
#define PF_WIRE_MAX_RECIPIENT_ID 128
#define PF_WIRE_MAX_TITLE 256
#define PF_WIRE_MAX_SUBJECT 1024
#define PF_WIRE_MAX_REFERENCE 256
#define PF_WIRE_MAX_NAME 255
#define PF_WIRE_MAX_MEDIA_TYPE 127
#define PF_WIRE_MAX_REASON 1024
#define PF_WIRE_MAX_CODE 32
#define PF_WIRE_MAX_TOKEN 16384
#define PF_WIRE_MAX_RACK 256
#define PF_WIRE_MAX_SMALL_FRAME 65536 /* ACK/NACK JSON frames */

void pf_wire_limits_default(pf_wire_limits_t *lim);

/* One frame.  For decoding only data/size are read.  Encoders set owned
 * when the frame's bytes were allocated by them (freed by
 * pf_wire_frames_free); borrowed frames point into the caller's data. */
typedef struct {
    const void *data;
    size_t size;
    void *owned;
} pf_wire_frame_t;

typedef struct {
    pf_wire_frame_t *frames;
    size_t count;
} pf_wire_out_t;

void pf_wire_out_clear(pf_wire_out_t *out);
/* Makes every borrowed frame of out its own copy, so that out may outlive
 * the data it was encoded from (the client's window resends it later). */
void pf_wire_out_own(pf_wire_out_t *out);

typedef struct {
    const char *name;
    const char *media_type;
    const unsigned char *data;
    size_t size;
} pf_wire_attachment_t;

/* A submission.  In a decoded message all pointers are borrowed: strings
 * from the message's parsed header (wiped and freed by pf_wire_msg_clear), attachment
 * bytes from the input frames (which must outlive the message). */
typedef struct {
    const char *request_id;
    const char **recipients;
    size_t recipient_count;
    const char *title;
    const char *subject;
    const char *body;
    const char *reference; /* "" when absent */
    bool read_receipt;
    int level; /* 1 normal, 2 substantiell, 3 hoch */
    pf_wire_attachment_t *attachments;
    size_t attachment_count;
} pf_wire_send_t;

typedef struct {
    const char *recipient;
    const char *message_id;
} pf_wire_copy_t;

typedef struct {
    pf_wire_cmd_t cmd;
    pf_wire_send_t send;    /* SEND */
    const char *request_id; /* ACK, NACK ("" in a NACK to an unreadable SEND) */
    pf_wire_copy_t *copies; /* ACK */
    size_t copy_count;
    const char *code, *reason; /* NACK */
    const char *jti;           /* RECEIPT */
    const char *token;         /* RECEIPT */
    const char **jtis;         /* RACK */
    size_t jti_count;
    /* private */
    void *json_;
    char *text_[2];
    size_t wipe_len_; /* text_[0] holds a SEND's texts: wiped on clear */
} pf_wire_msg_t;

typedef struct {
    const char *code; /* one of PF_WIRE_E_* */
    char reason[200];
    /* the request id of a SEND when it could be read, else "" */
    char request_id[PF_WIRE_MAX_REQUEST_ID + 1];
} pf_wire_error_t;

/* Decodes frames into *m_r.  accept is a mask of PF_WIRE_BIT(cmd) of the
 * commands this side expects; others are "unsupported_command".  Returns 0,
 * or -1 with *err_r filled (m_r is then cleared; nothing to free). */
int pf_wire_decode(const pf_wire_frame_t *frames, size_t count, const pf_wire_limits_t *lim,
                   unsigned accept, pf_wire_msg_t *m_r, pf_wire_error_t *err_r);
void pf_wire_msg_clear(pf_wire_msg_t *m);

/* Encoders: append the frames of one message to *out (which starts zeroed
 * or cleared).  pf_wire_encode_send checks the submission with the same
 * rules the decoder applies (returns -1 with *err_r when it would be
 * refused); attachment frames borrow the caller's bytes. */
int pf_wire_encode_send(const pf_wire_send_t *s, const pf_wire_limits_t *lim, pf_wire_out_t *out,
                        pf_wire_error_t *err_r);
/* The ACK's JSON frame alone (caller frees): the broker stores it as the
 * idempotency record and resends it verbatim for repeats. */
char *pf_wire_ack_json(const char *request_id, const pf_wire_copy_t *copies, size_t n);
void pf_wire_encode_ack_json(const char *ack_json, pf_wire_out_t *out);
void pf_wire_encode_nack(const char *request_id, const char *code, const char *reason,
                         pf_wire_out_t *out);
void pf_wire_encode_simple(pf_wire_cmd_t cmd, pf_wire_out_t *out); /* HELLO PING PONG */
void pf_wire_encode_receipt(const char *jti, const char *token, pf_wire_out_t *out);
void pf_wire_encode_rack(const char *const *jtis, size_t n, pf_wire_out_t *out);

const char *pf_wire_cmd_name(pf_wire_cmd_t cmd);
/* "normal" -> 1, "substantiell" -> 2, "hoch" -> 3; -1 otherwise. */
int pf_wire_level_parse(const char *s);
const char *pf_wire_level_name(int level);
/* Strict UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
bool pf_wire_utf8_valid(const void *s, size_t len);
/* Text shown to a citizen (title, subject, body, reference, file name):
 * valid UTF-8 of min..max bytes, no control characters but line breaks and
 * tabs when multiline, and in one-line texts no bidirectional override. */
bool pf_wire_text_ok(const char *s, size_t min, size_t max, bool multiline);
/* The repair of pf_wire_text_ok for a text that reaches a citizen without
 * having passed it: a stored notice the reader decrypts may have been made
 * by anyone holding the mailbox's public key, or stored before a rule was
 * tightened, and a notice is never kept from its addressee for its text.
 * Each code point pf_wire_text_ok refuses becomes U+FFFD, and so does each
 * invalid UTF-8 sequence (its maximal subpart, as Unicode 3.9 recommends:
 * one U+FFFD for a truncated sequence, one per stray byte).  The result
 * passes pf_wire_text_ok(result, 0, SIZE_MAX, multiline): the length
 * limits are not applied, as they are the broker's limits on admission
 * (partly configurable), not a property of a stored text; a replacement
 * may also make a text up to three times as long.
 * Returns NULL when s passes already (nothing changed, nothing allocated:
 * show s itself), else the cleaned copy (caller frees). */
char *pf_wire_text_clean(const char *s, bool multiline);
/* Mailbox id syntax, as in the schema: [A-Za-z0-9][A-Za-z0-9._:@-]{0,127} */
bool pf_wire_mailbox_id_valid(const char *s);

#endif
