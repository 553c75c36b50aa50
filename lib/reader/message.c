/* GET /v1/messages/{id}: open one notice, and the opening shared with the
 * attachment download (pf_reader_open).
 *
 * Callers: server.c (after the token was verified), attachment.c.
 * Steps: load the copy scoped by the token's mailbox, with the wrapped
 * private key of its key version (one query) -> check the token's
 * assurance level against the notice's -> unwrap it under the KEK (context
 * "<mailbox>:<version>", so a wrapped key moved to another mailbox does not
 * open) -> decrypt the JWE -> decode the notice -> replace what its texts
 * must not show a citizen (text.c) -> on the first retrieval, record it
 * (read_at and the read receipt in one statement) -> answer.
 *
 * Decisions:
 * - The unwrapped key is not cached.  Opening a notice is a human action
 *   (a few per session), and unwrapping costs one AES-GCM and a DER parse
 *   (the wrapped key comes with the copy's row), about 40 us for P-256; a cache
 *   would keep private keys of many citizens in memory for no noticeable
 *   gain, against the rule that key material is not kept in long-lived
 *   structures.  The key lives for one request and is destroyed at its end.
 * - The retrieval is recorded only after the content was decrypted and
 *   decoded, and the content is sent only after the record is committed.
 *   A copy that cannot be decrypted is not marked read (the citizen has
 *   not received anything; a read receipt would be false proof); it is
 *   reported in the log for the operator and answers 500.  A failed record
 *   answers 503 without content: the retry either finds the record (it
 *   landed) or makes it.
 * - The read time is set once (read_at IS NULL in the UPDATE); later
 *   retrievals report the stored time.  The receipt row is written only by
 *   the request whose UPDATE set read_at, in the same statement (so one
 *   implicit transaction, one round trip), and the UNIQUE (mailbox,
 *   message, event) constraint is the last guard against a second one.
 *   The read time is the reader's clock (the receipt that states it is
 *   signed before the statement runs); hosts run NTP.
 * Untrusted input: the id (already syntax-checked), and the stored copy
 * itself (a broken row must not crash the reader, and its texts are not
 * trusted to have passed the broker's checks). */
#include "reader/reader_private.h"

#include "receipt/receipt.h"
#include "store/admin.h"
#include "util/b64url.h"
#include "util/jsonstr.h"
#include "util/log.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The copy exists but cannot be opened: report it for the operator (the
 * row stays as it is) and tell the citizen without details. */
static int s_cannot_open(const pf_request_t *rq, pf_reply_t *rep, const char *why,
                         const char *error)
{
    char esc[256];
    pf_error("event=cannot_open message=%s reason=%s error=\"%s\"",
             rq->route->message_id, why, pf_log_escape(error ? error : "-", esc, sizeof(esc)));
    pf_reply_error(rep, 500, "cannot_open", "this notice cannot be opened; the operator has been notified");
    return -1;
}

/* Unwraps the private key of the copy's key version.  Returns 0 with
 * *key_r, or -1 with rep filled. */
static int s_private_key(const pf_request_t *rq, const pf_mailbox_message_t *m, pf_key_t **key_r,
                         pf_reply_t *rep)
{
    if (m->wrapped_key == NULL) {
        /* the citizen keeps this key (imported public key): only the
         * citizen's own client can open the copy, from the /jwe route */
        pf_reply_error(rep, 409, "client_key",
                       "this mailbox's private key is held by its owner; fetch the /jwe copy "
                       "and decrypt it locally");
        return -1;
    }
    const char *err = NULL;
    int rc = -1;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char *context = xasprintf("%s:%d", rq->mailbox, m->key_version);
    const pf_kek_t *kek = pf_keyring_find(rq->sh->keyring, m->kek_id);
    if (kek == NULL)
        s_cannot_open(rq, rep, "kek_unknown", "wrapped under a key-encryption key not in kek_file");
    else if (pf_kek_unwrap(kek, context, m->wrapped_key, m->wrapped_key_len, &der, &der_len,
                           &err) != 0)
        s_cannot_open(rq, rep, "unwrap", err);
    else if (pf_key_from_der(der, der_len, key_r, &err) != 0)
        s_cannot_open(rq, rep, "key_parse", err);
    else
        rc = 0;
    if (der != NULL) {
        pf_wipe(der, der_len);
        free(der);
    }
    free(context);
    return rc;
}

/* Decrypts and decodes the copy.  Returns 0 with *n_r, or -1 with rep. */
static int s_decrypt(const pf_request_t *rq, const pf_mailbox_message_t *m, bool want_data,
                     pf_notice_t *n_r, pf_reply_t *rep)
{
    if (m->iv_len != 12 || m->tag_len != 16)
        return s_cannot_open(rq, rep, "jwe_parts", "stored iv or tag has the wrong length");
    pf_key_t *key = NULL;
    if (s_private_key(rq, m, &key, rep) != 0)
        return -1;
    pf_jwe_t jwe;
    memset(&jwe, 0, sizeof(jwe));
    /* borrowed views of the row; not released through pf_jwe_destroy */
    jwe.protected_b64 = m->jwe_protected;
    jwe.encrypted_key = m->encrypted_key;
    jwe.encrypted_key_len = m->encrypted_key_len;
    memcpy(jwe.iv, m->iv, 12);
    jwe.ciphertext = m->ciphertext;
    jwe.ciphertext_len = m->ciphertext_len;
    memcpy(jwe.tag, m->tag, 16);
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    const char *err = NULL;
    int rc = pf_jwe_open(key, &jwe, &plain, &plain_len, &err);
    pf_key_destroy(&key);
    if (rc != 0)
        return s_cannot_open(rq, rep, "decrypt", err);
    rc = pf_notice_decode((const char *)plain, plain_len, want_data ? 1 : 0, n_r, &err);
    pf_wipe(plain, plain_len);
    free(plain);
    if (rc != 0)
        return s_cannot_open(rq, rep, "notice_decode", err);
    return 0;
}

/* The read receipt (a SET signed with the service key). Caller frees. */
static char *s_receipt(const pf_request_t *rq, const pf_mailbox_message_t *m, const char *jti,
                       int64_t read_ms, const char **error_r)
{
    pf_receipt_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.jti, sizeof(r.jti), "%s", jti);
    snprintf(r.message_id, sizeof(r.message_id), "%s", m->meta.id);
    r.txn = m->request_id;
    r.sender = m->meta.sender;
    r.mailbox = (char *)rq->mailbox;
    r.event = PF_EVENT_READ;
    r.event_time_ms = read_ms;
    r.iat = (int64_t)time(NULL);
    /* binds the receipt to this very copy: the JWE tag authenticates its
     * ciphertext and header */
    r.jwe_tag = pf_b64url_encode(m->tag, m->tag_len);
    char *token = pf_receipt_sign(rq->sh->receipt_key, rq->sh->receipt_issuer, &r, error_r);
    free(r.jwe_tag);
    return token;
}

/* The read receipt for read_ms; on failure a 500 in rep and -1. */
static int s_sign_read(const pf_request_t *rq, const pf_mailbox_message_t *m, const char *jti,
                       int64_t read_ms, char **token_r, pf_reply_t *rep)
{
    const char *err = NULL;
    *token_r = s_receipt(rq, m, jti, read_ms, &err);
    if (*token_r != NULL)
        return 0;
    char esc[256];
    pf_error("event=receipt_sign_failed message=%s error=\"%s\"", m->meta.id,
             pf_log_escape(err, esc, sizeof(esc)));
    pf_reply_error(rep, 500, "internal", "the retrieval could not be recorded");
    return -1;
}

/* First retrieval: read_at and the receipt in one statement.  The
 * receipt is signed before it is known whether this request wins the
 * first retrieval (its event time is the read time the statement sets);
 * a request that loses signs for nothing, which is rare.  Returns 0 with
 * *read_at_r (the stored time, whoever set it), or -1 with rep. */
static int s_record_read(const pf_request_t *rq, const pf_mailbox_message_t *m, char **read_at_r,
                         pf_reply_t *rep)
{
    const char *err = NULL;
    char *token = NULL;
    char jti[PF_UUID_STRLEN + 1];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (m->read_receipt) {
        pf_uuid7_generate(jti);
        if (s_sign_read(rq, m, jti, now_ms, &token, rep) != 0)
            return -1;
    }
    int64_t read_ms = 0;
    int updated = pf_store_message_record_read(rq->st, rq->mailbox, m->meta.id, now_ms, false,
                                               token != NULL ? jti : NULL, token, read_at_r,
                                               &read_ms, &err);
    if (updated == 2) {
        /* the copy expired unread while our read time was taken: that time
         * could lie inside the period and contradict the "expired"
         * receipt; the database's clock, after the expiry's decision,
         * stands instead (and the receipt is signed again with it) */
        now_ms = read_ms > now_ms ? read_ms : now_ms;
        free(token);
        token = NULL;
        if (m->read_receipt && s_sign_read(rq, m, jti, now_ms, &token, rep) != 0)
            return -1;
        updated = pf_store_message_record_read(rq->st, rq->mailbox, m->meta.id, now_ms, true,
                                               token != NULL ? jti : NULL, token, read_at_r,
                                               &read_ms, &err);
    }
    free(token);
    if (updated < 0) {
        pf_reply_unavailable(rep, "record_read", err);
        return -1;
    }
    if (*read_at_r == NULL) {
        /* gone between the SELECT and now (deleted by retention) */
        pf_reply_no_message(rep);
        return -1;
    }
    if (updated == 1) {
        if (m->read_receipt)
            pf_wake_poke(rq->sh->wake); /* committed: the relay may claim it */
        pf_info("event=first_retrieval message=%s receipt=%s", m->meta.id,
                m->read_receipt ? "yes" : "no");
    }
    return 0;
}

/* What the copy's texts must not show a citizen is replaced, not refused:
 * a notice is never kept from its addressee for its text (text.c).  One
 * line tells the operator, who should find out how it was stored. */
static void s_clean(const pf_request_t *rq, pf_mailbox_message_t *m, pf_notice_t *n)
{
    pf_cleaned_t c;
    memset(&c, 0, sizeof(c));
    pf_reader_clean_notice(m, n, &c);
    if (c.count > 0)
        pf_warn("event=unsafe_text message=%s route=%s replaced=%d fields=%s", m->meta.id,
                rq->route->pattern, c.count, c.list);
}

int pf_reader_open(const pf_request_t *rq, bool want_data, pf_mailbox_message_t *m_r,
                   pf_notice_t *n_r, char **read_at_r, pf_reply_t *rep)
{
    memset(n_r, 0, sizeof(*n_r));
    *read_at_r = NULL;
    const char *err = NULL;
    int found = pf_store_message_get(rq->st, rq->mailbox, rq->route->message_id,
                                     PF_MESSAGE_SECRET, m_r, &err);
    if (found < 0) {
        pf_reply_unavailable(rep, "message", err);
        return -1;
    }
    if (found == 0) {
        pf_reply_no_message(rep);
        return -1;
    }
    if ((int)rq->level < m_r->meta.required_level) {
        pf_reply_error(rep, 403, "insufficient_level",
                       "this notice requires a higher assurance level of your login");
        goto fail;
    }
    if (s_decrypt(rq, m_r, want_data, n_r, rep) != 0)
        goto fail;
    s_clean(rq, m_r, n_r);
    /* an attachment that does not exist: the citizen receives nothing, so
     * nothing is recorded (the index is known only after decrypting) */
    if (rq->route->id == PF_ROUTE_ATTACHMENT &&
        (rq->route->attachment < 0 || (size_t)rq->route->attachment >= n_r->attachment_count)) {
        pf_reply_error(rep, 404, "not_found", "no such attachment");
        goto fail;
    }
    if (m_r->meta.read_at != NULL)
        *read_at_r = xstrdup(m_r->meta.read_at);
    else if (s_record_read(rq, m_r, read_at_r, rep) != 0)
        goto fail;
    return 0;
fail:
    pf_notice_clear(n_r);
    pf_mailbox_message_clear(m_r);
    return -1;
}

/* ,"key":"value" pairs of strings.  With out NULL, counts them and
 * checks every value is UTF-8 (-1 when one is not); otherwise writes
 * pairs counted before.  Returns the length. */
static long s_pairs(char *out, const char *const *kv, size_t n)
{
    long len = 0;
    for (size_t i = 0; i < n; i += 2) {
        size_t k = strlen(kv[i]);
        if (out == NULL) {
            long e = pf_json_escaped_len(kv[i + 1]);
            if (e < 0)
                return -1;
            len += 6 + (long)k + e;
            continue;
        }
        char *o = out + len;
        *o++ = ',';
        *o++ = '"';
        memcpy(o, kv[i], k);
        o += k;
        *o++ = '"';
        *o++ = ':';
        len = pf_json_put_str(o, kv[i + 1]) - out;
    }
    return len;
}

#define S_OR(a, b) ((a) != NULL ? (a) : (b))

/* Attachment i of the listing in the notice, {"index":..,"name":..,
 * "media_type":..,"size":..} after a comma unless first.  With out NULL,
 * counts (-1 when the name is not UTF-8); otherwise writes what was
 * counted.  Returns the length. */
static long s_attachment(char *out, const pf_attachment_t *a, size_t i)
{
    const char *akv[4] = {"name", S_OR(a->name, ""), "media_type",
                          pf_reader_media_type(a->media_type)};
    char head[48], tail[40];
    int h = snprintf(head, sizeof(head), "%s{\"index\":%zu", i > 0 ? "," : "", i);
    int t = snprintf(tail, sizeof(tail), ",\"size\":%zu}", a->size);
    long p;
    if (out == NULL) {
        p = s_pairs(NULL, akv, 4);
        if (p < 0)
            return -1;
    } else {
        memcpy(out, head, (size_t)h);
        p = s_pairs(out + h, akv, 4);
        memcpy(out + h + p, tail, (size_t)t);
    }
    return h + p + t;
}

/* The notice for the citizen, written in one pass into one buffer of its
 * exact size: it holds the plaintext, so no growing buffer may leave
 * copies of it behind (the reply wipes this one).  NULL when a text is
 * not UTF-8.  Caller frees. */
static char *s_render(const pf_mailbox_message_t *m, const pf_notice_t *n, const char *read_at)
{
    const char *kv[] = {"sender", m->meta.sender,
                        "title", S_OR(n->title, m->meta.title),
                        "reference", S_OR(n->reference, m->meta.reference),
                        "subject", S_OR(n->subject, ""),
                        "body", S_OR(n->body, ""),
                        "sent_at", S_OR(n->sent_at, ""),
                        "created_at", m->meta.created_at,
                        "read_at", read_at,
                        "required_level", pf_reader_level_name(m->meta.required_level)};
    size_t nkv = sizeof(kv) / sizeof(kv[0]);
    for (size_t i = 1; i < nkv; i += 2)
        if (kv[i] == NULL)
            return NULL;
    /* {"id":"<uuid>" + pairs + ,"size":N,"attachments":[...]} */
    long len = s_pairs(NULL, kv, nkv);
    if (len < 0)
        return NULL;
    size_t total = 8 + strlen(m->meta.id) + 1 + (size_t)len + 32 + 17 + 2 + 1;
    for (size_t i = 0; i < n->attachment_count; i++) {
        long alen = s_attachment(NULL, &n->attachments[i], i);
        if (alen < 0)
            return NULL;
        total += (size_t)alen;
    }
    char *text = xmalloc(total + 1);
    char *o = text;
    o += sprintf(o, "{\"id\":\"%s\"", m->meta.id); /* a uuid from the database */
    o += s_pairs(o, kv, nkv);
    o += sprintf(o, ",\"size\":%lld,\"attachments\":[", (long long)m->meta.size);
    for (size_t i = 0; i < n->attachment_count; i++)
        o += s_attachment(o, &n->attachments[i], i);
    *o++ = ']';
    *o++ = '}';
    *o = '\0';
    if ((size_t)(o - text) > total)
        abort(); /* the size above is an upper bound by construction */
    return text;
}

void pf_reader_message(const pf_request_t *rq, pf_reply_t *rep)
{
    pf_mailbox_message_t m;
    pf_notice_t n;
    char *read_at = NULL;
    if (pf_reader_open(rq, false, &m, &n, &read_at, rep) != 0)
        return;
    char *json = s_render(&m, &n, read_at);
    if (json == NULL) {
        /* a decoded notice with a text that is not UTF-8 */
        pf_reply_error(rep, 500, "cannot_open", "this notice cannot be shown");
    } else {
        pf_reply_json(rep, 200, json, true);
    }
    free(read_at);
    pf_notice_clear(&n);
    pf_mailbox_message_clear(&m);
}
