-- Postfach schema: how many receipts each procedure has not acknowledged,
-- for `postfach-ctl sender receipts` under the administration's login.
-- Forward-only: never edit this file once landed.
--
-- Why: a procedure that takes its receipts but never acknowledges them, or
-- one that has been away for long, shows only in receipt_delivery, and
-- 0019 keeps the administration away from the delivery state.  Operators
-- had to query the table as the owner (docs/reliability.md).  This
-- function gives three counts per sender and nothing else: no receipt, no
-- jti, no mailbox, no time.  Senders without unacknowledged receipts have
-- no row.  Owned by the schema's owner and run with its rights (SECURITY
-- DEFINER, fixed search_path); EXECUTE for postfach_admin only.
--
-- It counts over the partial index receipt_delivery_due, so it reads every
-- unacknowledged row once: fine for an operator's command, not for a
-- monitoring probe every second on an outbox of millions.
CREATE FUNCTION sender_receipt_backlog()
RETURNS TABLE (sender_id bigint, unacknowledged bigint, sent bigint, most_attempts integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT d.sender_id, count(*), count(*) FILTER (WHERE d.attempts > 0), max(d.attempts)
    FROM receipt_delivery d WHERE d.acked_at IS NULL GROUP BY d.sender_id
$$;
REVOKE ALL ON FUNCTION sender_receipt_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sender_receipt_backlog() TO postfach_admin;
