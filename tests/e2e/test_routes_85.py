"""Through HTTP, the routes of PRODUCT §8.5 that act on PRODUCT §4's rules: a leader change, a
completion override, a cohort-wide reschedule, a session's roll call and a cohort's edit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from icalendar import Calendar, Event
from temporalio.testing import WorkflowEnvironment

from domain.programme import Cohort, Programme
from store.eventstore import EventStore
from store.vault import PeopleVault, PersonData
from tests.e2e.conftest import VAULT_KEY, auth
from tests.support import CPH, fast_cohort, fast_programme, reference_cohort, reference_programme
from tests.workflows.journeys import advance_to, eventually

COORD = auth("coordinator")


async def _catalog(api: httpx.AsyncClient, programme: Programme, cohort: Cohort) -> None:
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=COORD)
        assert created.status_code == 201, created.text


async def _reference(api: httpx.AsyncClient, time_env: WorkflowEnvironment, name: str) -> Cohort:
    """The reference programme under its own id, and a cohort of it three weeks from now."""
    programme = reference_programme().model_copy(update={"id": f"r85-{name}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-{name}", starts_on=(now + timedelta(days=21)).date())
    await _catalog(api, programme, cohort)
    return cohort


async def _journey(
    api: httpx.AsyncClient, cohort_id: str, talent_id: str, *, leader: str = "p-leader", approve: bool = True
) -> str:
    nomination = {
        "cohort_id": cohort_id,
        "motivation": "Stærk i teamet.",
        "talent": {"person_id": talent_id, "name": "Mette", "email": "mette@example.org"},
        "nearest_leader": {"person_id": leader, "name": "Lars", "email": "lars@example.org"},
    }
    created = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert created.status_code == 201, created.text
    journey_id: str = created.json()["journey_id"]
    if approve:
        decided = await api.post(f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=COORD)
        assert decided.status_code == 200, decided.text
    return journey_id


async def _events(api: httpx.AsyncClient, journey_id: str) -> list[dict[str, Any]]:
    got = await api.get(f"/v1/journeys/{journey_id}/events", headers=COORD)
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


async def _texts(pool: asyncpg.Pool[asyncpg.Record], person_id: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM person_texts WHERE person_id = $1", person_id))


# -- leader change -----------------------------------------------------------------------------------


async def test_a_coordinator_changes_the_nearest_leader_who_is_created_and_the_former_leader_loses_sight(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    cohort = await _reference(api, time_env, f"lead-{unique}")
    journey_id = await _journey(api, cohort.cohort_id, f"p-tal-{unique}")
    vault = PeopleVault(pool, VAULT_KEY)
    new_leader = f"p-new-{unique}"
    body = {"nearest_leader": {"person_id": new_leader, "name": "Nina", "email": "nina@example.org"}}

    # Who may not: a leader, a talent (their role); nothing is stored of the person named.
    for who in ("leader", "talent"):
        refused = await api.post(f"/v1/journeys/{journey_id}/nearest-leader", json=body, headers=auth(who))
        assert refused.status_code == 403, (who, refused.text)
    assert await vault.get_person(new_leader) is None
    # The talent as their own leader: refused by the journey, and the person named is not created.
    talent_as_leader = {"nearest_leader": {"person_id": f"p-tal-{unique}", "name": "X", "email": "x@example.org"}}
    refused = await api.post(f"/v1/journeys/{journey_id}/nearest-leader", json=talent_as_leader, headers=COORD)
    assert refused.status_code in (409, 422), refused.text

    changed = await api.post(f"/v1/journeys/{journey_id}/nearest-leader", json=body, headers=COORD)
    assert changed.status_code == 200, changed.text
    assert changed.json()["nearest_leader_id"] == new_leader and "NearestLeaderChanged" in changed.json()["events"]
    assert await vault.get_person(new_leader) == PersonData(name="Nina", email="nina@example.org")
    # §8.1: the former leader's access ends.
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=auth("leader"))).status_code == 404

    # §8.2: an HR system names a stored person with other details: the journey changes hands, the
    # person's details do not.
    again = {
        "nearest_leader": {"person_id": "p-leader", "name": "Someone Else", "email": "else@example.org"},
        "leaders_leader": {"person_id": new_leader, "name": "Other Name", "email": "other@example.org"},
    }
    stored = await vault.get_person("p-leader")
    back = await api.post(f"/v1/journeys/{journey_id}/nearest-leader", json=again, headers=auth("hr"))
    assert back.status_code == 200, back.text
    assert await vault.get_person("p-leader") == stored
    assert await vault.get_person(new_leader) == PersonData(name="Nina", email="nina@example.org")
    assert back.json()["leaders_leader_id"] == new_leader
    assert (await api.get(f"/v1/journeys/{journey_id}", headers=auth("leader"))).status_code == 200


# -- completion override -----------------------------------------------------------------------------


async def test_a_coordinator_overrides_an_evaluated_completion_with_a_reason_kept_in_the_vault(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    programme = fast_programme().model_copy(update={"id": f"fast-{unique}"})
    now = (await time_env.get_current_time()).astimezone(CPH)
    cohort = fast_cohort(programme, now + timedelta(minutes=5), cohort_id=f"c-fast-{unique}", coordinator_id="p-coord")
    await _catalog(api, programme, cohort)
    talent = f"p-ovr-{unique}"
    journey_id = await _journey(api, cohort.cohort_id, talent)
    path = f"/v1/journeys/{journey_id}/completion-override"
    body = {"result": "completed", "reason": "Deltog i alt på anden vis."}

    # Not evaluated yet: refused by the journey, and its reason is not kept.
    early = await api.post(path, json=body, headers=COORD)
    assert early.status_code == 409 and early.json()["code"] == "invalid_state", early.text
    assert await _texts(pool, talent) == 1  # the motivation only
    # Only a coordinator; a reason is required; the result is one of two.
    assert (await api.post(path, json=body, headers=auth("hr"))).status_code == 403
    for bad in ({"result": "completed"}, {"result": "passed", "reason": "x"}):
        assert (await api.post(path, json=bad, headers=COORD)).status_code == 422, bad

    # Nothing done all programme long: the evaluation says not completed (stepped up to, so the
    # follow-ups after it do not close the journey first).
    async def state() -> str:
        got = await api.get(f"/v1/journeys/{journey_id}", headers=COORD)
        return str(got.json()["state"])

    step = now
    while (current := await state()) in ("enrolled", "active"):
        assert step < now + timedelta(hours=3), current
        step += timedelta(seconds=10)
        await advance_to(time_env, step)
        current = await eventually(state, lambda s: s not in ("enrolled", "active"), seconds=0.2)
    assert current in ("not_completed", "following_up"), current
    overridden = await api.post(path, json=body, headers=COORD)
    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["completion"] == "completed" and "ProgrammeCompleted" in overridden.json()["events"]
    completed = [e for e in await _events(api, journey_id) if e["event_type"] == "ProgrammeCompleted"][-1]
    assert completed["data"]["override"] is True and completed["data"]["reason_ref"].startswith("t-")
    assert "Deltog" not in str(completed)  # the reason is in the vault, never in an event
    assert await PeopleVault(pool, VAULT_KEY).get_text(completed["data"]["reason_ref"]) == body["reason"]


# -- reschedule ----------------------------------------------------------------------------------------


async def _feed(api: httpx.AsyncClient, url: str, journey_id: str) -> dict[str, Event]:
    response = await api.get(url)
    assert response.status_code == 200, response.text
    calendar = Calendar.from_ical(response.content)
    assert isinstance(calendar, Calendar)
    return {str(ev.uid): ev for ev in calendar.events if str(ev.uid).startswith(f"{journey_id}.")}


async def test_a_reschedule_moves_the_cohort_calendar_every_open_journey_and_the_calendar_feeds(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    cohort = await _reference(api, time_env, f"move-{unique}")
    enrolled = await _journey(api, cohort.cohort_id, "p-talent")
    nominated = await _journey(api, cohort.cohort_id, f"p-nom-{unique}", approve=False)
    rejected = await _journey(api, cohort.cohort_id, f"p-rej-{unique}", approve=False)
    rejection = {"decision": "reject", "reason": "Ikke nu."}
    assert (await api.post(f"/v1/journeys/{rejected}/decision", json=rejection, headers=COORD)).status_code == 200
    issued = await api.post("/v1/people/p-talent/calendar-feed", headers=auth("talent"))
    assert issued.status_code == 201, issued.text
    url = issued.json()["url"]
    uid = f"{enrolled}.session.kickoff@talent-journey"
    before = (await _feed(api, url, enrolled))[uid]
    kickoff = cohort.sessions[0]
    assert kickoff.key == "kickoff" and before.start == kickoff.starts_at
    path = f"/v1/cohorts/{cohort.cohort_id}/sessions/kickoff/reschedule"
    moved_to = kickoff.starts_at + timedelta(days=2, hours=4)
    body = {"starts_at": moved_to.isoformat(), "location": "Rådhuset, sal 2", "reason": "Underviseren er syg."}

    # Refused, and nothing moves: another role, an unknown session or cohort, a date before the start.
    assert (await api.post(path, json=body, headers=auth("hr"))).status_code == 403
    unknown = await api.post(path.replace("kickoff", "nope"), json=body, headers=COORD)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_session", unknown.text
    nobody = await api.post(path.replace(cohort.cohort_id, f"c-none-{unique}"), json=body, headers=COORD)
    assert nobody.status_code == 404, nobody.text
    too_early = {**body, "starts_at": (kickoff.starts_at - timedelta(days=60)).isoformat()}
    refused = await api.post(path, json=too_early, headers=COORD)
    assert refused.status_code == 422, refused.text
    assert (await api.post(path, json={**body, "starts_at": "2027-02-01T09:00:00"}, headers=COORD)).status_code == 422
    stored = (await api.get(f"/v1/cohorts/{cohort.cohort_id}", headers=COORD)).json()["cohort"]
    assert Cohort.model_validate(stored) == cohort

    moved = await api.post(path, json=body, headers=COORD)
    assert moved.status_code == 200, moved.text
    assert sorted(moved.json()["journeys"]) == sorted([enrolled, nominated])  # not the rejected one
    now_stored = Cohort.model_validate(
        (await api.get(f"/v1/cohorts/{cohort.cohort_id}", headers=COORD)).json()["cohort"]
    )
    assert now_stored.sessions[0].starts_at == moved_to and now_stored.sessions[0].location == "Rådhuset, sal 2"
    assert now_stored.sessions[1:] == cohort.sessions[1:]

    async def rescheduled(journey_id: str) -> list[dict[str, Any]]:
        return [e for e in await _events(api, journey_id) if e["event_type"] == "SessionRescheduled"]

    for journey_id in (enrolled, nominated):
        found = await eventually(lambda j=journey_id: rescheduled(j), bool)  # type: ignore[misc]
        assert found and datetime.fromisoformat(found[0]["data"]["starts_at"]) == moved_to, journey_id
    assert not await rescheduled(rejected)
    # The participants are told: the enrolled talent, not the one only nominated.
    told = await pool.fetch(
        "SELECT journey_id, recipient_id FROM outbox WHERE template = 'session_rescheduled' AND journey_id = ANY($1)",
        [enrolled, nominated, rejected],
    )
    assert [(r["journey_id"], r["recipient_id"]) for r in told] == [(enrolled, "p-talent")]
    # The feed's entry moved: the same UID, the new start, a higher SEQUENCE.
    deadline = asyncio.get_running_loop().time() + 30
    while (after := (await _feed(api, url, enrolled))[uid]).start == before.start:
        assert asyncio.get_running_loop().time() < deadline, "the reschedule never reached the feed"
        await asyncio.sleep(0.1)
    assert after.start == moved_to and after.sequence > before.sequence
    # A new nomination into the cohort takes the new date.
    late = await _journey(api, cohort.cohort_id, f"p-late-{unique}", approve=False)
    taken = Cohort.model_validate((await _events(api, late))[0]["data"]["cohort"])
    assert taken.sessions[0].starts_at == moved_to


# -- roll call -------------------------------------------------------------------------------------------


async def test_a_roll_call_answers_once_per_journey_and_refuses_journeys_of_other_cohorts(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort = await _reference(api, time_env, f"roll-{unique}")
    other = await _reference(api, time_env, f"roll2-{unique}")
    present = await _journey(api, cohort.cohort_id, f"p-a-{unique}")
    excused = await _journey(api, cohort.cohort_id, f"p-b-{unique}")
    undecided = await _journey(api, cohort.cohort_id, f"p-c-{unique}", approve=False)
    elsewhere = await _journey(api, other.cohort_id, f"p-d-{unique}")
    path = f"/v1/cohorts/{cohort.cohort_id}/sessions/kickoff/attendance"
    records = [
        {"journey_id": excused, "status": "excused"},
        {"journey_id": present, "status": "attended"},  # before the session starts: refused
        {"journey_id": undecided, "status": "excused"},
        {"journey_id": elsewhere, "status": "excused"},
        {"journey_id": "00000000-0000-4000-8000-000000000000", "status": "excused"},
    ]
    assert (await api.post(path, json={"records": records}, headers=auth("leader"))).status_code == 403
    assert (await api.post(path, json={"records": []}, headers=COORD)).status_code == 422
    unknown = await api.post(path.replace("kickoff", "nope"), json={"records": records}, headers=COORD)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_session"

    answered = await api.post(path, json={"records": records}, headers=COORD)
    assert answered.status_code == 200, answered.text
    results = answered.json()["results"]
    assert [r["journey_id"] for r in results] == [r["journey_id"] for r in records]
    assert [r["status"] for r in results] == ["recorded", "refused", "refused", "refused", "refused"]
    assert results[1]["problem"]["code"] == "session_not_started"
    assert results[3]["problem"] == results[4]["problem"]  # another cohort's journey as an unknown one
    assert results[3]["problem"]["code"] == "not_in_cohort" and results[3]["problem"]["status"] == 404
    assert "problem" not in results[0]
    recorded = [e for e in await _events(api, excused) if e["event_type"] == "SessionAttendanceRecorded"]
    assert [e["data"]["status"] for e in recorded] == ["excused"]
    for journey_id in (present, undecided, elsewhere):
        assert not [e for e in await _events(api, journey_id) if e["event_type"] == "SessionAttendanceRecorded"]


# -- cohort edit -------------------------------------------------------------------------------------------


async def test_a_cohort_edit_changes_capacity_coordinator_and_places_and_refuses_what_the_programme_forbids(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort = await _reference(api, time_env, f"edit-{unique}")
    path = f"/v1/cohorts/{cohort.cohort_id}"

    async def stored() -> Cohort:
        return Cohort.model_validate((await api.get(path, headers=COORD)).json()["cohort"])

    assert (await api.patch(path, json={"capacity": 1}, headers=auth("hr"))).status_code == 403
    assert (await api.patch(path, json={"capacity": 0}, headers=COORD)).status_code == 422
    assert (await api.patch(path, json={"locations": {"nope": "X"}}, headers=COORD)).status_code == 404
    # The reference programme's ladders reach the coordinator: the cohort cannot lose theirs.
    assert (await api.patch(path, json={"coordinator_id": None}, headers=COORD)).status_code == 422
    assert await stored() == cohort

    edited = await api.patch(
        path, json={"capacity": 1, "coordinator_id": "p-coord-2", "locations": {"kickoff": "Rådhuset"}}, headers=COORD
    )
    assert edited.status_code == 200, edited.text
    now = await stored()
    assert (now.capacity, now.coordinator_id, now.sessions[0].location) == (1, "p-coord-2", "Rådhuset")
    assert now.sessions[0].starts_at == cohort.sessions[0].starts_at and now.sessions[1:] == cohort.sessions[1:]
    # The new capacity holds: one place, the second approval is refused.
    await _journey(api, cohort.cohort_id, f"p-first-{unique}")
    second = await _journey(api, cohort.cohort_id, f"p-second-{unique}", approve=False)
    full = await api.post(f"/v1/journeys/{second}/decision", json={"decision": "approve"}, headers=COORD)
    assert full.status_code == 409 and full.json()["code"] == "cohort_full", full.text


async def test_a_running_journey_follows_its_cohorts_new_coordinator_and_places(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    cohort = await _reference(api, time_env, f"follow-{unique}")
    journey_id = await _journey(api, cohort.cohort_id, f"p-follow-{unique}")
    edited = await api.patch(
        f"/v1/cohorts/{cohort.cohort_id}",
        json={"coordinator_id": "p-coord-new", "locations": {"kickoff": "Rådhuset"}},
        headers=COORD,
    )
    assert edited.status_code == 200, edited.text
    changed: list[dict[str, Any]] = []
    for _ in range(100):
        changed = [e for e in await _events(api, journey_id) if e["event_type"] == "CohortDetailsChanged"]
        if changed:
            break
        await asyncio.sleep(0.05)
    assert [e["data"] for e in changed] == [{"coordinator_id": "p-coord-new", "locations": {"kickoff": "Rådhuset"}}]
    state = await EventStore(pool).load(journey_id)
    assert state is not None and state.cohort.coordinator_id == "p-coord-new"
    assert state.person_for("coordinator") == "p-coord-new"  # its later coordinator rungs reach them
    assert next(s for s in state.cohort.sessions if s.key == "kickoff").location == "Rådhuset"
    # The same edit again changes nothing more.
    again = await api.patch(f"/v1/cohorts/{cohort.cohort_id}", json={"coordinator_id": "p-coord-new"}, headers=COORD)
    assert again.status_code == 200
    await asyncio.sleep(0.3)
    assert len([e for e in await _events(api, journey_id) if e["event_type"] == "CohortDetailsChanged"]) == 1
