/* Unit tests for lib/util: base64url, UUIDv7 ordering, buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/b64url.h"
#include "util/buf.h"
#include "util/digits.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/uuid7.h"

static void test_b64url_rfc4648_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10 vectors, without padding and in the URL alphabet */
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = pf_b64url_encode(in[i], strlen(in[i]));
        assert_string_equal(e, out[i]);
        unsigned char *d;
        size_t dlen;
        assert_int_equal(pf_b64url_decode(e, strlen(e), &d, &dlen), 0);
        assert_int_equal(dlen, strlen(in[i]));
        assert_memory_equal(d, in[i], dlen);
        free(d);
        free(e);
    }
    char *p = pf_b64_encode("foob", 4);
    assert_string_equal(p, "Zm9vYg==");
    free(p);
}

static void test_b64url_url_alphabet(void **state)
{
    (void)state;
    const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    char *e = pf_b64url_encode(bytes, 3);
    assert_string_equal(e, "-_-_");
    free(e);
}

static void test_b64url_rejects_noncanonical(void **state)
{
    (void)state;
    unsigned char *d;
    size_t n;
    assert_int_equal(pf_b64url_decode("Zg==", 4, &d, &n), -1);  /* padding */
    assert_int_equal(pf_b64url_decode("Zh", 2, &d, &n), -1);    /* non-zero trailing bits */
    assert_int_equal(pf_b64url_decode("Z", 1, &d, &n), -1);     /* impossible length */
    assert_int_equal(pf_b64url_decode("Zm9v+", 5, &d, &n), -1); /* std alphabet */
    assert_int_equal(pf_b64url_decode("Zm 9", 4, &d, &n), -1);  /* whitespace */
    assert_int_equal(pf_b64_decode("Zm9vYg=", 7, &d, &n), -1);  /* bad padding */
    assert_int_equal(pf_b64_decode("Zm9vYg==", 8, &d, &n), 0);
    assert_int_equal(n, 4);
    free(d);
}

static void test_uuid7_format_and_version(void **state)
{
    (void)state;
    char id[PF_UUID_STRLEN + 1];
    pf_uuid7_generate(id);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(pf_uuid_valid(id), 0);
    assert_int_equal(id[14], '7');
    assert_true(strchr("89ab", id[19]) != NULL);
    int64_t ms = pf_uuid7_millis(id);
    assert_true(ms > 1700000000000LL);
    assert_int_equal(pf_uuid_valid("not-a-uuid"), -1);
    assert_int_equal(pf_uuid7_millis("00000000-0000-4000-8000-000000000000"), -1);
}

static void test_uuid7_strictly_increasing(void **state)
{
    (void)state;
    /* many ids within the same millisecond must still sort in creation order */
    char prev[PF_UUID_STRLEN + 1], cur[PF_UUID_STRLEN + 1];
    pf_uuid7_generate(prev);
    for (int i = 0; i < 100000; i++) {
        pf_uuid7_generate(cur);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof(cur));
    }
}

/* The random bits come from a per-thread buffer: a forked child must not
 * hand out what the parent's buffer still holds (the parent's next id). */
static void test_uuid7_fork_does_not_repeat(void **state)
{
    (void)state;
    char first[PF_UUID_STRLEN + 1], child[PF_UUID_STRLEN + 1] = "", next[PF_UUID_STRLEN + 1];
    pf_uuid7_generate(first); /* the buffer is filled and partly left */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[PF_UUID_STRLEN + 1];
        pf_uuid7_generate(id);
        ssize_t w = write(fds[1], id, PF_UUID_STRLEN);
        _exit(w == PF_UUID_STRLEN ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child, PF_UUID_STRLEN), PF_UUID_STRLEN);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pf_uuid7_generate(next);
    assert_int_equal(pf_uuid_valid(child), 0);
    /* characters 19..35: the variant and the 62 random bits */
    assert_string_not_equal(child + 19, next + 19);
    assert_string_not_equal(first + 19, next + 19);
}

#define THREADS 4
#define PER_THREAD 20000
static char s_ids[THREADS * PER_THREAD][PF_UUID_STRLEN + 1];

static void *s_gen(void *arg)
{
    size_t base = (size_t)(uintptr_t)arg * PER_THREAD;
    for (size_t i = 0; i < PER_THREAD; i++)
        pf_uuid7_generate(s_ids[base + i]);
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid7_unique_across_threads(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, s_gen, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    qsort(s_ids, THREADS * PER_THREAD, sizeof(s_ids[0]), s_cmp);
    for (size_t i = 1; i < THREADS * PER_THREAD; i++)
        assert_true(strcmp(s_ids[i - 1], s_ids[i]) < 0);
}

static void test_hex(void **state)
{
    (void)state;
    const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char text[2 * sizeof(bytes) + 1];
    memset(text, 'x', sizeof(text));
    pf_hex_encode(bytes, sizeof(bytes), text);
    assert_string_equal(text, "00017f80abff");
    unsigned char back[sizeof(bytes)];
    assert_int_equal(pf_hex_decode("00017F80ABff", sizeof(back), back), 0);
    assert_memory_equal(back, bytes, sizeof(bytes));
    /* a non-digit anywhere, also in the last place */
    assert_int_equal(pf_hex_decode("0g", 1, back), -1);
    assert_int_equal(pf_hex_decode("00017f80abf ", sizeof(back), back), -1);
    assert_int_equal(pf_hex_decode("-1", 1, back), -1);
    /* a string that ends before its digits: refused, and (ASan) never
     * read past its NUL, also when it ends on an odd digit */
    char *empty = strdup(""), *odd = strdup("abc");
    assert_int_equal(pf_hex_decode(empty, 1, back), -1);
    assert_int_equal(pf_hex_decode(odd, 2, back), -1);
    free(empty);
    free(odd);
    assert_int_equal(pf_hex_digit('9'), 9);
    assert_int_equal(pf_hex_digit('F'), 15);
    assert_int_equal(pf_hex_digit('f'), 15);
    assert_int_equal(pf_hex_digit('G'), -1);
    assert_int_equal(pf_hex_digit('\0'), -1);
    pf_hex_encode(bytes, 0, text);
    assert_string_equal(text, "");
}

static void test_decimal_id(void **state)
{
    (void)state;
    int64_t v = -7;
    assert_int_equal(pf_decimal_id("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(pf_decimal_id("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    /* the value stays as it was on every refusal */
    v = 42;
    const char *bad[] = {"",    "-1", "+1", " 1", "1 ", "1x", "0x10", "9223372036854775808",
                         "1e3", "١"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pf_decimal_id(bad[i], &v), -1);
        assert_int_equal(v, 42);
    }
    assert_int_equal(pf_decimal_id(NULL, &v), -1);
}

static void test_buf(void **state)
{
    (void)state;
    pf_buf_t b;
    pf_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        pf_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data, "0,1,2,", 6);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[999] = '\0';
    pf_buf_reset(&b);
    pf_buf_printf(&b, "<%s>", big);
    assert_int_equal(b.len, 1001);
    size_t n;
    char *s = pf_buf_steal(&b, &n);
    assert_int_equal(n, 1001);
    assert_null(b.data);
    free(s);
    pf_buf_free(&b, 1);
}

static void test_log_escape(void **state)
{
    (void)state;
    char out[64];
    pf_log_escape("a\"b\nc\\", out, sizeof(out));
    assert_string_equal(out, "a\\x22b\\x0ac\\x5c");
    pf_log_escape("0123456789012345678901234567890123456789", out, 16);
    assert_true(strlen(out) < 16);
    pf_log_level_t lv;
    assert_int_equal(pf_log_level_parse("warn", &lv), 0);
    assert_int_equal(lv, PF_LOG_WARN);
    assert_int_equal(pf_log_level_parse("loud", &lv), -1);
}

/* fsync of this program, which the library's calls reach: the real one,
 * or EIO while s_fsync_fails is set. */
static bool s_fsync_fails;

int fsync(int fd)
{
    if (s_fsync_fails) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

static int s_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d) != NULL)
        n++;
    if (d)
        closedir(d);
    return n;
}

/* A write whose fsync fails says so and leaves no descriptor open and no
 * temporary file behind.  (The descriptor stayed open: close was skipped
 * when fsync failed.) */
static void test_file_write_fsync_fails(void **state)
{
    (void)state;
    char dir[] = "/tmp/pf-fileio-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/f", dir);
    const char *err = NULL;
    assert_int_equal(pf_file_write(path, "old", 3, 0600, &err), 0);
    int before = s_open_fds();
    s_fsync_fails = true;
    int rc = pf_file_write(path, "new", 3, 0600, &err);
    s_fsync_fails = false;
    assert_int_equal(rc, -1);
    assert_non_null(err);
    assert_int_equal(s_open_fds(), before);
    DIR *d = opendir(dir);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1); /* f, and no f.tmp.* */
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_rfc4648_vectors),
        cmocka_unit_test(test_b64url_url_alphabet),
        cmocka_unit_test(test_b64url_rejects_noncanonical),
        cmocka_unit_test(test_uuid7_format_and_version),
        cmocka_unit_test(test_uuid7_strictly_increasing),
        cmocka_unit_test(test_uuid7_unique_across_threads),
        cmocka_unit_test(test_uuid7_fork_does_not_repeat),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_decimal_id),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_file_write_fsync_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
