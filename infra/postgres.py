"""Find a PostgreSQL to use (DATABASE_URL, the local server, an embedded one); check it is this instance's."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from infra.settings import Settings
from store.db import Connection, bind_instance, create_pool, instance_key_id, key_id, migrate
from store.vault import ErasureLedger, PeopleVault

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


def database_for(data_dir: Path) -> str:
    """The database of a data dir when DATABASE_URL is unset: `talent_journey_<8 hex>` of its real path.

    One per data dir, so two checkouts (each with its own dev vault key and Temporal state) on one
    PostgreSQL server never share a database.
    """
    digest = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()
    return f"talent_journey_{digest[:8]}"


async def service_database(settings: Settings) -> str:
    """The service's database: DATABASE_URL, else the data dir's own on the local or an embedded server."""
    if settings.database_url:
        return settings.database_url
    server = await server_dsn(settings.data_dir)
    return await create_database(server, database_for(settings.data_dir))


class InstanceMismatch(Exception):
    """The database belongs to another instance: it was written with another vault key."""


async def _describe(conn: Connection) -> str:
    """Which database, without credentials: `"name" on host:port` (or on a local socket)."""
    row = await conn.fetchrow(
        "SELECT current_database() AS db, host(inet_server_addr()) AS host, inet_server_port() AS port"
    )
    assert row is not None
    where = f"{row['host']}:{row['port']}" if row["host"] is not None else "a local socket"
    return f'the database "{row["db"]}" on {where}'


#: What to do when a database is another instance's.
_WHAT_TO_DO = (
    "Start with the vault key that database was written with (TALENT_VAULT_KEY), or use another database "
    "(DATABASE_URL) or, without DATABASE_URL, another data dir (TALENT_DATA_DIR)."
)


def vault_for(pool: asyncpg.Pool[asyncpg.Record], settings: Settings) -> PeopleVault:
    """The people vault as the settings configure it: the current KEK (TALENT_VAULT_KEY), the old
    ones of a rotation in progress (TALENT_VAULT_OLD_KEYS) and the erasure ledger."""
    return PeopleVault(
        pool,
        settings.master_key(),
        old_keys=settings.old_vault_keys(),
        ledger=ErasureLedger(settings.erasure_ledger_path()),
    )


async def check_instance(pool: asyncpg.Pool[asyncpg.Record], settings: Settings) -> None:
    """Refuse a database another instance wrote (PRODUCT §8.3): its recorded vault key id must be ours.

    The first start records the key id. A database from before the binding existed is bound only
    if the key opens the data keys already in it. During a key rotation (PRODUCT §8.7) the database
    stays bound to the old key until `talent vault rotate-key` completes; a start whose current key
    is the new one and which holds the bound key in TALENT_VAULT_OLD_KEYS is accepted. A key that a
    completed rotation retired is refused. `InstanceMismatch` names the database and says what to
    do; nothing has been read from the vault or written by then.
    """
    master_key = settings.master_key()
    ours = key_id(master_key)
    old_ids = {key_id(key) for key in settings.old_vault_keys()}
    source = "TALENT_VAULT_KEY" if settings.vault_key is not None else f"the dev key {settings.data_dir / 'vault.key'}"
    async with pool.acquire() as conn:
        recorded = await instance_key_id(conn)
        if recorded is None:
            if not await vault_for(pool, settings).opens_stored_keys():
                raise InstanceMismatch(
                    f"{await _describe(conn)} holds people written with another vault key than this start's "
                    f"{ours} ({source}). {_WHAT_TO_DO}"
                )
            recorded = await bind_instance(conn, ours)
            if recorded == ours:
                log.info("instance_bound", key_id=ours)
        if await conn.fetchval("SELECT 1 FROM vault_retired_keys WHERE key_id = $1", ours):
            raise InstanceMismatch(
                f"{await _describe(conn)} retired the vault key {ours} ({source}) in a key rotation: it is bound "
                f"to the key {recorded} now. Start with that key in TALENT_VAULT_KEY."
            )
        if recorded != ours and recorded not in old_ids:
            raise InstanceMismatch(
                f"{await _describe(conn)} belongs to another instance: it was written with the vault key "
                f"{recorded}, this start has {ours} ({source}). {_WHAT_TO_DO}"
            )
        if recorded != ours:
            log.warning("vault_rotation_pending", bound=recorded, current=ours)
        # Data keys from before key ids were recorded were written with the bound key.
        await conn.execute("UPDATE person_keys SET kek_id = $1 WHERE kek_id IS NULL", recorded)
    # The instance id key (made on the first start): every vault built on this pool keys ids with it.
    await vault_for(pool, settings).open_id_key()


async def open_pool(settings: Settings, *, max_size: int = 4) -> asyncpg.Pool[asyncpg.Record]:
    """A pool on the service's database, migrated to the current schema and checked to be this
    instance's (`check_instance`): the one place the API, the worker, `talent dev` and the CLI get it."""
    pool = await create_pool(await service_database(settings), min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        await check_instance(pool, settings)
    except BaseException:
        await pool.close()
        raise
    if applied:
        log.info("migrations_applied", migrations=applied)
    return pool
