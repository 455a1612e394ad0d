"""Cohorts as the read model counts them: the cohort list, a cohort's summary, its deadlines."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from domain.status import DEADLINE_STATES, JourneyStatus
from store.views._base import PAGE, STATUS_COLUMNS, Pool, Row, parse_all


class CohortLine(Row):
    """A cohort with its journeys counted."""

    cohort_id: str
    programme_id: str
    programme_version: int
    starts_on: str
    journeys: int
    at_risk: int
    #: Running ladders (`JourneyStatus.open_escalations`), not rungs.
    open_escalations: int


class AtRiskJourney(Row):
    """A journey at risk and why (the domain's reasons, as stored)."""

    journey_id: str
    reasons: tuple[str, ...]


class CohortSummary(Row):
    """What the API's cohort status and the dashboard's cohort page both show."""

    counts: dict[str, int]
    at_risk: tuple[AtRiskJourney, ...]
    open_escalations: int


class Deadline(Row):
    """An open milestone due soon."""

    journey_id: str
    talent_id: str
    programme_id: str
    programme_version: int
    key: str
    due_at: datetime


async def _escalated(pool: Pool, cohort_id: str | None) -> list[JourneyStatus]:
    """The journeys with a running ladder (of one cohort, or all)."""
    rows = await pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.open_escalations > 0 "
        "AND ($1::text IS NULL OR s.cohort_id = $1) ORDER BY s.journey_id",
        cohort_id,
    )
    return parse_all(rows)


async def cohorts(pool: Pool, *, limit: int = PAGE) -> list[CohortLine]:
    """Every cohort, newest first, with its journeys, at-risk journeys and open escalations."""
    rows = await pool.fetch(
        "SELECT c.cohort_id, c.programme_id, c.programme_version, c.definition->>'starts_on' AS starts_on, "
        "count(s.journey_id)::integer AS journeys, count(*) FILTER (WHERE s.at_risk)::integer AS at_risk "
        "FROM cohorts c LEFT JOIN journey_status s ON s.cohort_id = c.cohort_id "
        "GROUP BY c.cohort_id ORDER BY c.created_at DESC, c.cohort_id LIMIT $1",
        limit,
    )
    ladders: Counter[str] = Counter()
    for status in await _escalated(pool, None):
        ladders[status.cohort_id] += status.open_escalations
    return [
        CohortLine(
            cohort_id=r["cohort_id"],
            programme_id=r["programme_id"],
            programme_version=r["programme_version"],
            starts_on=r["starts_on"] or "",
            journeys=r["journeys"],
            at_risk=r["at_risk"],
            open_escalations=ladders[r["cohort_id"]],
        )
        for r in rows
    ]


async def counts_by_state(pool: Pool, cohort_id: str) -> dict[str, int]:
    """The cohort's journeys by state (the `cohort_counts` view), most first."""
    rows = await pool.fetch(
        "SELECT state, journeys FROM cohort_counts WHERE cohort_id = $1 ORDER BY journeys DESC, state", cohort_id
    )
    return {r["state"]: r["journeys"] for r in rows}


async def summary(pool: Pool, cohort_id: str) -> CohortSummary:
    """The cohort's journeys by state, those at risk and why, and its open escalations (ladders)."""
    at_risk = await pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.cohort_id = $1 AND s.at_risk ORDER BY s.journey_id",
        cohort_id,
    )
    return CohortSummary(
        counts=await counts_by_state(pool, cohort_id),
        at_risk=tuple(
            AtRiskJourney(journey_id=s.journey_id, reasons=tuple(str(r) for r in s.at_risk_reasons))
            for s in parse_all(at_risk)
        ),
        open_escalations=sum(s.open_escalations for s in await _escalated(pool, cohort_id)),
    )


async def deadlines(
    pool: Pool, cohort_id: str, since: datetime, until: datetime, *, limit: int = PAGE
) -> list[Deadline]:
    """Open milestones of the cohort's journeys whose deadlines run, due in [since, until), soonest first."""
    rows = await pool.fetch(
        "SELECT s.journey_id, s.talent_id, s.programme_id, s.programme_version, m->>'key' AS key, "
        "(m->>'due_at')::timestamptz AS due_at "
        "FROM journey_status s CROSS JOIN LATERAL jsonb_array_elements(s.status->'milestones') AS m "
        "WHERE s.cohort_id = $1 AND s.state = ANY($2) AND m->>'status' = 'open' "
        "AND (m->>'due_at')::timestamptz >= $3 AND (m->>'due_at')::timestamptz < $4 "
        "ORDER BY due_at, s.journey_id LIMIT $5",
        cohort_id,
        sorted(DEADLINE_STATES),
        since,
        until,
        limit,
    )
    return [
        Deadline(
            journey_id=r["journey_id"],
            talent_id=r["talent_id"],
            programme_id=r["programme_id"],
            programme_version=r["programme_version"],
            key=r["key"],
            due_at=r["due_at"],
        )
        for r in rows
    ]
