/* Fault test 5: idempotency abuse.  Three clients of one procedure send
 * every notice (same request id) three times: two of them in step, so
 * repeats meet in the same batch, the third half a run later; for 1% of
 * the notices the third send changes the payload.
 *
 * Checked: one stored copy per recipient for every request id; every send
 * whose payload equals the stored one gets an ACK naming exactly the
 * stored message ids; every send with a different payload gets NACK
 * "conflict" (all conflicts detected, none invented). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", NULL};

enum { N = 300, SENDERS = 3 };

typedef struct {
    int ok; /* 1 ACK, 0 NACK */
    char ids[2][37];
    char code[32];
    int tries;
} outcome_t;

static outcome_t s_out[SENDERS][N];

/* the notices whose third send differs (1%) */
static bool s_changed(int i)
{
    return i % 100 == 42;
}

typedef struct {
    pf_env_t *env;
    int k;
    long unanswered;
} sender_t;

static void s_notice(int i, int variant, char *rid, size_t rl, pf_client_notice_t *n,
                     const char **to)
{
    snprintf(rid, rl, "ia-%d", i);
    to[0] = s_citizens[i % 3];
    to[1] = s_citizens[(i + 1) % 3];
    *n = (pf_client_notice_t){.request_id = rid,
                              .recipients = to,
                              .recipient_count = 2,
                              .title = variant ? "Bescheid v1" : "Bescheid v0",
                              .subject = "Betreff",
                              .body = variant ? "Geaenderter Text" : "Text des Bescheids",
                              .reference = "AZ 1"};
}

static void *s_sender(void *arg)
{
    sender_t *s = arg;
    pf_client_t *c = pf_load_client(s->env, 0, 2000, 2);
    int offset = s->k == 2 ? N / 2 : 0;
    for (int j = 0; j < N; j++) {
        int i = (j + offset) % N;
        int variant = s->k == 2 && s_changed(i);
        char rid[32];
        const char *to[2];
        pf_client_notice_t n;
        s_notice(i, variant, rid, sizeof(rid), &n, to);
        outcome_t *o = &s_out[s->k][i];
        int64_t end = pf_test_now_ms() + 30000;
        for (;;) {
            pf_client_result_t res;
            const char *err;
            o->tries++;
            int rc = pf_client_send(c, &n, &res, &err);
            if (rc == 0 &&
                (res.ok || (strcmp(res.code, "temporary") != 0 && strcmp(res.code, "busy") != 0))) {
                o->ok = res.ok;
                if (res.ok)
                    for (size_t q = 0; q < 2 && q < res.copy_count; q++)
                        snprintf(o->ids[q], 37, "%s", res.copies[q].message_id);
                else
                    snprintf(o->code, sizeof(o->code), "%s", res.code);
                pf_client_result_clear(&res);
                break;
            }
            if (rc == 0)
                pf_client_result_clear(&res);
            if (pf_test_now_ms() > end) {
                s->unanswered++;
                snprintf(o->code, sizeof(o->code), "unanswered");
                break;
            }
            usleep(50 * 1000);
        }
    }
    pf_client_destroy(&c);
    return NULL;
}

typedef struct {
    char ids[3][2][37]; /* per recipient slot: the stored id(s) */
    int copies[2];
    int variant; /* from the stored title */
    bool bad;
} stored_t;

static stored_t s_db[N];

static void s_row(void *arg, int nc, const char *const *v)
{
    (void)arg;
    int i = atoi(v[0] + 3);
    if (i < 0 || i >= N)
        return;
    stored_t *st = &s_db[i];
    int slot = strcmp(v[1], s_citizens[i % 3]) == 0 ? 0 : 1;
    if (st->copies[slot] < 3)
        snprintf(st->ids[st->copies[slot]][slot], 37, "%s", v[2]);
    st->copies[slot]++;
    st->variant = strstr(v[3], "v1") != NULL;
}

static void test_every_notice_three_times(void **state)
{
    (void)state;
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_idem", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    memset(s_out, 0, sizeof(s_out));
    memset(s_db, 0, sizeof(s_db));
    sender_t snd[SENDERS];
    pthread_t t[SENDERS];
    for (int k = 0; k < SENDERS; k++) {
        snd[k] = (sender_t){.env = env, .k = k};
        assert_int_equal(pthread_create(&t[k], NULL, s_sender, &snd[k]), 0);
    }
    long unanswered = 0;
    for (int k = 0; k < SENDERS; k++) {
        pthread_join(t[k], NULL);
        unanswered += snd[k].unanswered;
    }
    assert_int_equal(pf_env_sql_rows(env,
                                     "SELECT request_id, mailbox_id, id::text, title FROM message "
                                     "WHERE left(request_id, 3) = 'ia-'",
                                     s_row, NULL),
                     2 * N);
    long acked = 0, lost = 0, duplicated = 0, unexpected = 0, sends = 0, acks = 0;
    long conflicts_expected = 0, conflicts_detected = 0, retried = 0;
    for (int i = 0; i < N; i++) {
        stored_t *st = &s_db[i];
        if (st->copies[0] > 1 || st->copies[1] > 1)
            duplicated++;
        bool any_ack = false;
        for (int k = 0; k < SENDERS; k++) {
            outcome_t *o = &s_out[k][i];
            int variant = k == 2 && s_changed(i);
            sends++;
            retried += o->tries > 1;
            if (variant != st->variant) {
                conflicts_expected++;
                if (!o->ok && strcmp(o->code, "conflict") == 0)
                    conflicts_detected++;
                else
                    unexpected++;
                continue;
            }
            if (!o->ok) {
                unexpected++;
                continue;
            }
            acks++;
            any_ack = true;
            if (st->copies[0] == 0 || st->copies[1] == 0)
                lost++;
            else if (strcmp(o->ids[0], st->ids[0][0]) != 0 || strcmp(o->ids[1], st->ids[0][1]) != 0)
                duplicated++; /* an ACK naming other copies than the stored ones */
        }
        acked += any_ack;
    }
    long long subs = pf_env_sql_int(env, "SELECT count(*) FROM submission");
    printf("fault idempotency: attempted %d, acked %ld, lost %ld, duplicated %ld, unexpected %ld, "
           "recovered %ld (sends %ld, ACKs %ld, conflicts expected %ld, detected %ld, "
           "submissions stored %lld, unanswered %ld)\n",
           N, acked, lost, duplicated, unexpected, retried, sends, acks, conflicts_expected,
           conflicts_detected, subs, unanswered);
    fflush(stdout);
    assert_int_equal(unanswered, 0);
    assert_int_equal(subs, N);
    assert_int_equal(acked, N);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(unexpected, 0);
    assert_true(conflicts_expected >= 3);
    assert_int_equal(conflicts_detected, conflicts_expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_notice_three_times, pf_fault_setup,
                                        pf_fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
