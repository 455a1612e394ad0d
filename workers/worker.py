"""The journey worker: settings -> logging -> pool -> activities -> Temporal client -> worker."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.journey import JourneyActivities
from activities.notify import Notifier, SmtpConfig, SmtpMailer, WebhookConfig, WebhookSender
from domain.calendar import danish_holidays
from infra.settings import Settings
from infra.temporal import connect
from store.eventstore import EventStore
from store.vault import PeopleVault
from workflows.journey import TalentJourneyWorkflow
from workflows.names import SEARCH_ATTRIBUTES

log = structlog.get_logger("talent.worker")


@dataclass
class Components:
    """What a worker runs: its activities and the resources they hold."""

    pool: asyncpg.Pool[asyncpg.Record]
    store: EventStore
    vault: PeopleVault
    journey: JourneyActivities
    notifier: Notifier
    http: httpx.AsyncClient

    @property
    def activities(self) -> Sequence[Callable[..., Any]]:
        """Every activity function the worker registers."""
        return [self.journey.append_events, self.notifier.deliver]


@contextlib.asynccontextmanager
async def components(settings: Settings, pool: asyncpg.Pool[asyncpg.Record]) -> AsyncIterator[Components]:
    """Build the activities on `pool` from settings; close what they opened on exit."""
    store = EventStore(pool)
    vault = PeopleVault(pool, settings.master_key())
    mailer = None
    if settings.smtp_host:
        mailer = SmtpMailer(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_sender,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                tls=settings.smtp_tls_mode(),
                tls_context=settings.smtp_tls_context(),
            )
        )
    async with httpx.AsyncClient() as http:
        webhook = None
        if settings.webhook_url:
            webhook = WebhookSender(WebhookConfig(url=settings.webhook_url, keys=settings.webhook_keys()), http)
        yield Components(
            pool=pool,
            store=store,
            vault=vault,
            journey=JourneyActivities(store),
            notifier=Notifier(pool, vault, mailer=mailer, webhook=webhook),
            http=http,
        )


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Register the journey search attributes (cohort, state, at risk); already there is fine."""
    for key in SEARCH_ATTRIBUTES:
        # The SDK's key types carry the same numbers as the API's IndexedValueType.
        kind = IndexedValueType.ValueType(int(key.indexed_value_type))
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes={key.name: kind})
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise


#: Pure libraries the domain uses from inside workflows. `holidays` imports its country data (and
#: dateutil, which reads the clock once at import) lazily, on first use: passing them through
#: loads them once, outside the sandbox, instead of inside every workflow run.
PASSTHROUGH_MODULES = ("holidays", "dateutil", "isodate", "orjson", "domain")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with the domain's pure libraries passed through and the holiday table built."""
    danish_holidays()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(client: Client, parts: Components, *, task_queue: str) -> Worker:
    """The worker for journeys on `task_queue`."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TalentJourneyWorkflow],
        workflow_runner=workflow_runner(),
        activities=list(parts.activities),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings, pool: asyncpg.Pool[asyncpg.Record]) -> None:
    """Run a worker until SIGTERM or SIGINT, then shut down gracefully."""
    client = await connect(settings)
    # Every worker makes sure of them: a fresh cluster has none, and "already there" is fine.
    await register_search_attributes(client, settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with components(settings, pool) as parts:
        worker = build_worker(client, parts, task_queue=settings.task_queue)
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("worker_stopping")
    log.info("worker_stopped")
