/* postfach-ctl audit export and verify.
 *
 * Callers: cmd/postfach-ctl.  The rows come from the database, whose owner
 * this is meant to keep honest, so verify does not ask the database whether
 * they match: it recomputes every hash here, from the chain's start value,
 * with its own encoding (the same as sql/0021's, which the e2e tests hold
 * against each other).  Export copies the rows' texts into JSON (jansson
 * escapes them: a login or subject with a newline stays on its line). */
#include "admin/audit.h"
#include "crypto/jose.h"
#include "store/audit.h"
#include "util/buf.h"
#include "util/digits.h"
#include "util/fileio.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* rows per round trip: bounded memory whatever the audit's size */
#define S_PAGE 1000

static int s_fail(pf_admin_ctx_t *ctx, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(pf_admin_ctx_t *ctx, const char **error_r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    *error_r = ctx->err;
    return -1;
}

static void s_netstring(pf_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    pf_buf_printf(b, "%zu:", n);
    pf_buf_append(b, s, n);
    pf_buf_puts(b, ",");
}

void pf_admin_audit_hash(const unsigned char prev[32], int64_t id, const char *const fields[6],
                         unsigned char out[32])
{
    pf_buf_t b;
    pf_buf_init(&b);
    pf_buf_append(&b, prev, 32);
    s_netstring(&b, "pf-audit-1");
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%" PRId64, id);
    s_netstring(&b, idtext);
    for (int i = 0; i < 6; i++)
        s_netstring(&b, fields[i]);
    pf_sha256(b.data, b.len, out);
    pf_buf_free(&b, 0);
}

static int s_export_row(pf_admin_ctx_t *ctx, const pf_audit_row_t *r)
{
    /* detail is jsonb's text, so it parses; should it not, the text itself
     * is shipped rather than the row left out */
    json_t *detail = json_loads(r->detail, JSON_DECODE_ANY, NULL);
    if (detail == NULL)
        detail = json_string(r->detail);
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", (json_int_t)r->id, "time",
                  r->at, "login", r->login, "program", r->program, "action", r->action, "subject",
                  r->subject, "detail", detail, "prev_hash", r->prev_hash, "hash", r->hash);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line == NULL)
        return -1; /* a text that is not UTF-8: the database's encoding is */
    int rc = fprintf(ctx->out, "%s\n", line) < 0 ? -1 : 0;
    free(line);
    return rc;
}

/* The export of pf_admin_audit_export; *last_r is the id of the last row
 * written (after when there was none). */
static int s_export(pf_admin_ctx_t *ctx, int64_t after, int limit, int64_t *last_r,
                    const char **error_r)
{
    *last_r = after;
    pf_store_t *st;
    if (pf_store_open(ctx->db, &st, error_r) != 0)
        return -1;
    int rc = 0;
    long left = limit > 0 ? limit : -1;
    while (rc == 0 && left != 0) {
        pf_audit_row_t *rows = NULL;
        size_t n = 0;
        int page = left > 0 && left < S_PAGE ? (int)left : S_PAGE;
        if (pf_store_audit_rows(st, after, page, &rows, &n, error_r) != 0) {
            rc = s_fail(ctx, error_r, "%s", *error_r);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (rc == 0 && s_export_row(ctx, &rows[i]) != 0)
                rc = s_fail(ctx, error_r, "cannot write audit row %" PRId64, rows[i].id);
            after = rows[i].id;
            pf_audit_row_clear(&rows[i]);
        }
        free(rows);
        if (left > 0)
            left -= (long)n;
        if (n < (size_t)page)
            break;
    }
    /* a shipping job remembers the last id only when every line got out */
    if (rc == 0 && (fflush(ctx->out) != 0 || ferror(ctx->out)))
        rc = s_fail(ctx, error_r, "cannot write the export to standard output");
    pf_store_destroy(&st);
    if (rc == 0)
        *last_r = after;
    return rc;
}

int pf_admin_audit_export(pf_admin_ctx_t *ctx, int64_t after, int limit, const char **error_r)
{
    int64_t last;
    return s_export(ctx, after, limit, &last, error_r);
}

int pf_admin_audit_ship(pf_admin_ctx_t *ctx, const char *state, int limit, const char **error_r)
{
    /* one shipper at a time: two would send the same rows and race on
     * the state file */
    int lock = -1;
    const char *err;
    if (pf_file_lock(state, &lock, &err) != 0)
        return s_fail(ctx, error_r, "cannot lock \"%s\": %s", state, err);
    int64_t after = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    if (access(state, F_OK) == 0) {
        if (pf_file_read(state, 64, &text, &len, &err) != 0) {
            rc = s_fail(ctx, error_r, "cannot read \"%s\": %s", state, err);
        } else {
            pf_str_rtrim(text);
            if (pf_decimal_id(text, &after) != 0)
                rc = s_fail(ctx, error_r,
                            "\"%s\" holds no audit id (the last one shipped); remove it to "
                            "ship from the start",
                            state);
        }
        free(text);
    }
    int64_t last = after;
    if (rc == 0)
        rc = s_export(ctx, after, limit, &last, error_r);
    if (rc == 0 && last != after) {
        /* written only after the lines got out: a crash in between ships
         * them again next time (each line has its id and hash), never
         * loses one */
        char v[32];
        int n = snprintf(v, sizeof(v), "%" PRId64 "\n", last);
        if (pf_file_write(state, v, (size_t)n, 0600, &err) != 0)
            rc = s_fail(ctx, error_r, "cannot write \"%s\": %s", state, err);
    }
    pf_file_unlock(&lock);
    return rc;
}

static int s_hex_is(const char *hex, const unsigned char h[32])
{
    char want[65];
    pf_hex_encode(h, 32, want);
    return strcmp(hex, want) == 0;
}

int pf_admin_audit_verify(pf_admin_ctx_t *ctx, const char **error_r)
{
    pf_store_t *st;
    if (pf_store_open(ctx->db, &st, error_r) != 0)
        return -1;
    unsigned char h[32] = {0}; /* the chain's start value */
    int64_t last = 0, end_id = 0;
    long count = 0;
    char end_hash[65], hex[65];
    int rc = 0;
    for (;;) {
        pf_audit_row_t *rows = NULL;
        size_t n = 0;
        if (pf_store_audit_rows(st, last, S_PAGE, &rows, &n, error_r) != 0) {
            rc = s_fail(ctx, error_r, "%s", *error_r);
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            const pf_audit_row_t *r = &rows[i];
            if (!s_hex_is(r->prev_hash, h)) {
                if (count == 0)
                    rc = s_fail(ctx, error_r,
                                "audit chain broken at id %" PRId64
                                ": the first row does not chain from the start value (rows "
                                "before it were removed, or it was changed)",
                                r->id);
                else
                    rc = s_fail(ctx, error_r,
                                "audit chain broken at id %" PRId64
                                ": it does not chain from id %" PRId64
                                ", the row before it (a row between them was removed, or id "
                                "%" PRId64 " was changed)",
                                r->id, last, r->id);
                break;
            }
            const char *fields[6] = {r->at, r->login, r->program, r->action, r->subject, r->detail};
            pf_admin_audit_hash(h, r->id, fields, h);
            if (!s_hex_is(r->hash, h)) {
                rc = s_fail(ctx, error_r,
                            "audit chain broken at id %" PRId64
                            ": the row does not match its hash (it was changed)",
                            r->id);
                break;
            }
            last = r->id;
            count++;
        }
        for (size_t i = 0; i < n; i++)
            pf_audit_row_clear(&rows[i]);
        free(rows);
        if (rc != 0 || n < S_PAGE)
            break;
    }
    if (rc == 0 && pf_store_audit_last(st, &end_id, end_hash, error_r) != 0)
        rc = s_fail(ctx, error_r, "%s", *error_r);
    pf_hex_encode(h, 32, hex);
    if (rc == 0 && (end_id != last || strcmp(end_hash, hex) != 0))
        rc = s_fail(ctx, error_r,
                    "audit chain broken after id %" PRId64 ": the chain's recorded end is id "
                    "%" PRId64 " (rows at the end were removed, or the end was changed)",
                    last, end_id);
    if (rc == 0)
        fprintf(ctx->out, "audit chain intact: %ld row%s, last id %" PRId64 ", last hash %s\n",
                count, count == 1 ? "" : "s", last, hex);
    pf_store_destroy(&st);
    return rc;
}
