"""The programme as lived, through HTTP (§8.4): a closed cohort, a full cohort, an outcome after the close."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from tests.e2e.conftest import auth
from tests.support import compressed_cohort, compressed_programme, reference_cohort, reference_programme
from tests.workflows.journeys import advance_to


def _nomination(cohort_id: str, talent: str) -> dict[str, Any]:
    return {
        "cohort_id": cohort_id,
        "motivation": "Tager ansvar.",
        "talent": {"person_id": talent, "name": "Mette", "email": "mette@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }


async def _cohort(api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str, **update: Any) -> str:
    programme = reference_programme().model_copy(update={"id": f"v3-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"v3-{unique}", starts_on=(now + timedelta(days=21)).date())
    cohort = cohort.model_copy(update={"coordinator_id": "p-coord", **update})
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code in (200, 201), created.text
    return cohort.cohort_id


async def test_a_nomination_after_the_cohort_closed_is_409_cohort_closed_and_stores_nothing(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    programme = reference_programme().model_copy(update={"id": f"v3c-{unique}"})
    # The first mandatory session was a week ago, on the wall clock the service checks first and
    # on the test server's clock the workflow decides by (other tests may have moved it on).
    now = min(await time_env.get_current_time(), datetime.now(UTC))
    started = reference_cohort(programme, cohort_id=f"v3c-{unique}", starts_on=(now - timedelta(days=7)).date())
    started = started.model_copy(update={"coordinator_id": "p-coord"})
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", started)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text
    talent = f"p-late-{unique}"
    refused = await api.post("/v1/journeys", json=_nomination(started.cohort_id, talent), headers=auth("hr"))
    assert (refused.status_code, refused.json()["code"]) == (409, "cohort_closed"), refused.text
    assert await pool.fetchval("SELECT count(*) FROM journey_status WHERE talent_id = $1", talent) == 0
    assert await pool.fetchval("SELECT count(*) FROM people WHERE person_id = $1", talent) == 0


async def test_approving_beyond_the_cohorts_capacity_is_409_cohort_full(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort_id = await _cohort(api, time_env, unique, capacity=1)
    journeys = []
    for n in range(2):
        nominated = await api.post(
            "/v1/journeys", json=_nomination(cohort_id, f"p-cap-{unique}-{n}"), headers=auth("hr")
        )
        assert nominated.status_code == 201, nominated.text
        journeys.append(nominated.json()["journey_id"])
    first = await api.post(
        f"/v1/journeys/{journeys[0]}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert first.status_code == 200 and first.json()["state"] == "enrolled", first.text
    second = await api.post(
        f"/v1/journeys/{journeys[1]}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert (second.status_code, second.json()["code"]) == (409, "cohort_full"), second.text
    still = await api.get(f"/v1/journeys/{journeys[1]}", headers=auth("coordinator"))
    assert still.json()["state"] == "nominated"


async def test_an_outcome_after_the_journey_closed_is_appended_without_reopening_it(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    # The compressed programme: evaluated minutes after the start, followed up and closed soon after.
    programme = compressed_programme().model_copy(update={"id": f"v3o-{unique}"})
    start = await time_env.get_current_time() + timedelta(seconds=30)
    cohort = compressed_cohort(programme, start, cohort_id=f"v3o-{unique}")
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text
    nominated = await api.post(
        "/v1/journeys", json=_nomination(cohort.cohort_id, f"p-out-{unique}"), headers=auth("hr")
    )
    assert nominated.status_code == 201, nominated.text
    journey_id = nominated.json()["journey_id"]
    approved = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert approved.status_code == 200, approved.text
    await advance_to(time_env, start + timedelta(minutes=30))
    closed = await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))
    assert closed.json()["state"] == "closed", closed.text
    # The service decides a closed journey's command on the wall clock (its workflow has ended);
    # the test server's clock may run ahead of it: the earlier of the two days is past for both.
    on = min((await time_env.get_current_time()).date(), date.today()).isoformat()
    outcome = {"applied_for_leader_post": True, "appointed": True, "on": on}
    recorded = await api.post(f"/v1/journeys/{journey_id}/outcome", json=outcome, headers=auth("hr"))
    assert recorded.status_code == 200, recorded.text
    events = (await api.get(f"/v1/journeys/{journey_id}/events", headers=auth("coordinator"))).json()["items"]
    assert events[-1]["event_type"] == "OutcomeRecorded"
    after = await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))
    assert after.json()["state"] == "closed"
