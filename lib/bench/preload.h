#ifndef PF_BENCH_PRELOAD_H
#define PF_BENCH_PRELOAD_H
/* `postfach-bench preload`: bulk-loads stored copies as history for the
 * growth and listing measurements.  One real notice is encrypted once (a
 * JWE for the first mailbox's key, exactly as the broker would make it)
 * and stored again and again with new UUIDv7 ids, spread round-robin over
 * the mailboxes.  The copies list like any other; only those in the first
 * mailbox can be opened (the others were not encrypted for their owner),
 * so the reader's open measurement uses notices sent through the broker. */
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *db;
    const char *mailbox_prefix;
    const char *sender_name; /* the copies' sender (must exist) */
    long mailboxes;
    long copies;
    size_t body_size;
    size_t batch; /* rows per COPY transaction */
    int threads;  /* parallel COPY connections */
} pf_bench_preload_config_t;

void pf_bench_preload_config_default(pf_bench_preload_config_t *cfg);
int pf_bench_preload_run(const pf_bench_preload_config_t *cfg, FILE *out, const char **error_r);

#endif
