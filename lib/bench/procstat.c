/* Reads a process's CPU time and resident memory from /proc.
 *
 * Callers: lib/bench/send.c (broker RSS and CPU per notice).
 * Input: /proc files of another process; parsed defensively (the command
 * name in stat may hold spaces and parentheses, so fields are counted
 * from the last ')'). */
#include "bench/procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long s_status_kib(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (p == NULL)
        return -1;
    return strtol(p + strlen(key), NULL, 10);
}

/* Parent pid and CPU seconds from /proc/<pid>/stat (with the reaped
 * children's, fields 16 and 17, when reaped_r); -1 when gone. */
static int s_stat_full(pid_t pid, pid_t *ppid_r, double *cpu_r, double *reaped_r)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    /* after ") " come fields 3 (state), 4 (ppid), ...; utime and stime
     * are 14 and 15 */
    p += 2;
    unsigned long long utime = 0, stime = 0, cutime = 0, cstime = 0;
    long ppid = 0;
    for (int field = 3; field <= 17 && p != NULL && *p; field++) {
        if (field == 4)
            ppid = strtol(p, NULL, 10);
        else if (field == 14)
            utime = strtoull(p, NULL, 10);
        else if (field == 15)
            stime = strtoull(p, NULL, 10);
        else if (field == 16)
            cutime = strtoull(p, NULL, 10);
        else if (field == 17)
            cstime = strtoull(p, NULL, 10);
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    long hz = sysconf(_SC_CLK_TCK);
    double tick = (double)(hz > 0 ? hz : 100);
    *ppid_r = (pid_t)ppid;
    *cpu_r = (double)(utime + stime) / tick;
    if (reaped_r != NULL)
        *reaped_r = (double)(cutime + cstime) / tick;
    return 0;
}

static int s_stat(pid_t pid, pid_t *ppid_r, double *cpu_r)
{
    return s_stat_full(pid, ppid_r, cpu_r, NULL);
}

double pf_procstat_tree_cpu(pid_t parent)
{
    pid_t ppid;
    double total, reaped;
    /* the children that have exited count through the parent's reaped
     * time (their whole life); without it a backend or autovacuum worker
     * that was there at the first reading and gone at the second took
     * its CPU time out of the difference */
    if (s_stat_full(parent, &ppid, &total, &reaped) != 0)
        return -1;
    total += reaped;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        double cpu;
        if (*end == '\0' && pid > 0 && s_stat((pid_t)pid, &ppid, &cpu) == 0 && ppid == parent)
            total += cpu;
    }
    closedir(d);
    return total;
}

int pf_procstat_machine(unsigned long long *busy_r, unsigned long long *total_r)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 5)
        return -1;
    unsigned long long total = 0;
    for (int i = 0; i < 8; i++)
        total += v[i];
    *total_r = total;
    *busy_r = total - v[3] - v[4]; /* idle, iowait */
    return 0;
}

int pf_procstat_read(pid_t pid, pf_procstat_t *s_r, const char **error_r)
{
    char path[64], buf[4096];
    pid_t ppid;
    if (s_stat(pid, &ppid, &s_r->cpu_s) != 0) {
        *error_r = "cannot read /proc/PID/stat (is the process running?)";
        return -1;
    }
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        *error_r = "cannot open /proc/PID/status";
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    s_r->rss_kib = s_status_kib(buf, "VmRSS:");
    s_r->hwm_kib = s_status_kib(buf, "VmHWM:");
    if (s_r->rss_kib < 0) {
        *error_r = "cannot parse /proc/PID/status";
        return -1;
    }
    return 0;
}

double pf_procstat_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
