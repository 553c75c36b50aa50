/* Log-linear latency histogram (HdrHistogram's idea, our own small code).
 *
 * Callers: lib/bench (ACK, receipt and HTTP latencies).
 * Buckets: values below 128 us each have their own bucket; above, a value
 * v with highest set bit b falls into bucket (b - 6) * 64 + (v >> (b - 6)),
 * i.e. 64 buckets per power of two (at most 1.6% wide).  Quantiles report
 * the middle of their bucket; the maximum is kept exactly. */
#include "bench/hist.h"
#include "util/xalloc.h"

#include <stdlib.h>

#define S_SUB_BITS 6
#define S_SUB (1u << S_SUB_BITS)
/* 2^40 us is 12 days: more than any latency we will see */
#define S_BUCKETS ((40 - S_SUB_BITS) * S_SUB + 2 * S_SUB)

struct pf_hist {
    uint64_t counts[S_BUCKETS];
    uint64_t n;
    uint64_t max;
    long double sum;
};

static unsigned s_index(uint64_t v)
{
    if (v < 2 * S_SUB)
        return (unsigned)v;
    unsigned b = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = b - S_SUB_BITS;
    unsigned idx = shift * S_SUB + (unsigned)(v >> shift);
    return idx < S_BUCKETS ? idx : S_BUCKETS - 1;
}

/* The middle of bucket idx, in microseconds. */
static double s_value(unsigned idx)
{
    if (idx < 2 * S_SUB)
        return idx;
    unsigned shift = idx / S_SUB - 1;
    uint64_t m = idx - shift * S_SUB;
    uint64_t lo = m << shift;
    return (double)lo + (double)((1ull << shift) - 1) / 2.0;
}

pf_hist_t *pf_hist_new(void)
{
    return xcalloc(1, sizeof(pf_hist_t));
}

void pf_hist_add(pf_hist_t *h, uint64_t us)
{
    h->counts[s_index(us)]++;
    h->n++;
    h->sum += us;
    if (us > h->max)
        h->max = us;
}

void pf_hist_merge(pf_hist_t *dst, const pf_hist_t *src)
{
    for (unsigned i = 0; i < S_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t pf_hist_count(const pf_hist_t *h)
{
    return h->n;
}

double pf_hist_quantile_ms(const pf_hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    /* the rank of the q-quantile, 1-based: ceil(q * n), at least 1 */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < S_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = s_value(i);
            return (v > (double)h->max ? (double)h->max : v) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

double pf_hist_max_ms(const pf_hist_t *h)
{
    return (double)h->max / 1000.0;
}

uint64_t pf_hist_count_above(const pf_hist_t *h, uint64_t us)
{
    uint64_t n = 0;
    for (unsigned i = s_index(us); i < S_BUCKETS; i++)
        n += h->counts[i];
    return n;
}

double pf_hist_mean_ms(const pf_hist_t *h)
{
    return h->n ? (double)(h->sum / h->n) / 1000.0 : 0;
}

void pf_hist_destroy(pf_hist_t **h)
{
    free(*h);
    *h = NULL;
}
