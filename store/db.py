"""Connection pools and schema migrations (ordered SQL files, each applied once and recorded)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

#: A connection of our own or one lent by a pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Serialises concurrent migrators (several workers starting at once) on one advisory lock.
_MIGRATION_LOCK = 0x7A1E47_0001
_KEY_ID_LABEL = b"talent-journey/key-id/v1"


@dataclass(frozen=True)
class Migration:
    """One SQL file of the schema."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """A digest that detects an applied migration edited afterwards."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The packaged migrations, in order of their file names."""
    folder = resources.files("store") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name, f.read_text(encoding="utf-8")) for f in files]


class MigrationError(RuntimeError):
    """An applied migration no longer matches its file."""


async def migrate(conn: Connection) -> list[str]:
    """Apply the migrations not yet applied; return their names. Safe to run concurrently."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"]: r["checksum"] for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")}
        for migration in migrations():
            if migration.name in done:
                if done[migration.name] != migration.checksum:
                    raise MigrationError(f"migration {migration.name} was changed after it was applied")
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.name)
    return applied_now


def key_id(master_key: bytes) -> str:
    """The public id of a vault master key: HMAC-SHA256(key, a fixed label), 16 hex digits.

    Safe to store and print: it tells two keys apart without revealing anything of either.
    """
    return hmac.new(master_key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


async def bind_instance(conn: Connection, key: str) -> str:
    """Record `key` (a `key_id`) as the database's instance if none is recorded; the recorded one.

    The caller compares: a different answer means another instance's key wrote this database.
    """
    async with conn.transaction():
        await conn.execute("INSERT INTO instance_binding (key_id) VALUES ($1) ON CONFLICT DO NOTHING", key)
        recorded: str = await conn.fetchval("SELECT key_id FROM instance_binding")
    return recorded


async def instance_key_id(conn: Connection) -> str | None:
    """The key id this database is bound to, or None before its first start."""
    found: str | None = await conn.fetchval("SELECT key_id FROM instance_binding")
    return found


# Statements that leave state in the session, beyond their transaction: a session-level advisory
# lock (not `_xact_`), LISTEN, a plain or SESSION `SET` (not `SET LOCAL`), `set_config(..., false)`
# or with a computed third argument, an SQL cursor or prepared statement, a temporary table.
_SESSION_STATE = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\s*\("
    r"|(^|;)\s*(LISTEN|DECLARE|PREPARE|SET(?!\s+LOCAL\b)|RESET|DISCARD)\b"
    r"|set_config\s*\((?![^()]*,\s*true\s*\))"
    r"|\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?(TEMP|TEMPORARY|UNLOGGED\s+TEMP)\b",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def leaves_session_state(query: str) -> bool:
    """Whether `query` may leave state in the session after its transaction ends (see `LeanConnection`)."""
    return _SESSION_STATE.search(query) is not None


class LeanConnection(asyncpg.Connection):
    """A pooled connection whose release costs no round trip unless the session holds state.

    asyncpg resets every connection going back to its pool with `SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`: a round trip per pooled call, for state almost no statement
    here leaves behind. This class notes every statement it runs (`leaves_session_state`: session
    advisory locks, LISTEN, session SET, SQL cursors and prepared statements, temporary tables)
    and listeners added, and sends that reset query only when one ran since the last reset: the
    cohort's seat lock (`pg_advisory_lock`) still pays it, so a lock its `finally` could not
    release (a cancelled unlock) never outlives the lease. An open transaction is always rolled
    back by asyncpg itself, before the reset query. A server-side function that sets session
    state is not seen: none here does (their `set_config` calls are transaction-local).
    """

    __slots__ = ("_session_state",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session_state = False

    @property
    def holds_session_state(self) -> bool:
        """Whether a statement that may leave session state ran since the last reset."""
        return self._session_state

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's signature
        if not self._session_state and leaves_session_state(query):
            self._session_state = True
        return await super().execute(query, *args, timeout=timeout)

    async def _get_statement(self, query: str, *args: Any, **kwargs: Any) -> Any:
        # Every prepared path (fetch*, execute with arguments, executemany, cursor, prepare).
        if not self._session_state and leaves_session_state(query):
            self._session_state = True
        return await super()._get_statement(query, *args, **kwargs)  # type: ignore[misc]

    async def add_listener(self, channel: str, callback: Any) -> None:
        self._session_state = True
        await super().add_listener(channel, callback)

    def get_reset_query(self) -> str:
        """The full reset query after a statement that may have left session state; else none."""
        return super().get_reset_query() if self._session_state else ""

    async def reset(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - asyncpg's signature
        await super().reset(timeout=timeout)
        self._session_state = False


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool[asyncpg.Record]:
    """A pool for the service; statements are prepared and cached per connection.

    Generic plans: the append statement has ~30 parameters, and PostgreSQL's default (`auto`)
    keeps re-planning it per call, which cost as much as executing it (measured: 0.35 ms plan,
    0.37 ms run). Every statement here is keyed by primary or indexed columns, so a generic plan
    is as good as a custom one.

    Connections are `LeanConnection`s: giving one back costs a round trip only if it holds session state.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        server_settings={"plan_cache_mode": "force_generic_plan"},
        connection_class=LeanConnection,
    )
    assert pool is not None
    return pool
