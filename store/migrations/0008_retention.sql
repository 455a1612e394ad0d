-- Retention per data category (PRODUCT §8.7, docs/retention.md): what a retention run deleted,
-- when, by which rule. PII-free by construction: a subject is named by an id the service minted
-- (a journey, text or person id), never by a name or an address; row categories record a count.
-- Append-only like the events: the ledger is the proof that a run did what its rules say.
CREATE TABLE retention_ledger (
    entry_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       text        NOT NULL,
    category     text        NOT NULL CHECK (category IN ('free_texts', 'contact_data', 'idempotency_keys',
                                                           'outbox_delivered', 'dashboard_sessions', 'access_log')),
    rule         text        NOT NULL,
    subject_kind text        NOT NULL,
    subject_ref  text,
    deleted      bigint      NOT NULL CHECK (deleted > 0),
    due_since    timestamptz NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retention_ledger_run ON retention_ledger (run_id);
CREATE INDEX retention_ledger_subject ON retention_ledger (subject_ref) WHERE subject_ref IS NOT NULL;

CREATE FUNCTION retention_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the retention ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER retention_ledger_no_update_or_delete BEFORE UPDATE OR DELETE ON retention_ledger
    FOR EACH ROW EXECUTE FUNCTION retention_ledger_append_only();
CREATE TRIGGER retention_ledger_no_truncate BEFORE TRUNCATE ON retention_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION retention_ledger_append_only();
