-- custos.sql - Custos's own schema: the keystore.
--
-- By default it lives in a database of its own (custos); it can also live
-- in the customer database. `custosctl keys init` applies this file (it is
-- compiled into custosctl and custosd) and then creates the keystore's
-- keys; nothing here is secret. Every key in these tables is wrapped
-- (AES-256-GCM, SECURITY.md): data keys under the key-encryption key (KEK)
-- of their epoch, which lives outside the database in the KEK file; the
-- index key under the master key.
--
-- This is migration 1; later ones (custos-2-requests.sql, ...) are applied in
-- order, keyed on custos.schema_version.

BEGIN;

CREATE SCHEMA custos;
COMMENT ON SCHEMA custos IS 'Custos keystore: wrapped per-subject data keys and key-encryption-key epochs.';

CREATE TABLE custos.schema_version (
    version     integer     PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO custos.schema_version (version) VALUES (1);

-- One row: the keystore's identity (bound into every wrapping, and into
-- the KEK file, so that neither can be paired with another keystore) and
-- its index key, wrapped under the master key.
CREATE TABLE custos.keystore (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    id          bytea       NOT NULL CHECK (length(id) = 16),
    index_key   bytea       NOT NULL CHECK (length(index_key) = 61),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- KEK epochs. Exactly one is active; retired epochs are kept as history
-- (their KEK is destroyed: it existed only in the KEK file).
CREATE TABLE custos.kek_epochs (
    epoch       integer     PRIMARY KEY CHECK (epoch > 0),
    state       text        NOT NULL CHECK (state IN ('active', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz CHECK ((state = 'retired') = (retired_at IS NOT NULL))
);
CREATE UNIQUE INDEX kek_epochs_one_active ON custos.kek_epochs (state) WHERE state = 'active';

-- Data keys, wrapped under their epoch's KEK. subject_ref is HMAC-SHA256 of
-- "type:id" under the index key (never the identifier itself); NULL for a
-- key made for values written without a known subject.
CREATE TABLE custos.data_keys (
    key_id      bytea       PRIMARY KEY CHECK (length(key_id) = 16),
    subject_ref bytea       CHECK (length(subject_ref) = 32),
    epoch       integer     NOT NULL REFERENCES custos.kek_epochs,
    wrapped     bytea       NOT NULL CHECK (length(wrapped) = 61),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX data_keys_subject ON custos.data_keys (subject_ref);
CREATE INDEX data_keys_epoch ON custos.data_keys (epoch);

-- Erased subjects: they get no new key (a value still arriving for them
-- fails closed).
CREATE TABLE custos.shredded_subjects (
    subject_ref    bytea       PRIMARY KEY CHECK (length(subject_ref) = 32),
    shredded_at    timestamptz NOT NULL DEFAULT now(),
    keys_destroyed integer     NOT NULL CHECK (keys_destroyed >= 0)
);

COMMIT;
