"""Benchmark: the read side at scale (issue 15), every figure beside its baseline in one run.

    .venv/bin/python bench/scale.py [--journeys 2000] [--requests 500] [--concurrency 16] [--feed-events 200000]

On a throw-away database (created and dropped here, never the tests' one), `--journeys` journeys
of one programme are written by COPY in global order with the append's stored bytes, then the
read models by the store's rebuild (`--seed bulk`, `seed_bulk`), or through `EventStore.append`
(`--seed append`: 16 writers, 10 events per append, with read models, KPI projection and outbox),
spread over 100 cohorts (1,000 journeys each at 100,000), five journeys per leader. Their
histories are decided by the domain (`decide`/`evolve`, bench.support.Journey): one journey is
driven through the whole programme, with outcomes, and its prefixes stand for journeys at every
stage (nominated, enrolled, active, completed, following up, closed); other journeys are paused,
withdrawn, rejected, or left to slip until they are at risk (a few per cent), in the shares of a
live programme. Each journey gets its own ids, people and cohort.

Then the API is served by uvicorn on a free port (no Temporal: only reads are measured) and
measured over HTTP with `--concurrency` clients, with the server-side time of each request taken
by an ASGI wrapper around the app:

| path | target |
|---|---|
| GET /v1/journeys/{id}, p99 over HTTP | <= 2x GET /healthz p99 in the same run; server-side p99 < 10 ms |
| a list page of 200 (cohort_id / at_risk / state) | server-side p95 < 50 ms |
| the dashboard's page of a 1,000-journey cohort | p95 < 250 ms |
| programme KPIs over every journey | < 500 ms |
| the HR feed, paging every event (`--feed-events` at most) | >= 0.5x a raw keyset scan of the events |
| rebuilding every read model | >= 100,000 events/s or >= 0.3x a raw scan |

The database's size is printed after seeding. The machine is noisy: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import httpx
import uvicorn

from api.app import create_app
from api.auth import Authenticator, TokenEntry
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
from domain import events as e
from domain.errors import DomainError
from domain.events import EventMetadata, NewEvent, TalentNominated
from domain.journey import JourneyState, evolve, next_wakeup
from domain.programme import Cohort, Programme
from domain.status import status_of
from infra.postgres import create_database, drop_database, server_dsn
from infra.settings import Settings
from service import bootstrap
from store.catalog import Catalog
from store.db import create_pool, migrate
from store.eventstore import EventStore
from store.views import kpis as kpis_view

META = EventMetadata(actor="bench", correlation_id="bench")
COHORTS = 100
JOURNEYS_PER_LEADER = 5
TOKENS = [
    TokenEntry(token="scale-coordinator", role="coordinator", person_id="p-coord"),
    TokenEntry(token="scale-hr", role="hr_system"),
    # The leader of the first five journeys (seed: five journeys per leader).
    TokenEntry(token="scale-leader", role="leader", person_id="p-leader-0"),
]
COORD_AUTH = {"Authorization": "Bearer scale-coordinator"}
HR_AUTH = {"Authorization": "Bearer scale-hr"}


# -- histories decided by the domain ---------------------------------------------------------------


def _try(j: Journey, command: c.Command, at: datetime) -> None:
    # The rules may refuse it at this point of the journey: a live programme has those too.
    with contextlib.suppress(DomainError):
        j.send(command, at)


def _advance(j: Journey, *, until: Callable[[JourneyState], bool] | None = None, outcomes: bool = False) -> None:
    """Let the journey's timers fire (recording outcomes at follow-ups), until `until` or the end."""
    answers = 0
    for _ in range(300):
        wake = next_wakeup(j.s)
        if wake is None or (until is not None and until(j.s)):
            return
        fired = j.send(c.AdvanceClock(**SYSTEM), wake)
        if outcomes and any(ev.type == "FollowUpRequested" for ev in fired):
            # Not yet at the first follow-up, applied by the second, appointed by the third.
            answers += 1
            applied, appointed = answers >= 2, answers >= 3
            answered = wake + timedelta(days=3)
            _try(
                j,
                c.RecordOutcome(
                    **TALENT,
                    applied_for_leader_post=applied,
                    appointed=appointed,
                    on=(wake - timedelta(days=30)).date(),  # what happened a month before the follow-up
                ),
                answered,
            )


def _full(programme: Programme, cohort: Cohort) -> Journey:
    """Through the whole programme: sessions attended, tracks signed off, meetings, follow-ups answered."""
    j = Journey()
    t = datetime(2027, 1, 4, 10, tzinfo=CPH)
    j.send(nominate(programme, cohort), t)
    j.send(c.DecideNomination(**COORD, decision="approve"), t + timedelta(days=2))
    for session in cohort.sessions:
        _try(j, c.RecordAttendance(**COORD, session_key=session.key, status="attended"), session.starts_at)
    for i, track in enumerate(programme.tracks):
        at = datetime(2027, 2 + 2 * i, 10, 10, tzinfo=CPH)
        _try(j, c.SubmitTrack(**TALENT, track_key=track.key), at)
        _try(j, c.SignOffTrack(**LEADER, track_key=track.key, decision="approve"), at + timedelta(days=1))
    for month in range(2, 7):
        held = datetime(2027, month, 20, 15, tzinfo=CPH)
        _try(j, c.LogMentorMeeting(**LEADER, held_on=held.date()), held)
    _advance(j, outcomes=True)
    return j


def _started(programme: Programme, cohort: Cohort) -> Journey:
    j = Journey()
    t = datetime(2027, 1, 4, 10, tzinfo=CPH)
    j.send(nominate(programme, cohort), t)
    j.send(c.DecideNomination(**COORD, decision="approve"), t + timedelta(days=2))
    return j


def templates() -> list[tuple[str, float, list[NewEvent]]]:
    """(name, share, history) of the journeys a live programme holds."""
    programme = reference_programme()
    cohort = reference_cohort(programme)
    full = _full(programme, cohort).history
    states: list[str] = []
    state: JourneyState | None = None
    for n in full:
        state = evolve(state, n.event)
        states.append(state.state)

    def cut(name: str, fraction: float = 0.0) -> list[NewEvent]:
        at = [i for i, s in enumerate(states) if s == name]
        return full[: at[int(fraction * (len(at) - 1))] + 1]

    at_risk = _started(programme, cohort)
    _advance(at_risk, until=lambda s: status_of(s).at_risk)
    paused = _started(programme, cohort)
    _advance(paused, until=lambda s: s.state == "active")
    paused.send(c.PauseJourney(**COORD), paused.history[-1].occurred_at + timedelta(days=1))
    withdrawn = _started(programme, cohort)
    _advance(withdrawn, until=lambda s: s.state == "active")
    withdrawn.send(c.WithdrawTalent(**COORD), withdrawn.history[-1].occurred_at + timedelta(days=1))
    rejected = Journey()
    rejected.send(nominate(programme, cohort), datetime(2027, 1, 4, 10, tzinfo=CPH))
    rejected.send(
        c.DecideNomination(**COORD, decision="reject", reason_ref="t-reason"), datetime(2027, 1, 5, 10, tzinfo=CPH)
    )
    return [
        ("nominated", 0.05, full[:1]),
        ("enrolled", 0.05, cut("enrolled")),
        ("active early", 0.12, cut("active", 0.2)),
        ("active late", 0.12, cut("active", 0.9)),
        ("at risk", 0.04, at_risk.history),
        ("paused", 0.04, paused.history),
        ("withdrawn", 0.03, withdrawn.history),
        ("rejected", 0.02, rejected.history),
        ("completed", 0.08, cut("completed")),
        ("following up", 0.25, cut("following_up", 0.5)),
        ("closed", 0.20, full),
    ]


def instance(template: list[NewEvent], journey_id: str, i: int, cohort: Cohort) -> list[NewEvent]:
    """The template's events for journey `i`: its own ids, talent, leaders (five journeys each) and cohort."""
    leader = i // JOURNEYS_PER_LEADER
    out = []
    for n in template:
        event = n.event
        if isinstance(event, TalentNominated):
            event = event.model_copy(
                update={
                    "journey_id": journey_id,
                    "talent_id": f"p-talent-{i}",
                    "nearest_leader_id": f"p-leader-{leader}",
                    "leaders_leader_id": f"p-boss-{leader // 20}",
                    "cohort": cohort,
                }
            )
        out.append(NewEvent(event_id=uuid.uuid4(), occurred_at=n.occurred_at, event=event))
    return out


async def seed(
    pool: asyncpg.Pool[asyncpg.Record], journeys: int, writers: int = 16
) -> tuple[int, float, dict[str, Any]]:
    """Write the journeys through the store's append; (events, seconds, facts about what was written)."""
    programme = reference_programme()
    catalog = Catalog(pool)
    await catalog.publish(programme)
    cohort_size = max(1, journeys // COHORTS)
    cohorts = [
        reference_cohort(programme, cohort_id=f"scale-{k:03d}").model_copy(update={"capacity": cohort_size * 2})
        for k in range(COHORTS)
    ]
    for cohort in cohorts:
        await catalog.create_cohort(cohort)
    plans = templates()
    rng = random.Random(15)
    names = [name for name, _, _ in plans]
    weights = [share for _, share, _ in plans]
    history = {name: events for name, _, events in plans}
    kinds = rng.choices(names, weights, k=journeys)
    store = EventStore(pool, cache_size=writers * 4)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(journeys):
        queue.put_nowait(i)
    written = 0

    async def writer() -> None:
        nonlocal written
        while not queue.empty():
            i = queue.get_nowait()
            journey_id = f"s-{i:07d}"
            events = instance(history[kinds[i]], journey_id, i, cohorts[min(i // cohort_size, COHORTS - 1)])
            for k in range(0, len(events), 10):
                await store.append(f"journey-{journey_id}", k, events[k : k + 10], metadata=META)
            written += len(events)

    started = time.perf_counter()
    progress = asyncio.create_task(_progress(lambda: written, journeys))
    await asyncio.gather(*(writer() for _ in range(writers)))
    progress.cancel()
    seconds = time.perf_counter() - started
    facts = {
        "cohort": cohorts[0].cohort_id,
        "cohort_size": cohort_size,
        "leader": "p-leader-0",
        "mix": {name: kinds.count(name) for name in names},
        "programme": programme.id,
    }
    return written, seconds, facts


async def seed_bulk(
    pool: asyncpg.Pool[asyncpg.Record], journeys: int, *, dsn: str, workers: int, chunk: int = 1000
) -> tuple[int, float, dict[str, Any]]:
    """Write the same journeys as `seed` by COPY, then build the read models by the store's rebuild.

    What it keeps of the append's guarantees: each event's stored bytes are the append's
    (`domain.events.event_json`, the same metadata text), streams are gap-free from version 1,
    and the global order is gap-free: one COPY at a time, in order, each in its own transaction
    (positions come from the identity in row order; nothing runs beside it). Within a chunk of
    `chunk` journeys their appends of ten events are interleaved, as concurrent writers would
    leave them. The histories are the domain's (`templates`, decided once); only each journey's
    nomination differs between journeys (its ids, people and cohort), so the other events' JSON is
    encoded once per template. The read models and KPI projection come from
    `EventStore.rebuild_read_models` (the same fold the append projects with). Not written: the
    outbox (notifications are not measured here)."""
    programme = reference_programme()
    catalog = Catalog(pool)
    await catalog.publish(programme)
    cohort_size = max(1, journeys // COHORTS)
    cohorts = [
        reference_cohort(programme, cohort_id=f"scale-{k:03d}").model_copy(update={"capacity": cohort_size * 2})
        for k in range(COHORTS)
    ]
    for cohort in cohorts:
        await catalog.create_cohort(cohort)
    plans = templates()
    rng = random.Random(15)
    names = [name for name, _, _ in plans]
    weights = [share for _, share, _ in plans]
    # Per template: (type, schema version, stored JSON or None for the nomination, occurred_at, event).
    encoded = {
        name: [
            (
                n.event.type,
                n.event.schema_version,
                None if isinstance(n.event, TalentNominated) else e.event_json(n.event),
                n.occurred_at,
                n.event,
            )
            for n in events
        ]
        for name, _, events in plans
    }
    kinds = rng.choices(names, weights, k=journeys)
    metadata = META.model_dump_json()
    columns = (
        "stream_id",
        "stream_version",
        "event_id",
        "event_type",
        "schema_version",
        "data",
        "metadata",
        "occurred_at",
    )
    uuid4 = uuid.uuid4
    written = 0
    started = time.perf_counter()
    progress = asyncio.create_task(_progress(lambda: written, journeys))
    async with pool.acquire() as conn:
        for first in range(0, journeys, chunk):
            slices: list[list[tuple[Any, ...]]] = []
            for i in range(first, min(journeys, first + chunk)):
                journey_id = f"s-{i:07d}"
                stream_id = e.stream_id_for(journey_id)
                cohort = cohorts[min(i // cohort_size, COHORTS - 1)]
                leader = i // JOURNEYS_PER_LEADER
                rows = []
                for version, (kind, schema, stored, occurred_at, event) in enumerate(encoded[kinds[i]], 1):
                    data = stored
                    if data is None:
                        data = e.event_json(
                            event.model_copy(
                                update={
                                    "journey_id": journey_id,
                                    "talent_id": f"p-talent-{i}",
                                    "nearest_leader_id": f"p-leader-{leader}",
                                    "leaders_leader_id": f"p-boss-{leader // 20}",
                                    "cohort": cohort,
                                }
                            )
                        )
                    rows.append((stream_id, version, uuid4(), kind, schema, data, metadata, occurred_at))
                slices.extend(rows[k : k + 10] for k in range(0, len(rows), 10))
            # Interleave the journeys' appends: the first append of each, then the second, ...
            order = sorted(range(len(slices)), key=lambda k: (slices[k][0][1], k))
            records = [row for k in order for row in slices[k]]
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=records, columns=columns)
            written += len(records)
    progress.cancel()
    seconds = time.perf_counter() - started
    report = await EventStore(pool).rebuild_read_models(workers=workers, dsn=dsn)
    print(
        f"  events copied in {seconds:.0f} s ({written / seconds:,.0f} events/s); read models rebuilt in "
        f"{report.seconds:.0f} s ({report.events / report.seconds:,.0f} events/s)",
        flush=True,
    )
    facts = {
        "cohort": cohorts[0].cohort_id,
        "cohort_size": cohort_size,
        "leader": "p-leader-0",
        "mix": {name: kinds.count(name) for name in names},
        "programme": programme.id,
    }
    return written, seconds + report.seconds, facts


async def _progress(done: Callable[[], int], journeys: int) -> None:
    while True:
        await asyncio.sleep(30)
        print(f"  ... {done():,} events written ({journeys:,} journeys)", file=sys.stderr, flush=True)


# -- measuring -------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]


class Timed:
    """An ASGI wrapper that records each HTTP request's server-side time (ms) under its path's kind."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: dict[str, list[float]] = {}
        self.kind = "other"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = self.kind
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.times.setdefault(kind, []).append((time.perf_counter() - started) * 1000)


# The list page's query before issue 15 (`$n IS NULL OR ...`, one generic plan for every filter):
# timed beside the route as its "before".
_OLD_PAGE = """
WITH page AS (
  SELECT s.journey_id, s.status FROM journey_status s
   WHERE ($1 IN ('coordinator', 'hr_system')
          OR ($1 = 'leader' AND (s.nearest_leader_id = $2 OR s.leaders_leader_id = $2))
          OR ($1 = 'talent' AND s.talent_id = $2))
     AND ($3::text IS NULL OR s.cohort_id = $3) AND ($4::text IS NULL OR s.state = $4)
     AND ($5::bool IS NULL OR s.at_risk = $5) AND ($6::text IS NULL OR s.journey_id > $6)
   ORDER BY s.journey_id LIMIT $7)
SELECT json_build_object(
  'items', coalesce(json_agg(status ORDER BY journey_id), '[]'),
  'next', CASE WHEN count(*) = $7 THEN max(journey_id) END)::text FROM page"""


async def old_page_times(pool: asyncpg.Pool[asyncpg.Record], args: tuple[Any, ...], n: int) -> list[float]:
    """The old list query's times (ms), one at a time, on the service's pool settings (generic plans)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await pool.fetchval(_OLD_PAGE, *args)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(n: int, concurrency: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    """Run call(0..n-1) with `concurrency` workers; each call's latency in ms."""
    latencies: list[float] = []
    next_i = iter(range(n))

    async def worker() -> None:
        for i in next_i:
            t0 = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, path: str, figure: str, baseline: str, target: str, ok: bool) -> None:
        self.rows.append((path, figure, baseline, target, "pass" if ok else "MISS"))
        print(f"  {path}: {figure} (baseline {baseline}) target {target}: {'pass' if ok else 'MISS'}", flush=True)

    def print(self) -> None:
        print("\n| path | figure | baseline | target | |\n|---|---|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


async def run(args: argparse.Namespace) -> None:
    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_scale_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server, name)
    pool = await create_pool(dsn, min_size=4, max_size=20)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        print(f"seeding {args.journeys:,} journeys into {name} ...", flush=True)
        if args.seed == "bulk":
            events, seconds, facts = await seed_bulk(pool, args.journeys, dsn=dsn, workers=args.rebuild_workers)
        else:
            events, seconds, facts = await seed(pool, args.journeys)
        size = await pool.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        rate = events / seconds
        print(f"seeded ({args.seed}) {events:,} events in {seconds:.0f} s ({rate:,.0f} events/s); mix {facts['mix']}")
        print(f"database size: {size}", flush=True)
        await pool.execute("VACUUM ANALYZE")
        table = Table()
        await measure_http(pool, args, facts, table)
        await measure_feed(pool, args, table)
        await measure_rebuild(pool, table, dsn=dsn, workers=args.rebuild_workers)
        table.print()
    finally:
        await pool.close()
        if not args.keep:
            await drop_database(server, name)


async def measure_http(
    pool: asyncpg.Pool[asyncpg.Record], args: argparse.Namespace, facts: dict[str, Any], table: Table
) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": ROOT / ".data" / "bench",
            "TALENT_VAULT_KEY": base64.b64encode(os.urandom(32)).decode(),
            "TALENT_RATE_LIMIT_REQUESTS": "10000000/minute",
        }
    )
    # Reads only: no Temporal client is needed (none of these routes sends a command).
    resources = bootstrap.resources(settings, pool=pool, temporal=cast(Any, None), authenticator=Authenticator(TOKENS))
    app = Timed(create_app(resources))
    config = uvicorn.Config(cast(Any, app), host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    n, conc = args.requests, args.concurrency
    ids = [
        r["journey_id"] for r in await pool.fetch("SELECT journey_id FROM journey_status ORDER BY random() LIMIT 2000")
    ]
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120) as http:

            async def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
                try:
                    response = await http.get(path, headers=headers)
                except httpx.TransportError:  # a connection dropped under load: once more, on a new one
                    response = await http.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
                return response

            async def path_times(
                kind: str, paths: list[str], headers: dict[str, str] | None, count: int
            ) -> tuple[list[float], list[float]]:
                """HTTP latencies at `--concurrency` clients, and server-side times of the same requests
                sent one at a time (so the server-side figure is the route's, not the event loop's queue,
                which the clients in this process share)."""

                async def call(i: int) -> None:
                    await get(paths[i % len(paths)], headers)

                app.kind = f"{kind} (concurrent)"
                latencies = await measure(count, conc, call)
                app.kind = kind
                await measure(max(10, count // 2), 1, call)
                return latencies, app.times[kind]

            # Warm up both paths (connections, prepared statements).
            await measure(200, conc, lambda i: get("/healthz"))
            await measure(200, conc, lambda i: get(f"/v1/journeys/{ids[i % len(ids)]}", COORD_AUTH))
            health, health_server = await path_times("healthz", ["/healthz"], None, n)
            reads, server_reads = await path_times("journey", [f"/v1/journeys/{i}" for i in ids], COORD_AUTH, n)
            table.add(
                "GET /v1/journeys/{id} p99 over HTTP",
                f"{pct(reads, 0.99):.1f} ms (p50 {statistics.median(reads):.1f})",
                f"/healthz p99 {pct(health, 0.99):.1f} ms (p50 {statistics.median(health):.1f})",
                "<= 2x /healthz p99",
                pct(reads, 0.99) <= 2 * pct(health, 0.99),
            )
            table.add(
                "GET /v1/journeys/{id} server-side p99",
                f"{pct(server_reads, 0.99):.2f} ms",
                f"/healthz server-side p99 {pct(health_server, 0.99):.2f} ms",
                "< 10 ms",
                pct(server_reads, 0.99) < 10,
            )
            cohort = facts["cohort"]
            filters = {
                "cohort_id": f"cohort_id={cohort}",
                "at_risk": "at_risk=true",
                "state": "state=active",
            }
            old_args = {
                "cohort_id": ("coordinator", "p-coord", cohort, None, None, None, 200),
                "at_risk": ("coordinator", "p-coord", None, None, True, None, 200),
                "state": ("coordinator", "p-coord", None, "active", None, None, 200),
            }
            for label, query in filters.items():
                _, times = await path_times(
                    f"list {label}", [f"/v1/journeys?{query}&limit=200"], COORD_AUTH, max(20, n // 10)
                )
                before = await old_page_times(pool, old_args[label], max(10, n // 20))
                table.add(
                    f"list page of 200, {label}",
                    f"server-side p95 {pct(times, 0.95):.1f} ms",
                    f"before (old query) p95 {pct(before, 0.95):.1f} ms; /healthz {pct(health_server, 0.95):.2f} ms",
                    "< 50 ms",
                    pct(times, 0.95) < 50,
                )
            # A leader's own list: the five journeys they lead, found by the scope's index.
            _, times = await path_times(
                "leader list", ["/v1/journeys?limit=200"], {"Authorization": "Bearer scale-leader"}, max(20, n // 10)
            )
            before = await old_page_times(
                pool, ("leader", facts["leader"], None, None, None, None, 200), max(10, n // 20)
            )
            table.add(
                "a leader's own list (5 journeys)",
                f"server-side p95 {pct(times, 0.95):.1f} ms",
                f"before (old query alone) p95 {pct(before, 0.95):.1f} ms",
                "< 50 ms",
                pct(times, 0.95) < 50,
            )
            # The dashboard's cohort page, signed in as the coordinator. The session cookie is
            # Secure, which httpx keeps for https only: send it by hand.
            login = await http.post("/dashboard/login", data={"token": "scale-coordinator", "next": "/dashboard/"})
            if login.status_code != 303:
                raise RuntimeError(f"dashboard login: {login.status_code}")
            session = login.headers["set-cookie"].split(";", 1)[0]
            http.cookies.clear()
            pages, page_server = await path_times(
                "dashboard cohort", [f"/dashboard/cohorts/{cohort}"], {"Cookie": session}, max(10, n // 25)
            )
            table.add(
                f"dashboard cohort page ({facts['cohort_size']:,} journeys) p95",
                f"{pct(pages, 0.95):.0f} ms at {conc} clients; {pct(page_server, 0.95):.0f} ms one at a time",
                "-",
                "< 250 ms",
                pct(page_server, 0.95) < 250,
            )
            app.kind = "kpis"
            kpis = await measure(5, 1, lambda i: get(f"/v1/programmes/{facts['programme']}/kpis", HR_AUTH))
            t0 = time.perf_counter()
            old = await kpis_view.programme_kpis_from_events(pool, facts["programme"])
            old_ms = (time.perf_counter() - t0) * 1000
            new = (await get(f"/v1/programmes/{facts['programme']}/kpis", HR_AUTH)).json()
            same = old is not None and old.model_dump(mode="json", exclude={"as_of"}) == {
                k: v for k, v in new.items() if k != "as_of"
            }
            table.add(
                f"programme KPIs ({args.journeys:,} journeys)",
                f"{statistics.median(kpis):.0f} ms median of 5",
                f"computed from the events: {old_ms:,.0f} ms{'' if same else ' (RESULTS DIFFER)'}",
                "< 500 ms",
                statistics.median(kpis) < 500 and same,
            )
    finally:
        server.should_exit = True
        await serving


async def measure_feed(pool: asyncpg.Pool[asyncpg.Record], args: argparse.Namespace, table: Table) -> None:
    """Paging the HR feed (as the route builds it, 1,000 a page) against a raw keyset scan of the same rows."""
    from api.routers.feed import feed_page_json

    store = EventStore(pool)
    limit = 1000
    total = min(args.feed_events, await pool.fetchval("SELECT count(*) FROM events"))

    async def feed() -> float:
        t0 = time.perf_counter()
        after, seen = "0", 0
        while seen < total:
            page = await feed_page_json(store, after, limit)
            if page.count == 0:
                break
            seen += page.count
            after = page.next
        return seen / (time.perf_counter() - t0)

    async def raw_scan() -> float:
        t0 = time.perf_counter()
        position, raw = 0, 0
        async with pool.acquire() as conn:
            while raw < total:
                rows = await conn.fetch(
                    "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, "
                    "data::text, metadata::text, occurred_at, recorded_at FROM events "
                    "WHERE global_position > $1 ORDER BY global_position LIMIT $2",
                    position,
                    limit,
                )
                if not rows:
                    break
                raw += len(rows)
                position = rows[-1]["global_position"]
        return raw / (time.perf_counter() - t0)

    # Whichever runs first reads the rows from disk and leaves them cached for the other: read them
    # once untimed, then time each twice, alternating, and keep each one's best.
    await raw_scan()
    rates = [(await feed(), await raw_scan()) for _ in range(2)]
    feed_rate = max(f for f, _ in rates)
    raw_rate = max(r for _, r in rates)
    seen = total
    table.add(
        f"HR feed, paging {seen:,} events",
        f"{feed_rate:,.0f} events/s ({feed_rate / raw_rate:.2f}x)",
        f"raw keyset scan {raw_rate:,.0f} events/s",
        ">= 0.5x raw",
        feed_rate >= 0.5 * raw_rate,
    )


async def measure_rebuild(pool: asyncpg.Pool[asyncpg.Record], table: Table, *, dsn: str, workers: int) -> None:
    """Rebuilding every read model against a raw scan of the events it reads."""
    t0 = time.perf_counter()
    raw = 0
    async with pool.acquire() as conn, conn.transaction():
        cursor = conn.cursor(
            "SELECT stream_id, event_type, schema_version, data::text FROM events "
            "WHERE stream_id LIKE 'journey-%' ORDER BY stream_id, stream_version",
            prefetch=5000,
        )
        async for _ in cursor:
            raw += 1
    raw_rate = raw / (time.perf_counter() - t0)
    report = await EventStore(pool).rebuild_read_models(workers=workers, dsn=dsn)
    rate = report.events / report.seconds
    table.add(
        f"rebuild every read model ({report.events:,} events, {workers} process(es))",
        f"{rate:,.0f} events/s ({rate / raw_rate:.2f}x)",
        f"raw scan {raw_rate:,.0f} events/s",
        ">= 100,000 events/s or >= 0.3x raw",
        rate >= 100_000 or rate >= 0.3 * raw_rate,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=500, help="requests per HTTP measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--feed-events", type=int, default=200_000, help="events to page through the feed")
    parser.add_argument(
        "--seed",
        choices=("append", "bulk"),
        default="bulk",
        help="append: through EventStore.append (16 writers); bulk: COPY in global order, then a rebuild",
    )
    parser.add_argument(
        "--rebuild-workers",
        type=int,
        default=1,
        help="processes that fold events in a read-model rebuild (1: in this process; on 2 loaded cores 2 was "
        "no faster)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    bootstrap.configure(Settings.model_validate({"TALENT_LOG_FORMAT": "console"}), level="WARNING")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
