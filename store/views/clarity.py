"""The journeys the clarity KPIs (issue 14) read: a programme's status documents under the clarity rules."""

from __future__ import annotations

from domain.status import JourneyStatus
from store.views._base import STATUS_COLUMNS, Pool, parse_all


async def programme_statuses(pool: Pool, programme_id: str) -> list[JourneyStatus] | None:
    """The status documents of a programme's journeys that carry a readiness self-assessment
    (rules 4), by journey id, read in one snapshot; None for an unknown programme."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM programmes WHERE programme_id = $1)", programme_id):
            return None
        rows = await conn.fetch(
            f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.programme_id = $1 "
            "AND jsonb_typeof(s.status->'readiness') = 'object' ORDER BY s.journey_id",
            programme_id,
        )
    return parse_all(rows)
