"""Crash test: the worker process is SIGKILLed again and again while journeys run; nothing is lost."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.events import EVENT_ADAPTER, stream_id_for
from domain.journey import next_wakeup
from store.vault import PeopleVault, PersonData
from tests.conftest import SESSION_VAULT_KEY
from tests.integration.conftest import WEBHOOK_SECRET, MailServer, WebhookReceiver
from tests.support import COORD, SYSTEM, Journey, compressed_cohort, compressed_programme, scaled
from workflows.client import execute, start_journey

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = 6
KILLS = 5


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
    )


def _expected(nomination: c.NominateTalent, nominated_at: datetime, approved_at: datetime) -> list[dict[str, Any]]:
    """The journey's events from the pure domain, waking at every deadline: what must be stored."""
    j = Journey()
    j.send(nomination, nominated_at)
    j.send(c.DecideNomination(**COORD, decision="approve"), approved_at)
    while (wake := next_wakeup(j.state)) is not None:
        j.send(c.AdvanceClock(**SYSTEM), wake)
    return [n.event.model_dump(mode="json") for n in j.history]


async def test_journeys_survive_repeated_worker_kills_with_nothing_lost_or_duplicated(
    dev_server: WorkflowEnvironment,
    database_dsn: str,
    pool: asyncpg.Pool[asyncpg.Record],
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    tmp_path: Path,
) -> None:
    key = SESSION_VAULT_KEY  # the worker process refuses a database bound to another key
    vault = PeopleVault(pool, key)
    run = uuid.uuid4().hex[:8]
    people = {role: f"p-crash-{run}-{role}" for role in ("talent", "leader", "boss")}
    for role, person in people.items():
        await vault.put_person(person, PersonData(name=f"{role.title()} {run}", email=f"{role}-{run}@example.org"))
    await vault.put_person("p-coord", PersonData(name="Coordinator", email="coordinator@example.org"))

    task_queue = f"crash-{run}"
    env = {
        **os.environ,
        "DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "TALENT_TASK_QUEUE": task_queue,
        "TALENT_VAULT_KEY": base64.b64encode(key).decode(),
        "TALENT_SMTP_HOST": mailbox.host,
        "TALENT_SMTP_PORT": str(mailbox.port),
        "TALENT_WEBHOOK_URL": webhooks.url,
        "TALENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TALENT_LOG_FORMAT": "json",
        "TALENT_LOG_LEVEL": "WARNING",
        "TALENT_DATA_DIR": str(tmp_path),
    }
    log = tmp_path / "worker.log"
    programme = scaled(compressed_programme(), 0.025)
    start = datetime.now(UTC) + timedelta(seconds=4)
    cohort = compressed_cohort(programme, start, cohort_id=f"crash-{run}")
    worker = _worker(env, log)
    kills = 0
    try:
        handles, expected = [], {}
        for i in range(JOURNEYS):
            journey_id = f"crash-{run}-{i}"
            nomination = c.NominateTalent(
                actor_id=people["leader"],
                actor_role="leader",
                journey_id=journey_id,
                talent_id=people["talent"],
                nearest_leader_id=people["leader"],
                leaders_leader_id=people["boss"],
                programme=programme,
                cohort=cohort,
            )
            handle = await start_journey(dev_server.client, nomination, task_queue=task_queue)
            await execute(handle, c.DecideNomination(**COORD, decision="approve"))
            handles.append(handle)
            expected[journey_id] = nomination
        # Kill the worker at random moments while the journeys' deadlines fire.
        rng = random.Random(run)
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            kills += 1
            worker = _worker(env, log)
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=240)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()

    assert kills == KILLS
    assert {r.state for r in results} == {"closed"}
    total_events = 0
    for journey_id, nomination in expected.items():
        rows = await pool.fetch(
            "SELECT stream_version, event_type, data::text AS data, occurred_at FROM events WHERE stream_id = $1 "
            "ORDER BY stream_version",
            stream_id_for(journey_id),
        )
        assert [r["stream_version"] for r in rows] == list(range(1, len(rows) + 1)), "versions must be contiguous"
        stored = [
            EVENT_ADAPTER.validate_python({**json.loads(r["data"]), "type": r["event_type"]}).model_dump(mode="json")
            for r in rows
        ]
        want = _expected(nomination, rows[0]["occurred_at"], rows[1]["occurred_at"])
        # Same events, same order, same data: none lost, none duplicated, whatever the kills did.
        assert [e["type"] for e in stored] == [e["type"] for e in want]
        assert stored == want
        total_events += len(rows)

    outbox = await pool.fetch(
        "SELECT notification_id, channel, status FROM outbox WHERE journey_id LIKE $1", f"crash-{run}-%"
    )
    assert outbox and {r["status"] for r in outbox} <= {"delivered", "skipped"}
    delivered_mail = {
        str(r["notification_id"]) for r in outbox if r["channel"] == "email" and r["status"] == "delivered"
    }
    delivered_hooks = {
        str(r["notification_id"]) for r in outbox if r["channel"] == "webhook" and r["status"] == "delivered"
    }
    mail_ids = collections.Counter(m.message_id.strip("<>").split("@")[0] for m in mailbox.mails())
    hook_ids = collections.Counter(h.key for h in webhooks.hooks())
    # Received at least once each, and nothing received that the outbox does not know: exactly once in effect.
    assert set(mail_ids) == delivered_mail
    assert set(hook_ids) == delivered_hooks
    duplicates = sum(n - 1 for n in mail_ids.values()) + sum(n - 1 for n in hook_ids.values())
    print(
        f"\ncrash test: {kills} kills, {len(expected)} journeys, {total_events} events (0 lost, 0 duplicated), "
        f"{len(delivered_mail)} mails + {len(delivered_hooks)} webhooks delivered, "
        f"{duplicates} redelivered with the same idempotency key"
    )
