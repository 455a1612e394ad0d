"""Faults from outside under HTTP load, small enough for CI: the harness of bench/chaos.py.

Real processes: the worker and the API as subprocesses, a private PostgreSQL cluster (never the shared
server) crash-restarted with `pg_ctl stop -m immediate`, the Temporal dev server with a database file
SIGKILLed and started again on the same port and file; clients retry with the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from bench.chaos import ChaosConfig, run_chaos
from cli.dev.temporal import TemporalSupervisor, start_temporal
from workers.worker import free_port

SMALL = ChaosConfig(
    worker_kills=2, pg_crashes=1, temporal_kills=1, journeys=4, commands=40, fault_spacing=1.5, pace=0.3
)


async def test_worker_kills_postgres_crashes_and_temporal_kills_lose_nothing_and_never_answer_500() -> None:
    report = await run_chaos(SMALL)
    print(f"\n{report.figures()}")

    assert (report.worker_kills, report.pg_crashes, report.temporal_kills) == (2, 1, 1)
    assert report.journeys == SMALL.journeys
    # Every command answered 2xx in the end (503s retried with the same key), stored exactly once.
    assert report.acknowledged == SMALL.commands
    assert (report.lost, report.duplicated, report.refused) == (0, 0, 0)
    # Read models equal a fresh fold of their stream; every journey's workflow running or completed.
    assert (report.stale, report.unrecovered) == (0, 0)
    # 503 with Retry-After while a dependency was down, never another 5xx.
    assert report.server_errors == 0
    assert report.readyz_final.startswith("200")
    # Every e-mail and webhook arrived; an e-mail received twice is one re-sent after an unknown
    # outcome, recorded as such (at-least-once for e-mail, see activities/notify.py).
    assert report.mail_duplicates <= report.mails_resent
    assert report.problems == []


async def test_talent_dev_starts_a_dead_temporal_dev_server_again_with_its_state_and_clients_reconnect(
    tmp_path: Path,
) -> None:
    temporal = await start_temporal(tmp_path, "default", port=free_port(), ui_port=free_port())
    supervisor = TemporalSupervisor(temporal, tmp_path, "default", initial=0.1)
    supervisor.start()
    try:
        client = await Client.connect(temporal.address, data_converter=pydantic_data_converter)
        # A workflow no worker polls for: it stays running, in the server's state file.
        handle = await client.start_workflow("Unpolled", id="kept-across-restart", task_queue="nobody-polls")
        os.kill(temporal.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while supervisor.restarts == 0:
            assert time.monotonic() < deadline, "the dead dev server was not started again"
            await asyncio.sleep(0.1)
        assert supervisor.current.port == temporal.port
        assert supervisor.current.process.pid != temporal.process.pid
        # The same client, without anyone reconnecting it, finds the workflow the dead server had.
        while True:
            try:
                described = await handle.describe()
                break
            except RPCError:
                assert time.monotonic() < deadline, "the client did not reconnect"
                await asyncio.sleep(0.2)
        assert described.status == WorkflowExecutionStatus.RUNNING
    finally:
        await supervisor.shutdown()
    assert supervisor.current.process.returncode is not None
