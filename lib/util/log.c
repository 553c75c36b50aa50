/* Log lines: "ts=... level=... prog=... msg" on stderr, one write(2) per
 * line so that threads do not interleave.  Callers format their own
 * key=value pairs; untrusted strings go through pf_log_escape(). */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pf_log_level_t s_level = PF_LOG_INFO;
static const char *s_program = "postfach";

static const char *const s_names[] = {"debug", "info", "warn", "error"};

void pf_log_set_level(pf_log_level_t level)
{
    s_level = level;
}

void pf_log_set_program(const char *name)
{
    s_program = name;
}

int pf_log_level_parse(const char *s, pf_log_level_t *level_r)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, s_names[i]) == 0) {
            *level_r = (pf_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void pf_log(pf_log_level_t level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s prog=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, s_names[level], s_program);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

const char *pf_log_escape(const char *s, char *out, unsigned long outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return out;
    if (s == NULL)
        s = "(null)";
    for (; *s != '\0' && o + 5 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}
