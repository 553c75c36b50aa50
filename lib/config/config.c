/* Table-driven configuration.  Values are kept as text and checked against
 * their spec when set; typed getters then cannot fail.  Asking for a name
 * that is not in the table is a programmer error and aborts. */
#include "config/config.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pf_config {
    const pf_cfg_spec_t *specs;
    size_t n;
    char **values;
    char err[300];
};

pf_config_t *pf_config_new(const pf_cfg_spec_t *specs)
{
    pf_config_t *cfg = xcalloc(1, sizeof(*cfg));
    cfg->specs = specs;
    while (specs[cfg->n].name != NULL)
        cfg->n++;
    cfg->values = xcalloc(cfg->n + 1, sizeof(char *));
    for (size_t i = 0; i < cfg->n; i++)
        cfg->values[i] = specs[i].def ? xstrdup(specs[i].def) : NULL;
    return cfg;
}

void pf_config_destroy(pf_config_t **cfgp)
{
    pf_config_t *cfg = *cfgp;
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n; i++)
        free(cfg->values[i]);
    free(cfg->values);
    free(cfg);
    *cfgp = NULL;
}

static long s_index(const pf_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->specs[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int s_set(pf_config_t *cfg, const char *key, const char *value, const char **error_r)
{
    long i = s_index(cfg, key);
    if (i < 0) {
        snprintf(cfg->err, sizeof(cfg->err), "unknown setting \"%.100s\"", key);
        *error_r = cfg->err;
        return -1;
    }
    const pf_cfg_spec_t *s = &cfg->specs[i];
    if (s->type == PF_CFG_INT) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < s->min || v > s->max) {
            snprintf(cfg->err, sizeof(cfg->err),
                     "setting \"%s\" must be an integer from %lld to %lld", key, s->min, s->max);
            *error_r = cfg->err;
            return -1;
        }
    } else if (s->type == PF_CFG_BOOL) {
        if (strcmp(value, "on") && strcmp(value, "off") && strcmp(value, "true") &&
            strcmp(value, "false") && strcmp(value, "yes") && strcmp(value, "no")) {
            snprintf(cfg->err, sizeof(cfg->err), "setting \"%s\" must be on or off", key);
            *error_r = cfg->err;
            return -1;
        }
    }
    free(cfg->values[i]);
    cfg->values[i] = xstrdup(value);
    return 0;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int pf_config_set(pf_config_t *cfg, const char *assignment, const char **error_r)
{
    const char *eq = strchr(assignment, '=');
    if (eq == NULL) {
        snprintf(cfg->err, sizeof(cfg->err), "expected key=value, got \"%.100s\"", assignment);
        *error_r = cfg->err;
        return -1;
    }
    char *key = xstrndup(assignment, (size_t)(eq - assignment));
    char *value = xstrdup(eq + 1);
    int rc = s_set(cfg, s_trim(key), s_trim(value), error_r);
    free(key);
    free(value);
    return rc;
}

int pf_config_load_file(pf_config_t *cfg, const char *path, const char **error_r)
{
    char *data;
    const char *ferr;
    if (pf_file_read(path, 1024 * 1024, &data, NULL, &ferr) != 0) {
        snprintf(cfg->err, sizeof(cfg->err), "cannot read config file \"%.200s\": %s", path, ferr);
        *error_r = cfg->err;
        return -1;
    }
    int rc = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *t = s_trim(line);
        if (*t == '\0' || *t == '#')
            continue;
        if (pf_config_set(cfg, t, error_r) != 0) {
            char tmp[300];
            snprintf(tmp, sizeof(tmp), "%s line %d: %s", path, lineno, *error_r);
            snprintf(cfg->err, sizeof(cfg->err), "%s", tmp);
            *error_r = cfg->err;
            rc = -1;
        }
    }
    free(data);
    return rc;
}

int pf_config_args(pf_config_t *cfg, int argc, char **argv, bool *print_r, bool *help_r,
                   const char **error_r)
{
    *print_r = false;
    *help_r = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--print-config") == 0) {
            *print_r = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help_r = true;
            return 0;
        } else if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc) {
            if (pf_config_load_file(cfg, argv[++i], error_r) != 0)
                return -1;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            if (pf_config_set(cfg, argv[++i], error_r) != 0)
                return -1;
        } else {
            snprintf(cfg->err, sizeof(cfg->err), "unknown argument \"%.100s\" (try --help)", a);
            *error_r = cfg->err;
            return -1;
        }
    }
    for (size_t i = 0; i < cfg->n; i++) {
        if (cfg->values[i] == NULL && !*print_r) {
            snprintf(cfg->err, sizeof(cfg->err), "setting \"%s\" is required", cfg->specs[i].name);
            *error_r = cfg->err;
            return -1;
        }
    }
    return 0;
}

static long s_must(const pf_config_t *cfg, const char *name)
{
    long i = s_index(cfg, name);
    if (i < 0) {
        fprintf(stderr, "panic: no setting named \"%s\" in the table\n", name);
        abort();
    }
    return i;
}

const char *pf_config_str(const pf_config_t *cfg, const char *name)
{
    const char *v = cfg->values[s_must(cfg, name)];
    return v ? v : "";
}

long long pf_config_int(const pf_config_t *cfg, const char *name)
{
    const char *v = cfg->values[s_must(cfg, name)];
    return v ? strtoll(v, NULL, 10) : 0;
}

bool pf_config_bool(const pf_config_t *cfg, const char *name)
{
    const char *v = cfg->values[s_must(cfg, name)];
    return v && (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

void pf_config_print(const pf_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->n; i++)
        fprintf(out, "%s = %s\n", cfg->specs[i].name, cfg->values[i] ? cfg->values[i] : "");
}

void pf_config_help(const pf_config_t *cfg, const char *program, FILE *out)
{
    fprintf(out, "usage: %s [--config FILE] [--set key=value]... [--print-config]\n\nsettings:\n",
            program);
    for (size_t i = 0; i < cfg->n; i++) {
        const pf_cfg_spec_t *s = &cfg->specs[i];
        fprintf(out, "  %-28s %s (default: %s)\n", s->name, s->help, s->def ? s->def : "required");
    }
}

pf_config_t *pf_config_daemon(const pf_cfg_spec_t *specs, const char *program, int argc,
                              char **argv, int *exit_r)
{
    pf_log_set_program(program);
    pf_config_t *cfg = pf_config_new(specs);
    bool print = false, help = false;
    const char *err;
    pf_log_level_t level;
    char esc[600];
    *exit_r = 2;
    if (pf_config_args(cfg, argc, argv, &print, &help, &err) != 0) {
        pf_error("event=bad_config error=\"%s\"", pf_log_escape(err, esc, sizeof(esc)));
    } else if (help || print) {
        if (help)
            pf_config_help(cfg, program, stdout);
        else
            pf_config_print(cfg, stdout);
        *exit_r = 0;
    } else if (pf_log_level_parse(pf_config_str(cfg, "log_level"), &level) != 0) {
        pf_error("event=bad_config error=\"log_level must be debug, info, warn or error\"");
    } else {
        pf_log_set_level(level);
        return cfg;
    }
    pf_config_destroy(&cfg);
    return NULL;
}
