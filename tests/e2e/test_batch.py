"""Bulk enrolment over HTTP: one result per row (created, existing, refused, invalid), a re-run changes
nothing, more than 1,000 rows is refused whole."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from tests.e2e.conftest import auth
from tests.support import CPH, fast_cohort, fast_programme
from tests.workflows.journeys import end_journey
from workflows.client import journey_handle


def _row(cohort_id: str, talent: str, *, leader: str = "p-leader", ref: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cohort_id": cohort_id,
        "motivation": "Tager ansvar i teamet.",
        "talent": {"person_id": talent, "name": "Mette Holm", "email": "mette@example.org"},
        "nearest_leader": {"person_id": leader, "name": "Lars Berg", "email": "lars@example.org"},
    }
    if ref is not None:
        row["external_ref"] = ref
    return row


async def _cohort(api: httpx.AsyncClient, unique: str) -> str:
    programme = fast_programme().model_copy(update={"id": f"fast-{unique}"})
    cohort = fast_cohort(
        programme, datetime.now(CPH) + timedelta(days=7), cohort_id=f"c-{unique}", coordinator_id="p-coord"
    )
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text
    return cohort.cohort_id


async def _versions(api: httpx.AsyncClient, journey_ids: list[str]) -> list[int]:
    found = []
    for journey_id in journey_ids:
        status = await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))
        assert status.status_code == 200, status.text
        found.append(status.json()["version"])
    return found


async def test_a_batch_answers_one_result_per_row_and_running_it_again_changes_nothing(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    cohort_id = await _cohort(api, unique)
    first = _row(cohort_id, f"p-a-{unique}", ref=f"HR-a-{unique}")
    rows: list[Any] = [
        first,
        _row(cohort_id, f"p-b-{unique}"),
        first,  # the same row twice in one batch: one journey
        _row(f"c-none-{unique}", f"p-c-{unique}"),  # refused by the service: unknown cohort
        _row(cohort_id, f"p-d-{unique}", leader=f"p-d-{unique}"),  # refused: the talent leads themself
        {**_row(cohort_id, f"p-e-{unique}"), "motivation": ""},  # invalid: an empty motivation
        "not a nomination",  # invalid: not an object
    ]

    answered = await api.post("/v1/journeys/batch", json={"rows": rows}, headers=auth("hr"))

    assert answered.status_code == 200, answered.text
    results = answered.json()["results"]
    assert [r["index"] for r in results] == list(range(len(rows)))
    assert [r["outcome"] for r in results] == [
        "created",
        "created",
        "existing",
        "refused",
        "refused",
        "invalid",
        "invalid",
    ]
    journey_a, journey_b = results[0]["journey_id"], results[1]["journey_id"]
    assert results[2]["journey_id"] == journey_a and journey_a != journey_b
    assert (results[3]["code"], results[3]["problem"]["status"]) == ("unknown_cohort", 422)
    assert results[4]["code"] == "leader_is_talent" and results[4]["problem"]["code"] == "leader_is_talent"
    assert [e["field"] for e in results[5]["errors"]] == ["motivation"]
    assert results[6]["errors"]
    assert answered.json()["summary"] == {"created": 2, "existing": 1, "refused": 2, "invalid": 2}
    versions = await _versions(api, [journey_a, journey_b])

    try:
        again = await api.post("/v1/journeys/batch", json={"rows": rows}, headers=auth("hr"))

        assert again.status_code == 200, again.text
        rerun = again.json()["results"]
        assert [r["outcome"] for r in rerun[:3]] == ["existing"] * 3
        assert [r["journey_id"] for r in rerun[:3]] == [journey_a, journey_b, journey_a]
        assert [r["outcome"] for r in rerun[3:]] == ["refused", "refused", "invalid", "invalid"]
        assert await _versions(api, [journey_a, journey_b]) == versions
        assert await pool.fetchval("SELECT count(*) FROM journey_status WHERE cohort_id = $1", cohort_id) == 2

        # The same HR reference with other content is refused, and changes nothing.
        changed = {**first, "motivation": "Noget andet."}
        reused = await api.post("/v1/journeys/batch", json={"rows": [changed]}, headers=auth("hr"))
        assert reused.json()["results"][0]["code"] == "external_ref_reused", reused.text
        assert await _versions(api, [journey_a, journey_b]) == versions
    finally:
        for journey_id in (journey_a, journey_b):
            await end_journey(journey_handle(time_env.client, journey_id))


async def test_a_leaders_batch_names_them_as_nearest_leader_row_by_row(api: httpx.AsyncClient, unique: str) -> None:
    cohort_id = await _cohort(api, unique)
    rows = [_row(cohort_id, f"p-x-{unique}", leader="p-other-leader"), {"cohort_id": cohort_id}]

    answered = await api.post("/v1/journeys/batch", json={"rows": rows}, headers=auth("leader"))

    assert answered.status_code == 200, answered.text
    results = answered.json()["results"]
    assert [(r["outcome"], r.get("code")) for r in results] == [("refused", "forbidden"), ("invalid", None)]
    assert results[0]["problem"]["status"] == 403
    talent = await api.post("/v1/journeys/batch", json={"rows": rows}, headers=auth("talent"))
    assert talent.status_code == 403


async def test_more_than_1000_rows_or_a_malformed_envelope_is_422_and_nothing_is_done(
    api: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    cohort_id = await _cohort(api, unique)
    rows = [_row(cohort_id, f"p-{i}-{unique}") for i in range(1001)]

    too_many = await api.post("/v1/journeys/batch", json={"rows": rows}, headers=auth("hr"))
    not_rows = await api.post("/v1/journeys/batch", json=rows[:2], headers=auth("hr"))
    extra = await api.post("/v1/journeys/batch", json={"rows": rows[:2], "dry_run": True}, headers=auth("hr"))

    for refused in (too_many, not_rows, extra):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert await pool.fetchval("SELECT count(*) FROM journey_status WHERE cohort_id = $1", cohort_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM people WHERE person_id LIKE $1", f"p-%-{unique}") == 0


async def test_rows_of_any_json_shape_are_each_answered_invalid(api: httpx.AsyncClient) -> None:
    rows: list[Any] = [None, 1, [], {"cohort_id": 5}, {"unknown": "field"}, "x" * 10]

    answered = await api.post("/v1/journeys/batch", json={"rows": rows}, headers=auth("hr"))

    assert answered.status_code == 200, answered.text
    assert [r["outcome"] for r in answered.json()["results"]] == ["invalid"] * len(rows)
    assert all(r["errors"] for r in answered.json()["results"])
    spec = (await api.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/journeys/batch"]["post"]
    assert "one result per row" in operation["description"] and "422" in operation["responses"]
