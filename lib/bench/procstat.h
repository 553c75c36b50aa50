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

/* CPU time (user + system, seconds) of parent and of its children that
 * are alive now (PostgreSQL: the postmaster and its backends), or -1 when
 * parent is gone.  A child that exited between two readings takes its
 * time along, so readings over a run with steady connections compare. */
double pf_procstat_tree_cpu(pid_t parent);

/* Busy and total jiffies of the whole machine from /proc/stat (busy = all
 * but idle and iowait); -1 on failure. */
int pf_procstat_machine(unsigned long long *busy_r, unsigned long long *total_r);

#endif
