/* PostgreSQL connection handling and migrations.
 *
 * Callers: every daemon thread and postfach-ctl own one pf_store_t each
 * (libpq connections are not shared between threads).
 * Invariants: every PGresult is cleared on every path; SQL uses parameters
 * only; error text never contains parameter values (they may be personal
 * data), only libpq's message about the statement. */
#include "store/store_private.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h> /* program_invocation_short_name */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

const char *pf_store_fail(pf_store_t *st, const char *what, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(st->conn);
    if (msg == NULL || *msg == '\0')
        msg = "unknown error";
    snprintf(st->err, sizeof(st->err), "%s: %s", what, msg);
    /* one line: libpq messages end in a newline and may hold DETAIL lines */
    for (char *p = st->err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = (p[1] == '\0') ? '\0' : ' ';
    size_t n = strlen(st->err);
    while (n > 0 && st->err[n - 1] == ' ')
        st->err[--n] = '\0';
    return st->err;
}

const char *pf_store_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* Forgets the statements prepared on the connection (closed or reset:
 * the server has dropped them). */
static void s_prepared_clear(pf_store_t *st)
{
    for (int i = 0; i < st->nprepared; i++)
        free(st->prepared[i].sql);
    memset(st->prepared, 0, sizeof(st->prepared));
    st->nprepared = 0;
}

/* The name of sql prepared on this connection, preparing it on first use.
 * NULL with *failed_r NULL: run the text instead (the cache is full, or
 * the transaction has failed and the statement will report that).  NULL
 * with *failed_r: the server refused the statement; that is its answer. */
static const char *s_prepared_name(pf_store_t *st, const char *sql, int nparams,
                                   PGresult **failed_r)
{
    *failed_r = NULL;
    for (int i = 0; i < st->nprepared; i++)
        if (strcmp(st->prepared[i].sql, sql) == 0)
            return st->prepared[i].name;
    if (st->nprepared == PF_STORE_PREPARED_MAX || PQtransactionStatus(st->conn) == PQTRANS_INERROR)
        return NULL;
    pf_prepared_t *p = &st->prepared[st->nprepared];
    snprintf(p->name, sizeof(p->name), "pf_q%u", st->prepared_seq++);
    PGresult *res = PQprepare(st->conn, p->name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *failed_r = res;
        return NULL;
    }
    PQclear(res);
    p->sql = xstrdup(sql);
    st->nprepared++;
    return p->name;
}

/* Forgets one prepared statement (and drops it on the server when it is
 * still there; best effort). */
static void s_prepared_forget(pf_store_t *st, const char *name)
{
    for (int i = 0; i < st->nprepared; i++) {
        if (strcmp(st->prepared[i].name, name) != 0)
            continue;
        if (PQtransactionStatus(st->conn) == PQTRANS_IDLE) {
            char sql[48];
            snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
            PQclear(PQexec(st->conn, sql));
        }
        free(st->prepared[i].sql);
        st->prepared[i] = st->prepared[--st->nprepared];
        memset(&st->prepared[st->nprepared], 0, sizeof(st->prepared[0]));
        return;
    }
}

PGresult *pf_store_run(pf_store_t *st, const char *sql, int nparams, const char *const *values,
                       const int *lengths, const int *formats, int result_format)
{
    PGresult *failed;
    const char *name = s_prepared_name(st, sql, nparams, &failed);
    if (failed != NULL)
        return failed;
    if (name == NULL)
        return PQexecParams(st->conn, sql, nparams, NULL, values, lengths, formats, result_format);
    PGresult *res =
        PQexecPrepared(st->conn, name, nparams, values, lengths, formats, result_format);
    /* A prepared statement can go stale under us: a migration changed the
     * type of a column it returns ("cached plan must not change result
     * type", 0A000), or something dropped it (DEALLOCATE, DISCARD: 26000).
     * Kept, it would fail on every call on this connection; forgotten, the
     * next call prepares it afresh.  Outside a transaction this call is
     * run again as text at once; inside one the transaction has failed
     * and the caller sees the error (its retry prepares anew). */
    const char *state = pf_store_sqlstate(res);
    if (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0) {
        char stale[sizeof(st->prepared[0].name)];
        snprintf(stale, sizeof(stale), "%s", name);
        if (strcmp(state, "26000") == 0)
            s_prepared_clear(st); /* all of them went, most likely */
        else
            s_prepared_forget(st, stale);
        if (PQtransactionStatus(st->conn) == PQTRANS_IDLE) {
            PQclear(res);
            res =
                PQexecParams(st->conn, sql, nparams, NULL, values, lengths, formats, result_format);
        }
    }
    return res;
}

PGresult *pf_store_query_bin(pf_store_t *st, const char *what, const char *sql, int nparams,
                             const char *const *values, const int *lengths, const int *formats,
                             const char **error_r)
{
    PGresult *res = pf_store_run(st, sql, nparams, values, lengths, formats, 0);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        *error_r = pf_store_fail(st, what, res);
        /* keep the SQLSTATE reachable for callers that look for 23505 etc. */
        PQclear(res);
        return NULL;
    }
    return res;
}

PGresult *pf_store_query(pf_store_t *st, const char *what, const char *sql, int nparams,
                         const char *const *values, const char **error_r)
{
    return pf_store_query_bin(st, what, sql, nparams, values, NULL, NULL, error_r);
}

/* Copies the characters of src that need no quoting in SQL (letters,
 * digits, '.', '_', '-'; others become '_') into dst, at most size - 1. */
static size_t s_name_part(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (const char *p = src; p && *p && n + 1 < size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        dst[n++] = ok ? c : '_';
    }
    dst[n] = '\0';
    return n;
}

/* Every session is named after the program that opened it
 * (postfach-broker, postfach-reader, postfach-ctl, postfach-bench), and
 * after its role when it has one (postfach-broker/commit), so that
 * pg_stat_activity tells an operator whose session holds a lock or runs
 * a long query, and the bench can tell whose work PostgreSQL's CPU time
 * was (scripts/bench.sh). */
static void s_session_setup(PGconn *conn, const char *role)
{
    char name[64];
    if (s_name_part(name, 40, program_invocation_short_name) == 0)
        snprintf(name, sizeof(name), "postfach");
    if (role[0] != '\0') {
        size_t n = strlen(name);
        name[n++] = '/';
        s_name_part(name + n, sizeof(name) - n, role);
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "SET application_name = '%s'; SET TIME ZONE 'UTC'", name);
    PQclear(PQexec(conn, sql));
}

int pf_store_open(const char *conninfo, pf_store_t **st_r, const char **error_r)
{
    return pf_store_open_as(conninfo, "", st_r, error_r);
}

int pf_store_open_as(const char *conninfo, const char *role, pf_store_t **st_r,
                     const char **error_r)
{
    static __thread char errbuf[512];
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        snprintf(errbuf, sizeof(errbuf), "cannot connect to the database: %s",
                 conn ? PQerrorMessage(conn) : "out of memory");
        pf_str_rtrim(errbuf);
        PQfinish(conn);
        *error_r = errbuf;
        return -1;
    }
    pf_store_t *st = xcalloc(1, sizeof(*st));
    st->conn = conn;
    st->conninfo = xstrdup(conninfo);
    s_name_part(st->role, sizeof(st->role), role);
    s_session_setup(conn, st->role);
    *st_r = st;
    return 0;
}

void pf_store_destroy(pf_store_t **stp)
{
    pf_store_t *st = *stp;
    if (st == NULL)
        return;
    PQfinish(st->conn);
    s_prepared_clear(st);
    free(st->conninfo);
    free(st);
    *stp = NULL;
}

bool pf_store_broken(pf_store_t *st)
{
    if (PQstatus(st->conn) != CONNECTION_OK)
        return true;
    /* after a server crash the first failed query leaves the status at
     * CONNECTION_OK (libpq notices only on the next read): reading what is
     * there, without blocking, finds the end of the stream now */
    return PQconsumeInput(st->conn) == 0 || PQstatus(st->conn) != CONNECTION_OK;
}

int pf_store_reconnect(pf_store_t *st, const char **error_r)
{
    PQreset(st->conn);
    s_prepared_clear(st);
    if (PQstatus(st->conn) != CONNECTION_OK) {
        *error_r = pf_store_fail(st, "cannot reconnect to the database", NULL);
        return -1;
    }
    s_session_setup(st->conn, st->role);
    return 0;
}

int pf_store_socket(pf_store_t *st)
{
    return PQsocket(st->conn);
}

int pf_store_exec(pf_store_t *st, const char *sql, const char **error_r)
{
    PGresult *res = PQexec(st->conn, sql);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        *error_r = pf_store_fail(st, "statement failed", res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Migration files are named NNNN_what.sql; returns NNNN or -1. */
static int s_migration_version(const char *name)
{
    size_t n = strlen(name);
    if (n < 10 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v > 0 ? v : -1;
}

static int s_apply(pf_store_t *st, const char *path, int version, const char *name, int *applied,
                   const char **error_r)
{
    char *sql = NULL;
    const char *ferr;
    if (pf_file_read(path, 16 * 1024 * 1024, &sql, NULL, &ferr) != 0) {
        snprintf(st->err, sizeof(st->err), "cannot read migration \"%s\": %s", path, ferr);
        *error_r = st->err;
        return -1;
    }
    if (pf_store_exec(st, "BEGIN", error_r) != 0) {
        free(sql);
        return -1;
    }
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", version);
    const char *params[2] = {vbuf, name};
    /* serialise concurrent migrators, then check again under the lock: in a
     * statement of its own, whose snapshot is taken after the wait (the
     * statement that waits sees nothing another migrator commits meanwhile) */
    PGresult *res = pf_store_query(st, "cannot lock migrations",
                                   "SELECT pg_advisory_xact_lock(7041)", 0, NULL, error_r);
    if (res == NULL)
        goto fail;
    PQclear(res);
    res = pf_store_query(st, "cannot read migrations",
                         "SELECT EXISTS (SELECT 1 FROM schema_migration WHERE version = $1)", 1,
                         params, error_r);
    if (res == NULL)
        goto fail;
    bool done = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!done) {
        res = PQexec(st->conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            char what[300];
            snprintf(what, sizeof(what), "migration \"%s\" failed", name);
            *error_r = pf_store_fail(st, what, res);
            PQclear(res);
            goto fail;
        }
        PQclear(res);
        res = pf_store_query(st, "cannot record migration",
                             "INSERT INTO schema_migration (version, name) VALUES ($1, $2)", 2,
                             params, error_r);
        if (res == NULL)
            goto fail;
        PQclear(res);
    }
    if (pf_store_exec(st, "COMMIT", error_r) != 0)
        goto fail;
    if (!done)
        (*applied)++;
    free(sql);
    return 0;
fail:
    free(sql);
    PQclear(PQexec(st->conn, "ROLLBACK"));
    return -1;
}

int pf_store_migrate(pf_store_t *st, const char *sql_dir, int *applied_r, const char **error_r)
{
    *applied_r = 0;
    if (pf_store_exec(st,
                      "SET client_min_messages = warning;"
                      "CREATE TABLE IF NOT EXISTS schema_migration ("
                      " version integer PRIMARY KEY, name text NOT NULL,"
                      " applied_at timestamptz NOT NULL DEFAULT now())",
                      error_r) != 0)
        return -1;
    DIR *d = opendir(sql_dir);
    if (d == NULL) {
        snprintf(st->err, sizeof(st->err), "cannot open migration directory \"%s\"", sql_dir);
        *error_r = st->err;
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (s_migration_version(e->d_name) < 0)
            continue;
        names = xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), s_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = xasprintf("%s/%s", sql_dir, names[i]);
        rc = s_apply(st, path, s_migration_version(names[i]), names[i], applied_r, error_r);
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int pf_store_schema_version(pf_store_t *st, int *version_r, const char **error_r)
{
    PGresult *res =
        pf_store_query(st, "cannot read schema version",
                       "SELECT coalesce(max(version), 0) FROM schema_migration", 0, NULL, error_r);
    if (res == NULL)
        return -1;
    *version_r = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int pf_store_check_durability(pf_store_t *st, const char **error_r)
{
    PGresult *res =
        pf_store_query(st, "cannot read server settings",
                       "SELECT name, setting FROM pg_settings WHERE name IN "
                       "('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY name",
                       0, NULL, error_r);
    if (res == NULL)
        return -1;
    int bad = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0), *val = PQgetvalue(res, i, 1);
        /* synchronous_commit "local" or stronger still flushes the local WAL */
        bool ok = strcmp(name, "synchronous_commit") == 0 ? strcmp(val, "off") != 0
                                                          : strcmp(val, "on") == 0;
        if (!ok && !bad) {
            snprintf(st->err, sizeof(st->err),
                     "unsafe database setting %s = \"%s\": an acknowledged notice could be lost",
                     name, val);
            bad = 1;
        }
    }
    PQclear(res);
    if (bad) {
        *error_r = st->err;
        return -1;
    }
    return 0;
}

void pf_store_array_elem(pf_buf_t *b, const char *s, bool first)
{
    pf_buf_puts(b, first ? "\"" : ",\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            pf_buf_append(b, "\\", 1);
        pf_buf_append(b, s, 1);
    }
    pf_buf_puts(b, "\"");
}

void pf_store_array_literal(pf_buf_t *b, const char *const *items, size_t n)
{
    pf_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++)
        pf_store_array_elem(b, items[i], i == 0);
    pf_buf_puts(b, "}");
}

void pf_store_int_array_literal(pf_buf_t *b, const int64_t *items, size_t n)
{
    pf_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++)
        pf_buf_printf(b, "%s%lld", i ? "," : "", (long long)items[i]);
    pf_buf_puts(b, "}");
}
