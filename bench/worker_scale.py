"""Benchmark: the worker at scale, with `talent worker` processes on the Temporal dev server.

    .venv/bin/python bench/worker_scale.py memory [--open 300] [--step 100] [--cache 100]
    .venv/bin/python bench/worker_scale.py kill [--journeys 30] [--workers 3] [--scale 0.01]

`memory` starts `--open` journeys of examples/talent-ny-leder.yaml (nominated, waiting months for
approval) in steps of `--step` on one worker process whose workflow cache holds `--cache`
(TALENT_WORKER_MAX_CACHED_WORKFLOWS), and after each step prints the worker's resident set
(VmRSS of /proc/<pid>/status) and the growth per 1,000 open journeys: it grows while the cache
fills, then stays flat, because evicted journeys live only in Temporal's history until they
next wake. Full size: `--open 10000 --step 1000 --cache 1000`.

`kill` runs `--journeys` compressed journeys (approved, then never engaged, so every rung and the
closing fire on their own) on `--workers` worker processes sharing one task queue, SIGKILLs one of
them mid-run, and reports whether every journey closed, whether the outbox holds any notification
twice, and how many e-mails reached the SMTP sink twice (counted by Message-ID, which carries the
notification's id): only those the killed worker had sent but not yet marked delivered may be, and
the outbox marks them as resent after an unknown outcome. Full size: `--journeys 300`.
tests/integration/test_worker_scale.py runs a small one.

Both run on a throw-away database (dropped at the end) and a dev server with the dynamic config of
infra/devserver.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.notify import RESENT_AFTER_UNKNOWN_OUTCOME
from bench.support import COORD, compressed_cohort, compressed_programme, reference_cohort, reference_programme, scaled
from domain import commands as c
from infra.devserver import dev_server_args, temporal_binary
from infra.postgres import create_database, drop_database, server_dsn
from store.db import bind_instance, create_pool, key_id, migrate
from store.vault import PeopleVault, PersonData
from workers.worker import free_port
from workflows.client import JourneyHandle, execute, start_journey
from workflows.names import SEARCH_ATTRIBUTES

HOST = "127.0.0.1"


# -- the SMTP sink --------------------------------------------------------------------------------


class MailSink:
    """An aiosmtpd handler counting the Message-IDs of the messages it accepts."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = free_port()
        self._lock = threading.Lock()
        self.message_ids: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message_id = str(message_from_bytes(raw).get("Message-ID", "")).strip().strip("<>").split("@")[0]
        with self._lock:
            self.message_ids[message_id] += 1
        return "250 Message accepted for delivery"

    def counts(self) -> collections.Counter[str]:
        """How often each Message-ID (the notification's id) arrived."""
        with self._lock:
            return collections.Counter(self.message_ids)


@contextmanager
def mail_sink() -> Iterator[MailSink]:
    """An SMTP sink on 127.0.0.1, for the duration."""
    sink = MailSink()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# -- worker processes -----------------------------------------------------------------------------


def worker_env(
    *,
    database_url: str,
    temporal_address: str,
    task_queue: str,
    vault_key: bytes,
    data_dir: Path,
    smtp: tuple[str, int] | None = None,
    max_cached_workflows: int | None = None,
) -> dict[str, str]:
    """The environment of a `talent worker` process on `task_queue` (the database's own vault key)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TALENT_TASK_QUEUE": task_queue,
        "TALENT_VAULT_KEY": base64.b64encode(vault_key).decode(),
        "TALENT_LOG_FORMAT": "json",
        "TALENT_LOG_LEVEL": "WARNING",
        "TALENT_DATA_DIR": str(data_dir),
    }
    if smtp is not None:
        env["TALENT_SMTP_HOST"], env["TALENT_SMTP_PORT"] = smtp[0], str(smtp[1])
    if max_cached_workflows is not None:
        env["TALENT_WORKER_MAX_CACHED_WORKFLOWS"] = str(max_cached_workflows)
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A `talent worker` process, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not stop within 20 s."""
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def rss_kib(pid: int) -> int:
    """The resident set of process `pid` (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# -- the kill run, shared with tests/integration/test_worker_scale.py -----------------------------


@dataclass
class KillReport:
    """What a run with a killed worker found."""

    journeys: int
    states: collections.Counter[str]
    seconds: float
    mails: int
    mail_duplicates: int
    #: E-mails received twice whose notification the outbox marks as resent after an unknown
    #: outcome (sent by the killed worker, which died before it could record that it had): the
    #: Message-ID is the same, so the receiver's mail system sees one message.
    mail_duplicates_in_doubt: int
    most_copies: int
    outbox_delivered: int
    outbox_duplicates: int
    mails_unknown_to_outbox: int
    outbox_delivered_not_received: int
    outbox_not_final: int
    killed_pid: int
    survivors: list[int] = field(default_factory=list)


async def put_people(pool: asyncpg.Pool[asyncpg.Record], key: bytes, run: str) -> dict[str, str]:
    """A talent, a leader and a boss with e-mail addresses (and the coordinator p-coord) in the vault."""
    vault = PeopleVault(pool, key)
    people = {role: f"p-scale-{run}-{role}" for role in ("talent", "leader", "boss")}
    for role, person in people.items():
        await vault.put_person(person, PersonData(name=f"{role.title()} {run}", email=f"{role}-{run}@example.org"))
    await vault.put_person("p-coord", PersonData(name="Coordinator", email="coordinator@example.org"))
    return people


async def run_with_a_kill(
    client: Client,
    pool: asyncpg.Pool[asyncpg.Record],
    received_mail: Callable[[], collections.Counter[str]],
    workers: Sequence[subprocess.Popen[bytes]],
    *,
    people: dict[str, str],
    task_queue: str,
    journeys: int,
    scale: float,
    kill_after: float,
    within: float,
) -> KillReport:
    """Start and approve `journeys` compressed journeys, SIGKILL `workers[0]` after `kill_after`
    seconds, wait for every journey to end, then count states, outbox rows and the mails received
    (`received_mail`: how often each Message-ID, the notification's id, reached the SMTP server)."""
    run = uuid.uuid4().hex[:8]
    programme = scaled(compressed_programme(), scale)
    start = datetime.now(UTC) + timedelta(seconds=3)
    cohort = compressed_cohort(programme, start, cohort_id=f"scale-{run}")
    began = time.perf_counter()

    async def one(i: int) -> JourneyHandle:
        nomination = c.NominateTalent(
            actor_id=people["leader"],
            actor_role="leader",
            journey_id=f"scale-{run}-{i}",
            talent_id=people["talent"],
            nearest_leader_id=people["leader"],
            leaders_leader_id=people["boss"],
            programme=programme,
            cohort=cohort,
        )
        handle = await start_journey(client, nomination, task_queue=task_queue)
        await execute(handle, c.DecideNomination(**COORD, decision="approve"))
        return handle

    handles = await asyncio.gather(*(one(i) for i in range(journeys)))
    await asyncio.sleep(max(0.0, kill_after - (time.perf_counter() - began)))
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=within)
    seconds = time.perf_counter() - began
    # Deliveries run in the background of a journey and finish before it closes; the sink may
    # still be reading the last message.
    await asyncio.sleep(0.5)
    pattern = f"scale-{run}-%"
    outbox = await pool.fetch(
        "SELECT notification_id::text AS id, channel, status, last_error FROM outbox WHERE journey_id LIKE $1",
        pattern,
    )
    outbox_duplicates = await pool.fetchval(
        "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM outbox WHERE journey_id LIKE $1 "
        "GROUP BY event_id, channel, template, recipient_role, recipient_id) AS g",
        pattern,
    )
    delivered = {r["id"] for r in outbox if r["channel"] == "email" and r["status"] == "delivered"}
    received = received_mail()
    ours = {m: n for m, n in received.items() if m in {r["id"] for r in outbox}}
    resent = {r["id"] for r in outbox if r["last_error"] == RESENT_AFTER_UNKNOWN_OUTCOME}
    return KillReport(
        journeys=journeys,
        states=collections.Counter(r.state for r in results),
        seconds=seconds,
        mails=sum(ours.values()),
        mail_duplicates=sum(n - 1 for n in ours.values()),
        mail_duplicates_in_doubt=sum(n - 1 for m, n in ours.items() if m in resent),
        most_copies=max(ours.values(), default=0),
        outbox_delivered=len(delivered),
        outbox_duplicates=int(outbox_duplicates),
        mails_unknown_to_outbox=len(set(received) - {r["id"] for r in outbox}),
        outbox_delivered_not_received=len(delivered - set(ours)),
        outbox_not_final=sum(1 for r in outbox if r["status"] not in ("delivered", "skipped")),
        killed_pid=victim.pid,
        survivors=[w.pid for w in workers[1:] if w.poll() is None],
    )


# -- the benchmark --------------------------------------------------------------------------------


@asynccontextmanager
async def bench_database(key: bytes) -> AsyncIterator[tuple[str, asyncpg.Pool[asyncpg.Record]]]:
    """A throw-away migrated database bound to `key`, and a pool on it; dropped at the end."""
    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_wscale_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server, name)
    try:
        pool = await create_pool(dsn, min_size=2, max_size=10)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await bind_instance(conn, key_id(key))
            yield dsn, pool
        finally:
            await pool.close()
    finally:
        await drop_database(server, name)


async def wait_open(pool: asyncpg.Pool[asyncpg.Record], cohort_id: str, count: int, within: float) -> None:
    """Until `count` journeys of the cohort are stored (their nomination appended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stored = await pool.fetchval("SELECT count(*) FROM journey_status WHERE cohort_id = $1", cohort_id)
        if stored >= count:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{count} journeys of {cohort_id} not stored within {within:.0f} s")


async def memory(args: argparse.Namespace, client: Client, dsn: str, pool: asyncpg.Pool[Any], key: bytes) -> None:
    task_queue = f"wscale-{uuid.uuid4().hex[:6]}"
    log = ROOT / ".data" / "bench" / f"{task_queue}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = worker_env(
        database_url=dsn,
        temporal_address=client.service_client.config.target_host,
        task_queue=task_queue,
        vault_key=key,
        data_dir=log.parent,
        max_cached_workflows=args.cache,
    )
    worker = start_worker(env, log)
    programme = reference_programme()
    starts_on = (datetime.now(UTC) + timedelta(days=60)).date()
    cohort = reference_cohort(programme, cohort_id=f"open-{uuid.uuid4().hex[:6]}", starts_on=starts_on)
    semaphore = asyncio.Semaphore(100)

    async def nominate(i: int) -> None:
        async with semaphore:
            await start_journey(
                client,
                c.NominateTalent(
                    actor_id="p-l",
                    actor_role="leader",
                    journey_id=f"open-{task_queue}-{i}",
                    talent_id=f"p-o{i}",
                    nearest_leader_id="p-l",
                    programme=programme,
                    cohort=cohort,
                ),
                task_queue=task_queue,
            )

    try:
        await asyncio.sleep(3)
        # One journey through, so the worker has loaded everything it ever will before the base line.
        await nominate(-1)
        await wait_open(pool, cohort.cohort_id, 1, within=60)
        await asyncio.sleep(1)
        base = rss_kib(worker.pid)
        print(f"worker pid {worker.pid}, workflow cache {args.cache}, RSS with 1 open journey: {base / 1024:.0f} MiB")
        print(f"{'open':>7} {'RSS MiB':>8} {'growth MiB':>10} {'MiB per 1,000 open':>19} {'last step per 1,000':>20}")
        previous, opened = base, 0
        while opened < args.open:
            step = min(args.step, args.open - opened)
            began = time.perf_counter()
            await asyncio.gather(*(nominate(opened + i) for i in range(step)))
            opened += step
            await wait_open(pool, cohort.cohort_id, opened + 1, within=600)
            await asyncio.sleep(1)
            now = rss_kib(worker.pid)
            print(
                f"{opened:>7} {now / 1024:>8.0f} {(now - base) / 1024:>10.1f} "
                f"{(now - base) / 1024 * 1000 / opened:>19.1f} {(now - previous) / 1024 * 1000 / step:>20.1f}"
                f"   ({step / (time.perf_counter() - began):.0f} nominations/s)"
            )
            previous = now
    finally:
        stop_worker(worker)


async def kill(args: argparse.Namespace, client: Client, dsn: str, pool: asyncpg.Pool[Any], key: bytes) -> None:
    task_queue = f"wkill-{uuid.uuid4().hex[:6]}"
    log = ROOT / ".data" / "bench" / f"{task_queue}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with mail_sink() as sink:
        env = worker_env(
            database_url=dsn,
            temporal_address=client.service_client.config.target_host,
            task_queue=task_queue,
            vault_key=key,
            data_dir=log.parent,
            smtp=(sink.host, sink.port),
        )
        workers = [start_worker(env, log) for _ in range(args.workers)]
        try:
            people = await put_people(pool, key, uuid.uuid4().hex[:8])
            report = await run_with_a_kill(
                client,
                pool,
                sink.counts,
                workers,
                people=people,
                task_queue=task_queue,
                journeys=args.journeys,
                scale=args.scale,
                kill_after=args.kill_after,
                within=args.timeout,
            )
        finally:
            for worker in workers:
                stop_worker(worker)
    print(
        f"{report.journeys} journeys on {args.workers} workers, pid {report.killed_pid} SIGKILLed after "
        f"{args.kill_after:.0f} s: all ended in {report.seconds:.1f} s, states {dict(report.states)}"
    )
    print(
        f"e-mails received {report.mails} ({report.mail_duplicates} twice by Message-ID, "
        f"{report.mail_duplicates_in_doubt} of them resent after an outcome the killed worker never recorded, "
        f"none more than {report.most_copies} times; "
        f"{report.mails_unknown_to_outbox} unknown to the outbox); outbox: {report.outbox_delivered} delivered, "
        f"{report.outbox_duplicates} duplicate notifications, {report.outbox_delivered_not_received} delivered "
        f"but not received, {report.outbox_not_final} neither delivered nor skipped"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory", help="RSS per 1,000 open journeys on one worker with a bounded cache")
    mem.add_argument("--open", type=int, default=300)
    mem.add_argument("--step", type=int, default=100)
    mem.add_argument("--cache", type=int, default=100, help="TALENT_WORKER_MAX_CACHED_WORKFLOWS")
    kil = sub.add_parser("kill", help="workers sharing the load, one SIGKILLed mid-run")
    kil.add_argument("--journeys", type=int, default=30)
    kil.add_argument("--workers", type=int, default=3)
    kil.add_argument("--scale", type=float, default=0.01)
    kil.add_argument("--kill-after", type=float, default=6.0, help="seconds after the first start")
    kil.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    key = os.urandom(32)
    async with bench_database(key) as (dsn, pool):
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=temporal_binary(),
            search_attributes=SEARCH_ATTRIBUTES,
            dev_server_extra_args=dev_server_args(),
        )
        try:
            await (memory if args.what == "memory" else kill)(args, env.client, dsn, pool, key)
        finally:
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
