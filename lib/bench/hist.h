#ifndef PF_BENCH_HIST_H
#define PF_BENCH_HIST_H
/* Latency histogram with bounded memory: log-linear buckets of about 1%
 * width over microseconds (exact below 128 us), so a run of a million
 * notices costs the same few kilobytes as a run of ten.  One per thread;
 * merged at the end.  Not thread-safe. */
#include <stdint.h>

typedef struct pf_hist pf_hist_t;

pf_hist_t *pf_hist_new(void);
void pf_hist_add(pf_hist_t *h, uint64_t us);
/* Adds every sample of src to dst. */
void pf_hist_merge(pf_hist_t *dst, const pf_hist_t *src);
uint64_t pf_hist_count(const pf_hist_t *h);
/* The value (in milliseconds) below which a fraction q (0..1) of the
 * samples lie, within the bucket width; 0 when empty. */
double pf_hist_quantile_ms(const pf_hist_t *h, double q);
double pf_hist_max_ms(const pf_hist_t *h);
/* Samples of at least us microseconds, within the bucket width (a sample
 * up to 1.6% below us may count). */
uint64_t pf_hist_count_above(const pf_hist_t *h, uint64_t us);
double pf_hist_mean_ms(const pf_hist_t *h);
void pf_hist_destroy(pf_hist_t **h);

#endif
