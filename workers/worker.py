"""The journey worker process: its parts from `service.bootstrap`, run until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from domain.calendar import danish_holidays
from infra.settings import Settings
from service.bootstrap import WorkerComponents, database, temporal_client, worker_components
from workflows.journey import TalentJourneyWorkflow
from workflows.names import SEARCH_ATTRIBUTES

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


def build_worker(client: Client, parts: WorkerComponents, *, task_queue: str) -> Worker:
    """The worker for journeys on `task_queue`."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TalentJourneyWorkflow],
        workflow_runner=workflow_runner(),
        activities=list(parts.activities),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with database(settings) as pool, worker_components(settings, pool) as parts:
        client = await temporal_client(settings)
        # Every worker makes sure of them: a fresh cluster has none, and "already there" is fine.
        await register_search_attributes(client, settings.temporal_namespace)
        worker = build_worker(client, parts, task_queue=settings.task_queue)
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("worker_stopping")
    log.info("worker_stopped")
