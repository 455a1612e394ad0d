-- Dashboard sign-in sessions (PRODUCT §8.3, issue 9): the browser holds a random session id, the
-- database only its SHA-256, so a leaked table opens nothing. The API token is verified once at
-- sign-in and never stored; the row keeps who signed in (the token's stable id, role, person id).
-- Every page checks the row: expired or revoked (signed out) opens nothing. Rows are kept a day
-- past their expiry (who was signed in, when), then deleted at a later sign-in.
CREATE TABLE dashboard_sessions (
    session_sha256 bytea       PRIMARY KEY CHECK (octet_length(session_sha256) = 32),
    token_id       text        NOT NULL,
    role           text        NOT NULL,
    person_id      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);

-- A database belongs to one instance: the vault key its people were written with (and the
-- Temporal state that holds its journeys). Recorded on first start as an id derived from the key
-- (an HMAC, never the key); a start with another key is refused before it reads or writes anything.
CREATE TABLE instance_binding (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    key_id     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
