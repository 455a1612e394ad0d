"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against `talent dev`.

A coordinator signs in, watches a talent turn at risk when a track slips on the compressed
programme (twenty times faster), acknowledges the escalation by clicking, and follows the
timeline; the talent's leader signs in and sees only their own talents. Screenshots go to
test-artifacts/dashboard/.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from domain.calendar import Delay
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, NEEDS_CHROMIUM, post
from tests.integration.test_talent_dev import (
    ROOT,
    Dev,
    dev_database,
    free_port,
    start_dev,
    stop_and_check,
    tokens,
    wait_ready,
)
from tests.support import CPH, fast_cohort, fast_programme

__all__ = ["dev_database"]  # the fixture, used here

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
LATE_TRACK = "observe-leader"
#: How long the talent may take to turn at risk: the track is due 6 s after the cohort starts and
#: its ladder's last rung fires 8 s after the slip.
AT_RISK_WITHIN = 45.0
pytestmark = NEEDS_CHROMIUM


@pytest.fixture
async def dev(tmp_path: Path, dev_database: str) -> AsyncIterator[Dev]:
    """The whole service, without the demo, on a fresh database; stopped cleanly at the end."""
    running = start_dev(tmp_path / "data", dev_database, free_port(), "dev", "--no-demo")
    try:
        await wait_ready(running)
        yield running
    finally:
        if running.process.poll() is None:
            stop_and_check(running)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """Chromium, headless, with a fresh profile."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="da-DK",
        )
        try:
            yield context
        finally:
            await context.close()


async def _cohort_with_a_late_track(dev: Dev, unique: str) -> tuple[str, str, str]:
    """A fast cohort with two journeys: the leader token's talent, punctual but for one track, and
    another leader's talent. (cohort id, the leader's talent's journey, the other journey)."""
    by_role = tokens(dev.out.parent / "data")
    coordinator, hr, leader, talent = (by_role[r] for r in ("coordinator", "hr_system", "leader", "talent"))
    base = fast_programme()
    # Evaluated long after the test: the escalation stays open until it is acknowledged.
    completion = base.completion.model_copy(update={"evaluate_after": Delay(iso="PT10M")})
    programme = base.model_copy(update={"id": f"browser-{unique}", "completion": completion})
    start = datetime.now(CPH) + timedelta(seconds=4)
    cohort = fast_cohort(programme, start, cohort_id=f"browser-{unique}", coordinator_id=coordinator["person_id"])
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        await post(http, coordinator["token"], "/v1/programmes", programme.model_dump(mode="json"), 201)
        await post(http, coordinator["token"], "/v1/cohorts", cohort.model_dump(mode="json"), 201)
        journeys = []
        for person, name, lead, lead_name in (
            (talent["person_id"], "Mette Browser", leader["person_id"], "Lars Leder"),
            (f"p-other-{unique}", "Ole Andensen", f"p-other-leader-{unique}", "Hanne Anden"),
        ):
            nomination = {
                "cohort_id": cohort.cohort_id,
                "motivation": "Tager ansvar i teamet.",
                "talent": {"person_id": person, "name": name, "email": "talent@example.org"},
                "nearest_leader": {"person_id": lead, "name": lead_name, "email": "leder@example.org"},
            }
            created = await post(http, hr["token"], "/v1/journeys", nomination, 201)
            await post(
                http, coordinator["token"], f"/v1/journeys/{created['journey_id']}/decision", {"decision": "approve"}
            )
            journeys.append(created["journey_id"])
        mine = journeys[0]
        # Everything on time but one track: its ladder is the only one that climbs. The sessions
        # have not started yet, so their attendance can only be excused ahead (rules 3).
        for session in programme.sessions:
            body = {"session_key": session.key, "status": "excused"}
            await post(http, coordinator["token"], f"/v1/journeys/{mine}/attendance", body)
        for track in programme.tracks:
            if track.key != LATE_TRACK:
                path = f"/v1/journeys/{mine}/tracks/{track.key}"
                await post(http, talent["token"], f"{path}/submission", {"reflection": "Lært."})
                await post(http, leader["token"], f"{path}/signoff", {"decision": "approve"})
        today = datetime.now(CPH).date().isoformat()
        for _ in range(programme.mentor_meetings.count):
            body = {"held_on": today, "notes": "Godt møde."}
            await post(http, leader["token"], f"/v1/journeys/{mine}/mentor-meetings", body)
    return cohort.cohort_id, mine, journeys[1]


async def _sign_in(page: Page, dev: Dev, token: str, then: str) -> None:
    await page.goto(f"{dev.url}{then}")
    await expect(page).to_have_url(f"{dev.url}/dashboard/login?next={then.replace('/', '%2F')}")
    await page.get_by_label("Adgangsnøgle").fill(token)
    await page.get_by_role("button", name="Log ind").click()
    await expect(page).to_have_url(f"{dev.url}{then}")


async def _shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_a_coordinator_sees_a_talent_turn_at_risk_and_acknowledges_and_a_leader_sees_only_theirs(
    dev: Dev, browser: BrowserContext
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    unique = uuid.uuid4().hex[:8]
    by_role = tokens(dev.out.parent / "data")
    cohort_id, mine, other = await _cohort_with_a_late_track(dev, unique)

    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # Nothing comes from anywhere but the service: the dashboard works with no internet.
    page.on("request", lambda r: None if r.url.startswith(dev.url) else problems.append(f"off-site: {r.url}"))

    # The coordinator signs in (a session id, never the token, goes into an HttpOnly cookie, unreadable to scripts).
    await _sign_in(page, dev, by_role["coordinator"]["token"], "/dashboard/")
    cookies = {c["name"]: c for c in await browser.cookies()}
    assert cookies["tj_session"]["value"] != by_role["coordinator"]["token"]
    assert cookies["tj_session"]["httpOnly"] and cookies["tj_session"]["secure"]
    assert cookies["tj_session"]["sameSite"] == "Strict"
    await expect(page.locator(f'tr[data-cohort-id="{cohort_id}"]')).to_be_visible()
    await _shot(page, "01-overview")

    # The cohort page: the talent turns at risk once the late track's ladder reaches its last rung.
    await page.goto(f"{dev.url}/dashboard/cohorts/{cohort_id}")
    at_risk = page.locator(f'table.at-risk-list tr[data-journey-id="{mine}"] .badge.at-risk')
    deadline = time.monotonic() + AT_RISK_WITHIN
    while not await at_risk.is_visible():
        assert time.monotonic() < deadline, f"the talent did not turn at risk within {AT_RISK_WITHIN:.0f} s"
        await page.wait_for_timeout(500)
        await page.reload()
    row = page.locator(f'table.at-risk-list tr[data-journey-id="{mine}"]')
    await expect(row).to_contain_text("Mette Browser")
    await expect(row).to_contain_text("Eskaleret: Track 1: shadow your leader")
    await expect(page.locator("figure.chart svg").first).to_be_visible()
    await _shot(page, "02-cohort-at-risk")

    # Open escalations: the track's ladder at its last rung, acknowledged with a click.
    await page.get_by_role("link", name="Eskaleringer", exact=True).click()
    escalation = page.locator(f'tr[data-journey-id="{mine}"][data-milestone="track:{LATE_TRACK}"]')
    await expect(escalation).to_contain_text("4 af 4")
    await expect(escalation).to_contain_text("ikke kvitteret")
    await _shot(page, "03-escalations")
    await escalation.get_by_role("button", name="Kvittér").click()
    await expect(page.locator(".flash-ok")).to_have_text("Eskaleringen er kvitteret.")
    await expect(escalation.locator(".badge.acknowledged")).to_have_text("kvitteret")
    await expect(escalation.get_by_role("button", name="Kvittér")).to_have_count(0)
    await _shot(page, "04-acknowledged")

    # The talent's page: the timeline tells what happened, when and by whom.
    await escalation.get_by_role("link", name="Mette Browser").click()
    await expect(page).to_have_url(f"{dev.url}/dashboard/journeys/{mine}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Forløb for Mette Browser")
    timeline = page.locator("table.timeline")
    await expect(timeline.locator('tr[data-event="TalentNominated"]')).to_contain_text("Indstillet til hold")
    await expect(timeline.locator('tr[data-event="NominationApproved"]')).to_contain_text("Indstillingen er godkendt")
    slipped = timeline.locator('tr[data-event="MilestoneSlipped"]')
    await expect(slipped).to_have_count(1)
    await expect(slipped).to_contain_text("Frist overskredet: Track 1: shadow your leader")
    await expect(timeline.locator('tr[data-event="EscalationRaised"]')).to_have_count(4)
    await expect(timeline.locator('tr[data-event="EscalationRaised"]').last).to_contain_text("koordinator")
    await expect(timeline.locator('tr[data-event="EscalationAcknowledged"]')).to_contain_text(
        "Eskalering kvitteret: Track 1: shadow your leader"
    )
    await expect(timeline.locator('tr[data-event="TrackSignedOff"]').first).to_contain_text("Lars Leder")
    await expect(page.locator(f'table.milestones tr[data-milestone="track:{LATE_TRACK}"]')).to_contain_text(
        "overskredet"
    )
    await _shot(page, "05-journey-timeline")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Journey of Mette Browser")
    await expect(timeline.locator('tr[data-event="EscalationAcknowledged"]')).to_contain_text("Escalation acknowledged")
    await _shot(page, "06-journey-english")
    await page.get_by_role("link", name="Dansk").click()

    # The leader signs in after the coordinator signs out: their own talent only.
    await page.get_by_role("button", name="Log ud").click()
    await expect(page.locator(".flash-ok")).to_have_text("Du er logget ud.")
    await _sign_in(page, dev, by_role["leader"]["token"], "/dashboard/leader")
    led = page.locator(f'tr[data-journey-id="{mine}"]')
    await expect(led).to_contain_text("Mette Browser")
    await expect(led).to_contain_text("Track 1: shadow your leader: fristen")  # what the talent is waiting on
    await expect(page.locator("table.mine tbody tr")).to_have_count(1)
    await expect(page.get_by_text("Ole Andensen")).to_have_count(0)
    await _shot(page, "07-leader")
    assert problems == [], problems

    # Another leader's talent is "not found", as in the API; the coordinator's pages are forbidden.
    response = await page.goto(f"{dev.url}/dashboard/journeys/{other}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ikke fundet")
    await _shot(page, "08-leader-other-journey-404")
    response = await page.goto(f"{dev.url}/dashboard/escalations")
    assert response is not None and response.status == 403
