#ifndef PF_BENCH_FLOOR_H
#define PF_BENCH_FLOOR_H
/* `postfach-bench floor`: what one notice costs in computation that no
 * design can leave out, measured on this machine, one thread, no I/O.
 *
 * Every stored notice is sealed for its recipient (ECDH-ES P-256 +
 * A256GCM) and gets a signed `delivered` receipt; every first retrieval
 * unwraps the citizen's key, opens the JWE and signs a `read` receipt.
 * These operations, timed one by one through our own lib/crypto, give the
 * floor of CPU time per notice and per first retrieval, and so the most a
 * machine of N cores could do before any transport, JSON or database
 * work: the bound that `make bench` compares its figures with.  The
 * procedure's verification of a receipt is timed too but not counted: it
 * runs on the procedure's machine, and postfach-bench does not verify. */
#include <stdio.h>

typedef struct {
    size_t body_size; /* plaintext body of the notice (default 2048) */
    double seconds;   /* per operation (default 0.5) */
    int cores;        /* for the "at most" figures (default: online CPUs) */
} pf_bench_floor_config_t;

void pf_bench_floor_config_default(pf_bench_floor_config_t *cfg);
/* Prints one line per operation ("  seal 2048 B P-256: 59.1 us") and two
 * summary lines starting "floor send:" and "floor open:"; 0, or -1 with
 * *error_r. */
int pf_bench_floor_run(const pf_bench_floor_config_t *cfg, FILE *out, const char **error_r);

#endif
