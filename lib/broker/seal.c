/* Crypto worker threads of the broker (see seal.h).
 *
 * Callers: accept.c on the broker's main thread.
 * Why threads and not processes: the work is pure CPU on data the main
 * thread already holds (decoded frames, parsed public keys); a thread
 * borrows it without copying.  The broker holds public keys only, so a
 * worker can encrypt but never decrypt anything.
 * Invariants: the notice document (plaintext) exists only inside
 * pf_seal_item and is wiped before it returns; a batch is touched by the
 * workers only between pf_seal_pool_submit and its appearance on the done
 * list (the mutex orders every hand-over); the eventfd counts finished
 * batches, so no wake-up is lost. */
#include "broker/seal.h"
#include "proto/notice.h"
#include "receipt/receipt.h"
#include "util/b64url.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_THREADS 16

struct pf_seal_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pf_seal_batch_t *head, *tail; /* batches with items not yet taken */
    pf_seal_batch_t *done_head, *done_tail;
    bool stop;
    int efd;
    const pf_key_t *receipt_key;
    char *issuer;
    pthread_t threads[S_MAX_THREADS];
    int nthreads;
};

/* Wall-clock time for what is stored and signed. */
static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

void pf_seal_item(pf_seal_item_t *it, const pf_key_t *receipt_key, const char *issuer)
{
    const pf_wire_send_t *s = it->send;
    size_t n = s->recipient_count;
    const char *err = NULL;
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
                          .sender = (char *)it->sender_name,
                          .sent_at = sent_at,
                          .attachments = atts,
                          .attachment_count = s->attachment_count};
    size_t plain_len;
    char *plain = pf_notice_encode(&notice, &plain_len);
    free(atts);

    it->sub.copies = xcalloc(n, sizeof(*it->sub.copies));
    it->sub.copy_count = n;
    it->jwes = xcalloc(n, sizeof(*it->jwes));
    it->tokens = xcalloc(n, sizeof(*it->tokens));
    pf_wire_copy_t *ackc = xcalloc(n, sizeof(*ackc));
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        pf_submit_copy_t *cp = &it->sub.copies[i];
        cp->mailbox_id = s->recipients[i];
        cp->key_version = it->versions[i];
        cp->size = (int64_t)plain_len;
        pf_uuid7_generate(cp->message_id);
        if (pf_jwe_seal(it->keys[i], PF_NOTICE_CTY, plain, plain_len, &it->jwes[i], &err) != 0) {
            ok = false;
            break;
        }
        pf_jwe_t *j = it->jwes[i];
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
        r.sender = (char *)it->sender_name;
        r.mailbox = (char *)s->recipients[i];
        r.event = PF_EVENT_DELIVERED;
        r.event_time_ms = now;
        r.iat = now / 1000;
        r.jwe_tag = pf_b64url_encode(j->tag, sizeof(j->tag));
        it->tokens[i] = pf_receipt_sign(receipt_key, issuer, &r, &err);
        free(r.jwe_tag);
        if (it->tokens[i] == NULL) {
            ok = false;
            break;
        }
        cp->receipt_token = it->tokens[i];
        ackc[i] = (pf_wire_copy_t){s->recipients[i], cp->message_id};
    }
    pf_wipe(plain, plain_len);
    free(plain);
    it->ok = ok;
    it->error = ok ? NULL : (err ? err : "unknown");
    if (ok) {
        it->sub.sender_id = it->sender_id;
        it->sub.request_id = s->request_id;
        it->sub.payload_hash = it->hash;
        it->sub.ack_json = pf_wire_ack_json(s->request_id, ackc, n);
        it->sub.title = s->title;
        it->sub.reference = s->reference;
        it->sub.level = s->level;
        it->sub.read_receipt = s->read_receipt;
        it->sub.attachment_count = (int)s->attachment_count;
        it->sub.created_ms = now;
    }
    free(ackc);
}

void pf_seal_item_clear(pf_seal_item_t *it)
{
    for (size_t c = 0; c < it->sub.copy_count; c++) {
        if (it->jwes)
            pf_jwe_destroy(&it->jwes[c]);
        if (it->tokens)
            free(it->tokens[c]);
    }
    free(it->jwes);
    free(it->tokens);
    free(it->sub.copies);
    free((char *)it->sub.ack_json);
    free(it->sub.existing_ack);
    it->jwes = NULL;
    it->tokens = NULL;
    memset(&it->sub, 0, sizeof(it->sub));
}

static void *s_worker(void *arg)
{
    pf_seal_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->head == NULL)
            break; /* stopping, and nothing is queued */
        pf_seal_batch_t *b = p->head;
        pf_seal_item_t *it = &b->items[b->next_++];
        if (b->next_ == b->count) {
            p->head = b->link_;
            if (p->head == NULL)
                p->tail = NULL;
        }
        pthread_mutex_unlock(&p->mu);
        pf_seal_item(it, p->receipt_key, p->issuer);
        pthread_mutex_lock(&p->mu);
        if (++b->done_ == b->count) {
            b->link_ = NULL;
            if (p->done_tail)
                p->done_tail->link_ = b;
            else
                p->done_head = b;
            p->done_tail = b;
            uint64_t one = 1;
            /* an eventfd write fails only when the counter would overflow */
            if (write(p->efd, &one, sizeof(one)) < 0)
                abort();
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pf_seal_pool_new(int threads, const pf_key_t *receipt_key, const char *issuer,
                     pf_seal_pool_t **pool_r, const char **error_r)
{
    static __thread char err[160];
    pf_seal_pool_t *p = xcalloc(1, sizeof(*p));
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        snprintf(err, sizeof(err), "cannot create eventfd: %s", strerror(errno));
        free(p);
        *error_r = err;
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->receipt_key = receipt_key;
    p->issuer = xstrdup(issuer);
    if (threads < 1)
        threads = 1;
    if (threads > S_MAX_THREADS)
        threads = S_MAX_THREADS;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, s_worker, p) != 0) {
            snprintf(err, sizeof(err), "cannot start a crypto worker");
            pf_seal_pool_destroy(&p);
            *error_r = err;
            return -1;
        }
        p->nthreads++;
    }
    *pool_r = p;
    return 0;
}

void pf_seal_pool_submit(pf_seal_pool_t *p, pf_seal_batch_t *b)
{
    b->next_ = 0;
    b->done_ = 0;
    b->link_ = NULL;
    if (b->count == 0) {
        /* nothing to do: straight to the done list */
        pthread_mutex_lock(&p->mu);
        b->done_ = 0;
        if (p->done_tail)
            p->done_tail->link_ = b;
        else
            p->done_head = b;
        p->done_tail = b;
        pthread_mutex_unlock(&p->mu);
        uint64_t one = 1;
        if (write(p->efd, &one, sizeof(one)) < 0)
            abort();
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->link_ = b;
    else
        p->head = b;
    p->tail = b;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pf_seal_pool_fd(const pf_seal_pool_t *p)
{
    return p->efd;
}

pf_seal_batch_t *pf_seal_pool_done(pf_seal_pool_t *p)
{
    uint64_t v;
    /* reset the counter; the list below is the truth */
    if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return NULL;
    pthread_mutex_lock(&p->mu);
    pf_seal_batch_t *b = p->done_head;
    if (b) {
        p->done_head = b->link_;
        if (p->done_head == NULL)
            p->done_tail = NULL;
        b->link_ = NULL;
    }
    bool more = p->done_head != NULL;
    pthread_mutex_unlock(&p->mu);
    if (more) {
        uint64_t one = 1;
        if (write(p->efd, &one, sizeof(one)) < 0)
            abort();
    }
    return b;
}

void pf_seal_pool_destroy(pf_seal_pool_t **pp)
{
    pf_seal_pool_t *p = *pp;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    close(p->efd);
    free(p->issuer);
    free(p);
    *pp = NULL;
}
