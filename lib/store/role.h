#ifndef PF_STORE_ROLE_H
#define PF_STORE_ROLE_H
/* Database logins for the daemons (sql/0008_roles.sql): postfach-ctl
 * gives a broker, reader or administration instance a login of its own in
 * the matching group, so a deployment (docker-compose.yml) never runs a
 * daemon as the database owner; and the job that ships the audit one in
 * postfach_auditor (sql/0021), which reads the audit and nothing else. */
#include "store/store.h"

/* Creates the login role `login` in `group` (postfach_broker,
 * postfach_reader, postfach_admin or postfach_auditor) with password, or,
 * when it exists, sets its password and takes away every attribute beyond
 * LOGIN and INHERIT.  The password is hashed here (SCRAM, the server's
 * password_encryption), so it never reaches the server or its log in
 * clear.  Refuses a superuser, a group name and a name outside
 * [a-z_][a-z0-9_]{0,62}; the connection needs CREATEROLE (the owner
 * running the migrations has it).  0, or -1 with *error_r. */
int pf_store_role_login(pf_store_t *st, const char *login, const char *group, const char *password,
                        const char **error_r);

#endif
