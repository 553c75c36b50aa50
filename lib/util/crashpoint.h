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
 * It returns 0 so that it also fits into a chain of "... != 0 ||" tests. */
#include <stdbool.h>

extern bool pf_crashpoint_armed;

void pf_crashpoint_init(void);
int pf_crashpoint_hit(const char *name);

static inline int pf_crashpoint(const char *name)
{
    if (__builtin_expect(pf_crashpoint_armed, 0))
        return pf_crashpoint_hit(name);
    return 0;
}

#endif
