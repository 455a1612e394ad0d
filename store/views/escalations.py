"""Open escalations as the read model holds them: running ladders (the pages) and raised rungs (the API)."""

from __future__ import annotations

from datetime import datetime

from domain.programme import Role
from domain.status import LadderView
from store.views._base import PAGE, STATUS_COLUMNS, Pool, Row, parse_all


class OpenLadder(Row):
    """A journey's running ladder, with what a list needs of its journey."""

    journey_id: str
    cohort_id: str
    talent_id: str
    programme_id: str
    programme_version: int
    ladder: LadderView


class RaisedRung(Row):
    """A raised rung not yet resolved, of a journey."""

    journey_id: str
    cohort_id: str
    milestone: str
    rung: int
    recipient_role: Role
    raised_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    at_risk: bool


class RungPage(Row):
    """A page of raised rungs, oldest first; `next` is the last journey id of a full page."""

    items: tuple[RaisedRung, ...]
    next: str | None


async def open_ladders(pool: Pool, cohort_id: str | None = None, *, limit: int = PAGE) -> list[OpenLadder]:
    """Every running ladder (of a cohort, or all), oldest first, from at most `limit` journeys."""
    # The WHERE names only the filters given: a generic plan of `$1 IS NULL OR ...` scans every row.
    if cohort_id is None:
        rows = await pool.fetch(
            f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.open_escalations > 0 "
            "ORDER BY s.journey_id LIMIT $1",
            limit,
        )
    else:
        rows = await pool.fetch(
            f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.open_escalations > 0 AND s.cohort_id = $2 "
            "ORDER BY s.journey_id LIMIT $1",
            limit,
            cohort_id,
        )
    found = [
        OpenLadder(
            journey_id=s.journey_id,
            cohort_id=s.cohort_id,
            talent_id=s.talent_id,
            programme_id=s.programme_id,
            programme_version=s.programme_version,
            ladder=ladder,
        )
        for s in parse_all(rows)
        for ladder in s.ladders
    ]
    found.sort(key=lambda x: (x.ladder.first_raised_at, x.journey_id, x.ladder.milestone))
    return found


async def open_rungs(
    pool: Pool,
    *,
    cohort_id: str | None = None,
    reached: str | None = None,
    acknowledged_only: bool = False,
    after: str | None = None,
    limit: int = PAGE,
) -> RungPage:
    """Raised rungs not yet resolved, oldest first, from a page of at most `limit` journeys.

    `reached`: only the rungs that reached this person as a journey's current leader's leader
    (§8.1); `acknowledged_only`: only those a coordinator has in hand.
    """
    # The WHERE names only the filters given: a generic plan of `$1 IS NULL OR ...` scans every row.
    args: list[object] = [limit]
    where = ["s.open_escalations > 0"]
    for condition, value in (
        ("s.cohort_id =", cohort_id),
        ("s.journey_id >", after),
        ("s.leaders_leader_id =", reached),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{condition} ${len(args)}")
    rows = await pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE {' AND '.join(where)} ORDER BY s.journey_id LIMIT $1",
        *args,
    )
    items = [
        RaisedRung(journey_id=s.journey_id, cohort_id=s.cohort_id, **x.model_dump())
        for s in parse_all(rows)
        for x in s.escalations
        if x.resolved_at is None
        and (reached is None or x.recipient_role == "leaders_leader")
        and (not acknowledged_only or x.acknowledged_at is not None)
    ]
    items.sort(key=lambda x: x.raised_at)
    return RungPage(items=tuple(items), next=rows[-1]["journey_id"] if len(rows) == limit else None)
