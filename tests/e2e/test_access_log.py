"""The access log through HTTP (PRODUCT §8.7): every read or write of a journey's or a person's data
through the API, the dashboard, the HR feed and the calendar feeds leaves one row, written before
the answer leaves (a failed write fails the request); a coordinator reads it through GET /v1/audit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeAlias

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import correlation_id
from tests.e2e.conftest import TOKENS, auth
from tests.support import reference_cohort, reference_programme

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


@pytest.fixture
async def browser(api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the same app over https (the session cookie is Secure), keeping cookies."""
    async with httpx.AsyncClient(transport=api._transport, base_url="https://dashboard.test") as client:
        yield client


async def _journey(api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str, talent_id: str) -> str:
    """A cohort of its own and an approved journey of `talent_id`, led by p-leader."""
    programme = reference_programme().model_copy(update={"id": f"al-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-al-{unique}", starts_on=(now + timedelta(days=21)).date())
    coordinator = auth("coordinator")
    assert (await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=coordinator)).is_success
    assert (await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=coordinator)).is_success
    nomination = {
        "cohort_id": cohort.cohort_id,
        "motivation": "Stærk i teamet.",
        "talent": {"person_id": talent_id, "name": "Xenia Canary", "email": f"xenia-{unique}@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    created = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert created.status_code == 201, created.text
    journey_id: str = created.json()["journey_id"]
    decided = await api.post(f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=coordinator)
    assert decided.status_code == 200, decided.text
    return journey_id


def _tagged(who: str | None = None) -> tuple[dict[str, str], str]:
    """Headers with a fresh X-Correlation-Id (and `who`'s token), and the hash the log keeps of it."""
    value = f"corr-{uuid.uuid4().hex}"
    headers = {"X-Correlation-Id": value, **(auth(who) if who else {})}
    return headers, correlation_id(value)


async def _row(pool: Pool, correlation: str) -> dict[str, Any]:
    rows = await pool.fetch("SELECT * FROM access_log WHERE correlation_id = $1", correlation)
    assert len(rows) == 1, rows
    return dict(rows[0])


async def test_reads_lists_refusals_and_writes_leave_one_row_each_and_a_coordinator_reads_them(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    talent = f"p-x-{unique}"
    journey_id = await _journey(api, time_env, unique, talent)

    # The leader reads p-x's journey: their stable id, role, the journey, its talent and leader, 200.
    headers, correlation = _tagged("leader")
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=headers)).status_code == 200
    row = await _row(pool, correlation)
    assert (row["actor_id"], row["role"], row["channel"], row["action"], row["outcome"]) == (
        TOKENS["leader"].token_id,
        "leader",
        "api",
        "GET /v1/journeys/{journey_id}",
        "200",
    )
    assert row["journey_ids"] == [journey_id] and set(row["person_ids"]) == {talent, "p-leader"}
    assert not str(row["correlation_id"]).startswith("corr-")  # only the hash of the caller's value

    # A list records the journeys of the page it answered.
    headers, correlation = _tagged("leader")
    listed = await api.get("/v1/journeys", params={"cohort_id": f"c-al-{unique}"}, headers=headers)
    assert [j["journey_id"] for j in listed.json()["items"]] == [journey_id]
    row = await _row(pool, correlation)
    assert (row["action"], row["journey_ids"], row["outcome"]) == ("GET /v1/journeys", [journey_id], "200")
    assert talent in row["person_ids"]

    # Refusals are logged with their status: out of scope (404), a role that may not (403).
    headers, correlation = _tagged("other_leader")
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=headers)).status_code == 404
    row = await _row(pool, correlation)
    assert (row["actor_id"], row["outcome"], row["journey_ids"]) == (
        TOKENS["other_leader"].token_id,
        "404",
        [journey_id],
    )
    assert talent in row["person_ids"]
    headers, correlation = _tagged("talent")
    assert (await api.get("/v1/audit", params={"person_id": talent}, headers=headers)).status_code == 403
    assert (await _row(pool, correlation))["outcome"] == "403"

    # A write: the command's route, the journey and its people.
    headers, correlation = _tagged("coordinator")
    paused = await api.post(f"/v1/journeys/{journey_id}/pause", json={"reason": "Orlov"}, headers=headers)
    assert paused.status_code == 200, paused.text
    row = await _row(pool, correlation)
    assert (row["action"], row["outcome"], row["journey_ids"]) == (
        "POST /v1/journeys/{journey_id}/pause",
        "200",
        [journey_id],
    )

    # Unauthenticated calls and health checks name no one: nothing is logged.
    headers, correlation = _tagged()
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=headers)).status_code == 401
    assert (await api.get("/healthz", headers=_tagged()[0])).status_code == 200
    assert await pool.fetchval("SELECT count(*) FROM access_log WHERE correlation_id = $1", correlation) == 0

    # "Who read p-x's journey?": the coordinator asks the API, and that question is logged too.
    headers, correlation = _tagged("coordinator")
    answer = await api.get("/v1/audit", params={"person_id": talent, "limit": 100}, headers=headers)
    assert answer.status_code == 200, answer.text
    readers = {
        (r["actor_id"], r["outcome"]) for r in answer.json()["items"] if r["action"].startswith("GET /v1/journeys/")
    }
    assert (TOKENS["leader"].token_id, "200") in readers and (TOKENS["other_leader"].token_id, "404") in readers
    assert (await _row(pool, correlation))["person_ids"] == [talent]
    by_journey = await api.get(
        "/v1/audit", params={"journey_id": journey_id, "actor": TOKENS["leader"].token_id}, headers=auth("hr")
    )
    assert by_journey.status_code == 200
    assert {r["action"] for r in by_journey.json()["items"]} == {"GET /v1/journeys/{journey_id}", "GET /v1/journeys"}
    page = await api.get("/v1/audit", params={"person_id": talent, "limit": 1}, headers=auth("coordinator"))
    following = await api.get(
        "/v1/audit",
        params={"person_id": talent, "limit": 1, "cursor": page.json()["next"]},
        headers=auth("coordinator"),
    )
    assert following.json()["items"][0]["id"] < page.json()["items"][0]["id"]


async def test_the_dashboard_the_calendar_feed_and_the_hr_feed_are_logged(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    talent = f"p-x-{unique}"
    journey_id = await _journey(api, time_env, unique, talent)

    # The dashboard: the leader's journey page.
    signed_in = await browser.post("/dashboard/login", data={"token": TOKENS["leader"].token, "next": "/dashboard/"})
    assert signed_in.status_code == 303
    headers, correlation = _tagged()
    assert (await browser.get(f"/dashboard/journeys/{journey_id}", headers=headers)).status_code == 200
    row = await _row(pool, correlation)
    assert (row["actor_id"], row["role"], row["channel"], row["action"], row["journey_ids"]) == (
        TOKENS["leader"].token_id,
        "leader",
        "dashboard",
        "GET /dashboard/journeys/{journey_id}",
        [journey_id],
    )
    assert {talent, "p-leader"} <= set(row["person_ids"])
    # The leader's list of talents records the journeys it shows.
    headers, correlation = _tagged()
    assert (await browser.get("/dashboard/leader", headers=headers)).status_code == 200
    assert journey_id in (await _row(pool, correlation))["journey_ids"]

    # The calendar feed: read by its URL's holder, as its owner; the path (the secret) is never kept.
    issued = await api.post(f"/v1/people/{talent}/calendar-feed", headers=auth("coordinator"))
    assert issued.status_code == 201, issued.text
    url = issued.json()["url"]
    headers, correlation = _tagged()
    assert (await api.get(url, headers=headers)).status_code == 200
    row = await _row(pool, correlation)
    assert (row["actor_id"], row["channel"], row["action"], row["journey_ids"], row["outcome"]) == (
        f"calendar:{talent}",
        "calendar",
        "GET /calendar/{secret}.ics",
        [journey_id],
        "200",
    )

    # The HR feed: the journeys of the events it handed out.
    headers, correlation = _tagged("hr")
    feed = await api.get("/v1/feed", params={"limit": 1000}, headers=headers)
    assert feed.status_code == 200
    row = await _row(pool, correlation)
    assert (row["channel"], row["action"], row["role"]) == ("feed", "GET /v1/feed", "hr_system")
    assert set(row["journey_ids"]) == {e["journey_id"] for e in feed.json()["items"]}


async def test_a_failed_write_of_the_log_fails_the_request_with_503_and_no_data(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    talent = f"p-x-{unique}"
    journey_id = await _journey(api, time_env, unique, talent)
    before = await pool.fetchval("SELECT count(*) FROM access_log")
    trigger = f"access_log_fails_{unique}"
    await pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the access log is down'; END $$;
            CREATE TRIGGER {trigger} BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION {trigger}();"""
    )
    try:
        refused = await api.get(f"/v1/journeys/{journey_id}", headers=auth("leader"))
    finally:
        await pool.execute(f"DROP TRIGGER {trigger} ON access_log; DROP FUNCTION {trigger}();")
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "unavailable" and "Retry-After" in refused.headers
    assert journey_id not in refused.text and talent not in refused.text
    assert await pool.fetchval("SELECT count(*) FROM access_log") == before
    # And with the log back, the same read answers.
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=auth("leader"))).status_code == 200
