"""A database belongs to one instance (PRODUCT §8.3): bound to its vault key on first start, refused
with a clear message to a start with another key, and one database per data dir for `talent dev`."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from infra.postgres import (
    InstanceMismatch,
    create_database,
    database_for,
    drop_database,
    open_pool,
    server_dsn,
)
from infra.settings import Settings
from store.db import key_id
from store.vault import PeopleVault, PersonData
from tests.integration.test_talent_dev import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY_A, KEY_B = os.urandom(32), os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def settings(dsn: str, key: bytes, data_dir: Path) -> Settings:
    """The settings of one instance: its database and its vault key."""
    return Settings.model_validate({"database_url": dsn, "TALENT_VAULT_KEY": b64(key), "TALENT_DATA_DIR": data_dir})


@pytest.fixture
async def fresh() -> AsyncIterator[tuple[str, str]]:
    """A new, empty database (its DSN and name), dropped at the end."""
    server = await server_dsn(ROOT / ".data" / "test")
    name = f"talent_instance_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(server, name)
    yield dsn, name
    await drop_database(server, name)


async def binding(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["key_id"] for r in await conn.fetch("SELECT key_id FROM instance_binding")]
    finally:
        await conn.close()


async def test_the_first_start_binds_the_database_to_its_key_and_another_key_is_refused(
    fresh: tuple[str, str], tmp_path: Path
) -> None:
    dsn, name = fresh
    pool = await open_pool(settings(dsn, KEY_A, tmp_path))
    await pool.close()
    recorded = await binding(dsn)
    # An id of the key, never the key: 16 hex digits of an HMAC, and not a piece of the key itself.
    assert recorded == [key_id(KEY_A)] and re.fullmatch(r"[0-9a-f]{16}", recorded[0])
    assert recorded[0] not in (KEY_A.hex(), b64(KEY_A)) and recorded[0] not in KEY_A.hex()

    with pytest.raises(InstanceMismatch) as refused:
        await open_pool(settings(dsn, KEY_B, tmp_path))
    message = str(refused.value)
    assert f'the database "{name}"' in message and "belongs to another instance" in message
    assert key_id(KEY_A) in message and key_id(KEY_B) in message
    for what_to_do in ("TALENT_VAULT_KEY", "DATABASE_URL", "TALENT_DATA_DIR"):
        assert what_to_do in message
    assert b64(KEY_B) not in message and b64(KEY_A) not in message
    assert await binding(dsn) == [key_id(KEY_A)]  # the refused start changed nothing

    # The same key passes, again and again.
    for _ in range(2):
        pool = await open_pool(settings(dsn, KEY_A, tmp_path))
        await pool.close()
    assert await binding(dsn) == [key_id(KEY_A)]


async def test_a_database_from_before_the_binding_is_bound_only_by_a_key_that_opens_its_people(
    fresh: tuple[str, str], tmp_path: Path
) -> None:
    dsn, name = fresh
    pool = await open_pool(settings(dsn, KEY_A, tmp_path))
    try:
        await PeopleVault(pool, KEY_A).put_person("p-old", PersonData(name="Gammel Person", email="g@example.org"))
        await pool.execute("DELETE FROM instance_binding")  # as a database migrated from before it
    finally:
        await pool.close()

    with pytest.raises(InstanceMismatch) as refused:
        await open_pool(settings(dsn, KEY_B, tmp_path))
    assert f'the database "{name}"' in str(refused.value) and "another vault key" in str(refused.value)
    assert await binding(dsn) == []

    pool = await open_pool(settings(dsn, KEY_A, tmp_path))
    await pool.close()
    assert await binding(dsn) == [key_id(KEY_A)]


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *command],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_api_the_worker_and_talent_dev_refuse_another_instances_database_with_exit_code_2(
    fresh: tuple[str, str], tmp_path: Path
) -> None:
    dsn, name = fresh
    pool = await open_pool(settings(dsn, KEY_A, tmp_path / "a"))
    await pool.close()
    env = {
        k: v for k, v in os.environ.items() if k not in ("TALENT_TOKENS_FILE", "TEMPORAL_ADDRESS", "TALENT_VAULT_KEY")
    }
    # Another checkout: its own data dir and dev key, the same database.
    env.update(DATABASE_URL=dsn, TALENT_DATA_DIR=str(tmp_path / "b"), TALENT_LOG_FORMAT="json")
    commands = (["api", "--port", str(free_port())], ["worker"], ["dev", "--port", str(free_port()), "--no-demo"])
    results = await asyncio.gather(*(asyncio.to_thread(_run, command, env) for command in commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f'the database "{name}"' in result.stderr and "belongs to another instance" in result.stderr, command
        assert str(tmp_path / "b" / "vault.key") in result.stderr and "TALENT_VAULT_KEY" in result.stderr
    assert await binding(dsn) == [key_id(KEY_A)]

    # With the database's key, the same command gets past the check (here: migrate, which stops there).
    right = _run(["migrate"], {**env, "TALENT_VAULT_KEY": b64(KEY_A)})
    assert right.returncode == 0, right.stderr


def test_without_database_url_every_data_dir_has_a_database_of_its_own(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    link = tmp_path / "link"
    link.symlink_to(one)
    assert re.fullmatch(r"talent_journey_[0-9a-f]{8}", database_for(one))
    assert database_for(one) != database_for(two)
    # The real path decides: the same directory by another name is the same instance.
    assert database_for(link) == database_for(one) == database_for(one / ".." / "one")
