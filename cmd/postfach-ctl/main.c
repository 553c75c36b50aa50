/* postfach-ctl: administration of a Postfach installation.
 * Parses the command line and calls lib/admin.  Results go to stdout,
 * diagnostics to stderr.  Exit codes: 0 done, 1 failed, 2 usage (also for
 * an unknown option, an option without its value, a stray argument). */
#include "util/digits.h"
#include "util/jsonwipe.h"
#include "admin/admin.h"
#include "admin/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
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
          "  role login NAME broker|reader|admin|auditor --password-file FILE\n"
          "                                    create or update a daemon's database login\n"
          "  sender add NAME                   register a procedure, write its CURVE key file\n"
          "  sender list\n"
          "  sender receipts                   per sender: receipts not yet acknowledged,\n"
          "                                    of them sent, the most attempts\n"
          "  sender revoke NAME                refuse the sender from now on\n"
          "  sender rotate-key NAME            give the sender a new CURVE key\n"
          "  sender allow NAME PATTERN         limit a sender to mailbox ids (exact or prefix*)\n"
          "  sender disallow NAME PATTERN [--allow-all]\n"
          "                                    remove an entry; the last one only with\n"
          "                                    --allow-all (no entries: every mailbox)\n"
          "  sender allowed NAME               list the allowlist (none: every mailbox)\n"
          "  citizen add ID [--key-type p256|rsa3072|rsa4096] [--public-jwk FILE]\n"
          "  citizen rotate-key ID [--key-type TYPE | --public-jwk FILE]\n"
          "                                    next key version, by default of the current key's\n"
          "                                    type; a citizen-held key needs --public-jwk\n"
          "  citizen public-key ID             print the mailbox's current public JWK\n"
          "  citizen export-key ID [--version N]  print the private JWK (needs the KEK)\n"
          "  kek rotate [--id ID] [--no-rewrap] new current KEK, rewrap every stored key\n"
          "  kek rewrap                        finish an interrupted rotation\n"
          "  kek retire ID                     drop an old KEK that no key uses any more\n"
          "  kek status\n"
          "  token ID [--level normal|substantiell|hoch] [--ttl SECONDS]\n"
          "                                    mint a development identity token\n"
          "  receipt verify [FILE|-] [--jwks FILE]\n"
          "  audit export [--after ID] [--limit N]\n"
          "                                    print the administration's audit after id ID as\n"
          "                                    JSON lines, oldest first (needs a login in the\n"
          "                                    auditor group, or the owner)\n"
          "  audit export --state FILE [--limit N]\n"
          "                                    the same after the id in FILE, then FILE set to\n"
          "                                    the last id printed (for a shipping timer)\n"
          "  audit verify                      recompute the audit's hash chain\n"
          "\n"
          "--db defaults to $POSTFACH_DB, else \"dbname=postfach\";\n"
          "--keys defaults to $POSTFACH_KEYS, else \"var/keys\".\n"
          "exit status: 0 done, 1 failed, 2 usage error (also an unknown option, an option\n"
          "without its value, or an argument too many: nothing is done then).\n",
          out);
}

/* One option a command accepts; value is set by s_parse when it is given
 * ("" for a flag). */
typedef struct {
    const char *name;
    bool has_value;
    const char *value;
} s_opt_t;

#define S_POS_MAX 3

/* Splits argv[from..] into the options of opts and positional arguments
 * (at most S_POS_MAX, stored in pos).  Returns the positional count, or -1
 * for an unknown option, an option given twice, an option without its
 * value (a value may not start with "--": `--public-jwk --key-type x` is a
 * mistake, not a file named --key-type), or too many positional arguments. */
static int s_parse(int argc, char **argv, int from, s_opt_t *opts, size_t nopts,
                   const char *pos[S_POS_MAX])
{
    int npos = 0;
    for (int k = from; k < argc; k++) {
        const char *a = argv[k];
        if (strncmp(a, "--", 2) != 0) {
            if (npos == S_POS_MAX)
                return -1;
            pos[npos++] = a;
            continue;
        }
        s_opt_t *o = NULL;
        for (size_t j = 0; j < nopts && o == NULL; j++)
            if (strcmp(opts[j].name, a) == 0)
                o = &opts[j];
        if (o == NULL) {
            fprintf(stderr, "postfach-ctl: unknown option \"%s\"\n", a);
            return -1;
        }
        if (o->value != NULL) {
            fprintf(stderr, "postfach-ctl: option %s given twice\n", a);
            return -1;
        }
        if (!o->has_value) {
            o->value = "";
            continue;
        }
        if (k + 1 >= argc || strncmp(argv[k + 1], "--", 2) == 0) {
            fprintf(stderr, "postfach-ctl: option %s needs a value\n", a);
            return -1;
        }
        o->value = argv[++k];
    }
    return npos;
}

/* A positive decimal number (no sign, no trailing text) below INT_MAX. */
static int s_number(const char *s, int *n_r)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0 || v > INT_MAX)
        return -1;
    *n_r = (int)v;
    return 0;
}

#define S_PARSE(from, opts) s_parse(argc, argv, from, opts, sizeof(opts) / sizeof(opts[0]), pos)
#define S_PARSE_NONE(from) s_parse(argc, argv, from, NULL, 0, pos)

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
    const char *err = NULL, *pos[S_POS_MAX] = {NULL, NULL, NULL};
    int rc = -2, n;

    if (strcmp(cmd, "migrate") == 0) {
        s_opt_t o[] = {{"--sql-dir", true, NULL}};
        if (S_PARSE(i + 1, o) == 0)
            rc = pf_admin_migrate(&ctx, o[0].value ? o[0].value : "sql", &err);
    } else if (strcmp(cmd, "keys") == 0 && strcmp(sub, "init") == 0) {
        s_opt_t o[] = {{"--no-dev-idp", false, NULL}};
        if (S_PARSE(i + 2, o) == 0)
            rc = pf_admin_keys_init(&ctx, o[0].value == NULL, &err);
    } else if (strcmp(cmd, "role") == 0 && strcmp(sub, "login") == 0) {
        s_opt_t o[] = {{"--password-file", true, NULL}};
        if (S_PARSE(i + 2, o) == 2 && o[0].value != NULL)
            rc = pf_admin_role_login(&ctx, pos[0], pos[1], o[0].value, &err);
    } else if (strcmp(cmd, "sender") == 0) {
        s_opt_t o[] = {{"--allow-all", false, NULL}};
        bool disallow = strcmp(sub, "disallow") == 0;
        n = disallow ? S_PARSE(i + 2, o) : S_PARSE_NONE(i + 2);
        if (strcmp(sub, "list") == 0 && n == 0)
            rc = pf_admin_sender_list(&ctx, &err);
        else if (strcmp(sub, "receipts") == 0 && n == 0)
            rc = pf_admin_sender_receipts(&ctx, &err);
        else if (strcmp(sub, "add") == 0 && n == 1)
            rc = pf_admin_sender_add(&ctx, pos[0], &err);
        else if (strcmp(sub, "revoke") == 0 && n == 1)
            rc = pf_admin_sender_revoke(&ctx, pos[0], &err);
        else if (strcmp(sub, "rotate-key") == 0 && n == 1)
            rc = pf_admin_sender_rotate_key(&ctx, pos[0], &err);
        else if (strcmp(sub, "allowed") == 0 && n == 1)
            rc = pf_admin_sender_allowed(&ctx, pos[0], &err);
        else if (strcmp(sub, "allow") == 0 && n == 2)
            rc = pf_admin_sender_allow(&ctx, pos[0], pos[1], &err);
        else if (disallow && n == 2)
            rc = pf_admin_sender_disallow(&ctx, pos[0], pos[1], o[0].value != NULL, &err);
    } else if (strcmp(cmd, "citizen") == 0) {
        bool keys = strcmp(sub, "add") == 0 || strcmp(sub, "rotate-key") == 0;
        s_opt_t ok[] = {{"--key-type", true, NULL}, {"--public-jwk", true, NULL}};
        s_opt_t ov[] = {{"--version", true, NULL}};
        int version = 0;
        if (keys)
            n = S_PARSE(i + 2, ok);
        else if (strcmp(sub, "export-key") == 0)
            n = S_PARSE(i + 2, ov);
        else
            n = S_PARSE_NONE(i + 2);
        if (n != 1)
            rc = -2;
        else if (strcmp(sub, "add") == 0)
            rc = pf_admin_citizen_add(&ctx, pos[0], ok[0].value, ok[1].value, &err);
        else if (strcmp(sub, "rotate-key") == 0)
            rc = pf_admin_citizen_rotate_key(&ctx, pos[0], ok[0].value, ok[1].value, &err);
        else if (strcmp(sub, "public-key") == 0)
            rc = pf_admin_citizen_public_key(&ctx, pos[0], &err);
        else if (strcmp(sub, "export-key") == 0 &&
                 (ov[0].value == NULL || s_number(ov[0].value, &version) == 0))
            rc = pf_admin_citizen_export_key(&ctx, pos[0], version, &err);
    } else if (strcmp(cmd, "kek") == 0) {
        s_opt_t o[] = {{"--id", true, NULL}, {"--no-rewrap", false, NULL}};
        n = strcmp(sub, "rotate") == 0 ? S_PARSE(i + 2, o) : S_PARSE_NONE(i + 2);
        if (strcmp(sub, "rotate") == 0 && n == 0)
            rc = pf_admin_kek_rotate(&ctx, o[0].value, o[1].value == NULL, &err);
        else if (strcmp(sub, "rewrap") == 0 && n == 0)
            rc = pf_admin_kek_rewrap(&ctx, &err);
        else if (strcmp(sub, "status") == 0 && n == 0)
            rc = pf_admin_kek_status(&ctx, &err);
        else if (strcmp(sub, "retire") == 0 && n == 1)
            rc = pf_admin_kek_retire(&ctx, pos[0], &err);
    } else if (strcmp(cmd, "token") == 0) {
        s_opt_t o[] = {{"--level", true, NULL}, {"--ttl", true, NULL}};
        int ttl = 3600;
        if (S_PARSE(i + 1, o) == 1 && (o[1].value == NULL || s_number(o[1].value, &ttl) == 0))
            rc = pf_admin_token(&ctx, pos[0], o[0].value ? o[0].value : "normal", ttl, &err);
    } else if (strcmp(cmd, "receipt") == 0 && strcmp(sub, "verify") == 0) {
        s_opt_t o[] = {{"--jwks", true, NULL}};
        n = S_PARSE(i + 2, o);
        if (n == 0 || n == 1)
            rc = pf_admin_receipt_verify(&ctx, n == 1 ? pos[0] : NULL, o[0].value, &err);
    } else if (strcmp(cmd, "audit") == 0) {
        s_opt_t o[] = {{"--after", true, NULL}, {"--limit", true, NULL}, {"--state", true, NULL}};
        bool export = strcmp(sub, "export") == 0;
        n = export ? S_PARSE(i + 2, o) : S_PARSE_NONE(i + 2);
        int64_t after = 0;
        int limit = 0;
        bool args_ok = export && n == 0 &&
                       (o[0].value == NULL || pf_decimal_id(o[0].value, &after) == 0) &&
                       (o[1].value == NULL || s_number(o[1].value, &limit) == 0) &&
                       !(o[0].value != NULL && o[2].value != NULL);
        if (args_ok && o[2].value != NULL)
            rc = pf_admin_audit_ship(&ctx, o[2].value, limit, &err);
        else if (args_ok)
            rc = pf_admin_audit_export(&ctx, after, limit, &err);
        else if (strcmp(sub, "verify") == 0 && n == 0)
            rc = pf_admin_audit_verify(&ctx, &err);
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
