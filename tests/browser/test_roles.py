"""Each role does its real work in the browser on `talent dev` (PRODUCT §8.6): the talent, the
nearest leader, the leader's leader and the coordinator. Screenshots go to test-artifacts/roles/.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.support import (
    CHROMIUM,
    Service,
    chromium,
    cohort_of_two,
    post,
    running_service,
    shot,
    sign_in,
)
from tests.integration.test_talent_dev import dev_database
from tests.support import CPH

__all__ = ["dev_database"]  # the fixture, used here

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}")
FOLDER = "roles"
REACHED_WITHIN = 60.0


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


async def test_the_coordinator_decides_a_nomination_and_changes_a_leader_whom_the_old_leader_then_cannot_see(
    service: Service, tmp_path: Path
) -> None:
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8], approve=False)
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

        # A new nearest leader: the old one gets 404 from then on.
        change = page.locator("form[data-form=leader]")
        await change.locator("input[name='nearest_leader.person_id']").fill("p-new-leader")
        await change.locator("input[name='nearest_leader.name']").fill("Nina Ny")
        await change.locator("input[name='nearest_leader.email']").fill("nina@example.org")
        await change.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator('table.timeline tr[data-event="NearestLeaderChanged"]')).to_have_count(1)
        await shot(page, FOLDER, "coordinator-03-leader-changed")

    async with chromium(tmp_path / "profile-old-leader") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "leader", "/dashboard/leader")
        response = await page.goto(f"{service.url}/dashboard/journeys/{cohort.mine}")
        assert response is not None and response.status == 404
        await shot(page, FOLDER, "coordinator-05-old-leader-404")
    async with chromium(tmp_path / "profile-new-leader") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "new_leader", "/dashboard/leader")
        await expect(page.locator(f'tr[data-journey-id="{cohort.mine}"]')).to_be_visible()
