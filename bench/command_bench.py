"""Benchmark: a command through the HTTP API against the same update sent straight to the workflow.

    .venv/bin/python bench/command_bench.py [--journeys 16] [--rounds 2] [--per-round 32] [--concurrency 16]
                                            [--notes] [--key] [--spans] [--profile FILE]

On a throw-away database and the Temporal dev server (`infra.devserver` flags), with one
in-process worker and the API served by uvicorn on a free port, `--journeys` journeys of the
compressed programme (meetings minutes apart: every log is a meeting of its own, so every command
appends an event) are nominated and approved. Then, in alternating rounds of `--per-round`
commands at `--concurrency` clients:

- direct: `LogMentorMeeting` with the Temporal client's `execute_update` on the journey's handle
  (`workflows.client.execute`, the update the API sends);
- API: `POST /v1/journeys/{id}/mentor-meetings` over HTTP (httpx), as the journey's nearest leader
  (`--notes` adds a free text, so the API checks the command and stores the text; `--key` sends an
  Idempotency-Key, so the idempotency table is read and written).

p50/p95 of both and the ratio of the p50s (the target of issue 15 is at most 1.25). `--spans`
times the API's own steps (scope lookup, update, status read-back, access log, idempotency) by
wrapping them in this process; `--profile FILE` runs cProfile over the API rounds only and prints
the top functions by own time (the worker and the benchmark's clients run in the same process).
The machine is noisy: compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import functools
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.auth import Authenticator, TokenEntry, write_tokens_file
from api.runtime import serve
from bench.support import compressed_cohort, compressed_programme
from domain import commands as c
from infra.devserver import dev_server_args, temporal_binary
from infra.postgres import create_database, drop_database, server_dsn
from infra.settings import Settings
from service import bootstrap
from workers.worker import build_worker, free_port
from workflows.client import execute, journey_handle
from workflows.names import SEARCH_ATTRIBUTES

TOKENS = [
    TokenEntry(token="bench-coordinator", role="coordinator", person_id="p-coord"),
    TokenEntry(token="bench-hr", role="hr_system"),
    TokenEntry(token="bench-leader", role="leader", person_id="p-leader"),
]
COORD = {"Authorization": "Bearer bench-coordinator"}
HR = {"Authorization": "Bearer bench-hr"}
LEADER = {"Authorization": "Bearer bench-leader"}


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def measure(n: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> list[float]:
    """Run call(0..n-1) with `concurrency` clients; each call's latency in ms."""
    latencies: list[float] = []
    next_i = iter(range(n))

    async def client() -> None:
        for i in next_i:
            began = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


class Spans:
    """Wall time of named async steps, recorded only while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.times: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                if self.on:
                    self.times[name].append((time.perf_counter() - began) * 1000)

        setattr(owner, attribute, timed)

    def report(self, requests: int) -> None:
        print("  API steps (ms; p50, and the mean per request):")
        for name, values in self.times.items():
            p50, per_request = statistics.median(values), sum(values) / requests
            print(f"    {name:<40} p50 {p50:6.2f}   {per_request:6.2f}/req  n={len(values)}")


def install_spans(spans: Spans) -> None:
    """Time the API path's steps (by module attribute, as the API looks them up at call time)."""
    import api.routers.journeys
    import service.journeys
    import store.access_log
    import store.views.journeys
    import workflows.client

    spans.wrap(store.views.journeys, "access", "scope check (journeys_view.access)")
    spans.wrap(service.journeys, "status", "status read-back (service.status)")
    spans.wrap(service.journeys, "execute", "service.execute (all of it)")
    spans.wrap(workflows.client.JourneyClient, "send", "update (JourneyClient.send)")
    spans.wrap(workflows.client.JourneyClient, "check", "check_command query")
    spans.wrap(store.access_log.AccessLog, "record", "access log row")
    spans.wrap(api.routers.journeys, "idempotent", "idempotent() (all of it)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each, alternating")
    parser.add_argument("--per-round", type=int, default=32, help="commands per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--notes", action="store_true", help="API commands carry a free text")
    parser.add_argument("--key", action="store_true", help="API commands carry an Idempotency-Key")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="the worker and the API in this process (needed by --spans; default: `talent worker` and `talent api` "
        "subprocesses, as deployed, so neither shares an event loop with the benchmark's clients)",
    )
    parser.add_argument("--spans", action="store_true", help="time the API's steps (with --in-process)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile the API rounds (in-process) or the API process (subprocess) into this file",
    )
    parser.add_argument(
        "--lean-reset",
        action="store_true",
        help="experiment: every pool's release skips asyncpg's reset query (a round trip per pooled call)",
    )
    args = parser.parse_args()
    if args.spans and not args.in_process:
        parser.error("--spans needs --in-process")
    # A log line per request would be measured too.
    bootstrap.configure(Settings.model_validate({"TALENT_LOG_FORMAT": "console"}), level="WARNING")

    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_cmdbench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server, name)
    from store.db import create_pool, migrate

    if args.lean_reset:
        lean_pools()
    pool = await create_pool(dsn, min_size=4, max_size=20)
    async with pool.acquire() as conn:
        await migrate(conn)
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=dev_server_args(),
    )
    vault_key = base64.b64encode(os.urandom(32)).decode()
    task_queue = f"cmdbench-{uuid.uuid4().hex[:6]}"
    port = free_port()
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    try:
        if args.in_process:
            settings = Settings.model_validate(
                {
                    "data_dir": ROOT / ".data" / "bench",
                    "TALENT_TASK_QUEUE": task_queue,
                    "TALENT_VAULT_KEY": vault_key,
                    # The benchmark is one caller at full speed: the general ceiling would measure itself.
                    "TALENT_RATE_LIMIT_REQUESTS": "10000000/minute",
                }
            )
            auth = Authenticator(TOKENS)
            resources = bootstrap.resources(settings, pool=pool, temporal=env.client, authenticator=auth)
            stop = asyncio.Event()
            async with (
                bootstrap.worker_components(settings, pool) as parts,
                build_worker(env.client, parts, task_queue=settings.task_queue),
            ):
                api = asyncio.create_task(serve(resources, host="127.0.0.1", port=port, stop=stop))
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as http:
                    await ready(http, None)
                    await run(http, env.client, args, {"this process (all)": os.getpid()})
                stop.set()
                await api
        else:
            with tempfile.TemporaryDirectory(prefix="talent-cmdbench-") as tmp:
                base = Path(tmp)
                write_tokens_file(base / "tokens.json", TOKENS)
                child_env = {
                    **os.environ,
                    "DATABASE_URL": dsn,
                    "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "TALENT_TASK_QUEUE": task_queue,
                    "TALENT_VAULT_KEY": vault_key,
                    "TALENT_TOKENS_FILE": str(base / "tokens.json"),
                    "TALENT_API_HOST": "127.0.0.1",
                    "TALENT_API_PORT": str(port),
                    "TALENT_RATE_LIMIT_REQUESTS": "10000000/minute",
                    "TALENT_LOG_FORMAT": "json",
                    "TALENT_LOG_LEVEL": "WARNING",
                    "TALENT_DATA_DIR": str(base / "data"),
                }
                worker = spawn(child("worker", lean=args.lean_reset), child_env, base / "worker.log")
                api_args = child("api", lean=args.lean_reset, profile=args.profile)
                api_process = spawn(api_args, child_env, base / "api.log")
                try:
                    async with httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
                    ) as http:
                        await ready(http, api_process, base / "api.log")
                        pids = {"benchmark (clients)": os.getpid(), "API": api_process.pid, "worker": worker.pid}
                        await run(http, env.client, args, pids)
                except BaseException:
                    for log in ("worker.log", "api.log"):
                        print(f"--- {log} (last lines)\n" + "\n".join((base / log).read_text().splitlines()[-15:]))
                    raise
                finally:
                    for process in (api_process, worker):
                        process.send_signal(signal.SIGTERM)
                    for process in (api_process, worker):
                        try:
                            process.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            process.kill()
                if args.profile:
                    print(f"  profile of the API process in {args.profile}; top by own time:")
                    pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(30)
    finally:
        await env.shutdown()
        await pool.close()
        await drop_database(server, name)


#: A child process: the CLI's command, optionally with a pool whose release skips asyncpg's reset
#: query (--lean-reset) and under cProfile, dumped when it stops (the CLI's own exit skips the
#: interpreter's teardown, so `main._run` is called, not `main.main`).
CHILD = """
import cProfile, sys
command, lean, out = {command!r}, {lean!r}, {out!r}
if lean:
    from bench.command_bench import lean_pools
    lean_pools()
sys.argv = ["talent", command]
from cli import main
profiler = cProfile.Profile() if out else None
if profiler:
    profiler.enable()
try:
    main._run([command])
finally:
    if profiler:
        profiler.disable()
        profiler.dump_stats(out)
"""


def child(command: str, *, lean: bool, profile: Path | None = None) -> list[str]:
    """The interpreter's arguments that run `talent <command>` as `CHILD` does."""
    if not lean and profile is None:
        return ["-m", "cli.main", command]
    return ["-c", CHILD.format(command=command, lean=lean, out=str(profile.resolve()) if profile else "")]


def spawn(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """This interpreter running `arguments` in the project's root, its output into `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(  # this interpreter, the project's own command line
            [sys.executable, *arguments],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def ready(http: httpx.AsyncClient, process: subprocess.Popen[bytes] | None, log: Path | None = None) -> None:
    """Wait until the API answers /healthz (at most a minute)."""
    for _ in range(600):
        if process is not None and process.poll() is not None:
            text = await asyncio.to_thread(log.read_text) if log else ""
            raise RuntimeError(f"the API exited: {text}")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the API did not answer /healthz within a minute")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(http: httpx.AsyncClient, temporal: Any, args: argparse.Namespace, pids: dict[str, int]) -> None:
    # The compressed programme, starting in an hour: no timer fires while the benchmark runs, and
    # its meetings are minutes apart, so every log is a new meeting (an event appended).
    programme = compressed_programme().model_copy(update={"id": f"bench-{uuid.uuid4().hex[:6]}"})
    start = datetime.now(UTC) + timedelta(hours=1)
    cohort = compressed_cohort(programme, start, cohort_id=f"bench-{uuid.uuid4().hex[:6]}")
    cohort = cohort.model_copy(update={"capacity": max(cohort.capacity, args.journeys)})
    assert (await http.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=COORD)).is_success
    assert (await http.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=COORD)).is_success

    async def nominate(i: int) -> str:
        body = {
            "cohort_id": cohort.cohort_id,
            "motivation": "Benchmark.",
            "talent": {"person_id": f"p-bench-{i}", "name": f"Talent {i}", "email": f"t{i}@example.org"},
            "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
        }
        created = await http.post("/v1/journeys", json=body, headers=HR)
        assert created.status_code == 201, created.text
        journey: str = created.json()["journey_id"]
        approved = await http.post(f"/v1/journeys/{journey}/decision", json={"decision": "approve"}, headers=COORD)
        assert approved.status_code == 200, approved.text
        return journey

    began = time.perf_counter()
    journeys: list[str] = []
    # In groups of 16: more approvals at once than the API's pool has connections (10), which
    # deadlocked on the cohort's seat lock before approvals queued in the process first.
    for first in range(0, args.journeys, 16):
        journeys += await asyncio.gather(*(nominate(i) for i in range(first, min(args.journeys, first + 16))))
    print(f"setup: {args.journeys} journeys nominated and approved through HTTP in {time.perf_counter() - began:.1f} s")

    # The workflow's clock decides "today" in the programme's zone; the wall clock's date in UTC
    # is never after it by more than the offset, so yesterday's date is always in the past, and
    # the enrolment (an hour before the start) is today: log today's date.
    today = datetime.now(UTC).astimezone(programme_zone()).date()
    offset = {"round": 0}

    async def direct(i: int) -> None:
        handle = journey_handle(temporal, journeys[(i + offset["round"]) % len(journeys)])
        command = c.LogMentorMeeting(actor_id="p-leader", actor_role="leader", held_on=today)
        result = await execute(handle, command, update_id=f"u-{uuid.uuid4().hex}")
        assert result.events, result

    async def via_api(i: int) -> None:
        journey = journeys[(i + offset["round"]) % len(journeys)]
        body: dict[str, Any] = {"held_on": today.isoformat()}
        if args.notes:
            body["notes"] = f"Møde {i}"
        headers = {**LEADER, "Idempotency-Key": uuid.uuid4().hex} if args.key else LEADER
        got = await http.post(f"/v1/journeys/{journey}/mentor-meetings", json=body, headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["events"], got.text

    spans = Spans()
    if args.spans:
        install_spans(spans)
    profiler = cProfile.Profile() if args.profile and args.in_process else None

    # Warm-up: connections, caches, workflow caches, the first plans.
    await measure(args.concurrency * 2, args.concurrency, direct)
    await measure(args.concurrency * 2, args.concurrency, via_api)

    kind = "API" + (" + notes" if args.notes else "") + (" + Idempotency-Key" if args.key else "")
    print(
        f"{args.rounds} alternating rounds of {args.per_round} commands at {args.concurrency} clients "
        f"(LogMentorMeeting, every one appends; API: {kind}):"
    )
    direct_all: list[float] = []
    api_all: list[float] = []
    ratios: list[float] = []
    # CPU seconds per process, spent in the direct rounds and in the API rounds.
    cpu: dict[str, dict[str, float]] = {"direct": defaultdict(float), "API": defaultdict(float)}

    async def measured_cpu(path: str, call: Callable[[int], Awaitable[None]]) -> list[float]:
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        latencies = await measure(args.per_round, args.concurrency, call)
        for name, pid in pids.items():
            cpu[path][name] += cpu_seconds(pid) - before[name]
        return latencies

    for r in range(args.rounds):
        offset["round"] = r
        d = await measured_cpu("direct", direct)
        spans.on = True
        if profiler:
            profiler.enable()
        a = await measured_cpu("API", via_api)
        if profiler:
            profiler.disable()
        spans.on = False
        direct_all += d
        api_all += a
        ratios.append(statistics.median(a) / statistics.median(d))
        print(
            f"  round {r + 1}: direct p50 {statistics.median(d):7.2f} ms   "
            f"API p50 {statistics.median(a):7.2f} ms   ratio {ratios[-1]:.2f}"
        )
    direct_all.sort()
    api_all.sort()
    d50, d95 = statistics.median(direct_all), percentile(direct_all, 0.95)
    a50, a95 = statistics.median(api_all), percentile(api_all, 0.95)
    print(f"  {'execute_update (direct)':<32} p50 {d50:7.2f} ms   p95 {d95:7.2f} ms   n={len(direct_all)}")
    print(f"  {'POST .../mentor-meetings':<32} p50 {a50:7.2f} ms   p95 {a95:7.2f} ms   n={len(api_all)}")
    print(
        f"  ratio API/direct: {a50 / d50:.2f}x the p50 (median of rounds {statistics.median(ratios):.2f}), "
        f"{a95 / d95:.2f}x the p95   target <= 1.25x the p50"
    )
    commands = args.rounds * args.per_round
    print("  CPU per command (ms; less noisy than the latencies on a shared machine):")
    for name in pids:
        direct_cpu, api_cpu = (cpu[path][name] * 1000 / commands for path in ("direct", "API"))
        print(f"    {name:<24} direct {direct_cpu:6.2f}   API {api_cpu:6.2f}")
    if args.spans:
        spans.report(len(api_all))
    if profiler is not None:
        profiler.dump_stats(str(args.profile))
        print(f"  profile of the API rounds (whole process) in {args.profile}; top by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)


def lean_pools() -> None:
    """Experiment: every asyncpg pool made from now on skips the reset query when a connection is
    released (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`, a round trip
    per pooled call); asyncpg still rolls back an open transaction."""
    import asyncpg

    make = asyncpg.create_pool

    async def no_reset(_: Any) -> None:
        return None

    def lean(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("reset", no_reset)
        return make(*args, **kwargs)

    asyncpg.create_pool = lean


def programme_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(compressed_programme().timezone)


if __name__ == "__main__":
    asyncio.run(main())
