-- Postfach schema, version 1.
-- Forward-only: never edit this file once landed; add 0002_... instead.
-- Every mailbox-owned table carries mailbox_id so it can be partitioned or
-- distributed by mailbox later.

CREATE TABLE sender (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    -- CURVE public key, Z85 text (40 characters)
    curve_key   text NOT NULL UNIQUE CHECK (length(curve_key) = 40),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE mailbox (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$'),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Public keys of a mailbox, one row per key version; the highest version is
-- the one new notices are encrypted for, older ones stay for old notices.
CREATE TABLE mailbox_key (
    mailbox_id  text NOT NULL REFERENCES mailbox (id),
    version     integer NOT NULL CHECK (version > 0),
    kid         text NOT NULL,
    alg         text NOT NULL CHECK (alg IN ('ECDH-ES+A256KW', 'RSA-OAEP-256')),
    public_jwk  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, version)
);

-- Private keys, wrapped under the reader's key-encryption key (KEK).  A
-- table of its own so the broker's role can be denied it entirely.  A
-- mailbox whose citizen keeps the private key has no row here.
CREATE TABLE mailbox_secret (
    mailbox_id  text NOT NULL,
    version     integer NOT NULL,
    kek_id      text NOT NULL,
    wrapped_key bytea NOT NULL,
    PRIMARY KEY (mailbox_id, version),
    FOREIGN KEY (mailbox_id, version) REFERENCES mailbox_key (mailbox_id, version)
);

-- One row per accepted submission: the idempotency record.  A repeat of
-- (sender, request id) gets the stored ACK; a different payload under the
-- same request id is a conflict.
CREATE TABLE submission (
    sender_id    bigint NOT NULL REFERENCES sender (id),
    request_id   text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 128),
    payload_hash bytea NOT NULL CHECK (length(payload_hash) = 32),
    ack          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sender_id, request_id)
);

-- One row per recipient copy.  id is a UUIDv7, so (mailbox_id, id) is also
-- the time order of the mailbox: the primary key serves the listing.
-- Subject, body and attachments exist only inside the JWE.  The content-key
-- wrap (protected header with alg/kid/epk, encrypted key) is kept apart from
-- the content (iv, ciphertext, tag).
CREATE TABLE message (
    mailbox_id        text NOT NULL REFERENCES mailbox (id),
    id                uuid NOT NULL,
    sender_id         bigint NOT NULL REFERENCES sender (id),
    request_id        text NOT NULL,
    title             text NOT NULL,
    reference         text NOT NULL DEFAULT '',
    required_level    smallint NOT NULL DEFAULT 1 CHECK (required_level BETWEEN 1 AND 3),
    read_receipt      boolean NOT NULL,
    size              bigint NOT NULL,
    attachment_count  integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    read_at           timestamptz,
    key_version       integer NOT NULL,
    jwe_protected     text NOT NULL,
    jwe_encrypted_key bytea NOT NULL,
    jwe_iv            bytea NOT NULL,
    jwe_ciphertext    bytea NOT NULL,
    jwe_tag           bytea NOT NULL,
    PRIMARY KEY (mailbox_id, id)
);

-- The receipt outbox: written in the same transaction as the state it
-- reports, relayed at least once to the sender, applied once by its jti.
-- At most one receipt per event and copy.
CREATE TABLE receipt (
    jti             uuid PRIMARY KEY,
    sender_id       bigint NOT NULL REFERENCES sender (id),
    mailbox_id      text NOT NULL,
    message_id      uuid NOT NULL,
    event           text NOT NULL CHECK (event IN ('delivered', 'read', 'expired', 'rejected')),
    token           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    acked_at        timestamptz,
    UNIQUE (mailbox_id, message_id, event)
);
CREATE INDEX receipt_pending ON receipt (sender_id, next_attempt_at) WHERE acked_at IS NULL;

-- Wake-up hint for the relay; polling remains the guarantee.
CREATE FUNCTION receipt_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postfach_receipt', NEW.sender_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER receipt_notify AFTER INSERT ON receipt
    FOR EACH ROW EXECUTE FUNCTION receipt_notify();
