/* Unit tests for the reader's pure parts: routing, bearer header, limit
 * and cursor codec (lib/reader/route.c), the listing JSON
 * (messages.c), error bodies and the header-safe forms of attachment names
 * and media types (reply.c), the cleaning of stored texts before a citizen
 * sees them (text.c).  Doubles as their usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "reader/reader_private.h"
#include "reader/route.h"

static void test_route_table(void **state)
{
    (void)state;
    struct {
        const char *path;
        pf_route_id_t id;
        const char *pattern;
        bool auth;
    } cases[] = {
        {"/", PF_ROUTE_PAGE, "/", false},
        {"/healthz", PF_ROUTE_HEALTH, "/healthz", false},
        {"/.well-known/jwks.json", PF_ROUTE_JWKS, "/.well-known/jwks.json", false},
        {"/v1/messages", PF_ROUTE_LIST, "/v1/messages", true},
        {"/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b", PF_ROUTE_MESSAGE,
         "/v1/messages/{id}", true},
        {"/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b/jwe", PF_ROUTE_JWE,
         "/v1/messages/{id}/jwe", true},
        {"/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b/attachments/0",
         PF_ROUTE_ATTACHMENT, "/v1/messages/{id}/attachments/{n}", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pf_route_t r;
        assert_int_equal(pf_route_match("GET", cases[i].path, &r), cases[i].id);
        assert_string_equal(r.pattern, cases[i].pattern);
        assert_int_equal(r.needs_auth, cases[i].auth);
        assert_false(r.method_not_allowed);
    }
}

static void test_route_not_found(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "v1/messages",
        "/v1/messages/",
        "/v1/messages//jwe",
        "/v1/messages/x/",
        "/v1/messages/x/jwe/",
        "/v1/messages/x/attachments",
        "/v1/messages/x/attachments/",
        "/v1/messages/x/attachments/0/extra",
        "/v1/messages/x/other",
        "/v1/message",
        "/V1/messages",
        "/v1/messages?limit=1", /* the query string is never part of the path */
        "//",
        "/healthz/",
        "/index.html",
        "/v2/messages",
        "/v1/messages/%2e%2e",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pf_route_t r;
        pf_route_id_t id = pf_route_match("GET", bad[i], &r);
        if (strcmp(bad[i], "/v1/messages/%2e%2e") == 0) {
            /* a single segment: the message route, but never a valid id */
            assert_int_equal(id, PF_ROUTE_MESSAGE);
            assert_false(r.id_ok);
            continue;
        }
        assert_int_equal(id, PF_ROUTE_NOT_FOUND);
        assert_string_equal(r.pattern, "-");
        assert_false(r.method_not_allowed);
    }
    pf_route_t r;
    assert_int_equal(pf_route_match("GET", NULL, &r), PF_ROUTE_NOT_FOUND);
}

static void test_route_ids(void **state)
{
    (void)state;
    pf_route_t r;
    pf_route_match("GET", "/v1/messages/0190A5B2-1C3D-7E4F-8A9B-0C1D2E3F4A5B", &r);
    assert_true(r.id_ok);
    assert_string_equal(r.message_id, "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b");

    const char *malformed[] = {
        "/v1/messages/not-a-uuid",
        "/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5",   /* short */
        "/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5bb", /* long */
        "/v1/messages/0190a5b21c3d-7e4f-8a9b-0c1d2e3f4a5b-",  /* dash moved */
        "/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5g",  /* not hex */
        "/v1/messages/%30190a5b-1c3d-7e4f-8a9b-0c1d2e3f4a5b", /* escapes are not decoded */
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        assert_int_equal(pf_route_match("GET", malformed[i], &r), PF_ROUTE_MESSAGE);
        assert_false(r.id_ok);
        assert_string_equal(r.message_id, "");
    }
}

static void test_route_attachment_index(void **state)
{
    (void)state;
    const char *base = "/v1/messages/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b/attachments/";
    struct {
        const char *n;
        int want;
    } cases[] = {{"0", 0},   {"7", 7},   {"9999", 9999}, {"10000", -1}, {"01", -1},
                 {"-1", -1}, {"+1", -1}, {"1a", -1},     {" 1", -1},    {"99999999999", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[200];
        snprintf(path, sizeof(path), "%s%s", base, cases[i].n);
        pf_route_t r;
        assert_int_equal(pf_route_match("GET", path, &r), PF_ROUTE_ATTACHMENT);
        assert_true(r.id_ok);
        assert_int_equal(r.attachment, cases[i].want);
    }
}

static void test_route_methods(void **state)
{
    (void)state;
    const char *methods[] = {"POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "", NULL};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        pf_route_t r;
        assert_int_equal(pf_route_match(methods[i], "/v1/messages", &r), PF_ROUTE_LIST);
        assert_true(r.method_not_allowed);
        /* unknown paths stay 404 whatever the method */
        assert_int_equal(pf_route_match(methods[i], "/nope", &r), PF_ROUTE_NOT_FOUND);
        assert_false(r.method_not_allowed);
    }
}

static void test_bearer(void **state)
{
    (void)state;
    const char *tok;
    size_t len;
    assert_int_equal(pf_route_bearer("Bearer abc.def-_~+/==", 100, &tok, &len), 0);
    assert_int_equal(len, strlen("abc.def-_~+/=="));
    assert_memory_equal(tok, "abc.def-_~+/==", len);
    assert_int_equal(pf_route_bearer("bearer   x.y.z  ", 100, &tok, &len), 0);
    assert_int_equal(len, 5);

    const char *bad[] = {
        NULL, "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwdw==", "Bearerx.y.z",
        "Bearer a b", "Bearer a,b", "Bearer a=b", "Bearer \"a\"", "Bearer a\tb", "Token a.b.c",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pf_route_bearer(bad[i], 100, &tok, &len), -1);

    char big[300];
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', 200);
    big[207] = '\0';
    assert_int_equal(pf_route_bearer(big, 200, &tok, &len), 0);
    assert_int_equal(pf_route_bearer(big, 199, &tok, &len), -1);
}

static void test_limit(void **state)
{
    (void)state;
    int v;
    assert_int_equal(pf_route_limit(NULL, 50, 100, &v), 0);
    assert_int_equal(v, 50);
    assert_int_equal(pf_route_limit("1", 50, 100, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(pf_route_limit("100", 50, 100, &v), 0);
    assert_int_equal(v, 100);
    const char *bad[] = {"", "0", "101", "-1", "+5", "5x", " 5", "1e2", "0x10", "99999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pf_route_limit(bad[i], 50, 100, &v), -1);
}

static void test_cursor_roundtrip(void **state)
{
    (void)state;
    char c[PF_CURSOR_LEN + 1], id[37];
    assert_int_equal(pf_cursor_encode("0190A5B2-1C3D-7E4F-8A9B-0C1D2E3F4A5B", c), 0);
    assert_int_equal(strlen(c), PF_CURSOR_LEN);
    assert_int_equal(pf_cursor_decode(c, id), 0);
    assert_string_equal(id, "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b");
    /* opaque: not the id in clear */
    assert_null(strstr(c, "0190a5b2"));
    assert_int_equal(pf_cursor_encode("ffffffff-ffff-7fff-bfff-ffffffffffff", c), 0);
    assert_int_equal(pf_cursor_decode(c, id), 0);
    assert_string_equal(id, "ffffffff-ffff-7fff-bfff-ffffffffffff");
    assert_int_equal(pf_cursor_encode("nope", c), -1);
    assert_int_equal(pf_cursor_encode(NULL, c), -1);
}

static void test_cursor_rejects(void **state)
{
    (void)state;
    char id[37], c[PF_CURSOR_LEN + 1];
    assert_int_equal(pf_cursor_encode("0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b", c), 0);
    char wrong_version[PF_CURSOR_LEN + 1];
    memcpy(wrong_version, c, sizeof(c));
    wrong_version[0] = 'A'; /* first byte 0x00..0x03 instead of 0x01 */
    wrong_version[1] = 'A';
    const char *bad[] = {NULL, "", "abc", "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b",
                         "AQGQpbIcPX5PipsMHS4_Sl", /* 22 chars */
                         "AQGQpbIcPX5PipsMHS4_Sl==", "AQGQpbIcPX5PipsMHS4_Sl+", wrong_version};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pf_cursor_decode(bad[i], id), -1);
    /* a non-canonical last character (trailing bits set) is refused too */
    char tweaked[PF_CURSOR_LEN + 1];
    memcpy(tweaked, c, sizeof(c));
    tweaked[PF_CURSOR_LEN - 1] = tweaked[PF_CURSOR_LEN - 1] == 'B' ? 'C' : 'B';
    char back[37];
    if (pf_cursor_decode(tweaked, back) == 0)
        assert_string_not_equal(back, "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b");
}

static void test_render_list(void **state)
{
    (void)state;
    pf_mailbox_entry_t rows[2];
    memset(rows, 0, sizeof(rows));
    snprintf(rows[0].id, sizeof(rows[0].id), "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5c");
    rows[0].sender = "tax-office";
    rows[0].title = "Steuerbescheid 2024 \"quoted\" <b>";
    rows[0].reference = "AZ 1/2";
    rows[0].created_at = "2025-01-31T12:00:00.123Z";
    rows[0].read_at = NULL;
    rows[0].size = 2048;
    rows[0].attachment_count = 1;
    rows[0].required_level = 2;
    rows[1] = rows[0];
    snprintf(rows[1].id, sizeof(rows[1].id), "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b");
    rows[1].read_at = "2025-02-01T08:00:00.000Z";
    rows[1].required_level = 1;

    char *text = pf_reader_render_list(rows, 2, rows[1].id);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    json_t *arr = json_object_get(o, "messages");
    assert_int_equal(json_array_size(arr), 2);
    json_t *m0 = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(m0, "id")), rows[0].id);
    assert_string_equal(json_string_value(json_object_get(m0, "title")), rows[0].title);
    assert_true(json_is_null(json_object_get(m0, "read_at")));
    assert_int_equal(json_integer_value(json_object_get(m0, "size")), 2048);
    assert_int_equal(json_integer_value(json_object_get(m0, "attachment_count")), 1);
    assert_string_equal(json_string_value(json_object_get(m0, "required_level")),
                        "substantiell");
    /* metadata only: nothing from inside the JWE */
    assert_null(json_object_get(m0, "subject"));
    assert_null(json_object_get(m0, "body"));
    assert_int_equal(json_object_size(m0), 9);
    json_t *m1 = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(m1, "read_at")), rows[1].read_at);
    assert_string_equal(json_string_value(json_object_get(m1, "required_level")), "normal");
    const char *next = json_string_value(json_object_get(o, "next_cursor"));
    assert_non_null(next);
    char id[37];
    assert_int_equal(pf_cursor_decode(next, id), 0);
    assert_string_equal(id, rows[1].id);
    json_decref(o);
    free(text);

    text = pf_reader_render_list(NULL, 0, NULL);
    assert_string_equal(text, "{\"messages\":[],\"next_cursor\":null}");
    free(text);

    /* control characters are escaped and read back as they were; an entry
     * whose text is not UTF-8 is left out, first or in the middle, and
     * the page stays well-formed */
    pf_mailbox_entry_t three[3];
    three[0] = rows[0];
    three[0].title = "bad \xff byte";
    three[1] = rows[0];
    three[1].reference = "line\nbreak\ttab\x01\\";
    three[2] = rows[1];
    three[2].sender = "overlong \xc0\xaf";
    pf_mailbox_entry_t four[4] = {three[1], three[0], three[2], rows[1]};
    text = pf_reader_render_list(four, 4, NULL);
    o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    arr = json_object_get(o, "messages");
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "reference")),
                        "line\nbreak\ttab\x01\\");
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "id")),
                        rows[1].id);
    assert_true(json_is_null(json_object_get(o, "next_cursor")));
    json_decref(o);
    free(text);
    text = pf_reader_render_list(three, 1, NULL);
    assert_string_equal(text, "{\"messages\":[],\"next_cursor\":null}");
    free(text);
}

static void test_error_reply(void **state)
{
    (void)state;
    pf_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    pf_reply_error(&rep, 401, "invalid_token", "the token is invalid or expired");
    assert_int_equal(rep.status, 401);
    assert_string_equal(rep.content_type, "application/json");
    assert_string_equal(rep.body,
                        "{\"error\":\"invalid_token\",\"message\":\"the token is invalid or expired\"}");
    pf_reply_no_message(&rep); /* replaces (and frees) the previous body */
    assert_int_equal(rep.status, 404);
    assert_string_equal(rep.body, "{\"error\":\"not_found\",\"message\":\"no such message\"}");
    pf_reply_clear(&rep);
    assert_null(rep.body);
    pf_reply_clear(&rep); /* idempotent */
}

static void test_disposition(void **state)
{
    (void)state;
    struct {
        const char *name, *want;
    } cases[] = {
        {"bescheid.pdf", "attachment; filename=\"bescheid.pdf\"; filename*=UTF-8''bescheid.pdf"},
        {"Bescheid \xc3\xa4.pdf",
         "attachment; filename=\"Bescheid___.pdf\"; filename*=UTF-8''Bescheid%20%C3%A4.pdf"},
        {"../../etc/passwd",
         "attachment; filename=\"_._.._etc_passwd\"; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd"},
        {"a\r\nSet-Cookie: x=1",
         "attachment; filename=\"a__Set-Cookie__x_1\"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1"},
        {"\"quoted\";x", "attachment; filename=\"_quoted__x\"; filename*=UTF-8''%22quoted%22%3Bx"},
        {"", "attachment; filename=\"attachment\""},
        {NULL, "attachment; filename=\"attachment\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *d = pf_reader_disposition(cases[i].name);
        assert_string_equal(d, cases[i].want);
        free(d);
    }
    /* long names are cut, and the header stays bounded */
    char longname[2000];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    char *d = pf_reader_disposition(longname);
    assert_true(strlen(d) < 300);
    free(d);
    /* control characters never reach the header */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    d = pf_reader_disposition(all);
    for (const char *p = d; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    free(d);
}

/* A name cut at 100 bytes is cut before a code point, not inside it. */
static void test_disposition_cut(void **state)
{
    (void)state;
    char name[200];
    memset(name, 'x', 99);
    strcpy(name + 99, "\xc3\xa4\xc3\xa4.pdf"); /* byte 100 is inside the first "ä" */
    char *d = pf_reader_disposition(name);
    char want[300];
    snprintf(want, sizeof(want), "attachment; filename=\"%.99s\"; filename*=UTF-8''%.99s", name,
             name);
    assert_string_equal(d, want);
    free(d);
    memset(name, 'x', 98);
    strcpy(name + 98, "\xf0\x9f\x93\xac.pdf"); /* a 4-byte one across byte 100 */
    d = pf_reader_disposition(name);
    assert_non_null(strstr(d, "filename*=UTF-8''xx"));
    assert_null(strstr(d, "%F0"));
    free(d);
}

#define FFFD "\xef\xbf\xbd"
#define RLO "\xe2\x80\xae"

/* An opened notice and its row with texts the broker would have refused:
 * what is shown is replaced in place, what is fine stays the very same
 * string (no copy), and the names of the replaced ones are listed. */
static void test_clean_notice(void **state)
{
    (void)state;
    pf_mailbox_message_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.meta.id, sizeof(m.meta.id), "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b");
    m.meta.sender = strdup("tax-office");
    pf_attachment_t att[2] = {{.name = strdup("bescheid.pdf"), .media_type = strdup("a/b")},
                              {.name = strdup("rechnung" RLO "fdp.exe"), .media_type = strdup("")}};
    pf_notice_t n = {.title = strdup("Grundsteuer"),
                     .subject = strdup("Ihr " RLO "Bescheid"),
                     .body = strdup("Ton\x07 und \x1b[2J\r\n\tRTL " RLO "ok"),
                     .reference = strdup("AZ 1/2"),
                     .sender = strdup("x\x01y"), /* not shown: left alone */
                     .sent_at = strdup("2025-01-31T12:00:00Z"),
                     .attachments = malloc(sizeof(att)),
                     .attachment_count = 2};
    memcpy(n.attachments, att, sizeof(att));
    const char *title = n.title, *reference = n.reference, *sender = m.meta.sender,
               *name0 = n.attachments[0].name;
    pf_cleaned_t c;
    memset(&c, 0, sizeof(c));
    pf_reader_clean_notice(&m, &n, &c);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.list, "subject,body,attachments[1].name");
    assert_string_equal(n.subject, "Ihr " FFFD "Bescheid");
    /* the body keeps line breaks, tabs and bidi controls (right-to-left
     * text), not the bell and the escape */
    assert_string_equal(n.body, "Ton" FFFD " und " FFFD "[2J\r\n\tRTL " RLO "ok");
    assert_string_equal(n.attachments[1].name, "rechnung" FFFD "fdp.exe");
    assert_ptr_equal(n.title, title);
    assert_ptr_equal(n.reference, reference);
    assert_ptr_equal(m.meta.sender, sender);
    assert_ptr_equal(n.attachments[0].name, name0);
    assert_string_equal(n.sender, "x\x01y");
    /* clean stays clean */
    memset(&c, 0, sizeof(c));
    pf_reader_clean_notice(&m, &n, &c);
    assert_int_equal(c.count, 0);
    assert_string_equal(c.list, "");
    pf_notice_clear(&n);
    free(m.meta.sender);
}

static void test_clean_entry(void **state)
{
    (void)state;
    pf_mailbox_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.id, sizeof(e.id), "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5c");
    e.sender = strdup("tax-office");
    e.title = strdup("Rechnung" RLO "fdp.exe");
    e.reference = strdup("line\nbreak");
    pf_cleaned_t c;
    memset(&c, 0, sizeof(c));
    pf_reader_clean_entry(&e, &c);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.list, "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5c.title,"
                                "0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5c.reference");
    assert_string_equal(e.title, "Rechnung" FFFD "fdp.exe");
    assert_string_equal(e.reference, "line" FFFD "break");
    assert_string_equal(e.sender, "tax-office");
    free(e.sender);
    free(e.title);
    free(e.reference);
}

/* The log line's list stays bounded and says when it names fewer than
 * were replaced. */
static void test_cleaned_list_bounded(void **state)
{
    (void)state;
    pf_cleaned_t c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 100; i++) {
        char name[48];
        snprintf(name, sizeof(name), "attachments[%d].name", i);
        pf_cleaned_add(&c, name);
        assert_int_equal(strlen(c.list), c.len);
        assert_true(c.len < sizeof(c.list));
    }
    assert_int_equal(c.count, 100);
    assert_true(c.cut);
    assert_non_null(strstr(c.list, "attachments[0].name,attachments[1].name,"));
    assert_string_equal(c.list + c.len - 4, ",...");
    /* a name longer than the whole list */
    char huge[400];
    memset(huge, 'n', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    memset(&c, 0, sizeof(c));
    pf_cleaned_add(&c, huge);
    pf_cleaned_add(&c, "body");
    assert_string_equal(c.list, "...");
    assert_int_equal(c.count, 2);
}

static void test_media_type(void **state)
{
    (void)state;
    assert_string_equal(pf_reader_media_type("application/pdf"), "application/pdf");
    assert_string_equal(pf_reader_media_type("image/svg+xml"), "image/svg+xml");
    assert_string_equal(pf_reader_media_type("application/vnd.ms-excel"),
                        "application/vnd.ms-excel");
    const char *bad[] = {NULL, "", "pdf", "/pdf", "application/", "a/b/c",
                         "text/html; charset=utf-8", "text/html\r\nX-Evil: 1", "te xt/html"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_string_equal(pf_reader_media_type(bad[i]), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_route_not_found),
        cmocka_unit_test(test_route_ids),
        cmocka_unit_test(test_route_attachment_index),
        cmocka_unit_test(test_route_methods),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_cursor_roundtrip),
        cmocka_unit_test(test_cursor_rejects),
        cmocka_unit_test(test_render_list),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_disposition),
        cmocka_unit_test(test_disposition_cut),
        cmocka_unit_test(test_clean_notice),
        cmocka_unit_test(test_clean_entry),
        cmocka_unit_test(test_cleaned_list_bounded),
        cmocka_unit_test(test_media_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
