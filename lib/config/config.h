#ifndef PF_CONFIG_CONFIG_H
#define PF_CONFIG_CONFIG_H
/* Settings declared once per program in a table (name, type, default,
 * bounds, help), loaded from a "key = value" file and "--set key=value"
 * arguments.  Unknown keys and out-of-range values are errors: a daemon
 * refuses to start rather than run with a setting it did not understand.
 * Secrets are never values: they are *_file settings naming a file. */
#include <stdbool.h>
#include <stdio.h>

typedef enum { PF_CFG_STRING, PF_CFG_INT, PF_CFG_BOOL } pf_cfg_type_t;

typedef struct {
    const char *name;
    pf_cfg_type_t type;
    const char *def; /* default as text; NULL = required (strings only) */
    long long min, max;
    const char *help;
} pf_cfg_spec_t;

typedef struct pf_config pf_config_t;

/* specs: terminated by an entry with name NULL; must outlive the config. */
pf_config_t *pf_config_new(const pf_cfg_spec_t *specs);
void pf_config_destroy(pf_config_t **cfg);
int pf_config_load_file(pf_config_t *cfg, const char *path, const char **error_r);
/* "key=value" */
int pf_config_set(pf_config_t *cfg, const char *assignment, const char **error_r);
/* Parses argv: "--config FILE", "--set key=value", "--print-config",
 * "--help".  Sets *print_r for --print-config and --help (the caller prints
 * and exits 0).  Other arguments are an error. Checks required settings. */
int pf_config_args(pf_config_t *cfg, int argc, char **argv, bool *print_r, bool *help_r,
                   const char **error_r);
const char *pf_config_str(const pf_config_t *cfg, const char *name);
long long pf_config_int(const pf_config_t *cfg, const char *name);
bool pf_config_bool(const pf_config_t *cfg, const char *name);
void pf_config_print(const pf_config_t *cfg, FILE *out);
void pf_config_help(const pf_config_t *cfg, const char *program, FILE *out);

/* The start of a daemon's main, the same for every daemon: names the
 * program in the log, reads the command line into a new config, answers
 * --help and --print-config on stdout, and sets the log level from the
 * setting "log_level" (which specs must declare).  Returns the config to
 * go on with, or NULL with *exit_r set: 0 after --help or --print-config,
 * 2 for a bad command line or setting (logged as event=bad_config). */
pf_config_t *pf_config_daemon(const pf_cfg_spec_t *specs, const char *program, int argc,
                              char **argv, int *exit_r);

#endif
