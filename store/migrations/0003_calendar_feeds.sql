-- iCalendar feed secrets: one per person at a time, stored only as a SHA-256 digest.
-- The secret itself is shown once, in the feed URL; a leaked database holds nothing a calendar
-- client could use. Issuing a new secret revokes the old one; a revoked row is kept (who had a
-- feed, when) but opens nothing.
CREATE TABLE calendar_feeds (
    secret_sha256 bytea       PRIMARY KEY CHECK (octet_length(secret_sha256) = 32),
    person_id     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
-- At most one active secret per person.
CREATE UNIQUE INDEX calendar_feeds_active ON calendar_feeds (person_id) WHERE revoked_at IS NULL;
