-- Postfach schema: the roles' privileges on receipt_delivery, granted
-- whatever the order the earlier files ran in.
-- Forward-only: never edit this file once landed.
--
-- Why: 0009 (receipt_delivery) landed before 0008 (the roles) and grants
-- only to roles that exist when it runs.  A database migrated while 0009
-- was the newest file got no grants there; on upgrade the runner applies
-- the missing 0008, which creates the roles and grants on the tables it
-- knows, not on receipt_delivery, and skips 0009 as done.  Under their
-- role logins the broker then failed every batch (the receipt trigger
-- inserts into receipt_delivery as the inserting role) and the reader
-- every first retrieval.  0008 has run before this file on every
-- database, so the roles exist; granting again is harmless.
GRANT SELECT, INSERT, UPDATE ON receipt_delivery TO postfach_broker;
GRANT INSERT ON receipt_delivery TO postfach_reader;
GRANT SELECT ON receipt_delivery TO postfach_admin;
