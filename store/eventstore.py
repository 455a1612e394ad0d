"""The PostgreSQL event store: idempotent, version-guarded appends that update read models and outbox.

Global order (§5). `global_position` comes from an identity sequence, so positions are handed out
in insert order, not commit order: a transaction that took position 10 can commit after one that
took 11, and a reader that had moved past 11 would skip 10 for ever. We do NOT serialise appends
(that would cap the store at one commit at a time). Instead every row records its writer's
transaction id (`pg_current_xact_id()`), and `read_all` returns events ordered by
(transaction_id, global_position), only below the reader's snapshot `xmin` — the oldest
transaction still in flight. Every transaction below `xmin` has finished, so nothing that could
still commit sorts before what the reader returns: no event is ever skipped. The price: one
long-running transaction holds the feed back until it ends (never keep one open on this server:
the snapshot's xmin spans every database of the PostgreSQL server, not just this one).
A checkpoint is the `global_position` of the last event read; `read_all(after=...)` resumes after
that event in this order.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain import events as e
from domain.journey import JourneyState, evolve
from domain.status import JourneyStatus, status_of
from store.db import Connection
from store.projection import OutboxRow, Projection, StatusRow, access_for, project, status_row
from store.views import journeys as views


class ConcurrencyError(Exception):
    """Another writer got there first: the stream is not at the expected version."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual_version}, not the expected {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class UnknownPosition(ValueError):
    """A checkpoint names no stored event."""


class AppendResult(BaseModel):
    """Where an append's events landed; `replayed` when they had been stored by an earlier try."""

    model_config = ConfigDict(frozen=True)

    stream_id: str
    versions: tuple[int, ...]
    positions: tuple[int, ...]
    replayed: bool
    #: Outbox rows the append wrote (unknown, so 0, for a replayed append).
    notifications: int = 0

    @property
    def last_version(self) -> int:
        """The stream's version after the append."""
        return self.versions[-1] if self.versions else 0


@dataclass(frozen=True)
class RebuildReport:
    """What a read-model rebuild did."""

    streams: int
    events: int
    seconds: float


_EVENT_COLUMNS = (
    "global_position, stream_id, stream_version, event_id, event_type, schema_version, data::text AS data, "
    "metadata::text AS metadata, occurred_at, recorded_at"
)

# One statement, so one round trip and one implicit transaction: the guard, the events, the read
# models and the outbox commit together or not at all. The guard refuses an `expected_version`
# the stream has not reached (which would leave a gap); the primary key (stream_id,
# stream_version) refuses one it has passed. Sibling CTEs see only `ins`'s RETURNING rows, and
# write only if it inserted.
_APPEND_PROJECTED = """
WITH guard AS (
    SELECT $2::int = 0 OR EXISTS (
        SELECT 1 FROM events WHERE stream_id = $1 AND stream_version = $2) AS ok
), ins AS (
    INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata,
                        occurred_at)
    SELECT $1, $2 + n.ord::int, n.event_id, n.event_type, n.schema_version, n.data::jsonb, $3::jsonb,
           n.occurred_at
      FROM unnest($4::uuid[], $5::text[], $6::int[], $7::text[], $8::timestamptz[])
           WITH ORDINALITY AS n(event_id, event_type, schema_version, data, occurred_at, ord)
     WHERE (SELECT ok FROM guard)
    RETURNING stream_version, global_position
), status AS (
    INSERT INTO journey_status (journey_id, stream_id, cohort_id, programme_id, programme_version, state,
                                at_risk, talent_id, nearest_leader_id, external_ref, next_deadline,
                                open_escalations, version, status, leaders_leader_id, updated_at)
    SELECT $9, $1, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21::jsonb, $30, now()
     WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (journey_id) DO UPDATE SET
        state = EXCLUDED.state, at_risk = EXCLUDED.at_risk, nearest_leader_id = EXCLUDED.nearest_leader_id,
        leaders_leader_id = EXCLUDED.leaders_leader_id,
        next_deadline = EXCLUDED.next_deadline, open_escalations = EXCLUDED.open_escalations,
        version = EXCLUDED.version, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
     WHERE journey_status.version < EXCLUDED.version
), access AS (
    INSERT INTO journey_access (journey_id, person_id, role)
    SELECT $9, a.person_id, a.role FROM unnest($22::text[], $23::text[]) AS a(person_id, role)
     WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT DO NOTHING
), outbox AS (
    INSERT INTO outbox (notification_id, event_id, journey_id, channel, template, recipient_role,
                        recipient_id)
    SELECT o.notification_id, o.event_id, $9, o.channel, o.template, o.recipient_role, o.recipient_id
      FROM unnest($24::uuid[], $25::uuid[], $26::text[], $27::text[], $28::text[], $29::text[])
           AS o(notification_id, event_id, channel, template, recipient_role, recipient_id)
     WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT stream_version, global_position FROM ins ORDER BY stream_version
"""

_STATUS_COPY_COLUMNS = (*StatusRow.COLUMNS, "updated_at")


def _record(row: asyncpg.Record) -> e.RecordedEvent:
    return e.RecordedEvent(
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        global_position=row["global_position"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        data=json.loads(row["data"]),
        metadata=e.EventMetadata.model_validate_json(row["metadata"]),
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
    )


def journey_id_of(stream_id: str) -> str:
    """The journey a stream belongs to."""
    if not stream_id.startswith("journey-"):
        raise ValueError(f"{stream_id!r} is not a journey stream")
    return stream_id.removeprefix("journey-")


class EventStore:
    """Append to and read journey streams; keep the read models and outbox in step.

    Folded states are cached per stream by version. A cached state at version N is exactly the
    fold of the stream's first N events (events never change), so a hit is always correct; an
    append guarded by `expected_version == N` can project from it without reading the stream.
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], *, cache_size: int = 10_000) -> None:
        self._pool = pool
        self._cache: OrderedDict[str, JourneyState] = OrderedDict()
        self._cache_size = cache_size

    # -- writing ---------------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[e.NewEvent],
        *,
        metadata: e.EventMetadata,
        conn: Connection | None = None,
    ) -> AppendResult:
        """Append `events` after `expected_version`, with read models and outbox, atomically.

        Retrying with the same event ids returns the first result and writes nothing; different
        events at a taken version raise ConcurrencyError. Pass `conn` to append inside a
        transaction of the caller's.
        """
        if not events:
            return AppendResult(stream_id=stream_id, versions=(), positions=(), replayed=False)
        if expected_version < 0:
            raise ValueError("expected_version must be >= 0")
        journey_id = journey_id_of(stream_id)
        if conn is None:
            async with self._pool.acquire() as acquired:
                return await self._append(acquired, stream_id, journey_id, expected_version, events, metadata)
        return await self._append(conn, stream_id, journey_id, expected_version, events, metadata)

    async def _append(
        self,
        conn: Connection,
        stream_id: str,
        journey_id: str,
        expected_version: int,
        events: Sequence[e.NewEvent],
        metadata: e.EventMetadata,
    ) -> AppendResult:
        before = await self._state_at(conn, stream_id, expected_version)
        if before is not None and before.version != expected_version:
            # The stream is elsewhere: an earlier try of this very append, or a conflict.
            return await self._settle(conn, stream_id, expected_version, events)
        try:
            projection = project(stream_id, before, events)
        except ValueError as exc:  # events that cannot start or continue this stream
            raise ConcurrencyError(stream_id, expected_version, before.version if before else 0) from exc
        args = _append_args(stream_id, journey_id, expected_version, events, metadata, projection)
        try:
            rows = await conn.fetch(_APPEND_PROJECTED, *args)
        except asyncpg.UniqueViolationError:
            return await self._settle(conn, stream_id, expected_version, events)
        if not rows:
            return await self._settle(conn, stream_id, expected_version, events)
        if conn.is_in_transaction():
            # The caller may still roll back: cache nothing we cannot be sure of.
            self._cache.pop(stream_id, None)
        else:
            self._remember(stream_id, projection.state)
        return AppendResult(
            stream_id=stream_id,
            versions=tuple(r["stream_version"] for r in rows),
            positions=tuple(r["global_position"] for r in rows),
            replayed=False,
            notifications=len(projection.outbox),
        )

    async def _settle(
        self, conn: Connection, stream_id: str, expected_version: int, events: Sequence[e.NewEvent]
    ) -> AppendResult:
        """After a refused insert: the same events already stored (a retry), or a conflict."""
        ids = [n.event_id for n in events]
        rows = await conn.fetch(
            "SELECT event_id, stream_id, stream_version, global_position FROM events WHERE event_id = ANY($1::uuid[])",
            ids,
        )
        found = {r["event_id"]: r for r in rows}
        expected_versions = list(range(expected_version + 1, expected_version + 1 + len(ids)))
        if len(found) == len(ids) and all(
            found[i]["stream_id"] == stream_id and found[i]["stream_version"] == v
            for i, v in zip(ids, expected_versions, strict=True)
        ):
            return AppendResult(
                stream_id=stream_id,
                versions=tuple(expected_versions),
                positions=tuple(found[i]["global_position"] for i in ids),
                replayed=True,
            )
        actual = await conn.fetchval(
            "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1", stream_id
        )
        self._cache.pop(stream_id, None)
        raise ConcurrencyError(stream_id, expected_version, int(actual))

    async def _state_at(self, conn: Connection, stream_id: str, version: int) -> JourneyState | None:
        """The folded state at `version` (from cache if possible), or the whole stream if shorter/longer."""
        if version == 0:
            return None
        cached = self._cache.get(stream_id)
        if cached is not None and cached.version == version:
            self._cache.move_to_end(stream_id)
            return cached
        return await self._fold_stream(conn, stream_id, until_version=version)

    async def _fold_stream(
        self,
        conn: Connection,
        stream_id: str,
        *,
        until_version: int | None = None,
        as_of: datetime | None = None,
    ) -> JourneyState | None:
        rows = await conn.fetch(
            """SELECT event_type, schema_version, data::text AS data FROM events
                WHERE stream_id = $1 AND ($2::int IS NULL OR stream_version <= $2)
                  AND ($3::timestamptz IS NULL OR occurred_at <= $3)
                ORDER BY stream_version""",
            stream_id,
            until_version,
            as_of,
        )
        state: JourneyState | None = None
        for row in rows:
            state = evolve(state, e.parse_event_json(row["event_type"], row["schema_version"], row["data"]))
        return state

    def _remember(self, stream_id: str, state: JourneyState) -> None:
        self._cache[stream_id] = state
        self._cache.move_to_end(stream_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- reading ---------------------------------------------------------------------------------

    async def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[e.RecordedEvent]:
        """A stream's events in version order."""
        rows = await self._pool.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version",
            stream_id,
            after_version,
        )
        return [_record(r) for r in rows]

    async def load(self, journey_id: str) -> JourneyState | None:
        """A journey's current state, folded from its events."""
        async with self._pool.acquire() as conn:
            return await self._fold_stream(conn, e.stream_id_for(journey_id))

    async def status(self, journey_id: str) -> JourneyStatus | None:
        """A journey's status from the read model (`store.views`)."""
        return await views.status(self._pool, journey_id)

    async def status_as_of(self, journey_id: str, at: datetime) -> JourneyStatus | None:
        """A journey's status as it stood at `at` (events that had occurred by then)."""
        async with self._pool.acquire() as conn:
            state = await self._fold_stream(conn, e.stream_id_for(journey_id), as_of=at)
        return status_of(state) if state is not None else None

    async def read_all(
        self, after: int = 0, *, limit: int = 1000, conn: Connection | None = None
    ) -> list[e.RecordedEvent]:
        """Events after checkpoint `after` in commit order, never skipping a late commit (module doc)."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        query = f"""
            SELECT {_EVENT_COLUMNS} FROM events
             WHERE (transaction_id, global_position) > (
                       SELECT coalesce(max(transaction_id), '0'::xid8), coalesce(max(global_position), 0)
                         FROM events WHERE global_position = $1)
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY transaction_id, global_position
             LIMIT $2"""
        if conn is None:
            async with self._pool.acquire() as acquired:
                return await self._read_all(acquired, query, after, limit)
        return await self._read_all(conn, query, after, limit)

    async def _read_all(self, conn: Connection, query: str, after: int, limit: int) -> list[e.RecordedEvent]:
        if after > 0 and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1)", after
        ):
            raise UnknownPosition(f"no event at position {after}")
        return [_record(r) for r in await conn.fetch(query, after, limit)]

    async def follow(self, after: int = 0, *, batch: int = 1000) -> AsyncIterator[e.RecordedEvent]:
        """Every event after `after` that is readable now, in commit order (pages through read_all)."""
        while True:
            page = await self.read_all(after, limit=batch)
            for event in page:
                yield event
            if len(page) < batch:
                return
            after = page[-1].global_position

    # -- rebuilding ------------------------------------------------------------------------------

    async def rebuild_read_models(self, *, batch: int = 5000) -> RebuildReport:
        """Recompute journey_status and journey_access from the events, in one transaction.

        Readers keep seeing the old rows until the rebuild commits (DELETE, not TRUNCATE, so no
        ACCESS EXCLUSIVE lock); concurrent appends wait on the EXCLUSIVE lock and then apply on
        top, as their projections are folded from the same events.
        """
        loop_started = time.monotonic()
        streams = 0
        count = 0
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE journey_status, journey_access IN EXCLUSIVE MODE")
            await conn.execute("DELETE FROM journey_status")
            await conn.execute("DELETE FROM journey_access")
            status_rows: list[tuple[Any, ...]] = []
            access_rows: list[tuple[str, str, str]] = []
            now = await conn.fetchval("SELECT now()")
            current: str | None = None
            state: JourneyState | None = None

            async def flush(final: bool = False) -> None:
                if status_rows and (final or len(status_rows) >= batch):
                    await conn.copy_records_to_table(
                        "journey_status", records=status_rows, columns=_STATUS_COPY_COLUMNS
                    )
                    status_rows.clear()
                if access_rows and (final or len(access_rows) >= batch):
                    await conn.executemany(
                        "INSERT INTO journey_access (journey_id, person_id, role) VALUES ($1, $2, $3) "
                        "ON CONFLICT DO NOTHING",
                        access_rows,
                    )
                    access_rows.clear()

            cursor = conn.cursor(
                "SELECT stream_id, event_type, schema_version, data::text FROM events "
                "WHERE stream_id LIKE 'journey-%' ORDER BY stream_id, stream_version",
                prefetch=batch,
            )
            async for stream_id, event_type, schema_version, data in cursor:
                if stream_id != current:
                    if state is not None and current is not None:
                        status_rows.append((*status_row(current, state).values(), now))
                        await flush()
                    current, state = stream_id, None
                    streams += 1
                event = e.parse_event_json(event_type, schema_version, data)
                state = evolve(state, event)
                journey_id = state.journey_id
                access_rows.extend((journey_id, p, r) for p, r in access_for(event))
                count += 1
            if state is not None and current is not None:
                status_rows.append((*status_row(current, state).values(), now))
            await flush(final=True)
        self._cache.clear()
        return RebuildReport(streams=streams, events=count, seconds=time.monotonic() - loop_started)


def _append_args(
    stream_id: str,
    journey_id: str,
    expected_version: int,
    events: Sequence[e.NewEvent],
    metadata: e.EventMetadata,
    projection: Projection,
) -> list[Any]:
    s = projection.status
    outbox: list[OutboxRow] = projection.outbox
    return [
        stream_id,
        expected_version,
        metadata.model_dump_json(),
        [n.event_id for n in events],
        [n.event.type for n in events],
        [n.event.schema_version for n in events],
        [e.event_json(n.event) for n in events],
        [n.occurred_at for n in events],
        journey_id,
        s.cohort_id,
        s.programme_id,
        s.programme_version,
        s.state,
        s.at_risk,
        s.talent_id,
        s.nearest_leader_id,
        s.external_ref,
        s.next_deadline,
        s.open_escalations,
        s.version,
        s.status,
        [p for p, _ in projection.access],
        [r for _, r in projection.access],
        [o.notification_id for o in outbox],
        [o.event_id for o in outbox],
        [o.channel for o in outbox],
        [o.template for o in outbox],
        [o.recipient_role for o in outbox],
        [o.recipient_id for o in outbox],
        s.leaders_leader_id,
    ]
