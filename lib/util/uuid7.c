/* UUIDv7 generation (RFC 9562 section 6.2, method 1: a 12-bit counter in
 * rand_a, seeded randomly each new millisecond).  Thread-safe. */
#include "util/uuid7.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_last_ms;
static uint32_t s_seq;

/* The random bits come from a per-thread buffer filled by one getrandom
 * call for many ids: a system call costs about 1 us on the virtual
 * machines we run on, and the broker makes two ids per stored copy.  They
 * are not secrets (ids and receipt ids are shown to their owners); they
 * only must not repeat.  A forked child starts a new generation, so it
 * never hands out what its parent's buffer held. */
#define S_POOL 320

static _Atomic unsigned s_generation;
static __thread unsigned char s_pool[S_POOL];
static __thread size_t s_pool_left;
static __thread unsigned s_pool_generation;
static pthread_once_t s_atfork_once = PTHREAD_ONCE_INIT;

static void s_after_fork(void)
{
    s_generation++;
}

static void s_register_atfork(void)
{
    pthread_atfork(NULL, NULL, s_after_fork);
}

static void s_fill(unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r > 0) {
            b += r;
            n -= (size_t)r;
        }
    }
}

static void s_random(void *p, size_t n)
{
    unsigned gen = s_generation;
    if (s_pool_generation != gen || s_pool_left < n) {
        /* registered before the first buffer exists: no buffer can
         * outlive a fork unnoticed */
        pthread_once(&s_atfork_once, s_register_atfork);
        s_fill(s_pool, sizeof(s_pool));
        s_pool_left = sizeof(s_pool);
        s_pool_generation = gen;
    }
    unsigned char *src = s_pool + sizeof(s_pool) - s_pool_left;
    memcpy(p, src, n);
    memset(src, 0, n); /* handed out once */
    s_pool_left -= n;
}

void pf_uuid7_generate_bin(uint8_t out[16])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint8_t rnd[10];
    s_random(rnd, sizeof(rnd));

    pthread_mutex_lock(&s_lock);
    if (ms > s_last_ms) {
        s_last_ms = ms;
        s_seq = (uint32_t)(rnd[0] << 8 | rnd[1]) & 0x7ff; /* leave headroom */
    } else {
        /* same millisecond or clock went back: keep order by counting on */
        s_seq++;
        if (s_seq > 0xfff) {
            s_last_ms++;
            s_seq = 0;
        }
        ms = s_last_ms;
    }
    uint32_t seq = s_seq;
    pthread_mutex_unlock(&s_lock);

    out[0] = (uint8_t)(ms >> 40);
    out[1] = (uint8_t)(ms >> 32);
    out[2] = (uint8_t)(ms >> 24);
    out[3] = (uint8_t)(ms >> 16);
    out[4] = (uint8_t)(ms >> 8);
    out[5] = (uint8_t)ms;
    out[6] = (uint8_t)(0x70 | (seq >> 8 & 0x0f));
    out[7] = (uint8_t)(seq & 0xff);
    memcpy(out + 8, rnd + 2, 8);
    out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

void pf_uuid7_generate(char out[PF_UUID_STRLEN + 1])
{
    uint8_t b[16];
    pf_uuid7_generate_bin(b);
    uuid_unparse_lower(b, out);
}

int pf_uuid_valid(const char *s)
{
    uuid_t u;
    if (s == NULL || strlen(s) != PF_UUID_STRLEN)
        return -1;
    return uuid_parse(s, u) == 0 ? 0 : -1;
}

int64_t pf_uuid7_millis(const char *s)
{
    uuid_t u;
    if (pf_uuid_valid(s) != 0 || uuid_parse(s, u) != 0)
        return -1;
    if ((u[6] >> 4) != 7)
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | u[i];
    return ms;
}
