#ifndef PF_BENCH_READER_H
#define PF_BENCH_READER_H
/* `postfach-bench reader`: requests per second and latency of the
 * citizens' side.  Several keep-alive connections on threads, each request
 * with the bearer token of the citizen it reads for:
 *   list  GET /v1/messages?limit=50 of a random citizen
 *   open  GET /v1/messages/{id} (decrypt) of notices listed in an ids file
 *         ("mailbox message-id" lines, written by `send --ids-out`), taken
 *         in order, so each is a first retrieval until the list wraps. */
#include <stdio.h>

typedef struct {
    const char *host; /* numeric IPv4 */
    int port;
    const char *keys_dir; /* idp.jwk signs the citizens' tokens */
    const char *mode;     /* "list" | "open" */
    const char *label;
    const char *ids_file;       /* open */
    const char *mailbox_prefix; /* list */
    long mailboxes;             /* list: citizens <prefix>0 .. */
    long ids_max;
    int connections;
    int limit; /* page size of list */
    double duration_s;
    int reader_pid; /* > 0: report its CPU per request */
    int pg_pid;     /* > 0: the postmaster, for PostgreSQL's CPU per request */
} pf_bench_reader_config_t;

void pf_bench_reader_config_default(pf_bench_reader_config_t *cfg);
/* Prints the figures (with CPU per request of the reader, PostgreSQL and
 * this process, where their pids are given) and one line "reader LABEL MODE: X req/s, p50 Y ms,
 * p99 Z ms, errors E" to out; 0, or -1 with *error_r. */
int pf_bench_reader_run(const pf_bench_reader_config_t *cfg, FILE *out, const char **error_r);

#endif
