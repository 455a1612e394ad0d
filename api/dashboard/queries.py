"""What the dashboard reads: the read models (journey_status, journey_access, cohort_counts) and events.

Every query that lists journeys takes the viewer's scope the same way `GET /v1/journeys` does: a
leader sees the journeys they lead or led (a `journey_access` row), a talent their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from api.auth import Principal
from api.deps import SCOPE

#: The journey states in which deadlines still run.
RUNNING = ("nominated", "enrolled", "active")
#: The funnel's stages, in order.
FUNNEL = ("nominated", "enrolled", "active", "completed", "applied", "appointed")
#: At most this many rows in a list on a page; the page says when there are more.
PAGE = 200

# A string: asyncpg's Pool is generic only in its stubs.
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


@dataclass(frozen=True)
class CohortRow:
    """A cohort with its journeys counted."""

    cohort_id: str
    programme_id: str
    programme_version: int
    starts_on: str
    journeys: int
    at_risk: int
    open_escalations: int


@dataclass(frozen=True)
class JourneyRow:
    """A journey's read-model row: the columns and the status document."""

    journey_id: str
    cohort_id: str
    programme_id: str
    programme_version: int
    state: str
    at_risk: bool
    talent_id: str
    nearest_leader_id: str
    status: dict[str, Any]


@dataclass(frozen=True)
class Deadline:
    """An open milestone due soon."""

    journey_id: str
    talent_id: str
    programme_id: str
    programme_version: int
    key: str
    due_at: datetime


_JOURNEY_COLUMNS = (
    "journey_id, cohort_id, programme_id, programme_version, state, at_risk, talent_id, nearest_leader_id, "
    "status::text AS status"
)


def _journey(row: asyncpg.Record) -> JourneyRow:
    return JourneyRow(
        journey_id=row["journey_id"],
        cohort_id=row["cohort_id"],
        programme_id=row["programme_id"],
        programme_version=row["programme_version"],
        state=row["state"],
        at_risk=row["at_risk"],
        talent_id=row["talent_id"],
        nearest_leader_id=row["nearest_leader_id"],
        status=json.loads(row["status"]),
    )


async def cohorts(pool: Pool) -> list[CohortRow]:
    """Every cohort, newest first, with its journeys, at-risk journeys and open escalations (ladders)."""
    rows = await pool.fetch(
        "SELECT c.cohort_id, c.programme_id, c.programme_version, c.definition->>'starts_on' AS starts_on, "
        "count(s.journey_id)::integer AS journeys, count(*) FILTER (WHERE s.at_risk)::integer AS at_risk, "
        "coalesce(sum(ladders.n), 0)::integer AS open_escalations "
        "FROM cohorts c LEFT JOIN journey_status s ON s.cohort_id = c.cohort_id "
        # The open ladders (one per slipped milestone), as the escalation lists show them, not rungs.
        "LEFT JOIN LATERAL (SELECT count(DISTINCT x->>'milestone') AS n "
        "     FROM jsonb_array_elements(s.status->'escalations') AS x "
        "    WHERE s.open_escalations > 0 AND x->>'resolved_at' IS NULL) AS ladders ON true "
        "GROUP BY c.cohort_id ORDER BY c.created_at DESC, c.cohort_id LIMIT $1",
        PAGE,
    )
    return [
        CohortRow(
            cohort_id=r["cohort_id"],
            programme_id=r["programme_id"],
            programme_version=r["programme_version"],
            starts_on=r["starts_on"] or "",
            journeys=r["journeys"],
            at_risk=r["at_risk"],
            open_escalations=r["open_escalations"],
        )
        for r in rows
    ]


async def counts_by_state(pool: Pool, cohort_id: str) -> dict[str, int]:
    """The cohort's journeys by state (the `cohort_counts` view)."""
    rows = await pool.fetch(
        "SELECT state, journeys FROM cohort_counts WHERE cohort_id = $1 ORDER BY journeys DESC, state", cohort_id
    )
    return {r["state"]: r["journeys"] for r in rows}


async def funnel(pool: Pool, cohort_id: str) -> dict[str, int]:
    """How many of the cohort's journeys reached each stage of the funnel.

    A journey counts at every stage up to the furthest it reached (a completed journey was also
    enrolled and active, even if it is closed now). Enrolment and the start are events; completion
    is the status' evaluation (an override counts as it was decided); applying for and being
    appointed to a leader post come from any `OutcomeRecorded` (an appointment implies applying).
    """
    rows = await pool.fetch(
        "SELECT s.journey_id, "
        "bool_or(e.event_type = 'TalentEnrolled') AS enrolled, "
        "bool_or(e.event_type = 'JourneyStarted') AS active, "
        "bool_or(s.status->>'completion' = 'completed') AS completed, "
        "bool_or(e.event_type = 'OutcomeRecorded' AND ((e.data->>'applied_for_leader_post')::boolean "
        "        OR (e.data->>'appointed')::boolean)) AS applied, "
        "bool_or(e.event_type = 'OutcomeRecorded' AND (e.data->>'appointed')::boolean) AS appointed "
        "FROM journey_status s LEFT JOIN events e ON e.stream_id = s.stream_id "
        "     AND e.event_type IN ('TalentEnrolled', 'JourneyStarted', 'OutcomeRecorded') "
        "WHERE s.cohort_id = $1 GROUP BY s.journey_id",
        cohort_id,
    )
    counts = dict.fromkeys(FUNNEL, 0)
    for r in rows:
        completed = bool(r["completed"])
        active = bool(r["active"]) or completed
        enrolled = bool(r["enrolled"]) or active
        counts["nominated"] += 1
        counts["enrolled"] += enrolled
        counts["active"] += active
        counts["completed"] += completed
        counts["applied"] += bool(r["applied"])
        counts["appointed"] += bool(r["appointed"])
    return counts


async def at_risk(pool: Pool, cohort_id: str) -> list[JourneyRow]:
    """The cohort's journeys at risk."""
    rows = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS} FROM journey_status WHERE cohort_id = $1 AND at_risk ORDER BY journey_id LIMIT $2",
        cohort_id,
        PAGE,
    )
    return [_journey(r) for r in rows]


async def deadlines(pool: Pool, cohort_id: str, since: datetime, until: datetime) -> list[Deadline]:
    """Open milestones of the cohort's running journeys due in [since, until), soonest first."""
    rows = await pool.fetch(
        "SELECT s.journey_id, s.talent_id, s.programme_id, s.programme_version, m->>'key' AS key, "
        "(m->>'due_at')::timestamptz AS due_at "
        "FROM journey_status s CROSS JOIN LATERAL jsonb_array_elements(s.status->'milestones') AS m "
        "WHERE s.cohort_id = $1 AND s.state = ANY($2) AND m->>'status' = 'open' "
        "AND (m->>'due_at')::timestamptz >= $3 AND (m->>'due_at')::timestamptz < $4 "
        "ORDER BY due_at, s.journey_id LIMIT $5",
        cohort_id,
        list(RUNNING),
        since,
        until,
        PAGE,
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


async def with_open_escalations(pool: Pool, cohort_id: str | None = None) -> list[JourneyRow]:
    """Journeys with at least one raised rung not yet resolved (optionally of one cohort)."""
    rows = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS} FROM journey_status WHERE open_escalations > 0 "
        "AND ($1::text IS NULL OR cohort_id = $1) ORDER BY journey_id LIMIT $2",
        cohort_id,
        PAGE,
    )
    return [_journey(r) for r in rows]


async def cohort_journeys(pool: Pool, cohort_id: str) -> list[JourneyRow]:
    """All journeys of a cohort."""
    rows = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS} FROM journey_status WHERE cohort_id = $1 ORDER BY journey_id LIMIT $2",
        cohort_id,
        PAGE,
    )
    return [_journey(r) for r in rows]


async def visible_journeys(pool: Pool, principal: Principal) -> list[JourneyRow]:
    """The journeys a leader leads or led, or a talent's own (the API's scoping)."""
    if principal.role not in ("leader", "talent"):
        return []
    rows = await pool.fetch(
        f"SELECT {_JOURNEY_COLUMNS} FROM journey_status s WHERE {SCOPE} ORDER BY journey_id LIMIT $3",
        principal.role,
        principal.person_id,
        PAGE,
    )
    return [_journey(r) for r in rows]


async def journey(pool: Pool, journey_id: str) -> JourneyRow | None:
    """One journey's row."""
    row = await pool.fetchrow(f"SELECT {_JOURNEY_COLUMNS} FROM journey_status WHERE journey_id = $1", journey_id)
    return _journey(row) if row is not None else None
