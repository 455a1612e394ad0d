"""The access log in PostgreSQL (PRODUCT §8.7): append-only, expired only by age through
`expire_access_log`, queried per person, journey and actor, exported per person by the CLI."""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

import asyncpg
import pytest

from cli import main as cli
from store.access_log import AccessLog
from tests.conftest import SESSION_VAULT_KEY

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


async def _insert_at(pool: Pool, at: datetime, actor: str, person: str) -> None:
    await pool.execute(
        "INSERT INTO access_log (at, actor_id, role, channel, action, person_ids, outcome) "
        "VALUES ($1, $2, 'coordinator', 'api', 'GET /v1/test', ARRAY[$3], '200')",
        at,
        actor,
        person,
    )


async def test_rows_are_queried_by_person_journey_and_actor_newest_first_in_pages(pool: Pool, unique: str) -> None:
    log = AccessLog(pool)
    person, journey, actor = f"p-{unique}", f"j-{unique}", f"file:{unique}"
    for n in range(3):
        await log.record(
            actor_id=actor,
            role="coordinator",
            channel="api",
            action="GET /v1/journeys/{journey_id}",
            journey_ids=[journey] if n else [],
            person_ids=[person],
            correlation_id=f"h{n}",
            outcome="200",
        )
    await log.record(actor_id=f"file:other-{unique}", role="leader", channel="dashboard", action="x", outcome="404")

    first = await log.query(person_id=person, limit=2)
    assert [r.correlation_id for r in first.items] == ["h2", "h1"] and first.next is not None
    rest = await log.query(person_id=person, limit=2, cursor=int(first.next))
    assert [r.correlation_id for r in rest.items] == ["h0"] and rest.next is None
    assert [r.correlation_id for r in (await log.query(journey_id=journey)).items] == ["h2", "h1"]
    assert len((await log.query(actor=actor)).items) == 3
    assert (await log.query(actor=actor, after=datetime.now(UTC) + timedelta(hours=1))).items == []
    assert (await log.query(actor=actor, before=datetime.now(UTC) - timedelta(hours=1))).items == []
    assert [r.outcome for r in (await log.query(actor=f"file:other-{unique}")).items] == ["404"]
    exported = await log.export_person(person)
    assert [r.correlation_id for r in exported] == ["h0", "h1", "h2"]


async def test_update_delete_and_truncate_are_refused_for_the_service_itself(pool: Pool, unique: str) -> None:
    await AccessLog(pool).record(actor_id=f"file:{unique}", role="leader", channel="api", action="x", outcome="200")
    for statement in (
        "UPDATE access_log SET outcome = '500' WHERE actor_id = $1",
        "DELETE FROM access_log WHERE actor_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement, f"file:{unique}")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("TRUNCATE access_log")
    assert await pool.fetchval("SELECT outcome FROM access_log WHERE actor_id = $1", f"file:{unique}") == "200"
    # The guard is local to expire_access_log's transaction: nothing after it deletes through it.
    async with pool.acquire() as conn, conn.transaction():
        await conn.fetchval("SELECT expire_access_log('1990-01-01T00:00Z')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM access_log WHERE actor_id = $1", f"file:{unique}")


async def test_expire_access_log_deletes_only_the_rows_before_its_instant(pool: Pool, unique: str) -> None:
    actor = f"file:expire-{unique}"
    old, kept = datetime(2000, 3, 1, tzinfo=UTC), datetime(2002, 3, 1, tzinfo=UTC)
    for at in (old, old + timedelta(days=1), kept):
        await _insert_at(pool, at, actor, f"p-{unique}")
    deleted = await pool.fetchval("SELECT expire_access_log($1)", datetime(2001, 1, 1, tzinfo=UTC))
    assert deleted == 2
    remaining = await pool.fetch("SELECT at FROM access_log WHERE actor_id = $1", actor)
    assert [r["at"] for r in remaining] == [kept]
    assert await pool.fetchval("SELECT expire_access_log($1)", datetime(2001, 1, 1, tzinfo=UTC)) == 0


async def test_the_cli_logs_its_reads_and_exports_every_row_concerning_a_person(
    pool: Pool,
    database_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unique: str,
) -> None:
    for name, value in {
        "DATABASE_URL": database_dsn,
        "TALENT_VAULT_KEY": base64.b64encode(SESSION_VAULT_KEY).decode(),
        "TALENT_DATA_DIR": str(tmp_path),
        "TALENT_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    person = f"p-{unique}"
    await AccessLog(pool).record(
        actor_id="file:someone", role="leader", channel="api", action="GET x", person_ids=[person], outcome="200"
    )
    # A read of an unknown journey: refused, and logged as the operator's.
    code = await asyncio.to_thread(cli.main, ["journey", "status", f"j-{unique}"])
    assert code == 1
    row = await pool.fetchrow("SELECT * FROM access_log WHERE journey_ids @> ARRAY[$1]", f"j-{unique}")
    assert row is not None
    assert (row["actor_id"], row["role"], row["channel"], row["action"], row["outcome"]) == (
        f"cli:{getpass.getuser()}",
        "operator",
        "cli",
        "journey status",
        "refused",
    )

    output = tmp_path / "dsar.jsonl"
    assert await asyncio.to_thread(cli.main, ["audit", "export", "--person", person, "--output", str(output)]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["actor_id"], r["action"]) for r in lines] == [("file:someone", "GET x")]
    assert output.stat().st_mode & 0o777 == 0o600
    # The export is itself logged; a second export (to standard output) shows it.
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["audit", "export", "--person", person])
    assert code == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in printed] == ["GET x", "audit export"]
    actions = [r.action for r in await AccessLog(pool).export_person(person)]
    assert actions == ["GET x", "audit export", "audit export"]
