#ifndef PF_BENCH_PROCSTAT_H
#define PF_BENCH_PROCSTAT_H
/* CPU time and memory of another process (the broker under load), from
 * /proc/<pid>/stat and /proc/<pid>/status.  Linux only. */
#include <sys/types.h>

typedef struct {
    double cpu_s; /* user + system time so far, seconds */
    long rss_kib; /* VmRSS */
    long hwm_kib; /* VmHWM, the peak RSS */
} pf_procstat_t;

/* 0, or -1 with *error_r (static text) when the process is gone or the
 * files cannot be read. */
int pf_procstat_read(pid_t pid, pf_procstat_t *s_r, const char **error_r);

/* CPU time (user + system, seconds) of parent, of its children alive now
 * and of those it has reaped (PostgreSQL: the postmaster, its backends
 * and workers), or -1 when parent is gone.  The difference of two
 * readings is the tree's CPU time in between, also when children came or
 * went (autovacuum workers, connections). */
double pf_procstat_tree_cpu(pid_t parent);

/* CPU time (user + system, seconds) of this process so far. */
double pf_procstat_self_cpu(void);

/* Busy and total jiffies of the whole machine from /proc/stat (busy = all
 * but idle and iowait); -1 on failure. */
int pf_procstat_machine(unsigned long long *busy_r, unsigned long long *total_r);

#endif
