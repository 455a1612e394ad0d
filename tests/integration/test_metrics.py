"""Seeing it: `/metrics` on the API (route templates, command outcomes, appends, read-model gauges)
and on a worker process (the same, and the Temporal SDK's own metrics)."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import asyncpg
import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import Authenticator
from domain import commands as c
from service import bootstrap
from tests.conftest import SESSION_VAULT_KEY, session_settings
from tests.e2e.conftest import TOKENS, api, auth  # noqa: F401 - the api fixture is used here
from tests.support import COORD, nominate, reference_cohort, reference_programme
from tests.workflows.conftest import journey_worker, time_env  # noqa: F401 - fixtures used here
from tests.workflows.journeys import end_journey
from workers.worker import free_port
from workflows.client import execute, start_journey

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus exposition, parsed by prometheus_client's own parser."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


def _worker(env: dict[str, str], log: BinaryIO) -> subprocess.Popen[bytes]:
    """`talent worker` in a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)


async def test_api_metrics_hold_route_templates_commands_appends_and_gauges(
    api: httpx.AsyncClient,  # noqa: F811 - the imported fixture
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    unique: str,
) -> None:
    before = samples((await api.get("/metrics")).text)
    programme = reference_programme().model_copy(update={"id": f"tnl-m-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-m-{unique}", starts_on=(now + timedelta(days=21)).date())
    cohort = cohort.model_copy(update={"coordinator_id": "p-coord"})
    assert (
        await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=auth("coordinator"))
    ).is_success
    assert (await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=auth("coordinator"))).is_success
    nomination = {
        "cohort_id": cohort.cohort_id,
        "motivation": "Stærk i teamet.",
        "talent": {"person_id": "p-talent", "name": "Mette", "email": "mette@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    created = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert created.status_code == 201, created.text
    journey_id = created.json()["journey_id"]
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))).status_code == 200
    forbidden = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("talent")
    )
    assert forbidden.status_code == 403
    unknown = await api.post(
        f"/v1/journeys/{journey_id}/attendance",
        json={"session_key": "nope", "status": "attended"},
        headers=auth("coordinator"),
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_session"
    assert (await api.get(f"/v1/no-such-thing/{journey_id}")).status_code == 404

    with structlog.testing.capture_logs() as logged:
        scraped = await api.get("/metrics")  # no token: the scrape is not behind the API's
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert "x-correlation-id" not in scraped.headers  # answered before the request context
    assert not [line for line in logged if line.get("event") in ("request", "access")]
    after = samples(scraped.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/journeys/{journey_id}"
    assert grew("talent_http_request_duration_seconds_count", method="GET", route=route, status_class="2xx") == 1
    assert grew("talent_http_request_duration_seconds_count", method="POST", route="/v1/journeys") == 1
    assert grew("talent_http_request_duration_seconds_count", route="unmatched", status_class="4xx") >= 1
    # No id and no raw path in any label of any series.
    assert not [s for s in after if any(journey_id in v or unique in v for v in s.labels.values())]
    assert grew("talent_commands_total", command="POST /v1/journeys", outcome="accepted") == 1
    reason = forbidden.json()["code"]
    assert (
        grew(
            "talent_commands_total", command="POST /v1/journeys/{journey_id}/decision", outcome="refused", reason=reason
        )
        == 1
    )
    assert (
        grew(
            "talent_commands_total",
            command="POST /v1/journeys/{journey_id}/attendance",
            outcome="refused",
            reason="unknown_session",
        )
        == 1
    )
    # The nomination's events were appended by the worker in this process, through the store.
    assert grew("talent_events_appended_total", event_type="TalentNominated") >= 1
    names = {s.name for s in after}
    assert {"talent_outbox_pending", "talent_outbox_dead", "talent_escalations_open"} <= names
    assert value(after, "talent_outbox_pending") >= 0


async def test_metrics_can_be_turned_off(
    pool: asyncpg.Pool[asyncpg.Record],
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    resources = bootstrap.resources(
        session_settings(tmp_path, TALENT_METRICS_ENABLED="false"),
        pool=pool,
        temporal=time_env.client,
        authenticator=Authenticator(list(TOKENS.values())),
    )
    transport = httpx.ASGITransport(app=create_app(resources))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_a_worker_process_serves_its_metrics_and_the_sdks(
    dev_server: WorkflowEnvironment,
    database_dsn: str,
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_dsn,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "TALENT_TASK_QUEUE": f"metrics-{run}",
        "TALENT_VAULT_KEY": base64.b64encode(SESSION_VAULT_KEY).decode(),
        "TALENT_WORKER_METRICS_PORT": str(port),
        "TALENT_LOG_FORMAT": "json",
        "TALENT_LOG_LEVEL": "WARNING",
        "TALENT_DATA_DIR": str(tmp_path),
    }
    log = (tmp_path / "worker.log").open("ab")
    worker = _worker(env, log)
    try:
        programme = reference_programme().model_copy(update={"id": f"tnl-w-{run}"})
        now = await dev_server.get_current_time()
        cohort = reference_cohort(programme, cohort_id=f"c-w-{run}", starts_on=(now + timedelta(days=21)).date())
        nomination = nominate(programme, cohort, journey_id=f"j-metrics-{run}")
        handle = await start_journey(dev_server.client, nomination, task_queue=f"metrics-{run}")
        await asyncio.wait_for(execute(handle, c.DecideNomination(**COORD, decision="approve")), timeout=60)
        async with httpx.AsyncClient() as http:
            text = ""
            for _ in range(100):
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    text = ""
                if "talent_events_appended_total" in text and "temporal_" in text:
                    break
                await asyncio.sleep(0.2)
        found = samples(text)
        assert value(found, "talent_events_appended_total", event_type="TalentNominated") >= 1
        assert value(found, "talent_events_appended_total", event_type="TalentEnrolled") >= 1
        assert {"talent_outbox_pending", "talent_outbox_dead", "talent_escalations_open"} <= {s.name for s in found}
        # The Temporal SDK's own series, from its Prometheus exporter, in the same scrape.
        assert [s for s in found if s.name.startswith("temporal_")], text[-2000:]
        await end_journey(handle)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
