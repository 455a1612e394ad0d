"""The service's refusals reach HTTP through the one mapping (`api.problems`): status, code, nothing stored."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import httpx

from tests.e2e.conftest import auth
from tests.support import CPH, fast_cohort, fast_programme


def _nomination(cohort_id: str, unique: str, *, leader: str = "p-leader") -> dict[str, object]:
    return {
        "cohort_id": cohort_id,
        "motivation": "Tager ansvar i teamet.",
        "talent": {"person_id": f"p-{unique}", "name": "Mette Holm", "email": "mette@example.org"},
        "nearest_leader": {"person_id": leader, "name": "Lars Berg", "email": "lars@example.org"},
    }


async def test_a_nomination_the_service_refuses_is_a_problem_with_its_code_and_stores_nothing(
    api: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    programme = fast_programme().model_copy(update={"id": f"fast-{unique}"})
    cohort = fast_cohort(
        programme, datetime.now(CPH) + timedelta(days=7), cohort_id=f"c-{unique}", coordinator_id="p-coord"
    )
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text

    unknown = await api.post("/v1/journeys", json=_nomination(f"c-none-{unique}", unique), headers=auth("hr"))
    own_leader = await api.post(
        "/v1/journeys", json=_nomination(cohort.cohort_id, unique, leader=f"p-{unique}"), headers=auth("hr")
    )

    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_cohort"), unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    assert (own_leader.status_code, own_leader.json()["code"]) == (422, "leader_is_talent"), own_leader.text
    assert await pool.fetchval("SELECT count(*) FROM journey_status WHERE talent_id = $1", f"p-{unique}") == 0
    assert await pool.fetchval("SELECT count(*) FROM people WHERE person_id = $1", f"p-{unique}") == 0
