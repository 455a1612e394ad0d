"""The journey worker process: its parts from `service.bootstrap`, run until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from domain.calendar import danish_holidays
from infra.settings import Settings
from infra.telemetry import serve_worker_metrics, shutdown_tracing
from infra.temporal import connect, sdk_runtime
from service.bootstrap import WorkerComponents, database, temporal_client, worker_components
from workflows.journey import TalentJourneyWorkflow
from workflows.names import SEARCH_ATTRIBUTES
from workflows.retention import RetentionWorkflow, ensure_retention_schedule

log = structlog.get_logger("talent.worker")


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


def build_worker(
    client: Client,
    parts: WorkerComponents,
    *,
    task_queue: str,
    max_cached_workflows: int = 1000,
    max_concurrent_activities: int = 100,
) -> Worker:
    """The worker for journeys on `task_queue`, keeping at most `max_cached_workflows` in memory."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TalentJourneyWorkflow, RetentionWorkflow],
        workflow_runner=workflow_runner(),
        activities=list(parts.activities),
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_cached_workflows=max_cached_workflows,
        max_concurrent_activities=max_concurrent_activities,
    )


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        pool = await stack.enter_async_context(_database_when_up(settings, stop))
        parts = await stack.enter_async_context(worker_components(settings, pool))
        if settings.worker_metrics_port is None:
            client = await temporal_client(settings)
        else:
            # The SDK's own metrics on a loopback port of their own, appended to the worker's /metrics.
            sdk_address = f"127.0.0.1:{free_port()}"
            client = await connect(settings, runtime=sdk_runtime(sdk_address))
            await stack.enter_async_context(
                serve_worker_metrics(
                    pool,
                    host=settings.worker_metrics_host,
                    port=settings.worker_metrics_port,
                    sdk_metrics_url=f"http://{sdk_address}/metrics",
                )
            )
        # Every worker makes sure of them: a fresh cluster has none, and "already there" is fine.
        await register_search_attributes(client, settings.temporal_namespace)
        await ensure_retention_schedule(
            client, task_queue=settings.task_queue, cron=settings.retention_cron, time_zone=settings.retention_time_zone
        )
        worker = build_worker(
            client,
            parts,
            task_queue=settings.task_queue,
            max_cached_workflows=settings.worker_max_cached_workflows,
            max_concurrent_activities=settings.worker_max_concurrent_activities,
        )
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("worker_stopping")
    shutdown_tracing()
    log.info("worker_stopped")


#: PostgreSQL not there yet: starting up or recovering (57P03), shutting down, not listening, the
#: connection cut. A worker started with it (a host booting, a crash-restart) waits instead of
#: exiting; a database of another instance (`InstanceMismatch`) is still refused at once.
TRANSIENT_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
    ConnectionError,
    TimeoutError,
)
#: How long a starting worker waits for PostgreSQL, and its longest pause between attempts.
STARTUP_PATIENCE = 120.0
STARTUP_MAX_PAUSE = 5.0


@contextlib.asynccontextmanager
async def _database_when_up(
    settings: Settings, stop: asyncio.Event, *, within: float = STARTUP_PATIENCE
) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    """The worker's pool (`database`), trying again with backoff while PostgreSQL is not up yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.2
    while True:
        try:
            opened = database(settings)
            pool = await opened.__aenter__()
            break
        except TRANSIENT_DATABASE_ERRORS as exc:
            if stop.is_set() or loop.time() + pause > deadline:
                raise
            log.warning("database_not_ready", error=type(exc).__name__, detail=str(exc)[:200], retry_in=pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
            pause = min(pause * 2, STARTUP_MAX_PAUSE)
    try:
        yield pool
    finally:
        await opened.__aexit__(None, None, None)


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
