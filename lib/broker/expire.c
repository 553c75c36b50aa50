/* "expired" receipts: the end of the retrieval window, signed like every
 * other receipt and put into the outbox, from where the relay takes it.
 *
 * Callers: broker.c, every expire_poll_ms while the database is up.
 * Invariants: one "expired" receipt per copy at most (the outbox's UNIQUE
 * (mailbox, message, event), and each copy is looked at once under a row
 * lock, so several brokers share the work); a copy retrieved within the
 * period gets none; whether it was is decided from the stored times
 * (read_at against created_at + period), not from when we happen to look,
 * so a broker that was down for a day decides exactly as one that was up.
 * The event time is the end of the window, created_at + period.  A later
 * first retrieval is untouched by all this: the reader still records it
 * and writes the "read" receipt.
 * Untrusted input: none beyond the rows (sender names, request ids), which
 * the receipt codec bounds and checks. */
#include "broker/expire.h"
#include "receipt/receipt.h"
#include "store/relay.h"
#include "util/log.h"
#include "util/uuid7.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_EXPIRE_BATCH 256
#define S_EXPIRE_ROUNDS 8
#define S_EXPIRE_SLICE_MS 200

/* Signs the receipt of one expired copy into e->jti / e->token. */
static int s_sign(pf_broker_t *b, pf_expiry_t *e, int64_t period_ms, const char **error_r)
{
    pf_receipt_t r;
    memset(&r, 0, sizeof(r));
    pf_uuid7_generate(e->jti);
    memcpy(r.jti, e->jti, sizeof(r.jti));
    memcpy(r.message_id, e->message_id, sizeof(r.message_id));
    r.txn = e->request_id;
    r.sender = e->sender_name;
    r.mailbox = e->mailbox_id;
    r.event = PF_EVENT_EXPIRED;
    r.event_time_ms = e->created_ms + period_ms;
    r.iat = (int64_t)time(NULL);
    r.jwe_tag = e->jwe_tag;
    e->token = pf_receipt_sign(b->receipt_key, b->issuer, &r, error_r);
    return e->token ? 0 : -1;
}

int pf_broker_expire(pf_broker_t *b)
{
    int total = 0;
    int64_t period_ms = (int64_t)b->cfg.expire_after_seconds * 1000;
    /* the loop that answers SENDs waits meanwhile: a backlog (after an
     * outage of the brokers) is worked off a slice per poll */
    int64_t until = pf_broker_now_ms() + S_EXPIRE_SLICE_MS;
    for (int round = 0; round < S_EXPIRE_ROUNDS && b->db_ok && pf_broker_now_ms() < until;
         round++) {
        pf_expiry_t *rows;
        size_t n;
        const char *err;
        if (pf_store_expiry_claim(b->st, b->cfg.expire_after_seconds, S_EXPIRE_BATCH, &rows, &n,
                                  &err) != 0) {
            pf_broker_db_failed(b, "cannot look for copies to expire", err);
            if (b->db_ok)
                pf_error("event=expire_failed error=\"%s\"", pf_broker_esc(err));
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (!rows[i].expired)
                continue;
            if (s_sign(b, &rows[i], period_ms, &err) != 0) {
                /* a row we cannot sign for is data trouble, not load: say
                 * so and leave the whole claim for the next poll */
                pf_error("event=expire_sign_failed message=%s error=\"%s\"", rows[i].message_id,
                         pf_broker_esc(err));
                pf_store_expiry_abort(b->st);
                pf_expiry_free(&rows, n);
                return -1;
            }
        }
        int k = n ? pf_store_expiry_finish(b->st, rows, n, &err) : 0;
        if (n == 0)
            pf_store_expiry_abort(b->st); /* ends the empty claim's transaction */
        if (k < 0) {
            pf_broker_db_failed(b, "cannot store expired receipts", err);
            if (b->db_ok)
                pf_error("event=expire_failed error=\"%s\"", pf_broker_esc(err));
            pf_expiry_free(&rows, n);
            return -1;
        }
        if (n > 0)
            pf_info("event=expired looked_at=%zu receipts=%d", n, k);
        total += k;
        pf_expiry_free(&rows, n);
        if (n < S_EXPIRE_BATCH)
            break;
    }
    if (total > 0)
        b->relay_due = true;
    return total;
}
