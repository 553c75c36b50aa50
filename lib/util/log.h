#ifndef PF_UTIL_LOG_H
#define PF_UTIL_LOG_H
/* One log module for the daemons: key=value lines on stderr, so journald
 * and docker collect them.  Never pass bodies, keys or tokens. */

typedef enum { PF_LOG_DEBUG = 0, PF_LOG_INFO, PF_LOG_WARN, PF_LOG_ERROR } pf_log_level_t;

void pf_log_set_level(pf_log_level_t level);
void pf_log_set_program(const char *name);
/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int pf_log_level_parse(const char *s, pf_log_level_t *level_r);
void pf_log(pf_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pf_debug(...) pf_log(PF_LOG_DEBUG, __VA_ARGS__)
#define pf_info(...) pf_log(PF_LOG_INFO, __VA_ARGS__)
#define pf_warn(...) pf_log(PF_LOG_WARN, __VA_ARGS__)
#define pf_error(...) pf_log(PF_LOG_ERROR, __VA_ARGS__)

/* Writes s into out (size outlen) with control characters, quotes and
 * backslashes escaped, truncated to fit: for untrusted values in log lines. */
const char *pf_log_escape(const char *s, char *out, unsigned long outlen);

#endif
