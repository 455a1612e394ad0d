"""Benchmark: journeys end to end on the Temporal dev server against a baseline of their own shape.

    .venv/bin/python bench/workflow_bench.py [--journeys 300] [--rounds 3] [--scale 0.01] [--profile FILE]

N journeys of examples/demo-compressed.yaml (every delay multiplied by `--scale`) run end to end on
the dev server (with infra/devserver.py's dynamic config) and one in-process worker: nominated,
approved (an update), then never engaged, so every milestone slips and every rung, the evaluation,
the follow-ups and the closing fire on their own clock. The baseline (bench/baseline.py) is read
from a warm-up journey's history: the same timers to the same deadlines after the cohort's start,
the same appends, deliveries and search-attribute upserts, the same update, with no-op bodies.
Each round runs the journeys, then as many baselines on the same server and worker; the medians of
the rounds are printed with their ratio (target: journeys >= 0.7x the baseline's throughput).
`--profile FILE` writes a cProfile of the worker's threads during the journeys' rounds (pstats).
The worker's memory per 1,000 open journeys is bench/worker_scale.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import pstats
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.baseline import BaselineInput, BaselineWorkflow, Script, noop_append, noop_deliver, script_of
from bench.support import COORD, compressed_cohort, scaled
from domain import commands as c
from domain.programme import Programme
from infra.devserver import dev_server_args, temporal_binary
from infra.logging import configure_logging
from infra.postgres import create_database, drop_database, server_dsn
from infra.programmes import load_programme
from infra.settings import Settings
from service.bootstrap import worker_components
from store.db import create_pool, migrate
from workers.worker import workflow_runner
from workflows.client import JourneyHandle, execute, start_journey
from workflows.journey import TalentJourneyWorkflow
from workflows.names import SEARCH_ATTRIBUTES

#: The dev server runs on real time: the cohort starts this long after the round begins.
LEAD = timedelta(seconds=2)
T = TypeVar("T")


class ProfilingExecutor(ThreadPoolExecutor):
    """The worker's workflow-task threads, each under its own cProfile while `active` (off: no cost)."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="workflow")
        self.profiles: list[cProfile.Profile] = []
        self.active = False
        self._local = threading.local()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(self._run, fn, *args, **kwargs)

    def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.active:
            return fn(*args, **kwargs)
        profile: cProfile.Profile | None = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = cProfile.Profile()
            with self._lock:
                self.profiles.append(profile)
        profile.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profile.disable()


async def overloaded_retry(call: Callable[[], Awaitable[T]]) -> T:
    """`call`, again while Temporal refuses an update because the workflow's task failed (a worker
    too busy to finish a workflow task within its timeout: the task is retried, and so is the update)."""
    for _ in range(100):
        try:
            return await call()
        except RPCError as exc:
            if exc.status != RPCStatusCode.FAILED_PRECONDITION:
                raise
            await asyncio.sleep(0.5)
    return await call()


async def run_journeys(
    client: Client, programme: Programme, n: int, task_queue: str
) -> tuple[float, int, list[JourneyHandle], datetime]:
    """Start n journeys, approve each, wait for all to close; (seconds, events, handles, cohort start)."""
    start_at = datetime.now(UTC) + LEAD
    cohort = compressed_cohort(programme, start_at, cohort_id=f"bench-{uuid.uuid4().hex[:6]}")
    began = time.perf_counter()
    handles: list[JourneyHandle] = []

    async def one(i: int) -> int:
        nomination = c.NominateTalent(
            actor_id="p-leader",
            actor_role="leader",
            journey_id=f"bench-{uuid.uuid4().hex[:10]}",
            talent_id=f"p-t{i}",
            nearest_leader_id="p-leader",
            leaders_leader_id="p-boss",
            programme=programme,
            cohort=cohort,
        )
        handle = await start_journey(client, nomination, task_queue=task_queue)
        handles.append(handle)
        await overloaded_retry(lambda: execute(handle, c.DecideNomination(**COORD, decision="approve")))
        status = await handle.result()
        return status.version

    versions = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - began, sum(versions), handles, start_at


async def run_baseline(client: Client, script: Script, n: int, task_queue: str) -> float:
    """n baselines of the journeys' shape, each taking the same updates; return seconds."""
    start_at = datetime.now(UTC) + LEAD
    began = time.perf_counter()

    async def one() -> None:
        handle = await client.start_workflow(
            BaselineWorkflow.run,
            BaselineInput(start_at=start_at, steps=script.steps),
            id=f"baseline-{uuid.uuid4().hex}",
            task_queue=task_queue,
        )
        for name in script.updates:
            await overloaded_retry(functools.partial(handle.execute_update, name, {"decision": "approve", **COORD}))
        await handle.result()

    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - began


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.01, help="multiply the compressed programme's delays")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the journeys' rounds here")
    args = parser.parse_args()
    configure_logging(level="WARNING")

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
    executor = ProfilingExecutor(max_workers=4)
    loop_profile = cProfile.Profile()  # the event loop's thread: the SDK's bridge and the activities
    try:
        async with worker_components(settings, pool) as parts:
            worker = Worker(
                env.client,
                task_queue=task_queue,
                workflows=[TalentJourneyWorkflow, BaselineWorkflow],
                activities=[*parts.activities, noop_append, noop_deliver],
                workflow_runner=workflow_runner(),
                workflow_task_executor=executor,
                max_concurrent_activities=settings.worker_max_concurrent_activities,
                max_cached_workflows=settings.worker_max_cached_workflows,
            )
            async with worker:
                programme = scaled(load_programme((ROOT / "examples" / "demo-compressed.yaml").read_text()), args.scale)
                _, _, handles, start_at = await run_journeys(env.client, programme, min(20, args.journeys), task_queue)
                script = await script_of(handles[0], start_at)  # type: ignore[arg-type]
                await run_baseline(env.client, script, min(20, args.journeys), task_queue)  # warm-up
                print(
                    f"shape of a journey (and of the baseline): {script.count('timer')} timers, "
                    f"{script.count('append') + len(script.updates)} appends, {script.count('deliver')} deliveries, "
                    f"{script.count('upsert')} search-attribute upserts, updates {script.updates}"
                )
                journeys_per_s: list[float] = []
                baseline_per_s: list[float] = []
                for round_no in range(1, args.rounds + 1):
                    if args.profile:
                        executor.active = True
                        loop_profile.enable()
                    seconds, events, _, _ = await run_journeys(env.client, programme, args.journeys, task_queue)
                    if args.profile:
                        executor.active = False
                        loop_profile.disable()
                    baseline = await run_baseline(env.client, script, args.journeys, task_queue)
                    journeys_per_s.append(args.journeys / seconds)
                    baseline_per_s.append(args.journeys / baseline)
                    print(
                        f"round {round_no}: {args.journeys} journeys in {seconds:.1f} s "
                        f"({journeys_per_s[-1]:.1f}/s, {events / seconds:,.0f} events/s); "
                        f"{args.journeys} baselines in {baseline:.1f} s ({baseline_per_s[-1]:.1f}/s)"
                    )
                jps, bps = statistics.median(journeys_per_s), statistics.median(baseline_per_s)
                print(f"median: journeys {jps:.1f}/s, baseline {bps:.1f}/s of demo-compressed x{args.scale}")
                print(f"ratio journeys/baseline: {jps / bps:.2f} (target >= 0.7)")
    finally:
        await env.shutdown()
        await pool.close()
        await drop_database(server, name)
        executor.shutdown(wait=False)
    if args.profile:
        workflow_stats = pstats.Stats(*executor.profiles)
        workflow_stats.dump_stats(str(args.profile))
        loop_profile.dump_stats(str(args.profile.with_suffix(".loop")))
        print(f"workflow threads (written to {args.profile}):")
        workflow_stats.sort_stats("cumulative").print_stats(30)
        workflow_stats.sort_stats("tottime").print_stats(20)
        print(f"event loop thread (written to {args.profile.with_suffix('.loop')}):")
        pstats.Stats(loop_profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    asyncio.run(main())
