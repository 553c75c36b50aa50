/* Unit tests for lib/bench: the latency histogram (exact below 128 us,
 * within its bucket width above, merge, counts above a bound), the disk
 * probe on a real file, the procstat reader on our own process, and the
 * keep-alive HTTP client against a one-shot local server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/common.h"
#include "bench/diskprobe.h"
#include "bench/hist.h"
#include "bench/http.h"
#include "bench/procstat.h"

static void test_hist_small_values_exact(void **state)
{
    (void)state;
    pf_hist_t *h = pf_hist_new();
    for (uint64_t v = 1; v <= 100; v++)
        pf_hist_add(h, v);
    assert_int_equal(pf_hist_count(h), 100);
    assert_true(pf_hist_quantile_ms(h, 0.5) == 0.050);
    assert_true(pf_hist_quantile_ms(h, 0.99) == 0.099);
    assert_true(pf_hist_max_ms(h) == 0.100);
    assert_true(pf_hist_mean_ms(h) > 0.0504 && pf_hist_mean_ms(h) < 0.0506);
    pf_hist_destroy(&h);
    assert_null(h);
}

static void test_hist_large_values_within_bucket(void **state)
{
    (void)state;
    pf_hist_t *a = pf_hist_new(), *b = pf_hist_new();
    /* 1..10000 ms in a, the same again in b: quantiles stay, counts add */
    for (uint64_t ms = 1; ms <= 10000; ms++) {
        pf_hist_add(a, ms * 1000);
        pf_hist_add(b, ms * 1000);
    }
    pf_hist_merge(a, b);
    assert_int_equal(pf_hist_count(a), 20000);
    double p50 = pf_hist_quantile_ms(a, 0.5), p99 = pf_hist_quantile_ms(a, 0.99);
    assert_true(p50 > 5000 * 0.98 && p50 < 5000 * 1.02);
    assert_true(p99 > 9900 * 0.98 && p99 < 9900 * 1.02);
    assert_true(pf_hist_max_ms(a) == 10000.0);
    /* never above the maximum, even when the bucket's middle is */
    pf_hist_t *c = pf_hist_new();
    pf_hist_add(c, 1000001);
    assert_true(pf_hist_quantile_ms(c, 0.99) <= 1000.001);
    assert_true(pf_hist_quantile_ms(c, 0.99) > 990);
    pf_hist_destroy(&a);
    pf_hist_destroy(&b);
    pf_hist_destroy(&c);
}

static void test_hist_count_above(void **state)
{
    (void)state;
    pf_hist_t *h = pf_hist_new();
    for (uint64_t v = 1; v <= 100; v++)
        pf_hist_add(h, v * 1000); /* 1 .. 100 ms */
    assert_int_equal(pf_hist_count_above(h, 25000), 76);
    assert_int_equal(pf_hist_count_above(h, 100000), 1);
    assert_int_equal(pf_hist_count_above(h, 200000), 0);
    assert_int_equal(pf_hist_count_above(h, 0), 100);
    pf_hist_destroy(&h);
}

/* The probe flushes a real file on this file system, counts each flush,
 * and leaves nothing behind. */
static void test_diskprobe(void **state)
{
    (void)state;
    char path[] = "/tmp/pf-diskprobe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *err = NULL;
    pf_diskprobe_t *p = NULL;
    pf_hist_t *h = NULL;
    /* a flush may take long on a busy disk: a few tries of a second each
     * (how fast the disk is, is not this test's question) */
    for (int i = 0; i < 10 && (h == NULL || pf_hist_count(h) < 3); i++) {
        pf_hist_destroy(&h);
        p = pf_diskprobe_start(path, 5, &err);
        assert_non_null(p);
        struct timespec d = {1, 0};
        nanosleep(&d, NULL);
        h = pf_diskprobe_stop(&p);
        assert_null(p);
        assert_non_null(h);
    }
    assert_true(pf_hist_count(h) >= 3);
    assert_true(pf_hist_max_ms(h) > 0);
    assert_int_equal(access(path, F_OK), -1);
    pf_hist_destroy(&h);
    /* a directory that does not exist: a clear error, no thread */
    assert_null(pf_diskprobe_start("/nonexistent-dir/probe", 5, &err));
    assert_non_null(err);
    assert_null(pf_diskprobe_stop(&p));
}

static void test_hist_empty(void **state)
{
    (void)state;
    pf_hist_t *h = pf_hist_new();
    assert_true(pf_hist_quantile_ms(h, 0.99) == 0);
    assert_true(pf_hist_mean_ms(h) == 0);
    pf_hist_destroy(&h);
}

static void test_procstat_self(void **state)
{
    (void)state;
    pf_procstat_t ps;
    const char *err;
    assert_int_equal(pf_procstat_read(getpid(), &ps, &err), 0);
    assert_true(ps.rss_kib > 0);
    assert_true(ps.hwm_kib >= ps.rss_kib);
    assert_true(ps.cpu_s >= 0);
    /* a pid that does not exist */
    assert_int_equal(pf_procstat_read(0x3ffffff0, &ps, &err), -1);
}

static void test_names(void **state)
{
    (void)state;
    char id[PF_BENCH_ID_MAX];
    pf_bench_mailbox_id(id, "bench-", 42);
    assert_string_equal(id, "bench-42");
    pf_bench_sender_name(id, "bench-s", 3);
    assert_string_equal(id, "bench-s3");
    char *path = pf_bench_sender_keyfile("k", "bench-s3");
    assert_string_equal(path, "k/senders/bench-s3.curve");
    free(path);
    uint64_t s = 1;
    assert_true(pf_bench_rand(&s) != pf_bench_rand(&s));
}

/* A server answering two requests on one connection, then closing. */
static void *s_server(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    char buf[4096];
    size_t len = 0;
    for (int answered = 0; answered < 2 && fd >= 0;) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            int auth = strstr(buf, "Authorization: Bearer tok") != NULL &&
                       strstr(buf, "Authorization: Bearer tok") < end;
            const char *resp = auth ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                                    : "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n";
            send(fd, resp, strlen(resp), 0);
            answered++;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, len - used + 1);
            len -= used;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_http_keepalive(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t alen = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    pthread_t th;
    pthread_create(&th, NULL, s_server, &lfd);

    pf_bench_http_t *h = pf_bench_http_new("127.0.0.1", ntohs(a.sin_port));
    assert_non_null(h);
    int status = 0;
    size_t blen = 0;
    const char *err;
    assert_int_equal(pf_bench_http_get(h, "/x", "tok", &status, &blen, &err), 0);
    assert_int_equal(status, 200);
    assert_int_equal(blen, 5);
    assert_int_equal(pf_bench_http_get(h, "/y", NULL, &status, &blen, &err), 0);
    assert_int_equal(status, 401);
    assert_int_equal(blen, 0);
    pthread_join(th, NULL);
    /* the server is gone: reconnecting fails with a message */
    close(lfd);
    assert_int_equal(pf_bench_http_get(h, "/z", "tok", &status, &blen, &err), -1);
    assert_non_null(err);
    pf_bench_http_destroy(&h);
    assert_null(h);
    assert_null(pf_bench_http_new("not-an-address", 80));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_small_values_exact),
        cmocka_unit_test(test_hist_large_values_within_bucket),
        cmocka_unit_test(test_hist_empty),
        cmocka_unit_test(test_hist_count_above),
        cmocka_unit_test(test_diskprobe),
        cmocka_unit_test(test_procstat_self),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_http_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
