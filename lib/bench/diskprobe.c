/* The disk probe (see diskprobe.h).
 *
 * Callers: send.c, around the sending phase of a run.  The file is
 * preallocated and overwritten in place, block after block, as
 * PostgreSQL recycles WAL segments, so a flush carries data only, no
 * change of the file's size or allocation.  Measured in CLOCK_MONOTONIC
 * microseconds from the write to the end of fdatasync. */
#include "bench/diskprobe.h"
#include "bench/common.h"
#include "util/xalloc.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_BLOCK 8192
#define S_FILE (1024 * 1024)

struct pf_diskprobe {
    int fd;
    char *path;
    int interval_ms;
    atomic_int stop;
    pthread_t thread;
    pf_hist_t *hist;
};

static void *s_main(void *arg)
{
    pf_diskprobe_t *p = arg;
    unsigned char block[S_BLOCK];
    memset(block, 0x5a, sizeof(block));
    off_t off = 0;
    while (!atomic_load(&p->stop)) {
        int64_t t0 = pf_bench_now_us();
        block[0]++; /* new content each time */
        if (pwrite(p->fd, block, sizeof(block), off) != (ssize_t)sizeof(block) ||
            fdatasync(p->fd) != 0)
            break; /* the file system failed: the histogram says how far it got */
        pf_hist_add(p->hist, (uint64_t)(pf_bench_now_us() - t0));
        off = (off + S_BLOCK) % S_FILE;
        struct timespec d = {p->interval_ms / 1000, (long)(p->interval_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
    return NULL;
}

pf_diskprobe_t *pf_diskprobe_start(const char *path, int interval_ms, const char **error_r)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error_r = "cannot create the disk probe file";
        return NULL;
    }
    unsigned char *zero = xcalloc(1, S_FILE);
    bool ok = write(fd, zero, S_FILE) == S_FILE && fsync(fd) == 0;
    free(zero);
    if (!ok) {
        close(fd);
        unlink(path);
        *error_r = "cannot write the disk probe file";
        return NULL;
    }
    pf_diskprobe_t *p = xcalloc(1, sizeof(*p));
    p->fd = fd;
    p->path = xstrdup(path);
    p->interval_ms = interval_ms > 0 ? interval_ms : 10;
    p->hist = pf_hist_new();
    if (pthread_create(&p->thread, NULL, s_main, p) != 0)
        abort();
    return p;
}

pf_hist_t *pf_diskprobe_stop(pf_diskprobe_t **pp)
{
    pf_diskprobe_t *p = *pp;
    if (p == NULL)
        return NULL;
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    close(p->fd);
    unlink(p->path);
    pf_hist_t *h = p->hist;
    free(p->path);
    free(p);
    *pp = NULL;
    return h;
}
