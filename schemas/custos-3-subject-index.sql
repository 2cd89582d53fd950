-- custos-3-subject-index.sql - migration 3 of Custos's own schema: an
-- index of the audit log's access records by subject ref, so that an
-- access report finds a subject's accesses without reading the whole log.
-- The dsr role fills it from the log as it grows (dsr_index.c); it holds
-- refs (keyed hashes), never identifiers. The log stays the authority:
-- each entry names the record's sequence number, and `custosctl log
-- verify` checks the records themselves.

BEGIN;
LOCK TABLE custos.schema_version IN EXCLUSIVE MODE;

CREATE TABLE IF NOT EXISTS custos.subject_index (
    log_id      bytea       NOT NULL CHECK (length(log_id) = 16),
    subject_ref bytea       NOT NULL CHECK (length(subject_ref) = 32),
    seq         bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    actor_user  text,
    actor_app   text,
    actor_host  text,       -- the client's address without its port
    object      text,       -- the table
    rows        bigint,
    PRIMARY KEY (log_id, subject_ref, seq)
);
COMMENT ON TABLE custos.subject_index IS
    'The audit log''s access records by subject ref (a cache of the log, for access reports).';

-- How far each log has been indexed.
CREATE TABLE IF NOT EXISTS custos.subject_index_state (
    log_id      bytea       PRIMARY KEY CHECK (length(log_id) = 16),
    indexed_seq bigint      NOT NULL CHECK (indexed_seq >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO custos.schema_version (version) VALUES (3) ON CONFLICT DO NOTHING;
COMMIT;
