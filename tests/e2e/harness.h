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

/* citizens: NULL-terminated list of mailbox ids ("citizen-a", ...), each
 * created with a P-256 key. */
pf_env_t *pf_env_new(const char *test_name, const char *const *citizens);
void pf_env_destroy(pf_env_t **env);

const char *pf_env_dir(const pf_env_t *env);      /* scratch directory of this test */
const char *pf_env_keys(const pf_env_t *env);     /* key directory (postfach-ctl --keys) */
const char *pf_env_conninfo(const pf_env_t *env); /* libpq connection string */
const char *pf_env_broker_endpoint(const pf_env_t *env); /* tcp://127.0.0.1:PORT */
int pf_env_reader_port(const pf_env_t *env);
/* Path of the CURVE key file of a sender made by `postfach-ctl sender add`. */
char *pf_env_sender_keyfile(const pf_env_t *env, const char *sender); /* caller frees */
/* Path of the broker's public CURVE key file. */
char *pf_env_broker_pubfile(const pf_env_t *env); /* caller frees */

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
/* Sends sig (SIGTERM for a clean stop, SIGKILL for a crash) and waits.
 * Returns the exit status (or 128+signal). */
int pf_env_stop_broker(pf_env_t *env, int sig);
int pf_env_stop_reader(pf_env_t *env, int sig);
bool pf_env_broker_alive(pf_env_t *env);
bool pf_env_reader_alive(pf_env_t *env);

/* Mints a citizen token with `postfach-ctl token` (caller frees). */
char *pf_env_token(pf_env_t *env, const char *citizen);

/* One SQL query returning one value as text (caller frees), NULL on error
 * or no row: for checks of what is really stored. */
char *pf_env_sql(pf_env_t *env, const char *sql);
long long pf_env_sql_int(pf_env_t *env, const char *sql);

/* Minimal HTTP/1.1 client over loopback (no TLS in tests). */
typedef struct {
    int status;
    char *content_type;
    char *body;
    size_t body_len;
} pf_http_response_t;
int pf_http_get(int port, const char *path, const char *bearer, pf_http_response_t *resp_r);
/* Sends raw bytes and reads until the server closes or timeout_ms passes;
 * parses the response when it is one. */
int pf_http_raw(int port, const void *request, size_t len, int timeout_ms,
                pf_http_response_t *resp_r);
void pf_http_response_clear(pf_http_response_t *resp);

/* Helpers */
char *pf_test_read_file(const char *path, size_t *len_r); /* caller frees, NULL if missing */
int64_t pf_test_now_ms(void);
/* Waits up to timeout_ms for cond(arg) to return true, polling. */
bool pf_test_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);

#endif
