/* Fault test 3: the broker dies (SIGKILL) at each deterministic crash point
 * of the write path and of the receipt relay (POSTFACH_CRASH_POINT, see
 * lib/util/crashpoint.h), under a load from the real client library; a
 * supervisor thread restarts it at once, without the crash point.
 *
 * Write path: right after reading a SEND, after the INSERTs (before
 * COMMIT), after sending COMMIT (outcome unknown to the broker), after
 * the COMMIT result arrived (before any ACK), after an ACK, after sending
 * a delivered receipt from memory right after the COMMIT (sql/0010).
 * Relay: after claiming receipts, after sending one, after storing a
 * procedure's RACK; the broker that reaches these runs with
 * receipt_direct=off, so that every receipt goes through the relay.
 * For every point: the point was really reached (the broker died once, by
 * SIGKILL, and its log has that point's crash line, no other), and
 * afterwards nothing acknowledged is missing, nothing is stored twice,
 * and (relay points) every receipt in the outbox was handed out by the
 * client exactly once.
 *
 * G3 (a COMMIT whose outcome is unknown): the fault points
 * drop_after_commit and drop_before_commit break a commit connection after
 * and before the COMMIT took effect; the SEND gets the stored ACK, or NACK
 * temporary with nothing stored, in one answer, and the broker's log shows
 * it settled the batch by looking it up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultload.h"
#include "harness.h"

static const char *const s_citizens[] = {"citizen-a", "citizen-b", "citizen-c", NULL};

typedef struct {
    pf_env_t *env;
    atomic_bool stop;
    int crashes;   /* broker processes that died */
    int sigkilled; /* of those, by SIGKILL (a crash point kills so) */
    int restart_failures;
} supervisor_t;

/* Restarts the broker whenever it died, as systemd's Restart=always would. */
static void *s_supervisor(void *arg)
{
    supervisor_t *s = arg;
    while (!atomic_load(&s->stop)) {
        int status;
        if (!pf_env_broker_slot_reap(s->env, 0, &status)) {
            if (status != -1) {
                s->crashes++;
                s->sigkilled += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            }
            if (pf_env_start_broker(s->env, NULL) != 0)
                s->restart_failures++;
        }
        usleep(20 * 1000);
    }
    return NULL;
}

/* Occurrences of needle in the broker's log from offset on. */
static int s_log_count(pf_env_t *env, size_t offset, const char *needle)
{
    char *log = pf_env_broker_log(env, 0);
    int n = 0;
    if (log && strlen(log) >= offset)
        for (const char *p = log + offset; (p = strstr(p, needle)) != NULL; p += strlen(needle))
            n++;
    free(log);
    return n;
}

/* The broker's log size now: what a run appends comes after it. */
static size_t s_log_size(pf_env_t *env)
{
    char *log = pf_env_broker_log(env, 0);
    size_t n = log ? strlen(log) : 0;
    free(log);
    return n;
}

typedef struct {
    const char *point;
    int at;        /* the n-th time the point is passed */
    bool receipts; /* a receipt point: check the receipts too */
    bool relay;    /* every receipt through the relay (receipt_direct=off) */
} point_t;

static void s_run_point(pf_env_t *env, const point_t *p, pf_load_counts_t *sum)
{
    /* receipts left over from earlier points would arrive in one burst
     * and move the relay points' count: start each point from an empty
     * relay queue */
    free(pf_env_sql(env, "UPDATE receipt_delivery SET acked_at = now() WHERE acked_at IS NULL "
                         "RETURNING 1"));
    char var[96];
    snprintf(var, sizeof(var), "POSTFACH_CRASH_POINT=%s:%d", p->point, p->at);
    const char *envs[] = {var, NULL};
    pf_env_stop_broker(env, SIGTERM);
    size_t log_from = s_log_size(env);
    const char *relay_only[] = {"receipt_direct=off", NULL};
    assert_int_equal(pf_env_start_broker_slot(env, 0, p->relay ? relay_only : NULL, envs), 0);
    supervisor_t sup = {.env = env};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_supervisor, &sup), 0);
    char name[64];
    snprintf(name, sizeof(name), "cp-%s", p->point);
    pf_load_opts_t o = {.name = name,
                        .threads = 1,
                        .citizens = s_citizens,
                        .recipients = 2,
                        .timeout_ms = 700,
                        .retries = 3,
                        .body_bytes = 1000,
                        .attachment_bytes = 2048,
                        .max_per_thread = 10,
                        .collect_receipts = p->receipts};
    pf_load_t *l = pf_load_new(env, &o);
    pf_load_start(l);
    pf_load_wait(l);
    pf_load_settle(l, 30000);
    if (p->receipts)
        pf_load_drain_receipts(l, 30000);
    atomic_store(&sup.stop, true);
    pthread_join(t, NULL);
    pf_load_counts_t c;
    pf_load_check(l, &c);
    char label[80];
    snprintf(label, sizeof(label), "crash-point %s:%d (crashes %d)", p->point, p->at, sup.crashes);
    pf_load_print(label, &c);
    assert_int_equal(sup.restart_failures, 0);
    /* the broker died once, by SIGKILL at this point (the line the crash
     * point writes just before it kills), and at no other */
    char line[128];
    snprintf(line, sizeof(line), "crashpoint: event=crash name=%s n=%d\n", p->point, p->at);
    int at_point = s_log_count(env, log_from, line);
    int any = s_log_count(env, log_from, "crashpoint: event=crash ");
    printf("fault crash-point %s:%d: deaths %d, by SIGKILL %d, crash lines %d (this point %d)\n",
           p->point, p->at, sup.crashes, sup.sigkilled, any, at_point);
    assert_int_equal(sup.crashes, 1);
    assert_int_equal(sup.sigkilled, 1);
    assert_int_equal(at_point, 1);
    assert_int_equal(any, 1);
    assert_int_equal(c.lost, 0);
    assert_int_equal(c.duplicated, 0);
    assert_int_equal(c.unexpected, 0);
    assert_int_equal(c.unanswered, 0);
    assert_int_equal(c.acked, c.attempted);
    if (p->receipts) {
        assert_true(c.receipts_expected >= 2 * c.attempted);
        assert_int_equal(c.receipts_missing, 0);
        assert_int_equal(c.receipts_handed, c.receipts_expected);
    }
    sum->attempted += c.attempted;
    sum->acked += c.acked;
    sum->lost += c.lost;
    sum->duplicated += c.duplicated;
    sum->unexpected += c.unexpected;
    sum->recovered += c.recovered;
    sum->client_retries += c.client_retries;
    sum->timeouts += c.timeouts;
    sum->temporary += c.temporary;
    sum->receipts_expected += c.receipts_expected;
    sum->receipts_handed += c.receipts_handed;
    sum->receipts_missing += c.receipts_missing;
    pf_load_free(&l);
}

static void test_every_crash_point(void **state)
{
    (void)state;
    /* how many relay claims and RACK messages a load makes depends on
     * timing (the client library batches its RACKs): those points fire at
     * the first, which always comes */
    static const point_t points[] = {
        {"after_receive", 3, false, false},     {"after_insert", 3, false, false},
        {"after_commit_sent", 3, false, false}, {"after_commit_result", 3, false, false},
        {"after_ack", 3, false, false},         {"direct_after_send", 3, true, false},
        {"relay_after_select", 1, true, true},  {"relay_after_send", 3, true, true},
        {"relay_after_rack", 1, true, true},
    };
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_crashpoints", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    pf_load_counts_t sum = {0};
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        s_run_point(env, &points[i], &sum);
    pf_load_print("crash-points (all 9)", &sum);
}

/* ---- G3: a COMMIT whose outcome is unknown ------------------------------------------- */

/* The client library's log: resends after a timeout, answers to another
 * request than the one waited for (a second answer would be one). */
typedef struct {
    atomic_int retries, stale;
} client_log_t;

static void s_client_log(void *ctx, int level, const char *msg)
{
    (void)level;
    client_log_t *cl = ctx;
    if (strncmp(msg, "event=retry ", 12) == 0)
        atomic_fetch_add(&cl->retries, 1);
    if (strncmp(msg, "event=stale_answer ", 19) == 0)
        atomic_fetch_add(&cl->stale, 1);
}

static pf_client_result_t s_send_one(pf_client_t *c, const char *rid)
{
    const char *to[] = {"citizen-a", "citizen-b"};
    pf_client_notice_t n = {.request_id = rid,
                            .recipients = to,
                            .recipient_count = 2,
                            .title = "Bescheid (Fehlertest)",
                            .subject = "Betreff",
                            .body = "Text des Bescheids",
                            .reference = rid};
    pf_client_result_t res;
    const char *err = NULL;
    int rc = pf_client_send(c, &n, &res, &err);
    if (rc != 0)
        fprintf(stderr, "fault commit-unknown: %s: %s\n", rid, err);
    assert_int_equal(rc, 0);
    return res;
}

/* Rows of table (submission or message) for request id rid; with id, only
 * the copy with that id in mailbox. */
static long long s_rows(pf_env_t *env, const char *table, const char *rid, const char *id,
                        const char *mailbox)
{
    char sql[512];
    int n =
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE request_id = '%s'", table, rid);
    if (id)
        snprintf(sql + n, sizeof(sql) - (size_t)n, " AND id = '%s' AND mailbox_id = '%s'", id,
                 mailbox);
    return pf_env_sql_int(env, sql);
}

/* The ACK names exactly the copies stored for rid, and rid is stored once. */
static void s_assert_stored_as_acked(pf_env_t *env, const char *rid, const pf_client_result_t *r)
{
    assert_int_equal(r->ok, 1);
    assert_int_equal(r->copy_count, 2);
    assert_int_equal(s_rows(env, "submission", rid, NULL, NULL), 1);
    assert_int_equal(s_rows(env, "message", rid, NULL, NULL), 2);
    for (size_t i = 0; i < r->copy_count; i++)
        assert_int_equal(
            s_rows(env, "message", rid, r->copies[i].message_id, r->copies[i].recipient), 1);
}

/* Arms one fault point at the 3rd batch, sends 5 notices one at a time
 * (each its own batch), and checks the 3rd's answer against the database. */
static void s_run_drop(pf_env_t *env, const char *point, bool committed)
{
    enum { N = 5, AT = 3 };
    pf_env_stop_broker(env, SIGTERM);
    size_t log_from = s_log_size(env);
    char var[96];
    snprintf(var, sizeof(var), "POSTFACH_CRASH_POINT=%s:%d", point, AT);
    const char *envs[] = {var, NULL};
    assert_int_equal(pf_env_start_broker_slot(env, 0, NULL, envs), 0);
    /* one attempt each, with a generous timeout: every SEND must be
     * answered on its first attempt, a resend would hide a lost answer */
    pf_client_t *c = pf_load_client(env, 0, 20000, 0);
    client_log_t cl = {0};
    pf_client_set_log(c, s_client_log, &cl);
    pf_client_result_t first[N];
    char rid[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(rid[i], sizeof(rid[i]), "cu-%s-%d", point, i);
        first[i] = s_send_one(c, rid[i]);
    }
    /* the 3rd: committed and the connection lost before the result: the
     * stored ACK; not committed: NACK temporary and nothing stored (yet) */
    pf_client_result_t *hit = &first[AT - 1];
    printf("fault commit-unknown %s: answer to the batch that lost its connection: %s%s\n", point,
           hit->ok ? "ACK" : "NACK ", hit->ok ? "" : hit->code);
    if (committed) {
        s_assert_stored_as_acked(env, rid[AT - 1], hit);
    } else {
        assert_int_equal(hit->ok, 0);
        assert_string_equal(hit->code, "temporary");
        assert_int_equal(s_rows(env, "submission", rid[AT - 1], NULL, NULL), 0);
        assert_int_equal(s_rows(env, "message", rid[AT - 1], NULL, NULL), 0);
        /* the client's resend with the same request id stores it, once */
        pf_client_result_clear(hit);
        *hit = s_send_one(c, rid[AT - 1]);
        s_assert_stored_as_acked(env, rid[AT - 1], hit);
    }
    /* every other SEND acknowledged as stored; asked again, each gets the
     * same ids (G2) */
    for (int i = 0; i < N; i++) {
        s_assert_stored_as_acked(env, rid[i], &first[i]);
        pf_client_result_t again = s_send_one(c, rid[i]);
        s_assert_stored_as_acked(env, rid[i], &again);
        for (size_t k = 0; k < again.copy_count; k++)
            assert_string_equal(again.copies[k].message_id, first[i].copies[k].message_id);
        pf_client_result_clear(&again);
        pf_client_result_clear(&first[i]);
    }
    /* one answer per SEND: none needed a resend, no second answer came */
    assert_int_equal(atomic_load(&cl.retries), 0);
    assert_int_equal(atomic_load(&cl.stale), 0);
    pf_client_destroy(&c);
    /* the path was taken: the fault fired once, and the broker settled
     * that batch by looking its request id up, without dying */
    int status;
    assert_true(pf_env_broker_slot_reap(env, 0, &status));
    char line[128];
    snprintf(line, sizeof(line), "crashpoint: event=fault name=%s n=%d\n", point, AT);
    assert_int_equal(s_log_count(env, log_from, line), 1);
    assert_int_equal(s_log_count(env, log_from, "event=commit_unknown "), 1);
    const char *settled =
        committed ? "event=commit_unknown sends=1 found=1 not_found=0 lookup_failed=0\n"
                  : "event=commit_unknown sends=1 found=0 not_found=1 lookup_failed=0\n";
    assert_int_equal(s_log_count(env, log_from, settled), 1);
}

static void test_commit_outcome_unknown(void **state)
{
    pf_fault_fixture_t *fx = *state;
    pf_env_t *env = fx->env = pf_env_new("fault_commit_unknown", s_citizens);
    assert_non_null(env);
    assert_int_equal(pf_env_start_broker(env, NULL), 0);
    /* the COMMIT went through, its result never reached the broker */
    s_run_drop(env, "drop_after_commit", true);
    /* the COMMIT never reached the server */
    s_run_drop(env, "drop_before_commit", false);
    /* nothing else was stored: 5 + 5 submissions with 2 copies each */
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM submission"), 10);
    assert_int_equal(pf_env_sql_int(env, "SELECT count(*) FROM message"), 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_crash_point, pf_fault_setup, pf_fault_teardown),
        cmocka_unit_test_setup_teardown(test_commit_outcome_unknown, pf_fault_setup,
                                        pf_fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
