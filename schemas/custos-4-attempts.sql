-- custos-4-attempts.sql - migration 4 of Custos's own schema: the subject
-- index holds the audit log's attempt records too (a write to a policy
-- table is recorded before PostgreSQL runs it), and which attempt each
-- access record follows, so that an access report also lists the writes
-- whose access record the log does not hold. The index is a cache of the
-- log: it is emptied here and filled again from the log's first record.

BEGIN;
LOCK TABLE custos.schema_version IN EXCLUSIVE MODE;

TRUNCATE custos.subject_index, custos.subject_index_state;
ALTER TABLE custos.subject_index
    ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'access' CHECK (kind IN ('access', 'attempt')),
    ADD COLUMN IF NOT EXISTS attempt bigint; -- an access record: the seq of the attempt it follows
COMMENT ON TABLE custos.subject_index IS
    'The audit log''s access and attempt records by subject ref (a cache of the log, for access reports).';
CREATE INDEX IF NOT EXISTS subject_index_attempt ON custos.subject_index (log_id, attempt)
    WHERE attempt IS NOT NULL;

INSERT INTO custos.schema_version (version) VALUES (4) ON CONFLICT DO NOTHING;
COMMIT;
