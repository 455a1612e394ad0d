"""While PostgreSQL or Temporal is unreachable the API answers 503 with Retry-After, and /readyz
says which dependency is down."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from api.app import create_app
from api.auth import Authenticator
from service import bootstrap
from tests.conftest import session_settings
from tests.e2e.conftest import TOKENS, auth
from tests.support import reference_cohort, reference_programme

#: Nothing listens here: connections are refused at once.
NOWHERE = "127.0.0.1:9"


async def _client(pool: asyncpg.Pool[asyncpg.Record], temporal: Client, tmp_path: Path) -> httpx.AsyncClient:
    resources = bootstrap.resources(
        session_settings(tmp_path),
        pool=pool,
        temporal=temporal,
        authenticator=Authenticator(list(TOKENS.values())),
        task_queue="nowhere",
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(resources)), base_url="http://api.test")


@pytest.fixture
async def no_temporal() -> Client:
    """A client of a Temporal server that is not there (lazy: it connects on first use)."""
    return await Client.connect(
        NOWHERE, lazy=True, data_converter=pydantic_data_converter, retry_config=RetryConfig(max_retries=0)
    )


@pytest.fixture
async def no_database() -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    """A pool on a PostgreSQL that is not there (no connection until one is needed)."""
    pool = await asyncpg.create_pool(f"postgresql://postgres@{NOWHERE}/talent", min_size=0, timeout=1)
    assert pool is not None
    yield pool
    await pool.close()


async def test_database_down_is_503_with_retry_after_and_readyz_names_it(
    no_database: asyncpg.Pool[asyncpg.Record], no_temporal: Client, tmp_path: Path
) -> None:
    async with await _client(no_database, no_temporal, tmp_path) as api:
        listed = await api.get("/v1/journeys", headers=auth("coordinator"))
        assert listed.status_code == 503, listed.text
        assert listed.headers["retry-after"] == "5"
        assert listed.headers["content-type"] == "application/problem+json"
        assert (listed.json()["code"], listed.json()["dependency"]) == ("unavailable", "database")
        ready = await api.get("/readyz")
        assert ready.status_code == 503 and ready.headers["retry-after"]
        assert ready.json()["checks"] == {"database": "down", "temporal": "down"}
        assert (await api.get("/healthz")).status_code == 200


async def test_temporal_down_is_503_for_commands_while_reads_still_work(
    pool: asyncpg.Pool[asyncpg.Record], no_temporal: Client, tmp_path: Path, unique: str
) -> None:
    async with await _client(pool, no_temporal, tmp_path) as api:
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "temporal": "down"}
        assert (await api.get("/v1/journeys", headers=auth("coordinator"))).status_code == 200
        programme = reference_programme().model_copy(update={"id": f"down-{unique}"})
        cohort = reference_cohort(programme, cohort_id=f"down-{unique}", starts_on=date(2027, 1, 11))
        body = programme.model_dump(mode="json")
        assert (await api.post("/v1/programmes", json=body, headers=auth("coordinator"))).status_code == 201
        body = cohort.model_dump(mode="json")
        assert (await api.post("/v1/cohorts", json=body, headers=auth("coordinator"))).status_code == 201
        nomination = {
            "cohort_id": cohort.cohort_id,
            "motivation": "...",
            "talent": {"person_id": f"p-{unique}", "name": "Ida", "email": "ida@example.org"},
            "nearest_leader": {"person_id": f"l-{unique}", "name": "Ole", "email": "ole@example.org"},
        }
        refused = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
        assert refused.status_code == 503, refused.text
        assert (refused.json()["dependency"], refused.headers["retry-after"]) == ("temporal", "5")
        found = await pool.fetchval("SELECT count(*) FROM journey_status WHERE talent_id = $1", f"p-{unique}")
        assert found == 0


async def _starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A PostgreSQL that is still starting up: it answers every connection with SQLSTATE 57P03."""
    length, code = struct.unpack("!ii", await reader.readexactly(8))
    if code == 80877103:  # SSLRequest: no SSL here; the startup message follows
        writer.write(b"N")
        length = struct.unpack("!i", await reader.readexactly(4))[0]
        await reader.readexactly(length - 4)
    else:
        await reader.readexactly(length - 8)
    fields = b"".join(
        kind + text.encode() + b"\0"
        for kind, text in (
            (b"S", "FATAL"),
            (b"V", "FATAL"),
            (b"C", "57P03"),
            (b"M", "the database system is starting up"),
        )
    )
    body = fields + b"\0"
    writer.write(b"E" + struct.pack("!i", len(body) + 4) + body)
    await writer.drain()
    writer.close()


async def test_a_database_still_starting_up_is_503_not_500(no_temporal: Client, tmp_path: Path) -> None:
    server = await asyncio.start_server(_starting_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{port}/talent", min_size=0, timeout=2)
    assert pool is not None
    try:
        with pytest.raises(asyncpg.CannotConnectNowError):  # what asyncpg makes of it, as a real server's
            await pool.fetchval("SELECT 1")
        async with await _client(pool, no_temporal, tmp_path) as api:
            listed = await api.get("/v1/journeys", headers=auth("coordinator"))
            assert listed.status_code == 503, listed.text
            assert listed.headers["retry-after"] == "5"
            assert (listed.json()["code"], listed.json()["dependency"]) == ("unavailable", "database")
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
