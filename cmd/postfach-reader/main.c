/* postfach-reader: the citizens' HTTP/JSON service and web page.
 *
 * Thin by design: declares the settings, loads them, starts the lib/reader
 * object and waits for SIGTERM or SIGINT, then stops it and exits 0.  All
 * behaviour is in lib/reader (docs/api.md).  Exit codes: 0 clean stop,
 * 1 start-up failure (bad settings, keys, port), 2 usage. */
#include "util/jsonwipe.h"
#include "config/config.h"
#include "reader/reader.h"
#include "util/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const pf_cfg_spec_t s_specs[] = {
    {"db", PF_CFG_STRING, "dbname=postfach", 0, 0, "libpq connection string"},
    {"listen_address", PF_CFG_STRING, "127.0.0.1", 0, 0, "IP address to listen on (v4 or v6)"},
    {"listen_port", PF_CFG_INT, "8080", 0, 65535, "TCP port (0 = any free port)"},
    {"kek_file", PF_CFG_STRING, NULL, 0, 0, "key-encryption key file (\"<id> <64 hex>\")"},
    {"receipt_key_file", PF_CFG_STRING, NULL, 0, 0, "private P-256 JWK signing read receipts"},
    {"receipt_issuer", PF_CFG_STRING, "https://postfach.local", 0, 0, "\"iss\" of receipts"},
    {"idp_jwks_file", PF_CFG_STRING, NULL, 0, 0,
     "identity provider's public JWKS file(s), comma-separated for key rollover"},
    {"idp_issuer", PF_CFG_STRING, NULL, 0, 0, "required \"iss\" of citizen tokens"},
    {"idp_audience", PF_CFG_STRING, NULL, 0, 0, "required \"aud\" of citizen tokens"},
    {"idp_development", PF_CFG_BOOL, "off", 0, 0,
     "development only: accept the issuer of postfach-ctl's development identity provider"},
    {"token_max_lifetime", PF_CFG_INT, "86400", 60, 7 * 86400,
     "longest exp - iat span accepted in a token (seconds)"},
    {"token_cache_seconds", PF_CFG_INT, "30", 0, 300,
     "a verified token is trusted again for this long without a signature check (0 = off)"},
    {"threads", PF_CFG_INT, "4", 1, 64, "worker threads (one database connection each, plus one)"},
    {"max_connections", PF_CFG_INT, "512", 1, 65536, "open HTTP connections in total"},
    {"max_connections_per_ip", PF_CFG_INT, "0", 0, 65536,
     "open HTTP connections per client IP; 0 = no limit (behind the TLS proxy every "
     "connection comes from the proxy)"},
    {"connection_timeout", PF_CFG_INT, "30", 1, 3600, "idle seconds before a connection is closed"},
    {"connection_memory", PF_CFG_INT, "32768", 8192, 1048576,
     "bytes per connection; bounds request line and headers"},
    {"list_limit_default", PF_CFG_INT, "50", 1, 1000, "page size of GET /v1/messages"},
    {"list_limit_max", PF_CFG_INT, "100", 1, 1000, "largest page size a client may ask for"},
    {"statement_timeout_ms", PF_CFG_INT, "10000", 100, 600000, "per SQL statement"},
    {"log_level", PF_CFG_STRING, "info", 0, 0, "debug, info, warn or error"},
    {NULL, 0, NULL, 0, 0, NULL},
};

int main(int argc, char **argv)
{
    pf_json_wipe_init();
    int code;
    pf_config_t *cfg = pf_config_daemon(s_specs, "postfach-reader", argc, argv, &code);
    if (cfg == NULL)
        return code;
    const char *err;

    /* blocked before any thread exists, so only sigwait() below sees them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pf_reader_settings_t s = {
        .db = pf_config_str(cfg, "db"),
        .listen_address = pf_config_str(cfg, "listen_address"),
        .listen_port = (int)pf_config_int(cfg, "listen_port"),
        .kek_file = pf_config_str(cfg, "kek_file"),
        .receipt_key_file = pf_config_str(cfg, "receipt_key_file"),
        .receipt_issuer = pf_config_str(cfg, "receipt_issuer"),
        .idp_jwks_file = pf_config_str(cfg, "idp_jwks_file"),
        .idp_issuer = pf_config_str(cfg, "idp_issuer"),
        .idp_audience = pf_config_str(cfg, "idp_audience"),
        .idp_development = pf_config_bool(cfg, "idp_development"),
        .token_max_lifetime = (int)pf_config_int(cfg, "token_max_lifetime"),
        .token_cache_seconds = (int)pf_config_int(cfg, "token_cache_seconds"),
        .threads = (int)pf_config_int(cfg, "threads"),
        .max_connections = (int)pf_config_int(cfg, "max_connections"),
        .max_connections_per_ip = (int)pf_config_int(cfg, "max_connections_per_ip"),
        .connection_timeout = (int)pf_config_int(cfg, "connection_timeout"),
        .connection_memory = (int)pf_config_int(cfg, "connection_memory"),
        .list_limit_default = (int)pf_config_int(cfg, "list_limit_default"),
        .list_limit_max = (int)pf_config_int(cfg, "list_limit_max"),
        .statement_timeout_ms = (int)pf_config_int(cfg, "statement_timeout_ms"),
    };
    pf_reader_t *reader = NULL;
    if (pf_reader_new(&s, &reader, &err) != 0) {
        char esc[600];
        pf_error("event=start_failed error=\"%s\"", pf_log_escape(err, esc, sizeof(esc)));
        pf_config_destroy(&cfg);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    pf_info("event=stopping signal=%d", sig);
    pf_reader_destroy(&reader);
    pf_config_destroy(&cfg);
    pf_info("event=stopped");
    return 0;
}
