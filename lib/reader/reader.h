#ifndef PF_READER_READER_H
#define PF_READER_READER_H
/* postfach-reader as a library object: the HTTP/JSON service through which
 * citizens list, open and download their notices (docs/api.md).  The
 * program (cmd/postfach-reader) only fills the settings, creates the
 * reader, waits for a signal and destroys it.
 *
 * Threads: libmicrohttpd runs `threads` worker threads; each request takes
 * one database connection from a pool of the same size for its duration.
 * The caller should block SIGTERM/SIGINT before pf_reader_new so that the
 * worker threads inherit the mask and the caller's sigwait() gets them. */
#include <stdbool.h>
#include <stdint.h>

typedef struct pf_reader pf_reader_t;

typedef struct {
    const char *db;             /* libpq connection string */
    const char *listen_address; /* IPv4 or IPv6 literal */
    int listen_port;            /* 0 = any free port (see pf_reader_port) */
    const char *kek_file;
    const char *receipt_key_file;
    const char *receipt_issuer;
    const char *idp_jwks_file;
    const char *idp_issuer;
    const char *idp_audience;
    bool idp_development;       /* accept the development issuer (PF_TOKEN_DEV_ISSUER) */
    int threads;                /* worker threads = database connections */
    int max_connections;        /* open HTTP connections in total */
    int max_connections_per_ip;
    int connection_timeout;     /* seconds of inactivity before a close */
    int connection_memory;      /* bytes per connection: bounds request headers */
    int list_limit_default;     /* page size of GET /v1/messages */
    int list_limit_max;
    int token_max_lifetime;     /* seconds from iat to exp a token may span */
    int token_cache_seconds;    /* verified tokens trusted again this long (0 = off) */
    int statement_timeout_ms;   /* per SQL statement */
} pf_reader_settings_t;

/* Loads the keys, prepares the page, binds and starts serving; logs
 * "event=ready" once listening.  The database need not be up yet: requests
 * then answer 503 until it is.  Returns 0 and *r_r, or -1 with *error_r
 * (static or thread-local text). */
int pf_reader_new(const pf_reader_settings_t *s, pf_reader_t **r_r, const char **error_r);
/* The port actually bound. */
int pf_reader_port(const pf_reader_t *r);
/* Stops accepting, finishes the running requests, closes the database
 * connections and wipes the keys.  Accepts NULL and *r == NULL. */
void pf_reader_destroy(pf_reader_t **r);

#endif
