/* Unit tests for lib/proto/wire: round trips of every command, every
 * limit, malformed and trailing frames, bad UTF-8.  Also the usage
 * example of the codec: encode into a pf_wire_out_t, hand its frames to
 * the decoder, read the borrowed fields, clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/wire.h"

#define JTI1 "01890a5d-ac96-774b-bcce-b302099a8057"
#define JTI2 "01890a5d-ac96-774b-bcce-b302099a8058"

static pf_wire_limits_t s_lim;

static int s_setup(void **state)
{
    (void)state;
    pf_wire_limits_default(&s_lim);
    return 0;
}

/* Frames from NUL-terminated strings (NULL-terminated list). */
static size_t s_frames(pf_wire_frame_t *f, size_t max, ...)
{
    va_list ap;
    va_start(ap, max);
    size_t n = 0;
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && n < max) {
        f[n].data = s;
        f[n].size = strlen(s);
        f[n].owned = NULL;
        n++;
    }
    va_end(ap);
    return n;
}

/* Decodes and expects failure with code; returns the reason for checks. */
static void s_expect_fail(const pf_wire_frame_t *f, size_t n, unsigned accept, const char *code)
{
    pf_wire_msg_t m;
    pf_wire_error_t err;
    int rc = pf_wire_decode(f, n, &s_lim, accept, &m, &err);
    if (rc == 0)
        fail_msg("decoded, expected %s", code);
    assert_non_null(err.code);
    if (strcmp(err.code, code) != 0)
        fail_msg("got %s (%s), expected %s", err.code, err.reason, code);
    assert_true(strlen(err.reason) > 0);
}

static void s_expect_send_fail(const char *header, const char *code)
{
    pf_wire_frame_t f[4];
    size_t n = s_frames(f, 4, "PF1", "SEND", header, NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, code);
}

static const char *s_recipients[] = {"citizen-a", "citizen-b"};

static pf_wire_send_t s_sample(pf_wire_attachment_t *atts)
{
    atts[0] = (pf_wire_attachment_t){"bescheid.pdf", "application/pdf",
                                     (const unsigned char *)"%PDF-1.7 ...", 12};
    atts[1] = (pf_wire_attachment_t){"leer.txt", NULL, NULL, 0};
    return (pf_wire_send_t){
        .request_id = "req-1",
        .recipients = s_recipients,
        .recipient_count = 2,
        .title = "Grundsteuerbescheid 2025",
        .subject = "Ihr Bescheid über die Grundsteuer",
        .body = "Sehr geehrte Damen und Herren,\n\nanbei Ihr Bescheid \"2025\" (Akte C:\\A\\1)."
                "\tMfG \xe2\x82\xac \xf0\x9f\x93\x84",
        .reference = "AZ 12/345-Ü",
        .read_receipt = true,
        .level = 2,
        .attachments = atts,
        .attachment_count = 2,
    };
}

static void test_send_round_trip(void **state)
{
    (void)state;
    pf_wire_attachment_t atts[2];
    pf_wire_send_t s = s_sample(atts);
    pf_wire_out_t out = {0};
    pf_wire_error_t err;
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), 0);
    assert_int_equal(out.count, 5);
    assert_memory_equal(out.frames[0].data, "PF1", 3);
    assert_memory_equal(out.frames[1].data, "SEND", 4);

    pf_wire_msg_t m;
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_int_equal(m.cmd, PF_WIRE_SEND);
    assert_string_equal(m.send.request_id, "req-1");
    assert_int_equal(m.send.recipient_count, 2);
    assert_string_equal(m.send.recipients[1], "citizen-b");
    assert_string_equal(m.send.title, s.title);
    assert_string_equal(m.send.subject, s.subject);
    assert_string_equal(m.send.body, s.body);
    assert_string_equal(m.send.reference, s.reference);
    assert_true(m.send.read_receipt);
    assert_int_equal(m.send.level, 2);
    assert_int_equal(m.send.attachment_count, 2);
    assert_string_equal(m.send.attachments[0].name, "bescheid.pdf");
    assert_string_equal(m.send.attachments[0].media_type, "application/pdf");
    assert_int_equal(m.send.attachments[0].size, 12);
    assert_memory_equal(m.send.attachments[0].data, "%PDF-1.7 ...", 12);
    assert_string_equal(m.send.attachments[1].media_type, "application/octet-stream");
    assert_int_equal(m.send.attachments[1].size, 0);
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);

    /* the other branches of the header: no receipt, no attachments, no
     * reference */
    s.read_receipt = false;
    s.level = 1;
    s.attachment_count = 0;
    s.reference = NULL;
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), 0);
    assert_int_equal(out.count, 3);
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_false(m.send.read_receipt);
    assert_int_equal(m.send.level, 1);
    assert_int_equal(m.send.attachment_count, 0);
    assert_string_equal(m.send.reference, "");
    assert_string_equal(m.send.body, s.body);
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);
}

static void test_send_defaults(void **state)
{
    (void)state;
    pf_wire_frame_t f[3];
    size_t n = s_frames(f, 3, "PF1", "SEND",
                        "{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"t\","
                        "\"subject\":\"s\",\"body\":\"\"}",
                        NULL);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_string_equal(m.send.reference, "");
    assert_false(m.send.read_receipt);
    assert_int_equal(m.send.level, 1);
    assert_int_equal(m.send.attachment_count, 0);
    pf_wire_msg_clear(&m);
}

#define HDR(extra)                                                                                 \
    "{\"request_id\":\"r-9\",\"recipients\":[\"x\"],\"title\":\"t\",\"subject\":\"s\","            \
    "\"body\":\"b\"" extra "}"

static void test_send_malformed_headers(void **state)
{
    (void)state;
    s_expect_send_fail("", PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{", PF_WIRE_E_MALFORMED);
    s_expect_send_fail("[1,2]", PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR("") "{}", PF_WIRE_E_MALFORMED);            /* trailing bytes */
    s_expect_send_fail(HDR(",\"title\":\"u\""), PF_WIRE_E_MALFORMED); /* duplicate key */
    s_expect_send_fail(HDR(",\"read_reciept\":true"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"read_receipt\":\"yes\""), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"required_level\":\"high\""), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"reference\":5"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"attachments\":{}"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[],\"title\":\"t\",\"subject\":\"s\","
                       "\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":\"x\",\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\",\"x\"],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED); /* duplicate recipient */
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"../x\"],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r r\",\"recipients\":[\"x\"],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"recipients\":[\"x\"],\"title\":\"t\",\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"a\\nb\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED); /* control character in the title */
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"a\\u0000b\"}",
                       PF_WIRE_E_MALFORMED); /* NUL inside a string */
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"\\ud800\"}",
                       PF_WIRE_E_MALFORMED); /* lone surrogate escape */
    /* members of the wrong type, also nested ones that are read to their end */
    s_expect_send_fail(HDR(",\"reference\":null"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"read_receipt\":null"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"required_level\":[\"hoch\"]"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"attachments\":null"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":{\"a\":[1,{}]},"
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail("{\"request_id\":\"r\",\"recipients\":[\"x\",7],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"b\"}",
                       PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"extra\":{\"deep\":[[[true]]]}"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"extra\":[1,]"), PF_WIRE_E_MALFORMED); /* and not JSON */
    s_expect_send_fail(HDR(",\"t\\u0069tle\":\"u\""), PF_WIRE_E_MALFORMED); /* escaped twin */
    s_expect_send_fail("\"just a string\"", PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"read_receipt\":truex"), PF_WIRE_E_MALFORMED);
    s_expect_send_fail(HDR(",\"read_receipt\":true,"), PF_WIRE_E_MALFORMED);
}

/* Peak resident memory of this process, KiB (VmHWM). */
static long s_peak_kib(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (fp && fgets(line, sizeof(line), fp))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (fp)
        fclose(fp);
    return kib;
}

/* Decodes a SEND whose header lists n elements in a "key" array, in a
 * child process; exits 0 when it was refused with code and the peak memory
 * grew by less than 3 times the header (the arena of its strings is one
 * header's size). */
static void s_long_array_child(const char *key, size_t n, const char *code)
{
    size_t cap = 2 * n + 256;
    char *hdr = malloc(cap);
    int off = snprintf(hdr, cap,
                       "{\"request_id\":\"r\",\"title\":\"t\",\"subject\":\"s\","
                       "\"body\":\"b\",%s\"%s\":[",
                       strcmp(key, "recipients") == 0 ? "" : "\"recipients\":[\"x\"],", key);
    for (size_t i = 0; i < n; i++) {
        hdr[off++] = '0';
        hdr[off++] = i + 1 < n ? ',' : ']';
    }
    hdr[off++] = '}';
    hdr[off] = '\0';
    pf_wire_limits_t lim;
    pf_wire_limits_default(&lim);
    lim.max_header = (size_t)off;
    lim.max_total = (size_t)off + 64;
    lim.max_recipients = 2;
    pf_wire_frame_t f[3] = {{"PF1", 3, NULL}, {"SEND", 4, NULL}, {hdr, (size_t)off, NULL}};
    long before = s_peak_kib();
    pf_wire_msg_t m;
    pf_wire_error_t err;
    int rc = pf_wire_decode(f, 3, &lim, PF_WIRE_TO_BROKER, &m, &err);
    long grew = s_peak_kib() - before;
    if (rc == 0 || strcmp(err.code, code) != 0 || grew >= (long)(3 * (size_t)off / 1024)) {
        fprintf(stderr, "%s: rc %d code %s, peak grew %ld KiB for a %d byte header\n", key, rc,
                rc == 0 ? "-" : err.code, grew, off);
        _exit(1);
    }
    _exit(0);
}

/* A long array in the header costs its bytes, not 8 or 64 bytes more per
 * element: the elements past the limit are counted, not kept.  (The
 * decoder kept all of them before it checked the limits: 32 times the
 * header's size for a list of attachments.) */
static void test_long_arrays_bounded(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        const char *code;
    } cases[] = {{"recipients", PF_WIRE_E_TOO_LARGE}, {"attachments", PF_WIRE_E_MALFORMED}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            s_long_array_child(cases[i].key, 2u * 1024 * 1024, cases[i].code);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("%s: the child failed (status %d)", cases[i].key, status);
    }
}

/* a header read from its keys as JSON defines them: escapes in keys,
 * whitespace anywhere, any order */
static void test_send_header_as_json(void **state)
{
    (void)state;
    pf_wire_frame_t f[4];
    size_t n = s_frames(f, 4, "PF1", "SEND",
                        " {\"att\\u0061chments\" : [ {\"size\":3 ,\"media_type\":\"text/plain\","
                        "\"name\":\"a.txt\"} ] ,\r\n\"body\":\"\\u00fc\\/\\ud83d\\udcc4\",\t"
                        "\"subject\":\"s\",\"title\":\"t\",\"recipients\":[ \"x\" ],"
                        "\"read_receipt\":false,\"request_id\":\"r-1\"} \n",
                        "abc", NULL);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_string_equal(m.send.body, "\xc3\xbc/\xf0\x9f\x93\x84");
    assert_int_equal(m.send.attachment_count, 1);
    assert_string_equal(m.send.attachments[0].name, "a.txt");
    assert_int_equal(m.send.attachments[0].size, 3);
    pf_wire_msg_clear(&m);

    /* an attachment's members: twice, unknown, a size that is not an
     * integer, or not the frame's */
    static const char *const bad[] = {
        "{\"name\":\"a.txt\",\"name\":\"b.txt\",\"media_type\":\"text/plain\",\"size\":3}",
        "{\"name\":\"a.txt\",\"media_type\":\"text/plain\",\"size\":3,\"hash\":\"x\"}",
        "{\"name\":\"a.txt\",\"media_type\":\"text/plain\",\"size\":3.0}",
        "{\"name\":\"a.txt\",\"media_type\":\"text/plain\",\"size\":\"3\"}",
        "{\"name\":\"a.txt\",\"media_type\":\"text/plain\",\"size\":4}",
        "{\"name\":\"a.txt\",\"media_type\":\"text/plain\",\"size\":-3}",
        "{\"name\":\"a.txt\",\"media_type\":\"text/plain\",\"size\":99999999999999999999}",
        "{\"name\":\"a.txt\",\"size\":3}",
        "[\"a.txt\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char h[512];
        snprintf(h, sizeof(h), HDR(",\"attachments\":[%s]"), bad[i]);
        n = s_frames(f, 4, "PF1", "SEND", h, "abc", NULL);
        if (pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err) != -1 ||
            strcmp(err.code, PF_WIRE_E_MALFORMED) != 0)
            fail_msg("accepted or wrong code: %s", bad[i]);
    }

    /* a NUL byte after a number: refused (jansson's lexer dropped it) */
    const char nul[] = "{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"t\","
                       "\"subject\":\"s\",\"body\":\"b\",\"attachments\":[{\"name\":\"a\","
                       "\"media_type\":\"text/plain\",\"size\":3\0}]}";
    n = s_frames(f, 4, "PF1", "SEND", "x", "abc", NULL);
    f[2].data = nul;
    f[2].size = sizeof(nul) - 1;
    assert_int_equal(pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err), -1);
}

static void test_send_request_id_echoed(void **state)
{
    (void)state;
    pf_wire_frame_t f[3];
    size_t n = s_frames(f, 3, "PF1", "SEND", HDR(",\"required_level\":\"ultra\""), NULL);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err), -1);
    assert_string_equal(err.request_id, "r-9");
}

static void test_bad_utf8(void **state)
{
    (void)state;
    /* invalid bytes inside a JSON string, overlong '/', a CESU surrogate */
    const char *bad[] = {
        HDR(",\"reference\":\"\xff\""),
        HDR(",\"reference\":\"\xc0\xaf\""),
        HDR(",\"reference\":\"\xed\xa0\x80\""),
        HDR(",\"reference\":\"\xf4\x90\x80\x80\""), /* above U+10FFFF */
        HDR(",\"reference\":\"\xe2\x82\""),         /* truncated */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        s_expect_send_fail(bad[i], PF_WIRE_E_MALFORMED);
    /* C1 controls, escaped or raw, anywhere; bidirectional overrides in a
     * one-line text (a file name that shows as another) */
    const char *c1[] = {
        HDR(",\"reference\":\"a\\u0085b\""),
        "{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"A\xc2\x9b"
        "2J\",\"subject\":\"s\",\"body\":\"b\"}",
        "{\"request_id\":\"r\",\"recipients\":[\"x\"],\"title\":\"t\",\"subject\":\"s\","
        "\"body\":\"b\\u009b\"}",
        HDR(",\"reference\":\"\\u202e\""),
        HDR(",\"reference\":\"a\xe2\x81\xa6" "b\""),
    };
    for (size_t i = 0; i < sizeof(c1) / sizeof(c1[0]); i++)
        s_expect_send_fail(c1[i], PF_WIRE_E_MALFORMED);
    assert_false(pf_wire_text_ok("Rechnung\xe2\x80\xae" "fdp.exe", 1, 100, false));
    assert_true(pf_wire_text_ok("\xe2\x80\xae" "text", 1, 100, true));
    assert_true(pf_wire_text_ok("Stra\xc3\x9f" "e \xe2\x82\xac \xe2\x80\x94", 1, 100, false));
    assert_true(pf_wire_utf8_valid("\xc3\xbc\xe2\x82\xac\xf0\x9f\x93\xac", 9));
    assert_false(pf_wire_utf8_valid("\x80", 1));
    assert_false(pf_wire_utf8_valid("\xe0\x80\x80", 3));
}

#define FFFD "\xef\xbf\xbd"
#define RLO "\xe2\x80\xae"

/* s cleaned as a one-line (multiline false) or multi-line text must read
 * want; want NULL: s passes as it is. */
static void s_clean_is(const char *s, bool multiline, const char *want)
{
    char *got = pf_wire_text_clean(s, multiline);
    if (want == NULL) {
        if (got != NULL)
            fail_msg("\"%s\" (multiline %d) was changed to \"%s\"", s, multiline, got);
        assert_true(pf_wire_text_ok(s, 0, SIZE_MAX, multiline));
        return;
    }
    if (got == NULL)
        fail_msg("\"%s\" (multiline %d) was left as it is", s, multiline);
    assert_string_equal(got, want);
    assert_true(pf_wire_text_ok(got, 0, SIZE_MAX, multiline));
    assert_null(pf_wire_text_clean(got, multiline)); /* clean stays clean */
    free(got);
}

static void test_text_clean_rules(void **state)
{
    (void)state;
    /* nothing to do: empty, ASCII, umlauts, euro, a 4-byte emoji, and the
     * U+FFFD an earlier clean may have left */
    s_clean_is("", false, NULL);
    s_clean_is("", true, NULL);
    s_clean_is("Ma\xc3\x9fstab \xe2\x82\xac \xf0\x9f\x93\xac " FFFD, false, NULL);
    /* C0 controls: all of them in a one-line text, all but line breaks and
     * tabs in a multi-line one; U+0020 is the first that stays */
    for (int c = 1; c < 0x20; c++) {
        char in[4] = {'a', (char)c, 'b', '\0'};
        s_clean_is(in, false, "a" FFFD "b");
        bool keep = c == '\n' || c == '\r' || c == '\t';
        s_clean_is(in, true, keep ? NULL : "a" FFFD "b");
    }
    s_clean_is(" ~", false, NULL);
    s_clean_is("x\x7fy", false, "x" FFFD "y"); /* DEL */
    s_clean_is("x\x7fy", true, "x" FFFD "y");
    s_clean_is("\x1b[2J\x07", true, FFFD "[2J" FFFD); /* ESC, BEL */
    s_clean_is("Zeile 1\r\n\tZeile 2", true, NULL);
    s_clean_is("Zeile 1\r\n\tZeile 2", false, "Zeile 1" FFFD FFFD FFFD "Zeile 2");
    /* C1 controls U+0080-U+009F (two bytes become three); U+00A0 stays */
    s_clean_is("x\xc2\x80y\xc2\x9fz", false, "x" FFFD "y" FFFD "z");
    s_clean_is("x\xc2\x85y", true, "x" FFFD "y");
    s_clean_is("\xc2\x7f", false, FFFD FFFD); /* a lead byte cut short, then DEL */
    s_clean_is("\xc2\xa0\xc2\xbf\xc3\x80", false, NULL);
    /* bidirectional embeddings, overrides and isolates: replaced in
     * one-line texts only; their neighbours U+2029, U+202F, U+2065 and
     * U+206A stay */
    const char *bidi[] = {"\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac",
                          "\xe2\x80\xad", "\xe2\x80\xae", "\xe2\x81\xa6",
                          "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9"};
    for (size_t i = 0; i < sizeof(bidi) / sizeof(bidi[0]); i++) {
        char in[16], want[16];
        snprintf(in, sizeof(in), "a%sb", bidi[i]);
        snprintf(want, sizeof(want), "a%sb", FFFD);
        s_clean_is(in, false, want);
        s_clean_is(in, true, NULL);
    }
    s_clean_is("\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa", false, NULL);
    s_clean_is("Rechnung" RLO "fdp.exe", false, "Rechnung" FFFD "fdp.exe");
}

static void test_text_clean_utf8(void **state)
{
    (void)state;
    /* a stray continuation byte or a byte no UTF-8 has: one U+FFFD each */
    s_clean_is("x\x80y", false, "x" FFFD "y");
    s_clean_is("\xbf\xff\xfe\xf5", true, FFFD FFFD FFFD FFFD);
    /* overlong forms: the lead byte cannot start them, so every byte is
     * replaced on its own ('/' as C0 AF and E0 80 AF) */
    s_clean_is("\xc0\xaf", false, FFFD FFFD);
    s_clean_is("\xc1\xbf", false, FFFD FFFD);
    s_clean_is("\xe0\x80\xaf", false, FFFD FFFD FFFD);
    s_clean_is("\xf0\x8f\xbf\xbf", false, FFFD FFFD FFFD FFFD);
    /* the first valid ones after them stay */
    s_clean_is("\xe0\xa0\x80\xf0\x90\x80\x80", false, NULL);
    /* surrogates (CESU-8) and above U+10FFFF; U+D7FF, U+E000 and
     * U+10FFFF stay */
    s_clean_is("\xed\xa0\x80", false, FFFD FFFD FFFD);
    s_clean_is("\xed\xbf\xbf", true, FFFD FFFD FFFD);
    s_clean_is("\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf", false, NULL);
    s_clean_is("\xf4\x90\x80\x80", false, FFFD FFFD FFFD FFFD);
    /* a sequence cut short: one U+FFFD for its valid start, and the byte
     * that cut it is taken on its own */
    s_clean_is("\xe2\x82", false, FFFD);
    s_clean_is("\xe2\x82Z", false, FFFD "Z");
    s_clean_is("\xf0\x9f\x93", true, FFFD);
    s_clean_is("\xf0\x9f\x93\xe2\x82\xac", true, FFFD "\xe2\x82\xac");
    s_clean_is("\xe2\x80\x0a", true, FFFD "\n");
    s_clean_is("\xe2\x80\x0a", false, FFFD FFFD);
    /* a cut sequence that would have been a bidi override is still cut */
    s_clean_is("\xe2\x80", false, FFFD);
}

/* xorshift64*: the same inputs on every run, so a failure repeats */
static uint64_t s_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

/* Random texts: a third of them made of code points that pass (or pass
 * in a multi-line text only: line breaks, bidi controls), a third with
 * code points and sequences the rules refuse mixed in, a third of single
 * bytes that matter to UTF-8 (lead and continuation bytes of every length,
 * bytes no UTF-8 has).  Whatever the input, the output passes
 * pf_wire_text_ok, is at most three times as long and is clean again, and
 * the input is left alone exactly when it passes already. */
static void test_text_clean_property(void **state)
{
    (void)state;
    static const char *const good[] = {"a",
                                       " ",
                                       "Z",
                                       "~",
                                       "\xc2\xa0",
                                       "\xc3\xa4",
                                       "\xe2\x82\xac",
                                       "\xf0\x9f\x93\xac",
                                       "\xef\xbf\xbd",
                                       "\xe2\x80\xa9",
                                       "\xe2\x80\xaf",
                                       "\xed\x9f\xbf",
                                       "\xf4\x8f\xbf\xbf",
                                       "\n",
                                       "\r",
                                       "\t",
                                       "\xe2\x80\xae",
                                       "\xe2\x81\xa6",
                                       "\xe2\x81\xa9",
                                       "\xe2\x80\xaa"};
    static const char *const bad[] = {"\x01",
                                      "\x1b",
                                      "\x1f",
                                      "\x7f",
                                      "\xc2\x80",
                                      "\xc2\x9f",
                                      "\x80",
                                      "\xbf",
                                      "\xff",
                                      "\xc0\xaf",
                                      "\xe0\x80\xaf",
                                      "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80",
                                      "\xe2\x82",
                                      "\xf0\x9f\x93",
                                      "\xe2\x80"};
    static const unsigned char bytes[] = {'a',  '\n', 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                          0xa6, 0xaa, 0xae, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
                                          0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x81};
    const size_t ngood = sizeof(good) / sizeof(good[0]), nbad = sizeof(bad) / sizeof(bad[0]);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char in[160];
    size_t passed[2] = {0, 0}, cleaned[2] = {0, 0};
    for (int round = 0; round < 100000; round++) {
        int kind = round % 3;
        size_t len = 0, parts = s_rand(&x) % 24;
        for (size_t i = 0; i < parts; i++) {
            uint64_t r = s_rand(&x);
            if (kind == 2) {
                in[len++] = (char)bytes[(r >> 8) % sizeof(bytes)];
                continue;
            }
            const char *t = kind == 1 && r % 4 == 0 ? bad[(r >> 8) % nbad] : good[(r >> 8) % ngood];
            memcpy(in + len, t, strlen(t));
            len += strlen(t);
        }
        in[len] = '\0';
        for (int ml = 0; ml < 2; ml++) {
            char *out = pf_wire_text_clean(in, ml);
            if (pf_wire_text_ok(in, 0, SIZE_MAX, ml)) {
                if (out != NULL)
                    fail_msg("round %d: a text that passes was changed", round);
                passed[ml]++;
                continue;
            }
            if (out == NULL)
                fail_msg("round %d: a text that fails was left alone", round);
            if (!pf_wire_text_ok(out, 0, SIZE_MAX, ml))
                fail_msg("round %d: the cleaned text fails pf_wire_text_ok", round);
            assert_true(strlen(out) <= 3 * len);
            char *again = pf_wire_text_clean(out, ml);
            assert_null(again);
            free(out);
            cleaned[ml]++;
        }
    }
    /* the inputs reach both sides often enough to mean something */
    for (int ml = 0; ml < 2; ml++) {
        assert_true(passed[ml] > 5000);
        assert_true(cleaned[ml] > 5000);
    }
}

static void test_frames_signature_command(void **state)
{
    (void)state;
    pf_wire_frame_t f[4];
    size_t n = s_frames(f, 4, "PF1", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    s_expect_fail(f, 0, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 4, "XYZ", "HELLO", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 4, "PF2", "HELLO", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_UNSUPPORTED_VERSION);
    n = s_frames(f, 4, "PF1", "FETCH", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_UNSUPPORTED_COMMAND);
    n = s_frames(f, 4, "PF1", "hello", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_UNSUPPORTED_COMMAND);
    /* an ACK is not something a broker accepts */
    n = s_frames(f, 4, "PF1", "ACK", "{}", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_UNSUPPORTED_COMMAND);
    /* trailing frames */
    n = s_frames(f, 4, "PF1", "HELLO", "x", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 4, "PF1", "PING", "", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 4, "PF1", "SEND", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);

    pf_wire_msg_t m;
    pf_wire_error_t err;
    n = s_frames(f, 4, "PF1", "HELLO", NULL);
    assert_int_equal(pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_int_equal(m.cmd, PF_WIRE_HELLO);
    pf_wire_msg_clear(&m);
}

static void test_send_trailing_attachment_frame(void **state)
{
    (void)state;
    pf_wire_frame_t f[5];
    /* one attachment announced, two frames follow */
    size_t n = s_frames(f, 5, "PF1", "SEND",
                        HDR(",\"attachments\":[{\"name\":\"a\",\"media_type\":\"text/plain\","
                            "\"size\":1}]"),
                        "A", "B", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    /* frames without an announcement */
    n = s_frames(f, 5, "PF1", "SEND", HDR(""), "A", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    /* announced size differs from the frame */
    n = s_frames(f, 5, "PF1", "SEND",
                 HDR(",\"attachments\":[{\"name\":\"a\",\"media_type\":\"text/plain\","
                     "\"size\":2}]"),
                 "A", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    /* bad names and media types */
    const char *bad[] = {
        HDR(",\"attachments\":[{\"name\":\"../etc/passwd\",\"media_type\":\"text/plain\","
            "\"size\":1}]"),
        HDR(",\"attachments\":[{\"name\":\"..\",\"media_type\":\"text/plain\",\"size\":1}]"),
        HDR(",\"attachments\":[{\"name\":\"a\",\"media_type\":\"text\",\"size\":1}]"),
        HDR(",\"attachments\":[{\"name\":\"a\",\"media_type\":\"text/plain; charset=x\","
            "\"size\":1}]"),
        HDR(",\"attachments\":[{\"name\":\"a\",\"size\":1}]"),
        HDR(",\"attachments\":[{\"name\":\"a\",\"media_type\":\"text/plain\",\"size\":1,"
            "\"x\":1}]"),
        HDR(",\"attachments\":[{\"name\":\"a\",\"media_type\":\"text/plain\",\"size\":-1}]"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = s_frames(f, 5, "PF1", "SEND", bad[i], "A", NULL);
        s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    }
    n = s_frames(f, 5, "PF1", "SEND",
                 HDR(",\"attachments\":[{\"name\":\"a b.txt\",\"media_type\":"
                     "\"application/vnd.x+json\",\"size\":1}]"),
                 "A", NULL);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(f, n, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    pf_wire_msg_clear(&m);
}

static char *s_header_with(size_t recipients, size_t body_len, size_t title_len, size_t natt,
                           size_t att_size)
{
    size_t cap = 4096 + recipients * 32 + body_len + title_len + natt * 96;
    char *h = malloc(cap);
    size_t o = (size_t)snprintf(h, cap, "{\"request_id\":\"r\",\"recipients\":[");
    for (size_t i = 0; i < recipients; i++)
        o += (size_t)snprintf(h + o, cap - o, "%s\"c%zu\"", i ? "," : "", i);
    o += (size_t)snprintf(h + o, cap - o, "],\"title\":\"");
    memset(h + o, 'T', title_len);
    o += title_len;
    o += (size_t)snprintf(h + o, cap - o, "\",\"subject\":\"s\",\"body\":\"");
    memset(h + o, 'B', body_len);
    o += body_len;
    o += (size_t)snprintf(h + o, cap - o, "\"");
    if (natt > 0) {
        o += (size_t)snprintf(h + o, cap - o, ",\"attachments\":[");
        for (size_t i = 0; i < natt; i++)
            o += (size_t)snprintf(h + o, cap - o,
                                  "%s{\"name\":\"a%zu\",\"media_type\":\"text/plain\","
                                  "\"size\":%zu}",
                                  i ? "," : "", i, att_size);
        o += (size_t)snprintf(h + o, cap - o, "]");
    }
    snprintf(h + o, cap - o, "}");
    return h;
}

static void test_limit_each(void **state)
{
    (void)state;
    pf_wire_limits_t saved = s_lim;
    s_lim.max_recipients = 3;
    s_lim.max_body = 100;
    s_lim.max_attachments = 2;
    s_lim.max_attachment = 10;
    s_lim.max_total = 1000;
    s_lim.max_header = 800;
    pf_wire_msg_t m;
    pf_wire_error_t err;
    char att[64];
    memset(att, 'A', sizeof(att));

    /* at every limit: accepted */
    char *h = s_header_with(3, 100, PF_WIRE_MAX_TITLE, 2, 10);
    pf_wire_frame_t f[8] = {{"PF1", 3, NULL},
                            {"SEND", 4, NULL},
                            {h, strlen(h), NULL},
                            {att, 10, NULL},
                            {att, 10, NULL}};
    assert_int_equal(pf_wire_decode(f, 5, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    pf_wire_msg_clear(&m);
    free(h);

    /* one past each */
    h = s_header_with(4, 1, 1, 0, 0);
    s_expect_send_fail(h, PF_WIRE_E_TOO_LARGE);
    free(h);
    h = s_header_with(1, 101, 1, 0, 0);
    s_expect_send_fail(h, PF_WIRE_E_TOO_LARGE);
    free(h);
    h = s_header_with(1, 1, PF_WIRE_MAX_TITLE + 1, 0, 0);
    s_expect_send_fail(h, PF_WIRE_E_MALFORMED);
    free(h);
    h = s_header_with(1, 1, 1, 3, 1);
    f[2] = (pf_wire_frame_t){h, strlen(h), NULL};
    f[3] = f[4] = f[5] = (pf_wire_frame_t){att, 1, NULL};
    s_expect_fail(f, 6, PF_WIRE_TO_BROKER, PF_WIRE_E_TOO_LARGE); /* attachment count */
    free(h);
    h = s_header_with(1, 1, 1, 1, 11);
    f[2] = (pf_wire_frame_t){h, strlen(h), NULL};
    f[3] = (pf_wire_frame_t){att, 11, NULL};
    s_expect_fail(f, 4, PF_WIRE_TO_BROKER, PF_WIRE_E_TOO_LARGE); /* attachment size */
    free(h);
    s_lim.max_total = 400;
    h = s_header_with(1, 100, 200, 2, 10);
    f[2] = (pf_wire_frame_t){h, strlen(h), NULL};
    f[3] = f[4] = (pf_wire_frame_t){att, 10, NULL};
    s_expect_fail(f, 5, PF_WIRE_TO_BROKER, PF_WIRE_E_TOO_LARGE); /* total */
    free(h);
    s_lim.max_total = 100000;
    h = s_header_with(3, 100, 256, 2, 10);
    f[2] = (pf_wire_frame_t){h, strlen(h), NULL};
    s_lim.max_header = strlen(h);
    assert_int_equal(pf_wire_decode(f, 5, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    pf_wire_msg_clear(&m);
    s_lim.max_header = strlen(h) - 1; /* header one byte over */
    s_expect_fail(f, 5, PF_WIRE_TO_BROKER, PF_WIRE_E_TOO_LARGE);
    free(h);

    /* request id: 128 ok, 129 not */
    char rid[PF_WIRE_MAX_REQUEST_ID + 2];
    memset(rid, 'r', sizeof(rid) - 1);
    rid[sizeof(rid) - 1] = '\0';
    const char *one = "x";
    pf_wire_send_t s = {.request_id = rid,
                        .recipients = &one,
                        .recipient_count = 1,
                        .title = "t",
                        .subject = "s",
                        .body = "",
                        .level = 1};
    pf_wire_out_t out = {0};
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), -1);
    rid[PF_WIRE_MAX_REQUEST_ID] = '\0';
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), 0);
    pf_wire_out_clear(&out);
    s_lim = saved;
}

static void test_encoder_refuses(void **state)
{
    (void)state;
    const char *two[] = {"a", "a"};
    pf_wire_send_t s = {.request_id = "r",
                        .recipients = two,
                        .recipient_count = 2,
                        .title = "t",
                        .subject = "s",
                        .body = "b",
                        .level = 1};
    pf_wire_out_t out = {0};
    pf_wire_error_t err;
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), -1);
    assert_string_equal(err.code, PF_WIRE_E_MALFORMED);
    assert_int_equal(out.count, 0);
    s.recipient_count = 1;
    s.subject = "\xff";
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), -1);
    s.subject = "s";
    s.level = 4;
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), -1);
    s.level = 3;
    pf_wire_attachment_t big = {"big.bin", NULL, NULL, s_lim.max_attachment + 1};
    s.attachments = &big;
    s.attachment_count = 1;
    assert_int_equal(pf_wire_encode_send(&s, &s_lim, &out, &err), -1);
    assert_string_equal(err.code, PF_WIRE_E_TOO_LARGE);
    assert_int_equal(out.count, 0);
}

static void test_ack_round_trip(void **state)
{
    (void)state;
    pf_wire_copy_t copies[2] = {{"citizen-a", JTI1}, {"citizen-b", JTI2}};
    char *j = pf_wire_ack_json("req-1", copies, 2);
    pf_wire_out_t out = {0};
    pf_wire_encode_ack_json(j, &out);
    free(j);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_CLIENT, &m, &err), 0);
    assert_int_equal(m.cmd, PF_WIRE_ACK);
    assert_string_equal(m.request_id, "req-1");
    assert_int_equal(m.copy_count, 2);
    assert_string_equal(m.copies[1].recipient, "citizen-b");
    assert_string_equal(m.copies[1].message_id, JTI2);
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);

    pf_wire_frame_t f[4];
    size_t n = s_frames(f, 4, "PF1", "ACK", "{\"request_id\":\"r\",\"copies\":[]}", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 4, "PF1", "ACK",
                 "{\"request_id\":\"r\",\"copies\":[{\"recipient\":\"a\",\"message_id\":\"x\"}]}",
                 NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
}

static void test_nack_round_trip(void **state)
{
    (void)state;
    pf_wire_out_t out = {0};
    pf_wire_encode_nack("req-2", PF_WIRE_E_CONFLICT, "request id \"req-2\"\nused before", &out);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_CLIENT, &m, &err), 0);
    assert_int_equal(m.cmd, PF_WIRE_NACK);
    assert_string_equal(m.request_id, "req-2");
    assert_string_equal(m.code, "conflict");
    assert_string_equal(m.reason, "request id \"req-2\" used before");
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);

    /* an unreadable request id becomes "" rather than breaking the NACK */
    pf_wire_encode_nack("bad id", PF_WIRE_E_MALFORMED, "\xff\xfe", &out);
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_CLIENT, &m, &err), 0);
    assert_string_equal(m.request_id, "");
    assert_string_equal(m.reason, "malformed");
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);

    pf_wire_frame_t f[4];
    size_t n = s_frames(f, 4, "PF1", "NACK",
                        "{\"request_id\":\"r\",\"code\":\"Bad Code\",\"reason\":\"\"}", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
}

static void test_receipt_and_rack(void **state)
{
    (void)state;
    pf_wire_out_t out = {0};
    pf_wire_encode_receipt(JTI1, "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln", &out);
    pf_wire_msg_t m;
    pf_wire_error_t err;
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_CLIENT, &m, &err), 0);
    assert_string_equal(m.jti, JTI1);
    assert_string_equal(m.token, "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln");
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);

    const char *jtis[] = {JTI1, JTI2};
    pf_wire_encode_rack(jtis, 2, &out);
    assert_int_equal(pf_wire_decode(out.frames, out.count, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_int_equal(m.jti_count, 2);
    assert_string_equal(m.jtis[1], JTI2);
    pf_wire_msg_clear(&m);
    pf_wire_out_clear(&out);

    pf_wire_frame_t f[5];
    size_t n = s_frames(f, 5, "PF1", "RECEIPT", JTI1, "a.b", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 5, "PF1", "RECEIPT", JTI1, "a.b.c", "extra", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 5, "PF1", "RECEIPT", "not-a-uuid", "a.b.c", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 5, "PF1", "RECEIPT", JTI1, "a.b.c d", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_CLIENT, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 5, "PF1", "RACK", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);
    n = s_frames(f, 5, "PF1", "RACK", JTI1, "01890a5d-ac96-774b-bcce-b302099a805", NULL);
    s_expect_fail(f, n, PF_WIRE_TO_BROKER, PF_WIRE_E_MALFORMED);

    pf_wire_frame_t many[PF_WIRE_MAX_RACK + 3];
    many[0] = (pf_wire_frame_t){"PF1", 3, NULL};
    many[1] = (pf_wire_frame_t){"RACK", 4, NULL};
    for (size_t i = 2; i < PF_WIRE_MAX_RACK + 3; i++)
        many[i] = (pf_wire_frame_t){JTI1, 36, NULL};
    s_expect_fail(many, PF_WIRE_MAX_RACK + 3, PF_WIRE_TO_BROKER, PF_WIRE_E_TOO_LARGE);
    assert_int_equal(
        pf_wire_decode(many, PF_WIRE_MAX_RACK + 2, &s_lim, PF_WIRE_TO_BROKER, &m, &err), 0);
    assert_int_equal(m.jti_count, PF_WIRE_MAX_RACK);
    pf_wire_msg_clear(&m);
}

static void test_levels_and_ids(void **state)
{
    (void)state;
    assert_int_equal(pf_wire_level_parse("normal"), 1);
    assert_int_equal(pf_wire_level_parse("substantiell"), 2);
    assert_int_equal(pf_wire_level_parse("hoch"), 3);
    assert_int_equal(pf_wire_level_parse("Hoch"), -1);
    assert_string_equal(pf_wire_level_name(3), "hoch");
    assert_true(pf_wire_mailbox_id_valid("citizen-a"));
    assert_true(pf_wire_mailbox_id_valid("a.b_c:d@e-f"));
    assert_false(pf_wire_mailbox_id_valid("-a"));
    assert_false(pf_wire_mailbox_id_valid(""));
    assert_false(pf_wire_mailbox_id_valid("a/b"));
    assert_string_equal(pf_wire_cmd_name(PF_WIRE_RECEIPT), "RECEIPT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_round_trip),
        cmocka_unit_test(test_send_defaults),
        cmocka_unit_test(test_send_malformed_headers),
        cmocka_unit_test(test_send_header_as_json),
        cmocka_unit_test(test_send_request_id_echoed),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_text_clean_rules),
        cmocka_unit_test(test_text_clean_utf8),
        cmocka_unit_test(test_text_clean_property),
        cmocka_unit_test(test_long_arrays_bounded),
        cmocka_unit_test(test_frames_signature_command),
        cmocka_unit_test(test_send_trailing_attachment_frame),
        cmocka_unit_test(test_limit_each),
        cmocka_unit_test(test_encoder_refuses),
        cmocka_unit_test(test_ack_round_trip),
        cmocka_unit_test(test_nack_round_trip),
        cmocka_unit_test(test_receipt_and_rack),
        cmocka_unit_test(test_levels_and_ids),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
