/* Load on postfach-reader: listing and opening, with many citizens.
 *
 * Callers: cmd/postfach-bench (`reader`), scripts/bench.sh.
 * Threads: one per connection (lib/bench/http.c), each with its own
 * histogram; work items (citizen + path) are taken from a shared atomic
 * counter, so opens walk the ids file once before any notice is opened a
 * second time.  Tokens are minted in process with the development
 * identity provider's key (as `postfach-ctl token` does), one per item,
 * before the clock starts.
 * Input from outside: the ids file (our own output; lines that do not
 * parse are skipped) and the reader's responses (status and length only). */
#include "bench/reader.h"
#include "auth/token.h"
#include "bench/common.h"
#include "bench/hist.h"
#include "bench/http.h"
#include "bench/procstat.h"
#include "crypto/jose.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void pf_bench_reader_config_default(pf_bench_reader_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    cfg->keys_dir = "var/keys";
    cfg->mode = "list";
    cfg->label = "p256";
    cfg->mailbox_prefix = "bench-";
    cfg->mailboxes = 1000;
    cfg->ids_max = 200000;
    cfg->connections = 8;
    cfg->limit = 50;
    cfg->duration_s = 10;
}

typedef struct {
    char *path;
    const char *token; /* borrowed from the token table */
} s_item_t;

typedef struct {
    s_item_t *items;
    size_t n;
    char **tokens;
    size_t ntokens;
} s_work_t;

typedef struct {
    const pf_bench_reader_config_t *cfg;
    const s_work_t *work;
    atomic_ulong *next;
    int64_t end_us;
    pf_hist_t *hist;
    long ok, non2xx, errors, bytes;
    int last_status;
    const char *error;
} s_conn_t;

static void *s_conn_main(void *arg)
{
    s_conn_t *c = arg;
    pf_bench_http_t *h = pf_bench_http_new(c->cfg->host, c->cfg->port);
    if (h == NULL) {
        c->error = "bad reader address";
        return NULL;
    }
    while (pf_bench_now_us() < c->end_us) {
        unsigned long k = atomic_fetch_add(c->next, 1) % c->work->n;
        const s_item_t *it = &c->work->items[k];
        int status = 0;
        size_t len = 0;
        const char *err;
        int64_t t0 = pf_bench_now_us();
        if (pf_bench_http_get(h, it->path, it->token, &status, &len, &err) != 0) {
            c->errors++;
            if (c->error == NULL)
                c->error = err;
            continue;
        }
        pf_hist_add(c->hist, (uint64_t)(pf_bench_now_us() - t0));
        c->bytes += (long)len;
        if (status >= 200 && status < 300) {
            c->ok++;
        } else {
            c->non2xx++;
            c->last_status = status;
        }
    }
    pf_bench_http_destroy(&h);
    return NULL;
}

static char *s_mint(const pf_key_t *idp, const char *citizen, const char **error_r)
{
    return pf_token_mint(idp, PF_TOKEN_DEV_ISSUER, PF_TOKEN_DEV_AUDIENCE, citizen, PF_LEVEL_NORMAL,
                         (int64_t)time(NULL), 3600, error_r);
}

/* Items of the list mode: one per citizen. */
static int s_work_list(const pf_bench_reader_config_t *cfg, const pf_key_t *idp, s_work_t *w,
                       const char **error_r)
{
    w->n = w->ntokens = (size_t)cfg->mailboxes;
    w->items = xcalloc(w->n, sizeof(*w->items));
    w->tokens = xcalloc(w->n, sizeof(*w->tokens));
    for (size_t i = 0; i < w->n; i++) {
        char id[PF_BENCH_ID_MAX];
        pf_bench_mailbox_id(id, cfg->mailbox_prefix, (long)i);
        w->tokens[i] = s_mint(idp, id, error_r);
        if (w->tokens[i] == NULL)
            return -1;
        w->items[i].path = xasprintf("/v1/messages?limit=%d", cfg->limit);
        w->items[i].token = w->tokens[i];
    }
    return 0;
}

/* Items of the open mode: one per line of the ids file; one token per
 * citizen, as a citizen's session reuses its token for every notice it
 * opens (the reader's token cache sees what it sees in service). */
static int s_work_open(const pf_bench_reader_config_t *cfg, const pf_key_t *idp, s_work_t *w,
                       const char **error_r)
{
    char *text = NULL;
    size_t len = 0;
    if (cfg->ids_file == NULL) {
        *error_r = "open needs --ids FILE (from send --ids-out)";
        return -1;
    }
    if (pf_file_read(cfg->ids_file, 256u * 1024 * 1024, &text, &len, error_r) != 0)
        return -1;
    size_t cap = 1024, tcap = 1024;
    w->items = xcalloc(cap, sizeof(*w->items));
    w->tokens = xcalloc(tcap, sizeof(*w->tokens));
    /* citizen -> token, open addressing over the mailbox id */
    enum { SLOTS = 1 << 16 };
    struct {
        char *mailbox;
        size_t token;
    } *map = xcalloc(SLOTS, sizeof(*map));
    int rc = 0;
    for (char *line = strtok(text, "\n"); line && (long)w->n < cfg->ids_max;
         line = strtok(NULL, "\n")) {
        char mb[PF_BENCH_ID_MAX], id[64];
        if (sscanf(line, "%127s %63s", mb, id) != 2)
            continue;
        if (w->n == cap) {
            cap *= 2;
            w->items = xrealloc(w->items, cap * sizeof(*w->items));
        }
        size_t h = 5381;
        for (const char *c = mb; *c; c++)
            h = h * 33 + (unsigned char)*c;
        size_t slot = h & (SLOTS - 1);
        while (map[slot].mailbox != NULL && strcmp(map[slot].mailbox, mb) != 0)
            slot = (slot + 1) & (SLOTS - 1);
        if (map[slot].mailbox == NULL) {
            if (w->ntokens == SLOTS / 2) {
                *error_r = "too many citizens in the ids file";
                rc = -1;
                break;
            }
            if (w->ntokens == tcap) {
                tcap *= 2;
                w->tokens = xrealloc(w->tokens, tcap * sizeof(*w->tokens));
            }
            w->tokens[w->ntokens] = s_mint(idp, mb, error_r);
            if (w->tokens[w->ntokens] == NULL) {
                rc = -1;
                break;
            }
            map[slot].mailbox = xstrdup(mb);
            map[slot].token = w->ntokens++;
        }
        w->items[w->n].path = xasprintf("/v1/messages/%s", id);
        w->items[w->n].token = w->tokens[map[slot].token];
        w->n++;
    }
    for (size_t i = 0; i < SLOTS; i++)
        free(map[i].mailbox);
    free(map);
    free(text);
    if (rc == 0 && w->n == 0) {
        *error_r = "the ids file lists no notices";
        rc = -1;
    }
    return rc;
}

static void s_work_free(s_work_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->items[i].path);
    for (size_t i = 0; i < w->ntokens; i++)
        free(w->tokens[i]);
    free(w->items);
    free(w->tokens);
}

int pf_bench_reader_run(const pf_bench_reader_config_t *cfg, FILE *out, const char **error_r)
{
    static char errbuf[512];
    if (cfg->connections < 1 || cfg->connections > 1024 || cfg->duration_s <= 0) {
        *error_r = "reader needs 1..1024 connections and a duration";
        return -1;
    }
    bool open_mode = strcmp(cfg->mode, "open") == 0;
    if (!open_mode && strcmp(cfg->mode, "list") != 0) {
        *error_r = "mode must be list or open";
        return -1;
    }
    char *path = xasprintf("%s/idp.jwk", cfg->keys_dir), *jwk = NULL;
    size_t jwk_len = 0;
    pf_key_t *idp = NULL;
    s_work_t work = {0};
    const char *err;
    int rc = -1;
    if (pf_file_read(path, 65536, &jwk, &jwk_len, &err) != 0 ||
        pf_key_from_jwk(jwk, jwk_len, &idp, &err) != 0) {
        snprintf(errbuf, sizeof(errbuf), "cannot load \"%s\": %s", path, err);
        goto out;
    }
    if ((open_mode ? s_work_open(cfg, idp, &work, &err) : s_work_list(cfg, idp, &work, &err)) !=
        0) {
        snprintf(errbuf, sizeof(errbuf), "%s", err);
        goto out;
    }
    int nc = cfg->connections;
    s_conn_t *conns = xcalloc((size_t)nc, sizeof(*conns));
    pthread_t *th = xcalloc((size_t)nc, sizeof(*th));
    atomic_ulong next = 0;
    pf_procstat_t rd0 = {0}, rd1 = {0};
    const char *perr = NULL;
    bool have_rd = cfg->reader_pid > 0 && pf_procstat_read(cfg->reader_pid, &rd0, &perr) == 0;
    double pg0 = cfg->pg_pid > 0 ? pf_procstat_tree_cpu(cfg->pg_pid) : -1;
    double self0 = pf_procstat_self_cpu();
    int64_t t0 = pf_bench_now_us();
    for (int i = 0; i < nc; i++) {
        conns[i] = (s_conn_t){.cfg = cfg,
                              .work = &work,
                              .next = &next,
                              .end_us = t0 + (int64_t)(cfg->duration_s * 1e6),
                              .hist = pf_hist_new()};
        pthread_create(&th[i], NULL, s_conn_main, &conns[i]);
    }
    pf_hist_t *all = pf_hist_new();
    long ok = 0, non2xx = 0, errors = 0, bytes = 0;
    int last_status = 0;
    const char *first_error = NULL;
    for (int i = 0; i < nc; i++) {
        pthread_join(th[i], NULL);
        pf_hist_merge(all, conns[i].hist);
        ok += conns[i].ok;
        non2xx += conns[i].non2xx;
        errors += conns[i].errors;
        bytes += conns[i].bytes;
        if (conns[i].last_status)
            last_status = conns[i].last_status;
        if (first_error == NULL)
            first_error = conns[i].error;
        pf_hist_destroy(&conns[i].hist);
    }
    double secs = (double)(pf_bench_now_us() - t0) / 1e6;
    have_rd = have_rd && pf_procstat_read(cfg->reader_pid, &rd1, &perr) == 0;
    double pg1 = cfg->pg_pid > 0 ? pf_procstat_tree_cpu(cfg->pg_pid) : -1;
    double self1 = pf_procstat_self_cpu();
    double rps = secs > 0 ? (double)(ok + non2xx) / secs : 0;
    fprintf(out, "scenario reader %s %s\n", cfg->label, cfg->mode);
    fprintf(out, "  load: %d connections, %zu %s, %.1f s\n", nc, work.n,
            open_mode ? "notices (first opens until the list wraps)" : "citizens", secs);
    fprintf(out,
            "  requests: %ld ok, %ld non-2xx (last status %d), %ld failed, %.1f KiB/response\n", ok,
            non2xx, last_status, errors,
            ok + non2xx ? (double)bytes / (double)(ok + non2xx) / 1024 : 0.0);
    if (first_error)
        fprintf(out, "  first error: %s\n", first_error);
    if (ok + non2xx > 0 && (have_rd || pg0 >= 0)) {
        /* everything on this machine per request: what bounds the rate
         * when the machine is busy */
        double per = 1e6 / (double)(ok + non2xx);
        double rd = have_rd ? (rd1.cpu_s - rd0.cpu_s) * per : -1;
        double pg = pg0 >= 0 && pg1 >= pg0 ? (pg1 - pg0) * per : -1;
        double client = (self1 - self0) * per;
        fprintf(out, "  cpu per request: reader %s%.0f us, postgres %s%.0f us, bench client %.0f us",
                rd < 0 ? "n/a " : "", rd < 0 ? 0 : rd, pg < 0 ? "n/a " : "", pg < 0 ? 0 : pg,
                client);
        if (rd >= 0 && pg >= 0) {
            long cpus = sysconf(_SC_NPROCESSORS_ONLN);
            fprintf(out, ", together %.0f us: %ld cores allow at most %.0f req/s", rd + pg + client,
                    cpus, (double)cpus * 1e6 / (rd + pg + client));
        }
        fprintf(out, "\n");
    }
    fprintf(out, "reader %s %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %ld\n",
            cfg->label, cfg->mode, rps, pf_hist_quantile_ms(all, 0.5),
            pf_hist_quantile_ms(all, 0.99), pf_hist_max_ms(all), non2xx + errors);
    fflush(out);
    pf_hist_destroy(&all);
    free(conns);
    free(th);
    rc = 0;
out:
    if (rc != 0)
        *error_r = errbuf;
    s_work_free(&work);
    pf_key_destroy(&idp);
    free(path);
    free(jwk);
    return rc;
}
