/* postfach-send: deliver one notice through libpostfach, print the answer
 * and, if asked, the receipts.  A procedure's smallest possible client,
 * and the tool of the scripts and tests.
 *
 * Results go to stdout, one line each:
 *   <recipient> <message id>                        per copy of an ACK
 *   nack <code> <reason>                           a NACK
 *   receipt <event> <message id> <time> <jti>      per receipt
 * Diagnostics go to stderr.  Exit codes: 0 acknowledged (and, with
 * --wait-receipts, all expected receipts arrived), 1 refused (NACK),
 * 2 usage or local error (bad option, unreadable file, invalid notice),
 * 3 no answer from the broker, or receipts missing when the time was up. */
#include "postfach/postfach.h"
#include "util/fileio.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_ACKED = 0, EXIT_NACKED = 1, EXIT_USAGE = 2, EXIT_NO_ANSWER = 3 };

static void s_usage(FILE *out)
{
    fputs("usage: postfach-send --broker ENDPOINT --broker-key FILE --key FILE\n"
          "         --to MAILBOX [--to MAILBOX]... --title TEXT --subject TEXT\n"
          "         (--body TEXT | --body-file FILE) [--reference AZ]\n"
          "         [--attach FILE[:media/type]]... [--request-id ID] [--read-receipt]\n"
          "         [--level normal|substantiell|hoch]\n"
          "         [--wait-receipts [--receipt-jwks FILE [--receipt-issuer URL]\n"
          "          [--receipt-audience SENDER]] [--wait-seconds N]]\n"
          "         [--timeout MS] [--retries N] [--verbose]\n"
          "       postfach-send --broker ENDPOINT --broker-key FILE --key FILE --receipts-only\n"
          "         [--receipt-jwks FILE [--receipt-issuer URL] [--receipt-audience SENDER]]\n"
          "         [--wait-seconds N]\n"
          "\n"
          "Prints \"<recipient> <message id>\" per copy on ACK, \"nack <code> <reason>\" on\n"
          "NACK, \"receipt <event> <message id> <time> <jti>\" per receipt.\n"
          "--request-id defaults to a new UUIDv7; reuse it to retry safely.\n"
          "Exit: 0 acknowledged, 1 refused, 2 usage/local error, 3 no answer or receipts\n"
          "missing when --wait-seconds (default 30; 5 with --receipts-only) ran out.\n",
          out);
}

static int s_verbose;

static void s_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level >= 2 || s_verbose)
        fprintf(stderr, "postfach-send: %s\n", msg);
}

typedef struct {
    char *path;
    const char *media_type;
    char *data;
    size_t size;
} s_attach_t;

/* Media type by file name extension, for --attach without one. */
static const char *s_guess_type(const char *name)
{
    static const char *const map[][2] = {
        {".pdf", "application/pdf"},   {".txt", "text/plain"}, {".xml", "application/xml"},
        {".json", "application/json"}, {".png", "image/png"},  {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},       {".html", "text/html"}, {".csv", "text/csv"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

static void s_print_receipt(const pf_client_receipt_t *r)
{
    char when[40] = "-";
    if (r->time_ms > 0) {
        time_t secs = (time_t)(r->time_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char base[32];
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when, sizeof(when), "%s.%03dZ", base, (int)(r->time_ms % 1000));
    }
    printf("receipt %s %s %s %s\n", r->event, r->message_id, when, r->jti);
    fflush(stdout);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints receipts until the expected ones for the given copies came, or
 * seconds passed.  expected_per_copy 0 = print whatever comes (receipts-
 * only mode).  Returns the exit code. */
static int s_wait_receipts(pf_client_t *c, const pf_client_result_t *res, int expected_per_copy,
                           int seconds)
{
    size_t expected = res ? res->copy_count * (size_t)expected_per_copy : 0, got = 0;
    int64_t deadline = s_now_ms() + (int64_t)seconds * 1000;
    while (expected == 0 || got < expected) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            break;
        pf_client_receipt_t r;
        const char *err;
        int rc = pf_client_next_receipt(c, (int)left, &r, &err);
        if (rc < 0) {
            fprintf(stderr, "postfach-send: %s\n", err);
            return EXIT_NO_ANSWER;
        }
        if (rc == 0)
            break;
        s_print_receipt(&r);
        for (size_t i = 0; res && i < res->copy_count; i++)
            if (strcmp(res->copies[i].message_id, r.message_id) == 0)
                got++;
        pf_client_receipt_clear(&r);
    }
    if (expected > 0 && got < expected) {
        fprintf(stderr, "postfach-send: %zu of %zu expected receipts arrived in %d s\n", got,
                expected, seconds);
        return EXIT_NO_ANSWER;
    }
    return EXIT_ACKED;
}

int main(int argc, char **argv)
{
    const char *broker = NULL, *broker_key = NULL, *key = NULL, *title = NULL, *subject = NULL;
    const char *body = NULL, *body_file = NULL, *reference = NULL, *request_id = NULL;
    const char *level = NULL, *jwks = NULL, *issuer = NULL, *audience = NULL;
    int read_receipt = 0, wait_receipts = 0, receipts_only = 0, wait_seconds = -1;
    int timeout_ms = 3000, retries = 3;
    const char **to = xcalloc((size_t)argc, sizeof(*to));
    size_t nto = 0;
    char **attach = xcalloc((size_t)argc, sizeof(*attach));
    size_t natt = 0;
    int rc = EXIT_USAGE;

    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'B'},
        {"broker-key", required_argument, NULL, 'K'},
        {"key", required_argument, NULL, 'k'},
        {"to", required_argument, NULL, 't'},
        {"title", required_argument, NULL, 'T'},
        {"subject", required_argument, NULL, 's'},
        {"body", required_argument, NULL, 'b'},
        {"body-file", required_argument, NULL, 'f'},
        {"reference", required_argument, NULL, 'r'},
        {"attach", required_argument, NULL, 'a'},
        {"request-id", required_argument, NULL, 'i'},
        {"read-receipt", no_argument, NULL, 'R'},
        {"level", required_argument, NULL, 'l'},
        {"wait-receipts", no_argument, NULL, 'w'},
        {"receipt-jwks", required_argument, NULL, 'j'},
        {"receipt-issuer", required_argument, NULL, 'I'},
        {"receipt-audience", required_argument, NULL, 'A'},
        {"wait-seconds", required_argument, NULL, 'W'},
        {"receipts-only", no_argument, NULL, 'O'},
        {"timeout", required_argument, NULL, 'm'},
        {"retries", required_argument, NULL, 'n'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        switch (o) {
        case 'B':
            broker = optarg;
            break;
        case 'K':
            broker_key = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            to[nto++] = optarg;
            break;
        case 'T':
            title = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 'b':
            body = optarg;
            break;
        case 'f':
            body_file = optarg;
            break;
        case 'r':
            reference = optarg;
            break;
        case 'a':
            attach[natt++] = optarg;
            break;
        case 'i':
            request_id = optarg;
            break;
        case 'R':
            read_receipt = 1;
            break;
        case 'l':
            level = optarg;
            break;
        case 'w':
            wait_receipts = 1;
            break;
        case 'j':
            jwks = optarg;
            break;
        case 'I':
            issuer = optarg;
            break;
        case 'A':
            audience = optarg;
            break;
        case 'W':
            wait_seconds = atoi(optarg);
            break;
        case 'O':
            receipts_only = 1;
            break;
        case 'm':
            timeout_ms = atoi(optarg);
            break;
        case 'n':
            retries = atoi(optarg);
            break;
        case 'v':
            s_verbose = 1;
            break;
        case 'h':
            s_usage(stdout);
            free(to);
            free(attach);
            return 0;
        default:
            s_usage(stderr);
            free(to);
            free(attach);
            return EXIT_USAGE;
        }
    }
    if (optind < argc || !broker || !broker_key || !key ||
        (!receipts_only && (nto == 0 || !title || !subject || (!body == !body_file))) ||
        timeout_ms <= 0 || retries < 0 || wait_seconds < -1 || ((issuer || audience) && !jwks)) {
        fprintf(stderr, "postfach-send: missing or conflicting options\n");
        s_usage(stderr);
        free(to);
        free(attach);
        return EXIT_USAGE;
    }
    if (wait_seconds < 0)
        wait_seconds = receipts_only ? 5 : 30;

    char *body_buf = NULL;
    s_attach_t *atts = xcalloc(natt ? natt : 1, sizeof(*atts));
    pf_client_attachment_t *catts = xcalloc(natt ? natt : 1, sizeof(*catts));
    pf_client_t *c = NULL;
    pf_client_result_t res = {0};
    const char *err;
    if (body_file && pf_file_read(body_file, 64u * 1024 * 1024, &body_buf, NULL, &err) != 0) {
        fprintf(stderr, "postfach-send: cannot read \"%s\": %s\n", body_file, err);
        goto out;
    }
    for (size_t i = 0; i < natt; i++) {
        s_attach_t *a = &atts[i];
        a->path = xstrdup(attach[i]);
        /* FILE:type/subtype; a colon not followed by a media type is part
         * of the file name */
        char *colon = strrchr(a->path, ':');
        if (colon && strchr(colon + 1, '/') && !strchr(colon + 1, ':')) {
            *colon = '\0';
            a->media_type = colon + 1;
        }
        if (pf_file_read(a->path, 1024u * 1024 * 1024, &a->data, &a->size, &err) != 0) {
            fprintf(stderr, "postfach-send: cannot read \"%s\": %s\n", a->path, err);
            goto out;
        }
        const char *base = strrchr(a->path, '/');
        base = base ? base + 1 : a->path;
        if (a->media_type == NULL)
            a->media_type = s_guess_type(base);
        catts[i] = (pf_client_attachment_t){base, a->media_type, a->data, a->size};
    }

    if (pf_client_new(broker, broker_key, key, &c, &err) != 0) {
        fprintf(stderr, "postfach-send: %s\n", err);
        goto out;
    }
    pf_client_set_log(c, s_log, NULL);
    pf_client_set_timeout(c, timeout_ms, retries);
    if (jwks && pf_client_set_receipt_keys(c, jwks, &err) != 0) {
        fprintf(stderr, "postfach-send: %s\n", err);
        goto out;
    }
    pf_client_set_receipt_issuer(c, issuer);
    pf_client_set_receipt_audience(c, audience);
    if (receipts_only) {
        rc = s_wait_receipts(c, NULL, 0, wait_seconds);
        goto out;
    }

    char rid[PF_UUID_STRLEN + 1];
    if (request_id == NULL) {
        pf_uuid7_generate(rid);
        request_id = rid;
    }
    pf_client_notice_t n = {.request_id = request_id,
                            .recipients = to,
                            .recipient_count = nto,
                            .title = title,
                            .subject = subject,
                            .body = body ? body : body_buf,
                            .reference = reference,
                            .attachments = catts,
                            .attachment_count = natt,
                            .read_receipt = read_receipt,
                            .required_level = level};
    int s = pf_client_send(c, &n, &res, &err);
    if (s == -2) {
        fprintf(stderr, "postfach-send: not sent: %s\n", err);
        goto out;
    }
    if (s == -1) {
        fprintf(stderr, "postfach-send: %s (request id %s; retry with the same id)\n", err,
                request_id);
        rc = EXIT_NO_ANSWER;
        goto out;
    }
    if (!res.ok) {
        printf("nack %s %s\n", res.code, res.reason);
        rc = EXIT_NACKED;
        goto out;
    }
    for (size_t i = 0; i < res.copy_count; i++)
        printf("%s %s\n", res.copies[i].recipient, res.copies[i].message_id);
    fflush(stdout);
    rc = EXIT_ACKED;
    if (wait_receipts)
        rc = s_wait_receipts(c, &res, read_receipt ? 2 : 1, wait_seconds);
out:
    pf_client_result_clear(&res);
    pf_client_destroy(&c);
    for (size_t i = 0; i < natt; i++) {
        free(atts[i].path);
        free(atts[i].data);
    }
    free(atts);
    free(catts);
    free(body_buf);
    free(to);
    free(attach);
    return rc;
}
