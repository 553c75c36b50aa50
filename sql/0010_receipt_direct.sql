-- Postfach schema: delivered receipts sent by the broker right after COMMIT.
-- Forward-only: never edit this file once landed.
--
-- Why: the broker signs each "delivered" receipt before the batch is
-- stored and holds it until the batch's COMMIT result.  Until now it
-- still went the long way: the trigger's NOTIFY woke the relay, whose
-- claim (an UPDATE of every delivery row: attempts, next_attempt_at, so
-- never HOT) read the ~1 KiB token back out of `receipt`, and only then
-- was it sent.  Now the batch statement inserts the delivery row of such a
-- receipt itself, already counted as sent once and due again only after
-- receipt_retry_seconds, and the broker sends it from memory after the
-- COMMIT.  Delivery stays at least once: a receipt lost on the way (the
-- broker dies after COMMIT, the procedure's connection drops) is sent
-- again by the relay when it is due, or at once on the procedure's next
-- HELLO, which makes everything unacknowledged due.
--
-- The trigger now inserts only the delivery rows the statement did not
-- insert itself (ON CONFLICT on its only unique key, the primary key; no
-- conflict target, which would need SELECT on jti), and wakes the relay only
-- when it inserted some: for the reader's "read" receipts, the broker's
-- "expired" ones, and delivered receipts of a sender that has no
-- connection to send them on.  (The row count, not RETURNING: the reader
-- may insert delivery rows but not read them, sql/0009.)
CREATE OR REPLACE FUNCTION receipt_notify_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added bigint;
BEGIN
    INSERT INTO receipt_delivery (jti, sender_id) SELECT jti, sender_id FROM new_receipts
        ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added > 0 THEN
        PERFORM pg_notify('postfach_receipt', d.sender_id::text)
            FROM (SELECT DISTINCT sender_id FROM new_receipts) AS d;
    END IF;
    RETURN NULL;
END
$$;
