"""Seeing it: one trace from the caller's HTTP request through the API, the Temporal update and
the workflow to the activity that appends the journey's events (OpenTelemetry, W3C propagation)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import Authenticator
from infra import telemetry
from service import bootstrap
from service.bootstrap import worker_components
from tests.conftest import session_settings
from tests.e2e.conftest import TOKENS, auth
from tests.support import reference_cohort, reference_programme
from tests.workflows.conftest import time_env  # noqa: F401 - the fixture used here
from tests.workflows.journeys import end_journey
from workers.worker import build_worker

#: The caller's trace: the API's server span is its child (W3C traceparent).
TRACE_ID = uuid.uuid4().hex
CALLER_SPAN = uuid.uuid4().hex[:16]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, into memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        telemetry.use_tracer_provider(None)
        provider.shutdown()


def in_trace(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s for s in exporter.get_finished_spans() if s.context is not None and f"{s.context.trace_id:032x}" == TRACE_ID
    ]


async def test_one_trace_runs_from_the_http_request_through_the_workflow_to_the_activity(
    spans: InMemorySpanExporter,
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
) -> None:
    # The client as `infra.temporal.connect` makes it with tracing on: the interceptor on the
    # client, and so on every worker built on it.
    config = time_env.client.config()
    config["interceptors"] = telemetry.temporal_interceptors()
    client = Client(**config)
    unique = uuid.uuid4().hex[:8]
    async with worker_components(session_settings(tmp_path), pool) as parts:
        worker = build_worker(client, parts, task_queue=f"tq-trace-{unique}")
        async with worker:
            resources = bootstrap.resources(
                session_settings(tmp_path),
                pool=pool,
                temporal=client,
                authenticator=Authenticator(list(TOKENS.values())),
                task_queue=worker.task_queue,
            )
            transport = httpx.ASGITransport(app=create_app(resources))
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
                programme = reference_programme().model_copy(update={"id": f"tnl-t-{unique}"})
                now = await time_env.get_current_time()
                starts = (now + timedelta(days=21)).date()
                cohort = reference_cohort(programme, cohort_id=f"c-t-{unique}", starts_on=starts)
                for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
                    assert (
                        await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
                    ).is_success
                nomination = {
                    "cohort_id": cohort.cohort_id,
                    "motivation": "Stærk i teamet.",
                    "talent": {"person_id": "p-talent", "name": "Mette", "email": "mette@example.org"},
                    "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
                }
                traceparent = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
                created = await api.post("/v1/journeys", json=nomination, headers=auth("hr") | traceparent)
                assert created.status_code == 201, created.text
                journey_id = created.json()["journey_id"]

            found: list[ReadableSpan] = []
            for _ in range(50):
                found = in_trace(spans)
                if any(s.name.startswith("RunActivity:") for s in found):
                    break
                await asyncio.sleep(0.1)
            names = {s.name for s in found}
            server = [s for s in found if s.name == "POST /v1/journeys"]
            assert len(server) == 1, names
            assert server[0].kind == SpanKind.SERVER
            assert server[0].parent is not None and f"{server[0].parent.span_id:016x}" == CALLER_SPAN
            assert server[0].attributes is not None and server[0].attributes["http.route"] == "/v1/journeys"
            assert server[0].attributes["http.response.status_code"] == 201
            # The Temporal client's update-with-start, the workflow's run and update, the activity.
            assert any(n.startswith("StartUpdateWithStartWorkflow:") for n in names), names
            assert any(n.startswith("RunWorkflow:") for n in names), names
            assert any(n.startswith("HandleUpdate:") for n in names), names
            assert any(n.startswith("StartActivity:") for n in names), names
            assert any(n.startswith("RunActivity:") for n in names), names
            # Nothing in the trace names a person or carries the request's path with an id.
            assert not [s for s in found if journey_id in s.name]
            await end_journey(client.get_workflow_handle(f"journey-{journey_id}"))
