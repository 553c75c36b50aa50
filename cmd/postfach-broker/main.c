/* postfach-broker: accepts notices from procedures over ZeroMQ/CURVE,
 * encrypts them per recipient, stores them, relays receipts.
 * This file only reads the settings and runs lib/broker; see
 * lib/broker/broker.c for the behaviour and docs/protocol.md for the wire
 * protocol.  Exit codes: 0 stopped by SIGTERM/SIGINT (or --help,
 * --print-config), 1 failed at start-up or while running, 2 bad settings. */
#include "broker/broker.h"
#include "config/config.h"
#include "util/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define MiB (1024LL * 1024)

static const pf_cfg_spec_t s_specs[] = {
    {"db", PF_CFG_STRING, "dbname=postfach", 0, 0, "libpq connection string"},
    {"bind", PF_CFG_STRING, "tcp://127.0.0.1:7400", 0, 0, "ZeroMQ endpoint to bind"},
    {"curve_secret_file", PF_CFG_STRING, "var/keys/broker.curve", 0, 0,
     "the broker's CURVE key pair (\"public = \" and \"secret = \" lines)"},
    {"receipt_key_file", PF_CFG_STRING, "var/keys/receipt.jwk", 0, 0,
     "private P-256 JWK that signs receipts"},
    {"receipt_issuer", PF_CFG_STRING, "https://postfach.local", 0, 0, "\"iss\" of receipts"},
    {"log_level", PF_CFG_STRING, "info", 0, 0, "debug, info, warn or error"},
    {"allow_unsafe_db", PF_CFG_BOOL, "off", 0, 0,
     "start even when fsync, synchronous_commit or full_page_writes are off"},
    {"max_message_size", PF_CFG_INT, "26214400", 4096, 1024 * MiB,
     "all frames of one submission together, bytes"},
    {"max_attachment_size", PF_CFG_INT, "20971520", 0, 1024 * MiB, "one attachment, bytes"},
    {"max_header_size", PF_CFG_INT, "1048576", 1024, 64 * MiB, "the submission's header, bytes"},
    {"max_body_size", PF_CFG_INT, "524288", 0, 64 * MiB, "the notice body text, bytes"},
    {"max_attachments", PF_CFG_INT, "32", 0, 256, "attachments per submission"},
    {"max_recipients", PF_CFG_INT, "100", 1, 10000, "recipients per submission"},
    {"batch_max", PF_CFG_INT, "64", 1, 1024, "submissions stored per transaction"},
    {"batch_max_bytes", PF_CFG_INT, "268435456", MiB, 16384 * MiB,
     "encrypted bytes one submission may produce (size x recipients)"},
    {"receipt_retry_seconds", PF_CFG_INT, "30", 1, 86400,
     "resend an unacknowledged receipt after this many seconds"},
    {"receipt_retry_max_seconds", PF_CFG_INT, "3600", 1, 7 * 86400,
     "the wait before a resend doubles with each one, up to this many seconds"},
    {"receipt_window", PF_CFG_INT, "512", 1, 65536,
     "unacknowledged receipts a HELLO sends again at once (more as they are acknowledged)"},
    {"receipt_direct", PF_CFG_BOOL, "on", 0, 0,
     "send delivered receipts from memory right after COMMIT (off: all through the relay)"},
    {"relay_poll_ms", PF_CFG_INT, "1000", 50, 60000, "receipt outbox polling interval"},
    {"sender_cache_ms", PF_CFG_INT, "1000", 0, 60000,
     "how long a sender lookup is trusted (delay until a revocation applies)"},
    {"heartbeat_ms", PF_CFG_INT, "10000", 0, 600000,
     "ZMTP heartbeat interval to detect dead peers (0 = off)"},
    {"queue_max", PF_CFG_INT, "100", 1, 100000,
     "messages queued per connection before the broker stops reading from it"},
    {"busy_after_ms", PF_CFG_INT, "1000", 10, 600000,
     "answer NACK busy once a backlog has lasted this long"},
    {"expire_after_seconds", PF_CFG_INT, "864000", 1, 10LL * 365 * 86400,
     "an unretrieved notice gets its \"expired\" receipt after this many seconds"},
    {"expire_poll_ms", PF_CFG_INT, "5000", 50, 3600000,
     "how often to look for notices whose retrieval period ended"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static pf_broker_t *s_broker;
static volatile sig_atomic_t s_signalled;

static void s_on_signal(int sig)
{
    (void)sig;
    s_signalled = 1;
    /* NULL while pf_broker_new still waits for the database: ends the wait */
    pf_broker_stop(s_broker);
}

int main(int argc, char **argv)
{
    int code;
    pf_config_t *cfg = pf_config_daemon(s_specs, "postfach-broker", argc, argv, &code);
    if (cfg == NULL)
        return code;
    const char *err;

    pf_broker_config_t bc;
    pf_broker_config_default(&bc);
    bc.db = pf_config_str(cfg, "db");
    bc.bind = pf_config_str(cfg, "bind");
    bc.curve_secret_file = pf_config_str(cfg, "curve_secret_file");
    bc.receipt_key_file = pf_config_str(cfg, "receipt_key_file");
    bc.receipt_issuer = pf_config_str(cfg, "receipt_issuer");
    bc.allow_unsafe_db = pf_config_bool(cfg, "allow_unsafe_db");
    bc.limits.max_total = (size_t)pf_config_int(cfg, "max_message_size");
    bc.limits.max_attachment = (size_t)pf_config_int(cfg, "max_attachment_size");
    bc.limits.max_header = (size_t)pf_config_int(cfg, "max_header_size");
    bc.limits.max_body = (size_t)pf_config_int(cfg, "max_body_size");
    bc.limits.max_attachments = (size_t)pf_config_int(cfg, "max_attachments");
    bc.limits.max_recipients = (size_t)pf_config_int(cfg, "max_recipients");
    bc.batch_max = (int)pf_config_int(cfg, "batch_max");
    bc.batch_max_bytes = pf_config_int(cfg, "batch_max_bytes");
    bc.receipt_retry_seconds = (int)pf_config_int(cfg, "receipt_retry_seconds");
    bc.receipt_retry_max_seconds = (int)pf_config_int(cfg, "receipt_retry_max_seconds");
    bc.receipt_window = (int)pf_config_int(cfg, "receipt_window");
    bc.receipt_direct = pf_config_bool(cfg, "receipt_direct");
    bc.relay_poll_ms = (int)pf_config_int(cfg, "relay_poll_ms");
    bc.sender_cache_ms = (int)pf_config_int(cfg, "sender_cache_ms");
    bc.heartbeat_ms = (int)pf_config_int(cfg, "heartbeat_ms");
    bc.queue_max = (int)pf_config_int(cfg, "queue_max");
    bc.busy_after_ms = (int)pf_config_int(cfg, "busy_after_ms");
    bc.expire_after_seconds = (int)pf_config_int(cfg, "expire_after_seconds");
    bc.expire_poll_ms = (int)pf_config_int(cfg, "expire_poll_ms");

    /* handlers first: a stop while the broker waits for the database at
     * start-up is a clean stop, not a failure */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pf_broker_t *b = NULL;
    if (pf_broker_new(&bc, &b, &err) != 0) {
        char esc[600];
        pf_error("event=start_failed error=\"%s\"", pf_log_escape(err, esc, sizeof(esc)));
        pf_config_destroy(&cfg);
        return s_signalled ? 0 : 1;
    }
    s_broker = b;
    if (s_signalled)
        pf_broker_stop(b);
    int rc = pf_broker_run(s_broker);
    pf_broker_destroy(&s_broker);
    pf_config_destroy(&cfg);
    return rc == 0 ? 0 : 1;
}
