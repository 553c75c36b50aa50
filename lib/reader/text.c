/* Texts from the store on their way to a citizen (see reader_private.h).
 *
 * Callers: message.c (an opened notice, for GET /v1/messages/{id} and the
 * attachment download) and messages.c (the listing's rows).
 * Untrusted input: every text here.  The broker lets a text reach the
 * store only when it passes pf_wire_text_ok, but the reader cannot rely on
 * that: a JWE for a mailbox can be made by anyone holding its public key
 * (ECDH-ES does not authenticate the sender), rows can be written by
 * anyone with write access to the database, and a notice may have been
 * stored before a rule was tightened.  Refusing such a notice would keep a
 * Bescheid from its addressee, so it is shown with every forbidden code
 * point replaced by U+FFFD (pf_wire_text_clean), and the operator is told
 * which fields of which message were replaced (never their content).
 * A text that passes costs one scan and no allocation. */
#include "reader/reader_private.h"

#include "proto/wire.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pf_cleaned_add(pf_cleaned_t *c, const char *name)
{
    c->count++;
    if (c->cut)
        return;
    const char *sep = c->len > 0 ? "," : "";
    /* room is kept for ",..." after the last name that fits: the line
     * then says that more were replaced than it names */
    if (c->len + strlen(sep) + strlen(name) + 4 < sizeof(c->list)) {
        c->len += (size_t)snprintf(c->list + c->len, sizeof(c->list) - c->len, "%s%s", sep, name);
        return;
    }
    c->len += (size_t)snprintf(c->list + c->len, sizeof(c->list) - c->len, "%s...", sep);
    c->cut = true;
}

bool pf_reader_clean_text(char **text, bool multiline, const char *name, pf_cleaned_t *c)
{
    if (*text == NULL)
        return false;
    char *clean = pf_wire_text_clean(*text, multiline);
    if (clean == NULL)
        return false;
    /* the text may be a notice's plaintext */
    pf_wipe(*text, strlen(*text));
    free(*text);
    *text = clean;
    if (name != NULL)
        pf_cleaned_add(c, name);
    return true;
}

/* The broker's rules for a file name beyond those of text: no path.  A
 * citizen's own client may save an attachment under its name, so a
 * planted "../../.bashrc" must not reach it as a path: '/' and '\\' become
 * '_', and a name that is empty, "." or ".." becomes "_".  Returns true
 * when it changed *name (in place; it only gets shorter or stays). */
static bool s_file_name(char **name)
{
    if (*name == NULL)
        return false;
    char *s = *name;
    bool changed = false;
    if (s[0] == '\0') {
        free(s);
        *name = xstrdup("_");
        return true;
    }
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        s[0] = '_';
        s[1] = '\0';
        return true;
    }
    for (char *p = s; *p != '\0'; p++)
        if (*p == '/' || *p == '\\') {
            *p = '_';
            changed = true;
        }
    return changed;
}

void pf_reader_clean_notice(pf_mailbox_message_t *m, pf_notice_t *n, pf_cleaned_t *c)
{
    /* the row's sender is shown as the notice's sender; the notice's own
     * "sender" member is not shown, so it is left as it is */
    pf_reader_clean_text(&m->meta.sender, false, "sender", c);
    pf_reader_clean_text(&n->title, false, "title", c);
    pf_reader_clean_text(&n->subject, false, "subject", c);
    pf_reader_clean_text(&n->body, true, "body", c);
    pf_reader_clean_text(&n->reference, false, "reference", c);
    pf_reader_clean_text(&n->sent_at, false, "sent_at", c);
    for (size_t i = 0; i < n->attachment_count; i++) {
        bool path = s_file_name(&n->attachments[i].name);
        if (pf_reader_clean_text(&n->attachments[i].name, false, NULL, c) || path) {
            char name[48];
            snprintf(name, sizeof(name), "attachments[%zu].name", i);
            pf_cleaned_add(c, name);
        }
    }
}

void pf_reader_clean_entry(pf_mailbox_entry_t *e, pf_cleaned_t *c)
{
    char **texts[3] = {&e->sender, &e->title, &e->reference};
    static const char *const names[3] = {"sender", "title", "reference"};
    /* the name is made only for a text that was replaced: a page of 100
     * clean rows costs no formatting */
    for (int i = 0; i < 3; i++) {
        if (pf_reader_clean_text(texts[i], false, NULL, c)) {
            char name[64];
            snprintf(name, sizeof(name), "%s.%s", e->id, names[i]);
            pf_cleaned_add(c, name);
        }
    }
}
