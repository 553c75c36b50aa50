/* `postfach-bench floor` (see floor.h).
 *
 * Each operation runs in a loop for cfg->seconds of this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID: on a shared machine, time the thread spends
 * preempted is not counted, so the figure is the operation's cost, not
 * the machine's mood).  Inputs are made once up front: keys generated
 * fresh, a notice of the configured size, its sealed copy, a receipt. */
#include "bench/floor.h"

#include "crypto/jose.h"
#include "proto/notice.h"
#include "receipt/receipt.h"
#include "util/b64url.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void pf_bench_floor_config_default(pf_bench_floor_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->body_size = 2048;
    cfg->seconds = 0.5;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->cores = n > 0 ? (int)n : 1;
}

typedef struct {
    /* inputs */
    pf_key_t *citizen; /* private P-256 key of the mailbox */
    pf_key_t *citizen_pub;
    char *citizen_jwk;        /* its public JWK, as the broker reads it */
    pf_key_t *receipt_key;    /* the service's signing key */
    pf_keyset_t *receipt_set; /* its public half, as a procedure holds it */
    pf_kek_t *kek;
    unsigned char *wrapped; /* the citizen's key wrapped under the KEK */
    size_t wrapped_len;
    pf_notice_t notice;
    char *doc; /* the notice document */
    size_t doc_len;
    pf_jwe_t *jwe; /* doc sealed for the citizen */
    pf_receipt_t receipt;
    char *token; /* the receipt, signed */
    int failed;  /* an operation failed inside a loop */
    const char *error;
} s_ctx_t;

#define S_CONTEXT "bench-0:1"
#define S_ISSUER "https://postfach.bench"

static double s_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the operations: one call each, inputs from ctx ----------------------- */

static void s_op_notice(s_ctx_t *c)
{
    size_t len = 0;
    char *doc = pf_notice_encode(&c->notice, &len);
    if (doc == NULL)
        c->failed = 1;
    free(doc);
}

static void s_op_hash(s_ctx_t *c)
{
    unsigned char h[32];
    pf_sha256(c->doc, c->doc_len, h);
}

static void s_op_seal(s_ctx_t *c)
{
    pf_jwe_t *jwe = NULL;
    if (pf_jwe_seal(c->citizen_pub, PF_NOTICE_CTY, c->doc, c->doc_len, &jwe, &c->error) != 0)
        c->failed = 1;
    pf_jwe_destroy(&jwe);
}

static void s_op_sign(s_ctx_t *c)
{
    char *t = pf_receipt_sign(c->receipt_key, S_ISSUER, &c->receipt, &c->error);
    if (t == NULL)
        c->failed = 1;
    free(t);
}

static void s_op_verify(s_ctx_t *c)
{
    pf_receipt_t r;
    if (pf_receipt_verify(c->token, strlen(c->token), c->receipt_set, S_ISSUER, &r, &c->error) != 0)
        c->failed = 1;
    pf_receipt_clear(&r);
}

static void s_op_import(s_ctx_t *c)
{
    pf_key_t *k = NULL;
    if (pf_key_from_jwk(c->citizen_jwk, strlen(c->citizen_jwk), &k, &c->error) != 0)
        c->failed = 1;
    pf_key_destroy(&k);
}

static void s_op_unwrap(s_ctx_t *c)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    pf_key_t *k = NULL;
    if (pf_kek_unwrap(c->kek, S_CONTEXT, c->wrapped, c->wrapped_len, &der, &der_len, &c->error) !=
            0 ||
        pf_key_from_der(der, der_len, &k, &c->error) != 0)
        c->failed = 1;
    if (der != NULL) {
        pf_wipe(der, der_len);
        free(der);
    }
    pf_key_destroy(&k);
}

static void s_op_open(s_ctx_t *c)
{
    unsigned char *pt = NULL;
    size_t len = 0;
    if (pf_jwe_open(c->citizen, c->jwe, &pt, &len, &c->error) != 0 || len != c->doc_len)
        c->failed = 1;
    if (pt != NULL) {
        pf_wipe(pt, len);
        free(pt);
    }
}

/* Mean CPU microseconds of one call of op, or -1 when it failed. */
static double s_time(s_ctx_t *c, void (*op)(s_ctx_t *), double seconds)
{
    op(c); /* warm: per-thread contexts, caches */
    double t0 = s_cpu_s(), t;
    long n = 0;
    do {
        for (int i = 0; i < 16; i++)
            op(c);
        n += 16;
        t = s_cpu_s();
    } while (t - t0 < seconds && !c->failed);
    return c->failed ? -1 : (t - t0) * 1e6 / (double)n;
}

/* --- set-up ------------------------------------------------------------------ */

static int s_setup(s_ctx_t *c, const pf_bench_floor_config_t *cfg, char *dir)
{
    if (pf_key_generate(PF_KEY_P256, &c->citizen, &c->error) != 0 ||
        pf_key_generate(PF_KEY_P256, &c->receipt_key, &c->error) != 0)
        return -1;
    c->citizen_pub = pf_key_public(c->citizen);
    c->citizen_jwk = pf_key_to_jwk(c->citizen, false);
    pf_key_t *rpub = pf_key_public(c->receipt_key);
    c->receipt_set = pf_keyset_new();
    pf_keyset_add(c->receipt_set, rpub, pf_key_kid(rpub));
    pf_key_destroy(&rpub);
    if (c->citizen_pub == NULL || c->citizen_jwk == NULL) {
        c->error = "cannot derive the public key";
        return -1;
    }

    /* the KEK lives in a file (pf_kek_load refuses anything else) */
    if (mkdtemp(dir) == NULL) {
        c->error = "cannot make a temporary directory";
        return -1;
    }
    char *path = xasprintf("%s/kek", dir);
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc = -1;
    if (pf_kek_generate_file(path, "bench", &c->error) == 0 &&
        pf_kek_load(path, &c->kek, &c->error) == 0 &&
        pf_key_to_der(c->citizen, &der, &der_len, &c->error) == 0 &&
        pf_kek_wrap(c->kek, S_CONTEXT, der, der_len, &c->wrapped, &c->wrapped_len, &c->error) == 0)
        rc = 0;
    if (der != NULL) {
        pf_wipe(der, der_len);
        free(der);
    }
    unlink(path);
    rmdir(dir);
    free(path);
    if (rc != 0)
        return -1;

    /* a notice as `postfach-bench send` makes them */
    char *body = xmalloc(cfg->body_size + 1);
    for (size_t i = 0; i < cfg->body_size; i++)
        body[i] = (char)('a' + i % 26);
    body[cfg->body_size] = '\0';
    c->notice.title = xstrdup("Bescheid 2026/000001");
    c->notice.subject = xstrdup("Ihr Bescheid");
    c->notice.body = body;
    c->notice.reference = xstrdup("AZ-000001");
    c->notice.sender = xstrdup("bench-s0");
    c->notice.sent_at = xstrdup("2026-12-03T09:00:00.000Z");
    c->doc = pf_notice_encode(&c->notice, &c->doc_len);
    if (c->doc == NULL) {
        c->error = "cannot encode the notice";
        return -1;
    }
    if (pf_jwe_seal(c->citizen_pub, PF_NOTICE_CTY, c->doc, c->doc_len, &c->jwe, &c->error) != 0)
        return -1;

    pf_uuid7_generate(c->receipt.jti);
    pf_uuid7_generate(c->receipt.message_id);
    c->receipt.txn = xstrdup("bench-s0-000001");
    c->receipt.sender = xstrdup("bench-s0");
    c->receipt.mailbox = xstrdup("bench-0");
    c->receipt.event = PF_EVENT_DELIVERED;
    c->receipt.event_time_ms = (int64_t)time(NULL) * 1000;
    c->receipt.jwe_tag = pf_b64url_encode(c->jwe->tag, sizeof(c->jwe->tag));
    c->token = pf_receipt_sign(c->receipt_key, S_ISSUER, &c->receipt, &c->error);
    return c->token != NULL ? 0 : -1;
}

static void s_teardown(s_ctx_t *c)
{
    pf_key_destroy(&c->citizen);
    pf_key_destroy(&c->citizen_pub);
    pf_key_destroy(&c->receipt_key);
    pf_keyset_destroy(&c->receipt_set);
    pf_kek_destroy(&c->kek);
    free(c->citizen_jwk);
    free(c->wrapped);
    pf_notice_clear(&c->notice);
    free(c->doc);
    pf_jwe_destroy(&c->jwe);
    pf_receipt_clear(&c->receipt);
    free(c->token);
}

int pf_bench_floor_run(const pf_bench_floor_config_t *cfg, FILE *out, const char **error_r)
{
    s_ctx_t c;
    memset(&c, 0, sizeof(c));
    char dir[] = "/tmp/postfach-floor-XXXXXX";
    if (s_setup(&c, cfg, dir) != 0) {
        *error_r = c.error != NULL ? c.error : "set-up failed";
        s_teardown(&c);
        return -1;
    }
    static const struct {
        const char *name;
        void (*op)(s_ctx_t *);
    } ops[] = {
        {"notice document", s_op_notice},
        {"payload hash (SHA-256)", s_op_hash},
        {"seal (ECDH-ES P-256, A256GCM)", s_op_seal},
        {"receipt signature (ES256)", s_op_sign},
        {"receipt verification (client)", s_op_verify},
        {"public key import (cache miss)", s_op_import},
        {"private key unwrap and parse", s_op_unwrap},
        {"open (reader)", s_op_open},
    };
    enum { NOTICE, HASH, SEAL, SIGN, VERIFY, IMPORT, UNWRAP, OPEN, N_OPS };
    double us[N_OPS];
    fprintf(out, "floor: CPU per operation, one thread, %zu B body (%zu B document)\n",
            cfg->body_size, c.doc_len);
    for (int i = 0; i < N_OPS; i++) {
        us[i] = s_time(&c, ops[i].op, cfg->seconds);
        if (us[i] < 0) {
            *error_r = c.error != NULL ? c.error : "an operation failed";
            s_teardown(&c);
            return -1;
        }
        fprintf(out, "  %-32s %8.1f us\n", ops[i].name, us[i]);
    }
    /* what the service computes per notice; the verification is the
     * procedure's, on its own machine (postfach-bench does not verify) */
    double send = us[SEAL] + us[SIGN] + us[NOTICE] + us[HASH];
    double open = us[UNWRAP] + us[OPEN] + us[SIGN];
    fprintf(out,
            "floor send: seal + receipt signature + document and hash = %.0f us per notice; "
            "%d cores: at most %.0f notices/s before transport and database (a procedure that "
            "verifies its receipts adds %.0f us per notice on its own machine)\n",
            send, cfg->cores, cfg->cores * 1e6 / send, us[VERIFY]);
    fprintf(out,
            "floor open: unwrap + open + receipt signature = %.0f us per first retrieval; %d "
            "cores: at most %.0f/s before HTTP and database\n",
            open, cfg->cores, cfg->cores * 1e6 / open);
    s_teardown(&c);
    return 0;
}
