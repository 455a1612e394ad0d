"""Leader posts as HR systems report them, their applications and appointments, and the facts the
recruitment KPIs read (issue 14). Person ids only: names stay in the people vault."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Literal

import asyncpg

from domain import events as e
from domain.kpis import OutcomeFact, facts_from_events
from domain.recruitment import Alumnus, Application, Post
from store.views._base import Pool, parse

#: What storing a report did: stored it, found the same stored, or found a different one stored.
Stored = Literal["created", "same", "conflict"]

#: The journey states in which a completed journey's talent is an alumnus (PRODUCT §8.4).
ALUMNUS_STATES = ("following_up", "closed")


async def put_vacancy(pool: Pool, post: Post) -> tuple[Stored, Post]:
    """Store a post once: ("created", it), ("same", it) for the same post again, ("conflict", the
    stored one) for a different post under the same id. Atomic (INSERT ... ON CONFLICT)."""
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO vacancies (vacancy_id, unit, profession, level, opened_on, closed_on)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vacancy_id) DO NOTHING RETURNING 1""",
            post.post_id,
            post.unit,
            post.profession,
            post.level,
            post.opened_on,
            post.closed_on,
        )
        if inserted:
            return "created", post
        row = await conn.fetchrow(
            "SELECT vacancy_id, unit, profession, level, opened_on, closed_on FROM vacancies WHERE vacancy_id = $1",
            post.post_id,
        )
    if row is None:  # pragma: no cover - posts are never deleted
        raise LookupError(post.post_id)
    stored = _post(row)
    return ("same" if stored == post else "conflict"), stored


async def vacancy(pool: Pool, vacancy_id: str) -> Post | None:
    """A stored post, or None."""
    row = await pool.fetchrow(
        "SELECT vacancy_id, unit, profession, level, opened_on, closed_on FROM vacancies WHERE vacancy_id = $1",
        vacancy_id,
    )
    return _post(row) if row is not None else None


_TABLES = {"applied": ("vacancy_applications", "applied_on"), "appointed": ("vacancy_appointments", "appointed_on")}


async def put_entry(
    pool: Pool, kind: Literal["applied", "appointed"], vacancy_id: str, person_id: str, on: date
) -> tuple[Stored, date] | None:
    """Store an application or appointment once per (post, person): what it did and the stored
    date; None for an unknown post."""
    table, column = _TABLES[kind]  # constant names, never input
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM vacancies WHERE vacancy_id = $1 FOR SHARE", vacancy_id):
            return None
        inserted = await conn.fetchval(
            f"INSERT INTO {table} (vacancy_id, person_id, {column}) VALUES ($1, $2, $3) "
            "ON CONFLICT (vacancy_id, person_id) DO NOTHING RETURNING 1",
            vacancy_id,
            person_id,
            on,
        )
        if inserted:
            return "created", on
        stored: date = await conn.fetchval(
            f"SELECT {column} FROM {table} WHERE vacancy_id = $1 AND person_id = $2",
            vacancy_id,
            person_id,
        )
    return ("same" if stored == on else "conflict"), stored


async def alumnus_journeys(pool: Pool, person_id: str) -> list[tuple[str, str]]:
    """The person's journeys evaluated as completed and now following up or closed: (journey id, state)."""
    rows = await pool.fetch(
        """SELECT journey_id, state FROM journey_status
            WHERE talent_id = $1 AND state = ANY($2::text[]) AND status->>'completion' = 'completed'
            ORDER BY journey_id""",
        person_id,
        list(ALUMNUS_STATES),
    )
    return [(row["journey_id"], row["state"]) for row in rows]


_ALUMNI = """
SELECT s.journey_id, s.status::text AS status, s.leaders_leader_id,
       (c.definition->>'starts_on')::date AS starts_on
  FROM journey_status s LEFT JOIN cohorts c ON c.cohort_id = s.cohort_id
 WHERE s.programme_id = $1 AND s.status->>'completion' = 'completed'"""
_ALUMNI_EVENTS = """
SELECT s.journey_id, ev.event_type, ev.schema_version, ev.data::text AS data
  FROM journey_status s JOIN events ev ON ev.stream_id = s.stream_id
 WHERE s.programme_id = $1 AND s.status->>'completion' = 'completed'
   AND ev.event_type = ANY(ARRAY['ProgrammeCompleted', 'ProgrammeNotCompleted', 'OutcomeRecorded'])
 ORDER BY s.journey_id, ev.stream_version"""


async def recruitment_facts(
    pool: Pool, programme_id: str
) -> tuple[list[Post], list[Application], list[Application], list[Alumnus]] | None:
    """What the recruitment KPIs of a programme read, in one snapshot: the posts, applications,
    appointments and the programme's alumni; None for an unknown programme."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM programmes WHERE programme_id = $1)", programme_id):
            return None
        posts = [
            _post(r)
            for r in await conn.fetch(
                "SELECT vacancy_id, unit, profession, level, opened_on, closed_on FROM vacancies ORDER BY vacancy_id"
            )
        ]
        applied = [
            Application(post_id=r["vacancy_id"], person_id=r["person_id"], on=r["applied_on"])
            for r in await conn.fetch("SELECT vacancy_id, person_id, applied_on FROM vacancy_applications")
        ]
        appointed = [
            Application(post_id=r["vacancy_id"], person_id=r["person_id"], on=r["appointed_on"])
            for r in await conn.fetch("SELECT vacancy_id, person_id, appointed_on FROM vacancy_appointments")
        ]
        statuses = await conn.fetch(_ALUMNI, programme_id)
        facts = await conn.fetch(_ALUMNI_EVENTS, programme_id)
    events: dict[str, list[e.Event]] = defaultdict(list)
    for row in facts:
        events[row["journey_id"]].append(e.parse_event_json(row["event_type"], row["schema_version"], row["data"]))
    alumni = []
    for row in statuses:
        status = parse(row)
        if status is None:
            continue
        journey = facts_from_events(status, events.get(row["journey_id"], ()))
        if journey.evaluated_at is None:  # pragma: no cover - a completion is an evaluation
            continue
        alumni.append(
            Alumnus(
                person_id=status.talent_id,
                # A cohort the catalog does not hold (none in production): the completion's year.
                cohort_year=(row["starts_on"] or journey.evaluated_at).year,
                completed_on=journey.evaluated_at.date(),
                outcomes=tuple(OutcomeFact.model_validate(o.model_dump()) for o in journey.outcomes),
            )
        )
    return posts, applied, appointed, alumni


def _post(row: asyncpg.Record) -> Post:
    return Post(
        post_id=row["vacancy_id"],
        unit=row["unit"],
        profession=row["profession"],
        level=row["level"],
        opened_on=row["opened_on"],
        closed_on=row["closed_on"],
    )
