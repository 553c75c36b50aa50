/* postfach-ctl: administration of a Postfach installation.
 * Parses the command line and calls lib/admin.  Results go to stdout,
 * diagnostics to stderr.  Exit codes: 0 done, 1 failed, 2 usage. */
#include "util/jsonwipe.h"
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fputs("usage: postfach-ctl [--db CONNINFO] [--keys DIR] COMMAND ...\n"
          "\n"
          "commands:\n"
          "  migrate [--sql-dir DIR]           apply database migrations (default dir: sql)\n"
          "  keys init [--no-dev-idp]          create service keys in the key directory\n"
          "                                    (--no-dev-idp: no development identity key)\n"
          "  role login NAME broker|reader|admin --password-file FILE\n"
          "                                    create or update a daemon's database login\n"
          "  sender add NAME                   register a procedure, write its CURVE key file\n"
          "  sender list\n"
          "  sender revoke NAME                refuse the sender from now on\n"
          "  sender rotate-key NAME            give the sender a new CURVE key\n"
          "  sender allow NAME PATTERN         limit a sender to mailbox ids (exact or prefix*)\n"
          "  sender disallow NAME PATTERN\n"
          "  sender allowed NAME               list the allowlist (none: every mailbox)\n"
          "  citizen add ID [--key-type p256|rsa3072|rsa4096] [--public-jwk FILE]\n"
          "  citizen rotate-key ID [--key-type TYPE]\n"
          "  citizen public-key ID             print the mailbox's current public JWK\n"
          "  citizen export-key ID [--version N]  print the private JWK (needs the KEK)\n"
          "  kek rotate [--id ID] [--no-rewrap] new current KEK, rewrap every stored key\n"
          "  kek rewrap                        finish an interrupted rotation\n"
          "  kek retire ID                     drop an old KEK that no key uses any more\n"
          "  kek status\n"
          "  token ID [--level normal|substantiell|hoch] [--ttl SECONDS]\n"
          "                                    mint a development identity token\n"
          "  receipt verify [FILE|-] [--jwks FILE]\n"
          "\n"
          "--db defaults to $POSTFACH_DB, else \"dbname=postfach\";\n"
          "--keys defaults to $POSTFACH_KEYS, else \"var/keys\".\n",
          out);
}

/* Finds "--name VALUE" among argv[from..]; returns VALUE or def. */
static const char *s_opt(int argc, char **argv, int from, const char *name, const char *def)
{
    for (int i = from; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

/* The first argument at or after from that is not an option or its value. */
static const char *s_arg(int argc, char **argv, int from)
{
    for (int i = from; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            i++;
            continue;
        }
        return argv[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pf_json_wipe_init();
    pf_admin_ctx_t ctx = {0};
    ctx.db = getenv("POSTFACH_DB") ? getenv("POSTFACH_DB") : "dbname=postfach";
    ctx.keys = getenv("POSTFACH_KEYS") ? getenv("POSTFACH_KEYS") : "var/keys";
    ctx.out = stdout;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            ctx.db = argv[++i];
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            ctx.keys = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else
            break;
    }
    if (i >= argc) {
        s_usage(stderr);
        return 2;
    }
    const char *cmd = argv[i], *sub = i + 1 < argc ? argv[i + 1] : "";
    const char *err = NULL;
    int rc = -2;

    if (strcmp(cmd, "migrate") == 0) {
        rc = pf_admin_migrate(&ctx, s_opt(argc, argv, i + 1, "--sql-dir", "sql"), &err);
    } else if (strcmp(cmd, "keys") == 0 && strcmp(sub, "init") == 0) {
        bool no_dev_idp = i + 2 < argc && strcmp(argv[i + 2], "--no-dev-idp") == 0;
        if (argc == i + 2 + (no_dev_idp ? 1 : 0))
            rc = pf_admin_keys_init(&ctx, !no_dev_idp, &err);
    } else if (strcmp(cmd, "role") == 0 && strcmp(sub, "login") == 0 && i + 3 < argc) {
        const char *pwfile = s_opt(argc, argv, i + 4, "--password-file", NULL);
        if (pwfile != NULL && strncmp(argv[i + 2], "--", 2) != 0 &&
            strncmp(argv[i + 3], "--", 2) != 0)
            rc = pf_admin_role_login(&ctx, argv[i + 2], argv[i + 3], pwfile, &err);
    } else if (strcmp(cmd, "sender") == 0) {
        const char *name = s_arg(argc, argv, i + 2);
        if (strcmp(sub, "list") == 0)
            rc = pf_admin_sender_list(&ctx, &err);
        else if (name == NULL)
            rc = -2;
        else if (strcmp(sub, "add") == 0)
            rc = pf_admin_sender_add(&ctx, name, &err);
        else if (strcmp(sub, "revoke") == 0)
            rc = pf_admin_sender_revoke(&ctx, name, &err);
        else if (strcmp(sub, "rotate-key") == 0)
            rc = pf_admin_sender_rotate_key(&ctx, name, &err);
        else if (strcmp(sub, "allowed") == 0)
            rc = pf_admin_sender_allowed(&ctx, name, &err);
        else if ((strcmp(sub, "allow") == 0 || strcmp(sub, "disallow") == 0) &&
                 i + 3 < argc)
            rc = strcmp(sub, "allow") == 0
                     ? pf_admin_sender_allow(&ctx, name, argv[i + 3], &err)
                     : pf_admin_sender_disallow(&ctx, name, argv[i + 3], &err);
    } else if (strcmp(cmd, "citizen") == 0) {
        const char *id = s_arg(argc, argv, i + 2);
        const char *type = s_opt(argc, argv, i + 2, "--key-type", "p256");
        if (id == NULL)
            rc = -2;
        else if (strcmp(sub, "add") == 0)
            rc = pf_admin_citizen_add(&ctx, id, type,
                                      s_opt(argc, argv, i + 2, "--public-jwk", NULL), &err);
        else if (strcmp(sub, "rotate-key") == 0)
            rc = pf_admin_citizen_rotate_key(&ctx, id, type, &err);
        else if (strcmp(sub, "public-key") == 0)
            rc = pf_admin_citizen_public_key(&ctx, id, &err);
        else if (strcmp(sub, "export-key") == 0)
            rc = pf_admin_citizen_export_key(
                &ctx, id, atoi(s_opt(argc, argv, i + 2, "--version", "0")), &err);
    } else if (strcmp(cmd, "kek") == 0) {
        if (strcmp(sub, "rotate") == 0)
            {
            bool rewrap = true;
            for (int k = i + 2; k < argc; k++)
                if (strcmp(argv[k], "--no-rewrap") == 0)
                    rewrap = false;
            rc = pf_admin_kek_rotate(&ctx, s_opt(argc, argv, i + 2, "--id", NULL), rewrap, &err);
        }
        else if (strcmp(sub, "rewrap") == 0)
            rc = pf_admin_kek_rewrap(&ctx, &err);
        else if (strcmp(sub, "status") == 0)
            rc = pf_admin_kek_status(&ctx, &err);
        else if (strcmp(sub, "retire") == 0 && s_arg(argc, argv, i + 2) != NULL)
            rc = pf_admin_kek_retire(&ctx, s_arg(argc, argv, i + 2), &err);
    } else if (strcmp(cmd, "token") == 0) {
        const char *id = s_arg(argc, argv, i + 1);
        int ttl = atoi(s_opt(argc, argv, i + 1, "--ttl", "3600"));
        if (id != NULL && ttl > 0)
            rc = pf_admin_token(&ctx, id, s_opt(argc, argv, i + 1, "--level", "normal"), ttl,
                                &err);
    } else if (strcmp(cmd, "receipt") == 0 && strcmp(sub, "verify") == 0) {
        rc = pf_admin_receipt_verify(&ctx, s_arg(argc, argv, i + 2),
                                     s_opt(argc, argv, i + 2, "--jwks", NULL), &err);
    }

    if (rc == -2) {
        s_usage(stderr);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "postfach-ctl: %s\n", err ? err : "failed");
        return 1;
    }
    return 0;
}
