"""Through HTTP: a nomination to approval by the roles, and the error statuses of §6."""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.e2e.conftest import auth
from tests.support import reference_cohort, reference_programme


async def test_hr_nominates_a_coordinator_approves_and_every_error_status_has_its_cause(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme = reference_programme().model_copy(update={"id": f"tnl-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=(now + timedelta(days=21)).date())
    cohort = cohort.model_copy(update={"coordinator_id": "p-coord"})

    published = await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=auth("coordinator"))
    assert published.status_code == 201
    again = await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=auth("coordinator"))
    assert again.status_code == 200
    assert (
        await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=auth("coordinator"))
    ).status_code == 201

    nomination = {
        "cohort_id": cohort.cohort_id,
        "external_ref": "HR-4711",
        "motivation": "Stærk i teamet.",
        "talent": {"person_id": "p-talent", "name": "Mette", "email": "mette@example.org", "workplace": "Skolen"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    created = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert created.status_code == 201, created.text
    journey_id = created.json()["journey_id"]
    assert created.json()["state"] == "nominated"
    second = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert second.status_code == 200 and second.json()["journey_id"] == journey_id, (created.json(), second.json())

    approved = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "enrolled" and "TalentEnrolled" in approved.json()["events"]

    # 401, 403, 404 (another leader's talent), 422 (bad body; unknown session), 413.
    assert (await api.get(f"/v1/journeys/{journey_id}")).status_code == 401
    assert (await api.get(f"/v1/journeys/{journey_id}", headers={"Authorization": "Bearer nope"})).status_code == 401
    forbidden = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("talent")
    )
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=auth("other_leader"))).status_code == 404
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=auth("leader"))).status_code == 200
    # The talent's list holds only their own journeys (other tests' among them: the talent is shared).
    mine = (await api.get("/v1/journeys", params={"limit": 200}, headers=auth("talent"))).json()["items"]
    assert journey_id in [j["journey_id"] for j in mine]
    assert {j["talent_id"] for j in mine} == {"p-talent"}
    bad = await api.post(
        f"/v1/journeys/{journey_id}/attendance",
        json={"session_key": "kickoff", "status": "maybe"},
        headers=auth("coordinator"),
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request" and "status" in bad.json()["detail"]
    unknown = await api.post(
        f"/v1/journeys/{journey_id}/attendance",
        json={"session_key": "nope", "status": "attended"},
        headers=auth("coordinator"),
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_session"
    huge = await api.post(
        f"/v1/journeys/{journey_id}/pause", json={"reason": "x" * 100_000}, headers=auth("coordinator")
    )
    assert huge.status_code == 413

    # Idempotency: a retried POST replays; the same key with another body is 422.
    key = {"Idempotency-Key": f"withdraw-{unique}"}
    withdrawn = await api.post(
        f"/v1/journeys/{journey_id}/withdraw", json={"reason": "moved"}, headers=auth("coordinator") | key
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    replay = await api.post(
        f"/v1/journeys/{journey_id}/withdraw", json={"reason": "moved"}, headers=auth("coordinator") | key
    )
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == withdrawn.json()
    reused = await api.post(
        f"/v1/journeys/{journey_id}/withdraw", json={"reason": "other"}, headers=auth("coordinator") | key
    )
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    # 409: attendance for a withdrawn journey.
    late = await api.post(
        f"/v1/journeys/{journey_id}/attendance",
        json={"session_key": "kickoff", "status": "attended"},
        headers=auth("coordinator"),
    )
    assert late.status_code == 409, late.text
    events = await api.get(f"/v1/journeys/{journey_id}/events", headers=auth("coordinator"))
    types = [e["event_type"] for e in events.json()["items"]]
    assert types[0] == "TalentNominated" and types[-1] == "TalentWithdrawn"
    assert "Mette" not in events.text and "mette@example.org" not in events.text
