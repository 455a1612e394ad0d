"""Benchmark: event-store appends and read-model rebuild against raw asyncpg on the same database.

    .venv/bin/python bench/store_bench.py [--rounds 3] [--appends 1500]

Each configuration (writers x events per append) runs the store and the raw baseline alternately,
in the same run and database, `--rounds` times; the figures are medians over rounds. The raw
baseline inserts the same rows with one `INSERT ... SELECT FROM unnest(...)` per append into a
bare table (no indexes, no version guard, no read models, no outbox). Targets: store >= 0.6x raw
at both concurrencies; rebuild >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import (
    COORD,
    CPH,
    LEADER,
    SYSTEM,
    TALENT,
    Journey,
    nominate,
    reference_cohort,
    reference_programme,
)
from domain import commands as c
from domain.events import EventMetadata, NewEvent, TalentNominated, event_json, stream_id_for
from domain.journey import next_wakeup
from infra.postgres import create_database, drop_database, server_dsn
from store.db import create_pool, migrate
from store.eventstore import EventStore

META = EventMetadata(actor="bench", correlation_id="bench")

RAW_TABLE = """
CREATE TABLE IF NOT EXISTS raw_events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    stream_id text NOT NULL, stream_version integer NOT NULL, event_id uuid NOT NULL,
    event_type text NOT NULL, schema_version integer NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
    occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())
"""
RAW_INSERT = """
INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata,
                        occurred_at)
SELECT $1, $2 + n.ord::int, n.event_id, n.event_type, n.schema_version, n.data::jsonb, $3::jsonb, n.occurred_at
  FROM unnest($4::uuid[], $5::text[], $6::int[], $7::text[], $8::timestamptz[])
       WITH ORDINALITY AS n(event_id, event_type, schema_version, data, occurred_at, ord)
"""


def template_journey() -> list[NewEvent]:
    """A realistic journey's events: nominated, approved, sessions, tracks, meetings, slips, completion."""
    programme = reference_programme()
    cohort = reference_cohort(programme)
    j = Journey()
    t = datetime(2027, 1, 4, 10, tzinfo=CPH)
    j.send(nominate(programme, cohort), t)
    j.send(c.DecideNomination(**COORD, decision="approve"), t + timedelta(days=2))
    for session in cohort.sessions:
        j.send(
            c.RecordAttendance(**COORD, session_key=session.key, status="attended"),
            session.starts_at + timedelta(hours=4),
        )
    for i, track in enumerate(programme.tracks):
        at = datetime(2027, 2 + 2 * i, 10, 10, tzinfo=CPH)
        j.send(c.SubmitTrack(**TALENT, track_key=track.key), at)
        j.send(c.SignOffTrack(**LEADER, track_key=track.key, decision="approve"), at + timedelta(days=1))
    for month in range(2, 7):
        j.send(
            c.LogMentorMeeting(**LEADER, held_on=datetime(2027, month, 20, tzinfo=CPH).date()),
            datetime(2027, month, 20, 15, tzinfo=CPH),
        )
    for _ in range(100):
        wake = next_wakeup(j.state)
        if wake is None:
            break
        j.send(c.AdvanceClock(**SYSTEM), wake)
    return j.history


def instance(template: list[NewEvent], journey_id: str) -> list[NewEvent]:
    """The template's events for another journey: new ids, new journey id."""
    out = []
    for n in template:
        event = n.event
        if isinstance(event, TalentNominated):
            event = event.model_copy(update={"journey_id": journey_id})
        out.append(NewEvent(event_id=uuid.uuid4(), occurred_at=n.occurred_at, event=event))
    return out


def batches(events: list[NewEvent], size: int) -> list[list[NewEvent]]:
    """Consecutive appends of `size` events."""
    return [events[i : i + size] for i in range(0, len(events), size)]


async def run_writers(
    writers: int,
    work: list[list[tuple[str, int, list[NewEvent]]]],
    append: Callable[[str, int, list[NewEvent]], Awaitable[None]],
) -> tuple[float, list[float]]:
    """Run each writer's appends in order, writers concurrently; return (seconds, latencies)."""
    latencies: list[float] = []

    async def writer(items: list[tuple[str, int, list[NewEvent]]]) -> None:
        for stream, version, batch in items:
            t0 = time.perf_counter()
            await append(stream, version, batch)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in work))
    return time.perf_counter() - started, latencies


def plan(
    template: list[NewEvent], writers: int, per_append: int, appends: int, tag: str
) -> list[list[tuple[str, int, list[NewEvent]]]]:
    """Split `appends` appends over `writers`, each writer on its own journeys."""
    work: list[list[tuple[str, int, list[NewEvent]]]] = [[] for _ in range(writers)]
    per_writer = appends // writers
    for w in range(writers):
        while len(work[w]) < per_writer:
            journey_id = f"bench-{tag}-{w}-{uuid.uuid4().hex[:8]}"
            version = 0
            for batch in batches(instance(template, journey_id), per_append):
                if len(work[w]) >= per_writer:
                    break
                work[w].append((stream_id_for(journey_id), version, batch))
                version += len(batch)
    return work


def pct(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_appends(pool: asyncpg.Pool, template: list[NewEvent], rounds: int, appends: int) -> list[str]:
    lines = []
    header = (
        f"{'writers':>7} {'ev/app':>6} | {'store ev/s':>10} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'raw ev/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for writers in (1, 16):
        for per_append in (1, 10):
            store_rates: list[float] = []
            raw_rates: list[float] = []
            store_lat: list[float] = []
            raw_lat: list[float] = []
            for r in range(rounds):
                store = EventStore(pool)

                async def store_append(
                    stream: str, version: int, batch: list[NewEvent], store: EventStore = store
                ) -> None:
                    await store.append(stream, version, batch, metadata=META)

                async def raw_append(stream: str, version: int, batch: list[NewEvent]) -> None:
                    # The same Python-side encoding as the store; no projection, no guard.
                    await pool.execute(
                        RAW_INSERT,
                        stream,
                        version,
                        META.model_dump_json(),
                        [n.event_id for n in batch],
                        [n.event.type for n in batch],
                        [n.event.schema_version for n in batch],
                        [event_json(n.event) for n in batch],
                        [n.occurred_at for n in batch],
                    )

                runs = [("store", store_append), ("raw", raw_append)]
                if r % 2:
                    runs.reverse()
                for name, fn in runs:
                    work = plan(template, writers, per_append, appends, f"{name}{writers}x{per_append}r{r}")
                    events = sum(len(b) for w in work for _, _, b in w)
                    seconds, lat = await run_writers(writers, work, fn)
                    (store_rates if name == "store" else raw_rates).append(events / seconds)
                    (store_lat if name == "store" else raw_lat).extend(lat)
            s, w = statistics.median(store_rates), statistics.median(raw_rates)
            lines.append(
                f"{writers:>7} {per_append:>6} | {s:>10,.0f} {pct(store_lat, 0.5) * 1e3:>7.2f} "
                f"{pct(store_lat, 0.99) * 1e3:>7.2f}"
                f" | {w:>10,.0f} {pct(raw_lat, 0.5) * 1e3:>7.2f} {pct(raw_lat, 0.99) * 1e3:>7.2f} | {s / w:>5.2f}"
            )
    return lines


async def bench_rebuild(pool: asyncpg.Pool, rounds: int) -> list[str]:
    store = EventStore(pool)
    rebuild_rates, scan_rates = [], []
    total = await pool.fetchval("SELECT count(*) FROM events")
    for _ in range(rounds):
        report = await store.rebuild_read_models()
        rebuild_rates.append(report.events / report.seconds)
        async with pool.acquire() as conn, conn.transaction():
            t0 = time.perf_counter()
            n = 0
            async for _row in conn.cursor(
                "SELECT stream_id, event_type, schema_version, data::text FROM events "
                "ORDER BY stream_id, stream_version",
                prefetch=5000,
            ):
                n += 1
            scan_rates.append(n / (time.perf_counter() - t0))
    r, s = statistics.median(rebuild_rates), statistics.median(scan_rates)
    return [
        f"rebuild of {total:,} events in {report.streams:,} streams: {r:,.0f} events/s "
        f"(raw scan {s:,.0f} events/s, ratio {r / s:.2f}; target >= 50,000 events/s)"
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--appends", type=int, default=1600, help="appends per configuration and round")
    args = parser.parse_args()
    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_bench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server, name)
    try:
        pool = await create_pool(dsn, min_size=17, max_size=17)
        async with pool.acquire() as conn:
            await migrate(conn)
            await conn.execute(RAW_TABLE)
        template = template_journey()
        print(f"template journey: {len(template)} events; {args.rounds} rounds of {args.appends} appends each")
        for line in await bench_appends(pool, template, args.rounds, args.appends):
            print(line, flush=True)
        for line in await bench_rebuild(pool, args.rounds):
            print(line, flush=True)
        await pool.close()
    finally:
        await drop_database(server, name)


if __name__ == "__main__":
    asyncio.run(main())
