"""PRODUCT §8.3 through HTTP: the streamed body cap and the rate limits (429 with Retry-After)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator
from infra.settings import Settings
from service import bootstrap
from tests.conftest import session_settings
from tests.e2e.conftest import TOKENS, auth
from tests.support import reference_cohort, reference_programme

LIMIT = 64 * 1024
CHUNK = 16 * 1024
SMALL = {
    "TALENT_RATE_LIMIT_AUTH_FAILURES": "3/minute",
    "TALENT_RATE_LIMIT_CALENDAR_GUESSES": "3/minute",
    "TALENT_RATE_LIMIT_NOMINATIONS": "2/day",
    "TALENT_RATE_LIMIT_REQUESTS": "1000/minute",
}
Build = Callable[..., FastAPI]


@pytest.fixture
def build_app(
    time_env: WorkflowEnvironment,
    journey_worker: Worker,
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
) -> Build:
    """Builds an app on the test worker's task queue with small limits (and any other settings)."""

    def build(**overrides: Any) -> FastAPI:
        resources = bootstrap.resources(
            session_settings(tmp_path, **{"max_body_bytes": LIMIT, **SMALL, **overrides}),
            pool=pool,
            temporal=time_env.client,
            authenticator=Authenticator(list(TOKENS.values())),
            task_queue=journey_worker.task_queue,
        )
        return create_app(resources)

    return build


def client(app: FastAPI, address: str = "192.0.2.1") -> httpx.AsyncClient:
    """An HTTP client on the app, calling from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30)


@pytest.fixture
async def api(build_app: Build) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with small limits, from one address."""
    async with client(build_app()) as http:
        yield http


def assert_rate_limited(response: httpx.Response) -> None:
    """429 problem+json with a Retry-After of whole seconds within the minute window."""
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60 * 60 * 24


async def test_a_chunked_body_past_the_cap_is_413_after_reading_at_most_the_cap_and_one_chunk(
    api: httpx.AsyncClient,
) -> None:
    yielded = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal yielded
        for _ in range(100):  # 1.6 MB, far past the cap
            yielded += 1
            yield b"x" * CHUNK

    response = await api.post(
        "/v1/journeys/j-none/pause",
        content=body(),
        headers=auth("coordinator") | {"Content-Type": "application/json", "X-Correlation-Id": "c-413"},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_large"
    assert response.headers["X-Correlation-Id"] == "c-413"
    # The cap is 4 chunks: the 5th passes it and is the last one read; the rest stay unread.
    assert yielded <= LIMIT // CHUNK + 1, yielded
    # The dashboard's form parser is refused the same way.
    yielded = 0
    form = await api.post(
        "/dashboard/login", content=body(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 413 and form.json()["code"] == "too_large"
    assert yielded <= LIMIT // CHUNK + 1, yielded


async def test_a_chunked_body_within_the_cap_is_read_whole(api: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"reason": "moved"'
        yield b" " * (LIMIT - 100)  # JSON whitespace: the body parses only if it is read to the end
        yield b"}"

    # Read whole and validated: a pause of an unknown journey, not a 413.
    response = await api.post(
        "/v1/journeys/j-none/pause",
        content=body(),
        headers=auth("coordinator") | {"Content-Type": "application/json"},
    )
    assert response.status_code == 404, response.text
    declared = await api.post("/v1/journeys/j-none/pause", content=b"x" * (LIMIT + 1), headers=auth("coordinator"))
    assert declared.status_code == 413 and declared.json()["code"] == "too_large"


async def test_unknown_tokens_are_refused_with_429_after_the_budget_even_a_valid_one_from_that_address(
    build_app: Build,
) -> None:
    app = build_app()
    async with client(app, "192.0.2.10") as guesser, client(app, "192.0.2.11") as colleague:
        # A valid token spends nothing of the failure budget.
        for _ in range(5):
            assert (await guesser.get("/v1/escalations", headers=auth("coordinator"))).status_code == 200
        for attempt in range(3):
            wrong = await guesser.get("/v1/escalations", headers={"Authorization": f"Bearer nope-{attempt}"})
            assert wrong.status_code == 401, wrong.text
        assert_rate_limited(await guesser.get("/v1/escalations", headers={"Authorization": "Bearer nope-3"}))
        # Once spent, a right guess from that address is refused alike: nothing tells it apart.
        assert_rate_limited(await guesser.get("/v1/escalations", headers=auth("coordinator")))
        # Another address, with the same valid token, is not affected.
        assert (await colleague.get("/v1/escalations", headers=auth("coordinator"))).status_code == 200
        assert (await colleague.get("/v1/escalations", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_failed_dashboard_sign_ins_spend_the_same_budget(build_app: Build) -> None:
    app = build_app()
    async with client(app, "192.0.2.20") as browser:
        for attempt in range(3):
            refused = await browser.post("/dashboard/login", data={"token": f"nope-{attempt}"})
            assert refused.status_code == 401, refused.text
        assert_rate_limited(await browser.post("/dashboard/login", data={"token": TOKENS["coordinator"].token}))
        assert_rate_limited(await browser.get("/v1/escalations", headers=auth("coordinator")))
    async with client(app, "192.0.2.21") as other:
        signed_in = await other.post("/dashboard/login", data={"token": TOKENS["coordinator"].token})
        assert signed_in.status_code == 303, signed_in.text


async def test_calendar_secret_guesses_are_refused_with_429_after_the_budget(build_app: Build) -> None:
    app = build_app()
    async with client(app, "192.0.2.30") as guesser, client(app, "192.0.2.31") as owner:
        issued = await owner.post("/v1/people/p-talent/calendar-feed", headers=auth("talent"))
        assert issued.status_code == 201, issued.text
        feed = httpx.URL(issued.json()["url"]).path
        # A known secret spends nothing.
        assert (await guesser.get(feed)).status_code == 200
        for attempt in range(3):
            assert (await guesser.get(f"/calendar/guess-{attempt}.ics")).status_code == 404
        assert_rate_limited(await guesser.get("/calendar/guess-3.ics"))
        assert_rate_limited(await guesser.get(feed))
        assert (await owner.get(feed)).status_code == 200


async def test_a_leader_s_nominations_are_refused_with_429_after_the_daily_budget(
    api: httpx.AsyncClient, build_app: Build, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme = reference_programme().model_copy(update={"id": f"tnl-lim-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-lim-{unique}", starts_on=(now + timedelta(days=21)).date())
    cohort = cohort.model_copy(update={"coordinator_id": "p-coord"})
    coordinator = auth("coordinator")
    assert (await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=coordinator)).is_success
    assert (await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=coordinator)).is_success

    def nomination(n: int, leader: str) -> dict[str, Any]:
        return {
            "cohort_id": cohort.cohort_id,
            "external_ref": f"HR-{unique}-{n}",
            "motivation": "Stærk i teamet.",
            "talent": {"person_id": f"p-lim-{unique}-{n}", "name": "Mette", "email": "mette@example.org"},
            "nearest_leader": {"person_id": leader, "name": "Lars", "email": "lars@example.org"},
        }

    for n in range(2):
        created = await api.post("/v1/journeys", json=nomination(n, "p-leader"), headers=auth("leader"))
        assert created.status_code == 201, created.text
    refused = await api.post("/v1/journeys", json=nomination(2, "p-leader"), headers=auth("leader"))
    assert_rate_limited(refused)
    assert refused.json()["budget"] == "nominations"
    # Nothing was started for the refused one.
    talent = await api.get("/v1/journeys", params={"limit": 200}, headers=coordinator)
    assert f"p-lim-{unique}-2" not in talent.text
    # Another leader has their own budget; an HR system has none of a leader's.
    other = await api.post("/v1/journeys", json=nomination(3, "p-other-leader"), headers=auth("other_leader"))
    assert other.status_code == 201, other.text
    by_hr = await api.post("/v1/journeys", json=nomination(4, "p-leader"), headers=auth("hr"))
    assert by_hr.status_code == 201, by_hr.text


async def test_every_authenticated_caller_has_a_general_ceiling(build_app: Build) -> None:
    app = build_app(TALENT_RATE_LIMIT_REQUESTS="4/minute")
    async with client(app) as http:
        for _ in range(4):
            assert (await http.get("/v1/escalations", headers=auth("coordinator"))).status_code == 200
        refused = await http.get("/v1/escalations", headers=auth("coordinator"))
        assert_rate_limited(refused)
        assert refused.json()["budget"] == "requests"
        # The ceiling is the caller's, not the address's.
        assert (await http.get("/v1/feed", headers=auth("hr"))).status_code == 200


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_reachable(), reason="Redis is not reachable on 127.0.0.1:6379")
async def test_two_api_processes_on_redis_share_one_budget(build_app: Build, unique: str) -> None:
    storage = {"TALENT_RATE_LIMIT_STORAGE": "async+redis://127.0.0.1:6379"}
    first, second = build_app(**storage), build_app(**storage)
    # A unique address per run: the budget lives in a Redis others share, and is never flushed here.
    address = f"redis-test-{unique}"
    async with client(first, address) as a, client(second, address) as b:
        for attempt in range(2):
            assert (
                await a.get("/v1/escalations", headers={"Authorization": f"Bearer nope-{attempt}"})
            ).status_code == 401
        assert (await b.get("/v1/escalations", headers={"Authorization": "Bearer nope-2"})).status_code == 401
        # Three failures across the two apps spend the one budget of three.
        assert_rate_limited(await a.get("/v1/escalations", headers=auth("coordinator")))
        assert_rate_limited(await b.get("/v1/escalations", headers=auth("coordinator")))
    # An app with its own memory knows nothing of it.
    async with client(build_app(), address) as alone:
        assert (await alone.get("/v1/escalations", headers=auth("coordinator"))).status_code == 200


def test_a_rate_limit_that_is_not_one_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        Settings.model_validate({"data_dir": tmp_path, "TALENT_RATE_LIMIT_NOMINATIONS": "plenty"})
