"""Through HTTP: a coordinator acknowledges, then resolves, a slipped session's open escalation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.programme import Programme
from tests.e2e.conftest import auth
from tests.support import compressed_cohort, compressed_programme
from workflows.client import journey_handle

KICKOFF = "session:kickoff"
#: Rung 1 half a second after the slip, the others seconds later: time for the coordinator to step in.
RUNGS = [("talent", "PT0.5S"), ("nearest_leader", "PT3S"), ("leaders_leader", "PT3.5S"), ("coordinator", "PT4S")]


def _programme(unique: str) -> Programme:
    """The compressed demo whose kickoff attendance is due a second after it starts, with a quick ladder."""
    data = compressed_programme().model_dump(mode="json")
    data |= {
        "id": f"esc-{unique}",
        "attendance_grace": {"iso": "PT1S"},
        "escalation": {"rungs": [{"after": {"iso": after}, "recipient": role} for role, after in RUNGS]},
    }
    return Programme.model_validate(data)


async def _status(api: httpx.AsyncClient, journey_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _until(
    api: httpx.AsyncClient, journey_id: str, found: Callable[[dict[str, Any]], bool], within: float = 15
) -> dict[str, Any]:
    """Poll the journey's status (the read model) until `found(status)`."""
    deadline = asyncio.get_running_loop().time() + within
    status = await _status(api, journey_id)
    while not found(status) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        status = await _status(api, journey_id)
    return status


def _kickoff(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in body["escalations"] if x["milestone"] == KICKOFF]


async def _escalated_journey(api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str) -> str:
    """A journey, approved, whose kickoff attendance has slipped and raised its first rung: its id.

    It runs in the test server's own time, without skipping: other tests' journeys left on the
    server cannot stall it.
    """
    programme = _programme(unique)
    start = await time_env.get_current_time() + timedelta(seconds=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"c-{unique}")
    coordinator = auth("coordinator")
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=coordinator)
        assert created.status_code == 201, created.text
    nomination = {
        "cohort_id": cohort.cohort_id,
        "motivation": "Stærk i teamet.",
        # A talent of this test's own: the shared p-talent has journeys of other tests.
        "talent": {"person_id": f"p-{unique}", "name": "Mette", "email": "mette@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    nominated = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert nominated.status_code == 201, nominated.text
    journey_id = str(nominated.json()["journey_id"])
    approved = await api.post(f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=coordinator)
    assert approved.status_code == 200, approved.text
    escalated = await _until(api, journey_id, lambda s: bool(_kickoff(s)))
    # Rules 3: attendance bookkeeping is the coordinator's, so its ladder starts at the coordinator's rung.
    assert [x["rung"] for x in _kickoff(escalated)][:1] == [len(RUNGS)], escalated
    return journey_id


async def test_a_coordinator_acknowledges_then_resolves_an_open_escalation_and_others_are_refused(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    journey_id = await _escalated_journey(api, time_env, unique)
    coordinator = auth("coordinator")
    escalation = f"/v1/journeys/{journey_id}/escalations"
    try:
        acknowledged = await api.post(
            f"{escalation}/{KICKOFF}/acknowledge", json={"note": "Jeg ringer til Mette."}, headers=coordinator
        )
        again = await api.post(f"{escalation}/{KICKOFF}/acknowledge", json={}, headers=coordinator)
        as_leader = await api.post(f"{escalation}/{KICKOFF}/acknowledge", json={}, headers=auth("leader"))
        unknown = await api.post(f"{escalation}/track:juggling/acknowledge", json={}, headers=coordinator)
        malformed = await api.post(f"{escalation}/Kickoff!/acknowledge", json={}, headers=coordinator)
        elsewhere = await api.post(
            f"/v1/journeys/j-{unique}/escalations/{KICKOFF}/resolve", json={}, headers=coordinator
        )

        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["events"] == ["EscalationAcknowledged"]
        held = _kickoff(acknowledged.json())
        assert held and all((x["acknowledged_by"], x["resolved_at"]) == ("p-coord", None) for x in held)
        assert (again.status_code, again.json()["events"]) == (200, [])
        assert again.json()["version"] == acknowledged.json()["version"]
        assert (as_leader.status_code, as_leader.json()["code"]) == (403, "forbidden")
        assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_milestone")
        assert (malformed.status_code, malformed.json()["code"]) == (422, "invalid_request")
        assert elsewhere.status_code == 404

        # Past the instant the last rung was due: the acknowledged ladder has stayed where it was, open.
        await asyncio.sleep(4.5)
        listed = await api.get(f"/v1/escalations?state=acknowledged&cohort_id=c-{unique}", headers=coordinator)
        assert [x["rung"] for x in _kickoff(await _status(api, journey_id))] == [x["rung"] for x in held]
        assert [(x["journey_id"], x["milestone"], x["acknowledged_by"]) for x in listed.json()["items"]] == [
            (journey_id, KICKOFF, "p-coord") for _ in held
        ]

        # The milestone key may come percent-encoded too (%3A is the colon).
        resolved = await api.post(
            f"{escalation}/session%3Akickoff/resolve", json={"reason": "Fraværet er aftalt."}, headers=coordinator
        )
        twice = await api.post(f"{escalation}/{KICKOFF}/resolve", json={}, headers=coordinator)
        late_ack = await api.post(f"{escalation}/{KICKOFF}/acknowledge", json={}, headers=coordinator)
        still_open = await api.get(f"/v1/escalations?cohort_id=c-{unique}", headers=coordinator)

        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["events"] == ["EscalationResolved"]
        assert _kickoff(resolved.json()) and all(x["resolved_at"] is not None for x in _kickoff(resolved.json()))
        assert (twice.status_code, twice.json()["code"]) == (409, "no_open_escalation")
        assert twice.headers["content-type"] == "application/problem+json"
        assert (late_ack.status_code, late_ack.json()["code"]) == (409, "no_open_escalation")
        assert KICKOFF not in {x["milestone"] for x in still_open.json()["items"]}
        history = await api.get(f"/v1/journeys/{journey_id}/events", headers=coordinator)
        stored = [ev for ev in history.json()["items"] if ev["data"].get("milestone") == KICKOFF]
        assert [ev["event_type"] for ev in stored][-2:] == ["EscalationAcknowledged", "EscalationResolved"]
        assert stored[-1]["data"]["resolution"] == "resolved_by_coordinator"
        assert stored[-1]["data"]["reason_ref"] and stored[-2]["data"]["note_ref"]  # the texts are in the vault
        assert "Mette" not in history.text and "aftalt" not in history.text
    finally:
        # Work left on the test server when the worker goes (a timer, a delivery) stalls its clock for
        # every later test: withdraw the talent and let the workflow finish.
        withdrawn = await api.post(f"/v1/journeys/{journey_id}/withdraw", json={"reason": "test"}, headers=coordinator)
        assert withdrawn.status_code == 200, withdrawn.text
        assert (await journey_handle(time_env.client, journey_id).result()).state == "withdrawn"
