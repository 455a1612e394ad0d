"""Through HTTP: iCalendar feeds issued per person, fetched without a token, revoked, and stable
across a session's reschedule."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from icalendar import Calendar, Event
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from tests.e2e.conftest import auth
from tests.support import reference_cohort, reference_programme
from workflows.client import journey_handle


async def _journey(api: httpx.AsyncClient, cohort_id: str, talent: dict[str, str], approve: bool = True) -> str:
    nomination = {
        "cohort_id": cohort_id,
        "motivation": "Stærk i teamet.",
        "talent": talent,
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    created = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert created.status_code == 201, created.text
    journey_id: str = created.json()["journey_id"]
    if approve:
        decided = await api.post(
            f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
        )
        assert decided.status_code == 200, decided.text
    return journey_id


async def _feed(api: httpx.AsyncClient, url: str, journey_id: str) -> dict[str, Event]:
    """Fetch a feed as a calendar client does (no token) and parse it: the journey's events by UID."""
    response = await api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "max-age" in response.headers["cache-control"] and "private" in response.headers["cache-control"]
    calendar = Calendar.from_ical(response.content)
    assert isinstance(calendar, Calendar) and calendar.get_missing_tzids() == set()
    return {str(ev.uid): ev for ev in calendar.events if str(ev.uid).startswith(f"{journey_id}.")}


async def _issue(api: httpx.AsyncClient, person_id: str, who: str) -> str:
    response = await api.post(f"/v1/people/{person_id}/calendar-feed", headers=auth(who))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["person_id"] == person_id
    url: str = body["url"]
    assert url.startswith("http://api.test/calendar/") and url.endswith(".ics")
    return url


async def test_a_talent_and_their_leader_subscribe_and_a_reschedule_moves_the_entry_they_already_have(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme = reference_programme().model_copy(update={"id": f"cal-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-cal-{unique}", starts_on=(now + timedelta(days=21)).date())
    coordinator = auth("coordinator")
    published = await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=coordinator)
    assert published.status_code == 201, published.text
    created = await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=coordinator)
    assert created.status_code == 201, created.text
    talent = {"person_id": "p-talent", "name": "Mette", "email": "mette@example.org"}
    journey_id = await _journey(api, cohort.cohort_id, talent)

    # The talent's own feed: every session with its place and time, deadlines, no names.
    talent_url = await _issue(api, "p-talent", "talent")
    mine = await _feed(api, talent_url, journey_id)
    kickoff_uid = f"{journey_id}.session.kickoff@talent-journey"
    kickoff = mine[kickoff_uid]
    assert kickoff.start == cohort.sessions[0].starts_at and str(kickoff.location) == "UCN Aalborg"
    assert str(kickoff["SUMMARY"]) == programme.sessions[0].title and kickoff["STATUS"] == "CONFIRMED"
    assert f"{journey_id}.track.observe-leader@talent-journey" in mine
    assert f"{journey_id}.mentor_meeting.1@talent-journey" in mine
    assert not any("Mette" in str(ev["SUMMARY"]) or "Lars" in str(ev["SUMMARY"]) for ev in mine.values())

    # The leader's feed lists their talent's sessions and names the talent.
    leader_url = await _issue(api, "p-leader", "leader")
    led = await _feed(api, leader_url, journey_id)
    assert set(led) == set(mine)
    assert str(led[kickoff_uid]["SUMMARY"]) == f"{programme.sessions[0].title} – Mette"

    # Only the person or a coordinator: another leader, the talent for the leader, an HR system are 403.
    for path, who in (("p-talent", "other_leader"), ("p-leader", "talent"), ("p-talent", "hr")):
        for method in ("POST", "DELETE"):
            refused = await api.request(method, f"/v1/people/{path}/calendar-feed", headers=auth(who))
            assert refused.status_code == 403, (method, path, who, refused.text)
    assert (await api.post("/v1/people/p-talent/calendar-feed")).status_code == 401
    unknown_person = await api.post(f"/v1/people/p-nobody-{unique}/calendar-feed", headers=coordinator)
    assert unknown_person.status_code == 404
    # An unknown or malformed secret is 404, as problem details.
    for secret in ("x" * 43, "nope", "%00"):
        missing = await api.get(f"/calendar/{secret}.ics")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

    # The session moves for the cohort (a signal to the journey): same UID, later start, higher SEQUENCE.
    assert isinstance(kickoff.start, datetime)
    moved_to = kickoff.start + timedelta(days=2, hours=4)
    await journey_handle(time_env.client, journey_id).signal(
        "session_rescheduled",
        c.RescheduleSession(actor_id="p-coord", actor_role="coordinator", session_key="kickoff", starts_at=moved_to),
    )
    deadline = asyncio.get_running_loop().time() + 30
    while (moved := (await _feed(api, talent_url, journey_id))[kickoff_uid]).start == kickoff.start:
        assert asyncio.get_running_loop().time() < deadline, "the reschedule never reached the feed"
        await asyncio.sleep(0.1)
    assert moved.start == moved_to and moved.sequence > kickoff.sequence
    assert moved.stamp >= kickoff.stamp  # iCalendar stamps have whole seconds
    assert set(await _feed(api, talent_url, journey_id)) == set(mine)
    assert (await _feed(api, leader_url, journey_id))[kickoff_uid].start == moved_to

    # Revoked: the URL is dead. Issued again (here by a coordinator): a new URL; the old stays dead.
    revoked = await api.delete("/v1/people/p-talent/calendar-feed", headers=auth("talent"))
    assert revoked.status_code == 204
    assert (await api.get(talent_url)).status_code == 404
    assert (await api.delete("/v1/people/p-talent/calendar-feed", headers=auth("talent"))).status_code == 204
    reissued = await _issue(api, "p-talent", "coordinator")
    assert reissued != talent_url
    assert (await api.get(talent_url)).status_code == 404
    assert kickoff_uid in await _feed(api, reissued, journey_id)
    replaced = await _issue(api, "p-talent", "talent")
    assert (await api.get(reissued)).status_code == 404
    assert kickoff_uid in await _feed(api, replaced, journey_id)


async def test_a_leaders_feed_shows_an_erased_talent_as_erased_and_an_ended_journey_not_at_all(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme = reference_programme().model_copy(update={"id": f"cal-e-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-cal-e-{unique}", starts_on=(now + timedelta(days=21)).date())
    coordinator = auth("coordinator")
    assert (
        await api.post("/v1/programmes", json=programme.model_dump(mode="json"), headers=coordinator)
    ).status_code == 201
    assert (await api.post("/v1/cohorts", json=cohort.model_dump(mode="json"), headers=coordinator)).status_code == 201
    person = f"p-cal-{unique}"
    name = f"Karen {unique}"
    journey_id = await _journey(api, cohort.cohort_id, {"person_id": person, "name": name, "email": "k@example.org"})
    other = {"person_id": f"p-cal-o-{unique}", "name": "Ole", "email": "o@example.org"}
    ended_id = await _journey(api, cohort.cohort_id, other)
    leader_url = await _issue(api, "p-leader", "leader")
    kickoff_uid = f"{journey_id}.session.kickoff@talent-journey"
    assert str((await _feed(api, leader_url, journey_id))[kickoff_uid]["SUMMARY"]).endswith(f"– {name}")
    assert f"{ended_id}.session.kickoff@talent-journey" in await _feed(api, leader_url, ended_id)

    # A withdrawn journey leaves the feed.
    withdrawn = await api.post(f"/v1/journeys/{ended_id}/withdraw", json={"reason": "moved"}, headers=coordinator)
    assert withdrawn.status_code == 200, withdrawn.text
    assert await _feed(api, leader_url, ended_id) == {}

    # A coordinator can issue a feed for the talent too; erasing the talent kills it, and the
    # leader's feed shows them as erased.
    talent_url = await _issue(api, person, "coordinator")
    assert kickoff_uid in await _feed(api, talent_url, journey_id)
    erased = await api.delete(f"/v1/people/{person}", headers=coordinator)
    assert erased.status_code == 200, erased.text
    response = await api.get(leader_url)
    assert response.status_code == 200 and "Karen" not in response.text
    after = await _feed(api, leader_url, journey_id)
    assert str(after[kickoff_uid]["SUMMARY"]).endswith("– slettet person")
    assert (await api.get(talent_url)).status_code == 404
    assert (await api.post(f"/v1/people/{person}/calendar-feed", headers=coordinator)).status_code == 404
