#ifndef PF_UTIL_CRASHPOINT_H
#define PF_UTIL_CRASHPOINT_H
/* Deterministic crash points for fault tests.
 *
 * POSTFACH_CRASH_POINT=<name>[:<n>] in the environment makes the process
 * die by SIGKILL the n-th time (default 1) the code passes
 * pf_crashpoint("<name>"): no atexit handlers, no destructors, no flush of
 * stdio, nothing a real crash would not skip either.  Before the signal the
 * calling thread pauses for 50 ms so that what was already handed to
 * libzmq's I/O threads leaves the process, as bytes written to a kernel
 * socket survive a kill -9; nothing else of this thread runs.
 *
 * Cost when the variable is unset: one load and one predicted branch.
 * pf_crashpoint_init() reads the variable once; until it is called (and
 * after a malformed value, which it reports on stderr) no point fires.
 * It returns 0 so that it also fits into a chain of "... != 0 ||" tests.
 *
 * Fault points share the variable and the counting: pf_faultpoint("<name>")
 * is true the n-th time it is passed when the variable names it, and the
 * caller then injects its fault (a dropped database connection, say)
 * instead of the process dying; it writes "crashpoint: event=fault
 * name=<name> n=<n>" to stderr first.  One variable arms one point. */
#include <stdbool.h>

extern bool pf_crashpoint_armed;

void pf_crashpoint_init(void);
int pf_crashpoint_hit(const char *name);
bool pf_faultpoint_hit(const char *name);

static inline int pf_crashpoint(const char *name)
{
    if (__builtin_expect(pf_crashpoint_armed, 0))
        return pf_crashpoint_hit(name);
    return 0;
}

static inline bool pf_faultpoint(const char *name)
{
    if (__builtin_expect(pf_crashpoint_armed, 0))
        return pf_faultpoint_hit(name);
    return false;
}

#endif
