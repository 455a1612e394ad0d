"""Programme KPIs and a cohort's funnel: one query of the KPI projection (migration 0010).

The append keeps each journey's share of the KPIs (domain.kpis.KpiRow, store/projection.py) in
journey_kpis and adds its change to the cohort's kpi_totals; here the totals are read and the
as-of-dependent horizons added up over the completed journeys, the same sums as
domain.kpis.add_up. Journeys stored before the projection have no row until their next append or
a rebuild: while the totals do not cover a scope's journeys, its KPIs are computed the old way,
from the status documents and fact events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Literal

from domain import events as e
from domain.kpis import (
    COUNTERS,
    HORIZON_FLAGS,
    HORIZONS,
    Funnel,
    JourneyFacts,
    Kpis,
    KpiTotals,
    compute_funnel,
    compute_kpis,
    facts_from_events,
    funnel_of,
    kpis_of,
)
from store.db import Connection
from store.views._base import Pool, parse

#: The events whose facts the status view does not keep: enrolment and the start (the funnel), the
#: evaluation instant, late meets, outcomes, an expired nomination.
_FACT_TYPES = [
    "TalentEnrolled",
    "JourneyStarted",
    "ProgrammeCompleted",
    "ProgrammeNotCompleted",
    "MilestoneMet",
    "OutcomeRecorded",
    "NominationExpired",
]

# `{scope}` is one of two constant column names, never input. One snapshot (REPEATABLE READ) for
# both queries, so a journey's events and its status row agree; it is short, so it does not hold
# the event feed's watermark back for long.
_STATUSES = (
    "SELECT s.journey_id, s.status::text AS status, s.leaders_leader_id FROM journey_status s WHERE s.{scope} = $1"
)
_FACTS = """
SELECT s.journey_id, ev.event_type, ev.schema_version, ev.data::text AS data
  FROM journey_status s JOIN events ev ON ev.stream_id = s.stream_id
 WHERE s.{scope} = $1 AND ev.event_type = ANY($2::text[])
 ORDER BY s.journey_id, ev.stream_version"""
_EXISTS = {
    "cohort_id": "SELECT EXISTS (SELECT 1 FROM cohorts WHERE cohort_id = $1)",
    "programme_id": "SELECT EXISTS (SELECT 1 FROM programmes WHERE programme_id = $1)",
}


async def _facts(conn: Connection, scope: str, scope_id: str) -> list[JourneyFacts]:
    statuses = await conn.fetch(_STATUSES.format(scope=scope), scope_id)
    facts = await conn.fetch(_FACTS.format(scope=scope), scope_id, _FACT_TYPES)
    events: dict[str, list[e.Event]] = defaultdict(list)
    for row in facts:
        events[row["journey_id"]].append(e.parse_event_json(row["event_type"], row["schema_version"], row["data"]))
    found = []
    for row in statuses:
        status = parse(row)
        if status is not None:
            found.append(facts_from_events(status, events.get(row["journey_id"], ())))
    return found


def _totals_sql(scope: str) -> str:
    """The scope's KPI totals: the counters of its cohorts' kpi_totals rows, and the horizons and
    median over its completed journeys' journey_kpis rows (the sums of domain.kpis.add_up), with
    its journey count to check that the totals cover every journey."""
    sums = ", ".join(f"coalesce(sum(t.counters[{i + 1}]), 0)::bigint" for i in range(len(COUNTERS)))
    horizons = []
    for h in range(len(HORIZONS)):
        ended = f"k.horizon_ends[{h + 1}] <= $2"
        horizons.append(f"count(*) FILTER (WHERE {ended})")
        horizons += [
            f"coalesce(sum(k.horizon_flags[{h * HORIZON_FLAGS + f + 1}]) FILTER (WHERE {ended}), 0)::bigint"
            for f in range(HORIZON_FLAGS)
        ]
    return f"""
SELECT (SELECT ARRAY[{sums}] FROM kpi_totals t WHERE t.{scope} = $1) AS counters,
       ARRAY[{", ".join(horizons)}] AS horizons,
       count(k.days_to_appointment) AS appointed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY k.days_to_appointment) AS median_days,
       (SELECT count(*) FROM journey_status s WHERE s.{scope} = $1) AS journeys
  FROM journey_kpis k WHERE k.{scope} = $1 AND k.horizon_ends IS NOT NULL"""


_TOTALS = {scope: _totals_sql(scope) for scope in ("cohort_id", "programme_id")}


async def _totals(pool: Pool, scope: str, scope_id: str, as_of: datetime) -> KpiTotals | Literal[False] | None:
    """The scope's KPI rows added up at `as_of`; None if the scope is unknown; False if the totals
    do not cover its journeys (some were stored before the projection)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval(_EXISTS[scope], scope_id):
            return None
        row = await conn.fetchrow(_TOTALS[scope], scope_id, as_of)
    assert row is not None  # an aggregate always answers one row
    counters = tuple(int(n) for n in row["counters"])
    if counters[0] != row["journeys"]:
        return False
    flat = [int(n) for n in row["horizons"]]
    width = 1 + HORIZON_FLAGS
    median = row["median_days"]
    return KpiTotals(
        counters=counters,
        horizons=tuple(tuple(flat[i : i + width]) for i in range(0, len(flat), width)),
        appointed=int(row["appointed"]),
        median_days_to_appointment=float(median) if median is not None else None,
    )


async def _journey_facts(pool: Pool, scope: str, scope_id: str) -> list[JourneyFacts] | None:
    """The old way (journeys without KPI rows): every status document and fact event of the scope."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval(_EXISTS[scope], scope_id):
            return None
        return await _facts(conn, scope, scope_id)


async def _report(pool: Pool, scope: str, scope_id: str, as_of: datetime | None) -> tuple[Kpis, Funnel] | None:
    at = as_of or datetime.now(UTC)
    totals = await _totals(pool, scope, scope_id, at)
    if totals is None:
        return None
    if totals is not False:
        return kpis_of(totals, as_of=at), funnel_of(totals)
    journeys = await _journey_facts(pool, scope, scope_id)
    if journeys is None:  # pragma: no cover - deleted in between
        return None
    return compute_kpis(journeys, as_of=at), compute_funnel(journeys)


async def cohort_kpis(pool: Pool, cohort_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """The KPIs of a cohort's journeys at `as_of` (default now); None if the cohort is unknown."""
    found = await _report(pool, "cohort_id", cohort_id, as_of)
    return found[0] if found is not None else None


async def programme_kpis(pool: Pool, programme_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """The KPIs of every journey of a programme (all its versions and cohorts); None if it is unknown."""
    found = await _report(pool, "programme_id", programme_id, as_of)
    return found[0] if found is not None else None


async def cohort_report(pool: Pool, cohort_id: str, *, as_of: datetime | None = None) -> tuple[Kpis, Funnel] | None:
    """A cohort's KPIs and funnel from one aggregate of its KPI rows; None if the cohort is unknown."""
    return await _report(pool, "cohort_id", cohort_id, as_of)


async def kpis_from_events(
    pool: Pool, scope: Literal["cohort_id", "programme_id"], scope_id: str, *, as_of: datetime | None = None
) -> Kpis | None:
    """The KPIs computed without the projection, from every status document and fact event of the
    scope: what the read model did per request before journey_kpis (the benchmark's baseline, and
    the check that both agree)."""
    journeys = await _journey_facts(pool, scope, scope_id)
    return compute_kpis(journeys, as_of=as_of or datetime.now(UTC)) if journeys is not None else None


async def programme_kpis_from_events(pool: Pool, programme_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """`programme_kpis` computed from the events (`kpis_from_events`)."""
    return await kpis_from_events(pool, "programme_id", programme_id, as_of=as_of)
