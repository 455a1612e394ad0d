"""Each role does its real work in the browser on `talent dev` (PRODUCT §8.6): the talent, the
nearest leader, the leader's leader and the coordinator. Screenshots go to test-artifacts/roles/.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from icalendar import Calendar
from playwright.async_api import Page, expect

from tests.browser.support import (
    NEEDS_CHROMIUM,
    Service,
    chromium,
    cohort_of_two,
    mail_server,
    post,
    running_service,
    shot,
    sign_in,
)
from tests.integration.test_talent_dev import dev_database
from tests.support import CPH

__all__ = ["dev_database"]  # the fixture, used here

pytestmark = NEEDS_CHROMIUM
FOLDER = "roles"
REACHED_WITHIN = 60.0
EVALUATED_WITHIN = 90.0
FEED_MOVES_WITHIN = 20.0
MAILED_WITHIN = 30.0


@pytest.fixture
async def service(tmp_path: Path, dev_database: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, dev_database) as running:
        yield running


def _today() -> str:
    return datetime.now(CPH).date().isoformat()


async def _ok(page: Page) -> None:
    """The form was accepted: the page says so, and no refusal."""
    await expect(page.locator(".flash-ok")).to_be_visible()
    await expect(page.locator(".flash-error")).to_have_count(0)


async def test_the_talent_submits_a_reflection_and_logs_a_meeting(service: Service, tmp_path: Path) -> None:
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "talent")
        await shot(page, FOLDER, "talent-01-home")
        await page.locator(f'tr[data-journey-id="{cohort.mine}"] a').first.click()
        await expect(page).to_have_url(f"{service.url}/dashboard/journeys/{cohort.mine}")

        submission = page.locator("form[data-form=submission]")
        await submission.locator("select[name=track_key]").select_option(cohort.tracks[0])
        await submission.locator("textarea[name=reflection]").fill("Jeg lærte at lytte før jeg svarer.")
        await submission.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="TrackSubmitted"]')).to_have_count(1)
        await shot(page, FOLDER, "talent-02-reflection-submitted")

        meeting = page.locator("form[data-form=meeting]")
        await meeting.locator("input[name=held_on]").fill(_today())
        await meeting.locator("textarea[name=notes]").fill("Talte om næste skridt.")
        await meeting.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="MentorMeetingLogged"]')).to_have_count(1)
        await shot(page, FOLDER, "talent-03-meeting-logged")

        # Another talent's journey is not found.
        response = await page.goto(f"{service.url}/dashboard/journeys/{cohort.other}")
        assert response is not None and response.status == 404


async def test_the_leader_signs_off_one_track_returns_another_with_a_comment_and_confirms_the_meeting(
    service: Service, tmp_path: Path
) -> None:
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])
    first, second = cohort.tracks[0], cohort.tracks[1]
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        for track in (first, second):
            path = f"/v1/journeys/{cohort.mine}/tracks/{track}/submission"
            await post(http, service.tokens["talent"], path, {"reflection": "Lært."})
        body = {"held_on": _today(), "notes": "Godt møde."}
        await post(http, service.tokens["talent"], f"/v1/journeys/{cohort.mine}/mentor-meetings", body)
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "leader", "/dashboard/leader")
        await shot(page, FOLDER, "leader-01-my-talents")
        await page.locator(f'tr[data-journey-id="{cohort.mine}"] a').first.click()
        await expect(page).to_have_url(f"{service.url}/dashboard/journeys/{cohort.mine}")
        await shot(page, FOLDER, "leader-02-journey")

        await page.locator(f'form[data-form=signoff][data-track="{first}"] button[value=approve]').click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="TrackSignedOff"]')).to_have_count(1)

        returned = page.locator(f'form[data-form=signoff][data-track="{second}"]')
        await returned.locator("textarea[name=comment]").fill("Uddyb gerne, hvad du gør anderledes nu.")
        await returned.locator("button[value=return]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="TrackReturned"]')).to_have_count(1)
        await shot(page, FOLDER, "leader-03-signed-off-and-returned")

        await page.locator(f'form[data-form=confirm][data-held-on="{_today()}"] button').click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="MentorMeetingConfirmed"]')).to_have_count(1)
        await expect(page.locator("form[data-form=confirm]")).to_have_count(0)
        await shot(page, FOLDER, "leader-04-meeting-confirmed")


async def test_the_leaders_leader_sees_the_escalation_that_reached_them_and_cannot_act_on_another_line(
    service: Service, tmp_path: Path
) -> None:
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "leaders_leader", "/dashboard/leader")
        reached = page.locator(f'tr[data-reached-journey-id="{cohort.mine}"]')
        deadline = time.monotonic() + REACHED_WITHIN
        while await reached.count() == 0:  # the talent's tracks slip; the ladder's third rung is theirs
            assert time.monotonic() < deadline, f"no escalation reached the leader's leader in {REACHED_WITHIN:.0f} s"
            await page.wait_for_timeout(1000)
            await page.reload()
        await expect(reached.first).to_contain_text("Mette Browser")
        await expect(page.locator(f'tr[data-line-journey-id="{cohort.mine}"]')).to_be_visible()
        await expect(page.get_by_text("Ole Andensen")).to_have_count(0)
        await shot(page, FOLDER, "leaders-leader-01-line-and-escalations")

        # Their line's journey: read-only, no forms.
        await page.goto(f"{service.url}/dashboard/journeys/{cohort.mine}")
        await expect(page.locator("[data-read-only]")).to_be_visible()
        await expect(page.locator("section.actions-forms form")).to_have_count(0)
        await shot(page, FOLDER, "leaders-leader-02-read-only-journey")

        # Another line's talent: not found, to look at and to act on (a forged form with a valid CSRF token).
        response = await page.goto(f"{service.url}/dashboard/journeys/{cohort.other}")
        assert response is not None and response.status == 404
        await shot(page, FOLDER, "leaders-leader-03-other-line-404")
        await page.goto(f"{service.url}/dashboard/leader")
        csrf = await page.locator("form[action='/dashboard/logout'] input[name=csrf]").get_attribute("value")
        assert csrf
        forged = await page.request.post(
            f"{service.url}/dashboard/journeys/{cohort.other}/signoff",
            form={"csrf": csrf, "track_key": cohort.tracks[0], "decision": "approve"},
            headers={"Origin": service.url},
            max_redirects=0,
        )
        assert forged.status == 404, forged.status
        mine = await page.request.post(
            f"{service.url}/dashboard/journeys/{cohort.mine}/signoff",
            form={"csrf": csrf, "track_key": cohort.tracks[0], "decision": "approve"},
            headers={"Origin": service.url},
            max_redirects=0,
        )
        assert mine.status == 403, mine.status  # their own line: read-only


async def test_the_coordinator_decides_takes_a_roll_call_reschedules_changes_a_leader_and_overrides(
    service: Service, tmp_path: Path
) -> None:
    """The coordinator's whole part: decide a nomination, a roll call for a session that has
    started, a session moved for the cohort (the talent's calendar feed follows with a higher
    SEQUENCE), a new nearest leader (the old one then gets 404), a completion override."""
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8], approve=False)
    # A second cohort evaluated half a minute after it starts, for the override (only an evaluated
    # journey takes one): it runs while the coordinator does the rest.
    evaluated = await cohort_of_two(service, uuid.uuid4().hex[:8], evaluate_after=None)
    coordinator = {"Authorization": f"Bearer {service.tokens['coordinator']}"}
    async with httpx.AsyncClient(base_url=service.url, timeout=30, headers=coordinator) as http:
        issued = await http.post("/v1/people/p-talent/calendar-feed")
        assert issued.status_code == 201, issued.text
        feed_url = issued.json()["url"]
    closing = cohort.sessions[-1]
    uid = f"{cohort.mine}.session.{closing}@talent-journey"

    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "coordinator")
        await shot(page, FOLDER, "coordinator-01-overview")
        await page.goto(f"{service.url}/dashboard/journeys/{cohort.mine}")
        decision = page.locator("form[data-form=decision]")
        await decision.locator("input[value=approve]").check()
        await decision.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="NominationApproved"]')).to_have_count(1)
        await shot(page, FOLDER, "coordinator-02-nomination-approved")
        async with httpx.AsyncClient(base_url=service.url, timeout=30, headers=coordinator) as http:
            path = f"/v1/journeys/{cohort.other}/decision"
            await post(http, service.tokens["coordinator"], path, {"decision": "approve"})

        # A roll call for the first session, once it has started: one form, one answer per journey.
        first = cohort.sessions[0]
        await _until(cohort.starts[0])
        await page.goto(f"{service.url}/dashboard/cohorts/{cohort.cohort_id}")
        await shot(page, FOLDER, "coordinator-03-cohort")
        await page.locator(f'details[data-session="{first}"] > summary').click()
        roll_call = page.locator(f'details[data-session="{first}"] form[data-form=roll-call]')
        await roll_call.locator(f'select[name="status.{cohort.mine}"]').select_option("attended")
        await roll_call.locator(f'select[name="status.{cohort.other}"]').select_option("absent")
        await roll_call.locator("button[type=submit]").click()
        await _ok(page)
        await shot(page, FOLDER, "coordinator-04-roll-call-taken")
        for journey_id in (cohort.mine, cohort.other):
            await page.goto(f"{service.url}/dashboard/journeys/{journey_id}")
            recorded = page.locator('table.timeline tr[data-event="SessionAttendanceRecorded"]')
            await expect(recorded).to_have_count(1)

        # The last session moves for the whole cohort; the talent's calendar entry follows.
        before = await _feed_entry(feed_url, uid)
        moved_to = _weekday_morning(days_ahead=8)
        await page.goto(f"{service.url}/dashboard/cohorts/{cohort.cohort_id}")
        await page.locator(f'details[data-session="{closing}"] > summary').click()
        reschedule = page.locator(f'details[data-session="{closing}"] form[data-form=reschedule]')
        await reschedule.locator("input[name=starts_at]").fill(moved_to.strftime("%Y-%m-%dT%H:%M"))
        await reschedule.locator("input[name=location]").fill("Lokale 2")
        await reschedule.locator("input[name=reason]").fill("Underviseren er syg.")
        await reschedule.locator("button[type=submit]").click()
        await _ok(page)
        await shot(page, FOLDER, "coordinator-05-session-rescheduled")
        after = await _feed_entry(feed_url, uid, moved_from=before.start)
        assert after.start == moved_to, (before, after)
        assert after.sequence > before.sequence, (before, after)
        for journey_id in (cohort.mine, cohort.other):  # every open journey of the cohort got the signal
            await page.goto(f"{service.url}/dashboard/journeys/{journey_id}")
            await expect(page.locator('table.timeline tr[data-event="SessionRescheduled"]')).to_have_count(1)

        # A new nearest leader: the old one gets 404 from then on.
        await page.goto(f"{service.url}/dashboard/journeys/{cohort.mine}")
        change = page.locator("form[data-form=leader]")
        await change.locator("input[name='nearest_leader.person_id']").fill("p-new-leader")
        await change.locator("input[name='nearest_leader.name']").fill("Nina Ny")
        await change.locator("input[name='nearest_leader.email']").fill("nina@example.org")
        await change.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="NearestLeaderChanged"]')).to_have_count(1)
        await shot(page, FOLDER, "coordinator-06-leader-changed")

        # The completion override, on the journey evaluated meanwhile (not completed: nothing done).
        await page.goto(f"{service.url}/dashboard/journeys/{evaluated.mine}")
        override = page.locator("form[data-form=override]")
        deadline = time.monotonic() + EVALUATED_WITHIN
        while await override.count() == 0:
            assert time.monotonic() < deadline, f"the journey was not evaluated within {EVALUATED_WITHIN:.0f} s"
            await page.wait_for_timeout(1000)
            await page.reload()
        await expect(page.locator('table.timeline tr[data-event="ProgrammeNotCompleted"]')).to_have_count(1)
        await override.locator("input[value=completed]").check()
        await override.locator("textarea[name=reason]").fill("Fravær aftalt med koordinator; øvebanerne er lavet.")
        await override.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="ProgrammeCompleted"]')).to_have_count(1)
        await shot(page, FOLDER, "coordinator-07-completion-overridden")

    async with chromium(tmp_path / "profile-old-leader") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "leader", "/dashboard/leader")
        response = await page.goto(f"{service.url}/dashboard/journeys/{cohort.mine}")
        assert response is not None and response.status == 404
        await shot(page, FOLDER, "coordinator-08-old-leader-404")
    async with chromium(tmp_path / "profile-new-leader") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "new_leader", "/dashboard/leader")
        await expect(page.locator(f'tr[data-journey-id="{cohort.mine}"]')).to_be_visible()


async def test_the_welcome_e_mails_link_leads_the_talent_through_sign_in_to_their_journey(
    dev_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mail_server() as mailbox:
        monkeypatch.setenv("TALENT_SMTP_HOST", mailbox.host)
        monkeypatch.setenv("TALENT_SMTP_PORT", str(mailbox.port))
        monkeypatch.delenv("TALENT_PUBLIC_URL", raising=False)  # `talent dev` links to itself
        async with running_service(tmp_path, dev_database) as service:
            cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])  # approval sends the welcome
            journey_url = f"{service.url}/dashboard/journeys/{cohort.mine}"
            deadline = time.monotonic() + MAILED_WITHIN
            while not (welcome := [m for m in mailbox.mails() if journey_url in m.body and "Velkommen" in m.subject]):
                assert time.monotonic() < deadline, [m.subject for m in mailbox.mails()]
                await asyncio.sleep(0.5)
            mail = welcome[0]
            assert mail.envelope_to == ("talent@example.org",)
            links = re.findall(r"https?://\S+", mail.body)
            assert links == [journey_url], mail.body

            async with chromium(tmp_path / "profile") as browser:
                page = await browser.new_page()
                await page.goto(links[0])  # not signed in: the sign-in form, then back to the link
                await expect(page.locator("form[action='/dashboard/login']")).to_be_visible()
                await shot(page, FOLDER, "e-mail-01-sign-in")
                await page.locator("#token").fill(service.tokens["talent"])
                await page.locator("form[action='/dashboard/login'] button[type=submit]").click()
                await expect(page).to_have_url(journey_url)
                await expect(page.locator("[data-talent-name]")).to_have_text("Mette Browser")
                await expect(page.locator("form[data-form=submission]")).to_be_visible()
                await shot(page, FOLDER, "e-mail-02-journey")


async def _until(moment: datetime) -> None:
    """Sleep until `moment` has passed."""
    wait = (moment - datetime.now(CPH)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait + 0.5)


def _weekday_morning(days_ahead: int) -> datetime:
    """10.00 in Copenhagen on the first weekday at least `days_ahead` days on."""
    day = datetime.now(CPH).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, datetime.min.time().replace(hour=10), tzinfo=CPH)


@dataclass(frozen=True)
class FeedEntry:
    start: datetime
    sequence: int


async def _feed_entry(url: str, uid: str, *, moved_from: datetime | None = None) -> FeedEntry:
    """The calendar feed's entry `uid`; with `moved_from`, once it starts at another time."""
    deadline = time.monotonic() + FEED_MOVES_WITHIN
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            response = await http.get(url)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/calendar"), response.headers
            found = [
                event for event in Calendar.from_ical(response.content).walk("VEVENT") if str(event.get("UID")) == uid
            ]
            assert len(found) == 1, (uid, response.text)
            start = found[0].decoded("DTSTART")
            assert isinstance(start, datetime), start
            entry = FeedEntry(start, int(found[0].get("SEQUENCE", 0)))
            if moved_from is None or entry.start != moved_from:
                return entry
            assert time.monotonic() < deadline, f"the feed did not move within {FEED_MOVES_WITHIN:.0f} s"
            await asyncio.sleep(0.5)
