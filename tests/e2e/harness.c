/* End-to-end harness (see harness.h).  Starts the real programs as child
 * processes against a fresh database in the PostgreSQL cluster that
 * scripts/test.sh started, and talks to them over real sockets.  On
 * teardown it copies any sanitizer report from the daemons' logs to stderr,
 * where scripts/test.sh counts it as a failure, and fails the test when a
 * daemon did not stop cleanly (see pf_env_destroy). */
#include "harness.h"
#include "postfach/postfach.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct pf_env {
    char *dir;
    char *keys;
    char *dbname;
    char *conninfo;
    char *bin_dir;
    char *root;
    char *pgdir; /* a private PostgreSQL cluster of this test, or NULL */
    /* broker slot 0 is the broker of the single-broker API */
    char broker_endpoint[PF_ENV_MAX_BROKERS][64];
    int broker_port[PF_ENV_MAX_BROKERS];
    pid_t broker_pid[PF_ENV_MAX_BROKERS];
    int reader_port;
    pid_t reader_pid;
    int start_exit; /* exit status of a daemon that exited during start-up, or -1 */
    /* every unclean stop of a daemon (s_stop), reported by pf_env_destroy */
    char unclean[1024];
    PGconn *db;
};

static int s_counter;

static char *s_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *s_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

static const char *s_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int64_t pf_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool pf_test_wait(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t end = pf_test_now_ms() + timeout_ms;
    while (pf_test_now_ms() < end) {
        if (cond(arg))
            return true;
        usleep(20 * 1000);
    }
    return cond(arg);
}

char *pf_test_read_file(const char *path, size_t *len_r)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (len_r)
        *len_r = len;
    return buf;
}

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Runs argv (argv[0] a path) with stdout/stderr captured into strings. */
static int s_run(char *const *argv, char **out_r, char **err_r)
{
    char outp[] = "/tmp/pf-e2e-out-XXXXXX", errp[] = "/tmp/pf-e2e-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        int nfd = open("/dev/null", O_RDONLY);
        dup2(nfd, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(ofd);
    close(efd);
    char *out = pf_test_read_file(outp, NULL), *err = pf_test_read_file(errp, NULL);
    unlink(outp);
    unlink(errp);
    if (err && *err && !err_r)
        fprintf(stderr, "[%s stderr] %s", argv[0], err);
    if (out_r)
        *out_r = out;
    else
        free(out);
    if (err_r)
        *err_r = err;
    else
        free(err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int s_vrun(pf_env_t *env, char **out_r, char **err_r, const char *prog, bool ctl, va_list ap)
{
    char *argv[64];
    int n = 0;
    argv[n++] = s_strdup_printf("%s/%s", env->bin_dir, prog);
    if (ctl) {
        argv[n++] = strdup("--db");
        argv[n++] = strdup(env->conninfo);
        argv[n++] = strdup("--keys");
        argv[n++] = strdup(env->keys);
    }
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 62)
        argv[n++] = strdup(a);
    argv[n] = NULL;
    int rc = s_run(argv, out_r, err_r);
    for (int i = 0; i < n; i++)
        free(argv[i]);
    return rc;
}

int pf_env_ctl(pf_env_t *env, char **out_r, ...)
{
    va_list ap;
    va_start(ap, out_r);
    int rc = s_vrun(env, out_r, NULL, "postfach-ctl", true, ap);
    va_end(ap);
    return rc;
}

int pf_env_run(pf_env_t *env, char **out_r, char **err_r, const char *prog, ...)
{
    va_list ap;
    va_start(ap, prog);
    int rc = s_vrun(env, out_r, err_r, prog, false, ap);
    va_end(ap);
    return rc;
}

static void s_die(const char *what)
{
    fprintf(stderr, "harness: %s\n", what);
    exit(1);
}

/* Runs scripts/pg.sh CMD on the env's private cluster; 0 on success. */
static int s_pg(pf_env_t *env, const char *cmd)
{
    char *sh = s_strdup_printf("'%s/scripts/pg.sh' %s '%s' >>'%s/pg-script.log' 2>&1", env->root,
                               cmd, env->pgdir, env->dir);
    int rc = system(sh);
    free(sh);
    return rc == 0 ? 0 : -1;
}

static pf_env_t *s_env_new(const char *test_name, const char *const *citizens, bool private_pg)
{
    signal(SIGPIPE, SIG_IGN);
    pf_env_t *env = calloc(1, sizeof(*env));
    env->root = strdup(s_env("PF_ROOT", "."));
    env->bin_dir = strdup(s_env("PF_BIN_DIR", "build/asan/bin"));
    const char *pghost = getenv("PF_TEST_PGHOST"), *pgport = getenv("PF_TEST_PGPORT");
    if (!private_pg && (pghost == NULL || pgport == NULL))
        s_die("PF_TEST_PGHOST/PF_TEST_PGPORT not set: run through scripts/test.sh");

    char safe[48];
    size_t j = 0;
    for (const char *p = test_name; *p && j < sizeof(safe) - 1; p++)
        safe[j++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    safe[j] = '\0';
    int k = ++s_counter;
    env->dir = s_strdup_printf("%s/var/e2e/%s-%d-%d", env->root, safe, (int)getpid(), k);
    env->keys = s_strdup_printf("%s/keys", env->dir);
    char *mk = s_strdup_printf("rm -rf '%s' && mkdir -p '%s'", env->dir, env->dir);
    if (system(mk) != 0)
        s_die("cannot create scratch directory");
    free(mk);
    env->dbname = s_strdup_printf("t_%s_%d_%d", safe, (int)getpid(), k);
    char *own_host = NULL, *own_port = NULL;
    if (private_pg) {
        /* a cluster of our own, which the test may stop the hard way
         * without disturbing the tests that share the suite's cluster */
        env->pgdir = s_strdup_printf("%s/pg", env->dir);
        if (s_pg(env, "start") != 0)
            s_die("cannot start a private PostgreSQL (scripts/pg.sh start)");
        own_host = s_strdup_printf("%s/sock", env->pgdir);
        char *pf = s_strdup_printf("%s/port", env->pgdir);
        own_port = pf_test_read_file(pf, NULL);
        free(pf);
        if (own_port == NULL)
            s_die("private PostgreSQL has no port file");
        own_port[strcspn(own_port, "\r\n")] = '\0';
        pghost = own_host;
        pgport = own_port;
    }

    char *admin = s_strdup_printf("host=%s port=%s dbname=postgres user=postgres", pghost, pgport);
    PGconn *c = PQconnectdb(admin);
    free(admin);
    if (PQstatus(c) != CONNECTION_OK)
        s_die(PQerrorMessage(c));
    char *sql = s_strdup_printf("DROP DATABASE IF EXISTS %s", env->dbname);
    PQclear(PQexec(c, sql));
    free(sql);
    sql = s_strdup_printf("CREATE DATABASE %s", env->dbname);
    PGresult *r = PQexec(c, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        s_die(PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    env->conninfo =
        s_strdup_printf("host=%s port=%s dbname=%s user=postgres", pghost, pgport, env->dbname);
    free(own_host);
    free(own_port);
    env->db = PQconnectdb(env->conninfo);
    if (PQstatus(env->db) != CONNECTION_OK)
        s_die(PQerrorMessage(env->db));

    char *sqldir = s_strdup_printf("%s/sql", env->root);
    char *out = NULL;
    if (pf_env_ctl(env, NULL, "migrate", "--sql-dir", sqldir, NULL) != 0)
        s_die("postfach-ctl migrate failed");
    free(sqldir);
    if (pf_env_ctl(env, NULL, "keys", "init", NULL) != 0)
        s_die("postfach-ctl keys init failed");
    if (pf_env_ctl(env, &out, "sender", "add", "tax-office", NULL) != 0)
        s_die("postfach-ctl sender add failed");
    free(out);
    for (size_t i = 0; citizens && citizens[i]; i++) {
        if (pf_env_ctl(env, &out, "citizen", "add", citizens[i], NULL) != 0)
            s_die("postfach-ctl citizen add failed");
        free(out);
    }
    for (int i = 0; i < PF_ENV_MAX_BROKERS; i++)
        env->broker_pid[i] = -1;
    env->reader_pid = -1;
    env->start_exit = -1;
    return env;
}

pf_env_t *pf_env_new(const char *test_name, const char *const *citizens)
{
    return s_env_new(test_name, citizens, false);
}

pf_env_t *pf_env_new_private_pg(const char *test_name, const char *const *citizens)
{
    return s_env_new(test_name, citizens, true);
}

int pf_env_pg_kill(pf_env_t *env)
{
    return env->pgdir ? s_pg(env, "kill") : -1;
}

int pf_env_pg_start(pf_env_t *env)
{
    return env->pgdir ? s_pg(env, "start") : -1;
}

/* Copies sanitizer reports from a daemon log to stderr. */
static void s_scan_log(const char *path)
{
    char *log = pf_test_read_file(path, NULL);
    if (log == NULL)
        return;
    const char *markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"};
    for (size_t i = 0; i < 3; i++) {
        char *p = strstr(log, markers[i]);
        if (p) {
            fprintf(stderr, "sanitizer report in %s:\n%.4000s\n", path, p);
            break;
        }
    }
    free(log);
}

int pf_fixture_end(pf_env_t *env, struct pf_client **client, void *fixture)
{
    if (client)
        pf_client_destroy(client);
    free(fixture);
    pf_env_destroy(&env);
    return 0;
}

int pf_env_fixture_setup(void **state)
{
    *state = calloc(1, sizeof(pf_env_fixture_t));
    return *state ? 0 : -1;
}

int pf_env_fixture_teardown(void **state)
{
    pf_env_fixture_t *f = *state;
    return pf_fixture_end(f->env, &f->c, f);
}

void pf_env_destroy(pf_env_t **envp)
{
    pf_env_t *env = *envp;
    if (env == NULL)
        return;
    for (int i = 0; i < PF_ENV_MAX_BROKERS; i++) {
        pf_env_stop_broker_slot(env, i, SIGTERM);
        char *p = i == 0 ? s_strdup_printf("%s/broker.log", env->dir)
                         : s_strdup_printf("%s/broker-%d.log", env->dir, i);
        s_scan_log(p);
        free(p);
    }
    pf_env_stop_reader(env, SIGTERM);
    char *p = s_strdup_printf("%s/reader.log", env->dir);
    s_scan_log(p);
    free(p);
    PQfinish(env->db);
    if (env->pgdir) {
        s_pg(env, "stop");
        /* the cluster's files are only ballast once the test is over */
        char *rm = s_strdup_printf("rm -rf '%s/data'", env->pgdir);
        if (system(rm) != 0)
            fprintf(stderr, "harness: cannot remove %s/data\n", env->pgdir);
        free(rm);
        free(env->pgdir);
    }
    /* A daemon that did not stop cleanly fails the test (or, outside a
     * test, the test program): the message is copied first, since
     * fail_msg does not return. */
    char unclean[sizeof(env->unclean) + 600];
    unclean[0] = '\0';
    if (env->unclean[0] != '\0')
        snprintf(unclean, sizeof(unclean), "%s:%s", env->dir, env->unclean);
    free(env->dir);
    free(env->keys);
    free(env->dbname);
    free(env->conninfo);
    free(env->bin_dir);
    free(env->root);
    free(env);
    *envp = NULL;
    if (unclean[0] != '\0')
        fail_msg("harness: unclean daemon stop in %s", unclean);
}

const char *pf_env_dir(const pf_env_t *env)
{
    return env->dir;
}
const char *pf_env_keys(const pf_env_t *env)
{
    return env->keys;
}
const char *pf_env_conninfo(const pf_env_t *env)
{
    return env->conninfo;
}
const char *pf_env_broker_endpoint(const pf_env_t *env)
{
    return env->broker_endpoint[0];
}
const char *pf_env_broker_slot_endpoint(const pf_env_t *env, int slot)
{
    return env->broker_endpoint[slot];
}
pid_t pf_env_broker_pid(const pf_env_t *env, int slot)
{
    return env->broker_pid[slot];
}
pid_t pf_env_reader_pid(const pf_env_t *env)
{
    return env->reader_pid;
}
int pf_env_start_exit(const pf_env_t *env)
{
    return env->start_exit;
}
int pf_env_reader_port(const pf_env_t *env)
{
    return env->reader_port;
}
char *pf_env_sender_keyfile(const pf_env_t *env, const char *sender)
{
    return s_strdup_printf("%s/senders/%s.curve", env->keys, sender);
}
char *pf_env_broker_pubfile(const pf_env_t *env)
{
    return s_strdup_printf("%s/broker.curve.pub", env->keys);
}

struct pf_client *pf_env_client(pf_env_t *env, const char *sender, const char *keyfile,
                                int timeout_ms, int retries)
{
    char *pub = pf_env_broker_pubfile(env);
    char *own = keyfile ? NULL : pf_env_sender_keyfile(env, sender);
    char jwks[1024];
    snprintf(jwks, sizeof(jwks), "%s/receipt.jwks", pf_env_keys(env));
    pf_client_t *c = NULL;
    const char *err = NULL;
    if (pf_client_new(pf_env_broker_endpoint(env), pub, keyfile ? keyfile : own, &c, &err) != 0)
        fprintf(stderr, "harness: pf_client_new: %s\n", err);
    else if (pf_client_set_receipt_keys(c, jwks, &err) != 0) {
        fprintf(stderr, "harness: pf_client_set_receipt_keys: %s\n", err);
        pf_client_destroy(&c);
    } else
        pf_client_set_timeout(c, timeout_ms, retries);
    free(pub);
    free(own);
    return c;
}

static long s_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Starts prog with argv, stderr appended to log; waits for "event=ready"
 * written after the start.  Returns the pid or -1. */
static pid_t s_spawn(pf_env_t *env, const char *prog, char **argv, const char *log,
                     const char *const *environ_add)
{
    long offset = s_file_size(log);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; environ_add && environ_add[i]; i++)
            putenv((char *)environ_add[i]);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        int nfd = open("/dev/null", O_RDONLY);
        dup2(nfd, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    int64_t end = pf_test_now_ms() + 20000;
    while (pf_test_now_ms() < end) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            env->start_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            fprintf(stderr, "harness: %s exited during start-up; log %s:\n", prog, log);
            char *l = pf_test_read_file(log, NULL);
            if (l)
                fprintf(stderr, "%s\n", l + (offset < (long)strlen(l) ? offset : 0));
            free(l);
            return -1;
        }
        char *l = pf_test_read_file(log, NULL);
        bool ready = l && (long)strlen(l) > offset && strstr(l + offset, "event=ready") != NULL;
        free(l);
        if (ready)
            return pid;
        usleep(20 * 1000);
    }
    fprintf(stderr, "harness: %s not ready after 20 s\n", prog);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int s_start(pf_env_t *env, const char *prog, char **fixed, size_t nfixed,
                   const char *const *settings, const char *logname, const char *const *environ_add,
                   pid_t *pid_r)
{
    char *argv[128];
    int n = 0;
    argv[n++] = s_strdup_printf("%s/%s", env->bin_dir, prog);
    for (size_t i = 0; i < nfixed; i++) {
        argv[n++] = strdup("--set");
        argv[n++] = fixed[i];
    }
    for (size_t i = 0; settings && settings[i] && n < 124; i++) {
        argv[n++] = strdup("--set");
        argv[n++] = strdup(settings[i]);
    }
    argv[n] = NULL;
    char *log = s_strdup_printf("%s/%s.log", env->dir, logname);
    *pid_r = s_spawn(env, prog, argv, log, environ_add);
    free(log);
    for (int i = 0; i < n; i++)
        free(argv[i]);
    return *pid_r > 0 ? 0 : -1;
}

int pf_env_start_broker(pf_env_t *env, const char *const *settings)
{
    return pf_env_start_broker_slot(env, 0, settings, NULL);
}

int pf_env_start_broker_slot(pf_env_t *env, int slot, const char *const *settings,
                             const char *const *environ_add)
{
    if (slot < 0 || slot >= PF_ENV_MAX_BROKERS)
        return -1;
    if (env->broker_port[slot] == 0) {
        env->broker_port[slot] = s_free_port();
        snprintf(env->broker_endpoint[slot], sizeof(env->broker_endpoint[slot]),
                 "tcp://127.0.0.1:%d", env->broker_port[slot]);
    }
    char logname[32];
    if (slot == 0)
        snprintf(logname, sizeof(logname), "broker");
    else
        snprintf(logname, sizeof(logname), "broker-%d", slot);
    char *fixed[] = {
        s_strdup_printf("db=%s", env->conninfo),
        s_strdup_printf("bind=%s", env->broker_endpoint[slot]),
        s_strdup_printf("curve_secret_file=%s/broker.curve", env->keys),
        s_strdup_printf("receipt_key_file=%s/receipt.jwk", env->keys),
        s_strdup_printf("log_level=debug"),
    };
    return s_start(env, "postfach-broker", fixed, sizeof(fixed) / sizeof(fixed[0]), settings,
                   logname, environ_add, &env->broker_pid[slot]);
}

int pf_env_start_reader(pf_env_t *env, const char *const *settings)
{
    if (env->reader_port == 0)
        env->reader_port = s_free_port();
    char *fixed[] = {
        s_strdup_printf("db=%s", env->conninfo),
        s_strdup_printf("listen_address=127.0.0.1"),
        s_strdup_printf("listen_port=%d", env->reader_port),
        s_strdup_printf("kek_file=%s/kek", env->keys),
        s_strdup_printf("receipt_key_file=%s/receipt.jwk", env->keys),
        s_strdup_printf("idp_jwks_file=%s/idp.jwks", env->keys),
        s_strdup_printf("idp_issuer=https://idp.postfach.local"),
        s_strdup_printf("idp_audience=postfach-reader"),
        /* postfach-ctl token's issuer; a test may set it off again */
        s_strdup_printf("idp_development=on"),
        s_strdup_printf("log_level=debug"),
    };
    return s_start(env, "postfach-reader", fixed, sizeof(fixed) / sizeof(fixed[0]), settings,
                   "reader", NULL, &env->reader_pid);
}

static void s_unclean(pf_env_t *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_unclean(pf_env_t *env, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "harness: %s\n", line);
    size_t n = strlen(env->unclean);
    snprintf(env->unclean + n, sizeof(env->unclean) - n, " %s;", line);
}

/* Stops the daemon *pid (named what) with sig.  A stop with any signal but
 * SIGKILL is a clean stop: the daemon must exit 0 within 20 s, else the
 * stop is recorded in env->unclean and pf_env_destroy fails the test.  Not
 * recorded: a daemon a test kills with SIGKILL, and a death by SIGKILL
 * before the stop (a crash point, or the test's own kill -9), since a
 * daemon never dies of SIGKILL by itself. */
static int s_stop(pf_env_t *env, const char *what, pid_t *pid, int sig)
{
    if (*pid <= 0)
        return -1;
    kill(*pid, sig);
    int status = 0;
    int64_t end = pf_test_now_ms() + 20000;
    pid_t r;
    while ((r = waitpid(*pid, &status, WNOHANG)) == 0 && pf_test_now_ms() < end)
        usleep(10 * 1000);
    bool hung = r == 0;
    if (hung) {
        kill(*pid, SIGKILL);
        waitpid(*pid, &status, 0);
        s_unclean(env, "%s (pid %d) did not stop within 20 s of signal %d; killed", what, (int)*pid,
                  sig);
    }
    *pid = -1;
    int rc = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && sig == SIGKILL)
        rc = 0;
    if (!hung && sig != SIGKILL && rc != 0 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        s_unclean(env, "%s exited with status %d on signal %d", what, rc, sig);
    return rc;
}

int pf_env_stop_broker(pf_env_t *env, int sig)
{
    return s_stop(env, "broker", &env->broker_pid[0], sig);
}

int pf_env_stop_broker_slot(pf_env_t *env, int slot, int sig)
{
    char what[32];
    snprintf(what, sizeof(what), "broker %d", slot);
    return s_stop(env, what, &env->broker_pid[slot], sig);
}

int pf_env_stop_reader(pf_env_t *env, int sig)
{
    return s_stop(env, "reader", &env->reader_pid, sig);
}

/* A child that died is reaped here and forgotten, so its pid (which the
 * system may hand out again) is never signalled later. */
static bool s_alive(pid_t *pid)
{
    if (*pid <= 0)
        return false;
    int status;
    if (waitpid(*pid, &status, WNOHANG) == 0)
        return true;
    *pid = -1;
    return false;
}

bool pf_env_broker_alive(pf_env_t *env)
{
    return s_alive(&env->broker_pid[0]);
}

bool pf_env_broker_slot_alive(pf_env_t *env, int slot)
{
    return s_alive(&env->broker_pid[slot]);
}

long pf_env_rss_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *st = pf_test_read_file(path, NULL);
    if (st == NULL)
        return -1;
    const char *v = strstr(st, "VmRSS:");
    long kb = v ? strtol(v + 6, NULL, 10) : -1;
    free(st);
    return kb;
}

bool pf_env_reader_alive(pf_env_t *env)
{
    return s_alive(&env->reader_pid);
}

char *pf_env_token(pf_env_t *env, const char *citizen)
{
    char *out = NULL;
    if (pf_env_ctl(env, &out, "token", citizen, NULL) != 0) {
        free(out);
        return NULL;
    }
    size_t n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
    return out;
}

/* The test's own connection survives a database restart: a query that
 * fails on a connection that is gone is tried once more on a new one. */
static PGresult *s_db_exec(pf_env_t *env, const char *sql)
{
    if (PQstatus(env->db) != CONNECTION_OK)
        PQreset(env->db);
    PGresult *r = PQexec(env->db, sql);
    ExecStatusType t = PQresultStatus(r);
    if (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK &&
        (PQstatus(env->db) != CONNECTION_OK || PQconsumeInput(env->db) == 0)) {
        PQclear(r);
        PQreset(env->db);
        r = PQexec(env->db, sql);
    }
    return r;
}

int pf_env_sql_rows(pf_env_t *env, const char *sql,
                    void (*row)(void *arg, int ncols, const char *const *values), void *arg)
{
    PGresult *r = s_db_exec(env, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "harness: sql failed: %s", PQerrorMessage(env->db));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r), nc = PQnfields(r);
    const char *vals[32];
    if (nc > 32)
        nc = 32;
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < nc; c++)
            vals[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
        row(arg, nc, vals);
    }
    PQclear(r);
    return n;
}

int pf_env_make_login(pf_env_t *env, const char *prefix, const char *kind, char login[48],
                      char conn[512])
{
    char pw[600];
    snprintf(pw, sizeof(pw), "%s/db_password", pf_env_dir(env));
    FILE *fp = fopen(pw, "w");
    if (fp == NULL || fputs("pf-test-password\n", fp) < 0 || fclose(fp) != 0) {
        fprintf(stderr, "harness: cannot write %s\n", pw);
        return -1;
    }
    snprintf(login, 48, "%s_%s_%ld", prefix, kind, (long)getpid());
    char *out = NULL;
    int rc = pf_env_ctl(env, &out, "role", "login", login, kind, "--password-file", pw, NULL);
    free(out);
    if (rc != 0) {
        fprintf(stderr, "harness: postfach-ctl role login %s %s failed\n", login, kind);
        return -1;
    }
    /* the conninfo's user=postgres is overridden by the later user= */
    snprintf(conn, 512, "%s user=%s", pf_env_conninfo(env), login);
    return 0;
}

void pf_env_drop_login(pf_env_t *env, const char *login)
{
    char sql[128], state[6];
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", login);
    (void)pf_env_sql_state(env, sql, state);
}

int pf_env_sql_state(pf_env_t *env, const char *sql, char state[6])
{
    PGresult *r = s_db_exec(env, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    snprintf(state, 6, "%s", ok ? "00000" : code ? code : "?????");
    PQclear(r);
    if (PQtransactionStatus(env->db) != PQTRANS_IDLE)
        PQclear(PQexec(env->db, "ROLLBACK"));
    return ok ? 0 : -1;
}

struct pf_env_session {
    PGconn *conn;
};

pf_env_session_t *pf_env_session_new(pf_env_t *env)
{
    PGconn *c = PQconnectdb(env->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot open a session: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    pf_env_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->conn = c;
    return s;
}

int pf_env_session_exec(pf_env_session_t *s, const char *sql)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType t = PQresultStatus(r);
    int ok = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "harness: session sql failed: %s", PQerrorMessage(s->conn));
    PQclear(r);
    return ok ? 0 : -1;
}

void pf_env_session_destroy(pf_env_session_t **sp)
{
    if (*sp == NULL)
        return;
    PQfinish((*sp)->conn);
    free(*sp);
    *sp = NULL;
}

char *pf_env_sql(pf_env_t *env, const char *sql)
{
    PGresult *r = s_db_exec(env, sql);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strdup(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "harness: sql failed: %s", PQerrorMessage(env->db));
    PQclear(r);
    return v;
}

long long pf_env_sql_int(pf_env_t *env, const char *sql)
{
    char *v = pf_env_sql(env, sql);
    long long n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

int pf_env_listen(pf_env_t *env, const char *channel)
{
    char *id = PQescapeIdentifier(env->db, channel, strlen(channel));
    if (id == NULL)
        return -1;
    char sql[256];
    snprintf(sql, sizeof(sql), "LISTEN %s", id);
    PQfreemem(id);
    PGresult *r = PQexec(env->db, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(r);
    return rc;
}

int pf_env_notifications_split(pf_env_t *env, int wait_ms, int enough, const char *payload,
                               int *other_r)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = 0;
    if (other_r != NULL)
        *other_r = 0;
    for (;;) {
        if (PQconsumeInput(env->db) == 0)
            return -1;
        PGnotify *nt;
        while ((nt = PQnotifies(env->db)) != NULL) {
            if (payload == NULL || strcmp(nt->extra, payload) == 0)
                n++;
            else if (other_r != NULL)
                (*other_r)++;
            PQfreemem(nt);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = wait_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (n >= enough || left <= 0)
            return n;
        struct pollfd pfd = {.fd = PQsocket(env->db), .events = POLLIN};
        poll(&pfd, 1, (int)left);
    }
}

int pf_env_notifications(pf_env_t *env, int wait_ms, int enough)
{
    return pf_env_notifications_split(env, wait_ms, enough, NULL, NULL);
}

/* --- HTTP ----------------------------------------------------------------- */

void pf_http_response_clear(pf_http_response_t *resp)
{
    free(resp->content_type);
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof(*resp));
}

char *pf_http_headers_except(const pf_http_response_t *resp, const char *const *omit)
{
    const char *h = resp->headers ? resp->headers : "";
    char *out = malloc(strlen(h) + 1);
    size_t o = 0;
    while (*h) {
        const char *eol = strstr(h, "\r\n");
        size_t len = eol ? (size_t)(eol - h) + 2 : strlen(h);
        bool skip = false;
        for (size_t i = 0; omit && omit[i]; i++) {
            size_t n = strlen(omit[i]);
            skip |= strncasecmp(h, omit[i], n) == 0 && h[n] == ':';
        }
        if (!skip) {
            memcpy(out + o, h, len);
            o += len;
        }
        h += len;
    }
    out[o] = '\0';
    return out;
}

static int s_parse_response(const char *raw, size_t len, pf_http_response_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    const char *hend = memmem(raw, len, "\r\n\r\n", 4);
    if (hend == NULL || len < 12 || strncmp(raw, "HTTP/1.", 7) != 0)
        return -1;
    resp->status = atoi(raw + 9);
    resp->headers = strndup(raw, (size_t)(hend - raw) + 2);
    bool chunked = false;
    for (const char *line = strstr(raw, "\r\n") + 2; line < hend;) {
        const char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, "Content-Type:", 13) == 0) {
            const char *v = line + 13;
            while (*v == ' ')
                v++;
            resp->content_type = strndup(v, (size_t)(eol - v));
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
                   strstr(line, "chunked") != NULL && strstr(line, "chunked") < eol) {
            chunked = true;
        }
        line = eol + 2;
    }
    const char *body = hend + 4;
    size_t blen = len - (size_t)(body - raw);
    if (!chunked) {
        resp->body = malloc(blen + 1);
        memcpy(resp->body, body, blen);
        resp->body[blen] = '\0';
        resp->body_len = blen;
        return 0;
    }
    resp->body = malloc(blen + 1);
    size_t o = 0;
    const char *p = body, *end = body + blen;
    while (p < end) {
        char *e;
        unsigned long n = strtoul(p, &e, 16);
        const char *crlf = strstr(p, "\r\n");
        if (crlf == NULL || n == 0)
            break;
        p = crlf + 2;
        if ((size_t)(end - p) < n)
            n = (unsigned long)(end - p);
        memcpy(resp->body + o, p, n);
        o += n;
        p += n + 2;
    }
    resp->body[o] = '\0';
    resp->body_len = o;
    return 0;
}

int pf_http_raw(int port, const void *request, size_t len, int timeout_ms,
                pf_http_response_t *resp_r)
{
    memset(resp_r, 0, sizeof(*resp_r));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    const char *p = request;
    size_t left = len;
    while (left > 0) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may close early on bad input: read what it said */
        p += n;
        left -= (size_t)n;
    }
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    int64_t end = pf_test_now_ms() + timeout_ms;
    for (;;) {
        int wait = (int)(end - pf_test_now_ms());
        if (wait <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, wait) <= 0)
            break;
        if (got + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    int rc = s_parse_response(buf, got, resp_r);
    free(buf);
    return rc;
}

int pf_http_get(int port, const char *path, const char *bearer, pf_http_response_t *resp_r)
{
    char *req;
    if (bearer)
        req = s_strdup_printf("GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                              "%s\r\nConnection: close\r\n\r\n",
                              path, bearer);
    else
        req = s_strdup_printf("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                              path);
    int rc = pf_http_raw(port, req, strlen(req), 15000, resp_r);
    free(req);
    return rc;
}

bool pf_env_broker_slot_reap(pf_env_t *env, int slot, int *status_r)
{
    *status_r = -1;
    if (slot < 0 || slot >= PF_ENV_MAX_BROKERS || env->broker_pid[slot] <= 0)
        return false;
    int status;
    if (waitpid(env->broker_pid[slot], &status, WNOHANG) == 0)
        return true;
    env->broker_pid[slot] = -1;
    *status_r = status;
    return false;
}

char *pf_env_broker_log(const pf_env_t *env, int slot)
{
    char *path = slot == 0 ? s_strdup_printf("%s/broker.log", env->dir)
                           : s_strdup_printf("%s/broker-%d.log", env->dir, slot);
    char *log = pf_test_read_file(path, NULL);
    free(path);
    return log;
}
