-- The event store, its read models, the notification outbox and the people vault.

CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: readers of the global order sort by (transaction_id,
    -- global_position) and stop below the oldest transaction still in flight (see eventstore.py).
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- Optimistic concurrency: two writers cannot both take version N of a stream.
    PRIMARY KEY (stream_id, stream_version),
    UNIQUE (event_id)
);
CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE INDEX events_commit_order ON events (transaction_id, global_position);

-- One row per journey: the status view and the columns the API filters on.
CREATE TABLE journey_status (
    journey_id        text        PRIMARY KEY,
    stream_id         text        NOT NULL,
    cohort_id         text        NOT NULL,
    programme_id      text        NOT NULL,
    programme_version integer     NOT NULL,
    state             text        NOT NULL,
    at_risk           boolean     NOT NULL,
    talent_id         text        NOT NULL,
    nearest_leader_id text        NOT NULL,
    external_ref      text,
    next_deadline     timestamptz,
    open_escalations  integer     NOT NULL,
    version           integer     NOT NULL,
    status            jsonb       NOT NULL,
    updated_at        timestamptz NOT NULL
-- Every append rewrites its journey's row: free space on the page lets most of those updates be
-- HOT (no index entries touched), since they change only unindexed columns.
) WITH (fillfactor = 70);
CREATE INDEX journey_status_cohort ON journey_status (cohort_id, state);
CREATE INDEX journey_status_talent ON journey_status (talent_id);
CREATE INDEX journey_status_open_escalations ON journey_status (cohort_id) WHERE open_escalations > 0;

-- Who may see a journey: its talent, and every leader who is or was its nearest leader.
CREATE TABLE journey_access (
    journey_id text NOT NULL,
    person_id  text NOT NULL,
    role       text NOT NULL CHECK (role IN ('talent', 'nearest_leader', 'leaders_leader')),
    PRIMARY KEY (journey_id, person_id, role)
);
CREATE INDEX journey_access_person ON journey_access (person_id, role);

-- Counts by state per cohort. A view, not a counter table: a counter row per cohort would
-- serialise every append in the cohort on one row lock; a cohort holds tens of journeys, so the
-- aggregate is a short index scan of journey_status_cohort.
CREATE VIEW cohort_counts AS
    SELECT cohort_id, state, count(*)::integer AS journeys,
           count(*) FILTER (WHERE at_risk)::integer AS at_risk
      FROM journey_status
  GROUP BY cohort_id, state;

-- Notifications to deliver, written in the same transaction as the events that cause them.
CREATE TABLE outbox (
    notification_id uuid        PRIMARY KEY,
    event_id        uuid        NOT NULL,
    journey_id      text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    template        text        NOT NULL,
    recipient_role  text        NOT NULL,
    recipient_id    text,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'skipped', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_journey ON outbox (journey_id);

-- Programme versions (immutable once published) and cohorts.
CREATE TABLE programmes (
    programme_id text        NOT NULL,
    version      integer     NOT NULL,
    definition   jsonb       NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (programme_id, version)
);

CREATE TABLE cohorts (
    cohort_id         text        PRIMARY KEY,
    programme_id      text        NOT NULL,
    programme_version integer     NOT NULL,
    definition        jsonb       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (programme_id, programme_version) REFERENCES programmes (programme_id, version)
);

-- The people vault: personal data encrypted with a per-person data key, itself wrapped by the
-- service's key-encryption key. Erasing a person deletes their data key (crypto-shredding).
CREATE TABLE person_keys (
    person_id   text        PRIMARY KEY,
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE people (
    person_id  text        PRIMARY KEY,
    nonce      bytea,
    ciphertext bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz
);

CREATE TABLE person_texts (
    text_id    text        PRIMARY KEY,
    person_id  text        NOT NULL,
    nonce      bytea       NOT NULL,
    ciphertext bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX person_texts_person ON person_texts (person_id);
