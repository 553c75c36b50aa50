/* Clock, naming and a cheap random generator for postfach-bench.
 * Callers: every lib/bench module.  Nothing here is untrusted input. */
#include "bench/common.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t pf_bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pf_bench_sleep_until(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void pf_bench_mailbox_id(char out[PF_BENCH_ID_MAX], const char *prefix, long i)
{
    snprintf(out, PF_BENCH_ID_MAX, "%s%ld", prefix, i);
}

void pf_bench_sender_name(char out[PF_BENCH_ID_MAX], const char *prefix, int i)
{
    snprintf(out, PF_BENCH_ID_MAX, "%s%d", prefix, i);
}

char *pf_bench_sender_keyfile(const char *keys_dir, const char *name)
{
    return xasprintf("%s/senders/%s.curve", keys_dir, name);
}

uint64_t pf_bench_rand(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}
