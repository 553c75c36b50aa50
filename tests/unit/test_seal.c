/* Unit tests of lib/broker/seal: the crypto workers of the broker.
 * Usage example: fill pf_seal_item_t with a decoded SEND, the sender, the
 * payload hash and one public key per recipient; queue a batch; wait on
 * the pool's fd; collect the batch; each item holds one JWE and one
 * signed receipt per recipient, ready for pf_store_committer_send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/seal.h"
#include "crypto/jose.h"
#include "proto/notice.h"
#include "receipt/receipt.h"

#define N_ITEMS 40

static const char *const s_to[] = {"citizen-a", "citizen-b"};

static pf_wire_send_t s_send(const char *rid)
{
    return (pf_wire_send_t){.request_id = rid,
                            .recipients = (const char **)s_to,
                            .recipient_count = 2,
                            .title = "Bescheid",
                            .subject = "Geheimer Betreff",
                            .body = "Vertraulicher Inhalt",
                            .reference = "AZ 1",
                            .level = 1};
}

/* Opens copy c of an item with priv and checks the notice inside. */
static void s_check_copy(const pf_seal_item_t *it, size_t c, const pf_key_t *priv)
{
    unsigned char *pt;
    size_t len;
    const char *err;
    assert_int_equal(pf_jwe_open(priv, it->jwes[c], &pt, &len, &err), 0);
    pf_notice_t n;
    assert_int_equal(pf_notice_decode((const char *)pt, len, 1, &n, &err), 0);
    assert_string_equal(n.subject, "Geheimer Betreff");
    assert_string_equal(n.sender, "tax-office");
    pf_notice_clear(&n);
    pf_wipe(pt, len);
    free(pt);
    /* the stored parts are the JWE's */
    assert_ptr_equal(it->sub.copies[c].ciphertext, it->jwes[c]->ciphertext);
    assert_int_equal(it->sub.copies[c].size, (int64_t)len);
}

static void test_pool_seals_every_item(void **state)
{
    (void)state;
    pf_key_t *priv_a, *priv_b, *rk;
    const char *err;
    assert_int_equal(pf_key_generate(PF_KEY_P256, &priv_a, &err), 0);
    assert_int_equal(pf_key_generate(PF_KEY_P256, &priv_b, &err), 0);
    assert_int_equal(pf_key_generate(PF_KEY_P256, &rk, &err), 0);
    /* the broker holds public keys only */
    pf_key_t *pub_a = pf_key_public(priv_a), *pub_b = pf_key_public(priv_b);
    const pf_key_t *keys[2] = {pub_a, pub_b};
    int versions[2] = {1, 3};
    unsigned char hash[32] = {1};

    pf_seal_pool_t *pool;
    assert_int_equal(pf_seal_pool_new(3, rk, "https://postfach.test", &pool, &err), 0);
    pf_wire_send_t sends[N_ITEMS];
    char rids[N_ITEMS][16];
    pf_seal_batch_t batches[2];
    pf_seal_item_t items[N_ITEMS];
    memset(items, 0, sizeof(items));
    for (int i = 0; i < N_ITEMS; i++) {
        snprintf(rids[i], sizeof(rids[i]), "req-%d", i);
        sends[i] = s_send(rids[i]);
        items[i] = (pf_seal_item_t){.send = &sends[i],
                                    .sender_name = "tax-office",
                                    .sender_id = 7,
                                    .hash = hash,
                                    .keys = keys,
                                    .versions = versions};
    }
    /* two batches in the queue at once, one of them empty */
    batches[0] = (pf_seal_batch_t){.items = items, .count = N_ITEMS, .owner = &batches[0]};
    batches[1] = (pf_seal_batch_t){.items = NULL, .count = 0, .owner = &batches[1]};
    pf_seal_pool_submit(pool, &batches[0]);
    pf_seal_pool_submit(pool, &batches[1]);
    int done = 0;
    while (done < 2) {
        struct pollfd p = {.fd = pf_seal_pool_fd(pool), .events = POLLIN};
        assert_true(poll(&p, 1, 10000) == 1);
        pf_seal_batch_t *b;
        while ((b = pf_seal_pool_done(pool)) != NULL) {
            assert_ptr_equal(b->owner, b);
            done++;
        }
    }
    assert_null(pf_seal_pool_done(pool));

    pf_keyset_t *set = pf_keyset_new();
    pf_keyset_add(set, rk, NULL);
    for (int i = 0; i < N_ITEMS; i++) {
        pf_seal_item_t *it = &items[i];
        assert_true(it->ok);
        assert_int_equal(it->sub.copy_count, 2);
        assert_int_equal(it->sub.sender_id, 7);
        assert_string_equal(it->sub.request_id, rids[i]);
        assert_non_null(strstr(it->sub.ack_json, rids[i]));
        assert_int_equal(it->sub.copies[1].key_version, 3);
        s_check_copy(it, 0, priv_a);
        s_check_copy(it, 1, priv_b);
        /* the receipt names its copy and verifies with the service key */
        pf_receipt_t r;
        const char *tok = it->sub.copies[1].receipt_token;
        assert_int_equal(
            pf_receipt_verify(tok, strlen(tok), set, "https://postfach.test", &r, &err), 0);
        assert_string_equal(r.message_id, it->sub.copies[1].message_id);
        assert_string_equal(r.mailbox, "citizen-b");
        assert_int_equal(r.event, PF_EVENT_DELIVERED);
        pf_receipt_clear(&r);
        /* every copy has its own message id */
        assert_string_not_equal(it->sub.copies[0].message_id, it->sub.copies[1].message_id);
        pf_seal_item_clear(it);
    }
    pf_keyset_destroy(&set);
    pf_seal_pool_destroy(&pool);
    assert_null(pool);
    pf_key_destroy(&pub_a);
    pf_key_destroy(&pub_b);
    pf_key_destroy(&priv_a);
    pf_key_destroy(&priv_b);
    pf_key_destroy(&rk);
}

static void test_item_without_usable_key_fails(void **state)
{
    (void)state;
    pf_key_t *rk, *rsa;
    const char *err;
    assert_int_equal(pf_key_generate(PF_KEY_P256, &rk, &err), 0);
    /* an RSA key below 3072 bits cannot be used for encryption: the seal
     * reports it instead of producing a weak copy */
    assert_int_equal(pf_key_generate(PF_KEY_RSA3072, &rsa, &err), 0);
    const pf_key_t *keys[2] = {rsa, NULL};
    int versions[2] = {1, 1};
    unsigned char hash[32] = {0};
    pf_wire_send_t s = s_send("req-x");
    pf_seal_item_t it = {.send = &s,
                         .sender_name = "tax-office",
                         .sender_id = 1,
                         .hash = hash,
                         .keys = keys,
                         .versions = versions};
    pf_seal_item(&it, rk, "https://postfach.test");
    assert_false(it.ok); /* the second key is missing */
    assert_non_null(it.error);
    pf_seal_item_clear(&it);
    pf_key_destroy(&rsa);
    pf_key_destroy(&rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_seals_every_item),
        cmocka_unit_test(test_item_without_usable_key_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
