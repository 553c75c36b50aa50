/* History for the growth runs: one JWE made once, stored many times.
 *
 * Callers: cmd/postfach-bench (`preload`), scripts/bench.sh.
 * Threads: cfg->threads connections, each loading its share with COPY
 * (lib/store/benchload.c); both cores are busy either way (PostgreSQL
 * spends its time on WAL and index inserts).
 * The plaintext is a notice document (lib/proto/notice.h) with a body of
 * body_size bytes, sealed for the current key of mailbox 0. */
#include "bench/preload.h"
#include "bench/common.h"
#include "crypto/jose.h"
#include "proto/notice.h"
#include "store/admin.h"
#include "store/benchload.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void pf_bench_preload_config_default(pf_bench_preload_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->db = "dbname=postfach";
    cfg->mailbox_prefix = "bench-";
    cfg->sender_name = "bench-s0";
    cfg->mailboxes = 1000;
    cfg->copies = 1000000;
    cfg->body_size = 2048;
    cfg->batch = 5000;
    cfg->threads = 2;
}

typedef struct {
    const pf_bench_preload_config_t *cfg;
    const pf_bench_row_t *row;
    char **mailboxes;
    size_t nmailboxes;
    size_t n;
    atomic_long *done;
    char err[512];
    int rc;
} s_job_t;

static void s_progress(void *ctx, size_t done)
{
    (void)ctx;
    (void)done;
}

static void *s_job_main(void *arg)
{
    s_job_t *j = arg;
    pf_store_t *st = NULL;
    const char *err;
    j->rc = -1;
    if (pf_store_open(j->cfg->db, &st, &err) != 0) {
        snprintf(j->err, sizeof(j->err), "%s", err);
        return NULL;
    }
    size_t left = j->n;
    j->rc = 0;
    while (left > 0 && j->rc == 0) {
        size_t k = left < j->cfg->batch * 10 ? left : j->cfg->batch * 10;
        if (pf_store_bench_load(st, j->row, (const char *const *)j->mailboxes, j->nmailboxes, k,
                                j->cfg->batch, s_progress, NULL, &err) != 0) {
            snprintf(j->err, sizeof(j->err), "%s", err);
            j->rc = -1;
            break;
        }
        left -= k;
        atomic_fetch_add(j->done, (long)k);
    }
    pf_store_destroy(&st);
    return NULL;
}

/* Seals one notice for mailbox 0 and makes the row template. */
static int s_template(const pf_bench_preload_config_t *cfg, pf_store_t *st, pf_bench_row_t **row_r,
                      char *errbuf, size_t errlen)
{
    char id[PF_BENCH_ID_MAX];
    pf_bench_mailbox_id(id, cfg->mailbox_prefix, 0);
    const char *err;
    int version = 0, rc = -1;
    char *jwk = NULL, *doc = NULL;
    pf_key_t *key = NULL;
    pf_jwe_t *jwe = NULL;
    pf_sender_row_t sender = {0};
    int found = pf_store_sender_by_name(st, cfg->sender_name, &sender, &err);
    if (found <= 0) {
        snprintf(errbuf, errlen, "no sender \"%s\"%s%s", cfg->sender_name, found < 0 ? ": " : "",
                 found < 0 ? err : "");
        goto out;
    }
    found = pf_store_mailbox_public_key(st, id, &version, &jwk, &err);
    if (found <= 0) {
        snprintf(errbuf, errlen, "no mailbox \"%s\"%s%s (run setup first)", id,
                 found < 0 ? ": " : "", found < 0 ? err : "");
        goto out;
    }
    if (pf_key_from_jwk(jwk, strlen(jwk), &key, &err) != 0) {
        snprintf(errbuf, errlen, "cannot read the key of \"%s\": %s", id, err);
        goto out;
    }
    char *body = xmalloc(cfg->body_size + 1);
    for (size_t i = 0; i < cfg->body_size; i++)
        body[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 11) % 26);
    body[cfg->body_size] = '\0';
    pf_notice_t n = {.title = "Bescheid (Bestand)",
                     .subject = "Ihr Bescheid",
                     .body = body,
                     .reference = "BENCH-PRELOAD",
                     .sender = sender.name,
                     .sent_at = "2026-01-01T00:00:00Z"};
    size_t len = 0;
    doc = pf_notice_encode(&n, &len);
    free(body);
    if (pf_jwe_seal(key, PF_NOTICE_CTY, doc, len, &jwe, &err) != 0) {
        snprintf(errbuf, errlen, "cannot encrypt: %s", err);
        goto out;
    }
    pf_bench_row_values_t v = {
        .sender_id = sender.id,
        .request_id = "bench-preload",
        .title = "Bescheid (Bestand)",
        .reference = "BENCH-PRELOAD",
        .key_version = version,
        .size = (int64_t)len,
        .jwe_protected = jwe->protected_b64,
        .encrypted_key = jwe->encrypted_key,
        .encrypted_key_len = jwe->encrypted_key_len,
        .iv = jwe->iv,
        .iv_len = sizeof(jwe->iv),
        .ciphertext = jwe->ciphertext,
        .ciphertext_len = jwe->ciphertext_len,
        .tag = jwe->tag,
        .tag_len = sizeof(jwe->tag),
    };
    *row_r = pf_bench_row_new(&v);
    rc = 0;
out:
    free(jwk);
    free(doc);
    pf_jwe_destroy(&jwe);
    pf_key_destroy(&key);
    pf_sender_row_clear(&sender);
    return rc;
}

int pf_bench_preload_run(const pf_bench_preload_config_t *cfg, FILE *out, const char **error_r)
{
    static char errbuf[512];
    if (cfg->mailboxes < 1 || cfg->copies < 0 || cfg->batch < 1) {
        *error_r = "preload needs mailboxes >= 1, copies >= 0 and batch >= 1";
        return -1;
    }
    int threads = cfg->threads < 1 ? 1 : cfg->threads > 16 ? 16 : cfg->threads;
    pf_store_t *st = NULL;
    pf_bench_row_t *row = NULL;
    const char *err;
    int rc = -1;
    if (pf_store_open(cfg->db, &st, &err) != 0) {
        snprintf(errbuf, sizeof(errbuf), "%s", err);
        goto out;
    }
    if (s_template(cfg, st, &row, errbuf, sizeof(errbuf)) != 0)
        goto out;
    size_t nmb = (size_t)cfg->mailboxes;
    char **mbs = xcalloc(nmb, sizeof(*mbs));
    for (size_t i = 0; i < nmb; i++) {
        mbs[i] = xmalloc(PF_BENCH_ID_MAX);
        pf_bench_mailbox_id(mbs[i], cfg->mailbox_prefix, (long)i);
    }
    atomic_long done = 0;
    s_job_t *jobs = xcalloc((size_t)threads, sizeof(*jobs));
    pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
    int64_t t0 = pf_bench_now_us();
    for (int t = 0; t < threads; t++) {
        size_t share = (size_t)cfg->copies / (size_t)threads +
                       ((size_t)t < (size_t)cfg->copies % (size_t)threads ? 1 : 0);
        jobs[t] = (s_job_t){
            .cfg = cfg, .row = row, .mailboxes = mbs, .nmailboxes = nmb, .n = share, .done = &done};
        pthread_create(&th[t], NULL, s_job_main, &jobs[t]);
    }
    rc = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        if (jobs[t].rc != 0 && rc == 0) {
            snprintf(errbuf, sizeof(errbuf), "%s", jobs[t].err);
            rc = -1;
        }
    }
    double secs = (double)(pf_bench_now_us() - t0) / 1e6;
    fprintf(out, "preload: %ld copies of %zu B over %ld mailboxes in %.1f s, %.0f rows/s\n",
            (long)atomic_load(&done), pf_bench_row_bytes(row), cfg->mailboxes, secs,
            secs > 0 ? (double)atomic_load(&done) / secs : 0);
    for (size_t i = 0; i < nmb; i++)
        free(mbs[i]);
    free(mbs);
    free(jobs);
    free(th);
out:
    if (rc != 0)
        *error_r = errbuf;
    pf_bench_row_destroy(&row);
    pf_store_destroy(&st);
    return rc;
}
