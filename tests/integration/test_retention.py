"""Retention per data category (PRODUCT §8.7, docs/retention.md) on a real PostgreSQL and Temporal.

The module has a database of its own: a retention run deletes whatever its rules say is due in
the whole database, so it must not see (or delete) another test's rows. Journeys are written as
the domain decides them (its `decide`/`evolve`, at chosen instants), so their ends lie years back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.events import EventMetadata, stream_id_for
from domain.journey import next_wakeup
from infra.postgres import create_database, drop_database, server_dsn
from store.db import bind_instance, create_pool, key_id, migrate
from store.eventstore import EventStore
from store.retention import Retention, RetentionItem, RetentionRules
from store.vault import Erased, PeopleVault, PersonData
from tests.conftest import SESSION_VAULT_KEY
from tests.support import COORD, SYSTEM, Journey, compressed_cohort, compressed_programme, nominate
from workflows.retention import ensure_retention_schedule, retention_schedule_id

ROOT = Path(__file__).resolve().parents[2]
#: The instant the plans are made at: whole years after every journey below ended.
NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
SIX_MONTHS_BEFORE = datetime(2030, 9, 1, 12, 0, tzinfo=UTC)  # NOW - P6M exactly
ONE_YEAR_BEFORE = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)  # NOW - P1Y exactly
SECOND = timedelta(seconds=1)
TABLES = ("person_texts", "person_keys", "idempotency_keys", "outbox", "dashboard_sessions")


def _talent(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`talent ARGS` in a process of its own, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`talent worker` in a process of its own, its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


@dataclass
class Seeded:
    """What a seeding wrote: its journeys' texts by journey, and the people's names and e-mails."""

    texts: dict[str, list[str]]
    pii: list[str]


@pytest.fixture(scope="module")
async def retention_dsn() -> AsyncIterator[str]:
    """A database of this module's own, bound to the session's vault key."""
    server = await server_dsn(ROOT / ".data" / "test")
    name = f"talent_retention_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(server, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await bind_instance(conn, key_id(SESSION_VAULT_KEY))
    finally:
        await conn.close()
    yield dsn
    await drop_database(server, name)


@pytest.fixture(scope="module")
async def rpool(retention_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the module's database."""
    p = await create_pool(retention_dsn, min_size=1, max_size=6)
    yield p
    await p.close()


async def _journey(
    pool: asyncpg.Pool, vault: PeopleVault, prefix: str, journey_id: str, ended: datetime, how: str, **people: str
) -> list[str]:
    """Write a journey that ended at `ended` (`reject`, `withdraw`, or `appointed`: closed with an
    appointment recorded); return its vault text ids."""
    talent = people.get("talent", f"{prefix}-talent-{journey_id}")
    leader = people.get("leader", f"{prefix}-leader")
    for person in (talent, leader, f"{prefix}-boss"):
        await vault.add_person(person, PersonData(name=f"Navn {person}", email=f"{person}@example.org"))
    fields = ("motivation", "reason") if how in ("reject", "withdraw") else ("motivation",)
    texts = [f"t-{prefix}-{journey_id}-{field}" for field in fields]
    for text_id in texts:
        await vault.put_text(talent, f"fritekst om {talent}", text_id=text_id)
    programme = compressed_programme()
    j = Journey()
    if how == "appointed":
        nominated = ended - timedelta(hours=2)
        cohort = compressed_cohort(programme, nominated + timedelta(minutes=5), cohort_id=f"{prefix}-cohort")
    else:
        nominated = ended - timedelta(seconds=30)
        cohort = compressed_cohort(programme, ended + timedelta(days=30), cohort_id=f"{prefix}-cohort")
    nomination = nominate(
        programme,
        cohort,
        journey_id=journey_id,
        actor_id=leader,
        talent_id=talent,
        nearest_leader_id=leader,
        leaders_leader_id=f"{prefix}-boss",
        motivation_ref=texts[0],
    )
    j.send(nomination, nominated)
    if how == "reject":
        j.send(c.DecideNomination(**COORD, decision="reject", reason_ref=texts[1]), ended)
    elif how == "withdraw":
        j.send(c.DecideNomination(**COORD, decision="approve"), nominated + SECOND)
        j.send(c.WithdrawTalent(**COORD, reason_ref=texts[1]), ended)
    elif how == "running":
        pass
    else:
        j.send(c.DecideNomination(**COORD, decision="approve"), nominated + SECOND)
        outcome = c.RecordOutcome(**COORD, applied_for_leader_post=True, appointed=True, on=nominated.date())
        while (wake := next_wakeup(j.s)) is not None:
            if j.s.state == "following_up" and not j.s.outcomes:
                j.send(outcome, wake - SECOND)
            j.send(c.AdvanceClock(**SYSTEM), wake)
        assert j.s.state == "closed"
        assert j.s.outcomes
    await EventStore(pool).append(stream_id_for(journey_id), 0, j.history, metadata=EventMetadata(actor=leader))
    return texts


async def _seed(pool: asyncpg.Pool, vault: PeopleVault, prefix: str) -> Seeded:
    """Journeys and rows of every category, some due at NOW and some not."""
    texts = {
        # Rejected exactly P6M before NOW: its texts are due (inclusive), its talent's contact not yet.
        "a": await _journey(pool, vault, prefix, f"{prefix}-a", SIX_MONTHS_BEFORE, "reject"),
        # Withdrawn a second later: nothing of it is due.
        "b": await _journey(pool, vault, prefix, f"{prefix}-b", SIX_MONTHS_BEFORE + SECOND, "withdraw"),
        # Withdrawn exactly P1Y before NOW, never appointed: texts and contact data due.
        "c": await _journey(pool, vault, prefix, f"{prefix}-c", ONE_YEAR_BEFORE, "withdraw"),
        # Appointed, long ago: texts due, contact data kept.
        "d": await _journey(pool, vault, prefix, f"{prefix}-d", ONE_YEAR_BEFORE - timedelta(days=400), "appointed"),
        # A talent who leads another journey: texts due, contact data kept.
        "e": await _journey(
            pool, vault, prefix, f"{prefix}-e", ONE_YEAR_BEFORE - SECOND, "withdraw", talent=f"{prefix}-leader2"
        ),
        "f": await _journey(
            pool, vault, prefix, f"{prefix}-f", NOW - timedelta(days=1), "running", leader=f"{prefix}-leader2"
        ),
    }
    for i, created in enumerate((NOW - timedelta(days=7), NOW - timedelta(days=7) + SECOND)):
        await pool.execute(
            """INSERT INTO idempotency_keys (principal, key, method, path, body_sha256, status, response, created_at)
               VALUES ($1, $2, 'POST', '/v1/journeys', 'x', 201, '{}', $3)""",
            f"{prefix}-caller",
            f"key-{i}",
            created,
        )
    event_id = await pool.fetchval("SELECT event_id FROM events ORDER BY global_position LIMIT 1")
    for status, delivered in (
        ("delivered", NOW - timedelta(days=30)),
        ("delivered", NOW - timedelta(days=30) + SECOND),
        ("pending", None),
    ):
        await pool.execute(
            """INSERT INTO outbox (notification_id, event_id, journey_id, channel, template, recipient_role,
                                   status, delivered_at, created_at)
               VALUES ($1, $2, $3, 'email', 'x', 'talent', $4, $5, $6)""",
            uuid.uuid4(),
            event_id,
            f"{prefix}-a",
            status,
            delivered,
            NOW - timedelta(days=60),
        )
    for expires in (NOW - timedelta(days=1), NOW - timedelta(days=1) + SECOND):
        await pool.execute(
            """INSERT INTO dashboard_sessions (session_sha256, token_id, role, expires_at)
               VALUES ($1, $2, 'coordinator', $3)""",
            os.urandom(32),
            f"{prefix}-token",
            expires,
        )
    people = await pool.fetch("SELECT person_id FROM people WHERE person_id LIKE $1", f"{prefix}-%")
    pii = [f"Navn {r['person_id']}" for r in people] + [f"{r['person_id']}@example.org" for r in people]
    return Seeded(texts=texts, pii=pii)


@pytest.fixture(scope="module")
async def seeded(rpool: asyncpg.Pool) -> Seeded:
    """The module's data, written once."""
    return await _seed(rpool, PeopleVault(rpool, SESSION_VAULT_KEY), "r")


def _retention(pool: asyncpg.Pool) -> Retention:
    return Retention(pool, PeopleVault(pool, SESSION_VAULT_KEY), RetentionRules.from_periods())


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    counts = {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
    counts["people_with_data"] = int(await pool.fetchval("SELECT count(*) FROM people WHERE ciphertext IS NOT NULL"))
    return counts


async def _events_digest(pool: asyncpg.Pool) -> str:
    rows = await pool.fetch("SELECT global_position, data::text, metadata::text FROM events ORDER BY global_position")
    return hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()


def _by_category(items: list[RetentionItem]) -> dict[str, list[RetentionItem]]:
    found: dict[str, list[RetentionItem]] = {}
    for item in items:
        found.setdefault(item.category, []).append(item)
    return found


async def test_plan_lists_exactly_what_is_due_with_the_limit_inclusive(rpool: asyncpg.Pool, seeded: Seeded) -> None:
    items = _by_category(await _retention(rpool).plan(NOW))

    due_texts = {i.subject_ref for i in items["free_texts"]}
    t = seeded.texts
    assert due_texts == {*t["a"], *t["c"], *t["d"], *t["e"]}  # not b (a second short), not f (running)
    a_item = next(i for i in items["free_texts"] if i.subject_ref == t["a"][0])
    assert a_item.due_since == NOW  # the boundary: due at exactly the limit
    assert a_item.rule == "free_texts: P6M after the journey ended"
    # Contact data: only the talent of c (not appointed, no other place); d was appointed, e leads f.
    assert [(i.subject_kind, i.subject_ref, i.due_since) for i in items["contact_data"]] == [
        ("person", "r-talent-r-c", NOW)
    ]
    rows = {c: [(i.count, i.cutoff) for i in items[c]] for c in ("idempotency_keys", "outbox_delivered")}
    assert rows == {
        "idempotency_keys": [(1, NOW - timedelta(days=7))],
        "outbox_delivered": [(1, NOW - timedelta(days=30))],
    }
    assert [i.count for i in items["dashboard_sessions"]] == [1]
    # A second earlier nothing of a's is due yet.
    earlier = await _retention(rpool).plan(NOW - SECOND)
    assert not {i.subject_ref for i in earlier} & set(t["a"])


async def test_cli_plan_prints_the_table_and_json(retention_dsn: str, seeded: Seeded, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": retention_dsn,
        "TALENT_VAULT_KEY": base64.b64encode(SESSION_VAULT_KEY).decode(),
        "TALENT_DATA_DIR": str(tmp_path),
        "TALENT_LOG_LEVEL": "WARNING",
    }
    args = ["retention", "plan", "--at", NOW.isoformat()]
    table = _talent(args, env).stdout
    assert "free_texts: P6M after the journey ended" in table
    assert "person:r-talent-r-c" in table
    as_json = _talent([*args, "--json"], env).stdout
    plan = json.loads(as_json)
    assert {i["category"] for i in plan["items"]} >= {"free_texts", "contact_data", "idempotency_keys"}
    assert not any(p in as_json or p in table for p in seeded.pii)  # ids only, never names or addresses
    bad = _talent([*args[:-1], "2031-03-01T12:00"], env)
    assert bad.returncode == 1
    assert "offset" in bad.stderr


async def test_apply_deletes_exactly_the_plan_records_it_without_pii_and_runs_once(
    rpool: asyncpg.Pool, seeded: Seeded
) -> None:
    retention = _retention(rpool)
    vault = PeopleVault(rpool, SESSION_VAULT_KEY)
    plan = [i for i in await retention.plan(NOW) if i.category != "access_log"]
    before, events_before = await _counts(rpool), await _events_digest(rpool)

    report = await retention.apply(plan, "run-1")

    after = await _counts(rpool)
    t = seeded.texts
    shredded_texts = len({*t["a"], *t["c"], *t["d"], *t["e"]})
    # Texts of c are gone twice over: deleted, and c's key shredded with the rest of c's data.
    assert before["person_texts"] - after["person_texts"] == shredded_texts
    assert before["person_keys"] - after["person_keys"] == 1
    assert before["people_with_data"] - after["people_with_data"] == 1
    assert {k: before[k] - after[k] for k in ("idempotency_keys", "outbox", "dashboard_sessions")} == {
        "idempotency_keys": 1,
        "outbox": 1,
        "dashboard_sessions": 1,
    }
    assert report.deleted["free_texts"] == shredded_texts
    assert report.deleted["contact_data"] == 1
    assert await _events_digest(rpool) == events_before  # the archive keeps every event
    # What was not due still reads; what was is gone.
    assert await vault.get_text(t["b"][0]) == "fritekst om r-talent-r-b"
    assert await vault.get_text(t["a"][0]) is None
    assert isinstance(await vault.get_person("r-talent-r-c"), Erased)
    assert isinstance(await vault.get_person("r-talent-r-d"), PersonData)  # appointed: kept
    assert isinstance(await vault.get_person("r-leader2"), PersonData)  # leads a journey: kept

    ledger = await rpool.fetch("SELECT * FROM retention_ledger WHERE run_id = 'run-1' ORDER BY entry_id")
    assert len(ledger) == report.recorded == len(plan)
    assert {(r["category"], r["subject_ref"]) for r in ledger} == {(i.category, i.subject_ref) for i in plan}
    ledger_text = json.dumps([{k: str(v) for k, v in dict(r).items()} for r in ledger])
    assert not any(p in ledger_text for p in seeded.pii)
    assert "@" not in ledger_text
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await rpool.execute("DELETE FROM retention_ledger")

    # A second run at the same instant (or the same plan again) deletes and records nothing.
    assert [i for i in await retention.plan(NOW) if i.category != "access_log"] == []
    again = await retention.apply(plan, "run-2")
    assert again.recorded == 0
    assert sum(again.deleted.values()) == 0
    assert await _counts(rpool) == after
    assert await rpool.fetchval("SELECT count(*) FROM retention_ledger WHERE run_id = 'run-2'") == 0


async def test_access_log_expires_through_its_own_function(rpool: asyncpg.Pool) -> None:
    exists = await rpool.fetchval("SELECT to_regprocedure('expire_access_log(timestamptz)') IS NOT NULL")
    if not exists:
        pytest.skip("expire_access_log(timestamptz) is created by migration 0007 (the access log), not there yet")
    limit = datetime(2028, 3, 1, 12, tzinfo=UTC)  # NOW - P3Y
    for at in (limit - SECOND, limit, limit + SECOND):
        await rpool.execute(
            """INSERT INTO access_log (at, actor_id, role, channel, action, outcome)
               VALUES ($1, 'p-x', 'coordinator', 'cli', 'retention-test', 'ok')""",
            at,
        )
    items = [i for i in await _retention(rpool).plan(NOW) if i.category == "access_log"]
    assert [(i.rule, i.cutoff, i.count) for i in items] == [("access_log: P3Y after the access", limit, 2)]
    report = await _retention(rpool).apply(items, "run-access-log")
    assert report.deleted["access_log"] == 2
    assert await rpool.fetchval("SELECT count(*) FROM access_log WHERE action = 'retention-test'") == 1
    assert [i for i in await _retention(rpool).plan(NOW) if i.category == "access_log"] == []
    assert (await _retention(rpool).apply(items, "run-access-log-2")).recorded == 0


async def test_the_worker_creates_the_schedule_and_a_triggered_run_applies_it(
    dev_server: WorkflowEnvironment, retention_dsn: str, rpool: asyncpg.Pool, seeded: Seeded, tmp_path: Path
) -> None:
    # Due at the wall clock's now: an idempotency key eight days old, a session expired two days ago.
    await rpool.execute(
        """INSERT INTO idempotency_keys (principal, key, method, path, body_sha256, status, response, created_at)
           VALUES ('s-caller', 'old', 'POST', '/v1/journeys', 'x', 201, '{}', now() - interval '8 days')"""
    )
    task_queue = f"retention-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": retention_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "TALENT_TASK_QUEUE": task_queue,
        "TALENT_VAULT_KEY": base64.b64encode(SESSION_VAULT_KEY).decode(),
        "TALENT_DATA_DIR": str(tmp_path),
        "TALENT_LOG_LEVEL": "WARNING",
    }
    client: Client = dev_server.client
    handle = client.get_schedule_handle(retention_schedule_id(task_queue))
    worker = _worker(env, tmp_path / "worker.log")
    try:
        description = None
        for _ in range(120):
            try:
                description = await handle.describe()
                break
            except RPCError:
                await asyncio.sleep(0.5)
        assert description is not None, (tmp_path / "worker.log").read_text()
        assert description.schedule.spec.time_zone_name == "Europe/Copenhagen"
        assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        next_run = description.info.next_action_times[0].astimezone(ZoneInfo("Europe/Copenhagen"))
        assert (next_run.hour, next_run.minute) == (3, 0)

        run = _talent(["retention", "run"], env)
        assert "triggered the retention schedule" in run.stdout, run.stderr
        # `talent` leaves without the interpreter's teardown, in which a process that used the
        # Temporal client could abort (temporalio/sdk-python#300): a clean exit every time.
        assert run.returncode == 0 and "Fatal Python error" not in run.stderr, run.stderr
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            ledger = await rpool.fetch(
                "SELECT run_id, category, deleted FROM retention_ledger WHERE run_id LIKE $1",
                f"retention-run-{task_queue}%",
            )
            if ledger:
                break
            await asyncio.sleep(0.5)
        assert [(r["category"], r["deleted"]) for r in ledger] == [("idempotency_keys", 1)], (
            tmp_path / "worker.log"
        ).read_text()
        assert await rpool.fetchval("SELECT count(*) FROM idempotency_keys WHERE principal = 's-caller'") == 0

        # A second worker start finds the schedule and updates it: still one, still SKIP.
        again = await ensure_retention_schedule(client, task_queue=task_queue, cron="0 4 * * *", time_zone="UTC")
        described = await again.describe()
        assert described.schedule.spec.time_zone_name == "UTC"
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        await handle.delete()
