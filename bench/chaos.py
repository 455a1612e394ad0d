"""Faults from outside, under HTTP load: worker SIGKILLs, PostgreSQL crash-restarts, Temporal kills.

The harness runs the real processes: a private PostgreSQL cluster in a temporary directory (never the
shared server: it is crash-restarted with `pg_ctl stop -m immediate`), the Temporal dev server with a
database file (SIGKILLed and started again on the same port and file), the worker and the API as
subprocesses (`talent worker`, `talent api`), an SMTP sink (aiosmtpd) and a webhook receiver. Clients
send each command with an Idempotency-Key and retry it on 503 and on connection errors, as a careful
client would. Afterwards it checks what must hold and prints the figures:

    .venv/bin/python -m bench.chaos                      # 20 worker kills, 5 PG crashes, 3 Temporal kills
    .venv/bin/python -m bench.chaos --journeys 4 --commands 40 --worker-kills 2 --pg-crashes 1 --temporal-kills 1

tests/integration/test_chaos.py runs the small version in CI through `run_chaos`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import email
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.notify import RESENT_AFTER_UNKNOWN_OUTCOME
from api.auth import TokenEntry, write_tokens_file
from bench.support import reference_cohort, reference_programme
from cli.dev.temporal import dev_server_command
from domain.events import stream_id_for
from infra.devserver import temporal_binary
from store.db import bind_instance, key_id, migrate
from store.eventstore import EventStore
from store.projection import status_row
from store.vault import PeopleVault, PersonData
from workers.worker import free_port, register_search_attributes
from workflows.names import journey_workflow_id

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
NAMESPACE = "default"


_T0 = time.monotonic()


def _say(text: str) -> None:
    print(f"chaos {time.monotonic() - _T0:6.1f} s: {text}", file=sys.stderr, flush=True)


def _tail(log: Path) -> str:
    return log.read_bytes()[-1500:].decode(errors="replace")


async def _listening(
    port: int, *, within: float, alive: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + within
    while True:
        if alive is not None and alive.poll() is not None:
            tail = _tail(log) if log is not None else ""
            raise RuntimeError(f"{alive.args!r:.80} exited ({alive.returncode}) before listening on {port}: {tail}")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port} after {within:.0f} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def _stop(process: subprocess.Popen[bytes] | None, *, within: float = 15) -> None:
    """SIGTERM, then SIGKILL: only the process this harness started."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# -- a private PostgreSQL ----------------------------------------------------------------------------


def _pg_bin() -> Path:
    """The directory of initdb and pg_ctl: the Debian packages', else the `pgserver` package's."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary directory, on a free port, for crashing.

    As root it runs as the `postgres` system user (PostgreSQL refuses to run as root).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pgdata = base / "pgdata"
        self.port = free_port()
        self.bin = _pg_bin()
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            base.chmod(0o755)
            shutil.chown(base, user=self._user)

    @property
    def dsn(self) -> str:
        """The `talent` database on it."""
        return f"postgresql://postgres@{HOST}:{self.port}/talent"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            check=False,
            timeout=120,
            user=self._user,
            cwd=self.base,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def init(self) -> None:
        """initdb (trust auth, user postgres) and start."""
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        """Start and wait until it accepts connections (crash recovery first, after an immediate stop)."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses={HOST} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.base / "postgres.log"), "-o", options, "-w", "start")

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every backend gone at once, no checkpoint; recovery on next start."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "stop")

    def stop(self) -> None:
        """A fast shutdown, if it runs."""
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "stop")

    async def create(self, vault_key: bytes) -> None:
        """The `talent` database, migrated and bound to `vault_key`."""
        admin = await asyncpg.connect(self.dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute("CREATE DATABASE talent")
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate(conn)
            await bind_instance(conn, key_id(vault_key))
        finally:
            await conn.close()


# -- the Temporal dev server with a database file ----------------------------------------------------


class DevServer:
    """`temporal server start-dev --db-filename`, killed and started again on the same port and file."""

    def __init__(self, base: Path) -> None:
        self.db_file = base / "temporal.sqlite"
        self.log_file = base / "temporal.log"
        self.port = free_port()
        self.ui_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """Its gRPC address."""
        return f"{HOST}:{self.port}"

    async def start(self) -> None:
        """Start and wait until it listens."""
        self.process = self._spawn()
        await _listening(self.port, within=60, alive=self.process, log=self.log_file)

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = dev_server_command(
            temporal_binary(), port=self.port, ui_port=self.ui_port, namespace=NAMESPACE, db_file=self.db_file
        )
        with self.log_file.open("ab") as out:
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL: no graceful anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop it for good."""
        _stop(self.process)


# -- receivers -------------------------------------------------------------------------------------


class MailSink:
    """An SMTP server (aiosmtpd) counting the Message-IDs it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self.message_ids: collections.Counter[str] = collections.Counter()
        self._controller = Controller(self, hostname=HOST, port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message's id."""
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        with self._lock:
            self.message_ids[str(message["Message-ID"]).strip("<>").split("@")[0]] += 1
        return "250 Message accepted for delivery"

    def start(self) -> None:
        """Listen."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()


class HookSink:
    """A webhook receiver: 204 for every POST, counting `webhook-id`s (it deduplicates by them)."""

    def __init__(self) -> None:
        self.ids: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()
        ids = self.ids

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    ids[self.headers.get("webhook-id") or "?"] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Listen."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


# -- the run -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosConfig:
    """How much of everything (the defaults are the long run's)."""

    worker_kills: int = 20
    pg_crashes: int = 5
    temporal_kills: int = 3
    journeys: int = 20
    commands: int = 420
    #: Journeys per cohort: their approvals queue for the cohort's seat lock (service/journeys.py
    #: `_seat_taken`; any number at once completes, tests/integration/test_recovery.py).
    journeys_per_cohort: int = 5
    #: Seconds between two faults.
    fault_spacing: float = 2.0
    #: Seconds a client waits between its commands, so that the load spans the faults.
    pace: float = 0.5
    #: Seconds PostgreSQL and Temporal stay down before they are started again.
    downtime: float = 0.5
    #: Seconds to wait, after the load, for every notification to be delivered.
    settle_within: float = 180.0
    #: Seconds a command may take, retries included, before it counts as not acknowledged.
    load_within: float = 300.0
    seed: int = 13


@dataclass
class ChaosReport:
    """What the run did and what it found."""

    worker_kills: int = 0
    pg_crashes: int = 0
    temporal_kills: int = 0
    journeys: int = 0
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    #: Commands stored once whose client was answered with a refusal (or nothing) in the end.
    applied_unacknowledged: int = 0
    stale: int = 0
    unrecovered: int = 0
    server_errors: int = 0
    unavailable_answers: int = 0
    retries: int = 0
    refused: int = 0
    mails: int = 0
    mail_duplicates: int = 0
    mails_resent: int = 0
    hooks: int = 0
    hook_redeliveries: int = 0
    #: Exits of the worker or the API that nobody asked for (a supervisor started them again).
    process_exits: int = 0
    readyz_down_seen: int = 0
    readyz_final: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> str:
        """One line per figure."""
        return "\n".join(
            [
                f"faults: {self.worker_kills} worker SIGKILLs, {self.pg_crashes} PostgreSQL crash-restarts, "
                f"{self.temporal_kills} Temporal dev-server kills",
                f"journeys: {self.journeys}; commands acknowledged: {self.acknowledged} "
                f"({self.retries} client retries, {self.unavailable_answers} answers 503, {self.refused} refused)",
                f"lost: {self.lost}; duplicated: {self.duplicated}; applied but answered refused: "
                f"{self.applied_unacknowledged}; stale read models: {self.stale}; "
                f"unrecovered journeys: {self.unrecovered}; 5xx other than 503: {self.server_errors}",
                f"e-mails: {self.mails} delivered, {self.mail_duplicates} received twice "
                f"({self.mails_resent} re-sent after an unknown outcome); webhooks: {self.hooks} delivered, "
                f"{self.hook_redeliveries} redelivered (deduplicated by webhook-id)",
                f"readyz: down seen {self.readyz_down_seen} times, finally {self.readyz_final}; "
                f"processes that exited by themselves: {self.process_exits}; {self.seconds:.1f} s",
                *(f"PROBLEM: {p}" for p in self.problems),
            ]
        )


class _Load:
    """HTTP clients sending commands with Idempotency-Keys, retrying on 503 and connection errors."""

    def __init__(self, http: httpx.AsyncClient, report: ChaosReport, *, deadline: float) -> None:
        self.http = http
        self.report = report
        self.deadline = deadline
        #: journey id -> event type -> acknowledged commands that must have made one event each.
        self.acked: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        #: journey id -> event type -> commands answered with a refusal in the end (or never answered).
        self.refused: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    async def send(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response | None:
        """Until an answer that is not 503 (or the deadline): the same Idempotency-Key every time."""
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        while time.monotonic() < self.deadline:
            try:
                response = await self.http.request(method, path, json=body, headers=headers, timeout=30)
            except httpx.TransportError:
                self.report.retries += 1
                await asyncio.sleep(0.3)
                continue
            if response.status_code == 503:
                self.report.unavailable_answers += 1
                if "retry-after" not in response.headers:
                    self.report.problems.append(f"503 without Retry-After on {method} {path}")
                self.report.retries += 1
                await asyncio.sleep(0.3)  # Retry-After says 5 s; a test cannot wait that long each time
                continue
            if response.status_code >= 500:
                self.report.server_errors += 1
                self.report.problems.append(f"{response.status_code} on {method} {path}: {response.text[:300]}")
                self.report.retries += 1
                await asyncio.sleep(0.3)
                continue
            return response
        self.report.problems.append(f"no answer but 503 or errors before the deadline: {method} {path}")
        return None

    async def journey(
        self, i: int, run: str, cohort_id: str, commands: int, tokens: dict[str, str], pace: float
    ) -> str | None:
        """Nominate, approve, then pause and resume in turn: `commands` commands in all."""
        nomination = {
            "cohort_id": cohort_id,
            "motivation": "chaos",
            "talent": {"person_id": f"p-{run}-t{i}", "name": f"Talent {i}", "email": f"t{i}-{run}@example.org"},
            "nearest_leader": {"person_id": f"p-{run}-l{i}", "name": f"Leader {i}", "email": f"l{i}-{run}@example.org"},
        }
        created = await self.send("POST", "/v1/journeys", tokens["hr"], nomination)
        if created is None or created.status_code not in (200, 201):
            self.report.refused += 1
            self.report.problems.append(f"nomination {i} refused: {created and created.text[:300]}")
            return None
        journey_id: str = created.json()["journey_id"]
        self.report.acknowledged += 1
        self.acked[journey_id]["TalentNominated"] += 1
        steps: list[tuple[str, dict[str, Any], str]] = [("decision", {"decision": "approve"}, "NominationApproved")]
        for n in range(commands - 2):
            steps.append(
                ("pause", {"reason": "leave"}, "JourneyPaused") if n % 2 == 0 else ("resume", {}, "JourneyResumed")
            )
        for route, body, event_type in steps:
            await asyncio.sleep(pace)
            answer = await self.send("POST", f"/v1/journeys/{journey_id}/{route}", tokens["coordinator"], body)
            if answer is None or not answer.is_success:
                self.report.refused += 1
                self.refused[journey_id][event_type] += 1
                self.report.problems.append(f"{route} on {journey_id} refused: {answer and answer.text[:300]}")
                continue
            self.report.acknowledged += 1
            self.acked[journey_id][event_type] += 1
            # A read now and then, which must never be a 500 either.
            await self.send("GET", f"/v1/journeys/{journey_id}", tokens["coordinator"])
        return journey_id


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="talent-chaos-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


class _Processes:
    """The worker and the API as subprocesses, with their environment and logs."""

    def __init__(self, base: Path, env: dict[str, str], api_port: int) -> None:
        self.base = base
        self.env = env
        self.api_port = api_port
        self.worker: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None

    def _spawn(self, command: str, log: str) -> subprocess.Popen[bytes]:
        with (self.base / log).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "cli.main", command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", "worker.log")

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    async def start_api(self) -> None:
        self.api = self._spawn("api", "api.log")
        await _listening(self.api_port, within=60, alive=self.api, log=self.base / "api.log")

    def stop(self) -> None:
        _stop(self.api)
        _stop(self.worker)

    async def supervise(self, report: ChaosReport, stop: asyncio.Event) -> None:
        """Start again a worker or an API that exited by itself, as systemd or Kubernetes would."""
        while not stop.is_set():
            if self.worker is not None and self.worker.poll() is not None:
                report.process_exits += 1
                _say(f"worker exited by itself ({self.worker.returncode}): started again")
                self.start_worker()
            if self.api is not None and self.api.poll() is not None:
                report.process_exits += 1
                _say(f"api exited by itself ({self.api.returncode}): started again")
                self.api = self._spawn("api", "api.log")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)


async def _faults(
    config: ChaosConfig, report: ChaosReport, pg: PrivatePostgres, temporal: DevServer, procs: _Processes
) -> None:
    """The faults, shuffled (seeded), one every `fault_spacing` seconds."""
    plan = ["worker"] * config.worker_kills + ["postgres"] * config.pg_crashes + ["temporal"] * config.temporal_kills
    random.Random(config.seed).shuffle(plan)
    for fault in plan:
        await asyncio.sleep(config.fault_spacing)
        _say(fault)
        if fault == "worker":
            procs.kill_worker()
            report.worker_kills += 1
            procs.start_worker()
        elif fault == "postgres":
            await asyncio.to_thread(pg.crash)
            report.pg_crashes += 1
            await asyncio.sleep(config.downtime)
            await asyncio.to_thread(pg.start)
        else:
            temporal.kill()
            report.temporal_kills += 1
            await asyncio.sleep(config.downtime)
            await temporal.start()


async def _watch_readyz(http: httpx.AsyncClient, report: ChaosReport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            answer = await http.get("/readyz", timeout=5)
            if answer.status_code == 503:
                report.readyz_down_seen += 1
            elif answer.status_code != 200:
                report.server_errors += 1
                report.problems.append(f"/readyz answered {answer.status_code}")
        except httpx.TransportError:
            pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.25)


async def _settle(pool: asyncpg.Pool[asyncpg.Record], journey_ids: list[str], within: float) -> bool:
    """Until no notification of these journeys is pending, or `within` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pending = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE journey_id = ANY($1::text[]) AND status = 'pending'", journey_ids
            )
            if pending == 0:
                return True
        await asyncio.sleep(0.5)
    return False


async def _check(
    report: ChaosReport,
    pool: asyncpg.Pool[asyncpg.Record],
    temporal: Client,
    load: _Load,
    mails: MailSink,
    hooks: HookSink,
) -> None:
    """What must hold after the faults, written into `report`."""
    store = EventStore(pool)
    journey_ids = sorted(load.acked)
    for journey_id in journey_ids:
        stream = stream_id_for(journey_id)
        rows = await pool.fetch(
            "SELECT stream_version, event_type FROM events WHERE stream_id = $1 ORDER BY stream_version", stream
        )
        versions = [r["stream_version"] for r in rows]
        if versions != list(range(1, len(rows) + 1)):
            report.problems.append(f"{stream}: versions not contiguous: {versions}")
        stored = collections.Counter(r["event_type"] for r in rows)
        for event_type, acked in load.acked[journey_id].items():
            report.lost += max(0, acked - stored[event_type])
            # More stored than acknowledged: a command applied whose answer the client never got
            # (its retry refused), up to the refusals; beyond them, a duplicate.
            extra = max(0, stored[event_type] - acked)
            unanswered = min(extra, load.refused[journey_id][event_type])
            report.applied_unacknowledged += unanswered
            report.duplicated += extra - unanswered
            if stored[event_type] != acked:
                report.problems.append(f"{journey_id}: {acked} {event_type} acknowledged, {stored[event_type]} stored")
        state = await store.load(journey_id)
        row = await pool.fetchrow(
            "SELECT version, state, status::text AS status FROM journey_status WHERE journey_id = $1", journey_id
        )
        if state is None or row is None:
            report.stale += 1
            report.problems.append(f"{journey_id}: no state or no read model")
        else:
            fresh = status_row(stream, state)
            if (row["version"], row["state"], json.loads(row["status"])) != (
                len(rows),
                fresh.state,
                json.loads(fresh.status),
            ):
                report.stale += 1
                report.problems.append(f"{journey_id}: read model at version {row['version']} of {len(rows)}")
        described = await temporal.get_workflow_handle(journey_workflow_id(journey_id)).describe()
        if described.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
            report.unrecovered += 1
            report.problems.append(f"{journey_id}: workflow {described.status}")
    outbox = await pool.fetch(
        "SELECT notification_id::text AS id, channel, status, last_error FROM outbox "
        "WHERE journey_id = ANY($1::text[])",
        journey_ids,
    )
    not_done = [r for r in outbox if r["status"] not in ("delivered", "skipped")]
    if not_done:
        report.problems.append(
            f"{len(not_done)} notifications not delivered: {sorted({r['status'] for r in not_done})}"
        )
    for channel, received in (("email", mails.message_ids), ("webhook", hooks.ids)):
        delivered = {r["id"] for r in outbox if r["channel"] == channel and r["status"] == "delivered"}
        if set(received) != delivered:
            report.problems.append(
                f"{channel}: {len(delivered - set(received))} delivered but never received, "
                f"{len(set(received) - delivered)} received but not marked delivered"
            )
    report.mails = len(mails.message_ids)
    report.mail_duplicates = sum(n - 1 for n in mails.message_ids.values())
    report.mails_resent = sum(
        1 for r in outbox if r["channel"] == "email" and r["last_error"] == RESENT_AFTER_UNKNOWN_OUTCOME
    )
    if report.mail_duplicates > report.mails_resent:
        report.problems.append(
            f"{report.mail_duplicates} e-mails received twice, only {report.mails_resent} re-sends recorded"
        )
    report.hooks = len(hooks.ids)
    report.hook_redeliveries = sum(n - 1 for n in hooks.ids.values())


@contextlib.asynccontextmanager
async def _pool(dsn: str) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


def _keep_logs(base: Path) -> None:
    """Copy the logs to TALENT_CHAOS_KEEP_LOGS, if set, before the work directory goes."""
    if not os.environ.get("TALENT_CHAOS_KEEP_LOGS"):
        return
    kept = Path(os.environ["TALENT_CHAOS_KEEP_LOGS"])
    kept.mkdir(parents=True, exist_ok=True)
    for name in ("api.log", "worker.log", "temporal.log", "postgres.log"):
        with contextlib.suppress(OSError):
            shutil.copy(base / name, kept / name)


async def run_chaos(config: ChaosConfig) -> ChaosReport:
    """Run the faults under load and check the outcome; the report's `problems` lists what failed."""
    started = time.monotonic()
    report = ChaosReport()
    run = uuid.uuid4().hex[:6]
    vault_key = os.urandom(32)
    with _workdir() as base:
        pg = PrivatePostgres(base)
        temporal = DevServer(base)
        mails, hooks = MailSink(), HookSink()
        api_port = free_port()
        tokens = {"coordinator": f"coord-{run}", "hr": f"hr-{run}"}
        tokens_file = base / "tokens.json"
        write_tokens_file(
            tokens_file,
            [
                TokenEntry(
                    token=tokens["coordinator"], role="coordinator", person_id="p-coord", id="chaos-coordinator"
                ),
                TokenEntry(token=tokens["hr"], role="hr_system", id="chaos-hr"),
            ],
        )
        env = {
            **os.environ,
            "DATABASE_URL": pg.dsn,
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_NAMESPACE": NAMESPACE,
            "TALENT_TASK_QUEUE": f"chaos-{run}",
            "TALENT_VAULT_KEY": base64.b64encode(vault_key).decode(),
            "TALENT_SMTP_HOST": HOST,
            "TALENT_SMTP_PORT": str(mails.port),
            "TALENT_WEBHOOK_URL": hooks.url,
            "TALENT_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"chaos-webhook-signing-key-32b!!!").decode(),
            "TALENT_TOKENS_FILE": str(tokens_file),
            "TALENT_API_HOST": HOST,
            "TALENT_API_PORT": str(api_port),
            "TALENT_RATE_LIMIT_REQUESTS": "100000/minute",
            "TALENT_RATE_LIMIT_NOMINATIONS": "100000/day",
            "TALENT_LOG_FORMAT": "json",
            "TALENT_LOG_LEVEL": "WARNING",
            "TALENT_DATA_DIR": str(base / "data"),
        }
        procs = _Processes(base, env, api_port)
        try:
            await asyncio.gather(asyncio.to_thread(pg.init), temporal.start())
            await pg.create(vault_key)
            async with _pool(pg.dsn) as pool:
                coordinator = PersonData(name="Coordinator", email=f"coordinator-{run}@example.org")
                await PeopleVault(pool, vault_key).put_person("p-coord", coordinator)
            client = await Client.connect(temporal.address, namespace=NAMESPACE, data_converter=pydantic_data_converter)
            await register_search_attributes(client, NAMESPACE)
            mails.start()
            hooks.start()
            procs.start_worker()
            await procs.start_api()
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{api_port}") as http:
                load = _Load(http, report, deadline=time.monotonic() + config.load_within)
                programme = reference_programme().model_copy(update={"id": f"chaos-{run}"})
                cohorts = [
                    reference_cohort(
                        programme, cohort_id=f"chaos-{run}-{n}", starts_on=date.today() + timedelta(days=60)
                    )
                    for n in range(-(-config.journeys // config.journeys_per_cohort))
                ]
                for path, body in [("/v1/programmes", programme), *(("/v1/cohorts", x) for x in cohorts)]:
                    answer = await load.send("POST", path, tokens["coordinator"], body.model_dump(mode="json"))
                    if answer is None or not answer.is_success:
                        raise RuntimeError(f"{path}: {answer and answer.text}")
                per_journey = max(2, round(config.commands / config.journeys))
                stop_watching = asyncio.Event()
                watcher = asyncio.create_task(_watch_readyz(http, report, stop_watching))
                supervisor = asyncio.create_task(procs.supervise(report, stop_watching))
                faults = asyncio.create_task(_faults(config, report, pg, temporal, procs))
                _say("load")
                ids = await asyncio.gather(
                    *(
                        load.journey(
                            i, run, cohorts[i // config.journeys_per_cohort].cohort_id, per_journey, tokens, config.pace
                        )
                        for i in range(config.journeys)
                    )
                )
                _say(f"load done: {report.acknowledged} acknowledged")
                await faults
                report.journeys = sum(1 for j in ids if j is not None)
                async with _pool(pg.dsn) as pool:
                    if not await _settle(pool, sorted(load.acked), config.settle_within):
                        report.problems.append(f"notifications still pending after {config.settle_within:.0f} s")
                    _say("settled")
                    stop_watching.set()
                    await watcher
                    await supervisor
                    ready = await http.get("/readyz")
                    report.readyz_final = f"{ready.status_code} {ready.json().get('checks')}"
                    if ready.status_code != 200:
                        report.problems.append(f"not ready after the faults: {ready.text}")
                    fresh = await Client.connect(
                        temporal.address, namespace=NAMESPACE, data_converter=pydantic_data_converter
                    )
                    await _check(report, pool, fresh, load, mails, hooks)
            unhandled = [
                line.decode(errors="replace")
                for line in (base / "api.log").read_bytes().splitlines()
                if b"unhandled_error" in line
            ]
            report.problems += [f"api.log: {line[:200]} ... {line[-900:]}" for line in unhandled]
        finally:
            procs.stop()
            temporal.stop()
            with contextlib.suppress(Exception):
                mails.stop()
            with contextlib.suppress(Exception):
                hooks.stop()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(pg.stop)
            if report.problems:
                _keep_logs(base)
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    """Run it and print the figures; 1 if anything did not hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = ChaosConfig()
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--pg-crashes", type=int, default=defaults.pg_crashes)
    parser.add_argument("--temporal-kills", type=int, default=defaults.temporal_kills)
    parser.add_argument("--journeys", type=int, default=defaults.journeys)
    parser.add_argument("--commands", type=int, default=defaults.commands)
    parser.add_argument("--journeys-per-cohort", type=int, default=defaults.journeys_per_cohort)
    parser.add_argument("--fault-spacing", type=float, default=defaults.fault_spacing)
    parser.add_argument("--pace", type=float, default=defaults.pace)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    config = ChaosConfig(
        worker_kills=args.worker_kills,
        pg_crashes=args.pg_crashes,
        temporal_kills=args.temporal_kills,
        journeys=args.journeys,
        commands=args.commands,
        journeys_per_cohort=args.journeys_per_cohort,
        fault_spacing=args.fault_spacing,
        pace=args.pace,
        seed=args.seed,
    )
    report = asyncio.run(run_chaos(config))
    print(report.figures())
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
