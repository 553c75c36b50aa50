#ifndef PF_BENCH_SETUP_H
#define PF_BENCH_SETUP_H
/* `postfach-bench setup`: senders and mailboxes for a load, made in
 * process instead of one postfach-ctl run each: senders through the store
 * function postfach-ctl uses (pf_store_sender_add), mailboxes in batches
 * (pf_store_bench_mailboxes_add) with the same rows and the same key
 * wrapping (KEK, context "<mailbox>:<version>") as
 * pf_store_mailbox_add_key, so the reader opens these mailboxes like any
 * other.  Existing ones are kept: mailboxes are numbered, and a second run
 * with a larger count adds the missing ones after the highest present. */
#include <stdio.h>

typedef struct {
    const char *db;
    const char *keys_dir;
    const char *sender_prefix;
    const char *mailbox_prefix;
    const char *key_type; /* "p256" | "rsa3072" | "rsa4096" */
    int senders;
    long mailboxes;
    int threads; /* key generation and inserts in parallel */
} pf_bench_setup_config_t;

void pf_bench_setup_config_default(pf_bench_setup_config_t *cfg);
/* Prints what it made to out; 0 or -1 with *error_r. */
int pf_bench_setup_run(const pf_bench_setup_config_t *cfg, FILE *out, const char **error_r);

#endif
