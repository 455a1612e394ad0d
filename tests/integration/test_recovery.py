"""The defects the fault harness (bench/chaos.py) found, each reproduced deterministically: approvals
in more cohorts at once than the API's pool has connections, a retried command whose first answer
was lost, and a worker started while PostgreSQL is not up yet."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator
from api.problems import connection_lost
from service import bootstrap
from store.db import create_pool
from tests.conftest import ROOT, SESSION_VAULT_KEY, session_settings
from tests.e2e.conftest import TOKENS, auth
from tests.integration.test_talent_dev import free_port
from tests.support import reference_cohort, reference_programme
from tests.workflows.conftest import journey_worker, time_env  # noqa: F401 - fixtures used here

COORD = auth("coordinator")
#: The API's pool here: three connections, so four cohorts approving at once outnumber it.
POOL_SIZE = 3


@pytest.fixture
async def small_api(
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    journey_worker: Worker,  # noqa: F811 - the imported fixture
    database_dsn: str,
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process on a pool of `POOL_SIZE` connections of its own."""
    pool = await create_pool(database_dsn, min_size=1, max_size=POOL_SIZE)
    try:
        resources = bootstrap.resources(
            session_settings(tmp_path),
            pool=pool,
            temporal=time_env.client,
            authenticator=Authenticator(list(TOKENS.values())),
            task_queue=journey_worker.task_queue,
        )
        transport = httpx.ASGITransport(app=create_app(resources))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=60) as client:
            yield client
    finally:
        await pool.close()


async def _cohorts(api: httpx.AsyncClient, time_env: WorkflowEnvironment, name: str, count: int) -> list[str]:  # noqa: F811
    programme = reference_programme().model_copy(update={"id": f"rec-{name}"})
    starts_on = (await time_env.get_current_time() + timedelta(days=21)).date()
    cohorts = [reference_cohort(programme, cohort_id=f"c-{name}-{n}", starts_on=starts_on) for n in range(count)]
    for path, body in (("/v1/programmes", programme), *(("/v1/cohorts", cohort) for cohort in cohorts)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=COORD)
        assert created.status_code == 201, created.text
    return [cohort.cohort_id for cohort in cohorts]


async def _nominate(api: httpx.AsyncClient, cohort_id: str, talent_id: str) -> str:
    nomination = {
        "cohort_id": cohort_id,
        "motivation": "Stærk i teamet.",
        "talent": {"person_id": talent_id, "name": "Mette", "email": "mette@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    created = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert created.status_code == 201, created.text
    journey_id: str = created.json()["journey_id"]
    return journey_id


async def test_more_concurrent_approvals_than_the_pool_has_connections_all_complete(
    small_api: httpx.AsyncClient,
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    unique: str,
) -> None:
    # Five approvals in one cohort and one in each of three more: every approval holds its cohort's
    # seat lock on a connection of its own and needs another for its work under it.
    cohorts = await _cohorts(small_api, time_env, f"seats-{unique}", 4)
    targets = [cohorts[0]] * 5 + cohorts[1:]
    journeys = [await _nominate(small_api, cohort_id, f"p-seat-{unique}-{n}") for n, cohort_id in enumerate(targets)]
    assert len(journeys) > POOL_SIZE

    async def approve(journey_id: str) -> httpx.Response:
        return await small_api.post(f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=COORD)

    answers = await asyncio.wait_for(asyncio.gather(*(approve(j) for j in journeys)), timeout=60)
    assert [a.status_code for a in answers] == [200] * len(journeys), [a.text for a in answers]
    assert {a.json()["state"] for a in answers} == {"enrolled"}


async def test_a_retried_command_whose_first_answer_was_lost_gets_the_first_answer_not_a_refusal(
    small_api: httpx.AsyncClient,
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    unique: str,
) -> None:
    (cohort_id,) = await _cohorts(small_api, time_env, f"retry-{unique}", 1)
    talent_id = f"p-retry-{unique}"
    journey_id = await _nominate(small_api, cohort_id, talent_id)

    async def texts() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM person_texts WHERE person_id = $1", talent_id))

    for path, body in (
        # A command with a text: the workflow is asked first (check_command), and it now says
        # "already decided"; without the replay that answered 409 and deleted the stored reason.
        ("decision", {"decision": "approve", "reason": "Klar til forløbet."}),
        # A command that ends the journey: a retry finds the workflow ended (JourneyEnded, 409).
        ("withdraw", {"reason": "Nyt job."}),
    ):
        key = f"k-{path}-{unique}"
        headers = {**COORD, "Idempotency-Key": key}
        first = await small_api.post(f"/v1/journeys/{journey_id}/{path}", json=body, headers=headers)
        assert first.status_code == 200, first.text
        stored = await texts()
        # The answer was lost: the API stopped (a crash, PostgreSQL down) between the command and
        # storing its answer under the key, and the client retries with the same key.
        await pool.execute("DELETE FROM idempotency_keys WHERE key = $1", key)
        retried = await small_api.post(f"/v1/journeys/{journey_id}/{path}", json=body, headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["events"] == first.json()["events"] and first.json()["events"]
        assert retried.json()["state"] == first.json()["state"]
        assert await texts() == stored  # the first attempt's text is kept
    events = await small_api.get(f"/v1/journeys/{journey_id}/events", headers=COORD)
    types = [item["event_type"] for item in events.json()["items"]]
    assert types.count("NominationApproved") == 1 and types.count("TalentWithdrawn") == 1, types
    # Another command with a key never used is still refused as before.
    again = await small_api.post(
        f"/v1/journeys/{journey_id}/withdraw",
        json={"reason": "Igen."},
        headers={**COORD, "Idempotency-Key": f"k-other-{unique}"},
    )
    assert again.status_code == 409, again.text


@contextlib.asynccontextmanager
async def _proxy(port: int, target_host: str, target_port: int) -> AsyncIterator[None]:
    """A TCP relay on `port` to the real PostgreSQL: the server "comes up" when it starts listening."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def _line(stream: asyncio.StreamReader, text: str, within: float) -> str:
    async def find() -> str:
        while line := (await stream.readline()).decode():
            if text in line:
                return line
        raise AssertionError(f"the worker exited without logging {text!r}")

    return await asyncio.wait_for(find(), timeout=within)


async def test_a_worker_started_before_postgresql_is_up_waits_for_it_and_runs(
    dev_server: WorkflowEnvironment, database_dsn: str, tmp_path: Path
) -> None:
    dsn = urlsplit(database_dsn)
    port = free_port()
    behind = dsn._replace(netloc=dsn.netloc.replace(f"{dsn.hostname}:{dsn.port}", f"127.0.0.1:{port}"))
    assert dsn.hostname and dsn.port and behind != dsn
    env = {k: v for k, v in os.environ.items() if k not in ("TALENT_TOKENS_FILE", "TALENT_VAULT_KEY")}
    env.update(
        DATABASE_URL=urlunsplit(behind),
        TALENT_VAULT_KEY=base64.b64encode(SESSION_VAULT_KEY).decode(),
        TEMPORAL_ADDRESS=dev_server.client.service_client.config.target_host,
        TALENT_TASK_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        TALENT_DATA_DIR=str(tmp_path),
        TALENT_LOG_FORMAT="json",
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert worker.stdout is not None
    try:
        # Nothing listens yet: the worker says so and tries again, instead of exiting with 2.
        for _ in range(2):
            await _line(worker.stdout, "database_not_ready", within=30)
        assert worker.returncode is None
        async with _proxy(port, dsn.hostname, dsn.port):
            await _line(worker.stdout, "worker_started", within=45)
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), timeout=30) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


def test_only_the_interface_errors_of_a_lost_connection_mean_503() -> None:
    # asyncpg's own texts: a connection PostgreSQL closed, or one the pool took back when it died.
    for lost in (
        "cannot perform operation: connection is closed",
        "cannot call Connection.execute(): connection has been released back to the pool",
    ):
        assert connection_lost(asyncpg.InterfaceError(lost)), lost
    assert connection_lost(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"))
    # A bug stays a 500: another operation on the same connection, a value PostgreSQL refused.
    assert not connection_lost(asyncpg.InterfaceError("cannot perform operation: another operation is in progress"))
    assert not connection_lost(asyncpg.DataError("invalid input for query argument $1"))
