/* Logins for the daemons' groups; see role.h. */
#include "store/role.h"
#include "store/store_private.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_fail(pf_store_t *st, const char **error_r, const char *msg)
{
    snprintf(st->err, sizeof(st->err), "%s", msg);
    *error_r = st->err;
    return -1;
}

static bool s_valid_login(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || strncmp(s, "pg_", 3) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static bool s_is_group(const char *s)
{
    return strcmp(s, "postfach_broker") == 0 || strcmp(s, "postfach_reader") == 0 ||
           strcmp(s, "postfach_admin") == 0 || strcmp(s, "postfach_auditor") == 0;
}

/* Appends "; REVOKE role FROM login" (both quoted by libpq). */
static int s_append_revoke(pf_store_t *st, pf_buf_t *b, const char *role, const char *ident)
{
    char *r = PQescapeIdentifier(st->conn, role, strlen(role));
    if (r == NULL)
        return -1;
    pf_buf_printf(b, "; REVOKE %s FROM %s", r, ident);
    PQfreemem(r);
    return 0;
}

/* One statement list: the login with exactly LOGIN and INHERIT, the SCRAM
 * verifier, membership in group and in no other role. */
static int s_apply(pf_store_t *st, bool exists, const char *login, const char *group, bool member,
                   const char *others, const char *verifier, const char **error_r)
{
    char *ident = PQescapeIdentifier(st->conn, login, strlen(login));
    char *lit = PQescapeLiteral(st->conn, verifier, strlen(verifier));
    char *grp = PQescapeIdentifier(st->conn, group, strlen(group));
    pf_buf_t b;
    pf_buf_init(&b);
    int rc = -1;
    if (ident == NULL || lit == NULL || grp == NULL) {
        *error_r = pf_store_fail(st, "cannot quote the login", NULL);
        goto out;
    }
    pf_buf_printf(&b,
                  "%s ROLE %s LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                  "NOBYPASSRLS PASSWORD %s",
                  exists ? "ALTER" : "CREATE", ident, lit);
    if (!member)
        pf_buf_printf(&b, "; GRANT %s TO %s", grp, ident);
    /* others: the roles it is a direct member of besides group, '\n'-separated */
    char *list = xstrdup(others), *save = NULL;
    for (char *r = strtok_r(list, "\n", &save); r != NULL; r = strtok_r(NULL, "\n", &save))
        if (s_append_revoke(st, &b, r, ident) != 0) {
            free(list);
            *error_r = pf_store_fail(st, "cannot quote a role", NULL);
            goto out;
        }
    free(list);
    rc = pf_store_exec(st, b.data, error_r);
out:
    pf_buf_free(&b, 1);
    if (lit != NULL)
        explicit_bzero(lit, strlen(lit));
    PQfreemem(ident);
    PQfreemem(lit);
    PQfreemem(grp);
    return rc;
}

int pf_store_role_login(pf_store_t *st, const char *login, const char *group, const char *password,
                        const char **error_r)
{
    if (!s_valid_login(login) || s_is_group(login))
        return s_fail(st, error_r,
                      "a login name is 1-63 of [a-z0-9_], starts with a letter or '_', "
                      "is not pg_... and not one of the groups");
    if (!s_is_group(group))
        return s_fail(st, error_r,
                      "the group is postfach_broker, postfach_reader, "
                      "postfach_admin or postfach_auditor");
    if (password == NULL || *password == '\0')
        return s_fail(st, error_r, "the password is empty");

    if (pf_store_exec(st, "BEGIN", error_r) != 0)
        return -1;
    const char *p[2] = {login, group};
    PGresult *r = pf_store_query(
        st, "cannot look up the roles",
        "SELECT (SELECT rolsuper::text FROM pg_roles WHERE rolname = $1),"
        " EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2),"
        " EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member"
        "         JOIN pg_roles g ON g.oid = m.roleid WHERE u.rolname = $1 AND g.rolname = $2),"
        " (SELECT coalesce(string_agg(g.rolname, E'\\n'), '') FROM pg_auth_members m"
        "  JOIN pg_roles u ON u.oid = m.member JOIN pg_roles g ON g.oid = m.roleid"
        "  WHERE u.rolname = $1 AND g.rolname <> $2)",
        2, p, error_r);
    if (r == NULL)
        goto fail;
    bool exists = !PQgetisnull(r, 0, 0);
    bool super = exists && strcmp(PQgetvalue(r, 0, 0), "true") == 0;
    bool group_there = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    bool member = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    char *others = xstrdup(PQgetvalue(r, 0, 3));
    PQclear(r);
    if (super || !group_there) {
        free(others);
        s_fail(st, error_r,
               super ? "that role is a superuser: give the daemon a login of its own"
                     : "the group does not exist: run postfach-ctl migrate first");
        goto fail;
    }
    /* NULL: the server's password_encryption (scram-sha-256 by default) */
    char *verifier = PQencryptPasswordConn(st->conn, password, login, NULL);
    if (verifier == NULL) {
        free(others);
        *error_r = pf_store_fail(st, "cannot hash the password", NULL);
        goto fail;
    }
    int rc = s_apply(st, exists, login, group, member, others, verifier, error_r);
    explicit_bzero(verifier, strlen(verifier));
    PQfreemem(verifier);
    free(others);
    if (rc != 0)
        goto fail;
    return pf_store_exec(st, "COMMIT", error_r);
fail:;
    const char *ignored;
    (void)pf_store_exec(st, "ROLLBACK", &ignored);
    return -1;
}
