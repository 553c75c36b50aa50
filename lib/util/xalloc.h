#ifndef PF_UTIL_XALLOC_H
#define PF_UTIL_XALLOC_H
/* Allocation that aborts on out-of-memory (the "x" prefix): the supervisor
 * restarts a daemon that cannot allocate; nothing acked is lost by that. */
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
