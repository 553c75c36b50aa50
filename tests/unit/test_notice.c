/* Unit tests of lib/proto/notice: the notice document the broker seals.
 * The encoder writes JSON by hand; these tests read what it writes with
 * jansson (an independent parser) and with our decoder, for strings that
 * need every kind of escape, non-ASCII text and attachments of every
 * length modulo 3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/notice.h"

static const char s_tricky[] = "Zitat: \"Bescheid\" \\ Pfad C:\\temp\n"
                               "Tab\there\r\nsteuer\x01\x1f\x7f Gr\xc3\xbc\xc3\x9f"
                               "e \xe2\x80\x9e\xe2\x80\x9c \xe2\x80\xa8 \xf0\x9f\x93\x84 </script>";

static void s_roundtrip(const pf_notice_t *n)
{
    size_t len = 0;
    char *doc = pf_notice_encode(n, &len);
    assert_non_null(doc);
    assert_int_equal(strlen(doc), len);

    /* jansson reads it and finds exactly the members, in this order */
    json_error_t jerr;
    json_t *o = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        fail_msg("jansson: %s in %s", jerr.text, doc);
    assert_int_equal(json_integer_value(json_object_get(o, "v")), PF_NOTICE_VERSION);
    assert_string_equal(json_string_value(json_object_get(o, "title")), n->title);
    assert_string_equal(json_string_value(json_object_get(o, "subject")), n->subject);
    assert_string_equal(json_string_value(json_object_get(o, "body")), n->body);
    assert_string_equal(json_string_value(json_object_get(o, "reference")), n->reference);
    assert_string_equal(json_string_value(json_object_get(o, "sender")), n->sender);
    assert_string_equal(json_string_value(json_object_get(o, "sent_at")), n->sent_at);
    assert_int_equal(json_object_size(o), 8);
    json_t *atts = json_object_get(o, "attachments");
    assert_int_equal(json_array_size(atts), n->attachment_count);
    json_decref(o);

    /* and so does our decoder, bytes of the attachments included */
    pf_notice_t back;
    const char *err = NULL;
    assert_int_equal(pf_notice_decode(doc, len, 1, &back, &err), 0);
    assert_string_equal(back.body, n->body);
    assert_string_equal(back.subject, n->subject);
    assert_int_equal(back.attachment_count, n->attachment_count);
    for (size_t i = 0; i < n->attachment_count; i++) {
        assert_string_equal(back.attachments[i].name, n->attachments[i].name);
        assert_string_equal(back.attachments[i].media_type, n->attachments[i].media_type);
        assert_int_equal(back.attachments[i].size, n->attachments[i].size);
        assert_memory_equal(back.attachments[i].data, n->attachments[i].data,
                            n->attachments[i].size);
    }
    pf_notice_clear(&back);
    free(doc);
}

static void test_escapes_and_utf8(void **state)
{
    (void)state;
    pf_notice_t n = {.title = (char *)s_tricky,
                     .subject = "Ihr Bescheid",
                     .body = (char *)s_tricky,
                     .reference = "",
                     .sender = "Finanzamt \"Mitte\"",
                     .sent_at = "2026-12-03T07:00:00.000Z"};
    s_roundtrip(&n);

    /* every control character escapes */
    char ctl[33];
    for (int i = 1; i < 32; i++)
        ctl[i - 1] = (char)i;
    ctl[31] = '\0';
    n.body = ctl;
    s_roundtrip(&n);

    /* NULL fields are written as empty strings */
    pf_notice_t empty = {0};
    size_t len;
    char *doc = pf_notice_encode(&empty, &len);
    assert_string_equal(doc, "{\"v\":1,\"title\":\"\",\"subject\":\"\",\"body\":\"\","
                             "\"reference\":\"\",\"sender\":\"\",\"sent_at\":\"\","
                             "\"attachments\":[]}");
    free(doc);
}

static void test_attachments(void **state)
{
    (void)state;
    unsigned char bytes[1030];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(i * 7 + 3);
    pf_attachment_t atts[4] = {
        {.name = "bescheid.pdf", .media_type = "application/pdf", .data = bytes, .size = 1030},
        {.name = "a\"b\\c.txt", .media_type = "text/plain", .data = bytes, .size = 1},
        {.name = "Anlage \xc3\x9c.csv", .media_type = "text/csv", .data = bytes, .size = 2},
        {.name = "leer", .media_type = "application/octet-stream", .data = bytes, .size = 0},
    };
    pf_notice_t n = {.title = "Bescheid",
                     .subject = "Betreff",
                     .body = "Text",
                     .reference = "AZ 1",
                     .sender = "s",
                     .sent_at = "t",
                     .attachments = atts,
                     .attachment_count = 4};
    s_roundtrip(&n);
}

#define S_FIELDS "\"title\":\"T\",\"subject\":\"S\",\"body\":\"B\",\"reference\":\"R\"," \
                 "\"sender\":\"s\",\"sent_at\":\"t\""

static void s_decode_fails(const char *doc, const char *why)
{
    pf_notice_t n;
    const char *err = NULL;
    if (pf_notice_decode(doc, strlen(doc), 1, &n, &err) != -1)
        fail_msg("decoded: %s", doc);
    assert_string_equal(err, why);
    assert_null(n.title); /* nothing is left to free */
}

/* what the decoder refuses, and what it leaves alone */
static void test_decode_checks(void **state)
{
    (void)state;
    static const char not_json[] = "notice is not a JSON object";
    static const char version[] = "unsupported notice version";
    static const char malformed[] = "malformed notice document";
    s_decode_fails("", not_json);
    s_decode_fails("[1]", not_json);
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":[]", not_json);
    s_decode_fails("{\"v\":1," S_FIELDS ",\"title\":\"U\",\"attachments\":[]}", not_json);
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":[{\"size\":1,\"size\":1}]}", not_json);
    s_decode_fails("{" S_FIELDS ",\"attachments\":[]}", version);
    s_decode_fails("{\"v\":2," S_FIELDS ",\"attachments\":[]}", version);
    s_decode_fails("{\"v\":1.0," S_FIELDS ",\"attachments\":[]}", version);
    s_decode_fails("{\"v\":\"1\"," S_FIELDS ",\"attachments\":[]}", version);
    s_decode_fails("{\"v\":1," S_FIELDS "}", malformed);
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":{}}", malformed);
    s_decode_fails("{\"v\":1,\"title\":5,\"subject\":\"S\",\"body\":\"B\",\"reference\":\"R\","
                   "\"sender\":\"s\",\"sent_at\":\"t\",\"attachments\":[]}",
                   malformed);
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":[{\"name\":\"a\",\"media_type\":"
                   "\"text/plain\",\"size\":2,\"data\":\"YQ==\"}]}",
                   malformed); /* one byte, not two */
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":[{\"name\":\"a\",\"media_type\":"
                   "\"text/plain\",\"size\":1,\"data\":\"Y\"}]}",
                   malformed); /* not base64 */
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":[{\"media_type\":\"text/plain\","
                   "\"size\":1,\"data\":\"YQ==\"}]}",
                   malformed); /* no name */
    s_decode_fails("{\"v\":1," S_FIELDS ",\"attachments\":[\"a\"]}", malformed);

    /* members a later version may add are left alone, wherever they are */
    static const char later[] =
        "{\"v\":1,\"new\":{\"x\":[1,2]}," S_FIELDS ",\"attachments\":[{\"name\":\"a\","
        "\"hash\":\"h\",\"media_type\":\"text/plain\",\"size\":1,\"data\":\"YQ==\"}]}";
    pf_notice_t n;
    const char *err = NULL;
    assert_int_equal(pf_notice_decode(later, strlen(later), 1, &n, &err), 0);
    assert_string_equal(n.title, "T");
    assert_string_equal(n.sent_at, "t");
    assert_int_equal(n.attachment_count, 1);
    assert_int_equal(n.attachments[0].size, 1);
    assert_memory_equal(n.attachments[0].data, "a", 1);
    pf_notice_clear(&n);
    /* without the data, the size alone is taken */
    assert_int_equal(pf_notice_decode(later, strlen(later), 0, &n, &err), 0);
    assert_null(n.attachments[0].data);
    assert_int_equal(n.attachments[0].size, 1);
    pf_notice_clear(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes_and_utf8),
        cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_decode_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
