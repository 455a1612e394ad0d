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
import orjson
from pydantic import BaseModel, ConfigDict

from domain import events as e
from domain.journey import JourneyState, evolve
from domain.kpis import FACT_TYPES, FactsFold, fold_facts
from domain.programme import Cohort, Programme
from domain.status import JourneyStatus, status_of
from store.db import Connection
from store.projection import (
    KPI_COLUMNS,
    OutboxRow,
    Projection,
    StatusRow,
    access_for,
    kpi_shard,
    kpis_row,
    project,
    rows_of,
)
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
), kpis AS (
    INSERT INTO journey_kpis (journey_id, programme_id, cohort_id, version, counters, horizon_ends, horizon_flags,
                              days_to_appointment)
    SELECT $9, $11, $10, $20, $31::int[], $32::timestamptz[], $33::int[], $34::int
     WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (journey_id) DO UPDATE SET
        version = EXCLUDED.version, counters = EXCLUDED.counters, horizon_ends = EXCLUDED.horizon_ends,
        horizon_flags = EXCLUDED.horizon_flags, days_to_appointment = EXCLUDED.days_to_appointment
     WHERE journey_kpis.version < EXCLUDED.version
), totals AS (
    -- The change of the journey's counters (against its row as it stood before this statement;
    -- none yet: all of them) added to its cohort's shard.
    INSERT INTO kpi_totals AS t (cohort_id, shard, programme_id, counters)
    SELECT $10, $35, $11, ARRAY(
               SELECT n.v - coalesce(o.v, 0)
                 FROM unnest($31::int[]) WITH ORDINALITY AS n(v, i)
                 LEFT JOIN unnest((SELECT counters FROM journey_kpis WHERE journey_id = $9))
                      WITH ORDINALITY AS o(v, i) USING (i)
                ORDER BY i)
     WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (cohort_id, shard) DO UPDATE SET counters = ARRAY(
               SELECT a + b FROM unnest(t.counters, EXCLUDED.counters) WITH ORDINALITY AS u(a, b, i) ORDER BY i)
)
SELECT stream_version, global_position FROM ins ORDER BY stream_version
"""

_STATUS_COPY_COLUMNS = (*StatusRow.COLUMNS, "updated_at")

# After a checkpoint: the checkpoint's own (transaction_id, global_position) is the key to go past;
# a checkpoint that names no event makes it NULL, so the page is empty (and `_read_all` then checks
# whether the position exists: one extra round trip at the feed's end, not one per page).
_READ_ALL = """
SELECT {columns} FROM events
 WHERE (transaction_id, global_position) > (
           SELECT max(transaction_id), max(global_position) FROM events WHERE global_position = $1)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id, global_position
 LIMIT $2"""
_READ_ALL_FROM_START = """
SELECT {columns} FROM events
 WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id, global_position
 LIMIT $1"""


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

    Folded states (with their KPI facts) are cached per stream by version. A cached state at version N is exactly the
    fold of the stream's first N events (events never change), so a hit is always correct; an
    append guarded by `expected_version == N` can project from it without reading the stream.
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], *, cache_size: int = 10_000) -> None:
        self._pool = pool
        self._cache: OrderedDict[str, tuple[JourneyState, FactsFold]] = OrderedDict()
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
        before, facts = await self._state_at(conn, stream_id, expected_version)
        if before is not None and before.version != expected_version:
            # The stream is elsewhere: an earlier try of this very append, or a conflict.
            return await self._settle(conn, stream_id, expected_version, events)
        try:
            projection = project(stream_id, before, events, facts)
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
            self._remember(stream_id, projection.state, projection.facts)
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

    async def _state_at(
        self, conn: Connection, stream_id: str, version: int
    ) -> tuple[JourneyState | None, FactsFold | None]:
        """The folded state and KPI facts at `version` (from cache if possible), or the whole stream's
        if shorter/longer."""
        if version == 0:
            return None, None
        cached = self._cache.get(stream_id)
        if cached is not None and cached[0].version == version:
            self._cache.move_to_end(stream_id)
            return cached
        rows = await conn.fetch(
            "SELECT event_type, schema_version, data::text AS data FROM events "
            "WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version",
            stream_id,
            version,
        )
        state: JourneyState | None = None
        facts = FactsFold()
        for row in rows:
            event = e.parse_event_json(row["event_type"], row["schema_version"], row["data"])
            state = evolve(state, event)
            facts = fold_facts(facts, event)
        return state, facts

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

    def _remember(self, stream_id: str, state: JourneyState, facts: FactsFold) -> None:
        self._cache[stream_id] = (state, facts)
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
        return [_record(r) for r in await self.read_all_rows(after, limit=limit, conn=conn)]

    async def read_all_rows(
        self, after: int = 0, *, limit: int = 1000, columns: str = _EVENT_COLUMNS, conn: Connection | None = None
    ) -> list[asyncpg.Record]:
        """`read_all`'s events as rows of `columns` (a select list over `events`, constant text of the
        caller's, never input), undecoded: for readers that pass rows on (the HR feed)."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        if conn is None:
            async with self._pool.acquire() as acquired:
                return await self._read_all(acquired, after, limit, columns)
        return await self._read_all(conn, after, limit, columns)

    async def _read_all(self, conn: Connection, after: int, limit: int, columns: str) -> list[asyncpg.Record]:
        if after <= 0:
            start: list[asyncpg.Record] = await conn.fetch(_READ_ALL_FROM_START.format(columns=columns), limit)
            return start
        rows: list[asyncpg.Record] = await conn.fetch(_READ_ALL.format(columns=columns), after, limit)
        if not rows and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1)", after
        ):
            raise UnknownPosition(f"no event at position {after}")
        return rows

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

    async def rebuild_read_models(
        self, *, batch: int = 5000, workers: int = 1, dsn: str | None = None
    ) -> RebuildReport:
        """Recompute journey_status, journey_access and the KPI projection from the events, in one transaction.

        Readers keep seeing the old rows until the rebuild commits (DELETE, not TRUNCATE, so no
        ACCESS EXCLUSIVE lock); concurrent appends wait on the EXCLUSIVE lock and then apply on
        top, as their projections are folded from the same events. Rows go in by COPY, in batches.

        With `workers` > 1 and the database's `dsn`, the folding (Python, the rebuild's cost) is
        spread over that many processes, each reading ranges of streams on its own connection in
        the rebuild's exported snapshot (so every process sees exactly the same events); this
        process writes what they return.
        """
        loop_started = time.monotonic()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE journey_status, journey_access, journey_kpis, kpi_totals IN EXCLUSIVE MODE")
            await conn.execute("DELETE FROM journey_status")
            await conn.execute("DELETE FROM journey_access")
            await conn.execute("DELETE FROM journey_kpis")
            await conn.execute("DELETE FROM kpi_totals")
            now: datetime = await conn.fetchval("SELECT now()")
            if workers > 1 and dsn is not None:
                folded = await _fold_in_processes(conn, dsn, now, workers)
            else:
                folded = await _fold_here(conn, now, batch)
            await conn.copy_records_to_table(
                "kpi_totals",
                records=[(c, shard, p, sums) for (c, shard), (p, sums) in folded.totals.items()],
                columns=("cohort_id", "shard", "programme_id", "counters"),
            )
        self._cache.clear()
        return RebuildReport(streams=folded.streams, events=folded.events, seconds=time.monotonic() - loop_started)


_JOURNEY_EVENTS = (
    "SELECT stream_id, event_type, schema_version, data::text FROM events "
    "WHERE stream_id LIKE 'journey-%' {range} ORDER BY stream_id, stream_version"
)


class _NominationDecoder:
    """Decodes stored TalentNominated data as `parse_event_json` does, each distinct programme and
    cohort definition in it only once.

    A nomination carries its whole programme and cohort, the same for every journey of a cohort,
    and decoding them was two thirds of a rebuild's decoding. They are frozen models, so one
    decoded value serves every nomination whose stored JSON of them is the same text (PostgreSQL
    writes jsonb in one canonical form). The rest of the event is validated as usual, from its
    parsed JSON (the parts passed as the models they decoded to).
    """

    _CURRENT = e.TalentNominated.model_fields["schema_version"].default
    _LIMIT = 4096

    def __init__(self) -> None:
        self._programmes: dict[bytes, Programme] = {}
        self._cohorts: dict[bytes, Cohort] = {}

    def __call__(self, schema_version: int, data: str) -> e.Event:
        if schema_version != self._CURRENT:
            return e.parse_event_json("TalentNominated", schema_version, data)
        fields = orjson.loads(data)
        programme, cohort = fields.get("programme"), fields.get("cohort")
        if not isinstance(programme, dict) or not isinstance(cohort, dict):
            return e.parse_event_json("TalentNominated", schema_version, data)
        fields["programme"] = self._part(self._programmes, Programme, orjson.dumps(programme))
        fields["cohort"] = self._part(self._cohorts, Cohort, orjson.dumps(cohort))
        return e.TalentNominated.model_validate(fields)

    def _part(self, cache: dict[bytes, Any], model: type[BaseModel], text: bytes) -> Any:
        part = cache.get(text)
        if part is None:
            if len(cache) >= self._LIMIT:
                cache.clear()
            part = cache[text] = model.model_validate_json(text)
        return part


class _Folder:
    """Folds journey events in (stream, version) order into read-model rows (a rebuild's work)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.status: list[tuple[Any, ...]] = []
        self.kpis: list[tuple[Any, ...]] = []
        self.access: list[tuple[str, str, str]] = []
        self.totals: dict[tuple[str, int], tuple[str, list[int]]] = {}
        self.streams = 0
        self.events = 0
        self._current: str | None = None
        self._state: JourneyState | None = None
        self._facts = FactsFold()
        self._seen: set[tuple[str, str]] = set()
        self._nomination = _NominationDecoder()

    def add(self, stream_id: str, event_type: str, schema_version: int, data: str) -> bool:
        """Fold one event; True when it started a new stream (the previous one's rows are written)."""
        started = stream_id != self._current
        if started:
            self.finish()
            self._current, self._state, self._facts = stream_id, None, FactsFold()
            self._seen.clear()
            self.streams += 1
        if event_type == "TalentNominated":
            event = self._nomination(schema_version, data)
        else:
            event = e.parse_event_json(event_type, schema_version, data)
        state = self._state = evolve(self._state, event)
        if event.type in FACT_TYPES:
            self._facts = fold_facts(self._facts, event)
        for grant in access_for(event):
            if grant not in self._seen:
                self._seen.add(grant)
                self.access.append((state.journey_id, *grant))
        self.events += 1
        return started

    def finish(self) -> None:
        """Write the rows of the stream being folded (if any)."""
        if self._state is None or self._current is None:
            return
        state, facts = self._state, self._facts
        status, kpis = rows_of(self._current, state, facts)
        self.status.append((*status.values(), self.now))
        self.kpis.append(kpis_row(state, kpis))
        key = (status.cohort_id, kpi_shard(status.journey_id))
        _, sums = self.totals.setdefault(key, (status.programme_id, [0] * len(kpis.counters)))
        for i, n in enumerate(kpis.counters):
            sums[i] += n
        self._state = None

    def take(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str, str, str]]]:
        """The finished rows so far, handed over and forgotten."""
        taken = (self.status, self.kpis, self.access)
        self.status, self.kpis, self.access = [], [], []
        return taken


async def _copy_rows(
    conn: Connection,
    status: list[tuple[Any, ...]],
    kpis: list[tuple[Any, ...]],
    access: list[tuple[str, str, str]],
) -> None:
    if status:
        await conn.copy_records_to_table("journey_status", records=status, columns=_STATUS_COPY_COLUMNS)
        await conn.copy_records_to_table("journey_kpis", records=kpis, columns=KPI_COLUMNS)
    if access:
        # The tables were emptied by the rebuild and each journey's rows are distinct: plain COPY.
        await conn.copy_records_to_table("journey_access", records=access, columns=("journey_id", "person_id", "role"))


async def _fold_here(conn: Connection, now: datetime, batch: int) -> _Folder:
    """Fold every journey stream in this process, writing rows in batches of `batch` journeys."""
    folder = _Folder(now)
    cursor = conn.cursor(_JOURNEY_EVENTS.format(range=""), prefetch=batch)
    async for stream_id, event_type, schema_version, data in cursor:
        if folder.add(stream_id, event_type, schema_version, data) and len(folder.status) >= batch:
            await _copy_rows(conn, *folder.take())
    folder.finish()
    await _copy_rows(conn, *folder.take())
    return folder


async def _fold_in_processes(conn: Connection, dsn: str, now: datetime, workers: int) -> _Folder:
    """Fold ranges of streams in `workers` processes in this transaction's snapshot; write their rows here."""
    import asyncio
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
    # Range bounds from a sample of the stream ids (about 1% of the table's pages): ranges need not
    # be even, only many enough (8 per process) to keep the processes busy to the end.
    sample = sorted(
        {
            r[0]
            for r in await conn.fetch(
                "SELECT stream_id FROM events TABLESAMPLE SYSTEM (1) WHERE stream_id LIKE 'journey-%'"
            )
        }
    )
    parts = workers * 8
    bounds = sorted({sample[len(sample) * k // parts] for k in range(1, parts)}) if sample else []
    ranges = list(zip([None, *bounds], [*bounds, None], strict=True))
    total = _Folder(now)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [loop.run_in_executor(pool, _fold_range, dsn, snapshot, now, lo, hi) for lo, hi in ranges]
        for done in asyncio.as_completed(futures):
            status, kpis, access, totals, streams, events = await done
            await _copy_rows(conn, status, kpis, access)
            total.streams += streams
            total.events += events
            for key, (programme_id, sums) in totals.items():
                _, into = total.totals.setdefault(key, (programme_id, [0] * len(sums)))
                for i, n in enumerate(sums):
                    into[i] += n
    return total


def _fold_range(
    dsn: str, snapshot: str, now: datetime, low: str | None, high: str | None
) -> tuple[
    list[tuple[Any, ...]],
    list[tuple[Any, ...]],
    list[tuple[str, str, str]],
    dict[tuple[str, int], tuple[str, list[int]]],
    int,
    int,
]:
    """(In a worker process.) The rows of the journey streams in [low, high) as of `snapshot`."""
    import asyncio

    async def fold() -> _Folder:
        folder = _Folder(now)
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # the exporter's own text
                where = ("AND stream_id >= $1 " if low is not None else "AND $1::text IS NULL ") + (
                    "AND stream_id < $2" if high is not None else "AND $2::text IS NULL"
                )
                cursor = conn.cursor(_JOURNEY_EVENTS.format(range=where), low, high, prefetch=5000)
                async for stream_id, event_type, schema_version, data in cursor:
                    folder.add(stream_id, event_type, schema_version, data)
        finally:
            await conn.close()
        folder.finish()
        return folder

    f = asyncio.run(fold())
    return f.status, f.kpis, f.access, f.totals, f.streams, f.events


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
        *kpis_row(projection.state, projection.kpis)[4:],
        kpi_shard(journey_id),
    ]
