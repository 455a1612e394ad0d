"""The API in process over ASGI, on the time-skipping server with a real worker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator, TokenEntry
from service import bootstrap
from tests.conftest import SESSION_VAULT_KEY, session_settings
from tests.workflows.conftest import journey_worker, time_env  # noqa: F401 - fixtures used here

#: One vault key for the whole session: the people the tests share (p-leader, ...) stay readable.
VAULT_KEY = SESSION_VAULT_KEY

TOKENS = {
    "coordinator": TokenEntry(token="tok-coordinator", role="coordinator", person_id="p-coord"),
    "hr": TokenEntry(token="tok-hr", role="hr_system"),
    "leader": TokenEntry(token="tok-leader", role="leader", person_id="p-leader"),
    "other_leader": TokenEntry(token="tok-other-leader", role="leader", person_id="p-other-leader"),
    "talent": TokenEntry(token="tok-talent", role="talent", person_id="p-talent"),
}


@pytest.fixture
async def api(
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    journey_worker: Worker,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the API, which talks to the test worker's task queue."""
    resources = bootstrap.resources(
        session_settings(tmp_path, max_body_bytes=64 * 1024),
        pool=pool,
        temporal=time_env.client,
        authenticator=Authenticator(list(TOKENS.values())),
        task_queue=journey_worker.task_queue,
    )
    transport = httpx.ASGITransport(app=create_app(resources))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


def auth(who: str) -> dict[str, str]:
    """The Authorization header of a test principal."""
    return {"Authorization": f"Bearer {TOKENS[who].token}"}
