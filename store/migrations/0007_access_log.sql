-- The access log (PRODUCT §8.7): one row for every read or write of a journey or a person's data
-- through the API, the dashboard, the HR feed, the calendar feeds and the CLI. Ids only, never
-- personal data: who (the stable actor id of `infra.auth`, `cli:<OS user>` or `calendar:<person
-- id>`, and the role), what (the route template or CLI verb, the journeys and people involved),
-- when, the request's correlation id as the API keeps it (a hash of a caller-supplied
-- X-Correlation-Id, never the raw value) and the outcome (the HTTP status, or ok / refused).
-- Durability: a command's row is committed durably before its answer leaves; a READ's row commits
-- with synchronous_commit off (store/access_log.py), so a crash of PostgreSQL itself may lose the
-- last fraction of a second of read rows (never a refusal to log: a failed write fails the read).
CREATE TABLE access_log (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       text        NOT NULL,
    role           text        NOT NULL,
    channel        text        NOT NULL CHECK (channel IN ('api', 'dashboard', 'feed', 'calendar', 'cli')),
    action         text        NOT NULL,
    journey_ids    text[]      NOT NULL DEFAULT '{}',
    person_ids     text[]      NOT NULL DEFAULT '{}',
    correlation_id text,
    outcome        text        NOT NULL
);
CREATE INDEX access_log_person_ids ON access_log USING gin (person_ids);
CREATE INDEX access_log_journey_ids ON access_log USING gin (journey_ids);
CREATE INDEX access_log_actor_at ON access_log (actor_id, at);
CREATE INDEX access_log_at ON access_log (at);

-- Append-only, like the events (0006): an UPDATE, DELETE or TRUNCATE fails whoever sends it, the
-- service's own role included. The one exception is retention: `expire_access_log(before)`
-- deletes the rows older than `before` and says how many. It sets the transaction-local setting
-- `talent.access_log_expiry` that the trigger lets through.
--
-- Honestly: any role may set a custom setting, so the setting guards against accidents (a stray
-- DELETE in a console, a bug in the service) and makes the one legitimate path explicit; it does
-- not stop a compromised service that knows of it. Against that only privileges help: the
-- migrations run as a separate role that owns these tables, and the service's role is granted
-- INSERT and SELECT on access_log and EXECUTE on this function, nothing more (a deployment's
-- grants, not made here: this file cannot know the service's role). Without DELETE, setting the
-- guard gains the service nothing, and the function removes rows only by age.
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('talent.access_log_expiry', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the access log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER access_log_no_update_or_delete BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();

-- Retention's one way to delete: the rows logged before `before`, and their count. The setting
-- is local to the transaction and switched off again before returning, so nothing after the
-- call in the same transaction can delete through it.
CREATE FUNCTION expire_access_log(before timestamptz) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    deleted bigint;
BEGIN
    PERFORM set_config('talent.access_log_expiry', 'on', true);
    DELETE FROM access_log WHERE at < before;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('talent.access_log_expiry', 'off', true);
    RETURN deleted;
END
$$;
