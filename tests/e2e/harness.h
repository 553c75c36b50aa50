#ifndef PF_TEST_HARNESS_H
#define PF_TEST_HARNESS_H
/* End-to-end test harness: real PostgreSQL, real binaries, real sockets.
 *
 * scripts/test.sh starts one PostgreSQL cluster per run and exports
 * PF_TEST_PGHOST / PF_TEST_PGPORT and PF_BIN_DIR (the built programs).
 * pf_env_new() creates a fresh database and a fresh key directory for one
 * test, runs `postfach-ctl migrate` and `postfach-ctl keys init`, and adds
 * the sender "tax-office" and the citizens given.  Broker and reader are
 * started on free ports as child processes with their stderr in
 * <dir>/broker.log and <dir>/reader.log. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pf_env pf_env_t;

/* brokers one test may run at once against its database (slots 0..3) */
#define PF_ENV_MAX_BROKERS 4

/* citizens: NULL-terminated list of mailbox ids ("citizen-a", ...), each
 * created with a P-256 key. */
pf_env_t *pf_env_new(const char *test_name, const char *const *citizens);
/* Same, but with a PostgreSQL cluster of the test's own under its scratch
 * directory (scripts/pg.sh; about a second to create), which the test may
 * crash and restart with pf_env_pg_kill / pf_env_pg_start without touching
 * the cluster the other tests share.  Destroy stops it and removes it. */
pf_env_t *pf_env_new_private_pg(const char *test_name, const char *const *citizens);
/* `pg_ctl stop -m immediate` (a crash: no checkpoint, recovery at the next
 * start) and start again; 0 or -1 (also for an env on the shared cluster). */
int pf_env_pg_kill(pf_env_t *env);
int pf_env_pg_start(pf_env_t *env);
/* Stops the daemons still running (SIGTERM), removes a private cluster and
 * frees env.  Then fails the running cmocka test (fail_msg; outside a test
 * the program exits non-zero) when any stop of this env was unclean: a
 * daemon that exited non-zero or died of a signal on a stop other than
 * SIGKILL, or did not stop within 20 s (see pf_env_stop_broker).  Call it
 * from a fixture's teardown, so a failed assertion still stops them. */
void pf_env_destroy(pf_env_t **env);
/* A fixture's teardown: destroys the client (may be NULL), frees the
 * fixture, then destroys env, last because an unclean stop fails the test
 * there and does not return.  Returns 0. */
struct pf_client;
int pf_fixture_end(pf_env_t *env, struct pf_client **client, void *fixture);
/* The fixture of a test that makes its environment (and perhaps one
 * client) itself: cmocka's setup and teardown for it.  The teardown ends
 * both through pf_fixture_end, so a failed assertion still stops the
 * daemons. */
typedef struct {
    pf_env_t *env;
    struct pf_client *c;
} pf_env_fixture_t;
int pf_env_fixture_setup(void **state);
int pf_env_fixture_teardown(void **state);

const char *pf_env_dir(const pf_env_t *env);             /* scratch directory of this test */
const char *pf_env_keys(const pf_env_t *env);            /* key directory (postfach-ctl --keys) */
const char *pf_env_conninfo(const pf_env_t *env);        /* libpq connection string */
const char *pf_env_broker_endpoint(const pf_env_t *env); /* tcp://127.0.0.1:PORT */
int pf_env_reader_port(const pf_env_t *env);
/* Path of the CURVE key file of a sender made by `postfach-ctl sender add`. */
char *pf_env_sender_keyfile(const pf_env_t *env, const char *sender); /* caller frees */
/* Path of the broker's public CURVE key file. */
char *pf_env_broker_pubfile(const pf_env_t *env); /* caller frees */
/* A client of the broker (slot 0) under a sender's CURVE key file
 * (keyfile NULL: the sender's own), verifying receipts with the service's
 * JWKS; NULL with the reason on stderr when it cannot be made.  Release
 * with pf_client_destroy. */
struct pf_client;
struct pf_client *pf_env_client(pf_env_t *env, const char *sender, const char *keyfile,
                                int timeout_ms, int retries);

/* Runs build/.../bin/postfach-ctl with the env's --db and --keys and the
 * given arguments (NULL-terminated); returns the exit status; stdout in
 * *out_r when out_r is not NULL (caller frees). */
int pf_env_ctl(pf_env_t *env, char **out_r, ...) __attribute__((sentinel));
/* Runs any program from PF_BIN_DIR with the given arguments; stdout in
 * *out_r, stderr in *err_r (either may be NULL). */
int pf_env_run(pf_env_t *env, char **out_r, char **err_r, const char *prog, ...)
    __attribute__((sentinel));

/* Start the daemons (waiting until they accept connections); extra
 * settings as "key=value" strings, NULL-terminated, may be NULL. */
int pf_env_start_broker(pf_env_t *env, const char *const *settings);
int pf_env_start_reader(pf_env_t *env, const char *const *settings);
/* The exit status of the last daemon that exited during its start-up (a
 * pf_env_start_* call returned -1 for it), or -1 when none did. */
int pf_env_start_exit(const pf_env_t *env);
/* Sends sig (SIGTERM for a clean stop, SIGKILL for a crash) and waits.
 * Returns the exit status (or 128+signal; 0 for SIGKILL that killed).
 * With any sig but SIGKILL an exit status other than 0 is also recorded as
 * an unclean stop, and so is a daemon that did not stop within 20 s (it is
 * killed): pf_env_destroy fails the test for it.  A daemon found dead of
 * SIGKILL (a test's kill -9, a crash point) is not recorded. */
int pf_env_stop_broker(pf_env_t *env, int sig);
int pf_env_stop_reader(pf_env_t *env, int sig);
bool pf_env_broker_alive(pf_env_t *env);
bool pf_env_reader_alive(pf_env_t *env);
/* Several brokers against one database: slot 0 is the broker of the calls
 * above; each slot has its own port (kept across restarts) and log
 * (broker.log, broker-1.log, ...).  environ_add: "NAME=value" strings put
 * into the child's environment (e.g. POSTFACH_CRASH_POINT), may be NULL;
 * they must stay valid until the call returns. */
int pf_env_start_broker_slot(pf_env_t *env, int slot, const char *const *settings,
                             const char *const *environ_add);
int pf_env_stop_broker_slot(pf_env_t *env, int slot, int sig);
/* Reaps a broker that died by itself (a crash point): then false. */
bool pf_env_broker_slot_alive(pf_env_t *env, int slot);
const char *pf_env_broker_slot_endpoint(const pf_env_t *env, int slot);
pid_t pf_env_broker_pid(const pf_env_t *env, int slot);
pid_t pf_env_reader_pid(const pf_env_t *env);
/* VmRSS of a process from /proc/<pid>/status, in KiB; -1 when gone. */
long pf_env_rss_kb(pid_t pid);

/* Mints a citizen token with `postfach-ctl token` (caller frees). */
char *pf_env_token(pf_env_t *env, const char *citizen);

/* One SQL query returning one value as text (caller frees), NULL on error
 * or no row: for checks of what is really stored. */
char *pf_env_sql(pf_env_t *env, const char *sql);
long long pf_env_sql_int(pf_env_t *env, const char *sql);
/* LISTEN on the harness's own connection: the NOTIFYs of every session
 * on that channel then queue there.  Returns 0 or -1. */
int pf_env_listen(pf_env_t *env, const char *channel);
/* Counts (and forgets) the notifications that arrived until now, waiting
 * wait_ms for more; stops early once there are at least `enough`. */
int pf_env_notifications(pf_env_t *env, int wait_ms, int enough);
/* The same, counting only those whose payload is `payload`; the others
 * go to *other_r (may be NULL). */
int pf_env_notifications_split(pf_env_t *env, int wait_ms, int enough, const char *payload,
                               int *other_r);
/* Calls row() for each row of the result (NULL for SQL NULL, at most 32
 * columns); returns the row count or -1. */
int pf_env_sql_rows(pf_env_t *env, const char *sql,
                    void (*row)(void *arg, int ncols, const char *const *values), void *arg);
/* Runs sql (one or several statements) on the test's connection and writes
 * its SQLSTATE to state ("00000" when every statement succeeded); a
 * transaction left open by sql, aborted or not, is rolled back.  Returns 0
 * on success, -1 otherwise.  For probes of what a role may not do:
 * "BEGIN; SET ROLE r; <probe>; ROLLBACK". */
int pf_env_sql_state(pf_env_t *env, const char *sql, char state[6]);
/* A database login of the group kind ("broker", "reader", "admin",
 * "auditor"), made by `postfach-ctl role login` as the compose init makes
 * them, named "<prefix>_<kind>_<pid>" (logins are global to the cluster:
 * one set per test process; the test cluster trusts local connections, so
 * the password file's content is not checked).  Fills login (48 bytes) and
 * conn (512 bytes: the env's connection string under that login).  Returns
 * 0, or -1 with the reason on stderr.  pf_env_drop_login drops one once
 * its sessions are gone (it owns nothing). */
int pf_env_make_login(pf_env_t *env, const char *prefix, const char *kind, char login[48],
                      char conn[512]);
void pf_env_drop_login(pf_env_t *env, const char *login);
/* A database session of its own beside the env's connection, e.g. to hold
 * a row lock or a transaction open while a program runs and the env's
 * connection keeps checking.  exec runs sql (one or several statements) and
 * returns 0, or -1 with the error on stderr; destroy closes the session
 * (rolling back what it left open) and accepts NULL. */
typedef struct pf_env_session pf_env_session_t;
pf_env_session_t *pf_env_session_new(pf_env_t *env);
int pf_env_session_exec(pf_env_session_t *s, const char *sql);
void pf_env_session_destroy(pf_env_session_t **s);

/* Minimal HTTP/1.1 client over loopback (no TLS in tests). */
typedef struct {
    int status;
    char *content_type;
    char *body;
    size_t body_len;
    char *headers; /* status line and header lines as received, CRLF each */
} pf_http_response_t;
int pf_http_get(int port, const char *path, const char *bearer, pf_http_response_t *resp_r);
/* Sends raw bytes and reads until the server closes or timeout_ms passes;
 * parses the response when it is one. */
int pf_http_raw(int port, const void *request, size_t len, int timeout_ms,
                pf_http_response_t *resp_r);
void pf_http_response_clear(pf_http_response_t *resp);
/* resp->headers without the header lines named omit (NULL-terminated,
 * case-insensitive): e.g. {"Date", NULL} to compare two responses whose
 * headers must be identical but for the time (caller frees). */
char *pf_http_headers_except(const pf_http_response_t *resp, const char *const *omit);

/* Helpers */
char *pf_test_read_file(const char *path, size_t *len_r); /* caller frees, NULL if missing */
int64_t pf_test_now_ms(void);
/* Waits up to timeout_ms for cond(arg) to return true, polling. */
bool pf_test_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* Like pf_env_broker_slot_alive, but keeps what a dead broker left: false
 * when it is not running, with the wait status (WIFSIGNALED etc.) of the
 * process reaped now in *status_r, or -1 when there was none to reap. */
bool pf_env_broker_slot_reap(pf_env_t *env, int slot, int *status_r);
/* The broker slot's log (stderr of every broker started in that slot,
 * appended), caller frees; NULL when there is none. */
char *pf_env_broker_log(const pf_env_t *env, int slot);

#endif
