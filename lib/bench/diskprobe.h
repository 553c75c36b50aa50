#ifndef PF_BENCH_DISKPROBE_H
#define PF_BENCH_DISKPROBE_H
/* The disk's own commit latency, measured during a send run: a thread
 * writes 8 KiB into a preallocated file next to the database (the same
 * file system as its WAL) and waits for fdatasync, every interval_ms,
 * the way PostgreSQL flushes a commit.  No ACK can come sooner than the
 * flush of its COMMIT, so the probe's tail is the baseline that an ACK
 * latency tail is judged against in the same run: a host whose disk
 * stalls for 200 ms now and then puts every notice that waits for such a
 * flush above any p99 target, whatever the broker does. */
#include "bench/hist.h"

typedef struct pf_diskprobe pf_diskprobe_t;

/* Creates path (1 MiB, written and flushed first) and starts the thread.
 * NULL with *error_r (static text) when the file cannot be made. */
pf_diskprobe_t *pf_diskprobe_start(const char *path, int interval_ms, const char **error_r);
/* Stops the thread, removes the file; the latencies in microseconds
 * (caller destroys).  NULL p gives NULL. */
pf_hist_t *pf_diskprobe_stop(pf_diskprobe_t **p);

#endif
