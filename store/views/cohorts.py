"""Cohorts as the read model counts them: the cohort list, a cohort's summary, its deadlines."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Literal

import asyncpg
from pydantic import TypeAdapter

from domain.status import DEADLINE_STATES, LadderView, Progress
from store.views._base import PAGE, STATUS_COLUMNS, Pool, Row, parse_all
from store.views.escalations import OpenLadder


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


class CohortJourney(Row):
    """A journey as the cohort page lists it: the status view's columns, not its whole document."""

    journey_id: str
    talent_id: str
    nearest_leader_id: str
    state: str
    at_risk: bool
    at_risk_reasons: tuple[str, ...]
    next_deadline: datetime | None
    progress: Progress


class CohortJourneys(Row):
    """One page of a cohort's journeys, and how many the cohort has in all."""

    rows: tuple[CohortJourney, ...]
    total: int
    at_risk: int
    offset: int
    limit: int


#: The orders a cohort's journey list can be read in (a column of `journey_status s`, then the id).
ORDERS: dict[str, str] = {"id": "s.journey_id", "state": "s.state, s.journey_id"}

_JOURNEY_COLUMNS = (
    "s.journey_id, s.talent_id, s.nearest_leader_id, s.state, s.at_risk, s.next_deadline, "
    "(s.status->'at_risk_reasons')::text AS reasons, (s.status->'progress')::text AS progress"
)


def _journey(r: asyncpg.Record) -> CohortJourney:
    return CohortJourney(
        journey_id=r["journey_id"],
        talent_id=r["talent_id"],
        nearest_leader_id=r["nearest_leader_id"],
        state=r["state"],
        at_risk=r["at_risk"],
        at_risk_reasons=tuple(str(x) for x in json.loads(r["reasons"] or "[]")),
        next_deadline=r["next_deadline"],
        progress=Progress.model_validate_json(r["progress"]),
    )


async def journeys(
    pool: Pool,
    cohort_id: str,
    *,
    order: Literal["id", "state"] = "id",
    offset: int = 0,
    limit: int = PAGE,
) -> CohortJourneys:
    """A page of the cohort's journeys in `order` and the cohort's counts, from one statement.

    Read from columns and two small parts of the status document; no document is decoded whole.
    """
    rows = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS}, count(*) OVER ()::integer AS total, "
        "(count(*) FILTER (WHERE s.at_risk) OVER ())::integer AS at_risk_total FROM journey_status s "
        f"WHERE s.cohort_id = $1 ORDER BY {ORDERS[order]} OFFSET $2 LIMIT $3",
        cohort_id,
        max(0, offset),
        limit,
    )
    if rows:
        total, at_risk = rows[0]["total"], rows[0]["at_risk_total"]
    else:  # past the last page: the counts alone
        counted = await pool.fetchrow(
            "SELECT count(*)::integer AS total, (count(*) FILTER (WHERE s.at_risk))::integer AS at_risk "
            "FROM journey_status s WHERE s.cohort_id = $1",
            cohort_id,
        )
        total, at_risk = (counted["total"], counted["at_risk"]) if counted is not None else (0, 0)
    return CohortJourneys(
        rows=tuple(_journey(r) for r in rows), total=total, at_risk=at_risk, offset=max(0, offset), limit=limit
    )


async def at_risk_journeys(pool: Pool, cohort_id: str, *, limit: int = PAGE) -> list[CohortJourney]:
    """The cohort's journeys at risk, by id, with the domain's reasons as stored."""
    rows = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS} FROM journey_status s WHERE s.cohort_id = $1 AND s.at_risk "
        "ORDER BY s.journey_id LIMIT $2",
        cohort_id,
        limit,
    )
    return [_journey(r) for r in rows]


async def open_escalations(pool: Pool, cohort_id: str) -> int:
    """The cohort's running ladders (`JourneyStatus.open_escalations` summed)."""
    return (await _ladders(pool, cohort_id))[cohort_id]


_LADDERS = TypeAdapter(tuple[LadderView, ...])


async def open_ladders(pool: Pool, cohort_id: str, *, limit: int = PAGE) -> list[OpenLadder]:
    """The cohort's running ladders as `escalations.open_ladders` lists them, reading only `ladders`.

    A document stored before it carried `ladders` is parsed whole (its ladders are derived on reading).
    """
    rows = await pool.fetch(
        "SELECT s.journey_id, s.cohort_id, s.talent_id, s.programme_id, s.programme_version, "
        "(s.status->'ladders')::text AS ladders FROM journey_status s "
        "WHERE s.open_escalations > 0 AND s.cohort_id = $1 ORDER BY s.journey_id LIMIT $2",
        cohort_id,
        limit,
    )
    older = [r["journey_id"] for r in rows if r["ladders"] is None]
    derived = (
        {
            status.journey_id: status.ladders
            for status in parse_all(
                await pool.fetch(f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.journey_id = ANY($1)", older)
            )
        }
        if older
        else {}
    )
    found = [
        OpenLadder(
            journey_id=r["journey_id"],
            cohort_id=r["cohort_id"],
            talent_id=r["talent_id"],
            programme_id=r["programme_id"],
            programme_version=r["programme_version"],
            ladder=ladder,
        )
        for r in rows
        for ladder in (
            _LADDERS.validate_json(r["ladders"]) if r["ladders"] is not None else derived.get(r["journey_id"], ())
        )
    ]
    found.sort(key=lambda x: (x.ladder.first_raised_at, x.journey_id, x.ladder.milestone))
    return found


class Deadline(Row):
    """An open milestone due soon."""

    journey_id: str
    talent_id: str
    programme_id: str
    programme_version: int
    key: str
    due_at: datetime


async def _ladders(pool: Pool, cohort_id: str | None) -> Counter[str]:
    """Running ladders per cohort (of one cohort, or all): `JourneyStatus.open_escalations` summed.

    A document that carries its `ladders` has them counted in the open_escalations column (the
    projection writes both from one status); only older documents, whose ladders are derived on
    reading, are parsed. Two statements each, not `$1 IS NULL OR ...` (a generic plan scans every row).
    """
    only = "" if cohort_id is None else " AND s.cohort_id = $1"
    args = () if cohort_id is None else (cohort_id,)
    ladders: Counter[str] = Counter()
    for r in await pool.fetch(
        "SELECT s.cohort_id, sum(s.open_escalations)::integer AS n FROM journey_status s "
        f"WHERE s.open_escalations > 0 AND s.status ? 'ladders'{only} GROUP BY s.cohort_id",
        *args,
    ):
        ladders[r["cohort_id"]] += r["n"]
    older = await pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM journey_status s "
        f"WHERE s.open_escalations > 0 AND NOT s.status ? 'ladders'{only} ORDER BY s.journey_id",
        *args,
    )
    for status in parse_all(older):
        ladders[status.cohort_id] += status.open_escalations
    return ladders


async def cohorts(pool: Pool, *, limit: int = PAGE) -> list[CohortLine]:
    """Every cohort, newest first, with its journeys, at-risk journeys and open escalations."""
    rows = await pool.fetch(
        "SELECT c.cohort_id, c.programme_id, c.programme_version, c.definition->>'starts_on' AS starts_on, "
        "count(s.journey_id)::integer AS journeys, count(*) FILTER (WHERE s.at_risk)::integer AS at_risk "
        "FROM cohorts c LEFT JOIN journey_status s ON s.cohort_id = c.cohort_id "
        "GROUP BY c.cohort_id ORDER BY c.created_at DESC, c.cohort_id LIMIT $1",
        limit,
    )
    ladders = await _ladders(pool, None)
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
        "SELECT s.journey_id, (s.status->'at_risk_reasons')::text AS reasons FROM journey_status s "
        "WHERE s.cohort_id = $1 AND s.at_risk ORDER BY s.journey_id",
        cohort_id,
    )
    return CohortSummary(
        counts=await counts_by_state(pool, cohort_id),
        at_risk=tuple(
            AtRiskJourney(journey_id=r["journey_id"], reasons=tuple(str(x) for x in json.loads(r["reasons"] or "[]")))
            for r in at_risk
        ),
        open_escalations=await open_escalations(pool, cohort_id),
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
