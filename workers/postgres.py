"""Find a PostgreSQL to use: DATABASE_URL, else the local server, else an embedded one (pgserver)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from activities.store.db import create_pool, migrate
from workers.settings import Settings

log = structlog.get_logger("talent.postgres")
LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def reachable(dsn: str, wait: float = 3.0) -> bool:
    """Whether a connection to `dsn` can be made now."""
    try:
        conn = await asyncpg.connect(dsn, timeout=wait)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _start_local_cluster() -> bool:
    """Start an installed but stopped Debian cluster (as CI does on a fresh machine)."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return False
    started = False
    for version in sorted(os.listdir("/etc/postgresql")):
        result = subprocess.run(  # noqa: S603 - fixed arguments
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],  # noqa: S607
            capture_output=True,
            check=False,
            timeout=60,
        )
        started = started or result.returncode == 0
    return started


def _embedded(data_dir: Path) -> str:
    from pgserver.postgres_server import get_server  # the fallback only: imported when no server is reachable

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    return str(server.get_uri())


async def server_dsn(data_dir: Path, *, env: dict[str, str] | None = None) -> str:
    """A DSN for a PostgreSQL server: DATABASE_URL if set, the local server, or an embedded one."""
    environ = os.environ if env is None else env
    if environ.get("DATABASE_URL"):
        return environ["DATABASE_URL"]
    if await reachable(LOCAL_DSN):
        return LOCAL_DSN
    if _start_local_cluster():
        for _ in range(20):
            if await reachable(LOCAL_DSN):
                return LOCAL_DSN
            await asyncio.sleep(0.5)
    return await asyncio.to_thread(_embedded, data_dir / "pgdata")


def with_database(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def create_database(dsn: str, database: str) -> str:
    """Create `database` on the server of `dsn` (if missing) and return its DSN."""
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(dsn, database)


async def drop_database(dsn: str, database: str) -> None:
    """Drop `database` on the server of `dsn`, disconnecting its sessions."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def service_database(settings: Settings) -> str:
    """The service's database: DATABASE_URL, else `talent_journey` on the local or an embedded server."""
    if settings.database_url:
        return settings.database_url
    server = await server_dsn(settings.data_dir)
    return await create_database(server, "talent_journey")


async def open_pool(settings: Settings, *, max_size: int = 4) -> asyncpg.Pool[asyncpg.Record]:
    """A pool on the service's database, migrated to the current schema."""
    pool = await create_pool(await service_database(settings), min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
    except BaseException:
        await pool.close()
        raise
    if applied:
        log.info("migrations_applied", migrations=applied)
    return pool
