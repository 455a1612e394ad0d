"""Programme KPIs from the read models and the few events they need: two queries per cohort or programme."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from api.deps import Resources
from domain import events as e
from domain.kpis import JourneyFacts, Kpis, compute_kpis, facts_from_events
from domain.status import JourneyStatus
from store.db import Connection

#: The events whose facts the status view does not keep: the evaluation instant, late meets, outcomes.
_FACT_TYPES = ["ProgrammeCompleted", "ProgrammeNotCompleted", "MilestoneMet", "OutcomeRecorded"]

# `{scope}` is one of two constant column names, never input. One snapshot (REPEATABLE READ) for
# both queries, so a journey's events and its status row agree; it is short, so it does not hold
# the event feed's watermark back for long.
_STATUSES = "SELECT journey_id, status::text AS status FROM journey_status WHERE {scope} = $1"
_FACTS = """
SELECT s.journey_id, ev.event_type, ev.schema_version, ev.data::text AS data
  FROM journey_status s JOIN events ev ON ev.stream_id = s.stream_id
 WHERE s.{scope} = $1 AND ev.event_type = ANY($2::text[])
 ORDER BY s.journey_id, ev.stream_version"""


async def _kpis(conn: Connection, scope: str, scope_id: str, *, as_of: datetime) -> Kpis:
    statuses = await conn.fetch(_STATUSES.format(scope=scope), scope_id)
    facts = await conn.fetch(_FACTS.format(scope=scope), scope_id, _FACT_TYPES)
    events: dict[str, list[e.Event]] = defaultdict(list)
    for row in facts:
        events[row["journey_id"]].append(e.parse_event_json(row["event_type"], row["schema_version"], row["data"]))
    journeys: list[JourneyFacts] = [
        facts_from_events(JourneyStatus.model_validate_json(r["status"]), events.get(r["journey_id"], ()))
        for r in statuses
    ]
    return compute_kpis(journeys, as_of=as_of)


async def cohort_kpis(resources: Resources, cohort_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """The KPIs of a cohort's journeys at `as_of` (default now); None if the cohort is unknown."""
    async with resources.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cohorts WHERE cohort_id = $1)", cohort_id):
            return None
        return await _kpis(conn, "cohort_id", cohort_id, as_of=as_of or datetime.now(UTC))


async def programme_kpis(resources: Resources, programme_id: str, *, as_of: datetime | None = None) -> Kpis | None:
    """The KPIs of every journey of a programme (all its versions and cohorts); None if it is unknown."""
    async with resources.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM programmes WHERE programme_id = $1)", programme_id):
            return None
        return await _kpis(conn, "programme_id", programme_id, as_of=as_of or datetime.now(UTC))
