-- Events are append-only in the database too (PRODUCT §8.7): an UPDATE, DELETE or TRUNCATE of
-- the events table fails whoever sends it, the service's own role included. A journey's history
-- is changed only by appending to it; an erasure crypto-shreds the vault and leaves the events.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
