"""A PII canary: one unique marker in every personal field, free text, correlation id and JWT `sub`
of a journey driven to an escalation and then erased. Afterwards the marker is nowhere a person
could read it: not in any table, not in the journey's Temporal history (payloads decoded) or
search attributes, not in any log line the API, the worker or the SDK wrote."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import structlog
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator
from service import bootstrap
from tests.conftest import session_settings
from tests.e2e.test_escalation_http import KICKOFF, _kickoff, _programme
from tests.support import compressed_cohort
from workflows.client import journey_handle

SECRET = "canary-test-secret-of-at-least-32-bytes!"


def _jwt(sub: str, role: str, person_id: str | None = None) -> dict[str, str]:
    claims: dict[str, Any] = {"sub": sub, "role": role, "exp": int(time.time()) + 3600}
    if person_id:
        claims["person_id"] = person_id
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@pytest.fixture
async def jwt_api(
    time_env: WorkflowEnvironment,
    journey_worker: Worker,
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with JWT sign-in only (HS256), on the test worker's task queue."""
    resources = bootstrap.resources(
        session_settings(tmp_path),
        pool=pool,
        temporal=time_env.client,
        authenticator=Authenticator([], jwt_secret=SECRET),
        task_queue=journey_worker.task_queue,
    )
    transport = httpx.ASGITransport(app=create_app(resources))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30) as client:
        yield client


def _decoded(value: Any, out: list[str]) -> None:
    """Every string in a JSON document, and every base64 payload decoded."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "data" and isinstance(item, str):
                with contextlib.suppress(binascii.Error, ValueError):
                    out.append(base64.b64decode(item, validate=True).decode("utf-8", "replace"))
            _decoded(item, out)
    elif isinstance(value, list):
        for item in value:
            _decoded(item, out)
    elif isinstance(value, str):
        out.append(value)


async def _rows_holding(pool: asyncpg.Pool[asyncpg.Record], marker: str) -> list[str]:
    """Every row of every table whose text holds the marker (a dump of the database, searched)."""
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    found: list[str] = []
    for table in tables:
        rows = await pool.fetch(f'SELECT t::text AS row FROM "{table}" t WHERE t::text LIKE $1', f"%{marker}%")
        found.extend(f"{table}: {r['row'][:400]}" for r in rows)
    return found


async def test_no_trace_of_a_person_is_left_anywhere_after_their_erasure(
    jwt_api: httpx.AsyncClient,
    time_env: WorkflowEnvironment,
    pool: asyncpg.Pool[asyncpg.Record],
    caplog: pytest.LogCaptureFixture,
    unique: str,
) -> None:
    marker = f"kanari{uuid.uuid4().hex[:10]}"
    api = jwt_api
    talent, leader, boss = f"p-t-{unique}", f"p-l-{unique}", f"p-b-{unique}"
    coordinator = _jwt(f"{marker}.coord@example.org", "coordinator", f"p-c-{unique}")
    hr = _jwt(f"{marker}.hr@example.org", "hr_system")
    as_talent = _jwt(f"{marker}.talent@example.org", "talent", talent)

    def corr(step: str) -> dict[str, str]:
        return {"X-Correlation-Id": f"{marker}-{step}"}

    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        programme = _programme(unique)
        start = await time_env.get_current_time() + timedelta(seconds=2)
        cohort = compressed_cohort(programme, start, cohort_id=f"c-{unique}")
        for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
            created = await api.post(path, json=body.model_dump(mode="json"), headers=coordinator | corr("setup"))
            assert created.status_code == 201, created.text
        nomination = {
            "cohort_id": cohort.cohort_id,
            "external_ref": f"HR-{marker}",
            "motivation": f"Motivation {marker}",
            "talent": {
                "person_id": talent,
                "name": f"Tanja {marker}",
                "email": f"{marker}.tanja@example.org",
                "workplace": f"Skolen {marker}",
            },
            "nearest_leader": {"person_id": leader, "name": f"Leo {marker}", "email": f"{marker}.leo@example.org"},
            "leaders_leader": {"person_id": boss, "name": f"Bo {marker}", "email": f"{marker}.bo@example.org"},
        }
        nominated = await api.post("/v1/journeys", json=nomination, headers=hr | corr("nominate"))
        assert nominated.status_code == 201, nominated.text
        journey_id = nominated.json()["journey_id"]
        approved = await api.post(
            f"/v1/journeys/{journey_id}/decision",
            json={"decision": "approve", "reason": f"Godkendt {marker}"},
            headers=coordinator | corr("approve"),
        )
        assert approved.status_code == 200, approved.text
        status: dict[str, Any] = {}
        for _ in range(300):
            status = (await api.get(f"/v1/journeys/{journey_id}", headers=coordinator | corr("poll"))).json()
            if _kickoff(status):
                break
            await asyncio.sleep(0.05)
        assert _kickoff(status), status
        acknowledged = await api.post(
            f"/v1/journeys/{journey_id}/escalations/{KICKOFF}/acknowledge",
            json={"note": f"Vi ringer {marker}"},
            headers=coordinator | corr("ack"),
        )
        assert acknowledged.status_code == 200, acknowledged.text
        mine = await api.get(f"/v1/journeys/{journey_id}", headers=as_talent | corr("talent"))
        assert mine.status_code == 200, mine.text
        for person in (talent, leader, boss):
            erased = await api.delete(f"/v1/people/{person}", headers=coordinator | corr("erase"))
            assert erased.status_code == 200, erased.text

        history = await journey_handle(time_env.client, journey_id).fetch_history()
        description = await journey_handle(time_env.client, journey_id).describe()

    # The run really went through the places a marker could land.
    types = [
        e["event_type"]
        for e in (await api.get(f"/v1/journeys/{journey_id}/events", headers=coordinator)).json()["items"]
    ]
    assert {"EscalationRaised", "EscalationAcknowledged", "PersonalDataErased"} <= set(types), types
    assert logs, "the logs were captured"

    assert await _rows_holding(pool, marker) == []
    strings: list[str] = []
    _decoded(json.loads(history.to_json()), strings)
    assert strings and not [s for s in strings if marker in s]
    assert marker not in repr(description.typed_search_attributes)
    leaked_logs = [entry for entry in logs if marker in repr(entry)]
    assert leaked_logs == []
    assert [r.getMessage() for r in caplog.records if marker in r.getMessage() or marker in repr(r.__dict__)] == []
    structlog.contextvars.clear_contextvars()
