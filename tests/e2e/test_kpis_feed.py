"""Through HTTP: a small cohort's KPIs, and the HR feed with its webhook delivery state."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.status import JourneyStatus
from tests.e2e.conftest import auth
from tests.support import compressed_cohort, compressed_programme, reference_cohort, reference_programme
from tests.workflows.journeys import COMPRESSED_PACE, advance_to, local, on_track

LATE_TRACK = "hard-conversation"
#: How long (real time) to wait for the feed's server-wide watermark or a background delivery.
PATIENCE = 30.0


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.status_code, response.text)
    return response.json()


async def _nominate(api: httpx.AsyncClient, cohort_id: str, talent: str) -> str:
    body = {
        "cohort_id": cohort_id,
        "external_ref": f"HR-{talent}",
        "motivation": "Tager ansvar i teamet.",
        "talent": {"person_id": talent, "name": "Mette Holm", "email": "mette.holm@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars Berg", "email": "lars.berg@example.org"},
    }
    created = await _ok(await api.post("/v1/journeys", json=body, headers=auth("hr")), 201)
    return str(created["journey_id"])


async def _command(api: httpx.AsyncClient, journey: str, command: c.Command) -> None:
    """Send a scripted command as the role that sends it over HTTP."""
    path = f"/v1/journeys/{journey}"
    match command:
        case c.RecordAttendance():
            who, path, body = (
                "coordinator",
                f"{path}/attendance",
                {"session_key": command.session_key, "status": "attended"},
            )
        case c.SubmitTrack():
            who, path, body = "talent", f"{path}/tracks/{command.track_key}/submission", {"reflection": "Lært."}
        case c.SignOffTrack():
            who, path, body = "leader", f"{path}/tracks/{command.track_key}/signoff", {"decision": "approve"}
        case c.LogMentorMeeting():
            who, path, body = "leader", f"{path}/mentor-meetings", {"held_on": command.held_on.isoformat()}
        case _:  # pragma: no cover - the script holds only these
            raise AssertionError(command)
    await _ok(await api.post(path, json=body, headers=auth(who)))


async def _status(api: httpx.AsyncClient, journey: str) -> JourneyStatus:
    return JourneyStatus.model_validate(
        await _ok(await api.get(f"/v1/journeys/{journey}", headers=auth("coordinator")))
    )


async def test_a_small_cohorts_kpis_count_completion_punctuality_escalations_and_outcomes(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme = compressed_programme().model_copy(update={"id": f"kpi-{unique}"})
    start = await time_env.get_current_time() + timedelta(minutes=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"c-kpi-{unique}")
    await _ok(
        await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=auth("coordinator")), 201
    )
    await _ok(await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=auth("coordinator")), 201)
    # One talent does everything (one track late), one nothing, one leaves straight after approval.
    punctual = await _nominate(api, cohort.cohort_id, "p-talent")
    idle = await _nominate(api, cohort.cohort_id, f"p-idle-{unique}")
    leaving = await _nominate(api, cohort.cohort_id, f"p-leaving-{unique}")
    for journey in (punctual, idle, leaving):
        decision = {"decision": "approve"}
        await _ok(await api.post(f"/v1/journeys/{journey}/decision", json=decision, headers=auth("coordinator")))
    withdraw = {"reason": "Flyttet."}
    await _ok(await api.post(f"/v1/journeys/{leaving}/withdraw", json=withdraw, headers=auth("coordinator")))

    plan = await _status(api, punctual)
    agenda = [
        item for item in on_track(cohort, plan, COMPRESSED_PACE) if getattr(item[1], "track_key", None) != LATE_TRACK
    ]
    due = next(m.due_at for m in plan.milestones if m.key == f"track:{LATE_TRACK}")
    agenda += [
        (due + timedelta(seconds=15), c.SubmitTrack(actor_id="p-talent", actor_role="talent", track_key=LATE_TRACK)),
        (
            due + timedelta(seconds=25),
            c.SignOffTrack(actor_id="p-leader", actor_role="leader", track_key=LATE_TRACK, decision="approve"),
        ),
    ]
    for when, command in sorted(agenda, key=lambda item: item[0]):
        await advance_to(time_env, when)
        await _command(api, punctual, command)

    # Evaluated at start + 8 minutes; the punctual talent is appointed the same day.
    await advance_to(time_env, start + timedelta(minutes=8, seconds=5))
    evaluated = await _status(api, punctual)
    assert evaluated.completion == "completed", evaluated
    today = local(await time_env.get_current_time()).date().isoformat()
    outcome = {"applied_for_leader_post": True, "appointed": True, "on": today}
    await _ok(await api.post(f"/v1/journeys/{punctual}/outcome", json=outcome, headers=auth("hr")))
    # The follow-ups run out and both evaluated journeys close (so no workflow outlives the test).
    await advance_to(time_env, start + timedelta(minutes=8, seconds=150))
    statuses = [await _status(api, j) for j in (punctual, idle, leaving)]
    assert [s.state for s in statuses] == ["closed", "closed", "withdrawn"], statuses

    kpis = await _ok(await api.get(f"/v1/cohorts/{cohort.cohort_id}/kpis", headers=auth("coordinator")))

    assert {k: kpis[k] for k in ("journeys", "evaluated", "completed", "not_completed", "withdrawn", "rejected")} == {
        "journeys": 3,
        "evaluated": 2,
        "completed": 1,
        "not_completed": 1,
        "withdrawn": 1,
        "rejected": 0,
    }
    assert (kpis["in_progress"], kpis["completion_rate"]) == (0, 0.5)
    assert (kpis["by_state"]["closed"], kpis["by_state"]["withdrawn"], kpis["by_state"]["active"]) == (2, 1, 0)
    kinds = {m["kind"]: m for m in kpis["milestones"]}
    tracks = len(programme.tracks)
    # Three tracks on time and one late (punctual), all slipped (idle), all open (leaving).
    assert {k: kinds["track"][k] for k in ("on_time", "late", "missed", "slipped", "open", "due")} == {
        "on_time": tracks - 1,
        "late": 1,
        "missed": 0,
        "slipped": tracks,
        "open": tracks,
        "due": 2 * tracks,
    }
    assert kinds["track"]["on_time_rate"] == (tracks - 1) / (2 * tracks)
    assert (kinds["approval"]["on_time"], kinds["approval"]["due"], kinds["approval"]["on_time_rate"]) == (3, 3, 1.0)
    # Escalations: as many per kind and rung as the three journeys' status views show raised.
    expected: Counter[tuple[str, int]] = Counter()
    for s in statuses:
        kind_of = {m.key: m.kind for m in s.milestones}
        expected.update((kind_of[x.milestone], x.rung) for x in s.escalations)
    assert {(x["kind"], x["rung"]): x["raised"] for x in kpis["escalations"]} == dict(expected)
    assert expected[("track", 1)] == 1 + tracks and all(x["open"] == 0 for x in kpis["escalations"])
    # The horizons have not passed (the test server runs ahead of the wall clock): nobody is counted yet.
    assert [(h["months"], h["eligible"], h["applied_rate"]) for h in kpis["outcomes"]] == [
        (6, 0, None),
        (12, 0, None),
        (24, 0, None),
    ]
    assert (kpis["appointed"], kpis["median_days_to_appointment"]) == (1, 0.0)

    # The programme's KPIs are the same journeys here; an HR system may read those, not a cohort's.
    whole = await _ok(await api.get(f"/v1/programmes/{programme.id}/kpis", headers=auth("hr")))
    assert {k: v for k, v in whole.items() if k != "as_of"} == {k: v for k, v in kpis.items() if k != "as_of"}
    for who, path in (
        ("hr", f"/v1/cohorts/{cohort.cohort_id}/kpis"),
        ("leader", f"/v1/programmes/{programme.id}/kpis"),
        ("talent", f"/v1/cohorts/{cohort.cohort_id}/kpis"),
    ):
        refused = await api.get(path, headers=auth(who))
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json", path
    for path in (f"/v1/cohorts/nope-{unique}/kpis", f"/v1/programmes/nope-{unique}/kpis"):
        missing = await api.get(path, headers=auth("coordinator"))
        assert missing.status_code == 404 and missing.json()["code"] == "not_found", path


async def _feed_after(api: httpx.AsyncClient, cursor: str, found: Any) -> tuple[list[dict[str, Any]], str]:
    """Page the feed from `cursor` (small pages) until `found(items)`; the items read and the last cursor."""
    items: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not found(items):
        assert asyncio.get_running_loop().time() < deadline, items[-5:]
        page = await _ok(await api.get("/v1/feed", params={"after": cursor, "limit": 3}, headers=auth("hr")))
        assert len(page["items"]) <= 3
        items += page["items"]
        if page["items"]:
            assert page["next"] == page["items"][-1]["cursor"]
        else:
            assert page["next"] == cursor
            await asyncio.sleep(0.05)
        cursor = page["next"]
    return items, cursor


async def test_the_hr_feed_hands_out_journey_events_without_personal_data_and_the_webhook_delivery_state(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool, unique: str
) -> None:
    for who in ("coordinator", "leader", "talent"):
        for path in ("/v1/feed", "/v1/feed/deliveries"):
            refused = await api.get(path, headers=auth(who))
            assert refused.status_code == 403 and refused.json()["code"] == "forbidden", (who, path)
    for params in ({"after": "abc"}, {"after": "-1"}, {"limit": 0}, {"limit": 1001}):
        assert (await api.get("/v1/feed", params=params, headers=auth("hr"))).status_code == 422, params
    unknown = await api.get("/v1/feed", params={"after": "99999999999999999"}, headers=auth("hr"))
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_cursor"
    for params in ({"after": "no!"}, {"status": "lost"}, {"limit": 1001}):
        assert (await api.get("/v1/feed/deliveries", params=params, headers=auth("hr"))).status_code == 422, params
    malformed = await api.get("/v1/feed/deliveries", params={"after": "12-" + "-" * 32}, headers=auth("hr"))
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_cursor"

    # The HR system's checkpoint: everything readable so far.
    cursor = "0"
    while True:
        page = await _ok(await api.get("/v1/feed", params={"after": cursor, "limit": 1000}, headers=auth("hr")))
        cursor = page["next"]
        if len(page["items"]) < 1000:
            break

    programme = reference_programme().model_copy(update={"id": f"feed-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-feed-{unique}", starts_on=(now + timedelta(days=21)).date())
    await _ok(
        await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=auth("coordinator")), 201
    )
    await _ok(await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=auth("coordinator")), 201)
    journey = await _nominate(api, cohort.cohort_id, f"p-feed-{unique}")
    decision = {"decision": "approve", "reason": "Stærk motivation"}
    await _ok(await api.post(f"/v1/journeys/{journey}/decision", json=decision, headers=auth("coordinator")))
    withdraw = {"reason": "Flyttet."}
    await _ok(await api.post(f"/v1/journeys/{journey}/withdraw", json=withdraw, headers=auth("coordinator")))

    items, _ = await _feed_after(
        api,
        cursor,
        lambda got: any(ev["event_type"] == "TalentWithdrawn" and ev["journey_id"] == journey for ev in got),
    )
    ours = [ev for ev in items if ev["journey_id"] == journey]
    assert [ev["stream_version"] for ev in ours] == list(range(1, len(ours) + 1))
    # The webhook events among them (MilestoneMet, for one, is not sent to HR systems).
    expected = ["TalentNominated", "NominationApproved", "TalentEnrolled", "TalentWithdrawn"]
    assert [ev["event_type"] for ev in ours if ev["event_type"] in expected] == expected
    assert all(ev["cursor"] == str(ev["global_position"]) for ev in items)
    nominated = ours[0]["data"]
    assert (nominated["cohort_id"], nominated["programme_id"], nominated["external_ref"]) == (
        cohort.cohort_id,
        programme.id,
        f"HR-p-feed-{unique}",
    )
    assert "programme" not in nominated and "cohort" not in nominated
    assert nominated["talent_id"] == f"p-feed-{unique}" and nominated["motivation_ref"]
    text = str(ours)
    assert "Mette" not in text and "example.org" not in text and "Stærk" not in text and "Flyttet" not in text
    # Resuming from the middle of what was read hands out the rest again, nothing before it.
    again, _ = await _feed_after(
        api, ours[1]["cursor"], lambda got: any(ev["event_id"] == ours[-1]["event_id"] for ev in got)
    )
    assert [ev["event_id"] for ev in again if ev["journey_id"] == journey] == [ev["event_id"] for ev in ours[2:]]

    # The webhooks of those events: each with its state, its event's feed position, paged by cursor.
    def listing(**params: Any) -> Any:
        return api.get("/v1/feed/deliveries", params={"journey_id": journey, **params}, headers=auth("hr"))

    deadline = asyncio.get_running_loop().time() + PATIENCE
    while True:
        deliveries = (await _ok(await listing()))["items"]
        if len(deliveries) == len(expected) and all(d["status"] != "pending" for d in deliveries):
            break
        assert asyncio.get_running_loop().time() < deadline, deliveries
        await asyncio.sleep(0.05)
    positions = {ev["event_id"]: ev["global_position"] for ev in ours}
    assert [d["event_type"] for d in deliveries] == expected
    assert all(d["global_position"] == positions[d["event_id"]] for d in deliveries)
    # The test worker has no webhook configured, so its deliveries are skipped, with the reason.
    assert {(d["status"], d["last_error"], d["next_attempt_at"]) for d in deliveries} == {
        ("skipped", "no webhook configured", None)
    }
    paged: list[str] = []
    after: str | None = None
    while True:
        page = await _ok(await listing(limit=1, **({"after": after} if after else {})))
        paged += [d["notification_id"] for d in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert paged == [d["notification_id"] for d in deliveries]
    # A dead-lettered delivery is listed as such (here marked so by hand; tests/integration/test_notify.py
    # dead-letters one for real).
    await pool.execute(
        "UPDATE outbox SET status = 'dead', last_error = 'webhook answered 410' WHERE notification_id = $1::uuid",
        deliveries[1]["notification_id"],
    )
    dead = (await _ok(await listing(status="dead")))["items"]
    assert [(d["notification_id"], d["last_error"]) for d in dead] == [
        (deliveries[1]["notification_id"], "webhook answered 410")
    ]
    assert len((await _ok(await listing(status="skipped")))["items"]) == len(expected) - 1


@pytest.mark.parametrize("path", ["/v1/feed", "/v1/feed/deliveries"])
async def test_the_feed_answers_401_without_a_token(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 401
