-- Postfach schema: the mailbox check of 0015 looks each copy's mailbox up
-- by its primary key, whatever the planner thinks of the mailbox table.
-- Forward-only: never edit this file once landed.
--
-- Why: 0015 wrote the check as NOT EXISTS, which the planner turns into an
-- anti-join, and for a small mailbox table it chose a hash anti-join: a
-- sequential scan of every mailbox and a hash of them, for a statement
-- that had inserted eight copies (PL/pgSQL keeps the plan it made on the
-- first call of a session until the table's statistics change).  Seen on
-- the bench database (1,000 mailboxes, one broker at 2,300 notices/s, 8
-- copies per statement, track_functions = pl): the mailbox table was read
-- in full 4,010 times in 5,735 statements, and the trigger took 152 us per
-- statement.  Written as a scalar subquery per copy, which the planner
-- never turns into a join, it is one index probe per copy: 59 us per
-- statement in the next run, and 542 full reads of the mailbox table in
-- 7,187 statements (the broker's key lookups while its key cache fills).
-- With a million mailboxes the planner already probed the index; now it
-- has no other choice there either.
--
-- The rule is the same as in 0015: a statement that inserts a copy for a
-- mailbox that does not exist fails with SQLSTATE 23503 and stores
-- nothing.
CREATE OR REPLACE FUNCTION message_mailbox_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT n.mailbox_id INTO missing FROM new_messages n
        WHERE (SELECT true FROM mailbox m WHERE m.id = n.mailbox_id) IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert on table "message" violates the mailbox check'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (mailbox_id)=(%s) is not present in table "mailbox".', missing);
    END IF;
    RETURN NULL;
END
$$;
