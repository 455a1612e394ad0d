"""Programme KPIs and a cohort's funnel from the read models and the few events they need: two queries."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from domain import events as e
from domain.kpis import Funnel, JourneyFacts, Kpis, compute_funnel, compute_kpis, facts_from_events
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


async def _journey_facts(pool: Pool, scope: str, scope_id: str) -> list[JourneyFacts] | None:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval(_EXISTS[scope], scope_id):
            return None
        return await _facts(conn, scope, scope_id)


async def cohort_kpis(pool: Pool, cohort_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """The KPIs of a cohort's journeys at `as_of` (default now); None if the cohort is unknown."""
    journeys = await _journey_facts(pool, "cohort_id", cohort_id)
    return compute_kpis(journeys, as_of=as_of or datetime.now(UTC)) if journeys is not None else None


async def programme_kpis(pool: Pool, programme_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """The KPIs of every journey of a programme (all its versions and cohorts); None if it is unknown."""
    journeys = await _journey_facts(pool, "programme_id", programme_id)
    return compute_kpis(journeys, as_of=as_of or datetime.now(UTC)) if journeys is not None else None


async def cohort_report(pool: Pool, cohort_id: str, *, as_of: datetime | None = None) -> tuple[Kpis, Funnel] | None:
    """A cohort's KPIs and funnel from one read of its facts; None if the cohort is unknown."""
    journeys = await _journey_facts(pool, "cohort_id", cohort_id)
    if journeys is None:
        return None
    return compute_kpis(journeys, as_of=as_of or datetime.now(UTC)), compute_funnel(journeys)
