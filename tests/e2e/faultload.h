#ifndef PF_TEST_FAULTLOAD_H
#define PF_TEST_FAULTLOAD_H
/* Load and bookkeeping for the fault tests (tests/e2e/test_fault_*.c).
 *
 * A load is a few threads, each with its own libpostfach client (the real
 * client library, Lazy Pirate retries with the same request id), sending
 * notices with request ids "<name>-<thread>-<i>" to a running broker and
 * recording every outcome: ACK (and the message ids it named), NACK
 * temporary / busy / other, or no answer at all.  After the faults,
 * pf_load_settle retries every request that has no final answer with the
 * same request id, and asks once more for each acknowledged one (the
 * stored ACK must name the same message ids).  pf_load_check then compares
 * the sender's records with the database and counts, Jepsen style:
 *   attempted   request ids sent
 *   acked       of those, acknowledged by the broker
 *   lost        acknowledged, but not (completely) in the database
 *   duplicated  more than one copy for one (sender, request id, recipient),
 *               two ACKs naming different ids, a receipt handed out twice
 *               by one client, or two receipts for one event and copy
 *   unexpected  rows nobody asked for, ids differing from the ACK, a
 *               refusal other than temporary/busy, a receipt not in the
 *               outbox
 *   recovered   requests that needed more than one attempt (a resend of
 *               the client library after a timeout, a send that ended
 *               without answer, a NACK temporary or busy) and were
 *               acknowledged in the end. */
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "postfach/postfach.h"

typedef struct {
    const char *name;            /* prefix of the request ids, and the summary's label */
    int threads;                 /* sending threads, one client each (at most 32) */
    const char *const *citizens; /* recipients to choose from, NULL-terminated */
    int recipients;              /* per notice */
    int timeout_ms, retries;     /* of each client (pf_client_set_timeout) */
    int body_bytes;              /* body text size */
    int attachment_bytes;        /* one attachment of this size, 0 = none */
    int max_per_thread;          /* new notices per thread, 0 = until pf_load_stop */
    int pause_ms;                /* between two sends of one thread */
    int slot;                    /* broker slot to connect to */
    bool collect_receipts;       /* each client hands out receipts as they come */
    bool take_receipts;          /* each client takes its receipts as they come (so they
                                  * are acknowledged) without recording them */
} pf_load_opts_t;

typedef struct {
    long attempted, acked, lost, duplicated, unexpected, recovered;
    /* details */
    long unanswered;     /* never acknowledged, even after settling */
    long client_retries; /* resends inside the client library (Lazy Pirate) */
    long timeouts, temporary, busy, refused_other;
    long receipts_expected, receipts_handed, receipts_missing;
} pf_load_counts_t;

typedef struct pf_load pf_load_t;

/* The fixture of every fault test: the environment and the load live in
 * it, so a failed assertion (cmocka jumps out of the test) still stops the
 * daemons and private clusters and frees the load.  pf_fault_setup and
 * pf_fault_teardown are cmocka's setup and teardown for it. */
typedef struct {
    pf_env_t *env;
    pf_load_t *load;
} pf_fault_fixture_t;

int pf_fault_setup(void **state);
int pf_fault_teardown(void **state);
/* A positive integer from the environment variable name (a test's length
 * or rounds, longer for a soak run), or def. */
int pf_fault_env_int(const char *name, int def);

/* Creates the clients (to the broker in opts->slot) and the records. */
pf_load_t *pf_load_new(pf_env_t *env, const pf_load_opts_t *opts);
void pf_load_start(pf_load_t *l);
/* Ends the sending threads (each finishes its current send) and joins. */
void pf_load_stop(pf_load_t *l);
/* Waits until each thread sent its max_per_thread notices. */
void pf_load_wait(pf_load_t *l);
/* Retries every request without a final answer, same request id, until it
 * is acknowledged or deadline_ms have passed; then asks once more for
 * every acknowledged one. */
void pf_load_settle(pf_load_t *l, int deadline_ms);
/* With collect_receipts: drains the clients until every receipt of the
 * load's notices in the outbox was handed out, or timeout_ms. */
void pf_load_drain_receipts(pf_load_t *l, int timeout_ms);
/* Compares the records with the database. */
void pf_load_check(pf_load_t *l, pf_load_counts_t *c);
/* Prints the Jepsen-style line on stdout (and flushes). */
void pf_load_print(const char *label, const pf_load_counts_t *c);
/* ACKs received in [from_ms, to_ms) (wall clock of pf_test_now_ms), and the
 * first ACK at or after from_ms (0 when none). */
long pf_load_acks_between(pf_load_t *l, int64_t from_ms, int64_t to_ms);
int64_t pf_load_first_ack_after(pf_load_t *l, int64_t from_ms);
/* Total sends so far (for progress checks). */
long pf_load_sent(pf_load_t *l);
/* ACKs received so far, while the load runs (for checks that a broker
 * really served). */
long pf_load_acked(pf_load_t *l);
void pf_load_free(pf_load_t **l);

/* A client for the env's "tax-office" to broker slot, receipts verified. */
pf_client_t *pf_load_client(pf_env_t *env, int slot, int timeout_ms, int retries);

#endif
