/* Accepting a batch of submissions: the broker's write path.
 *
 * Callers: broker.c, with up to batch_max decoded SENDs read in one go.
 * For each SEND, in order: the sender must be active; a request id seen
 * before in this batch follows the first one's fate; a request id already
 * stored gets the stored ACK again (same payload hash) or "conflict";
 * every recipient must have an open mailbox with a public key; then the
 * notice document is built once, sealed once per recipient (a fresh
 * content key each), and a "delivered" receipt is signed per copy.  All
 * surviving submissions go to the database in ONE transaction, and their
 * ACKs are sent only after COMMIT returned success.
 *
 * Invariants: every SEND gets exactly one answer; plaintext (the notice
 * document) is wiped as soon as it is sealed; the broker never holds a
 * private key of a mailbox.  On database trouble the answer is
 * "temporary", never an ACK; a COMMIT with unknown outcome is settled by
 * looking the request id up after reconnecting. */
#include "broker/broker_private.h"
#include "proto/notice.h"
#include "receipt/receipt.h"
#include "store/submit.h"
#include "util/b64url.h"
#include "util/buf.h"
#include "util/crashpoint.h"
#include "util/log.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cached recipient keys: a full cache is simply emptied (keys are cheap to
 * re-parse once; a bound matters more than a clever eviction) */
#define S_KEY_CACHE_MAX 4096

typedef enum { S_OPEN = 0, S_SEALED, S_ANSWERED, S_FOLLOWER } s_state_t;

typedef struct {
    pf_broker_send_t *it;
    s_state_t state;
    char *sender_name;
    unsigned char hash[32];
    size_t leader; /* S_FOLLOWER: index of the first SEND with this request id */
    /* sealed copies */
    pf_submit_t sub;
    pf_jwe_t **jwes;
    char **tokens;
    /* the answer sent */
    char *ack; /* ACK JSON, or NULL for a NACK */
    const char *nack_code;
    char nack_reason[256];
} s_work_t;

static const void *s_rid(const s_work_t *w, size_t *len_r)
{
    *len_r = zmq_msg_size(&w->it->frames[0]);
    return zmq_msg_data(&w->it->frames[0]);
}

static void s_ack(pf_broker_t *b, s_work_t *w, const char *ack_json)
{
    size_t rl;
    const void *rid = s_rid(w, &rl);
    pf_wire_out_t out = {0};
    pf_wire_encode_ack_json(ack_json, &out);
    pf_broker_reply(b, rid, rl, &out);
    pf_wire_out_clear(&out);
    free(w->ack);
    w->ack = xstrdup(ack_json);
    w->state = S_ANSWERED;
    char esc[300];
    pf_info("event=ack sender=%s request_id=\"%s\"", w->sender_name ? w->sender_name : "?",
            pf_log_escape(w->it->msg.send.request_id, esc, sizeof(esc)));
    pf_crashpoint("after_ack");
}

static void s_nack(pf_broker_t *b, s_work_t *w, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_nack(pf_broker_t *b, s_work_t *w, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->nack_reason, sizeof(w->nack_reason), fmt, ap);
    va_end(ap);
    w->nack_code = code;
    size_t rl;
    const void *rid = s_rid(w, &rl);
    pf_broker_nack(b, rid, rl, w->it->msg.send.request_id, code, w->nack_reason);
    w->state = S_ANSWERED;
    char esc[300], resc[300];
    pf_info("event=nack sender=%s request_id=\"%s\" code=%s reason=\"%s\"",
            w->sender_name ? w->sender_name : "?",
            pf_log_escape(w->it->msg.send.request_id, esc, sizeof(esc)), code,
            pf_log_escape(w->nack_reason, resc, sizeof(resc)));
}

static void s_hash_field(pf_buf_t *c, const void *p, size_t len)
{
    unsigned char l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    pf_buf_append(c, l, 8);
    pf_buf_append(c, p, len);
}

static void s_hash_str(pf_buf_t *c, const char *s)
{
    s_hash_field(c, s ? s : "", s ? strlen(s) : 0);
}

void pf_broker_payload_hash(const pf_wire_send_t *s, unsigned char out[32])
{
    pf_buf_t c;
    pf_buf_init(&c);
    s_hash_str(&c, "postfach submission v1");
    s_hash_str(&c, s->request_id);
    char num[32];
    snprintf(num, sizeof(num), "%zu", s->recipient_count);
    s_hash_str(&c, num);
    for (size_t i = 0; i < s->recipient_count; i++)
        s_hash_str(&c, s->recipients[i]);
    s_hash_str(&c, s->title);
    s_hash_str(&c, s->subject);
    s_hash_str(&c, s->body);
    s_hash_str(&c, s->reference);
    snprintf(num, sizeof(num), "%d %d %zu", s->read_receipt ? 1 : 0, s->level, s->attachment_count);
    s_hash_str(&c, num);
    for (size_t i = 0; i < s->attachment_count; i++) {
        const pf_wire_attachment_t *a = &s->attachments[i];
        unsigned char d[32];
        pf_sha256(a->data ? (const void *)a->data : "", a->size, d);
        s_hash_str(&c, a->name);
        s_hash_str(&c, a->media_type ? a->media_type : "application/octet-stream");
        s_hash_field(&c, d, sizeof(d));
    }
    pf_sha256(c.data, c.len, out);
    pf_buf_free(&c, 1); /* it holds the subject and body */
}

/* The parsed key of (mailbox, version) from the cache, parsing jwk on a
 * miss.  NULL when the stored JWK does not parse: data corruption, not a
 * transient failure, so it is reported as such. */
static const pf_key_t *s_cached_key(pf_broker_t *b, const char *mailbox, int version,
                                    const char *jwk)
{
    for (size_t i = 0; i < b->nkeys; i++)
        if (b->keys[i].version == version && strcmp(b->keys[i].mailbox, mailbox) == 0)
            return b->keys[i].key;
    pf_key_t *key;
    const char *err;
    if (pf_key_from_jwk(jwk, strlen(jwk), &key, &err) != 0) {
        char esc[200];
        pf_error("event=bad_recipient_key mailbox=\"%s\" version=%d error=\"%s\"",
                 pf_log_escape(mailbox, esc, sizeof(esc)), version, pf_broker_esc(err));
        return NULL;
    }
    if (b->nkeys == S_KEY_CACHE_MAX) {
        for (size_t i = 0; i < b->nkeys; i++) {
            free(b->keys[i].mailbox);
            pf_key_destroy(&b->keys[i].key);
        }
        b->nkeys = 0;
    }
    b->keys = xrealloc(b->keys, (b->nkeys + 1) * sizeof(*b->keys));
    b->keys[b->nkeys++] = (pf_key_entry_t){xstrdup(mailbox), version, key};
    return key;
}

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_rfc3339(int64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
}

static void s_work_free(s_work_t *w)
{
    for (size_t c = 0; c < w->sub.copy_count; c++) {
        if (w->jwes)
            pf_jwe_destroy(&w->jwes[c]);
        if (w->tokens)
            free(w->tokens[c]);
    }
    free(w->jwes);
    free(w->tokens);
    free(w->sub.copies);
    free((char *)w->sub.ack_json);
    free(w->sub.existing_ack);
    free(w->ack);
    free(w->sender_name);
    memset(w, 0, sizeof(*w));
}

/* The current keys of every recipient of a batch, fetched in one query:
 * ids sorted and unique, so each SEND finds its recipients by bsearch. */
typedef struct {
    const char **ids;
    int *versions;
    char **jwks;
    size_t n;
} s_keytab_t;

static int s_cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t s_keytab_find(const s_keytab_t *t, const char *id)
{
    const char **p = bsearch(&id, t->ids, t->n, sizeof(*t->ids), s_cmp_id);
    return p ? (size_t)(p - t->ids) : (size_t)-1;
}

static void s_keytab_free(s_keytab_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->jwks[i]);
    free(t->ids);
    free(t->versions);
    free(t->jwks);
    memset(t, 0, sizeof(*t));
}

/* Wall-clock time for what is stored and signed (the loop's timers use
 * the monotonic clock). */
static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Encrypts one copy per recipient and signs its receipt.  Returns 0, or
 * -1 after answering the SEND with a NACK. */
static int s_seal(pf_broker_t *b, s_work_t *w, const s_keytab_t *tab)
{
    const pf_wire_send_t *s = &w->it->msg.send;
    size_t n = s->recipient_count;
    const pf_key_t **keys = xcalloc(n, sizeof(*keys));
    int *versions = xcalloc(n, sizeof(*versions));
    const char *err = NULL;
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        size_t k = s_keytab_find(tab, s->recipients[i]);
        if (k == (size_t)-1 || tab->jwks[k] == NULL) {
            s_nack(b, w, PF_WIRE_E_UNKNOWN_RECIPIENT, "mailbox \"%s\" does not exist or is closed",
                   s->recipients[i]);
            goto out;
        }
        versions[i] = tab->versions[k];
        keys[i] = s_cached_key(b, s->recipients[i], versions[i], tab->jwks[k]);
        if (keys[i] == NULL) {
            s_nack(b, w, PF_WIRE_E_TEMPORARY, "the key of mailbox \"%s\" cannot be used",
                   s->recipients[i]);
            goto out;
        }
    }

    int64_t now = s_wall_ms();
    char sent_at[40];
    s_rfc3339(now, sent_at, sizeof(sent_at));
    /* pf_notice_t has mutable pointers for the decoder's sake; the encoder
     * only reads, so the borrowed request fields are passed as they are */
    pf_attachment_t *atts = xcalloc(s->attachment_count ? s->attachment_count : 1, sizeof(*atts));
    for (size_t i = 0; i < s->attachment_count; i++) {
        const pf_wire_attachment_t *a = &s->attachments[i];
        atts[i] = (pf_attachment_t){
            .name = (char *)a->name,
            .media_type = (char *)(a->media_type ? a->media_type : "application/octet-stream"),
            .data = (unsigned char *)a->data,
            .size = a->size};
    }
    pf_notice_t notice = {.title = (char *)s->title,
                          .subject = (char *)s->subject,
                          .body = (char *)s->body,
                          .reference = (char *)s->reference,
                          .sender = w->sender_name,
                          .sent_at = sent_at,
                          .attachments = atts,
                          .attachment_count = s->attachment_count};
    size_t plain_len;
    char *plain = pf_notice_encode(&notice, &plain_len);
    free(atts);

    w->sub.copies = xcalloc(n, sizeof(*w->sub.copies));
    w->sub.copy_count = n;
    w->jwes = xcalloc(n, sizeof(*w->jwes));
    w->tokens = xcalloc(n, sizeof(*w->tokens));
    pf_wire_copy_t *ackc = xcalloc(n, sizeof(*ackc));
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        pf_submit_copy_t *cp = &w->sub.copies[i];
        cp->mailbox_id = s->recipients[i];
        cp->key_version = versions[i];
        cp->size = (int64_t)plain_len;
        pf_uuid7_generate(cp->message_id);
        if (pf_jwe_seal(keys[i], PF_NOTICE_CTY, plain, plain_len, &w->jwes[i], &err) != 0) {
            ok = false;
            break;
        }
        pf_jwe_t *j = w->jwes[i];
        cp->jwe_protected = j->protected_b64;
        cp->encrypted_key = j->encrypted_key;
        cp->encrypted_key_len = j->encrypted_key_len;
        cp->iv = j->iv;
        cp->iv_len = sizeof(j->iv);
        cp->ciphertext = j->ciphertext;
        cp->ciphertext_len = j->ciphertext_len;
        cp->tag = j->tag;
        cp->tag_len = sizeof(j->tag);

        pf_receipt_t r;
        memset(&r, 0, sizeof(r));
        pf_uuid7_generate(cp->receipt_jti);
        memcpy(r.jti, cp->receipt_jti, sizeof(r.jti));
        memcpy(r.message_id, cp->message_id, sizeof(r.message_id));
        r.txn = (char *)s->request_id;
        r.sender = w->sender_name;
        r.mailbox = (char *)s->recipients[i];
        r.event = PF_EVENT_DELIVERED;
        r.event_time_ms = now;
        r.iat = now / 1000;
        r.jwe_tag = pf_b64url_encode(j->tag, sizeof(j->tag));
        w->tokens[i] = pf_receipt_sign(b->receipt_key, b->issuer, &r, &err);
        free(r.jwe_tag);
        if (w->tokens[i] == NULL) {
            ok = false;
            break;
        }
        cp->receipt_token = w->tokens[i];
        ackc[i] = (pf_wire_copy_t){s->recipients[i], cp->message_id};
    }
    pf_wipe(plain, plain_len);
    free(plain);
    if (!ok) {
        pf_error("event=seal_failed error=\"%s\"", pf_broker_esc(err ? err : "unknown"));
        s_nack(b, w, PF_WIRE_E_TEMPORARY, "cannot encrypt the notice, retry later");
        free(ackc);
        goto out;
    }
    w->sub.sender_id = w->it->sender_id;
    w->sub.request_id = s->request_id;
    w->sub.payload_hash = w->hash;
    w->sub.ack_json = pf_wire_ack_json(s->request_id, ackc, n);
    w->sub.title = s->title;
    w->sub.reference = s->reference;
    w->sub.level = s->level;
    w->sub.read_receipt = s->read_receipt;
    w->sub.attachment_count = (int)s->attachment_count;
    w->sub.created_ms = now;
    free(ackc);
    w->state = S_SEALED;
    rc = 0;
out:
    free(keys);
    free(versions);
    return rc;
}

/* Answers an already stored submission: the same ACK again, or conflict. */
static void s_answer_existing(pf_broker_t *b, s_work_t *w, const char *ack, bool same)
{
    if (same)
        s_ack(b, w, ack);
    else
        s_nack(b, w, PF_WIRE_E_CONFLICT,
               "request id \"%s\" was used before for a different submission",
               w->it->msg.send.request_id);
}

/* Checks one SEND up to the point where it is ready to be stored. */
static void s_prepare(pf_broker_t *b, s_work_t *works, size_t i)
{
    s_work_t *w = &works[i];
    const pf_wire_send_t *s = &w->it->msg.send;
    const pf_sender_info_t *info;
    int rc = pf_broker_sender(b, w->it->sender_id, &info);
    if (rc < 0) {
        s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        return;
    }
    if (rc == 0 || !info->active) {
        s_nack(b, w, PF_WIRE_E_FORBIDDEN, "sender is not active");
        return;
    }
    w->sender_name = xstrdup(info->name);
    if (!b->db_ok) {
        s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        return;
    }
    pf_broker_payload_hash(s, w->hash);
    for (size_t j = 0; j < i; j++) {
        if (works[j].it->sender_id == w->it->sender_id &&
            strcmp(works[j].it->msg.send.request_id, s->request_id) == 0 &&
            works[j].state != S_FOLLOWER) {
            w->state = S_FOLLOWER;
            w->leader = j;
            return;
        }
    }
    /* each copy carries all attachments (base64 in the JSON, then
     * encrypted): bound what one SEND may make the broker hold */
    size_t bytes = strlen(s->body) + strlen(s->subject) + 4096;
    for (size_t k = 0; k < s->attachment_count; k++)
        bytes += s->attachments[k].size / 3 * 4 + 4;
    if ((long long)(bytes * s->recipient_count) > b->cfg.batch_max_bytes) {
        s_nack(b, w, PF_WIRE_E_TOO_LARGE,
               "submission too large for %zu recipients; send it in smaller groups",
               s->recipient_count);
        return;
    }
    /* stays S_OPEN: looked up and sealed batch-wide below */
}

/* Answers the SENDs whose request id is stored already (one query for the
 * batch).  Returns -1 when the database failed (all open SENDs answered
 * "temporary"). */
static int s_lookup_existing(pf_broker_t *b, s_work_t *works, size_t n)
{
    int64_t *sids = xcalloc(n, sizeof(*sids));
    const char **rids = xcalloc(n, sizeof(*rids));
    unsigned char(*hashes)[32] = xcalloc(n, sizeof(*hashes));
    char **acks = xcalloc(n, sizeof(*acks));
    size_t *idx = xcalloc(n, sizeof(*idx));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (works[i].state != S_OPEN)
            continue;
        sids[k] = works[i].it->sender_id;
        rids[k] = works[i].it->msg.send.request_id;
        idx[k++] = i;
    }
    const char *err;
    int rc = k ? pf_store_submissions_get(b->st, sids, rids, k, hashes, acks, &err) : 0;
    if (rc != 0)
        pf_broker_db_failed(b, "cannot look up submissions", err);
    for (size_t j = 0; j < k; j++) {
        s_work_t *w = &works[idx[j]];
        if (rc != 0)
            s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        else if (acks[j] != NULL)
            s_answer_existing(b, w, acks[j], memcmp(hashes[j], w->hash, 32) == 0);
        free(acks[j]);
    }
    free(sids);
    free(rids);
    free(hashes);
    free(acks);
    free(idx);
    return rc;
}

/* Fetches the keys of all recipients of the open SENDs at once (the
 * current version every time, so a key rotation applies at once; only
 * parsing is cached) and seals each SEND. */
static void s_seal_all(pf_broker_t *b, s_work_t *works, size_t n)
{
    s_keytab_t tab = {0};
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (works[i].state == S_OPEN)
            total += works[i].it->msg.send.recipient_count;
    if (total == 0)
        return;
    tab.ids = xcalloc(total, sizeof(*tab.ids));
    for (size_t i = 0; i < n; i++) {
        const pf_wire_send_t *s = &works[i].it->msg.send;
        for (size_t r = 0; works[i].state == S_OPEN && r < s->recipient_count; r++)
            tab.ids[tab.n++] = s->recipients[r];
    }
    qsort(tab.ids, tab.n, sizeof(*tab.ids), s_cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < tab.n; i++)
        if (u == 0 || strcmp(tab.ids[u - 1], tab.ids[i]) != 0)
            tab.ids[u++] = tab.ids[i];
    tab.n = u;
    tab.versions = xcalloc(tab.n, sizeof(*tab.versions));
    tab.jwks = xcalloc(tab.n, sizeof(*tab.jwks));
    const char *err;
    if (pf_store_recipient_keys(b->st, tab.ids, tab.n, tab.versions, tab.jwks, &err) != 0) {
        pf_broker_db_failed(b, "cannot look up recipient keys", err);
        for (size_t i = 0; i < n; i++)
            if (works[i].state == S_OPEN)
                s_nack(b, &works[i], PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        s_keytab_free(&tab);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (works[i].state == S_OPEN)
            s_seal(b, &works[i], &tab);
    s_keytab_free(&tab);
}

/* Sends the answers of a stored batch. */
static void s_answer_stored(pf_broker_t *b, s_work_t *w)
{
    if (w->sub.outcome == PF_SUBMIT_STORED)
        s_ack(b, w, w->sub.ack_json);
    else
        s_answer_existing(b, w, w->sub.existing_ack, w->sub.existing_same);
}

/* A COMMIT whose result never arrived: look each request id up. */
static void s_settle_unknown(pf_broker_t *b, s_work_t *works, size_t n)
{
    const char *err;
    bool reconnected = pf_broker_db_reconnect(b) == 0;
    for (size_t i = 0; i < n; i++) {
        s_work_t *w = &works[i];
        if (w->state != S_SEALED)
            continue;
        unsigned char hash[32];
        char *ack = NULL;
        int rc = reconnected ? pf_store_submission_get(b->st, w->it->sender_id, w->sub.request_id,
                                                       hash, &ack, &err)
                             : -1;
        if (rc == 1)
            s_answer_existing(b, w, ack, memcmp(hash, w->hash, 32) == 0);
        else
            s_nack(b, w, PF_WIRE_E_TEMPORARY, "database unavailable, retry later");
        free(ack);
    }
}

static int s_store(pf_broker_t *b, s_work_t *works, size_t n, size_t only, const char **error_r)
{
    pf_submit_t *subs = xcalloc(n, sizeof(*subs));
    size_t *idx = xcalloc(n, sizeof(*idx));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (works[i].state == S_SEALED && (only == (size_t)-1 || only == i)) {
            subs[k] = works[i].sub;
            idx[k++] = i;
        }
    int rc = pf_store_submit_batch(b->st, subs, k, error_r);
    for (size_t j = 0; j < k; j++)
        works[idx[j]].sub = subs[j]; /* outcome and existing_* */
    free(subs);
    free(idx);
    return k == 0 ? 0 : rc;
}

void pf_broker_accept_batch(pf_broker_t *b, pf_broker_send_t *items, size_t n)
{
    s_work_t *works = xcalloc(n ? n : 1, sizeof(*works));
    int64_t t0 = s_now_us();
    for (size_t i = 0; i < n; i++) {
        works[i].it = &items[i];
        s_prepare(b, works, i);
    }
    if (s_lookup_existing(b, works, n) == 0)
        s_seal_all(b, works, n);
    int64_t t1 = s_now_us();
    const char *err;
    int stored = s_store(b, works, n, (size_t)-1, &err);
    /* where a batch's time goes: checking and sealing vs. the commit */
    pf_debug("event=batch sends=%zu prepare_us=%lld store_us=%lld", n, (long long)(t1 - t0),
             (long long)(s_now_us() - t1));
    if (stored == 0) {
        pf_crashpoint("after_commit_result");
        for (size_t i = 0; i < n; i++)
            if (works[i].state == S_SEALED)
                s_answer_stored(b, &works[i]);
    } else if (pf_store_broken(b->st)) {
        pf_broker_db_failed(b, "cannot store submissions", err);
        s_settle_unknown(b, works, n);
    } else {
        /* one bad submission aborts the whole transaction: store the rest
         * one by one, so one failure does not refuse its neighbours */
        pf_error("event=batch_failed error=\"%s\"", pf_broker_esc(err));
        for (size_t i = 0; i < n; i++) {
            if (works[i].state != S_SEALED)
                continue;
            if (s_store(b, works, n, i, &err) == 0) {
                s_answer_stored(b, &works[i]);
            } else {
                if (pf_store_broken(b->st))
                    pf_broker_db_failed(b, "cannot store submission", err);
                else
                    pf_error("event=store_failed error=\"%s\"", pf_broker_esc(err));
                s_nack(b, &works[i], PF_WIRE_E_TEMPORARY, "cannot store the notice, retry later");
            }
        }
    }
    /* repeats within the batch share the first one's answer */
    for (size_t i = 0; i < n; i++) {
        s_work_t *w = &works[i];
        if (w->state != S_FOLLOWER)
            continue;
        const s_work_t *l = &works[w->leader];
        if (l->ack != NULL)
            s_answer_existing(b, w, l->ack, memcmp(l->hash, w->hash, 32) == 0);
        else if (memcmp(l->hash, w->hash, 32) != 0 && l->nack_code == NULL)
            s_nack(b, w, PF_WIRE_E_CONFLICT, "request id used twice with different content");
        else
            s_nack(b, w, l->nack_code ? l->nack_code : PF_WIRE_E_TEMPORARY, "%s",
                   l->nack_reason[0] ? l->nack_reason : "retry later");
    }
    for (size_t i = 0; i < n; i++)
        s_work_free(&works[i]);
    free(works);
}
