#ifndef PF_READER_PRIVATE_H
#define PF_READER_PRIVATE_H
/* Shared by the lib/reader modules only.  Handlers do not see
 * libmicrohttpd: they get a parsed request (pf_request_t) and fill a
 * pf_reply_t, which server.c turns into an HTTP response with the common
 * security headers.  That keeps each resource testable without a socket
 * and keeps libmicrohttpd in one file. */
#include "auth/token.h"
#include "crypto/jose.h"
#include "reader/keyring.h"
#include "proto/notice.h"
#include "reader/route.h"
#include "reader/wake.h"
#include "store/mailbox.h"

#include <stdbool.h>
#include <stddef.h>

/* How the response may be cached. */
typedef enum {
    PF_CACHE_NO_STORE = 0, /* personal data: every /v1/ answer and every error */
    PF_CACHE_PAGE,         /* the web page: revalidate, but no personal data in it */
    PF_CACHE_PUBLIC,       /* public keys */
} pf_cache_t;

typedef struct {
    int status;
    const char *content_type; /* static, or content_type_buf */
    char content_type_buf[128];
    char *body;               /* owned unless body_static */
    size_t len;
    bool body_static;         /* body points to long-lived memory */
    bool wipe;                /* plaintext: wipe before free */
    pf_cache_t cache;
    char *disposition;        /* Content-Disposition or NULL (owned) */
    int retry_after;          /* seconds, 0 = no Retry-After */
    bool www_authenticate;    /* 401: add the Bearer challenge */
    bool allow_get;           /* 405: add "Allow: GET" */
    bool page;                /* the web page: its own CSP */
} pf_reply_t;

/* Everything the handlers share, immutable after start-up (the keys are
 * used read-only from all worker threads). */
typedef struct {
    pf_keyring_t *keyring; /* KEKs; reloads itself after a rotation */
    pf_key_t *receipt_key;
    const char *receipt_issuer;
    int list_limit_default;
    int list_limit_max;
    char *jwks;      /* GET /.well-known/jwks.json body */
    size_t jwks_len;
    char *page;      /* GET / body */
    size_t page_len;
    char *page_csp;  /* its Content-Security-Policy */
    pf_wake_t *wake; /* thread-safe: wakes the relay after read receipts */
} pf_reader_shared_t;

typedef struct {
    const pf_reader_shared_t *sh;
    pf_store_t *st;
    const pf_route_t *route;
    const char *mailbox; /* the verified token's subject */
    pf_level_t level;    /* the verified token's assurance level */
    const char *limit;   /* query parameters (NULL when absent) */
    const char *cursor;
} pf_request_t;

/* --- reply.c ---------------------------------------------------------------- */
/* {"error":code,"message":message} with status; code and message are our
 * own static texts, never request content. */
void pf_reply_error(pf_reply_t *rep, int status, const char *code, const char *message);
/* 503 with Retry-After after database trouble; logs what failed. */
void pf_reply_unavailable(pf_reply_t *rep, const char *what, const char *error);
/* The one "not found" of a message: missing, another citizen's, malformed
 * id all answer exactly this. */
void pf_reply_no_message(pf_reply_t *rep);
/* Takes ownership of json (NUL-terminated text from jansson). */
void pf_reply_json(pf_reply_t *rep, int status, char *json, bool wipe);
void pf_reply_clear(pf_reply_t *rep);
/* "normal", "substantiell", "hoch" for required_level 1..3. */
const char *pf_reader_level_name(int level);

/* --- resources ------------------------------------------------------------- */
void pf_reader_list(const pf_request_t *rq, pf_reply_t *rep);       /* messages.c */
void pf_reader_message(const pf_request_t *rq, pf_reply_t *rep);    /* message.c */
void pf_reader_attachment(const pf_request_t *rq, pf_reply_t *rep); /* attachment.c */
void pf_reader_jwe(const pf_request_t *rq, pf_reply_t *rep);        /* jwe.c */

/* The listing body: {"messages":[...],"next_cursor":C|null}.  Caller
 * frees.  next_id: the id to continue after, or NULL on the last page. */
char *pf_reader_render_list(const pf_mailbox_entry_t *rows, size_t n, const char *next_id);

/* Opens a copy for the citizen of rq (message.c): loads it, checks the
 * assurance level, unwraps the mailbox key, decrypts and decodes it (with
 * attachment bytes when want_data), and records the first retrieval.
 * Returns 0 with *m_r, *n_r (release both) and *read_at_r (caller frees),
 * or -1 with rep filled with the error answer. */
int pf_reader_open(const pf_request_t *rq, bool want_data, pf_mailbox_message_t *m_r,
                   pf_notice_t *n_r, char **read_at_r, pf_reply_t *rep);

/* Content-Disposition value for a sender-chosen file name (reply.c):
 * an ASCII fallback filename="..." with anything outside [A-Za-z0-9._-]
 * replaced, plus filename*=UTF-8''... for the real name.  Caller frees. */
char *pf_reader_disposition(const char *name);
/* A media type safe to send as Content-Type: type/subtype made of RFC 6838
 * characters, else "application/octet-stream".  Borrowed. */
const char *pf_reader_media_type(const char *s);

/* --- text.c: texts from the store shown to a citizen ----------------------- */
/* Names of the texts of one request that were replaced, for its one log
 * line: comma-separated, ending in "..." when more were than fit. */
typedef struct {
    char list[200];
    size_t len;
    int count; /* all of them, named or not */
    bool cut;
} pf_cleaned_t;

void pf_cleaned_add(pf_cleaned_t *c, const char *name);
/* Replaces *text (owned; NULL is left alone) by its form that passes the
 * broker's rules for texts a citizen sees (pf_wire_text_clean: forbidden
 * code points become U+FFFD) when it does not pass them, wiping the old
 * one (it may be plaintext), and adds name to c (NULL: the caller does, so
 * that a name that must be formatted is formatted only then).  Returns true
 * when it replaced the text; a text that passes is not copied. */
bool pf_reader_clean_text(char **text, bool multiline, const char *name, pf_cleaned_t *c);
/* Every text of an opened copy the reader shows: the row's sender, the
 * notice's title, subject, body (the one multi-line text), reference,
 * sent_at and attachment names; an attachment name also loses what would
 * make it a path ('/' and '\\' become '_'; "", "." and ".." become "_"),
 * as the broker refuses such names.  Media types have their own reduction
 * (pf_reader_media_type). */
void pf_reader_clean_notice(pf_mailbox_message_t *m, pf_notice_t *n, pf_cleaned_t *c);
/* The texts of a listing row: sender, title, reference (named
 * "<id>.title" and so on, as one line covers a page of rows). */
void pf_reader_clean_entry(pf_mailbox_entry_t *e, pf_cleaned_t *c);

/* jwks.c: the public JWKS of the receipt key (caller frees). */
char *pf_reader_jwks_render(const pf_key_t *receipt_key, size_t *len_r);
/* page.c: the web page and its CSP (both caller frees). */
char *pf_reader_page_render(size_t *len_r, char **csp_r);

#endif
