/* Senders and mailboxes for postfach-bench, in process.
 *
 * Callers: cmd/postfach-bench (`setup`), scripts/bench.sh.
 * Threads: mailbox creation runs on cfg->threads threads, each with its own
 * database connection and a share of the numbers; key generation (P-256:
 * tens of microseconds; RSA: up to a second) and the commits overlap.
 * Mailboxes go in S_BATCH at a time (pf_store_bench_mailboxes_add: one
 * COPY per table, one transaction), with synchronous_commit off
 * (benchload.h): bench mailboxes need not survive a crash.  A statement
 * per mailbox made a million of them take nine minutes.  The services'
 * own sessions are untouched.
 * Secrets: private keys are wiped after wrapping; nothing is logged. */
#include "bench/setup.h"
#include "bench/common.h"
#include "crypto/jose.h"
#include "proto/curve.h"
#include "store/admin.h"
#include "store/benchload.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pf_bench_setup_config_default(pf_bench_setup_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->db = "dbname=postfach";
    cfg->keys_dir = "var/keys";
    cfg->sender_prefix = "bench-s";
    cfg->mailbox_prefix = "bench-";
    cfg->key_type = "p256";
    cfg->threads = 2;
}

typedef struct {
    const pf_bench_setup_config_t *cfg;
    const pf_kek_t *kek;
    pf_key_kind_t kind;
    long from, to; /* mailbox numbers [from, to) */
    int step, offset;
    atomic_long *made;
    char err[512];
    int rc;
} s_job_t;

/* mailboxes per transaction (one COPY per table): large enough that the
 * commit and the round trips vanish, small enough that a failure loses
 * little and a batch of RSA keys is not minutes of work */
#define S_BATCH 500

/* One mailbox of a batch, owning its strings. */
typedef struct {
    char id[PF_BENCH_ID_MAX];
    char *kid, *jwk;
    const char *alg;
    unsigned char *wrapped;
    size_t wrapped_len;
} s_slot_t;

static void s_slot_clear(s_slot_t *s)
{
    free(s->kid);
    free(s->jwk);
    free(s->wrapped);
    memset(s, 0, sizeof(*s));
}

static int s_mailbox(s_job_t *j, s_slot_t *slot, long i)
{
    pf_bench_mailbox_id(slot->id, j->cfg->mailbox_prefix, i);
    pf_key_t *key = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char *context = NULL;
    const char *err;
    int rc = -1;
    if (pf_key_generate(j->kind, &key, &err) != 0 ||
        pf_key_to_der(key, &der, &der_len, &err) != 0) {
        snprintf(j->err, sizeof(j->err), "cannot make a key for \"%s\": %s", slot->id, err);
        goto out;
    }
    /* the public JWK and kid straight from the key pair: no copy of the
     * public half (a DER round trip through OpenSSL's decoders) */
    slot->jwk = pf_key_to_jwk(key, false);
    slot->kid = xstrdup(pf_key_kid(key));
    slot->alg = pf_key_is_rsa(key) ? "RSA-OAEP-256" : "ECDH-ES+A256KW";
    /* a new mailbox gets key version 1 */
    context = xasprintf("%s:1", slot->id);
    if (pf_kek_wrap(j->kek, context, der, der_len, &slot->wrapped, &slot->wrapped_len, &err) !=
        0) {
        snprintf(j->err, sizeof(j->err), "cannot wrap the key of \"%s\": %s", slot->id, err);
        goto out;
    }
    rc = 0;
out:
    if (der) {
        pf_wipe(der, der_len);
        free(der);
    }
    free(context);
    pf_key_destroy(&key);
    return rc;
}

static int s_flush(s_job_t *j, pf_store_t *st, s_slot_t *slots, size_t n)
{
    pf_bench_mailbox_row_t rows[S_BATCH];
    for (size_t k = 0; k < n; k++)
        rows[k] = (pf_bench_mailbox_row_t){.id = slots[k].id,
                                           .kid = slots[k].kid,
                                           .alg = slots[k].alg,
                                           .public_jwk = slots[k].jwk,
                                           .kek_id = pf_kek_id(j->kek),
                                           .wrapped = slots[k].wrapped,
                                           .wrapped_len = slots[k].wrapped_len};
    const char *err;
    int rc = pf_store_bench_mailboxes_add(st, rows, n, &err);
    if (rc != 0)
        snprintf(j->err, sizeof(j->err), "cannot create mailboxes: %s", err);
    else
        atomic_fetch_add(j->made, (long)n);
    for (size_t k = 0; k < n; k++)
        s_slot_clear(&slots[k]);
    return rc;
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
    if (pf_store_bench_fast_commit(st, &err) != 0) {
        snprintf(j->err, sizeof(j->err), "%s", err);
        pf_store_destroy(&st);
        return NULL;
    }
    s_slot_t *slots = xcalloc(S_BATCH, sizeof(*slots));
    size_t n = 0;
    j->rc = 0;
    for (long i = j->from + j->offset; i < j->to && j->rc == 0; i += j->step) {
        if (s_mailbox(j, &slots[n], i) != 0) {
            s_slot_clear(&slots[n]);
            j->rc = -1;
            break;
        }
        if (++n == S_BATCH) {
            j->rc = s_flush(j, st, slots, n);
            n = 0;
        }
    }
    if (j->rc == 0)
        j->rc = s_flush(j, st, slots, n);
    for (size_t k = 0; k < n; k++)
        s_slot_clear(&slots[k]);
    free(slots);
    pf_store_destroy(&st);
    return NULL;
}

static int s_senders(const pf_bench_setup_config_t *cfg, pf_store_t *st, FILE *out, char *errbuf,
                     size_t errlen)
{
    char *dir = xasprintf("%s/senders", cfg->keys_dir);
    mkdir(dir, 0700);
    free(dir);
    int made = 0;
    for (int i = 0; i < cfg->senders; i++) {
        char name[PF_BENCH_ID_MAX];
        pf_bench_sender_name(name, cfg->sender_prefix, i);
        char *path = pf_bench_sender_keyfile(cfg->keys_dir, name);
        char *pub_path = xasprintf("%s.pub", path);
        const char *err;
        int rc = 0;
        pf_sender_row_t row = {0};
        int found = pf_store_sender_by_name(st, name, &row, &err);
        pf_sender_row_clear(&row);
        if (found < 0) {
            snprintf(errbuf, errlen, "%s", err);
            rc = -1;
        } else if (found == 0) {
            char pub[PF_CURVE_Z85_LEN + 1];
            int64_t id;
            unlink(path);
            unlink(pub_path);
            if (pf_curve_generate_files(path, pub_path, pub, &err) != 0 ||
                pf_store_sender_add(st, name, pub, &id, &err) != 0) {
                snprintf(errbuf, errlen, "cannot add sender \"%s\": %s", name, err);
                rc = -1;
            } else {
                made++;
            }
        } else if (access(path, R_OK) != 0) {
            snprintf(errbuf, errlen, "sender \"%s\" exists but its key file \"%s\" does not", name,
                     path);
            rc = -1;
        }
        free(path);
        free(pub_path);
        if (rc != 0)
            return -1;
    }
    fprintf(out, "senders: %d made, %d present (%s0..%s%d)\n", made, cfg->senders - made,
            cfg->sender_prefix, cfg->sender_prefix, cfg->senders - 1);
    return 0;
}

int pf_bench_setup_run(const pf_bench_setup_config_t *cfg, FILE *out, const char **error_r)
{
    static char errbuf[512];
    pf_key_kind_t kind;
    if (strcmp(cfg->key_type, "p256") == 0)
        kind = PF_KEY_P256;
    else if (strcmp(cfg->key_type, "rsa3072") == 0)
        kind = PF_KEY_RSA3072;
    else if (strcmp(cfg->key_type, "rsa4096") == 0)
        kind = PF_KEY_RSA4096;
    else {
        *error_r = "unknown key type (use p256, rsa3072 or rsa4096)";
        return -1;
    }
    int threads = cfg->threads < 1 ? 1 : cfg->threads > 64 ? 64 : cfg->threads;
    pf_store_t *st = NULL;
    pf_kek_t *kek = NULL;
    const char *err;
    int rc = -1;
    if (pf_store_open(cfg->db, &st, &err) != 0) {
        snprintf(errbuf, sizeof(errbuf), "%s", err);
        goto out;
    }
    if (s_senders(cfg, st, out, errbuf, sizeof(errbuf)) != 0)
        goto out;
    int64_t have = 0;
    if (pf_store_bench_mailbox_count(st, cfg->mailbox_prefix, &have, &err) != 0) {
        snprintf(errbuf, sizeof(errbuf), "%s", err);
        goto out;
    }
    if (have < cfg->mailboxes) {
        char *path = xasprintf("%s/kek", cfg->keys_dir);
        int krc = pf_kek_load(path, &kek, &err);
        if (krc != 0)
            snprintf(errbuf, sizeof(errbuf), "cannot load KEK \"%s\": %s", path, err);
        free(path);
        if (krc != 0)
            goto out;
        atomic_long made = 0;
        s_job_t *jobs = xcalloc((size_t)threads, sizeof(*jobs));
        pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
        int64_t t0 = pf_bench_now_us();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (s_job_t){.cfg = cfg,
                                .kek = kek,
                                .kind = kind,
                                .from = have,
                                .to = cfg->mailboxes,
                                .step = threads,
                                .offset = t,
                                .made = &made};
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
        fprintf(out, "mailboxes: %ld made (%s), %lld present before, %.1f s, %.0f/s\n",
                (long)atomic_load(&made), cfg->key_type, (long long)have, secs,
                secs > 0 ? (double)atomic_load(&made) / secs : 0);
        free(jobs);
        free(th);
        if (rc != 0)
            goto out;
    } else {
        fprintf(out, "mailboxes: %lld present (%s0..), none made\n", (long long)have,
                cfg->mailbox_prefix);
    }
    rc = 0;
out:
    if (rc != 0)
        *error_r = errbuf;
    pf_kek_destroy(&kek);
    pf_store_destroy(&st);
    return rc;
}
