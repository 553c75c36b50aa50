/* postfach-bench: load generator and set-up helper for measuring Postfach.
 * Parses the command line and runs lib/bench.  Results on stdout,
 * diagnostics on stderr.  Exit codes: 0 done, 1 failed, 2 usage. */
#include "bench/preload.h"
#include "bench/floor.h"
#include "bench/reader.h"
#include "bench/send.h"
#include "bench/setup.h"
#include "util/jsonwipe.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fputs("usage: postfach-bench COMMAND [OPTIONS]\n"
          "\n"
          "  setup    --db CONNINFO --keys DIR [--senders S] [--mailboxes N]\n"
          "           [--key-type p256|rsa3072|rsa4096] [--prefix P] [--sender-prefix P]\n"
          "           [--threads T]\n"
          "  preload  --db CONNINFO [--copies N] [--mailboxes M] [--body BYTES] [--batch ROWS]\n"
          "           [--prefix P] [--sender NAME] [--threads T]\n"
          "  send     --broker-key FILE [--broker ENDPOINT] [--keys DIR] [--db CONNINFO]\n"
          "           [--senders S] [--window W] [--rate R|0] [--recipients K] [--mailboxes M]\n"
          "           [--body BYTES] [--attachment BYTES] [--duration SEC] [--count N]\n"
          "           [--broker-pid PID] [--pg-pid PID] [--label NAME] [--prefix P] "
          "[--sender-prefix P]\n"
          "           [--ceiling-batch ROWS] [--ceiling-max ROWS] [--receipt-wait SEC]\n"
          "           [--ids-out FILE] [--ids-max N] [--timeout MS] [--disk-probe FILE]\n"
          "           [--progress] [--no-rack]\n"
          "  reader   --port PORT [--host IP] [--keys DIR] --mode list|open [--ids FILE]\n"
          "           [--mailboxes M] [--prefix P] [--connections C] [--duration SEC]\n"
          "           [--limit N] [--ids-max N] [--label NAME] [--reader-pid PID] [--pg-pid PID]\n"
          "  floor    [--body BYTES] [--seconds SEC] [--cores N]\n"
          "\n"
          "send: --rate 0 (the default) is a closed loop; without --db no ceiling is measured.\n"
          "--disk-probe FILE (beside the database's WAL) times an 8 KiB flush every 10 ms\n"
          "while sending: the disk's own latency, against which the ACK tail is judged.\n"
          "The last line of send is the summary:\n"
          "  postfach: N delivered, X msg/s, p50 Y ms, p99 Z ms, ceiling C rows/s, ratio R\n",
          out);
}

/* Option parsing: every option but the flags --progress and --no-rack
 * takes one value. */
typedef struct {
    int argc;
    char **argv;
    int i;
    const char *name, *value;
} s_args_t;

static int s_next(s_args_t *a)
{
    if (a->i >= a->argc)
        return 0;
    a->name = a->argv[a->i++];
    a->value = NULL;
    if (strcmp(a->name, "--progress") == 0 || strcmp(a->name, "--no-rack") == 0)
        return 1;
    if (strncmp(a->name, "--", 2) != 0 || a->i >= a->argc)
        return -1;
    a->value = a->argv[a->i++];
    return 1;
}

static bool s_is(const s_args_t *a, const char *name)
{
    return strcmp(a->name, name) == 0;
}

static long s_long(const s_args_t *a)
{
    return strtol(a->value, NULL, 10);
}

static int s_send(s_args_t *a)
{
    pf_bench_send_config_t c;
    pf_bench_send_config_default(&c);
    int r;
    while ((r = s_next(a)) == 1) {
        if (s_is(a, "--progress"))
            c.progress = true;
        else if (s_is(a, "--no-rack"))
            c.no_rack = true;
        else if (s_is(a, "--broker"))
            c.endpoint = a->value;
        else if (s_is(a, "--broker-key"))
            c.broker_key_file = a->value;
        else if (s_is(a, "--keys"))
            c.keys_dir = a->value;
        else if (s_is(a, "--db"))
            c.db = a->value;
        else if (s_is(a, "--senders"))
            c.senders = (int)s_long(a);
        else if (s_is(a, "--window"))
            c.window = (int)s_long(a);
        else if (s_is(a, "--rate"))
            c.rate = strtod(a->value, NULL);
        else if (s_is(a, "--recipients"))
            c.recipients = (int)s_long(a);
        else if (s_is(a, "--mailboxes"))
            c.mailboxes = s_long(a);
        else if (s_is(a, "--body"))
            c.body_size = (size_t)s_long(a);
        else if (s_is(a, "--attachment"))
            c.attachment_size = (size_t)s_long(a);
        else if (s_is(a, "--duration"))
            c.duration_s = strtod(a->value, NULL);
        else if (s_is(a, "--count"))
            c.count = s_long(a);
        else if (s_is(a, "--broker-pid"))
            c.broker_pid = (int)s_long(a);
        else if (s_is(a, "--pg-pid"))
            c.pg_pid = (int)s_long(a);
        else if (s_is(a, "--label"))
            c.label = a->value;
        else if (s_is(a, "--prefix"))
            c.mailbox_prefix = a->value;
        else if (s_is(a, "--sender-prefix"))
            c.sender_prefix = a->value;
        else if (s_is(a, "--ceiling-batch"))
            c.ceiling_batch = (size_t)s_long(a);
        else if (s_is(a, "--ceiling-max"))
            c.ceiling_max = s_long(a);
        else if (s_is(a, "--receipt-wait"))
            c.receipt_wait_s = strtod(a->value, NULL);
        else if (s_is(a, "--ids-out"))
            c.ids_out = a->value;
        else if (s_is(a, "--disk-probe"))
            c.disk_probe = a->value;
        else if (s_is(a, "--ids-max"))
            c.ids_max = s_long(a);
        else if (s_is(a, "--timeout"))
            c.timeout_ms = (int)s_long(a);
        else
            return -2;
    }
    if (r < 0 || c.ceiling_batch < 1)
        return -2;
    /* with --count only, do not also stop after the default duration */
    bool has_duration = false;
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], "--duration") == 0)
            has_duration = true;
    if (c.count > 0 && !has_duration)
        c.duration_s = 0;
    const char *err = NULL;
    if (pf_bench_send_run(&c, stdout, &err) != 0) {
        fprintf(stderr, "postfach-bench: %s\n", err ? err : "failed");
        return -1;
    }
    return 0;
}

static int s_setup(s_args_t *a)
{
    pf_bench_setup_config_t c;
    pf_bench_setup_config_default(&c);
    if (getenv("POSTFACH_DB"))
        c.db = getenv("POSTFACH_DB");
    int r;
    while ((r = s_next(a)) == 1) {
        if (s_is(a, "--db"))
            c.db = a->value;
        else if (s_is(a, "--keys"))
            c.keys_dir = a->value;
        else if (s_is(a, "--senders"))
            c.senders = (int)s_long(a);
        else if (s_is(a, "--mailboxes"))
            c.mailboxes = s_long(a);
        else if (s_is(a, "--key-type"))
            c.key_type = a->value;
        else if (s_is(a, "--prefix"))
            c.mailbox_prefix = a->value;
        else if (s_is(a, "--sender-prefix"))
            c.sender_prefix = a->value;
        else if (s_is(a, "--threads"))
            c.threads = (int)s_long(a);
        else
            return -2;
    }
    if (r < 0 || c.senders < 0 || c.mailboxes < 0)
        return -2;
    const char *err = NULL;
    if (pf_bench_setup_run(&c, stdout, &err) != 0) {
        fprintf(stderr, "postfach-bench: %s\n", err ? err : "failed");
        return -1;
    }
    return 0;
}

static int s_preload(s_args_t *a)
{
    pf_bench_preload_config_t c;
    pf_bench_preload_config_default(&c);
    if (getenv("POSTFACH_DB"))
        c.db = getenv("POSTFACH_DB");
    int r;
    while ((r = s_next(a)) == 1) {
        if (s_is(a, "--db"))
            c.db = a->value;
        else if (s_is(a, "--copies"))
            c.copies = s_long(a);
        else if (s_is(a, "--mailboxes"))
            c.mailboxes = s_long(a);
        else if (s_is(a, "--body"))
            c.body_size = (size_t)s_long(a);
        else if (s_is(a, "--batch"))
            c.batch = (size_t)s_long(a);
        else if (s_is(a, "--prefix"))
            c.mailbox_prefix = a->value;
        else if (s_is(a, "--sender"))
            c.sender_name = a->value;
        else if (s_is(a, "--threads"))
            c.threads = (int)s_long(a);
        else
            return -2;
    }
    if (r < 0)
        return -2;
    const char *err = NULL;
    if (pf_bench_preload_run(&c, stdout, &err) != 0) {
        fprintf(stderr, "postfach-bench: %s\n", err ? err : "failed");
        return -1;
    }
    return 0;
}

static int s_reader(s_args_t *a)
{
    pf_bench_reader_config_t c;
    pf_bench_reader_config_default(&c);
    int r;
    while ((r = s_next(a)) == 1) {
        if (s_is(a, "--host"))
            c.host = a->value;
        else if (s_is(a, "--port"))
            c.port = (int)s_long(a);
        else if (s_is(a, "--keys"))
            c.keys_dir = a->value;
        else if (s_is(a, "--mode"))
            c.mode = a->value;
        else if (s_is(a, "--label"))
            c.label = a->value;
        else if (s_is(a, "--ids"))
            c.ids_file = a->value;
        else if (s_is(a, "--ids-max"))
            c.ids_max = s_long(a);
        else if (s_is(a, "--prefix"))
            c.mailbox_prefix = a->value;
        else if (s_is(a, "--mailboxes"))
            c.mailboxes = s_long(a);
        else if (s_is(a, "--connections"))
            c.connections = (int)s_long(a);
        else if (s_is(a, "--limit"))
            c.limit = (int)s_long(a);
        else if (s_is(a, "--duration"))
            c.duration_s = strtod(a->value, NULL);
        else if (s_is(a, "--reader-pid"))
            c.reader_pid = (int)s_long(a);
        else if (s_is(a, "--pg-pid"))
            c.pg_pid = (int)s_long(a);
        else
            return -2;
    }
    if (r < 0 || c.mailboxes < 1 || c.limit < 1)
        return -2;
    const char *err = NULL;
    if (pf_bench_reader_run(&c, stdout, &err) != 0) {
        fprintf(stderr, "postfach-bench: %s\n", err ? err : "failed");
        return -1;
    }
    return 0;
}

static int s_floor(s_args_t *a)
{
    pf_bench_floor_config_t c;
    pf_bench_floor_config_default(&c);
    int r;
    while ((r = s_next(a)) == 1) {
        if (s_is(a, "--body"))
            c.body_size = (size_t)s_long(a);
        else if (s_is(a, "--seconds"))
            c.seconds = strtod(a->value, NULL);
        else if (s_is(a, "--cores"))
            c.cores = (int)s_long(a);
        else
            return -2;
    }
    if (r < 0 || c.seconds <= 0 || c.cores < 1 || c.body_size > 64u * 1024 * 1024)
        return -2;
    const char *err = NULL;
    if (pf_bench_floor_run(&c, stdout, &err) != 0) {
        fprintf(stderr, "postfach-bench: %s\n", err ? err : "failed");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    pf_json_wipe_init();
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(stdout);
        return 0;
    }
    s_args_t a = {argc, argv, 2, NULL, NULL};
    int rc;
    if (strcmp(argv[1], "send") == 0)
        rc = s_send(&a);
    else if (strcmp(argv[1], "setup") == 0)
        rc = s_setup(&a);
    else if (strcmp(argv[1], "preload") == 0)
        rc = s_preload(&a);
    else if (strcmp(argv[1], "reader") == 0)
        rc = s_reader(&a);
    else if (strcmp(argv[1], "floor") == 0)
        rc = s_floor(&a);
    else
        rc = -2;
    if (rc == -2) {
        s_usage(stderr);
        return 2;
    }
    return rc == 0 ? 0 : 1;
}
