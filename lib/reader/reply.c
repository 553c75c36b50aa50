/* Building replies (see reader_private.h): the JSON error body every
 * failure uses, and the release of reply buffers.
 *
 * Callers: every handler and server.c.
 * Invariant: error bodies contain only our own static texts, so nothing a
 * client sent (least of all a token) is ever echoed back. */
#include "reader/reader_private.h"

#include "util/log.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void pf_reply_json(pf_reply_t *rep, int status, char *json, bool wipe)
{
    pf_reply_clear(rep);
    rep->status = status;
    rep->content_type = "application/json";
    rep->body = json;
    rep->len = strlen(json);
    rep->wipe = wipe;
}

void pf_reply_error(pf_reply_t *rep, int status, const char *code, const char *message)
{
    json_t *o = json_pack("{s:s, s:s}", "error", code, "message", message);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) /* jansson out of memory: fail like xmalloc */
        abort();
    pf_reply_json(rep, status, text, false);
}

void pf_reply_unavailable(pf_reply_t *rep, const char *what, const char *error)
{
    char esc[512];
    pf_warn("event=db_error op=%s error=\"%s\"", what,
            pf_log_escape(error ? error : "unknown", esc, sizeof(esc)));
    pf_reply_error(rep, 503, "unavailable", "temporary failure, retry later");
    rep->retry_after = 5;
}

void pf_reply_no_message(pf_reply_t *rep)
{
    pf_reply_error(rep, 404, "not_found", "no such message");
}

void pf_reply_clear(pf_reply_t *rep)
{
    if (!rep->body_static && rep->body != NULL) {
        if (rep->wipe)
            pf_wipe(rep->body, rep->len);
        free(rep->body);
    }
    free(rep->disposition);
    memset(rep, 0, sizeof(*rep));
}

const char *pf_reader_level_name(int level)
{
    static const char *const names[] = {"none", "normal", "substantiell", "hoch"};
    return level >= 0 && level <= 3 ? names[level] : "unknown";
}
