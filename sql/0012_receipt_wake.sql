-- Postfach schema: the reader wakes the relay itself, a few times a second
-- at most, instead of once per first retrieval.
-- Forward-only: never edit this file once landed.
--
-- Why: a transaction that NOTIFYs takes a lock that serialises every such
-- transaction of the database until its commit is flushed (PostgreSQL's
-- PreCommit_Notify), so concurrent first retrievals, each storing a read
-- receipt, could not share a WAL flush, and every NOTIFY also signals the
-- listening relay.  Measured with pgbench, 8 clients, the reader's
-- statement alone: 1,700-2,350 transactions/s and 640-760 us of CPU each
-- with the NOTIFY, 2,750-4,070/s and 390-530 us without.
--
-- A session that sets postfach.receipt_wake to 'caller' promises to wake
-- the relay on its own after its COMMIT (the reader does, from one thread,
-- at most every 10 ms); the trigger then only inserts the delivery rows.
-- Every other session (the broker's expiry, delivered receipts of a
-- procedure without a connection) is woken by the trigger as before.  A
-- wake-up that never comes delays a receipt until the relay's next poll
-- (relay_poll_ms), it does not lose it: the delivery row is committed
-- with the receipt.
CREATE OR REPLACE FUNCTION receipt_notify_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added bigint;
BEGIN
    INSERT INTO receipt_delivery (jti, sender_id) SELECT jti, sender_id FROM new_receipts
        ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added > 0 AND coalesce(current_setting('postfach.receipt_wake', true), '') <> 'caller' THEN
        PERFORM pg_notify('postfach_receipt', d.sender_id::text)
            FROM (SELECT DISTINCT sender_id FROM new_receipts) AS d;
    END IF;
    RETURN NULL;
END
$$;
