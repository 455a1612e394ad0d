"""A connection going back to the pool (`store.db.LeanConnection`): no round trip when it holds no
session state, and never a transaction, an advisory lock or a session setting carried to the next lease."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
import pytest

from store.db import LeanConnection, create_pool

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"

_LOCKS = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"


@pytest.fixture
async def one(database_dsn: str) -> AsyncIterator[Pool]:
    """A pool of exactly one connection: every lease is the connection the last one gave back."""
    p = await create_pool(database_dsn, min_size=1, max_size=1)
    yield p
    await p.close()


async def _sent_on_release(pool: Pool, *statements: str) -> list[str]:
    """Run `statements` on a lease; the queries the connection sent while it went back."""
    sent: list[str] = []

    def logger(record: Any) -> None:
        sent.append(record.query)

    async with pool.acquire() as conn:
        for statement in statements:
            await conn.execute(statement)
        raw = conn._con  # type: ignore[attr-defined]  # the connection under the proxy
        assert isinstance(raw, LeanConnection)
        sent.clear()
        raw.add_query_logger(logger)
    raw.remove_query_logger(logger)
    return sent


async def test_a_connection_without_session_state_goes_back_without_a_round_trip(one: Pool) -> None:
    sent = await _sent_on_release(one, "SELECT 1", "UPDATE schema_migrations SET name = name WHERE false")
    assert sent == []
    async with one.acquire() as conn:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"


async def test_an_open_transaction_is_rolled_back_before_the_next_lease(one: Pool, unique: str) -> None:
    async with one.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", unique)
        await conn.execute("CREATE TABLE IF NOT EXISTS pool_reset_probe (id text)")
        await conn.execute("INSERT INTO pool_reset_probe VALUES ($1)", unique)
    async with one.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT pg_current_xact_id_if_assigned()") is None
        assert await conn.fetchval(_LOCKS) == 0
        assert await conn.fetchval("SELECT to_regclass('pool_reset_probe')") is None


async def test_a_session_advisory_lock_never_outlives_its_lease(one: Pool, pool: Pool, unique: str) -> None:
    # A lock its holder could not release (its unlock cancelled, say), in and out of a transaction.
    sent = await _sent_on_release(one, f"SELECT pg_advisory_lock(hashtextextended('{unique}', 0))")
    assert any("pg_advisory_unlock_all" in q for q in sent)
    async with one.acquire() as conn:
        assert await conn.fetchval(_LOCKS) == 0
    async with one.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 1))", unique)
    async with one.acquire() as conn:
        assert await conn.fetchval(_LOCKS) == 0
    # Another session can take both at once.
    assert await pool.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", unique)
    assert await pool.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 1))", unique)


async def test_session_settings_and_listeners_are_reset_and_then_the_release_is_lean_again(one: Pool) -> None:
    sent = await _sent_on_release(one, "SET statement_timeout = '1234ms'")
    assert any("RESET ALL" in q for q in sent)
    async with one.acquire() as conn:
        assert await conn.fetchval("SHOW statement_timeout") == "0"
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        await conn.execute("LISTEN pool_reset_probe")
    async with one.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    # Once reset, a lease that leaves no state costs no round trip again.
    assert await _sent_on_release(one, "SELECT 1") == []


async def test_transaction_local_statements_leave_no_session_state(one: Pool) -> None:
    sent = await _sent_on_release(
        one,
        "BEGIN",
        "SET LOCAL synchronous_commit = off",
        "SELECT set_config('talent.probe', 'on', true)",
        "SELECT pg_advisory_xact_lock(42)",
        "COMMIT",
    )
    assert sent == []
    async with one.acquire() as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
