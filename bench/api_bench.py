"""Benchmark: the HTTP API over real HTTP (uvicorn) against baselines in the same run.

    .venv/bin/python bench/api_bench.py [--journeys 40] [--requests 2000] [--concurrency 16]

On a throw-away database and the Temporal dev server, with one in-process worker and the API
served by uvicorn on a free port, `--journeys` journeys are nominated
through HTTP and approved. Then, side by side:

- reads: `GET /v1/journeys/{id}` (bearer auth, scoped read of the status read model) against
  `GET /healthz` (the same server and client, no auth, no database): what a status read costs
  beyond the HTTP round trip;
- lists: `GET /v1/journeys?cohort_id=...` (a page of 50) against the same baseline;
- commands: `POST /v1/journeys/{id}/mentor-meetings` through the API against the same update sent
  straight to the workflow with the Temporal client (`execute_update`): what the API adds to a
  command (auth, scoping, vault text, the read-back of the status). bench/command_bench.py measures
  the same pair in alternating rounds, with the API and the worker in processes of their own, and
  their CPU per command: use it for the command ratio of issue 15.

Medians and p99 in ms, throughput at `--concurrency` clients, and the ratios. The machine is
noisy: compare the ratios, not the absolute figures. Journeys are of the compressed programme,
starting in an hour, so no timer fires while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.auth import Authenticator, TokenEntry
from api.runtime import serve
from bench.support import compressed_cohort, compressed_programme
from domain import commands as c
from infra.devserver import dev_server_args, temporal_binary
from infra.postgres import create_database, drop_database, server_dsn
from infra.settings import Settings
from service import bootstrap
from service.bootstrap import Resources
from store.db import create_pool, migrate
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


async def measure(n: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> tuple[list[float], float]:
    """Run call(0..n-1) with `concurrency` workers; each call's latency (ms) and the wall time (s)."""
    latencies: list[float] = []
    next_i = iter(range(n))

    async def worker() -> None:
        for i in next_i:
            began = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


def row(name: str, latencies: list[float], seconds: float) -> tuple[float, float]:
    """Print one line of figures; return (median ms, requests/s)."""
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = len(ordered) / seconds
    print(f"  {name:<44} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   {rate:8.0f} req/s")
    return p50, rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=40)
    parser.add_argument("--requests", type=int, default=2000, help="reads per measurement")
    parser.add_argument("--commands", type=int, default=200, help="commands per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    # A log line per request would be measured too.
    bootstrap.configure(Settings.model_validate({"TALENT_LOG_FORMAT": "console"}), level="WARNING")

    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_apibench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server, name)
    pool = await create_pool(dsn, min_size=4, max_size=20)
    async with pool.acquire() as conn:
        await migrate(conn)
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=dev_server_args(),
    )
    # A throw-away vault key, shared by the worker and the API.
    settings = Settings.model_validate(
        {
            "data_dir": ROOT / ".data" / "bench",
            "TALENT_TASK_QUEUE": f"apibench-{uuid.uuid4().hex[:6]}",
            "TALENT_VAULT_KEY": base64.b64encode(os.urandom(32)).decode(),
            # The benchmark is one caller at full speed: the general ceiling would measure itself.
            "TALENT_RATE_LIMIT_REQUESTS": "10000000/minute",
        }
    )
    resources = bootstrap.resources(settings, pool=pool, temporal=env.client, authenticator=Authenticator(TOKENS))
    port, stop = free_port(), asyncio.Event()
    try:
        async with (
            bootstrap.worker_components(settings, pool) as parts,
            build_worker(env.client, parts, task_queue=settings.task_queue),
        ):
            api = asyncio.create_task(serve(resources, host="127.0.0.1", port=port, stop=stop))
            limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:
                for _ in range(100):
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                await run(http, resources, args)
            stop.set()
            await api
    finally:
        await env.shutdown()
        await pool.close()
        await drop_database(server, name)


async def run(http: httpx.AsyncClient, resources: Resources, args: argparse.Namespace) -> None:
    # The compressed programme (meetings minutes apart, so one a day is no limit), starting in an hour:
    # no timer fires while the benchmark runs.
    programme = compressed_programme().model_copy(update={"id": f"bench-{uuid.uuid4().hex[:6]}"})
    start = datetime.now(UTC) + timedelta(hours=1)
    cohort = compressed_cohort(programme, start, cohort_id=f"bench-{uuid.uuid4().hex[:6]}")
    # Every journey is approved: the cohort takes them all (capacity, PRODUCT §8.4).
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
    journeys = await asyncio.gather(*(nominate(i) for i in range(args.journeys)))
    seconds = time.perf_counter() - began
    print(f"setup: {args.journeys} journeys nominated and approved through HTTP in {seconds:.1f} s")

    async def healthz(_: int) -> None:
        assert (await http.get("/healthz")).status_code == 200

    async def status(i: int) -> None:
        assert (await http.get(f"/v1/journeys/{journeys[i % len(journeys)]}", headers=LEADER)).status_code == 200

    async def listing(_: int) -> None:
        got = await http.get("/v1/journeys", params={"cohort_id": cohort.cohort_id}, headers=COORD)
        assert got.status_code == 200

    # Warm-up: connections, caches, the first plans.
    await measure(200, args.concurrency, status)
    print(f"reads at {args.concurrency} concurrent clients, {args.requests} requests each:")
    n = args.concurrency
    base_p50, base_rate = row("GET /healthz (baseline)", *await measure(args.requests, n, healthz))
    read_p50, read_rate = row(
        "GET /v1/journeys/{id} (leader, scoped)", *await measure(args.requests, args.concurrency, status)
    )
    list_p50, list_rate = row(
        "GET /v1/journeys?cohort_id= (page of 50)", *await measure(args.requests, args.concurrency, listing)
    )
    print(f"  ratio status/baseline: {read_rate / base_rate:.2f} of the throughput, {read_p50 / base_p50:.2f}x the p50")
    print(f"  ratio list/baseline:   {list_rate / base_rate:.2f} of the throughput, {list_p50 / base_p50:.2f}x the p50")

    today = date.today().isoformat()

    async def via_api(i: int) -> None:
        journey = journeys[i % len(journeys)]
        got = await http.post(f"/v1/journeys/{journey}/mentor-meetings", json={"held_on": today}, headers=LEADER)
        assert got.status_code == 200, got.text

    async def direct(i: int) -> None:
        handle = journey_handle(resources.temporal, journeys[i % len(journeys)])
        command = c.LogMentorMeeting(actor_id="p-leader", actor_role="leader", held_on=date.today())
        await execute(handle, command)

    async def via_api_with_notes(i: int) -> None:
        # A free text: the workflow checks the command (a query) before the text is stored.
        journey = journeys[i % len(journeys)]
        body = {"held_on": today, "notes": f"Møde {i}"}
        got = await http.post(f"/v1/journeys/{journey}/mentor-meetings", json=body, headers=LEADER)
        assert got.status_code == 200, got.text

    print(f"commands at {args.concurrency} concurrent clients, {args.commands} each (mentor meetings):")
    direct_p50, direct_rate = row("execute_update (baseline)", *await measure(args.commands, args.concurrency, direct))
    api_p50, api_rate = row("POST .../mentor-meetings", *await measure(args.commands, args.concurrency, via_api))
    notes_p50, notes_rate = row(
        "POST .../mentor-meetings + notes", *await measure(args.commands, args.concurrency, via_api_with_notes)
    )
    notes = f"{notes_rate / direct_rate:.2f} of the throughput, {notes_p50 / direct_p50:.2f}x the p50"
    print(f"  ratio API+notes/direct: {notes}")
    print(f"  ratio API/direct: {api_rate / direct_rate:.2f} of the throughput, {api_p50 / direct_p50:.2f}x the p50")


if __name__ == "__main__":
    asyncio.run(main())
