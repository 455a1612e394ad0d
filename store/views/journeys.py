"""Journeys as the read model holds them: scoped reads, lists, and who may act on one."""

from __future__ import annotations

from collections.abc import Iterable

from domain.status import JourneyStatus
from store.views._base import (
    MAY_ACT,
    PAGE,
    SCOPE,
    STATUS_COLUMNS,
    Pool,
    Reader,
    Row,
    parse,
    parse_all,
    scope_for,
)


class Access(Row):
    """A journey the caller may see: whether they may also act on it, and its talent (whose vault holds texts)."""

    talent_id: str
    may_act: bool


class OpenJourney(Row):
    """A talent's open journey in a programme, and whether the caller may see it."""

    journey_id: str
    visible: bool


class FeedJourney(Row):
    """A journey in a person's calendar feed."""

    journey_id: str
    talent_id: str


# -- the scope rule -------------------------------------------------------------------------------


async def can_see(pool: Pool, reader: Reader, journey_id: str) -> bool:
    """Whether the journey exists and the reader may see it (`SCOPE`)."""
    return bool(
        await pool.fetchval(
            f"SELECT 1 FROM journey_status s WHERE s.journey_id = $3 AND {SCOPE}",
            reader.role,
            reader.person_id,
            journey_id,
        )
    )


async def access(pool: Pool, reader: Reader, journey_id: str) -> Access | None:
    """The reader's access to a journey they may see (one round trip), or None (unknown or out of scope)."""
    row = await pool.fetchrow(
        f"SELECT s.talent_id, {MAY_ACT} AS may_act FROM journey_status s WHERE s.journey_id = $3 AND {SCOPE}",
        reader.role,
        reader.person_id,
        journey_id,
    )
    return Access(talent_id=row["talent_id"], may_act=row["may_act"]) if row is not None else None


# -- the fast paths: JSON built by PostgreSQL ------------------------------------------------------


async def page_json(
    pool: Pool,
    reader: Reader,
    *,
    cohort_id: str | None = None,
    state: str | None = None,
    at_risk: bool | None = None,
    after: str | None = None,
    limit: int = 50,
) -> str:
    """A page of the statuses the reader may see, as JSON text `{"items": [...], "next": ...}`.

    Built by PostgreSQL from the stored documents, for speed: a list is not decoded and re-encoded.
    The WHERE names only the filters given (no `$n IS NULL OR ...`, which a generic plan answers
    by scanning every row), so each filter plans on its index (migration 0010).
    """
    scope, args = scope_for(reader)
    where = [scope]
    for column, value in (("cohort_id", cohort_id), ("state", state)):
        if value is not None:
            args.append(value)
            where.append(f"s.{column} = ${len(args)}")
    if at_risk is not None:
        where.append("s.at_risk" if at_risk else "NOT s.at_risk")
    if after is not None:
        args.append(after)
        where.append(f"s.journey_id > ${len(args)}")
    args.append(limit)
    query = f"""
WITH page AS (
  SELECT s.journey_id, s.status FROM journey_status s WHERE {" AND ".join(where)}
   ORDER BY s.journey_id LIMIT ${len(args)})
SELECT json_build_object(
  'items', coalesce(json_agg(status ORDER BY journey_id), '[]'),
  'next', CASE WHEN count(*) = ${len(args)} THEN max(journey_id) END)::text FROM page"""
    page: str = await pool.fetchval(query, *args)
    return page


async def status_json(pool: Pool, reader: Reader, journey_id: str) -> str | None:
    """One journey's stored status document as JSON text, if the reader may see it (one round trip)."""
    raw: str | None = await pool.fetchval(
        f"SELECT s.status::text FROM journey_status s WHERE s.journey_id = $3 AND {SCOPE}",
        reader.role,
        reader.person_id,
        journey_id,
    )
    return raw


async def stored_json(pool: Pool, journey_id: str) -> str | None:
    """One journey's stored status document as JSON text, unscoped (a command's answer, after its scope check)."""
    raw: str | None = await pool.fetchval("SELECT status::text FROM journey_status WHERE journey_id = $1", journey_id)
    return raw


# -- typed reads ----------------------------------------------------------------------------------


async def status(pool: Pool, journey_id: str) -> JourneyStatus | None:
    """One journey's status (unscoped: check `can_see` first where a caller asks)."""
    row = await pool.fetchrow(f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.journey_id = $1", journey_id)
    return parse(row) if row is not None else None


async def visible(pool: Pool, reader: Reader, *, limit: int = PAGE) -> list[JourneyStatus]:
    """The journeys the reader may see (`SCOPE`), by id."""
    scope, args = scope_for(reader)
    rows = await pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE {scope} ORDER BY s.journey_id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return parse_all(rows)


async def of_cohort(
    pool: Pool, cohort_id: str, *, at_risk_only: bool = False, limit: int = PAGE
) -> list[JourneyStatus]:
    """A cohort's journeys (or only those at risk), by id."""
    only = "AND s.at_risk" if at_risk_only else ""
    rows = await pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM journey_status s WHERE s.cohort_id = $1 {only} ORDER BY s.journey_id LIMIT $2",
        cohort_id,
        limit,
    )
    return parse_all(rows)


async def open_journey(
    pool: Pool, reader: Reader, talent_id: str, programme_id: str, states: Iterable[str]
) -> OpenJourney | None:
    """The talent's journey of the programme in one of `states`, and whether the reader may see it."""
    row = await pool.fetchrow(
        f"SELECT s.journey_id, {SCOPE} AS visible FROM journey_status s "
        "WHERE s.talent_id = $3 AND s.programme_id = $4 AND s.state = ANY($5) ORDER BY s.journey_id LIMIT 1",
        reader.role,
        reader.person_id,
        talent_id,
        programme_id,
        sorted(states),
    )
    return OpenJourney(journey_id=row["journey_id"], visible=row["visible"]) if row is not None else None


async def journeys_counted(pool: Pool, talent_id: str, programme_id: str) -> int:
    """How many journeys the talent has had in the programme (of any state)."""
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM journey_status WHERE talent_id = $1 AND programme_id = $2", talent_id, programme_id
        )
    )


async def journeys_of_person(pool: Pool, person_id: str) -> list[str]:
    """Every journey a person ever had sight of (`journey_access`: as talent, leader or leader's leader)."""
    rows = await pool.fetch(
        "SELECT DISTINCT journey_id FROM journey_access WHERE person_id = $1 ORDER BY journey_id", person_id
    )
    return [r["journey_id"] for r in rows]


async def person_known(pool: Pool, person_id: str) -> bool:
    """Whether any journey names the person."""
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM journey_access WHERE person_id = $1)", person_id))


async def feed_journeys(pool: Pool, person_id: str, states: Iterable[str], *, limit: int) -> list[FeedJourney]:
    """The person's journeys in `states` as talent or as current nearest leader (§8.1), by id."""
    rows = await pool.fetch(
        """SELECT journey_id, talent_id FROM journey_status
            WHERE state = ANY($2::text[]) AND (talent_id = $1 OR nearest_leader_id = $1)
            ORDER BY journey_id LIMIT $3""",
        person_id,
        sorted(states),
        limit,
    )
    return [FeedJourney(journey_id=r["journey_id"], talent_id=r["talent_id"]) for r in rows]
