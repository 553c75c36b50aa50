/* Fault test 4: the reader is killed with SIGKILL again and again while
 * citizens open their notices, each notice from several sessions at once.
 *
 * Checked afterwards: every notice that was opened has exactly one "read"
 * receipt, and the procedure is handed exactly one; notices never opened
 * have neither a first-retrieval time nor a "read" receipt; every answer
 * that showed a notice showed the same first-retrieval time, the one
 * stored, and opening it again later does not change it.  And the kills
 * did hit openings (an attempt failed), which then succeeded on a retry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", "citizen-d", NULL};

enum { N = 80, NREAD = 60, OPENERS = 6 };
/* openers keep opening (first retrievals, then repeats) for this long */
#define S_RUN_MS 6000

typedef struct {
    char id[37];
    int citizen;
    /* per opener: the read_at its successful answer showed */
    char seen[OPENERS][64];
} notice_t;

typedef struct {
    pf_env_t *env;
    notice_t *notices;
    char *tokens[4];
    int k;
    long attempts, ok, failures, recovered, changed;
} opener_t;

static atomic_bool s_done;
/* opens that failed at least once (a kill landed) and then succeeded */
static atomic_long s_recovered;

static void *s_opener(void *arg)
{
    opener_t *o = arg;
    int64_t end = pf_test_now_ms() + 90000, stop = pf_test_now_ms() + S_RUN_MS;
    /* after S_RUN_MS, go on (within the 90 s) until some open was hit by
     * a kill and recovered: the kills land at any moment, also between
     * two opens */
    for (int j = 0; j < NREAD || pf_test_now_ms() < stop ||
                    (atomic_load(&s_recovered) == 0 && pf_test_now_ms() < end);
         j++) {
        /* two sessions at a time open the same notice, in step */
        notice_t *n = &o->notices[(j + (o->k / 2) * 7) % NREAD];
        bool first = j < NREAD;
        char path[128];
        snprintf(path, sizeof(path), "/v1/messages/%s", n->id);
        int failed = 0;
        while (pf_test_now_ms() < end) {
            o->attempts++;
            pf_http_response_t r;
            int rc = pf_http_get(pf_env_reader_port(o->env), path, o->tokens[n->citizen], &r);
            if (rc == 0 && r.status == 200) {
                json_t *j2 = json_loadb(r.body, r.body_len, 0, NULL);
                const char *ra = json_string_value(json_object_get(j2, "read_at"));
                if (ra == NULL)
                    ra = "(none)";
                /* a later answer for the same notice must show the same time */
                if (!first && strcmp(n->seen[o->k], ra) != 0)
                    o->changed++;
                snprintf(n->seen[o->k], sizeof(n->seen[o->k]), "%s", ra);
                json_decref(j2);
                pf_http_response_clear(&r);
                o->ok++;
                o->recovered += failed > 0;
                if (failed > 0)
                    atomic_fetch_add(&s_recovered, 1);
                break;
            }
            if (rc == 0)
                pf_http_response_clear(&r);
            failed++;
            o->failures++;
            usleep(30 * 1000);
        }
        usleep(20 * 1000);
    }
    return NULL;
}

typedef struct {
    pf_env_t *env;
    int kills, restart_failures;
} killer_t;

static void *s_killer(void *arg)
{
    killer_t *k = arg;
    while (!atomic_load(&s_done)) {
        usleep(500 * 1000);
        if (atomic_load(&s_done))
            break;
        pf_env_stop_reader(k->env, SIGKILL);
        k->kills++;
        if (pf_env_start_reader(k->env, NULL) != 0)
            k->restart_failures++;
    }
    return NULL;
}

static void test_reader_kill9_while_opening(void **state)
{
    (void)state;
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_reader", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    assert_int_equal(pf_env_start_reader(env, NULL), 0);
    pf_client_t *c = pf_load_client(env, 0, 3000, 3);
    notice_t *notices = calloc(N, sizeof(*notices));
    for (int i = 0; i < N; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "rd-%d", i);
        notices[i].citizen = i % 4;
        const char *to[] = {s_citizens[i % 4]};
        pf_client_notice_t n = {.request_id = rid,
                                .recipients = to,
                                .recipient_count = 1,
                                .title = "Bescheid",
                                .subject = "Betreff",
                                .body = "Text des Bescheids",
                                .read_receipt = true};
        pf_client_result_t res;
        const char *err;
        assert_int_equal(pf_client_send(c, &n, &res, &err), 0);
        assert_int_equal(res.ok, 1);
        snprintf(notices[i].id, sizeof(notices[i].id), "%s", res.copies[0].message_id);
        pf_client_result_clear(&res);
    }
    opener_t op[OPENERS];
    char *tokens[4];
    for (int i = 0; i < 4; i++) {
        tokens[i] = pf_env_token(env, s_citizens[i]);
        assert_non_null(tokens[i]);
    }
    atomic_store(&s_done, false);
    atomic_store(&s_recovered, 0);
    killer_t kl = {.env = env};
    pthread_t kt, ot[OPENERS];
    assert_int_equal(pthread_create(&kt, NULL, s_killer, &kl), 0);
    for (int k = 0; k < OPENERS; k++) {
        op[k] = (opener_t){.env = env, .notices = notices, .k = k};
        memcpy(op[k].tokens, tokens, sizeof(tokens));
        assert_int_equal(pthread_create(&ot[k], NULL, s_opener, &op[k]), 0);
    }
    long attempts = 0, ok = 0, failures = 0, recovered = 0, changed = 0;
    for (int k = 0; k < OPENERS; k++) {
        pthread_join(ot[k], NULL);
        attempts += op[k].attempts;
        ok += op[k].ok;
        failures += op[k].failures;
        recovered += op[k].recovered;
        changed += op[k].changed;
    }
    atomic_store(&s_done, true);
    pthread_join(kt, NULL);
    if (!pf_env_reader_alive(env))
        assert_int_equal(pf_env_start_reader(env, NULL), 0);

    long lost = 0, duplicated = changed, unexpected = 0;
    char sql[256];
    for (int i = 0; i < N; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM receipt WHERE message_id = '%s' AND event = 'read'",
                 notices[i].id);
        long long reads = pf_env_sql_int(env, sql);
        snprintf(sql, sizeof(sql),
                 "SELECT to_char(read_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
                 "FROM message WHERE id = '%s'",
                 notices[i].id);
        char *stored = pf_env_sql(env, sql);
        if (i >= NREAD) {
            unexpected += reads != 0 || stored != NULL;
            free(stored);
            continue;
        }
        lost += reads == 0 || stored == NULL;
        duplicated += reads > 1;
        /* every answer showed the same time */
        for (int k = 1; k < OPENERS; k++)
            duplicated += strcmp(notices[i].seen[k], notices[i].seen[0]) != 0;
        /* and opening it again now shows it still */
        char path[128];
        snprintf(path, sizeof(path), "/v1/messages/%s", notices[i].id);
        pf_http_response_t r;
        assert_int_equal(pf_http_get(pf_env_reader_port(env), path, tokens[notices[i].citizen], &r),
                         0);
        assert_int_equal(r.status, 200);
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *again = json_string_value(json_object_get(j, "read_at"));
        duplicated += again == NULL || strcmp(again, notices[i].seen[0]) != 0;
        json_decref(j);
        pf_http_response_clear(&r);
        free(stored);
    }
    /* the procedure gets each read receipt once */
    int handed_read = 0, handed_delivered = 0;
    int64_t end = pf_test_now_ms() + 20000;
    char seen_jti[N * 2 + 8][37];
    int nseen = 0;
    while (pf_test_now_ms() < end && handed_read < NREAD) {
        pf_client_receipt_t r;
        const char *err;
        if (pf_client_next_receipt(c, 200, &r, &err) != 1)
            continue;
        for (int q = 0; q < nseen; q++)
            duplicated += strcmp(seen_jti[q], r.jti) == 0;
        if (nseen < (int)(sizeof(seen_jti) / sizeof(seen_jti[0])))
            snprintf(seen_jti[nseen++], 37, "%s", r.jti);
        if (strcmp(r.event, "read") == 0) {
            handed_read++;
            int idx = -1;
            for (int i = 0; i < N; i++)
                if (strcmp(notices[i].id, r.message_id) == 0)
                    idx = i;
            unexpected += idx < 0 || idx >= NREAD;
        } else {
            handed_delivered++;
        }
        pf_client_receipt_clear(&r);
    }
    lost += NREAD - handed_read;
    printf("fault reader-kill9: %d kills; opens attempted %ld, answered %ld, failed attempts %ld\n",
           kl.kills, attempts, ok, failures);
    printf(
        "fault reader-kill9: attempted %ld, acked %ld, lost %ld, duplicated %ld, unexpected %ld, "
        "recovered %ld (opens; notices read %d of %d, read receipts handed out %d, delivered "
        "%d, first-retrieval time changed %ld)\n",
        ok, ok, lost, duplicated, unexpected, recovered, NREAD, N, handed_read, handed_delivered,
        changed);
    fflush(stdout);
    assert_int_equal(kl.restart_failures, 0);
    assert_true(kl.kills >= 3);
    /* the kills hit the openings (an open failed) and service came back
     * (such an open succeeded on a later attempt) */
    assert_true(failures > 0);
    assert_true(recovered > 0);
    assert_true(ok >= NREAD * OPENERS);
    assert_int_equal(lost, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(unexpected, 0);
    for (int i = 0; i < 4; i++)
        free(tokens[i]);
    free(notices);
    pf_client_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_kill9_while_opening, pf_fault_setup,
                                        pf_fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
