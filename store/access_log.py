"""The access log (PRODUCT §8.7): who read or changed whose data, when, through what, and how it ended.

Append-only in the database (migration 0007): rows are only ever inserted here; retention removes
old ones through `expire_access_log(before)`. Every row holds ids, never personal data.

Durability: a row that records a change (a command) is committed durably, like the change. A row
that records a read is committed asynchronously (`synchronous_commit = off` for its own
transaction only): the INSERT still runs, and a failure still fails the request, but the commit
does not wait for the WAL flush (measured on a loaded 2-core machine: p50 3.0 ms -> 0.07 ms).
The price, stated plainly: if PostgreSQL itself crashes (not a restart, not the API process) the
read rows of the last moments before the crash may be lost: at most three `wal_writer_delay`
(600 ms by default). Nothing else is lost and nothing is left half-written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal, TypeAlias

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Channel = Literal["api", "dashboard", "feed", "calendar", "cli"]

#: The most rows one `query` answers.
MAX_LIMIT = 1000

# The people a row involves are those it names and, for every journey it names, the journey's
# talent and nearest leader as the read model has them: resolved in the INSERT itself, so a
# request costs one round trip and no handler looks the people up.
_INSERT = """
INSERT INTO access_log (actor_id, role, channel, action, journey_ids, person_ids, correlation_id, outcome)
SELECT $1, $2, $3, $4, $5::text[],
       ARRAY(SELECT DISTINCT p FROM (
                 SELECT unnest($6::text[]) AS p
                 UNION ALL
                 SELECT unnest(ARRAY[s.talent_id, s.nearest_leader_id]) FROM journey_status s
                  WHERE s.journey_id = ANY($5::text[])) people
              WHERE p IS NOT NULL ORDER BY p),
       $7, $8"""

# A read's row: the same INSERT in a transaction that commits without waiting for the WAL flush
# (`set_config(..., true)` lasts until the end of this statement's own implicit transaction; one
# round trip still, and the connection keeps no session state). See the module's docstring.
_INSERT_READ = "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true))\n" + _INSERT.strip().replace(
    "\n       $7, $8", "\n       $7, $8 FROM lazy"
)

_COLUMNS = "id, at, actor_id, role, channel, action, journey_ids, person_ids, correlation_id, outcome"

# A person's rows: those naming them, and those naming one of their journeys (as its talent).
_PERSON = """(l.person_ids @> ARRAY[{p}]::text[]
     OR l.journey_ids && ARRAY(SELECT journey_id FROM journey_status WHERE talent_id = {p}))"""

_QUERY = f"""
SELECT {_COLUMNS} FROM access_log l
 WHERE ($1::text IS NULL OR {_PERSON.format(p="$1")})
   AND ($2::text IS NULL OR l.journey_ids @> ARRAY[$2]::text[])
   AND ($3::text IS NULL OR l.actor_id = $3)
   AND ($4::timestamptz IS NULL OR l.at >= $4)
   AND ($5::timestamptz IS NULL OR l.at < $5)
   AND ($6::bigint IS NULL OR l.id < $6)
 ORDER BY l.id DESC
 LIMIT $7"""

_EXPORT = f"SELECT {_COLUMNS} FROM access_log l WHERE {_PERSON.format(p='$1')} ORDER BY l.id"


class AccessRow(BaseModel):
    """One access: who, what, when, and how it ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    at: AwareDatetime
    actor_id: str
    role: str
    channel: Channel
    action: str
    journey_ids: list[str]
    person_ids: list[str]
    correlation_id: str | None
    outcome: str


class AccessPage(BaseModel):
    """A page of the access log, newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[AccessRow]
    next: str | None


def _row(record: asyncpg.Record) -> AccessRow:
    return AccessRow(**dict(record))


class AccessLog:
    """The access log of one database."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(
        self,
        *,
        actor_id: str,
        role: str,
        channel: Channel,
        action: str,
        outcome: str,
        journey_ids: Iterable[str] = (),
        person_ids: Iterable[str] = (),
        correlation_id: str | None = None,
        durable: bool = True,
    ) -> None:
        """Append one row (one INSERT); a failure raises, and the caller's request must fail with it.

        `durable=False` (a read's row) commits without waiting for the WAL flush: see the module's docstring.
        """
        await self._pool.execute(
            _INSERT if durable else _INSERT_READ,
            actor_id,
            role,
            channel,
            action,
            sorted(set(journey_ids)),
            sorted(set(person_ids)),
            correlation_id,
            outcome,
        )

    async def query(
        self,
        *,
        person_id: str | None = None,
        journey_id: str | None = None,
        actor: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
        cursor: int | None = None,
        limit: int = 100,
    ) -> AccessPage:
        """Rows at or after `after` and before `before`, newest first; `cursor` is a page's `next`."""
        limit = max(1, min(limit, MAX_LIMIT))
        rows = await self._pool.fetch(_QUERY, person_id, journey_id, actor, after, before, cursor, limit)
        items = [_row(r) for r in rows]
        return AccessPage(items=items, next=str(items[-1].id) if len(items) == limit else None)

    async def export_person(self, person_id: str) -> Sequence[AccessRow]:
        """Every row concerning the person, oldest first: what a data subject access request needs."""
        return [_row(r) for r in await self._pool.fetch(_EXPORT, person_id)]
