/* Load and Jepsen-style bookkeeping for the fault tests (see faultload.h).
 *
 * Each thread owns its client and its records; nothing is shared while the
 * load runs except the stop flag and the send counters (atomics), so the
 * records are read only after pf_load_stop joined the threads.  Every
 * outcome the client library can report is recorded, none is assumed:
 * the check compares them with what the database holds. */
#include "faultload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_THREADS 32
#define S_MAX_RCPT 8

typedef struct {
    char rid[64];
    int nrcpt;
    const char *rcpt[S_MAX_RCPT];
    char ids[S_MAX_RCPT][37];
    bool acked;
    bool refused; /* a final NACK other than temporary/busy */
    bool ids_changed;
    int timeouts, temporary, busy;
    int resends; /* Lazy Pirate resends inside the client library */
    char code[40];
} s_req_t;

typedef struct {
    struct pf_load *l;
    int idx;
    pf_client_t *c;
    pthread_t th;
    bool running;
    s_req_t *reqs;
    size_t nreq, cap;
    int64_t *acks;
    size_t nacks, ackcap;
    char (*jtis)[37];
    size_t njti, jticap;
    atomic_long sent;
    atomic_long acked; /* ACKs received (repeats of an acknowledged request too) */
    long retries;      /* Lazy Pirate resends inside the client library */
} s_thread_t;

struct pf_load {
    pf_env_t *env;
    pf_load_opts_t o;
    char name[48];
    int ncit;
    char *body;
    unsigned char *att;
    atomic_bool stop;
    s_thread_t t[S_MAX_THREADS];
};

pf_client_t *pf_load_client(pf_env_t *env, int slot, int timeout_ms, int retries)
{
    char *pub = pf_env_broker_pubfile(env);
    char *key = pf_env_sender_keyfile(env, "tax-office");
    char *jwks = NULL;
    if (asprintf(&jwks, "%s/receipt.jwks", pf_env_keys(env)) < 0)
        abort();
    pf_client_t *c = NULL;
    const char *err = NULL;
    if (pf_client_new(pf_env_broker_slot_endpoint(env, slot), pub, key, &c, &err) != 0 ||
        pf_client_set_receipt_keys(c, jwks, &err) != 0) {
        fprintf(stderr, "faultload: cannot make a client: %s\n", err);
        abort();
    }
    pf_client_set_timeout(c, timeout_ms, retries);
    free(pub);
    free(key);
    free(jwks);
    return c;
}

/* The client library's log: counts its resends (same request id). */
static void s_client_log(void *ctx, int level, const char *msg)
{
    s_thread_t *t = ctx;
    if (strncmp(msg, "event=retry ", 12) == 0)
        t->retries++;
}

pf_load_t *pf_load_new(pf_env_t *env, const pf_load_opts_t *opts)
{
    pf_load_t *l = calloc(1, sizeof(*l));
    l->env = env;
    l->o = *opts;
    snprintf(l->name, sizeof(l->name), "%s", opts->name);
    l->o.name = l->name;
    while (opts->citizens[l->ncit])
        l->ncit++;
    if (l->o.threads < 1 || l->o.threads > S_MAX_THREADS || l->o.recipients < 1 ||
        l->o.recipients > S_MAX_RCPT || l->o.recipients > l->ncit)
        abort();
    l->body = malloc((size_t)l->o.body_bytes + 1);
    for (int i = 0; i < l->o.body_bytes; i++)
        l->body[i] = (char)('a' + i % 26);
    l->body[l->o.body_bytes] = '\0';
    if (l->o.attachment_bytes > 0) {
        l->att = malloc((size_t)l->o.attachment_bytes);
        for (int i = 0; i < l->o.attachment_bytes; i++)
            l->att[i] = (unsigned char)(i * 131 + 7);
    }
    for (int i = 0; i < l->o.threads; i++) {
        l->t[i].l = l;
        l->t[i].idx = i;
        l->t[i].c = pf_load_client(env, l->o.slot, l->o.timeout_ms, l->o.retries);
        pf_client_set_log(l->t[i].c, s_client_log, &l->t[i]);
    }
    return l;
}

static s_req_t *s_new_req(s_thread_t *t)
{
    if (t->nreq == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->reqs = realloc(t->reqs, t->cap * sizeof(*t->reqs));
    }
    s_req_t *r = &t->reqs[t->nreq];
    memset(r, 0, sizeof(*r));
    pf_load_t *l = t->l;
    snprintf(r->rid, sizeof(r->rid), "%s-%d-%zu", l->name, t->idx, t->nreq);
    r->nrcpt = l->o.recipients;
    for (int k = 0; k < r->nrcpt; k++)
        r->rcpt[k] = l->o.citizens[(t->nreq + (size_t)t->idx + (size_t)k) % (size_t)l->ncit];
    t->nreq++;
    return r;
}

static void s_ack_time(s_thread_t *t)
{
    if (t->nacks == t->ackcap) {
        t->ackcap = t->ackcap ? t->ackcap * 2 : 256;
        t->acks = realloc(t->acks, t->ackcap * sizeof(*t->acks));
    }
    t->acks[t->nacks++] = pf_test_now_ms();
}

static void s_collect(s_thread_t *t, int timeout_ms)
{
    for (;;) {
        pf_client_receipt_t r;
        const char *err;
        int rc = pf_client_next_receipt(t->c, timeout_ms, &r, &err);
        if (rc != 1)
            return;
        if (!t->l->o.collect_receipts) {
            pf_client_receipt_clear(&r); /* take_receipts: taken, not recorded */
            continue;
        }
        if (t->njti == t->jticap) {
            t->jticap = t->jticap ? t->jticap * 2 : 256;
            t->jtis = realloc(t->jtis, t->jticap * sizeof(*t->jtis));
        }
        snprintf(t->jtis[t->njti++], 37, "%s", r.jti);
        pf_client_receipt_clear(&r);
        timeout_ms = 0;
    }
}

/* One pf_client_send of r; records the outcome.  Returns 1 final (ACK or
 * a permanent NACK), 0 retry later. */
static int s_send(s_thread_t *t, s_req_t *r)
{
    pf_load_t *l = t->l;
    pf_client_attachment_t att = {"anlage.bin", "application/octet-stream", l->att,
                                  (size_t)l->o.attachment_bytes};
    pf_client_notice_t n = {.request_id = r->rid,
                            .recipients = r->rcpt,
                            .recipient_count = (size_t)r->nrcpt,
                            .title = "Bescheid (Fehlertest)",
                            .subject = "Betreff des Fehlertests",
                            .body = l->body,
                            .reference = r->rid,
                            .attachments = l->att ? &att : NULL,
                            .attachment_count = l->att ? 1 : 0};
    pf_client_result_t res;
    const char *err = NULL;
    atomic_fetch_add(&t->sent, 1);
    long retries_before = t->retries;
    int rc = pf_client_send(t->c, &n, &res, &err);
    r->resends += (int)(t->retries - retries_before);
    if (l->o.collect_receipts || l->o.take_receipts)
        s_collect(t, 0);
    if (rc == -1) {
        r->timeouts++;
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "faultload: %s not sent: %s\n", r->rid, err);
        r->refused = true;
        snprintf(r->code, sizeof(r->code), "invalid");
        return 1;
    }
    int final = 1;
    if (res.ok) {
        s_ack_time(t);
        atomic_fetch_add(&t->acked, 1);
        if (res.copy_count != (size_t)r->nrcpt) {
            r->ids_changed = true;
        } else if (r->acked) {
            for (size_t i = 0; i < res.copy_count; i++)
                if (strcmp(r->ids[i], res.copies[i].message_id) != 0)
                    r->ids_changed = true;
        } else {
            for (size_t i = 0; i < res.copy_count; i++)
                snprintf(r->ids[i], 37, "%s", res.copies[i].message_id);
        }
        r->acked = true;
    } else if (strcmp(res.code, "temporary") == 0) {
        r->temporary++;
        final = 0;
    } else if (strcmp(res.code, "busy") == 0) {
        r->busy++;
        final = 0;
    } else {
        r->refused = true;
        snprintf(r->code, sizeof(r->code), "%s", res.code);
    }
    pf_client_result_clear(&res);
    return final;
}

static void *s_thread(void *arg)
{
    s_thread_t *t = arg;
    pf_load_t *l = t->l;
    while (!atomic_load(&l->stop) &&
           (l->o.max_per_thread == 0 || t->nreq < (size_t)l->o.max_per_thread)) {
        s_req_t *r = s_new_req(t);
        /* a temporary refusal is retried at once a few times (what a
         * procedure would do); a timeout is left for settling */
        for (int k = 0; k < 3 && s_send(t, r) == 0 && r->timeouts == 0 && !atomic_load(&l->stop);
             k++)
            usleep(50 * 1000);
        if (l->o.pause_ms > 0)
            usleep((useconds_t)l->o.pause_ms * 1000);
    }
    return NULL;
}

void pf_load_start(pf_load_t *l)
{
    atomic_store(&l->stop, false);
    for (int i = 0; i < l->o.threads; i++) {
        if (pthread_create(&l->t[i].th, NULL, s_thread, &l->t[i]) != 0)
            abort();
        l->t[i].running = true;
    }
}

void pf_load_stop(pf_load_t *l)
{
    atomic_store(&l->stop, true);
    for (int i = 0; i < l->o.threads; i++) {
        if (l->t[i].running)
            pthread_join(l->t[i].th, NULL);
        l->t[i].running = false;
    }
}

void pf_load_wait(pf_load_t *l)
{
    for (int i = 0; i < l->o.threads; i++) {
        if (l->t[i].running)
            pthread_join(l->t[i].th, NULL);
        l->t[i].running = false;
    }
}

long pf_load_sent(pf_load_t *l)
{
    long n = 0;
    for (int i = 0; i < l->o.threads; i++)
        n += atomic_load(&l->t[i].sent);
    return n;
}

long pf_load_acked(pf_load_t *l)
{
    long n = 0;
    for (int i = 0; i < l->o.threads; i++)
        n += atomic_load(&l->t[i].acked);
    return n;
}

void pf_load_settle(pf_load_t *l, int deadline_ms)
{
    int64_t end = pf_test_now_ms() + deadline_ms;
    for (int i = 0; i < l->o.threads; i++) {
        s_thread_t *t = &l->t[i];
        for (size_t k = 0; k < t->nreq; k++) {
            s_req_t *r = &t->reqs[k];
            while (!r->acked && !r->refused && pf_test_now_ms() < end)
                if (s_send(t, r) == 0)
                    usleep(100 * 1000);
        }
    }
    /* the stored ACK, asked for again, must name the same copies */
    for (int i = 0; i < l->o.threads; i++) {
        s_thread_t *t = &l->t[i];
        for (size_t k = 0; k < t->nreq; k++) {
            s_req_t *r = &t->reqs[k];
            if (!r->acked)
                continue;
            int to = r->timeouts, te = r->temporary, bu = r->busy, rs = r->resends;
            for (int tries = 0; tries < 20 && pf_test_now_ms() < end; tries++) {
                long before = (long)t->nacks;
                s_send(t, r);
                if ((long)t->nacks > before || r->refused)
                    break;
                usleep(100 * 1000);
            }
            /* outcomes of this extra question are not the load's */
            r->timeouts = to, r->temporary = te, r->busy = bu, r->resends = rs;
        }
    }
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* qsort and bsearch want a valid pointer even for no elements */
static void s_sort(char **v, size_t n)
{
    if (n > 0)
        qsort(v, n, sizeof(*v), s_cmp_str);
}

static bool s_has(char *const *v, size_t n, const char *key)
{
    return n > 0 && bsearch(&key, v, n, sizeof(*v), s_cmp_str) != NULL;
}

typedef struct {
    char **v;
    size_t n, cap;
} s_strs_t;

static void s_strs_add(s_strs_t *s, const char *v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = strdup(v);
}

static void s_strs_free(s_strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* rows as "rid mailbox id" lines */
static void s_row3(void *arg, int nc, const char *const *v)
{
    char line[512];
    snprintf(line, sizeof(line), "%s %s %s", v[0], v[1], v[2]);
    s_strs_add(arg, line);
}

static void s_row1(void *arg, int nc, const char *const *v)
{
    s_strs_add(arg, v[0]);
}

static long s_receipts_expected(pf_load_t *l, s_strs_t *out)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT r.jti::text FROM receipt r JOIN message m ON m.mailbox_id = r.mailbox_id "
             "AND m.id = r.message_id WHERE left(m.request_id, %zu) = '%s-'",
             strlen(l->name) + 1, l->name);
    return pf_env_sql_rows(l->env, sql, s_row1, out);
}

/* How many distinct receipts of exp (sorted) the clients handed out. */
static size_t s_handed_of(pf_load_t *l, s_strs_t *exp)
{
    s_strs_t got = {0};
    for (int i = 0; i < l->o.threads; i++)
        for (size_t k = 0; k < l->t[i].njti; k++)
            s_strs_add(&got, l->t[i].jtis[k]);
    s_sort(got.v, got.n);
    size_t n = 0;
    for (size_t k = 0; k < got.n; k++)
        if ((k == 0 || strcmp(got.v[k - 1], got.v[k]) != 0) && s_has(exp->v, exp->n, got.v[k]))
            n++;
    s_strs_free(&got);
    return n;
}

void pf_load_drain_receipts(pf_load_t *l, int timeout_ms)
{
    int64_t end = pf_test_now_ms() + timeout_ms;
    while (pf_test_now_ms() < end) {
        s_strs_t exp = {0};
        long want = s_receipts_expected(l, &exp);
        s_sort(exp.v, exp.n);
        size_t have = s_handed_of(l, &exp);
        s_strs_free(&exp);
        if (want >= 0 && have >= (size_t)want)
            break;
        for (int i = 0; i < l->o.threads; i++)
            s_collect(&l->t[i], 100);
    }
    /* a little longer: a duplicate would come now */
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < l->o.threads; i++)
            s_collect(&l->t[i], 100);
}

void pf_load_check(pf_load_t *l, pf_load_counts_t *c)
{
    memset(c, 0, sizeof(*c));
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT m.request_id, m.mailbox_id, m.id::text FROM message m "
             "JOIN sender s ON s.id = m.sender_id "
             "WHERE s.name = 'tax-office' AND left(m.request_id, %zu) = '%s-'",
             strlen(l->name) + 1, l->name);
    s_strs_t rows = {0};
    if (pf_env_sql_rows(l->env, sql, s_row3, &rows) < 0)
        c->unexpected++;
    s_sort(rows.v, rows.n);
    bool *used = calloc(rows.n + 1, sizeof(*used));
    for (int i = 0; i < l->o.threads; i++) {
        s_thread_t *t = &l->t[i];
        c->client_retries += t->retries;
        for (size_t k = 0; k < t->nreq; k++) {
            s_req_t *r = &t->reqs[k];
            c->attempted++;
            c->timeouts += r->timeouts;
            c->temporary += r->temporary;
            c->busy += r->busy;
            if (r->ids_changed)
                c->duplicated++;
            if (r->refused) {
                c->refused_other++;
                c->unexpected++;
            }
            /* this request's rows: a range in the sorted list */
            size_t rl = strlen(r->rid);
            size_t lo = 0, hi = rows.n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(rows.v[mid], r->rid) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            int per[S_MAX_RCPT] = {0};
            bool extra = false, mismatch = false;
            for (size_t j = lo;
                 j < rows.n && strncmp(rows.v[j], r->rid, rl) == 0 && rows.v[j][rl] == ' '; j++) {
                used[j] = true;
                const char *mb = rows.v[j] + rl + 1;
                const char *id = strchr(mb, ' ');
                int which = -1;
                for (int q = 0; q < r->nrcpt; q++)
                    if (id && (size_t)(id - mb) == strlen(r->rcpt[q]) &&
                        strncmp(mb, r->rcpt[q], (size_t)(id - mb)) == 0)
                        which = q;
                if (which < 0) {
                    extra = true;
                    continue;
                }
                per[which]++;
                if (r->acked && id && strcmp(id + 1, r->ids[which]) != 0)
                    mismatch = true;
            }
            bool missing = false, dup = false;
            for (int q = 0; q < r->nrcpt; q++) {
                missing |= per[q] == 0;
                dup |= per[q] > 1;
            }
            if (dup)
                c->duplicated++;
            if (extra || mismatch)
                c->unexpected++;
            if (r->acked) {
                c->acked++;
                if (missing)
                    c->lost++;
                if (r->timeouts + r->temporary + r->busy + r->resends > 0)
                    c->recovered++;
            } else if (!r->refused) {
                c->unanswered++;
            }
        }
    }
    for (size_t j = 0; j < rows.n; j++)
        if (!used[j])
            c->unexpected++; /* a copy nobody asked for */
    free(used);
    s_strs_free(&rows);
    /* two receipts for one event of one copy (the UNIQUE forbids it; a
     * broken migration would show here) */
    long long twice = pf_env_sql_int(l->env, "SELECT count(*) FROM (SELECT 1 FROM receipt "
                                             "GROUP BY mailbox_id, message_id, event "
                                             "HAVING count(*) > 1) x");
    if (twice != 0)
        c->duplicated += twice < 0 ? 1 : twice;

    if (!l->o.collect_receipts)
        return;
    s_strs_t exp = {0}, got = {0}, known = {0};
    c->receipts_expected = s_receipts_expected(l, &exp);
    /* receipts of earlier loads of the same sender may come too (they
     * were pending): not ours, but not unexpected either */
    pf_env_sql_rows(l->env,
                    "SELECT r.jti::text FROM receipt r JOIN sender s ON s.id = r.sender_id "
                    "WHERE s.name = 'tax-office'",
                    s_row1, &known);
    s_sort(known.v, known.n);
    for (int i = 0; i < l->o.threads; i++)
        for (size_t k = 0; k < l->t[i].njti; k++)
            s_strs_add(&got, l->t[i].jtis[k]);
    s_sort(exp.v, exp.n);
    s_sort(got.v, got.n);
    for (size_t k = 1; k < got.n; k++)
        if (strcmp(got.v[k - 1], got.v[k]) == 0)
            c->duplicated++; /* the same jti handed out twice */
    for (size_t k = 0; k < got.n; k++) {
        if (!s_has(known.v, known.n, got.v[k]))
            c->unexpected++;
        else if (s_has(exp.v, exp.n, got.v[k]))
            c->receipts_handed++;
    }
    for (size_t k = 0; k < exp.n; k++)
        if (!s_has(got.v, got.n, exp.v[k]))
            c->receipts_missing++;
    c->lost += c->receipts_missing;
    s_strs_free(&exp);
    s_strs_free(&got);
    s_strs_free(&known);
}

void pf_load_print(const char *label, const pf_load_counts_t *c)
{
    printf("fault %s: attempted %ld, acked %ld, lost %ld, duplicated %ld, unexpected %ld, "
           "recovered %ld (client resends %ld, timeouts %ld, temporary %ld, busy %ld, "
           "unanswered %ld",
           label, c->attempted, c->acked, c->lost, c->duplicated, c->unexpected, c->recovered,
           c->client_retries, c->timeouts, c->temporary, c->busy, c->unanswered);
    if (c->receipts_expected > 0 || c->receipts_handed > 0)
        printf("; receipts in outbox %ld, handed out %ld, missing %ld", c->receipts_expected,
               c->receipts_handed, c->receipts_missing);
    printf(")\n");
    fflush(stdout);
}

long pf_load_acks_between(pf_load_t *l, int64_t from_ms, int64_t to_ms)
{
    long n = 0;
    for (int i = 0; i < l->o.threads; i++)
        for (size_t k = 0; k < l->t[i].nacks; k++)
            n += l->t[i].acks[k] >= from_ms && l->t[i].acks[k] < to_ms;
    return n;
}

int64_t pf_load_first_ack_after(pf_load_t *l, int64_t from_ms)
{
    int64_t best = 0;
    for (int i = 0; i < l->o.threads; i++)
        for (size_t k = 0; k < l->t[i].nacks; k++)
            if (l->t[i].acks[k] >= from_ms && (best == 0 || l->t[i].acks[k] < best))
                best = l->t[i].acks[k];
    return best;
}

void pf_load_free(pf_load_t **lp)
{
    pf_load_t *l = *lp;
    if (l == NULL)
        return;
    pf_load_stop(l);
    for (int i = 0; i < l->o.threads; i++) {
        pf_client_destroy(&l->t[i].c);
        free(l->t[i].reqs);
        free(l->t[i].acks);
        free(l->t[i].jtis);
    }
    free(l->body);
    free(l->att);
    free(l);
    *lp = NULL;
}

int pf_fault_setup(void **state)
{
    *state = calloc(1, sizeof(pf_fault_fixture_t));
    return *state ? 0 : -1;
}

int pf_fault_teardown(void **state)
{
    pf_fault_fixture_t *f = *state;
    pf_load_free(&f->load);
    return pf_fixture_end(f->env, NULL, f);
}

int pf_fault_env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : def;
}
