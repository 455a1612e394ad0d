"""A talent's whole journey through HTTP, driven by the four roles, on a real Temporal dev server,
a real worker and PostgreSQL: the compressed programme, twenty times faster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import Authenticator, TokenEntry
from service import bootstrap
from tests.conftest import session_settings
from tests.e2e.conftest import TOKENS, auth
from tests.integration.conftest import dev_server  # noqa: F401 - the fixture, used here
from tests.support import CPH, fast_cohort, fast_programme
from workers.worker import build_worker

LATE_TRACK = "observe-leader"


@pytest.fixture
async def dev_api(
    dev_server: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API over ASGI, with a journey worker on the dev server behind it."""
    # The worker and the API get the session's vault key from the same settings.
    settings = session_settings(tmp_path, TALENT_TASK_QUEUE=f"e2e-{unique}")
    async with (
        bootstrap.worker_components(settings, pool) as parts,
        build_worker(dev_server.client, parts, task_queue=settings.task_queue),
    ):
        resources = bootstrap.resources(
            settings,
            pool=pool,
            temporal=dev_server.client,
            authenticator=Authenticator(
                [*TOKENS.values(), TokenEntry(token=f"tok-{unique}", role="talent", person_id=f"p-{unique}")]
            ),
        )
        transport = httpx.ASGITransport(app=create_app(resources))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30) as client:
            yield client


def _auth(who: str) -> dict[str, str]:
    """A test principal's header; "me" is this test's own talent (erased at the end)."""
    return {"Authorization": f"Bearer tok-{who.removeprefix('me:')}"} if who.startswith("me:") else auth(who)


async def _post(api: httpx.AsyncClient, who: str, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = await api.post(path, json=body, headers=_auth(who))
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json()


async def _until(api: httpx.AsyncClient, journey: str, what: str, found: Any, within: float = 40) -> dict[str, Any]:
    """Poll the journey's status as the coordinator until `found(status)`."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status = (await api.get(f"/v1/journeys/{journey}", headers=auth("coordinator"))).json()
        if found(status):
            return dict(status)
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"no {what} within {within} s: {status}")
        await asyncio.sleep(0.1)


async def test_four_roles_drive_a_whole_journey_through_http_on_the_dev_server(
    dev_api: httpx.AsyncClient, unique: str
) -> None:
    api = dev_api
    me = f"me:{unique}"
    programme = fast_programme().model_copy(update={"id": f"fast-{unique}"})
    start = datetime.now(CPH) + timedelta(seconds=3)
    cohort = fast_cohort(programme, start, cohort_id=f"fast-{unique}", coordinator_id="p-coord")
    await _post(api, "coordinator", "/v1/programmes", programme.model_dump(mode="json"), 201)
    await _post(api, "coordinator", "/v1/cohorts", cohort.model_dump(mode="json"), 201)

    # HR nominates; the same nomination again (a retry with no key) finds the open journey.
    nomination = {
        "cohort_id": cohort.cohort_id,
        "external_ref": f"HR-{unique}",
        "motivation": "Tager ansvar i teamet.",
        "talent": {"person_id": f"p-{unique}", "name": "Mette Holm", "email": "mette@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars Berg", "email": "lars@example.org"},
        "leaders_leader": {"person_id": f"p-boss-{unique}", "name": "Birgit Dal", "email": "birgit@example.org"},
    }
    created = await _post(api, "hr", "/v1/journeys", nomination, 201)
    journey = created["journey_id"]
    nominated_at = datetime.now(UTC)
    assert (await _post(api, "hr", "/v1/journeys", nomination, 200))["journey_id"] == journey
    await asyncio.sleep(0.05)

    # The coordinator approves; the leader of another talent can neither see nor act.
    approved = await _post(api, "coordinator", f"/v1/journeys/{journey}/decision", {"decision": "approve"})
    assert approved["state"] == "enrolled" and "TalentEnrolled" in approved["events"]
    other = await api.post(
        f"/v1/journeys/{journey}/tracks/{LATE_TRACK}/signoff",
        json={"decision": "approve"},
        headers=auth("other_leader"),
    )
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    theirs = await api.get("/v1/journeys", params={"cohort_id": cohort.cohort_id}, headers=auth("other_leader"))
    assert theirs.json()["items"] == []

    # Sessions (coordinator), tracks (talent submits, leader signs off), mentor meetings (both).
    today = datetime.now(CPH).date().isoformat()

    async def roll_call() -> None:
        """The coordinator records each session's attendance once it has started (rules 3)."""
        for session in sorted(cohort.sessions, key=lambda x: x.starts_at):
            await asyncio.sleep(max(0.0, (session.starts_at - datetime.now(CPH)).total_seconds()) + 0.05)
            body = {"session_key": session.key, "status": "attended"}
            await _post(api, "coordinator", f"/v1/journeys/{journey}/attendance", body)

    sessions = asyncio.create_task(roll_call())
    for track in programme.tracks:
        if track.key == LATE_TRACK:
            continue
        await _post(api, me, f"/v1/journeys/{journey}/tracks/{track.key}/submission", {"reflection": "Lært."})
        signed = await _post(
            api, "leader", f"/v1/journeys/{journey}/tracks/{track.key}/signoff", {"decision": "approve"}
        )
        assert "MilestoneMet" in signed["events"]
    for i in range(programme.mentor_meetings.count):
        who = "leader" if i % 2 == 0 else me
        await _post(api, who, f"/v1/journeys/{journey}/mentor-meetings", {"held_on": today, "notes": "Godt møde."})
        if who == me:  # PRODUCT §8.4: the talent's meeting counts once the nearest leader confirms it
            confirmed = await _post(api, "leader", f"/v1/journeys/{journey}/mentor-meetings/{today}/confirm", {})
            assert "MentorMeetingConfirmed" in confirmed["events"], confirmed

    # One track is late: the journey turns at risk and the coordinator sees the escalation.
    at_risk = await _until(api, journey, "slip", lambda s: s["at_risk"])
    assert any(LATE_TRACK in reason for reason in at_risk["at_risk_reasons"]), at_risk
    await _until(api, journey, "second rung", lambda s: any(e["rung"] >= 2 for e in s["escalations"]))
    open_escalations = (await api.get("/v1/escalations?state=open", headers=auth("coordinator"))).json()
    assert any(e["journey_id"] == journey for e in open_escalations["items"]), open_escalations
    # The nearest leader is not this journey's leader's leader: none of its rungs are theirs (§8.1).
    led = (await api.get("/v1/escalations?state=open", headers=auth("leader"))).json()["items"]
    assert all(e["journey_id"] != journey for e in led), led
    assert (await api.get("/v1/escalations?state=open", headers=auth("talent"))).status_code == 403
    await sessions
    await _post(api, me, f"/v1/journeys/{journey}/tracks/{LATE_TRACK}/submission", {"reflection": "Sent."})
    resolved = await _post(
        api, "leader", f"/v1/journeys/{journey}/tracks/{LATE_TRACK}/signoff", {"decision": "approve"}
    )
    assert "EscalationResolved" in resolved["events"]

    # The programme evaluates the journey; the talent reports the outcome when asked.
    await _until(api, journey, "follow-up", lambda s: s["state"] == "following_up", within=60)
    outcome = {"applied_for_leader_post": True, "appointed": False, "on": today}
    assert (await _post(api, me, f"/v1/journeys/{journey}/outcome", outcome))["events"] == ["OutcomeRecorded"]
    closed = await _until(api, journey, "closing", lambda s: s["state"] == "closed", within=60)
    assert closed["at_risk"] is False

    # A closed journey refuses commands with 409; its history and its past stay readable.
    late = await api.post(
        f"/v1/journeys/{journey}/attendance",
        json={"session_key": "kickoff", "status": "absent"},
        headers=auth("coordinator"),
    )
    assert late.status_code == 409, late.text
    assert late.json()["code"] in ("journey_ended", "invalid_state")
    events = (await api.get(f"/v1/journeys/{journey}/events", headers=_auth(me))).json()["items"]
    types = [ev["event_type"] for ev in events]
    assert (types[0], types[-1]) == ("TalentNominated", "JourneyClosed")
    assert types.count("OutcomeRecorded") == 1 and types.count("EscalationResolved") == 1
    assert "Mette" not in str(events), "events carry ids, never personal data"
    then = await api.get(f"/v1/journeys/{journey}", params={"as_of": nominated_at.isoformat()}, headers=auth("leader"))
    assert then.status_code == 200 and then.json()["state"] == "nominated", then.text

    # The talent is erased: the history stays, the erasure is noted in it, twice changes nothing.
    erased = await api.delete(f"/v1/people/p-{unique}", headers=auth("coordinator"))
    assert erased.status_code == 200 and journey in erased.json()["journeys"], erased.text
    again = await api.delete(f"/v1/people/p-{unique}", headers=auth("coordinator"))
    assert again.json()["already_erased"] is True
    after = (await api.get(f"/v1/journeys/{journey}/events", headers=auth("coordinator"))).json()["items"]
    assert [ev["event_type"] for ev in after].count("PersonalDataErased") == 1
    assert len(after) == len(events) + 1
    # A command with a free text is checked before the text is stored: refused (the journey is
    # closed), and nothing is written.
    refused = await api.post(f"/v1/journeys/{journey}/pause", json={"reason": "Orlov."}, headers=auth("coordinator"))
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_state"), refused.text
