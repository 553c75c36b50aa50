#ifndef PF_PROTO_NOTICE_H
#define PF_PROTO_NOTICE_H
/* The notice document: the plaintext inside each stored JWE (content type
 * "application/vnd.postfach.notice+json").  Written by the broker, read by
 * the reader and by citizens' own clients that decrypt the /jwe copy:
 *
 *   {"v":1, "title":"...", "subject":"...", "body":"...", "reference":"...",
 *    "sender":"...", "sent_at":"RFC 3339",
 *    "attachments":[{"name":"a.pdf","media_type":"application/pdf",
 *                    "size":123,"data":"<base64>"}]}
 *
 * The decoder treats its input as untrusted (a citizen's client may have
 * made the JWE); sizes are checked against the decoded data. */
#include <stddef.h>

#define PF_NOTICE_CTY "application/vnd.postfach.notice+json"
#define PF_NOTICE_VERSION 1

typedef struct {
    char *name;
    char *media_type;
    unsigned char *data;
    size_t size;
} pf_attachment_t;

typedef struct {
    char *title;
    char *subject;
    char *body;
    char *reference;
    char *sender;
    char *sent_at;
    pf_attachment_t *attachments;
    size_t attachment_count;
} pf_notice_t;

/* JSON text (caller frees), length in *len_r. */
char *pf_notice_encode(const pf_notice_t *n, size_t *len_r);
/* Fills n_r (owned strings; release with pf_notice_clear).  When
 * want_data is 0, attachment bytes are not decoded (data NULL, size from
 * the document): listing attachments costs no base64 work. */
int pf_notice_decode(const char *json, size_t len, int want_data, pf_notice_t *n_r,
                     const char **error_r);
/* Frees everything; attachment bytes and texts are wiped first. */
void pf_notice_clear(pf_notice_t *n);

#endif
