"""Benchmark: bulk enrolment against the rate the same Temporal server starts bare workflows.

    .venv/bin/python bench/batch_bench.py [--rows 200] [--concurrency 32] [--workers 1]

`--rows` nominations (full size: 10,000) go in batches of 1,000 through the bulk enrolment's own
path (`api.routers.batch.enrol`: each row validated, then `service.journeys.nominate`: the vault,
update-with-start of the journey's workflow, answered once its nomination is stored) on the dev
server and a fresh PostgreSQL database, with `--workers` journey workers in their own processes
(`talent worker`, as deployed: the API's event loop is not the worker's). The baseline, in the
same run on the same server, starts as many bare workflows (`BenchTrivialWorkflow`) with the same
concurrency: the rate the server takes starts. Both rates and their ratio are printed; target:
nominations >= 0.8x the starts. A second run of the same batches (every row `existing`) is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import Principal
from api.routers.batch import enrol
from bench.support import reference_cohort, reference_programme
from bench.trivial import TrivialWorkflow, noop
from infra.devserver import dev_server_args, temporal_binary
from infra.postgres import create_database, drop_database, server_dsn
from infra.settings import Settings
from service import batch, bootstrap
from store.catalog import Catalog
from store.db import create_pool, migrate
from workers.worker import workflow_runner
from workflows.names import SEARCH_ATTRIBUTES


def rows_for(cohort_id: str, n: int, run: str) -> list[dict[str, Any]]:
    """n nomination rows of distinct talents (as an HR system's export would give them)."""
    return [
        {
            "cohort_id": cohort_id,
            "external_ref": f"HR-{run}-{i}",
            "motivation": "Tager ansvar i teamet og leder allerede møderne.",
            "talent": {"person_id": f"p-{run}-{i}", "name": f"Talent {i}", "email": f"t{i}@example.org"},
            "nearest_leader": {"person_id": f"p-l-{run}-{i % 50}", "name": "Leder", "email": "leder@example.org"},
        }
        for i in range(n)
    ]


async def nominate_all(
    resources: bootstrap.Resources, rows: list[dict[str, Any]], concurrency: int
) -> tuple[float, dict[str, int]]:
    """Every row in batches of 1,000; (seconds, outcome counts)."""
    caller = Principal(token_id="bench", role="hr_system")
    counts: dict[str, int] = {}
    began = time.perf_counter()
    for start in range(0, len(rows), batch.MAX_ROWS):
        answered = await enrol(resources, rows[start : start + batch.MAX_ROWS], caller, concurrency=concurrency)
        for outcome, count in answered["summary"].items():
            counts[outcome] = counts.get(outcome, 0) + count
    return time.perf_counter() - began, counts


def cpu_seconds(pids: list[int]) -> float | None:
    """CPU seconds (user + system) the processes have used so far, from /proc; None where there is none."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def start_bare(client: Client, n: int, task_queue: str, concurrency: int, *, run: bool = False) -> float:
    """Start n bare workflows (no activity), `concurrency` at a time, or (`run`) run each to its end; seconds."""
    bound = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with bound:
            workflow_id = f"bare-{uuid.uuid4().hex}"
            if run:
                await client.execute_workflow(TrivialWorkflow.run, 0, id=workflow_id, task_queue=task_queue)
            else:
                await client.start_workflow(TrivialWorkflow.run, 0, id=workflow_id, task_queue=task_queue)

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - began


async def start_workers(
    n: int, dsn: str, temporal: str, task_queue: str, data_dir: Path
) -> list[asyncio.subprocess.Process]:
    """n `talent worker` processes on the task queue (the settings' vault key, from `data_dir`)."""
    # As deployed, where `pip install` compiled the package to bytecode: without it (a development
    # shell's PYTHONDONTWRITEBYTECODE), the workflow sandbox compiles the workflow's module from
    # source again for every new workflow run. The bytecode goes to the bench's data directory.
    inherited = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env = {
        **inherited,
        "PYTHONPYCACHEPREFIX": str(data_dir / "pycache"),
        "DATABASE_URL": dsn,
        "TEMPORAL_ADDRESS": temporal,
        "TALENT_TASK_QUEUE": task_queue,
        "TALENT_DATA_DIR": str(data_dir),
        "TALENT_LOG_LEVEL": "WARNING",
    }
    talent = Path(sys.executable).parent / "talent"
    return [
        await asyncio.create_subprocess_exec(str(talent), "worker", env=env, stdout=asyncio.subprocess.DEVNULL)
        for _ in range(n)
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200, help="nominations (full size: 10000)")
    parser.add_argument("--concurrency", type=int, default=batch.CONCURRENCY, help="rows (and starts) at once")
    parser.add_argument("--workers", type=int, default=1, help="journey worker processes")
    args = parser.parse_args()

    server = await server_dsn(ROOT / ".data" / "bench")
    name = f"talent_batchbench_{uuid.uuid4().hex[:8]}"
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
    data_dir = ROOT / ".data" / "bench"
    settings = Settings.model_validate({"data_dir": data_dir, "log_level": "WARNING"})
    bootstrap.configure(settings, level="WARNING")
    address = env.client.service_client.config.target_host
    workers = await start_workers(args.workers, dsn, address, task_queue, data_dir)
    try:
        programme = reference_programme()
        cohort = reference_cohort(
            programme, cohort_id=f"batch-{uuid.uuid4().hex[:6]}", starts_on=date.today() + timedelta(days=60)
        )
        catalog = Catalog(pool)
        await catalog.publish(programme)
        await catalog.create_cohort(cohort)
        resources = bootstrap.resources(settings, pool=pool, temporal=env.client, task_queue=task_queue)
        # Bare starts go to a queue of their own: the server takes them, no worker runs them.
        bare_queue = f"{task_queue}-bare"
        await nominate_all(resources, rows_for(cohort.cohort_id, min(20, args.rows), "warm"), args.concurrency)
        await start_bare(env.client, min(20, args.rows), bare_queue, args.concurrency)
        rows = rows_for(cohort.cohort_id, args.rows, "run")
        pids = [worker.pid for worker in workers]
        worker_cpu, own_cpu = cpu_seconds(pids), time.process_time()
        seconds, counts = await nominate_all(resources, rows, args.concurrency)
        own_cpu = time.process_time() - own_cpu
        worker_cpu_after = cpu_seconds(pids)
        bare = await start_bare(env.client, args.rows, bare_queue, args.concurrency)
        again, again_counts = await nominate_all(resources, rows, args.concurrency)
        # For context: bare workflows run to their end by a (sandboxed) worker: a start and one task.
        async with Worker(
            env.client,
            task_queue=f"{task_queue}-run",
            workflows=[TrivialWorkflow],
            activities=[noop],
            workflow_runner=workflow_runner(),
        ):
            await start_bare(env.client, min(20, args.rows), f"{task_queue}-run", args.concurrency, run=True)
            ran = await start_bare(env.client, args.rows, f"{task_queue}-run", args.concurrency, run=True)
        nps, sps = args.rows / seconds, args.rows / bare
        print(f"nominations: {args.rows} in {seconds:.1f} s: {nps:.1f}/s {counts}")
        print(f"bare starts: {args.rows} in {bare:.1f} s: {sps:.1f}/s (concurrency {args.concurrency})")
        print(f"journey workers: {args.workers} processes")
        # CPU per nomination: what a loaded machine cannot hide (rates there swing with the load).
        if worker_cpu is not None and worker_cpu_after is not None:
            print(f"worker CPU per nomination: {(worker_cpu_after - worker_cpu) / args.rows * 1000:.1f} ms")
        print(f"API-side CPU per nomination (this process, incl. its client): {own_cpu / args.rows * 1000:.1f} ms")
        print(
            f"bare workflows run to their end (in-process worker): {args.rows / ran:.1f}/s; "
            f"nominations are {nps * ran / args.rows:.2f}x that"
        )
        print(f"ratio nominations/bare starts: {nps / sps:.2f} (target >= 0.8)")
        print(f"same rows again: {args.rows / again:.1f}/s {again_counts}")
    finally:
        for worker in workers:
            worker.terminate()
            await worker.wait()
        await env.shutdown()
        await pool.close()
        await drop_database(server, name)


if __name__ == "__main__":
    asyncio.run(main())
