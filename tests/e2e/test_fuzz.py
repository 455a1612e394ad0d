"""Schemathesis fuzzes the API against its own OpenAPI, as each role: no 5xx, no response off its schema.

The app runs under uvicorn on this test's event loop (where its pool and Temporal client live);
the synchronous schemathesis/hypothesis loop runs in a worker thread and calls it over real HTTP.
A share of the cases carries the ids of a real programme, cohort, journey and person, so the
fuzzer reaches past the 404s into the domain and the workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import Authenticator, Role, TokenEntry
from api.runtime import serve
from service import bootstrap
from service.bootstrap import Resources
from tests.conftest import session_settings
from tests.support import reference_cohort, reference_programme
from workflows.client import journey_handle

ROLES: tuple[Role, ...] = ("hr_system", "coordinator", "leader", "talent")
#: Examples per operation and generation mode: about 40 operations x 2 modes x 4 roles, about 35 s
#: per role on two shared cores (the suite's 10-minute budget; `test_what_the_fuzzer_found_stays_fixed`
#: pins every case it found).
EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: every case is a real request
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    print_blob=False,
)


@dataclass(frozen=True)
class Live:
    """The API served over HTTP, its principals, and the ids of the real things it holds."""

    base_url: str
    tokens: dict[Role, str]
    ids: dict[str, Any]


@contextlib.asynccontextmanager
async def serving(resources: Resources) -> AsyncIterator[str]:
    """The API under uvicorn (`api.runtime.serve`) on a free local port on this event loop; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # uvicorn binds host:port itself: sockets handed to it lose TCP_NODELAY, 40 ms a request.
    stop = asyncio.Event()
    task = asyncio.create_task(serve(resources, host="127.0.0.1", port=port, stop=stop))
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            for _ in range(200):
                assert not task.done(), "uvicorn did not start"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.02)
        yield base_url
    finally:
        stop.set()
        await task


@pytest.fixture
async def live(
    time_env: WorkflowEnvironment,
    journey_worker: Worker,
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
) -> AsyncIterator[Live]:
    """A served API with a published programme, a cohort and a nominated journey of its own people."""
    people = {role: f"p-fz-{role.replace('_', '-')}-{unique}" for role in ROLES}
    tokens: dict[Role, str] = {role: f"tok-fz-{role}-{unique}" for role in ROLES}
    entries = [
        TokenEntry(token=tokens[role], role=role, person_id=None if role == "hr_system" else people[role])
        for role in ROLES
    ]
    resources = bootstrap.resources(
        # A ceiling the fuzzer's burst never reaches: a 429 would hide the operation it stood for. The
        # session's vault key: derandomized runs nominate the same generated people, and a person's
        # data key sealed under another master key cannot be opened (a 500, as for a tampered vault).
        session_settings(tmp_path, max_body_bytes=64 * 1024, TALENT_RATE_LIMIT_REQUESTS="100000/minute"),
        pool=pool,
        temporal=time_env.client,
        authenticator=Authenticator(entries),
        task_queue=journey_worker.task_queue,
    )
    programme = reference_programme().model_copy(update={"id": f"fz-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(
        programme, cohort_id=f"c-fz-{unique}", starts_on=(now + timedelta(days=21)).date()
    ).model_copy(update={"coordinator_id": people["coordinator"]})
    async with serving(resources) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        coordinator = {"Authorization": f"Bearer {tokens['coordinator']}"}
        published = await client.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=coordinator)
        assert published.status_code == 201, published.text
        created = await client.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=coordinator)
        assert created.status_code == 201, created.text
        nomination = {
            "cohort_id": cohort.cohort_id,
            "motivation": "Stærk i teamet.",
            "talent": {"person_id": people["talent"], "name": "Mette", "email": "mette@example.org"},
            "nearest_leader": {"person_id": people["leader"], "name": "Lars", "email": "lars@example.org"},
        }
        nominated = await client.post(
            "/v1/journeys", json=nomination, headers={"Authorization": f"Bearer {tokens['hr_system']}"}
        )
        assert nominated.status_code == 201, nominated.text
        ids = {
            "programme_id": programme.id,
            "version": programme.version,
            "cohort_id": cohort.cohort_id,
            "journey_id": nominated.json()["journey_id"],
            "track_key": programme.tracks[0].key,
            "person_id": people["talent"],
        }
        try:
            yield Live(base_url=base_url, tokens=tokens, ids=ids)
        finally:
            await _terminate_journeys(resources, cohort.cohort_id)


async def _terminate_journeys(resources: Resources, cohort_id: str) -> None:
    """End the workflows the fuzzer started, so none outlives its worker."""
    rows = await resources.pool.fetch("SELECT journey_id FROM journey_status WHERE cohort_id = $1", cohort_id)
    for row in rows:
        handle = journey_handle(resources.temporal, row["journey_id"])
        with contextlib.suppress(Exception):
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("fuzz test over")


def _with_real_ids(ids: dict[str, Any]) -> Callable[[Case[Any]], Case[Any]]:
    """Put the real ids into the path (and a nomination's cohort), so the case reaches real data."""

    def put(case: Case[Any]) -> Case[Any]:
        for name in case.path_parameters:
            if name in ids:
                case.path_parameters[name] = ids[name]
        if isinstance(case.body, dict) and "cohort_id" in case.body:
            case.body["cohort_id"] = ids["cohort_id"]
        return case

    return put


def fuzz(schema: schemathesis.BaseSchema, live: Live, role: Role) -> tuple[list[str], Counter[int]]:
    """Every operation, positive and negative, as `role` (and a share unauthenticated): the failures."""
    auth = {"authorization": f"Bearer {live.tokens[role]}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                # As the role; as the role on the real ids; and with whatever Authorization is generated.
                strategy = st.one_of(
                    operation.as_strategy(generation_mode=mode, headers=auth),
                    operation.as_strategy(generation_mode=mode, headers=auth).map(_with_real_ids(live.ids)),
                    operation.as_strategy(generation_mode=mode),
                )

                @FUZZ_SETTINGS
                @given(case=strategy)
                def check(case: Case[Any]) -> None:
                    response = case.call(base_url=live.base_url, session=session, timeout=30)
                    statuses[response.status_code] += 1
                    case.validate_response(response, checks=CHECKS)

                try:
                    check()
                except Unsatisfiable:  # nothing of the operation can be made invalid (no body, only strings)
                    if mode is GenerationMode.POSITIVE:
                        raise
                except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
                    failures.append(f"{operation.label} [{mode.value}] as {role}:\n{exc}")
    return failures, statuses


@pytest.mark.parametrize("role", ROLES)
async def test_fuzzing_the_api_as_each_role_finds_no_5xx_and_no_response_off_its_schema(live: Live, role: Role) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        spec = (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(spec)
    started = time.monotonic()
    failures, statuses = await asyncio.to_thread(fuzz, schema, live, role)
    print(f"{role}: {sum(statuses.values())} requests in {time.monotonic() - started:.1f}s, {dict(statuses)}")
    assert not failures, "\n\n".join(failures)
    assert not [s for s in statuses if s >= 500]
    assert any(200 <= s < 300 for s in statuses), statuses  # the real ids got through somewhere


async def test_what_the_fuzzer_found_stays_fixed(live: Live) -> None:
    """Each of these was a 500 or an undocumented status: found by the fuzzer, or by a probe of the same kind."""
    coordinator = {"Authorization": f"Bearer {live.tokens['coordinator']}"}
    hr = {"Authorization": f"Bearer {live.tokens['hr_system']}"}
    ids = live.ids
    nomination = {
        "cohort_id": ids["cohort_id"],
        "motivation": "Stærk.",
        "talent": {"person_id": "p-fz-nul", "name": "N", "email": "n@example.org"},
        "nearest_leader": {"person_id": "p-fz-nul-leader", "name": "L", "email": "l@example.org"},
    }
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        spec = (await client.get("/openapi.json")).json()

        async def status(method: str, url: str, **kwargs: Any) -> int:
            response = await client.request(method, url, **kwargs)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", response.text
            return response.status_code

        # An integer beyond PostgreSQL's int4 reached the query.
        assert await status("GET", f"/v1/programmes/{ids['programme_id']}/versions/2147483648", headers=hr) == 422
        assert (
            await status("GET", f"/v1/journeys/{ids['journey_id']}/events?after_version=2147483648", headers=hr) == 422
        )
        # ... or a date beyond PostgreSQL's range, once in UTC.
        as_of = {"as_of": "0001-01-01T00:00:00+05:00"}
        assert await status("GET", f"/v1/journeys/{ids['journey_id']}", params=as_of, headers=hr) == 422
        # A NUL character, which PostgreSQL text cannot hold, reached a query.
        assert await status("GET", "/v1/journeys", params={"cohort_id": "\x00"}, headers=hr) == 422
        assert await status("POST", "/v1/journeys", json=nomination | {"cohort_id": "c\x00"}, headers=hr) == 422
        # ... or a nomination's external_ref, which goes into the first event (the workflow could never store it).
        assert await status("POST", "/v1/journeys", json=nomination | {"external_ref": "x\x00"}, headers=hr) == 422
        # A session or track key the API took but the domain's command refused.
        attendance = {"session_key": "Kickoff", "status": "attended"}
        journey = f"/v1/journeys/{ids['journey_id']}"
        assert await status("POST", f"{journey}/attendance", json=attendance, headers=coordinator) == 422
        talent = {"Authorization": f"Bearer {live.tokens['talent']}"}
        assert await status("POST", f"{journey}/tracks/T.1/submission", json={"reflection": "r"}, headers=talent) == 422
        # A body that is not UTF-8 is a 400: documented, like every problem status.
        raw = await client.post("/v1/journeys", content=b"{\xc3(", headers=hr | {"Content-Type": "application/json"})
        assert raw.status_code == 400
        assert "400" in spec["paths"]["/v1/journeys"]["post"]["responses"]
        # Publishing a programme or creating a cohort again answers 200: documented.
        programme = (
            await client.get(f"/v1/programmes/{ids['programme_id']}/versions/{ids['version']}", headers=hr)
        ).json()
        cohort = (await client.get(f"/v1/cohorts/{ids['cohort_id']}", headers=coordinator)).json()["cohort"]
        for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
            assert await status("POST", path, json=body, headers=coordinator) == 200
            assert "200" in spec["paths"][path]["post"]["responses"], path
