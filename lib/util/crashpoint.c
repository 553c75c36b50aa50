/* Deterministic crash points (see crashpoint.h).
 *
 * Callers: the broker (its main loop, the write path, the receipt relay)
 * through pf_crashpoint(), its commit connections (lib/store/submit.c)
 * through pf_faultpoint(); pf_broker_new calls pf_crashpoint_init().
 * Untrusted input: the environment variable, parsed strictly (a bad value
 * arms nothing and says so).  The counter is atomic: points may be passed
 * from several threads, and "the n-th time" must mean exactly that. */
#include "util/crashpoint.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool pf_crashpoint_armed;

static char s_name[64];
static long s_at = 1;
static atomic_long s_seen;

void pf_crashpoint_init(void)
{
    const char *v = getenv("POSTFACH_CRASH_POINT");
    pf_crashpoint_armed = false;
    atomic_store(&s_seen, 0);
    if (v == NULL || *v == '\0')
        return;
    const char *colon = strchr(v, ':');
    size_t len = colon ? (size_t)(colon - v) : strlen(v);
    long at = 1;
    if (colon) {
        char *end;
        at = strtol(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1)
            at = 0;
    }
    if (len == 0 || len >= sizeof(s_name) || at < 1) {
        fprintf(stderr, "crashpoint: ignoring malformed POSTFACH_CRASH_POINT (want NAME[:N])\n");
        return;
    }
    memcpy(s_name, v, len);
    s_name[len] = '\0';
    s_at = at;
    pf_crashpoint_armed = true;
    fprintf(stderr, "crashpoint: armed name=%s at=%ld\n", s_name, s_at);
}

/* True when this pass of the armed point is the n-th; then the line
 * "crashpoint: event=<what> name=... n=..." is on stderr. */
static bool s_due(const char *name, const char *what)
{
    if (strcmp(name, s_name) != 0)
        return false;
    if (atomic_fetch_add(&s_seen, 1) + 1 != s_at)
        return false;
    /* write(2) rather than stdio: nothing buffered, async-signal-safe */
    char line[128];
    int n =
        snprintf(line, sizeof(line), "crashpoint: event=%s name=%s n=%ld\n", what, s_name, s_at);
    if (n > 0 && write(2, line, (size_t)n) < 0) {
        /* nothing to do: a crash follows, or a fault a test looks for */
    }
    return true;
}

bool pf_faultpoint_hit(const char *name)
{
    return s_due(name, "fault");
}

int pf_crashpoint_hit(const char *name)
{
    if (!s_due(name, "crash"))
        return 0;
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    raise(SIGKILL);
    _exit(137); /* not reached */
}
