"""Benchmark: journeys end to end on the Temporal dev server against Temporal's own ceiling.

    .venv/bin/python bench/workflow_bench.py [--journeys 500] [--scale 0.01] [--open 1000]

N journeys of examples/demo-compressed.yaml (every delay multiplied by `--scale`, so timers do not
dominate) run end to end on the dev server with one in-process worker: nominated, approved, then
never engaged, so every milestone slips and every rung, the evaluation, the follow-ups and the
closing fire on their own. The baseline, in the same run and worker, is a trivial workflow that
executes as many no-op activities per workflow as a journey executed (appends and deliveries):
Temporal's own ceiling on this machine. Target: journeys >= 0.5x that ceiling. Then `--open`
journeys are started and left waiting for approval, to measure the worker's memory per 1,000
open journeys (resident set growth of this process, which hosts the worker).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from bench.support import COORD, compressed_cohort, reference_cohort, reference_programme, scaled
from bench.trivial import TrivialWorkflow, noop
from domain import commands as c
from domain.programme import Programme
from infra.devserver import dev_server_args, temporal_binary
from infra.postgres import create_database, drop_database, server_dsn
from infra.programmes import load_programme
from infra.settings import Settings
from service.bootstrap import worker_components
from store.db import create_pool, migrate
from store.views import journeys
from workers.worker import workflow_runner
from workflows.client import execute, start_journey
from workflows.journey import TalentJourneyWorkflow
from workflows.names import SEARCH_ATTRIBUTES


class ActivityCounter(Interceptor):
    """Counts the activities the worker executes."""

    def __init__(self) -> None:
        self.count = 0

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        counter = self

        class _Counting(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                counter.count += 1
                return await super().execute_activity(input)

        return _Counting(next)


def rss_kib() -> int:
    """This process's resident set size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run_journeys(client: Client, programme: Programme, n: int, task_queue: str) -> tuple[float, int]:
    """Start n journeys, approve each, wait for all to close; return (seconds, events)."""
    start_at = datetime.now(UTC) + timedelta(seconds=2)  # the dev server runs on real time
    cohort = compressed_cohort(programme, start_at, cohort_id=f"bench-{uuid.uuid4().hex[:6]}")
    began = time.perf_counter()

    async def one(i: int) -> int:
        journey_id = f"bench-{uuid.uuid4().hex[:10]}"
        nomination = c.NominateTalent(
            actor_id="p-leader",
            actor_role="leader",
            journey_id=journey_id,
            talent_id=f"p-t{i}",
            nearest_leader_id="p-leader",
            leaders_leader_id="p-boss",
            programme=programme,
            cohort=cohort,
        )
        handle = await start_journey(client, nomination, task_queue=task_queue)
        await execute(handle, c.DecideNomination(**COORD, decision="approve"))
        status = await handle.result()
        return status.version

    versions = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - began, sum(versions)


async def run_trivial(client: Client, n: int, activities: int, task_queue: str) -> float:
    """n trivial workflows of `activities` no-op activities each; return seconds."""
    began = time.perf_counter()
    await asyncio.gather(
        *(
            client.execute_workflow(
                TrivialWorkflow.run, activities, id=f"trivial-{uuid.uuid4().hex}", task_queue=task_queue
            )
            for _ in range(n)
        )
    )
    return time.perf_counter() - began


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=500)
    parser.add_argument("--scale", type=float, default=0.01, help="multiply the compressed programme's delays")
    parser.add_argument("--open", type=int, default=1000, help="open journeys for the memory figure (0: skip)")
    args = parser.parse_args()

    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_wfbench_{uuid.uuid4().hex[:8]}"
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
    task_queue = f"bench-{uuid.uuid4().hex[:6]}"
    settings = Settings.model_validate({"data_dir": ROOT / ".data" / "bench"})
    try:
        counter = ActivityCounter()
        async with worker_components(settings, pool) as parts:
            worker = Worker(
                env.client,
                task_queue=task_queue,
                workflows=[TalentJourneyWorkflow, TrivialWorkflow],
                activities=[*parts.activities, noop],
                workflow_runner=workflow_runner(),
                max_concurrent_activities=200,
                interceptors=[counter],
            )
            async with worker:
                programme = scaled(load_programme((ROOT / "examples" / "demo-compressed.yaml").read_text()), args.scale)
                await run_journeys(env.client, programme, min(20, args.journeys), task_queue)  # warm-up
                counter.count = 0
                seconds, events = await run_journeys(env.client, programme, args.journeys, task_queue)
                per_journey = max(1, round(counter.count / args.journeys))
                trivial = await run_trivial(env.client, args.journeys, per_journey, task_queue)
                jps, tps = args.journeys / seconds, args.journeys / trivial
                print(
                    f"journeys: {args.journeys} of demo-compressed x{args.scale} in {seconds:.1f} s: "
                    f"{jps:.1f} journeys/s, {events / seconds:,.0f} events/s, "
                    f"{per_journey} activities and {events / args.journeys:.0f} events each"
                )
                print(
                    f"trivial:  {args.journeys} workflows of {per_journey} no-op activities in {trivial:.1f} s: "
                    f"{tps:.1f} workflows/s"
                )
                print(f"ratio journeys/trivial: {jps / tps:.2f} (target >= 0.5)")
                if args.open:
                    gc.collect()
                    before = rss_kib()
                    reference = reference_programme()
                    cohort = reference_cohort(reference, cohort_id=f"open-{uuid.uuid4().hex[:6]}")
                    await asyncio.gather(
                        *(
                            start_journey(
                                env.client,
                                c.NominateTalent(
                                    actor_id="p-l",
                                    actor_role="leader",
                                    journey_id=f"open-{uuid.uuid4().hex[:10]}",
                                    talent_id=f"p-o{i}",
                                    nearest_leader_id="p-l",
                                    programme=reference,
                                    cohort=cohort,
                                ),
                                task_queue=task_queue,
                            )
                            for i in range(args.open)
                        )
                    )
                    for _ in range(600):
                        done = len(await journeys.of_cohort(pool, cohort.cohort_id, limit=args.open))
                        if done >= args.open:
                            break
                        await asyncio.sleep(0.5)
                    await asyncio.sleep(2)
                    gc.collect()
                    after = rss_kib()
                    print(
                        f"memory: {(after - before) / 1024 * 1000 / args.open:.0f} MiB per 1,000 open journeys "
                        f"(worker RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB with {args.open} open)"
                    )
    finally:
        await env.shutdown()
        await pool.close()
        await drop_database(server, name)


if __name__ == "__main__":
    asyncio.run(main())
