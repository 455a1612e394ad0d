"""The vault's keys (PRODUCT §8.7): a key-encryption key with an id that `talent vault rotate-key`
replaces (resumable, verifiable, the old key retired and refused), and an erasure ledger outside the
database that `talent vault replay-erasures` replays after a backup is restored."""

from __future__ import annotations

import asyncio
import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from infra.postgres import InstanceMismatch, create_database, drop_database, open_pool, server_dsn, vault_for
from infra.settings import Settings
from store.db import key_id
from store.vault import Erased, PeopleVault, PersonData, VaultError

ROOT = Path(__file__).resolve().parents[2]
KEY_A, KEY_B = os.urandom(32), os.urandom(32)
PEOPLE = {f"p-{n:02d}": PersonData(name=f"Person Nummer{n}", email=f"person{n}@example.org") for n in range(7)}


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def environment(dsn: str, key: bytes, data_dir: Path, *, old: bytes | None = None) -> dict[str, str]:
    """The variables of one start: its database, its keys, its data dir (and so its ledger)."""
    env = {"DATABASE_URL": dsn, "TALENT_VAULT_KEY": b64(key), "TALENT_DATA_DIR": str(data_dir)}
    if old is not None:
        env["TALENT_VAULT_OLD_KEYS"] = b64(old)
    return env


def settings(env: dict[str, str]) -> Settings:
    return Settings.model_validate({("database_url" if k == "DATABASE_URL" else k): v for k, v in env.items()})


def inherited() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TALENT_") and k != "DATABASE_URL"}


async def talent(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`talent ...` as an operator runs it: a process of its own."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli.main", *args],
        check=False,
        cwd=ROOT,
        env={**inherited(), **env, "TALENT_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def pg(name: str, *args: str) -> None:
    """Run a PostgreSQL client program to completion."""
    await asyncio.to_thread(subprocess.run, [pg_tool(name), *args], check=True, timeout=120)


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: the newest installed server's, else the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    tool = found[-1] if found else shutil.which(name)
    if tool is None:
        pytest.skip(f"{name} is not installed")
    return tool


Databases = Callable[[], Awaitable[tuple[str, str]]]


@pytest.fixture
async def databases() -> AsyncIterator[Databases]:
    """Make new, empty databases (DSN, name); all dropped at the end."""
    server = await server_dsn(ROOT / ".data" / "test")
    made: list[str] = []

    async def make() -> tuple[str, str]:
        name = f"talent_keys_{uuid.uuid4().hex[:10]}"
        made.append(name)
        return await create_database(server, name), name

    yield make
    for name in made:
        await drop_database(server, name)


async def kek_ids(dsn: str) -> dict[str | None, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT kek_id, count(*) AS n FROM person_keys GROUP BY kek_id")
        return {r["kek_id"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def keyed(env: dict[str, str], *parts: str) -> str:
    """The keyed id of `parts` as a start with `env` computes it (a journey id, a ledger entry)."""
    pool = await open_pool(settings(env))
    try:
        return vault_for(pool, settings(env)).keyed_id(*parts)
    finally:
        await pool.close()


async def id_key_row(dsn: str) -> dict[str, object] | None:
    """The stored instance id key: the KEK it is wrapped under and what it was derived from."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT wrapped_key, kek_id, derived_from FROM vault_id_key")
        return None if row is None else dict(row)
    finally:
        await conn.close()


JOURNEY = ("journey", "programme-1", "p-01", "0")  # as service/journeys.py keys a journey id


async def fill(env: dict[str, str]) -> dict[str, str]:
    """Store PEOPLE and a text of each under the start's key; their text ids."""
    pool = await open_pool(settings(env))
    try:
        vault = vault_for(pool, settings(env))
        texts = {}
        for person_id, data in PEOPLE.items():
            await vault.put_person(person_id, data)
            texts[person_id] = await vault.put_text(person_id, f"refleksion af {data.name}")
        return texts
    finally:
        await pool.close()


async def readable(env: dict[str, str], texts: dict[str, str]) -> dict[str, object]:
    """What a start with `env` reads of every person (and checks their text with them)."""
    pool = await open_pool(settings(env))
    try:
        vault = vault_for(pool, settings(env))
        people: dict[str, object] = dict(await vault.get_people(PEOPLE))
        for person_id, text_id in texts.items():
            text = await vault.get_text(text_id)
            if isinstance(people.get(person_id), PersonData):
                assert text == f"refleksion af {PEOPLE[person_id].name}"
            else:
                assert isinstance(text, Erased)
        return people
    finally:
        await pool.close()


async def test_a_restored_backup_does_not_resurrect_an_erased_person_once_the_ledger_is_replayed(
    databases: Databases, tmp_path: Path
) -> None:
    dsn, _ = await databases()
    env = environment(dsn, KEY_A, tmp_path / "data")
    texts = await fill(env)
    dump = tmp_path / "before-erasure.dump"
    await pg("pg_dump", "-Fc", "-f", str(dump), "-d", dsn)

    erased = "p-03"
    pool = await open_pool(settings(env))
    try:
        assert await vault_for(pool, settings(env)).erase(erased)
    finally:
        await pool.close()

    # The ledger, in the data dir: one entry, a keyed id (under the instance id key, named by its
    # id) and a time, no personal data.
    ledger = tmp_path / "data" / "erasure-ledger.jsonl"
    lines = ledger.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert set(entry) == {"v", "person", "id_key", "erased_at"} and entry["v"] == 2
    assert entry["person"] == await keyed(env, "erasure-ledger", erased)
    assert entry["id_key"] != key_id(KEY_A)
    for personal in (erased, PEOPLE[erased].name, PEOPLE[erased].email, "Nummer3", "person3"):
        assert personal not in ledger.read_text()
    assert oct(ledger.stat().st_mode & 0o777) == "0o600"

    # The backup from before the erasure, restored into a fresh database, brings the person back...
    restored_dsn, _ = await databases()
    await pg("pg_restore", "--no-owner", "-d", restored_dsn, str(dump))
    restored = {**env, "DATABASE_URL": restored_dsn}
    assert await readable(restored, texts) == PEOPLE

    # ... until the ledger is replayed: then they stay erased, and everyone else is still there.
    replay = await talent(restored, "vault", "replay-erasures")
    assert replay.returncode == 0, replay.stderr
    assert "1 erasures" in replay.stdout and "1 shredded now, 0 already erased, 0 not in this database" in replay.stdout
    after = await readable(restored, texts)
    assert isinstance(after[erased], Erased)
    assert {k: v for k, v in after.items() if k != erased} == {k: v for k, v in PEOPLE.items() if k != erased}

    # Idempotent; and the replay itself adds nothing to the ledger.
    again = await talent(restored, "vault", "replay-erasures")
    assert again.returncode == 0 and "0 shredded now, 1 already erased" in again.stdout
    assert len(ledger.read_text().splitlines()) == 1


async def test_an_erasure_the_ledger_cannot_record_is_not_done(databases: Databases, tmp_path: Path) -> None:
    dsn, _ = await databases()
    ledger = tmp_path / "ledger-is-a-directory"
    ledger.mkdir()
    env = {**environment(dsn, KEY_A, tmp_path / "data"), "TALENT_ERASURE_LEDGER": str(ledger)}
    await fill(env)
    pool = await open_pool(settings(env))
    try:
        vault = vault_for(pool, settings(env))
        with pytest.raises(OSError):
            await vault.erase("p-01")
        assert await vault.get_person("p-01") == PEOPLE["p-01"]
    finally:
        await pool.close()


async def _wait_for_a_blocked_rotation(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(600):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", name
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the rotation never reached the locked row")
    finally:
        await conn.close()


async def test_rotating_the_key_online_is_resumable_verifiable_and_retires_the_old_key(
    databases: Databases, tmp_path: Path
) -> None:
    dsn, name = await databases()
    old_env = environment(dsn, KEY_A, tmp_path / "data")
    texts = await fill(old_env)
    assert await kek_ids(dsn) == {key_id(KEY_A): len(PEOPLE)}
    journey_id = await keyed(old_env, *JOURNEY)
    ledger_id = await keyed(old_env, "erasure-ledger", "p-01")

    # The services restart with the new key current and the old one still readable: the database
    # is still bound to the old key, and they are accepted; new data keys go under the new key.
    env = environment(dsn, KEY_B, tmp_path / "data", old=KEY_A)
    pool = await open_pool(settings(env))
    try:
        vault = vault_for(pool, settings(env))
        await vault.put_person("p-new", PersonData(name="Ny Person", email="ny@example.org"))
    finally:
        await pool.close()
    assert await kek_ids(dsn) == {key_id(KEY_A): len(PEOPLE), key_id(KEY_B): 1}
    assert await keyed(env, *JOURNEY) == journey_id  # a nomination retried now finds its journey

    # One batch of two, then stop: reads work with rows under either key.
    partial = await talent(env, "vault", "rotate-key", "--batch-size", "2", "--max-batches", "1")
    assert partial.returncode == 1 and "re-wrapped 2 data keys in 1 batches" in partial.stdout
    assert await kek_ids(dsn) == {key_id(KEY_A): len(PEOPLE) - 2, key_id(KEY_B): 3}
    assert await readable(env, texts) == PEOPLE
    unfinished = await talent(env, "vault", "verify")
    assert unfinished.returncode == 1 and "NOT ok" in unfinished.stdout

    # A run killed in the middle of a batch: the batch is rolled back, the batches before it stay.
    holder = await asyncpg.connect(dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM person_keys WHERE person_id = 'p-05' FOR UPDATE")
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "cli.main", "vault", "rotate-key", "--batch-size", "2"),
            cwd=ROOT,
            env={**inherited(), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await _wait_for_a_blocked_rotation(dsn, name)
        finally:
            process.kill()
            await process.wait()
        await tx.rollback()
    finally:
        await holder.close()
    midway = await kek_ids(dsn)
    assert midway[key_id(KEY_A)] == 3 and midway[key_id(KEY_B)] == len(PEOPLE) - 2  # p-04/p-05 rolled back
    assert await readable(env, texts) == PEOPLE

    # Run again: it finishes, verifies, binds the database to the new key and retires the old one.
    done = await talent(env, "vault", "rotate-key")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "re-wrapped 3 data keys" in done.stdout and f"bound to the key {key_id(KEY_B)}" in done.stdout
    assert f"retired: {key_id(KEY_A)}" in done.stdout
    assert await kek_ids(dsn) == {key_id(KEY_B): len(PEOPLE) + 1}
    verified = await talent(environment(dsn, KEY_B, tmp_path / "data"), "vault", "verify")
    assert verified.returncode == 0 and verified.stdout.strip().endswith("ok"), verified.stdout
    assert f"the instance id key is under {key_id(KEY_B)} and opens" in verified.stdout

    # The id key was re-wrapped, not replaced: every keyed id is as it was before the rotation.
    stored = await id_key_row(dsn)
    assert stored is not None and stored["kek_id"] == key_id(KEY_B) and stored["derived_from"] is None
    new_env = environment(dsn, KEY_B, tmp_path / "data")
    assert await keyed(new_env, *JOURNEY) == journey_id
    assert await keyed(new_env, "erasure-ledger", "p-01") == ledger_id

    # The old key is refused from now on, alone or beside the new one; the new key alone reads all.
    for refused_env in (old_env, environment(dsn, KEY_A, tmp_path / "data", old=KEY_B)):
        with pytest.raises(InstanceMismatch) as refused:
            await open_pool(settings(refused_env))
        assert f"retired the vault key {key_id(KEY_A)}" in str(refused.value)
        assert b64(KEY_A) not in str(refused.value)
    assert await readable(environment(dsn, KEY_B, tmp_path / "data"), texts) == PEOPLE
    cli_refused = await talent(old_env, "vault", "verify")
    assert cli_refused.returncode == 2 and "retired" in cli_refused.stderr

    # A process still running with the old key cannot write a data key under it.
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        with pytest.raises(VaultError, match="retired"):
            await PeopleVault(pool, KEY_A).put_person("p-late", PersonData(name="Sen Person", email="s@example.org"))
    finally:
        await pool.close()


async def test_rotating_offline_to_a_key_file(databases: Databases, tmp_path: Path) -> None:
    dsn, _ = await databases()
    old_env = environment(dsn, KEY_A, tmp_path / "data")
    texts = await fill(old_env)
    key_file = tmp_path / "new.key"
    key_file.write_text(b64(KEY_B) + "\n")

    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    refused = await talent(old_env, "vault", "rotate-key", "--new-key-file", str(bad))
    assert refused.returncode == 1 and "exactly 32 bytes" in refused.stderr and "not a key" not in refused.stderr
    assert await kek_ids(dsn) == {key_id(KEY_A): len(PEOPLE)}

    journey_id = await keyed(old_env, *JOURNEY)
    done = await talent(old_env, "vault", "rotate-key", "--new-key-file", str(key_file), "--batch-size", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"re-wrapped {len(PEOPLE)} data keys in 3 batches" in done.stdout
    with pytest.raises(InstanceMismatch):
        await open_pool(settings(old_env))
    assert await readable(environment(dsn, KEY_B, tmp_path / "data"), texts) == PEOPLE
    assert await keyed(environment(dsn, KEY_B, tmp_path / "data"), *JOURNEY) == journey_id


async def test_data_keys_from_before_key_ids_are_backfilled_to_the_bound_key(
    databases: Databases, tmp_path: Path
) -> None:
    dsn, _ = await databases()
    env = environment(dsn, KEY_A, tmp_path / "data")
    texts = await fill(env)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE person_keys SET kek_id = NULL")
    finally:
        await conn.close()
    assert await readable(env, texts) == PEOPLE  # the start backfilled them
    assert await kek_ids(dsn) == {key_id(KEY_A): len(PEOPLE)}


def test_old_keys_are_checked_and_never_quoted() -> None:
    good = Settings.model_validate({"TALENT_VAULT_OLD_KEYS": f"{b64(KEY_A)}, {b64(KEY_B)}"})
    assert good.old_vault_keys() == (KEY_A, KEY_B)
    assert Settings().old_vault_keys() == ()
    with pytest.raises(ValueError, match="32 bytes") as bad:
        Settings.model_validate({"TALENT_VAULT_OLD_KEYS": "c2VjcmV0LXZhbHVl"}).old_vault_keys()
    assert "c2VjcmV0" not in str(bad.value)


async def test_a_new_database_gets_a_random_id_key_stored_only_wrapped(databases: Databases, tmp_path: Path) -> None:
    first, _ = await databases()
    second, _ = await databases()
    ids = []
    for dsn in (first, second):
        env = environment(dsn, KEY_A, tmp_path / "data")
        ids.append(await keyed(env, *JOURNEY))
        assert await keyed(env, *JOURNEY) == ids[-1]  # stable from one start to the next
        stored = await id_key_row(dsn)
        assert stored is not None and stored["kek_id"] == key_id(KEY_A) and stored["derived_from"] is None
        assert len(stored["wrapped_key"]) == 12 + 32 + 16  # type: ignore[arg-type]  # nonce, sealed key, tag
    # Same KEK, two instances: their keyed ids differ, and neither is a function of the KEK.
    assert ids[0] != ids[1]
    assert PeopleVault(None, KEY_A).keyed_id(*JOURNEY) not in ids  # type: ignore[arg-type]


async def test_a_database_from_before_the_id_key_keeps_its_keyed_ids_across_a_rotation(
    databases: Databases, tmp_path: Path
) -> None:
    dsn, _ = await databases()
    env = environment(dsn, KEY_A, tmp_path / "data")
    texts = await fill(env)
    # As a database from before the id key: its ids were derived from its KEK.
    before = PeopleVault(None, KEY_A)  # type: ignore[arg-type]  # no pool opened: the old derivation
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM vault_id_key")
    finally:
        await conn.close()
    ledger = tmp_path / "data" / "erasure-ledger.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    old_entry = {"v": 1, "person": before.keyed_id("erasure-ledger", "p-02"), "kek_id": key_id(KEY_A), "erased_at": "x"}
    ledger.write_text(json.dumps(old_entry) + "\n")

    # Its next start (mid-rotation, the new key current) makes the id key the old derivation.
    rotating = environment(dsn, KEY_B, tmp_path / "data", old=KEY_A)
    assert await keyed(rotating, *JOURNEY) == before.keyed_id(*JOURNEY)
    stored = await id_key_row(dsn)
    assert stored is not None and stored["derived_from"] == key_id(KEY_A) and stored["kek_id"] == key_id(KEY_B)
    done = await talent(rotating, "vault", "rotate-key")
    assert done.returncode == 0, done.stdout + done.stderr

    # After the rotation, with the new key only: the same ids, and the old ledger entry still matches.
    new_env = environment(dsn, KEY_B, tmp_path / "data")
    assert await keyed(new_env, *JOURNEY) == before.keyed_id(*JOURNEY)
    replay = await talent(new_env, "vault", "replay-erasures")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "1 shredded now, 0 already erased, 0 not in this database" in replay.stdout
    after = await readable(new_env, texts)
    assert isinstance(after["p-02"], Erased) and after["p-01"] == PEOPLE["p-01"]


async def test_the_ledger_replays_after_a_rotation_without_the_old_key(databases: Databases, tmp_path: Path) -> None:
    dsn, _ = await databases()
    env = environment(dsn, KEY_A, tmp_path / "data")
    texts = await fill(env)
    dump = tmp_path / "before-erasure.dump"
    await pg("pg_dump", "-Fc", "-f", str(dump), "-d", dsn)
    pool = await open_pool(settings(env))
    try:
        assert await vault_for(pool, settings(env)).erase("p-04")  # recorded while KEY_A is the KEK
    finally:
        await pool.close()

    # The backup is restored and the restored database rotated to KEY_B; KEY_A is then gone.
    restored_dsn, _ = await databases()
    await pg("pg_restore", "--no-owner", "-d", restored_dsn, str(dump))
    key_file = tmp_path / "new.key"
    key_file.write_text(b64(KEY_B))
    rotated = await talent(
        {**env, "DATABASE_URL": restored_dsn}, "vault", "rotate-key", "--new-key-file", str(key_file)
    )
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_env = environment(restored_dsn, KEY_B, tmp_path / "data")
    assert await readable(new_env, texts) == PEOPLE

    replay = await talent(new_env, "vault", "replay-erasures")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "1 shredded now, 0 already erased, 0 not in this database" in replay.stdout
    after = await readable(new_env, texts)
    assert isinstance(after["p-04"], Erased)
    assert {k: v for k, v in after.items() if k != "p-04"} == {k: v for k, v in PEOPLE.items() if k != "p-04"}

    # Another instance's ledger matches nothing here, and says so.
    other_dsn, _ = await databases()
    other_env = environment(other_dsn, KEY_B, tmp_path / "other")
    await fill(other_env)
    foreign = await talent(
        {**other_env, "TALENT_ERASURE_LEDGER": str(tmp_path / "data" / "erasure-ledger.jsonl")},
        "vault",
        "replay-erasures",
    )
    assert foreign.returncode == 1 and "another instance's id key" in foreign.stdout
    assert "0 shredded now, 0 already erased, 1 not in this database" in foreign.stdout
