/* Reads a process's CPU time and resident memory from /proc.
 *
 * Callers: lib/bench/send.c (broker RSS and CPU per notice).
 * Input: /proc files of another process; parsed defensively (the command
 * name in stat may hold spaces and parentheses, so fields are counted
 * from the last ')'). */
#include "bench/procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long s_status_kib(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (p == NULL)
        return -1;
    return strtol(p + strlen(key), NULL, 10);
}

int pf_procstat_read(pid_t pid, pf_procstat_t *s_r, const char **error_r)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        *error_r = "cannot open /proc/PID/stat (is the process running?)";
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        *error_r = "cannot parse /proc/PID/stat";
        return -1;
    }
    /* after ") " come fields 3 (state), 4, ...; utime and stime are 14, 15 */
    p += 2;
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field <= 15 && p != NULL && *p; field++) {
        if (field == 14)
            utime = strtoull(p, NULL, 10);
        else if (field == 15)
            stime = strtoull(p, NULL, 10);
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    long hz = sysconf(_SC_CLK_TCK);
    s_r->cpu_s = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);

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
