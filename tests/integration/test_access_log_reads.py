"""A read's access-log row (`AccessLog.record(durable=False)`): the same row, written in the request's
path and failing it if it cannot be written, committed without waiting for the WAL flush, and
leaving nothing in the session (`synchronous_commit` is off for the row's own transaction only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
import pytest

from store.access_log import AccessLog
from store.db import create_pool

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


@pytest.fixture
async def one(database_dsn: str) -> AsyncIterator[Pool]:
    """A pool of one connection: the next lease is the connection the row was written on."""
    p = await create_pool(database_dsn, min_size=1, max_size=1)
    yield p
    await p.close()


async def test_a_read_row_is_the_same_row_and_visible_at_once(pool: Pool, unique: str) -> None:
    log = AccessLog(pool)
    journey = f"j-{unique}"
    for durable in (True, False):
        await log.record(
            actor_id=f"file:{unique}",
            role="coordinator",
            channel="api",
            action="GET /v1/journeys/{journey_id}",
            outcome="200",
            journey_ids=[journey],
            person_ids=[f"p-{unique}"],
            correlation_id="c1",
            durable=durable,
        )
    page = await log.query(actor=f"file:{unique}")
    assert [r.model_dump(exclude={"id", "at"}) for r in page.items] == [
        {
            "actor_id": f"file:{unique}",
            "role": "coordinator",
            "channel": "api",
            "action": "GET /v1/journeys/{journey_id}",
            "journey_ids": [journey],
            "person_ids": [f"p-{unique}"],
            "correlation_id": "c1",
            "outcome": "200",
        }
    ] * 2


async def test_a_read_row_that_cannot_be_written_raises(pool: Pool, unique: str) -> None:
    bad: Any = "carrier-pigeon"  # the table's CHECK refuses it, as a full disk or a lost server would fail it
    with pytest.raises(asyncpg.CheckViolationError):
        await AccessLog(pool).record(
            actor_id=unique, role="coordinator", channel=bad, action="GET /x", outcome="200", durable=False
        )
    assert (await AccessLog(pool).query(actor=unique)).items == []


async def test_the_lazy_commit_stays_in_the_rows_own_transaction(one: Pool, unique: str) -> None:
    await AccessLog(one).record(
        actor_id=unique, role="coordinator", channel="api", action="GET /x", outcome="200", durable=False
    )
    async with one.acquire() as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert not conn._con.holds_session_state  # type: ignore[attr-defined]
