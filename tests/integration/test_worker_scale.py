"""The worker at scale, small: three worker processes share the journeys, one is SIGKILLed mid-run.

Every journey still closes and no notification is sent or stored twice. bench/worker_scale.py runs
the same at full size (`kill --journeys 300`) and measures the memory per 1,000 open journeys.
"""

from __future__ import annotations

import collections
import time
import uuid
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from bench.worker_scale import put_people, run_with_a_kill, start_worker, stop_worker, worker_env
from tests.conftest import SESSION_VAULT_KEY
from tests.integration.conftest import MailServer

JOURNEYS = 8
WORKERS = 3


async def test_three_workers_one_killed_every_journey_closes_and_nothing_is_sent_twice(
    dev_server: WorkflowEnvironment,
    database_dsn: str,
    pool: asyncpg.Pool[asyncpg.Record],
    mailbox: MailServer,
    tmp_path: Path,
) -> None:
    task_queue = f"wscale-{uuid.uuid4().hex[:8]}"
    env = worker_env(
        database_url=database_dsn,
        temporal_address=dev_server.client.service_client.config.target_host,
        task_queue=task_queue,
        vault_key=SESSION_VAULT_KEY,  # the worker process refuses a database bound to another key
        data_dir=tmp_path,
        smtp=(mailbox.host, mailbox.port),
        max_cached_workflows=50,
    )
    people = await put_people(pool, SESSION_VAULT_KEY, uuid.uuid4().hex[:8])
    workers = [start_worker(env, tmp_path / f"worker-{i}.log") for i in range(WORKERS)]
    began = time.monotonic()
    try:
        report = await run_with_a_kill(
            dev_server.client,
            pool,
            lambda: collections.Counter(m.message_id.strip("<>").split("@")[0] for m in mailbox.mails()),
            workers,
            people=people,
            task_queue=task_queue,
            journeys=JOURNEYS,
            scale=0.01,
            kill_after=5.0,
            within=60.0,
        )
    finally:
        for worker in workers:
            stop_worker(worker)

    assert report.states == collections.Counter({"closed": JOURNEYS})
    assert len(report.survivors) == WORKERS - 1, "the other workers carried on"
    assert report.mails > 0 and report.outbox_delivered > 0
    # SMTP has no idempotency: a message the killed worker sent but had not yet marked delivered is
    # sent again, with the same Message-ID (its notification's id), and the outbox records that it
    # was. Any other copy would be a duplicate notification.
    assert report.mail_duplicates == report.mail_duplicates_in_doubt, "an e-mail was sent twice, not in doubt"
    assert report.most_copies <= 2
    assert report.outbox_duplicates == 0, "a notification was stored twice"
    assert report.mails_unknown_to_outbox == 0
    assert report.outbox_delivered_not_received == 0
    assert report.outbox_not_final == 0
    print(
        f"\nworker scale: {JOURNEYS} journeys on {WORKERS} workers, one killed: closed in {report.seconds:.1f} s "
        f"({time.monotonic() - began:.1f} s with the workers' start), {report.mails} e-mails, "
        f"{report.mail_duplicates} resent in doubt with the same Message-ID"
    )
