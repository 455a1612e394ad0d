"""Fixtures shared by every test speed: a throw-away database on a real PostgreSQL."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from infra.postgres import create_database, drop_database, server_dsn
from infra.settings import Settings
from store.db import bind_instance, create_pool, key_id, migrate
from store.vault import PeopleVault

ROOT = Path(__file__).resolve().parents[1]
#: The session database's vault key: the database is bound to it (§8.3), so a worker or API
#: process a test starts against it must be given this key.
SESSION_VAULT_KEY = os.urandom(32)
# Every `talent dev` a test starts takes free ports for its Temporal dev server, never the usual
# 7233/8233: tests run in two processes, and two checks of "is 7233 free" can both say yes.
os.environ.setdefault("TALENT_DEV_TEMPORAL_PORT", "0")
os.environ.setdefault("TALENT_DEV_TEMPORAL_UI_PORT", "0")


def session_settings(data_dir: Path, **values: Any) -> Settings:
    """Settings for an API or a worker a test builds (`service.bootstrap`): `data_dir`, the session's
    vault key, and `values` (by field name or variable name)."""
    key = base64.b64encode(SESSION_VAULT_KEY).decode()
    return Settings.model_validate({"data_dir": data_dir, "TALENT_VAULT_KEY": key, **values})


@pytest.fixture(scope="session")
async def database_dsn() -> AsyncIterator[str]:
    """A fresh, migrated database for this test session, dropped at the end."""
    server = await server_dsn(ROOT / ".data" / "test")
    name = f"talent_test_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(server, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await bind_instance(conn, key_id(SESSION_VAULT_KEY))
    finally:
        await conn.close()
    yield dsn
    await drop_database(server, name)


@pytest.fixture(scope="session")
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on the session's database."""
    p = await create_pool(database_dsn, min_size=2, max_size=24)
    # Vaults built on this pool key ids with the database's instance id key, as every process a
    # test starts on the session database does (`infra.postgres.open_pool`).
    await PeopleVault(p, SESSION_VAULT_KEY).open_id_key()
    yield p
    await p.close()


@pytest.fixture
def unique() -> str:
    """A short unique id, so tests never need to truncate tables."""
    return uuid.uuid4().hex[:12]
