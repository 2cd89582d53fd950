-- custos-2-requests.sql - migration 2 of Custos's own schema: the ledger of
-- data subjects' requests (GDPR Art. 12-22, CCPA §7101: a record of every
-- request, kept 24 months). custosd applies it to a keystore of version 1
-- when it starts; `custosctl keys init` applies it after custos.sql.
--
-- A subject's identifier is kept while the request is live and cleared
-- when an erasure completes: the row then names the subject only by type
-- and its subject_ref (HMAC under the index key, as in the audit log).

BEGIN;
-- whoever applies it first does; the others wait here, then find it done
LOCK TABLE custos.schema_version IN EXCLUSIVE MODE;

CREATE TABLE IF NOT EXISTS custos.requests (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    regime           text        NOT NULL CHECK (regime IN ('gdpr', 'ccpa')),
    kind             text        NOT NULL CHECK (kind IN ('access', 'erasure')),
    subject_type     text        NOT NULL,
    subject_id       text,                   -- NULL once erased
    subject_ref      bytea       CHECK (length(subject_ref) = 32),
    -- receipt: when and how it was made (§7101 "manner"), and who checked
    -- the requester's identity, how (Art. 12(6), §7060-7062)
    received_on      date        NOT NULL,
    received_via     text        NOT NULL,
    verification     text,
    verified_by      text,
    opened_by        text        NOT NULL,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    -- deadlines (deadline.h): the answer's, the CCPA receipt confirmation's
    due_on           date        NOT NULL,
    confirm_by       date,
    extended_on      date,
    extension_reason text,
    extended_by      text,
    status           text        NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'approved', 'denied', 'running', 'failed', 'completed')),
    approved_by      text,
    approved_at      timestamptz,
    denied_by        text,
    denial_basis     text,
    ran_by           text,
    completed_at     timestamptz,
    response         text,                   -- the nature of the response (§7101)
    report_dir       text,
    report_sha256    bytea       CHECK (length(report_sha256) = 32),
    log_seq          bigint,                 -- the audit record of the outcome
    error            text,                   -- why the last run failed (no personal data)
    CHECK ((extended_on IS NULL) = (extension_reason IS NULL)),
    CHECK ((status = 'denied') = (denial_basis IS NOT NULL)),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
COMMENT ON TABLE custos.requests IS
    'Data subjects'' requests (GDPR access and erasure, CCPA right to know and delete): the §7101 record.';
CREATE INDEX IF NOT EXISTS requests_open ON custos.requests (due_on) WHERE status NOT IN ('completed', 'denied');

INSERT INTO custos.schema_version (version) VALUES (2) ON CONFLICT DO NOTHING;
COMMIT;
