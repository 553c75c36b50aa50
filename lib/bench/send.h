#ifndef PF_BENCH_SEND_H
#define PF_BENCH_SEND_H
/* `postfach-bench send`: the load generator for the broker.  Several
 * senders (threads, each with its own pf_client_t and its own sender key)
 * submit notices through the real client library to the real broker, in a
 * closed loop (each sender sends again as soon as its ACK arrives) or at an
 * offered rate (open loop: every notice has a planned start time, and its
 * latency is counted from that time, so a stalled broker cannot hide
 * behind senders that stop sending).  It reports notices/s, ACK latency,
 * delivered-receipt latency, the broker's RSS and CPU per notice, and the
 * ceiling measured in the same run (lib/store/benchload.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *endpoint;        /* broker, e.g. tcp://127.0.0.1:7400 */
    const char *broker_key_file; /* broker.curve.pub */
    const char *keys_dir;        /* holds senders/<name>.curve */
    const char *sender_prefix;   /* senders are <prefix>0 .. <prefix>(senders-1) */
    const char *mailbox_prefix;  /* mailboxes are <prefix>0 .. <prefix>(mailboxes-1) */
    const char *label;           /* scenario name in the report */
    const char *db;              /* libpq conninfo for the ceiling; NULL = no ceiling */
    const char *ids_out;         /* write "mailbox message-id" lines here (NULL = no) */
    const char *disk_probe;      /* a file beside the database's WAL: its flush latency
                                    while sending (diskprobe.h); NULL = none */
    int senders;
    int window;     /* notices in flight per sender; 1 = blocking pf_client_send */
    double rate;    /* offered notices/s over all senders; 0 = closed loop */
    int recipients; /* per notice */
    long mailboxes;
    size_t body_size;       /* bytes of body text */
    size_t attachment_size; /* bytes of one attachment; 0 = none */
    double duration_s;      /* stop after this long (0 = only count) */
    long count;             /* stop after this many notices (0 = only duration) */
    int broker_pid;         /* 0 = no RSS/CPU figures */
    int pg_pid;             /* the postmaster: PostgreSQL's CPU; 0 = none */
    size_t ceiling_batch;   /* rows per COPY for the ceiling */
    long ceiling_max;       /* at most this many ceiling rows (0 = as many as copies) */
    double receipt_wait_s;  /* wait this long at most for outstanding receipts */
    long ids_max;           /* at most this many lines in ids_out */
    int timeout_ms;         /* client answer timeout per attempt */
    bool progress;          /* a progress line on stderr every few seconds */
    bool no_rack;           /* diagnostic: count receipts but do not acknowledge them
                               (the broker resends after receipt_retry_seconds) */
} pf_bench_send_config_t;

void pf_bench_send_config_default(pf_bench_send_config_t *cfg);

/* Runs the load and prints the report to out; the last line is
 *   postfach: N delivered, X msg/s, p50 Y ms, p99 Z ms, ceiling C rows/s, ratio R
 * Returns 0 when the run completed (NACKs and missing receipts are
 * reported, not failures), -1 with *error_r when it could not run. */
int pf_bench_send_run(const pf_bench_send_config_t *cfg, FILE *out, const char **error_r);

#endif
