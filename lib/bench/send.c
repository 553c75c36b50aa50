/* The sending load: sender threads, rate control, latency and receipt
 * bookkeeping, the broker monitor, the same-run ceiling and the report.
 *
 * Callers: cmd/postfach-bench (`send`), tests/e2e/test_bench_smoke.c
 * through the program.
 * Threads: one per sender, each owning its pf_client_t (the client library
 * is one-thread-per-client) and its own histograms and message-id table;
 * a monitor thread samples the broker's /proc files once a second; with
 * --disk-probe a thread times flushes beside the database meanwhile; the
 * calling thread starts them together, joins them and reports.  The only
 * shared mutable state is a few atomics.
 * In flight: with window 1 each sender uses the blocking pf_client_send
 * (one notice in flight per client); with a larger window it keeps that
 * many in flight with pf_client_submit / pf_client_poll_result, and
 * matches answers to their planned start by the request id's sequence
 * number.
 * Latency: ACK latency runs from the planned start of a notice (open loop)
 * or its actual start (closed loop) to the arrival of its ACK; delivered
 * receipt latency from the same start to the arrival of the "delivered"
 * receipt for that message id at the bench.
 * Input from outside: the broker's answers, decoded by the client library;
 * we only read their fields. */
#include "bench/send.h"
#include "bench/common.h"
#include "bench/diskprobe.h"
#include "bench/hist.h"
#include "bench/procstat.h"
#include "postfach/postfach.h"
#include "store/benchload.h"
#include "util/digits.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the disk probe's interval, and what counts as a slow flush: the p99
 * target of (b) */
#define S_PROBE_MS 10
#define S_PROBE_SLOW_MS 25

void pf_bench_send_config_default(pf_bench_send_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->endpoint = "tcp://127.0.0.1:7400";
    cfg->keys_dir = "var/keys";
    cfg->sender_prefix = "bench-s";
    cfg->mailbox_prefix = "bench-";
    cfg->label = "send";
    cfg->senders = 8;
    cfg->recipients = 1;
    cfg->mailboxes = 1000;
    cfg->body_size = 2048;
    cfg->duration_s = 10;
    cfg->ceiling_batch = 1000;
    cfg->receipt_wait_s = 30;
    cfg->ids_max = 100000;
    cfg->timeout_ms = 10000;
    cfg->window = 1;
}

/* ---- message id -> planned start, per thread ------------------------- */

typedef struct {
    uint64_t hi, lo; /* the UUID's 16 bytes; hi == 0 && lo == 0: empty */
    int64_t start_us;
} s_slot_t;

typedef struct {
    s_slot_t *slots;
    size_t cap, n;
} s_idmap_t;

/* Canonical UUID text to two words; -1 when it is not one. */
static int s_uuid_parse(const char *s, uint64_t *hi, uint64_t *lo)
{
    uint64_t w[2] = {0, 0};
    int nib = 0;
    for (const char *p = s; *p && nib < 32; p++) {
        if (*p == '-')
            continue;
        int v = pf_hex_digit(*p);
        if (v < 0)
            return -1;
        w[nib / 16] = w[nib / 16] << 4 | (uint64_t)v;
        nib++;
    }
    if (nib != 32 || (w[0] == 0 && w[1] == 0))
        return -1;
    *hi = w[0];
    *lo = w[1];
    return 0;
}

static size_t s_hash(uint64_t hi, uint64_t lo, size_t cap)
{
    /* UUIDv7: the low word is random */
    return (size_t)((lo ^ (hi * 0x9e3779b97f4a7c15ull)) & (cap - 1));
}

static void s_idmap_put(s_idmap_t *m, uint64_t hi, uint64_t lo, int64_t start);

static void s_idmap_grow(s_idmap_t *m)
{
    s_slot_t *old = m->slots;
    size_t oldcap = m->cap;
    m->cap = oldcap ? oldcap * 2 : 1024;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    m->n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].hi || old[i].lo)
            s_idmap_put(m, old[i].hi, old[i].lo, old[i].start_us);
    free(old);
}

static void s_idmap_put(s_idmap_t *m, uint64_t hi, uint64_t lo, int64_t start)
{
    if ((m->n + 1) * 2 > m->cap)
        s_idmap_grow(m);
    size_t i = s_hash(hi, lo, m->cap);
    while (m->slots[i].hi || m->slots[i].lo)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (s_slot_t){hi, lo, start};
    m->n++;
}

/* Removes the entry and returns its start time, or -1 when absent
 * (a receipt we did not cause, or a duplicate). */
static int64_t s_idmap_take(s_idmap_t *m, uint64_t hi, uint64_t lo)
{
    if (m->cap == 0)
        return -1;
    size_t i = s_hash(hi, lo, m->cap);
    while (m->slots[i].hi || m->slots[i].lo) {
        if (m->slots[i].hi == hi && m->slots[i].lo == lo)
            break;
        i = (i + 1) & (m->cap - 1);
    }
    if (!(m->slots[i].hi || m->slots[i].lo))
        return -1;
    int64_t start = m->slots[i].start_us;
    /* backward-shift deletion keeps linear probing chains intact */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!(m->slots[j].hi || m->slots[j].lo))
            break;
        size_t home = s_hash(m->slots[j].hi, m->slots[j].lo, m->cap);
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        bool stay = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stay) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = (s_slot_t){0, 0, 0};
    m->n--;
    return start;
}

/* ---- shared run state ------------------------------------------------ */

typedef struct s_run s_run_t;

typedef struct {
    s_run_t *run;
    int index;
    pf_client_t *client;
    pf_hist_t *ack, *rcpt;
    s_idmap_t ids;   /* acknowledged copies waiting for their receipt: start time */
    s_idmap_t early; /* receipts that came before their ACK: arrival time */
    uint64_t rng;
    long acked, nacked, failed, copies, delivered;
    long nack_busy, nack_temporary;
    int64_t last_ack_us;
    char *ids_text; /* "mailbox id\n" lines for ids_out */
    size_t ids_len, ids_cap;
    long ids_count, ids_quota;
    char sample_mailbox[PF_BENCH_ID_MAX];
    char sample_id[40];
    const char *error;
    char errbuf[256];
} s_sender_t;

struct s_run {
    const pf_bench_send_config_t *cfg;
    char runid[32];
    char *body;
    unsigned char *attachment;
    pthread_barrier_t ready;
    int64_t t0_us, end_us;
    atomic_long claimed;
    atomic_long acked;
    atomic_int running; /* senders still sending */
    atomic_int monitor_stop;
    /* broker samples by the monitor */
    pf_procstat_t first, last;
    /* CPU seconds of PostgreSQL and of this process, machine jiffies,
     * at the first and the last sample: where the time goes */
    double pg_cpu[2], self_cpu[2];
    /* the run's database session (with --db): the server's WAL at the
     * same two samples, then the ceiling */
    pf_store_t *db;
    const char *db_err; /* why there is none */
    double wal[2];
    bool have_wal[2];
    /* machine jiffies while every sender is sending (the monitor's
     * first tick and its last tick before the end) */
    unsigned long long busy[2], total[2];
    bool have_busy[2];
    long rss_max_kib, rss_at_10pct_kib;
    bool have_stats;
    pthread_mutex_t lock;
};

static void s_ids_add(s_sender_t *s, const char *mailbox, const char *id)
{
    if (s->ids_count >= s->ids_quota)
        return;
    size_t need = strlen(mailbox) + strlen(id) + 2;
    if (s->ids_len + need + 1 > s->ids_cap) {
        s->ids_cap = (s->ids_cap + need + 1) * 2;
        s->ids_text = xrealloc(s->ids_text, s->ids_cap);
    }
    s->ids_len +=
        (size_t)snprintf(s->ids_text + s->ids_len, s->ids_cap - s->ids_len, "%s %s\n", mailbox, id);
    s->ids_count++;
}

static void s_drain_receipts(s_sender_t *s, int timeout_ms)
{
    pf_client_receipt_t r;
    const char *err;
    while (pf_client_next_receipt(s->client, timeout_ms, &r, &err) == 1) {
        int64_t now = pf_bench_now_us();
        uint64_t hi, lo;
        if (r.event && strcmp(r.event, "delivered") == 0 && r.message_id &&
            s_uuid_parse(r.message_id, &hi, &lo) == 0) {
            int64_t start = s_idmap_take(&s->ids, hi, lo);
            if (start >= 0) {
                pf_hist_add(s->rcpt, (uint64_t)(now - start));
                s->delivered++;
            } else {
                /* the relay may send a receipt before the ACK of its
                 * notice has reached us: match it when the ACK comes */
                s_idmap_put(&s->early, hi, lo, now);
            }
        }
        pf_client_receipt_clear(&r);
        timeout_ms = 0; /* after the first, take only what is there */
    }
}

/* Whether a notice that starts at at_us (the planned time in the open
 * loop, now in the closed loop) is still part of the run.  In the open
 * loop a notice planned before the end is offered even when a stall put
 * the sender behind: dropping that backlog would drop the very notices
 * that waited longest, and flatter p99 and max. */
static bool s_more(s_sender_t *s, int64_t at_us)
{
    const pf_bench_send_config_t *cfg = s->run->cfg;
    if (cfg->duration_s > 0 && at_us >= s->run->end_us)
        return false;
    if (cfg->count > 0 && atomic_fetch_add(&s->run->claimed, 1) >= cfg->count)
        return false;
    return true;
}

/* An answer arrived for a notice started at start (us). */
static void s_on_result(s_sender_t *s, const pf_client_result_t *res, int64_t start, int64_t now)
{
    if (res->ok) {
        s->acked++;
        s->last_ack_us = now;
        atomic_fetch_add(&s->run->acked, 1);
        pf_hist_add(s->ack, (uint64_t)(now - start));
        for (size_t c = 0; c < res->copy_count; c++) {
            uint64_t hi, lo;
            if (res->copies[c].message_id &&
                s_uuid_parse(res->copies[c].message_id, &hi, &lo) == 0) {
                int64_t arrived = s_idmap_take(&s->early, hi, lo);
                if (arrived >= 0) {
                    pf_hist_add(s->rcpt, (uint64_t)(arrived > start ? arrived - start : 0));
                    s->delivered++;
                } else {
                    s_idmap_put(&s->ids, hi, lo, start);
                }
            }
            s->copies++;
            s_ids_add(s, res->copies[c].recipient, res->copies[c].message_id);
            if (s->sample_id[0] == '\0') {
                snprintf(s->sample_mailbox, sizeof(s->sample_mailbox), "%s",
                         res->copies[c].recipient);
                snprintf(s->sample_id, sizeof(s->sample_id), "%s", res->copies[c].message_id);
            }
        }
        return;
    }
    s->nacked++;
    if (res->code && strcmp(res->code, "busy") == 0)
        s->nack_busy++;
    else if (res->code && strcmp(res->code, "temporary") == 0)
        s->nack_temporary++;
    else if (s->error == NULL) {
        snprintf(s->errbuf, sizeof(s->errbuf), "NACK %s: %s", res->code ? res->code : "?",
                 res->reason ? res->reason : "");
        s->error = s->errbuf;
    }
}

static void s_on_failure(s_sender_t *s, const char *what, const char *err)
{
    s->failed++;
    if (s->error == NULL) {
        snprintf(s->errbuf, sizeof(s->errbuf), "%s: %s", what, err ? err : "?");
        s->error = s->errbuf;
    }
}

/* The sequence number at the end of one of our request ids, or -1. */
static long s_reqid_seq(const char *reqid)
{
    const char *dash = reqid ? strrchr(reqid, '-') : NULL;
    return dash ? strtol(dash + 1, NULL, 10) : -1;
}

/* Fills the notice's request id and recipients for submission seq. */
static void s_prepare(s_sender_t *s, pf_client_notice_t *n, char *reqid, size_t reqid_len,
                      char (*rcpt)[PF_BENCH_ID_MAX], long seq)
{
    const pf_bench_send_config_t *cfg = s->run->cfg;
    snprintf(reqid, reqid_len, "%s-%d-%ld", s->run->runid, s->index, seq);
    n->request_id = reqid;
    long base = (long)(pf_bench_rand(&s->rng) % (uint64_t)cfg->mailboxes);
    for (int j = 0; j < cfg->recipients; j++)
        pf_bench_mailbox_id(rcpt[j], cfg->mailbox_prefix, (base + j) % cfg->mailboxes);
}

static void *s_sender_main(void *arg)
{
    s_sender_t *s = arg;
    s_run_t *run = s->run;
    const pf_bench_send_config_t *cfg = run->cfg;
    int k = cfg->recipients;
    char(*rcpt)[PF_BENCH_ID_MAX] = xcalloc((size_t)k, PF_BENCH_ID_MAX);
    const char **rcpt_ptrs = xcalloc((size_t)k, sizeof(*rcpt_ptrs));
    for (int j = 0; j < k; j++)
        rcpt_ptrs[j] = rcpt[j];
    pf_client_attachment_t att = {"bescheid.pdf", "application/pdf", run->attachment,
                                  cfg->attachment_size};
    pf_client_notice_t n = {
        .recipients = rcpt_ptrs,
        .recipient_count = (size_t)k,
        .title = "Bescheid (Lasttest)",
        .subject = "Ihr Bescheid",
        .body = run->body,
        .reference = "BENCH-1",
        .read_receipt = true, /* as a Bescheid would: opening pays the durable receipt */
        .attachments = cfg->attachment_size ? &att : NULL,
        .attachment_count = cfg->attachment_size ? 1 : 0,
    };
    /* open loop: this sender's share of the rate, its start shifted so
     * the senders do not fire in step */
    int64_t interval_us = cfg->rate > 0 ? (int64_t)(1e6 * cfg->senders / cfg->rate) : 0;
    pthread_barrier_wait(&run->ready);
    int64_t planned = run->t0_us + (interval_us * s->index) / (cfg->senders ? cfg->senders : 1);
    long seq = 0;
    char reqid[96];
    if (cfg->window <= 1) {
        /* one notice in flight: the blocking call */
        while (s->client != NULL && s_more(s, interval_us > 0 ? planned : pf_bench_now_us())) {
            int64_t start;
            if (interval_us > 0) {
                pf_bench_sleep_until(planned);
                start = planned;
                planned += interval_us;
            } else {
                start = pf_bench_now_us();
            }
            s_prepare(s, &n, reqid, sizeof(reqid), rcpt, seq++);
            pf_client_result_t res;
            const char *err;
            int rc = pf_client_send(s->client, &n, &res, &err);
            if (rc == 0) {
                s_on_result(s, &res, start, pf_bench_now_us());
                pf_client_result_clear(&res);
            } else {
                s_on_failure(s, "send failed", err);
                if (rc == -2)
                    break; /* the notice itself is invalid: every further one would be too */
            }
            s_drain_receipts(s, 0);
        }
    } else {
        /* a window: up to cfg->window notices in flight on one client;
         * planned start times are kept by sequence number */
        s_idmap_t starts = {0};
        bool sending = true;
        while (s->client != NULL) {
            int64_t now = pf_bench_now_us();
            if (sending && starts.n < (size_t)cfg->window && !(interval_us > 0 && now < planned)) {
                if (!s_more(s, interval_us > 0 ? planned : now)) {
                    sending = false;
                    continue;
                }
                int64_t start = interval_us > 0 ? planned : now;
                planned += interval_us;
                s_prepare(s, &n, reqid, sizeof(reqid), rcpt, seq);
                const char *err;
                int rc = pf_client_submit(s->client, &n, &err);
                if (rc == 0) {
                    s_idmap_put(&starts, 1, (uint64_t)seq + 1, start);
                    seq++;
                    continue;
                }
                s_on_failure(s, "submit failed", err);
                break;
            }
            if (!sending && starts.n == 0)
                break;
            if (starts.n == 0) {
                /* open loop, nothing in flight: wait for the next planned
                 * start (pf_client_poll_result would return at once) */
                int64_t until = planned < now + 10000 ? planned : now + 10000;
                pf_bench_sleep_until(until);
                s_drain_receipts(s, 0);
                continue;
            }
            int wait_ms = 100;
            if (sending && interval_us > 0 && starts.n < (size_t)cfg->window)
                /* rounded up: a wait of 0 ms under a millisecond before the
                 * next start would spin (it measured 389 us of bench CPU
                 * per notice at half rate, on the cores under test); the
                 * start may slip by up to 1 ms, which the latency, taken
                 * from the planned start, includes */
                wait_ms = (int)((planned - now + 999) / 1000);
            pf_client_result_t res;
            const char *err;
            int r = pf_client_poll_result(s->client, wait_ms, &res, &err);
            if (r == 1) {
                long rseq = s_reqid_seq(res.request_id);
                int64_t start = rseq >= 0 ? s_idmap_take(&starts, 1, (uint64_t)rseq + 1) : -1;
                if (start >= 0)
                    s_on_result(s, &res, start, pf_bench_now_us());
                pf_client_result_clear(&res);
            } else if (r < 0) {
                s_on_failure(s, "poll failed", err);
                break;
            }
            /* receipts come in with the answers: collect them when some
             * are queued, or when no answer came (a look at the socket
             * costs libzmq two system calls, too many to spend on every
             * answer) */
            if (r != 1 || pf_client_receipts_queued(s->client) > 0)
                s_drain_receipts(s, 0);
        }
        free(starts.slots);
    }
    atomic_fetch_sub(&run->running, 1);
    /* the receipts still under way */
    int64_t deadline = pf_bench_now_us() + (int64_t)(cfg->receipt_wait_s * 1e6);
    while (s->client != NULL && s->ids.n > 0 && pf_bench_now_us() < deadline)
        s_drain_receipts(s, 100);
    free(rcpt);
    free(rcpt_ptrs);
    return NULL;
}

/* CPU of PostgreSQL and of this process at the start (k 0) and the end
 * (k 1) of the run. */
static void s_sample_system(s_run_t *run, int k)
{
    run->pg_cpu[k] = run->cfg->pg_pid > 0 ? pf_procstat_tree_cpu(run->cfg->pg_pid) : -1;
    run->self_cpu[k] = pf_procstat_self_cpu();
    const char *err;
    run->have_wal[k] =
        run->db != NULL && pf_store_bench_wal_bytes(run->db, &run->wal[k], &err) == 0;
}

/* Machine load while all senders send: the first tick, then every tick
 * until one sender is done or the duration is over. */
static void s_sample_machine(s_run_t *run, int64_t now)
{
    int k = run->have_busy[0] ? 1 : 0;
    if (k == 1 && (atomic_load(&run->running) < run->cfg->senders ||
                   (run->cfg->duration_s > 0 && now > run->end_us)))
        return;
    if (pf_procstat_machine(&run->busy[k], &run->total[k]) == 0)
        run->have_busy[k] = true;
}

static void s_sample(s_run_t *run, bool first)
{
    const pf_bench_send_config_t *cfg = run->cfg;
    if (cfg->broker_pid <= 0)
        return;
    pf_procstat_t ps;
    const char *err;
    if (pf_procstat_read(cfg->broker_pid, &ps, &err) != 0)
        return;
    pthread_mutex_lock(&run->lock);
    if (first) {
        run->first = ps;
        run->have_stats = true;
        run->rss_max_kib = ps.rss_kib;
    }
    run->last = ps;
    if (ps.rss_kib > run->rss_max_kib)
        run->rss_max_kib = ps.rss_kib;
    pthread_mutex_unlock(&run->lock);
}

static void *s_monitor_main(void *arg)
{
    s_run_t *run = arg;
    const pf_bench_send_config_t *cfg = run->cfg;
    int64_t next = run->t0_us + 1000000;
    long prev = 0;
    int64_t prev_t = run->t0_us;
    while (!atomic_load(&run->monitor_stop)) {
        int64_t now = pf_bench_now_us();
        if (now < next) {
            usleep((useconds_t)(next - now < 50000 ? next - now : 50000));
            continue;
        }
        next += 1000000;
        s_sample(run, false);
        s_sample_machine(run, now);
        long acked = atomic_load(&run->acked);
        double t = (double)(now - run->t0_us) / 1e6;
        /* 10% of the run: of its time, or of its notices (--count) */
        bool tenth = cfg->duration_s > 0 ? t >= cfg->duration_s / 10 : acked >= cfg->count / 10;
        if (run->rss_at_10pct_kib == 0 && tenth)
            run->rss_at_10pct_kib = run->last.rss_kib;
        if (cfg->progress && ((now - run->t0_us) / 1000000) % 5 == 0)
            fprintf(stderr, "bench: %s %.0f s, %ld acked, %.0f/s now, broker rss %.1f MiB\n",
                    cfg->label, t, acked, (double)(acked - prev) * 1e6 / (double)(now - prev_t),
                    run->have_stats ? (double)run->last.rss_kib / 1024 : 0.0);
        if (((now - run->t0_us) / 1000000) % 5 == 0) {
            prev = acked;
            prev_t = now;
        }
    }
    return NULL;
}

/* ---- the ceiling ------------------------------------------------------ */

static int s_ceiling(s_run_t *run, const char *sample_mailbox, const char *sample_id, long rows,
                     double *rows_per_s_r, size_t *row_bytes_r, const char **error_r)
{
    const pf_bench_send_config_t *cfg = run->cfg;
    pf_store_t *st = run->db;
    pf_bench_row_t *row = NULL;
    if (st == NULL) {
        *error_r = run->db_err;
        return -1;
    }
    int rc = -1;
    int found = pf_store_bench_row_sample(st, sample_mailbox, sample_id, &row, error_r);
    if (found == 0)
        *error_r = "the sample copy is not in the database";
    if (found <= 0)
        goto out;
    *row_bytes_r = pf_bench_row_bytes(row);
    size_t nmb = (size_t)cfg->mailboxes;
    char **mbs = xcalloc(nmb, sizeof(*mbs));
    for (size_t i = 0; i < nmb; i++) {
        mbs[i] = xmalloc(PF_BENCH_ID_MAX);
        pf_bench_mailbox_id(mbs[i], cfg->mailbox_prefix, (long)i);
    }
    rc = pf_store_bench_ceiling(st, row, (const char *const *)mbs, nmb, (size_t)rows,
                                cfg->ceiling_batch, rows_per_s_r, error_r);
    for (size_t i = 0; i < nmb; i++)
        free(mbs[i]);
    free(mbs);
out:
    pf_bench_row_destroy(&row);
    return rc;
}

/* ---- the run ---------------------------------------------------------- */

static int s_check(const pf_bench_send_config_t *cfg, const char **error_r)
{
    if (cfg->senders < 1 || cfg->senders > 1024)
        *error_r = "senders must be 1..1024";
    else if (cfg->recipients < 1 || cfg->recipients > cfg->mailboxes)
        *error_r = "recipients must be at least 1 and at most the number of mailboxes";
    else if (cfg->mailboxes < 1)
        *error_r = "mailboxes must be at least 1";
    else if (cfg->duration_s <= 0 && cfg->count <= 0)
        *error_r = "give a duration or a count";
    else if (cfg->broker_key_file == NULL)
        *error_r = "the broker's public key file is required";
    else if (cfg->window < 1 || cfg->window > 4096)
        *error_r = "window must be 1..4096";
    else if (cfg->rate < 0)
        *error_r = "rate must not be negative";
    else
        return 0;
    return -1;
}

int pf_bench_send_run(const pf_bench_send_config_t *cfg, FILE *out, const char **error_r)
{
    if (s_check(cfg, error_r) != 0)
        return -1;
    s_run_t run;
    memset(&run, 0, sizeof(run));
    run.cfg = cfg;
    pthread_mutex_init(&run.lock, NULL);
    snprintf(run.runid, sizeof(run.runid), "b%lx-%ld", (unsigned long)time(NULL), (long)getpid());
    run.body = xmalloc(cfg->body_size + 1);
    for (size_t i = 0; i < cfg->body_size; i++)
        run.body[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 7) % 26);
    run.body[cfg->body_size] = '\0';
    if (cfg->attachment_size) {
        run.attachment = xmalloc(cfg->attachment_size);
        uint64_t r = 42;
        for (size_t i = 0; i < cfg->attachment_size; i++)
            run.attachment[i] = (unsigned char)pf_bench_rand(&r);
    }

    int ns = cfg->senders;
    s_sender_t *snd = xcalloc((size_t)ns, sizeof(*snd));
    pthread_t *th = xcalloc((size_t)ns, sizeof(*th));
    int rc = -1;
    int started = 0;
    for (int i = 0; i < ns; i++) {
        s_sender_t *s = &snd[i];
        s->run = &run;
        s->index = i;
        s->ack = pf_hist_new();
        s->rcpt = pf_hist_new();
        s->rng = 0x5eed0000ull + (uint64_t)i * 7919 + (uint64_t)time(NULL);
        s->ids_quota = cfg->ids_out ? cfg->ids_max / ns + 1 : 0;
        char name[PF_BENCH_ID_MAX];
        pf_bench_sender_name(name, cfg->sender_prefix, i);
        char *keyfile = pf_bench_sender_keyfile(cfg->keys_dir, name);
        const char *err;
        int crc = pf_client_new(cfg->endpoint, cfg->broker_key_file, keyfile, &s->client, &err);
        free(keyfile);
        if (crc != 0) {
            snprintf(s->errbuf, sizeof(s->errbuf), "sender %s: %s", name, err);
            s->error = s->errbuf;
            *error_r = s->error;
            goto out;
        }
        pf_client_set_timeout(s->client, cfg->timeout_ms, 3);
        pf_client_set_manual_ack(s->client, cfg->no_rack);
        if (cfg->window > 1)
            pf_client_set_window(s->client, (size_t)cfg->window);
    }
    pthread_barrier_init(&run.ready, NULL, (unsigned)ns + 1);
    atomic_store(&run.running, ns);
    for (int i = 0; i < ns; i++) {
        pthread_create(&th[i], NULL, s_sender_main, &snd[i]);
        started++;
    }
    /* everyone is connected-ish (ZeroMQ connects lazily); start the clock */
    run.t0_us = pf_bench_now_us() + 20000;
    run.end_us = run.t0_us + (int64_t)(cfg->duration_s * 1e6);
    s_sample(&run, true);
    if (cfg->db != NULL && pf_store_open(cfg->db, &run.db, &run.db_err) != 0)
        run.db = NULL;
    s_sample_system(&run, 0);
    pthread_t mon;
    pthread_create(&mon, NULL, s_monitor_main, &run);
    const char *probe_err = NULL;
    pf_diskprobe_t *probe =
        cfg->disk_probe ? pf_diskprobe_start(cfg->disk_probe, S_PROBE_MS, &probe_err) : NULL;
    pthread_barrier_wait(&run.ready);
    for (int i = 0; i < ns; i++)
        pthread_join(th[i], NULL);
    pf_hist_t *disk = pf_diskprobe_stop(&probe);
    atomic_store(&run.monitor_stop, 1);
    pthread_join(mon, NULL);
    pthread_barrier_destroy(&run.ready);
    s_sample(&run, false);
    s_sample_system(&run, 1);

    /* ---- merge ---- */
    pf_hist_t *ack = pf_hist_new(), *rcpt = pf_hist_new();
    long acked = 0, nacked = 0, failed = 0, copies = 0, delivered = 0, unmatched = 0, busy = 0,
         temporary = 0;
    int64_t last = run.t0_us;
    const char *first_error = NULL, *sample_mb = NULL, *sample_id = NULL;
    for (int i = 0; i < ns; i++) {
        s_sender_t *s = &snd[i];
        pf_hist_merge(ack, s->ack);
        pf_hist_merge(rcpt, s->rcpt);
        acked += s->acked;
        nacked += s->nacked;
        failed += s->failed;
        copies += s->copies;
        delivered += s->delivered;
        unmatched += (long)s->early.n; /* receipts no ACK of ours ever matched */
        busy += s->nack_busy;
        temporary += s->nack_temporary;
        if (s->last_ack_us > last)
            last = s->last_ack_us;
        if (first_error == NULL)
            first_error = s->error;
        if (sample_id == NULL && s->sample_id[0]) {
            sample_mb = s->sample_mailbox;
            sample_id = s->sample_id;
        }
    }
    double secs = (double)(last - run.t0_us) / 1e6;
    double rate = secs > 0 ? (double)acked / secs : 0;
    double copy_rate = secs > 0 ? (double)copies / secs : 0;
    double notice_bytes = (double)cfg->body_size + (double)cfg->attachment_size;

    if (cfg->ids_out) {
        FILE *f = fopen(cfg->ids_out, "w");
        if (f == NULL) {
            fprintf(stderr, "postfach-bench: cannot write \"%s\"\n", cfg->ids_out);
        } else {
            for (int i = 0; i < ns; i++)
                if (snd[i].ids_len)
                    fwrite(snd[i].ids_text, 1, snd[i].ids_len, f);
            fclose(f);
        }
    }

    fprintf(out, "scenario %s\n", cfg->label);
    if (cfg->rate > 0)
        fprintf(out, "  load: open loop at %.0f notices/s", cfg->rate);
    else
        fprintf(out, "  load: closed loop");
    fprintf(out, ", %d senders, window %d", cfg->senders, cfg->window < 1 ? 1 : cfg->window);
    fprintf(out, ", %d recipient(s) of %ld mailboxes, body %zu B, attachment %zu B\n",
            cfg->recipients, cfg->mailboxes, cfg->body_size, cfg->attachment_size);
    fprintf(out,
            "  notices: %ld acked (%ld copies), %ld nacked (busy %ld, temporary %ld), "
            "%ld failed, in %.2f s\n",
            acked, copies, nacked, busy, temporary, failed, secs);
    if (first_error)
        fprintf(out, "  first error: %s\n", first_error);
    fprintf(out, "  throughput: %.0f notices/s, %.0f copies/s, %.1f MB/s of notices stored\n", rate,
            copy_rate, copy_rate * notice_bytes / 1e6);
    fprintf(out, "  ack latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms\n",
            pf_hist_quantile_ms(ack, 0.5), pf_hist_quantile_ms(ack, 0.99), pf_hist_max_ms(ack),
            pf_hist_mean_ms(ack));
    if (disk != NULL)
        fprintf(out,
                "  disk: 8 KiB write + fdatasync every %d ms beside the database: %llu flushes, "
                "p50 %.2f ms, p99 %.2f ms, max %.2f ms, %llu over %d ms\n",
                S_PROBE_MS, (unsigned long long)pf_hist_count(disk), pf_hist_quantile_ms(disk, 0.5),
                pf_hist_quantile_ms(disk, 0.99), pf_hist_max_ms(disk),
                (unsigned long long)pf_hist_count_above(disk, S_PROBE_SLOW_MS * 1000),
                S_PROBE_SLOW_MS);
    else if (cfg->disk_probe)
        fprintf(out, "  disk: not measured: %s\n", probe_err ? probe_err : "?");
    pf_hist_destroy(&disk);
    if (cfg->no_rack)
        fprintf(out, "  receipts: not acknowledged (--no-rack, diagnostic run)\n");
    fprintf(out,
            "  delivered receipts: %ld of %ld copies (%ld unmatched), latency p50 %.2f ms, "
            "p99 %.2f ms, max %.2f ms\n",
            delivered, copies, unmatched, pf_hist_quantile_ms(rcpt, 0.5),
            pf_hist_quantile_ms(rcpt, 0.99), pf_hist_max_ms(rcpt));
    if (run.have_stats) {
        double cpu = run.last.cpu_s - run.first.cpu_s;
        fprintf(out,
                "  broker: rss start %.1f MiB, at 10%% %.1f MiB, end %.1f MiB, max %.1f MiB "
                "(peak %.1f MiB); cpu %.1f us/notice, %.0f%% of a core\n",
                (double)run.first.rss_kib / 1024, (double)run.rss_at_10pct_kib / 1024,
                (double)run.last.rss_kib / 1024, (double)run.rss_max_kib / 1024,
                (double)run.last.hwm_kib / 1024, acked ? cpu * 1e6 / (double)acked : 0,
                secs > 0 ? 100 * cpu / secs : 0);
    }
    if (run.have_stats && acked > 0) {
        /* everything on this machine per notice: what bounds the rate
         * when the machine is busy */
        double per = 1e6 / (double)acked;
        double broker = (run.last.cpu_s - run.first.cpu_s) * per;
        double pg = run.pg_cpu[0] >= 0 && run.pg_cpu[1] >= run.pg_cpu[0]
                        ? (run.pg_cpu[1] - run.pg_cpu[0]) * per
                        : -1;
        double client = (run.self_cpu[1] - run.self_cpu[0]) * per;
        unsigned long long dt = run.have_busy[1] ? run.total[1] - run.total[0] : 0;
        double busy_pct = dt ? 100.0 * (double)(run.busy[1] - run.busy[0]) / (double)dt : -1;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        fprintf(out, "  cpu per notice: broker %.0f us, postgres %s%.0f us, bench client %.0f us",
                broker, pg < 0 ? "n/a " : "", pg < 0 ? 0 : pg, client);
        if (pg >= 0)
            fprintf(out, ", together %.0f us: %ld cores allow at most %.0f notices/s",
                    broker + pg + client, cpus, (double)cpus * 1e6 / (broker + pg + client));
        if (busy_pct >= 0)
            fprintf(out, "; machine %.0f%% busy while sending", busy_pct);
        fprintf(out, "\n");
    }
    if (run.have_wal[0] && run.have_wal[1] && acked > 0) {
        /* what the disk is asked to take per notice, from the whole server
         * (also autovacuum and the relay) */
        fprintf(out, "  wal per notice: %.0f bytes\n", (run.wal[1] - run.wal[0]) / (double)acked);
    } else if (cfg->db != NULL) {
        fprintf(out, "  wal per notice: not measured: %s\n", run.db_err ? run.db_err : "?");
    }
    double ceiling = 0;
    if (cfg->db && sample_id) {
        long rows = copies;
        if (cfg->ceiling_max > 0 && rows > cfg->ceiling_max)
            rows = cfg->ceiling_max;
        size_t row_bytes = 0;
        const char *err = NULL;
        double pg0 = cfg->pg_pid > 0 ? pf_procstat_tree_cpu(cfg->pg_pid) : -1;
        if (s_ceiling(&run, sample_mb, sample_id, rows, &ceiling, &row_bytes, &err) != 0) {
            fprintf(out, "  ceiling: not measured: %s\n", err ? err : "?");
        } else {
            double pg1 = cfg->pg_pid > 0 ? pf_procstat_tree_cpu(cfg->pg_pid) : -1;
            fprintf(out,
                    "  ceiling: %.0f rows/s (%ld rows of %zu B, %zu rows per COPY "
                    "transaction, same database, no broker)",
                    ceiling, rows, row_bytes, cfg->ceiling_batch);
            /* the database's own cost of storing a copy, without anything
             * else a notice needs: a floor for its share per notice */
            if (pg0 >= 0 && pg1 >= pg0 && rows > 0)
                fprintf(out, "; postgres %.0f us CPU per row", (pg1 - pg0) * 1e6 / (double)rows);
            fprintf(out, "\n");
        }
    }
    double ratio = ceiling > 0 ? copy_rate / ceiling : 0;
    fprintf(out, "  ratio to ceiling: %.3f\n", ratio);
    fprintf(out,
            "postfach: %ld delivered, %.0f msg/s, p50 %.2f ms, p99 %.2f ms, ceiling %.0f rows/s, "
            "ratio %.3f\n",
            delivered, rate, pf_hist_quantile_ms(ack, 0.5), pf_hist_quantile_ms(ack, 0.99), ceiling,
            ratio);
    fflush(out);
    pf_hist_destroy(&ack);
    pf_hist_destroy(&rcpt);
    rc = 0;
out:
    for (int i = 0; i < ns; i++) {
        pf_client_destroy(&snd[i].client);
        pf_hist_destroy(&snd[i].ack);
        pf_hist_destroy(&snd[i].rcpt);
        free(snd[i].ids.slots);
        free(snd[i].early.slots);
        free(snd[i].ids_text);
    }
    if (rc != 0 && *error_r != NULL) {
        static char buf[300];
        snprintf(buf, sizeof(buf), "%s", *error_r);
        *error_r = buf;
    }
    (void)started;
    free(snd);
    free(th);
    free(run.body);
    free(run.attachment);
    pf_store_destroy(&run.db);
    pthread_mutex_destroy(&run.lock);
    return rc;
}
