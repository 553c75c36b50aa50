#ifndef PF_BENCH_COMMON_H
#define PF_BENCH_COMMON_H
/* What the parts of postfach-bench share: the clock, and the naming of the
 * load's senders and mailboxes, so that `setup` creates exactly what
 * `send`, `preload` and `reader` address:
 *   mailbox i   <mailbox_prefix><i>     e.g. "bench-0" ... "bench-99999"
 *   sender i    <sender_prefix><i>      e.g. "bench-s0", key file
 *               <keys>/senders/<sender_prefix><i>.curve */
#include <stddef.h>
#include <stdint.h>

#define PF_BENCH_ID_MAX 128

/* CLOCK_MONOTONIC in microseconds. */
int64_t pf_bench_now_us(void);
/* Sleeps until the monotonic time us (returns at once when past). */
void pf_bench_sleep_until(int64_t us);
void pf_bench_mailbox_id(char out[PF_BENCH_ID_MAX], const char *prefix, long i);
void pf_bench_sender_name(char out[PF_BENCH_ID_MAX], const char *prefix, int i);
/* <keys>/senders/<name>.curve (caller frees). */
char *pf_bench_sender_keyfile(const char *keys_dir, const char *name);
/* A small, fast generator for picking mailboxes (not for anything secret). */
uint64_t pf_bench_rand(uint64_t *state);

#endif
