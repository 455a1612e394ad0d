"""Self-service on the dashboard through HTTP (PRODUCT §8.6): every role's forms, each one's CSRF
check, scope rule (404 out of scope, as the API) and refusals shown as the domain's reason."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.e2e.conftest import auth
from tests.e2e.test_dashboard import _cohort, _withdraw, csrf_of, sign_in, text_of
from tests.workflows.journeys import local

OBSERVE, MEETING_TRACK = "observe-leader", "lead-meeting"
_NONCE = iter(f"{n:032x}" for n in range(1, 10_000))


@pytest.fixture
async def browser(api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the same app over https (the session cookie is Secure), keeping cookies like a browser."""
    async with httpx.AsyncClient(transport=api._transport, base_url="https://dashboard.test") as client:
        yield client


async def _nominate(
    api: httpx.AsyncClient, cohort_id: str, talent: str, leader: str, *, leaders_leader: str | None = None
) -> str:
    """Nominate (as HR) and approve (as the coordinator) through the API: the journey id."""
    body: dict[str, object] = {
        "cohort_id": cohort_id,
        "motivation": "Tager ansvar.",
        "talent": {"person_id": talent, "name": f"Talent {talent}", "email": "t@example.org"},
        "nearest_leader": {"person_id": leader, "name": f"Leder {leader}", "email": "l@example.org"},
    }
    if leaders_leader:
        body["leaders_leader"] = {"person_id": leaders_leader, "name": "Overleder", "email": "o@example.org"}
    nominated = await api.post("/v1/journeys", json=body, headers=auth("hr"))
    assert nominated.status_code in (200, 201), nominated.text
    journey_id = str(nominated.json()["journey_id"])
    approved = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert approved.status_code == 200, approved.text
    return journey_id


async def _post(client: httpx.AsyncClient, url: str, page: str, **fields: str) -> httpx.Response:
    """Post a form with the CSRF token of `page` (and a fresh nonce); the response."""
    csrf = csrf_of(await client.get(page))
    return await client.post(url, data={"csrf": csrf, "nonce": next(_NONCE), **fields})


async def _flash(client: httpx.AsyncClient, response: httpx.Response) -> str:
    """Follow a form's redirect: the text of the page it lands on (with the one-shot message)."""
    assert response.status_code == 303, response.text
    return text_of(await client.get(response.headers["location"]))


async def _events(api: httpx.AsyncClient, journey_id: str) -> list[str]:
    found = await api.get(f"/v1/journeys/{journey_id}/events", headers=auth("coordinator"))
    return [e["event_type"] for e in found.json()["items"]]


async def test_the_talent_and_the_leaders_do_their_part_on_the_journey_page(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort_id = await _cohort(api, time_env, unique)
    journey_id = await _nominate(api, cohort_id, "p-talent", "p-leader", leaders_leader="p-other-leader")
    elsewhere = await _nominate(api, cohort_id, f"p-{unique}-x", f"p-leader-{unique}")
    page = f"/dashboard/journeys/{journey_id}"
    act = f"{page}/"
    today = local(await time_env.get_current_time()).date().isoformat()
    try:
        # The talent lands on their journeys and finds the forms of their part on the journey's page.
        await sign_in(browser, "talent")
        home = await browser.get("/dashboard/")
        assert home.status_code == 200 and f'data-journey-id="{journey_id}"' in home.text
        own = await browser.get(page)
        for form in ("submission", "meeting"):
            assert f'data-form="{form}"' in own.text, form
        assert 'data-form="pause"' not in own.text and 'data-form="signoff"' not in own.text

        # No CSRF token: refused, nothing recorded. A form of another role: 403. Another's journey: 404.
        forged = await browser.post(act + "submission", data={"track_key": OBSERVE, "reflection": "x"})
        assert forged.status_code == 403 and "Formularen er udløbet" in text_of(forged)
        assert "TrackSubmitted" not in await _events(api, journey_id)
        assert (await _post(browser, act + "pause", page, reason="ferie")).status_code == 403
        foreign = await _post(
            browser, f"/dashboard/journeys/{elsewhere}/submission", page, track_key=OBSERVE, reflection="x"
        )
        assert foreign.status_code == 404
        assert (await _post(browser, act + "juggle", page)).status_code == 404

        # A reflection, then the same track again: the domain's reason in Danish, and in English.
        done = await _post(browser, act + "submission", page, track_key=OBSERVE, reflection="Jeg så min leder.")
        assert "Refleksionen er afleveret." in await _flash(browser, done)
        again = await _post(browser, act + "submission", page, track_key=OBSERVE, reflection="Igen.")
        assert "Handlingen blev afvist: øvebanen er allerede afleveret" in await _flash(browser, again)
        again = await _post(browser, act + "submission", page + "?lang=en", track_key=OBSERVE, reflection="Again.")
        assert "The action was refused: the track is already submitted" in await _flash(browser, again)
        await browser.get(page + "?lang=da")
        second = await _post(browser, act + "submission", page, track_key=MEETING_TRACK, reflection="Mødet.")
        assert "Refleksionen er afleveret." in await _flash(browser, second)
        # A meeting, and a form that the body model refuses (a malformed date): "the form is invalid".
        logged = await _post(browser, act + "meeting", page, held_on=today, notes="Godt møde.")
        assert "Mentormødet er registreret." in await _flash(browser, logged)
        bad = await _post(browser, act + "meeting", page, held_on="i går")
        assert "formularen er ugyldig" in await _flash(browser, bad)
        # A follow-up answer before the programme is evaluated: refused with a reason, not an error page.
        early = await _post(browser, act + "outcome", page, applied_for_leader_post="yes", on=today)
        assert "Handlingen blev afvist:" in await _flash(browser, early)

        # The calendar link: issued on the page once; the feed answers; without the token it is refused.
        assert (await browser.post("/dashboard/calendar", data={})).status_code == 403
        issued = await _post(browser, "/dashboard/calendar", "/dashboard/")
        assert issued.status_code == 200, issued.text
        url = re.search(r'value="([^"]+/calendar/[^"]+\.ics)"', issued.text)
        assert url, issued.text
        feed = await api.get(httpx.URL(url.group(1)).path)
        assert feed.status_code == 200 and "BEGIN:VCALENDAR" in feed.text

        # The leader's leader sees the talent in their line, read-only: no forms, and a post is refused.
        await sign_in(browser, "other_leader")
        line = await browser.get("/dashboard/leader")
        assert f'data-line-journey-id="{journey_id}"' in line.text
        followed = await browser.get(page)
        assert followed.status_code == 200 and "data-read-only" in followed.text and "data-form=" not in followed.text
        refused = await _post(browser, act + "signoff", "/dashboard/leader", track_key=OBSERVE, decision="approve")
        assert refused.status_code == 403

        # The nearest leader: what waits on them, sign off one track, return another, confirm the meeting.
        await sign_in(browser, "leader")
        led = await browser.get(page)
        assert f'data-track="{OBSERVE}"' in led.text and f'data-held-on="{today}"' in led.text
        assert (await _post(browser, f"/dashboard/journeys/{elsewhere}/signoff", page, track_key=OBSERVE,
                            decision="approve")).status_code == 404  # fmt: skip
        signed = await _post(browser, act + "signoff", page, track_key=OBSERVE, decision="approve")
        assert "Øvebanen er behandlet." in await _flash(browser, signed)
        returned = await _post(
            browser, act + "signoff", page, track_key=MEETING_TRACK, decision="return", comment="Uddyb."
        )
        assert "Øvebanen er behandlet." in await _flash(browser, returned)
        twice = await _post(browser, act + "signoff", page, track_key=OBSERVE, decision="approve")
        assert "Handlingen blev afvist: øvebanen er allerede godkendt" in await _flash(browser, twice)
        confirmed = await _post(browser, act + "confirm", page, held_on=today)
        assert "Mentormødet er bekræftet." in await _flash(browser, confirmed)
        unknown = await _post(browser, act + "confirm", page, held_on="2020-01-01")
        assert "Handlingen blev afvist:" in await _flash(browser, unknown)
        events = await _events(api, journey_id)
        for expected in ("TrackSubmitted", "TrackSignedOff", "TrackReturned", "MentorMeetingLogged"):
            assert expected in events, (expected, events)
        assert "MentorMeetingConfirmed" in events, events
    finally:
        await _withdraw(api, time_env, journey_id, elsewhere)


async def test_a_leader_nominates_and_the_coordinator_runs_the_cohort_from_its_pages(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort_id = await _cohort(api, time_env, unique)
    first = await _nominate(api, cohort_id, f"p-{unique}-a", "p-leader")
    second: str | None = None
    cohort_page = f"/dashboard/cohorts/{cohort_id}"
    try:
        # The leader nominates from the form (the cohort is one that takes nominations).
        await sign_in(browser, "leader")
        form = await browser.get("/dashboard/nominate")
        assert form.status_code == 200 and f'value="{cohort_id}"' in form.text
        talent = {
            "cohort_id": cohort_id,
            "talent.person_id": f"p-{unique}-b",
            "talent.name": "Bodil Ager",
            "talent.email": "bodil@example.org",
            "motivation": "Vil gerne lede.",
        }
        assert (await browser.post("/dashboard/nominate", data=talent)).status_code == 403
        nominated = await _post(browser, "/dashboard/nominate", "/dashboard/nominate", **talent)
        assert nominated.status_code == 303 and nominated.headers["location"].startswith("/dashboard/journeys/")
        second = nominated.headers["location"].rsplit("/", 1)[1]
        assert "Talentet er indstillet." in await _flash(browser, nominated)
        myself = await _post(
            browser, "/dashboard/nominate", "/dashboard/nominate", **{**talent, "talent.person_id": "p-leader"}
        )
        assert "talentet kan ikke være sin egen nærmeste leder" in await _flash(browser, myself)
        # Leaders do not run cohorts.
        assert (await _post(browser, f"{cohort_page}/edit", "/dashboard/leader", capacity="3")).status_code == 403

        # The coordinator: a full cohort refuses the approval with its reason; with room it is approved.
        await sign_in(browser, "coordinator")
        assert (await browser.post(f"{cohort_page}/edit", data={"capacity": "1"})).status_code == 403
        assert (await _post(browser, "/dashboard/cohorts/nope/edit", "/dashboard/", capacity="1")).status_code == 404
        full = await _post(browser, f"{cohort_page}/edit", cohort_page, capacity="1")
        assert "Holdet er gemt." in await _flash(browser, full)
        decide = f"/dashboard/journeys/{second}/decision"
        refused = await _post(browser, decide, f"/dashboard/journeys/{second}", decision="approve")
        assert "Handlingen blev afvist: holdet er fuldt" in await _flash(browser, refused)
        room = await _post(browser, f"{cohort_page}/edit", cohort_page, capacity="5", **{"locations.kickoff": "Aula"})
        assert "Holdet er gemt." in await _flash(browser, room)
        approved = await _post(browser, decide, f"/dashboard/journeys/{second}", decision="approve")
        assert "Beslutningen er gemt." in await _flash(browser, approved)
        assert (await _post(browser, "/dashboard/journeys/nope/decision", "/dashboard/", decision="approve")
                ).status_code == 404  # fmt: skip

        # Roll call: one form, one answer per journey; attendance before the session starts is refused.
        page = await browser.get(cohort_page)
        assert 'data-form="roll-call"' in page.text and f'name="status.{first}"' in page.text
        roll_call = f"{cohort_page}/sessions/kickoff/roll-call"
        excused = await _post(browser, roll_call, cohort_page, **{f"status.{first}": "excused", f"status.{second}": ""})
        assert "Fremmødet er registreret." in await _flash(browser, excused)
        early = await _post(browser, roll_call, cohort_page, **{f"status.{second}": "attended"})
        assert "undervisningsgangen er ikke begyndt endnu" in await _flash(browser, early)
        assert (await browser.post(roll_call, data={f"status.{first}": "excused"})).status_code == 403

        # Reschedule a session for the whole cohort: the journeys' kickoff deadline moves.
        before = (await api.get(f"/v1/journeys/{second}", headers=auth("coordinator"))).json()
        kickoff = next(m for m in before["milestones"] if m["key"] == "session:leading-self")
        moved_to = local(await time_env.get_current_time()) + timedelta(days=30)
        move = await _post(
            browser,
            f"{cohort_page}/sessions/leading-self/reschedule",
            cohort_page,
            starts_at=moved_to.strftime("%Y-%m-%dT10:00"),
            reason="Lokalet er optaget.",
        )
        assert "Undervisningsgangen er flyttet" in await _flash(browser, move)
        for _ in range(100):
            after = (await api.get(f"/v1/journeys/{second}", headers=auth("coordinator"))).json()
            due = next(m["due_at"] for m in after["milestones"] if m["key"] == "session:leading-self")
            if due != kickoff["due_at"]:
                break
            await asyncio.sleep(0.05)
        assert due != kickoff["due_at"], due
        nowhere = await _post(browser, f"{cohort_page}/sessions/juggling/reschedule", cohort_page,
                              starts_at="2030-01-01T10:00", reason="x")  # fmt: skip
        assert "holdet har ikke den undervisningsgang" in await _flash(browser, nowhere)

        # Pause, resume, resume again (refused), an override before evaluation (refused).
        journey_page = f"/dashboard/journeys/{first}"
        paused = await _post(browser, f"{journey_page}/pause", journey_page, reason="Orlov.")
        assert "Forløbet er sat på pause." in await _flash(browser, paused)
        resumed = await _post(browser, f"{journey_page}/resume", journey_page)
        assert "Forløbet er genoptaget." in await _flash(browser, resumed)
        again = await _post(browser, f"{journey_page}/resume", journey_page)
        assert "Handlingen blev afvist: forløbet er ikke på pause" in await _flash(browser, again)
        override = await _post(browser, f"{journey_page}/override", journey_page, result="completed", reason="Ok.")
        assert "Handlingen blev afvist:" in await _flash(browser, override)

        # A new nearest leader: the old leader's sight of the journey ends (404).
        changed = await _post(
            browser,
            f"/dashboard/journeys/{second}/leader",
            f"/dashboard/journeys/{second}",
            **{
                "nearest_leader.person_id": f"p-leader-{unique}",
                "nearest_leader.name": "Ny Leder",
                "nearest_leader.email": "ny@example.org",
            },
        )
        assert "Den nærmeste leder er skiftet." in await _flash(browser, changed)
        withdrawn = await _post(browser, f"{journey_page}/withdraw", journey_page, reason="Nyt job.")
        assert "Talentet er udmeldt." in await _flash(browser, withdrawn)
        await sign_in(browser, "leader")
        assert (await browser.get(f"/dashboard/journeys/{second}")).status_code == 404
        events = await _events(api, first)
        assert "JourneyPaused" in events and "JourneyResumed" in events and "TalentWithdrawn" in events
    finally:
        await _withdraw(api, time_env, first, *([second] if second else []))
