-- The read side at scale (issue 15).

-- The KPI projection. Each journey's share of the KPIs (domain.kpis.KpiRow) is written by the
-- append in the same statement as its status row, and the append adds the change of that share
-- to its cohort's running totals, so a programme's KPIs read a few hundred total rows instead of
-- decoding every status document and fact event per request. `counters` follows
-- domain.kpis.COUNTERS; `horizon_ends` / `horizon_flags` (HORIZON_FLAGS per horizon) are set for
-- completed journeys only: which of them a horizon counts depends on the instant asked about, so
-- they are added up per request, over the completed journeys alone.
-- Journeys stored before this table get their rows from their next append or a read-model
-- rebuild (`talent projections rebuild`); until the totals cover every journey of the cohort or
-- programme asked about, store.views.kpis computes its KPIs from the events, as before.
CREATE TABLE journey_kpis (
    journey_id          text          PRIMARY KEY,
    programme_id        text          NOT NULL,
    cohort_id           text          NOT NULL,
    version             integer       NOT NULL,
    counters            integer[]     NOT NULL,
    horizon_ends        timestamptz[],
    horizon_flags       integer[],
    days_to_appointment integer
) WITH (fillfactor = 80);
CREATE INDEX journey_kpis_programme_evaluated ON journey_kpis (programme_id) WHERE horizon_ends IS NOT NULL;
CREATE INDEX journey_kpis_cohort_evaluated ON journey_kpis (cohort_id) WHERE horizon_ends IS NOT NULL;

-- The counters summed per cohort, in eight shards by journey (an append changes one row: its
-- cohort's shard), so appends to one cohort seldom wait on one another's row lock.
CREATE TABLE kpi_totals (
    cohort_id    text      NOT NULL,
    shard        smallint  NOT NULL,
    programme_id text      NOT NULL,
    counters     bigint[]  NOT NULL,
    PRIMARY KEY (cohort_id, shard)
);
CREATE INDEX kpi_totals_programme ON kpi_totals (programme_id);

-- List pages are keyset pages by journey id within a filter: one index per filter.
CREATE INDEX journey_status_cohort_page ON journey_status (cohort_id, journey_id);
CREATE INDEX journey_status_state_page ON journey_status (state, journey_id);
CREATE INDEX journey_status_at_risk_page ON journey_status (journey_id) WHERE at_risk;
-- The KPIs check that the totals cover a programme's journeys: a count by programme.
CREATE INDEX journey_status_programme ON journey_status (programme_id);
