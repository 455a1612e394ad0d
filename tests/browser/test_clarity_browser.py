"""The clarity forms in Chromium (issue 14, rules 4): the talent answers the readiness question of
the open stage by mouse, the nearest leader proposes the next mentor meeting in the programme's
local time, each form passes axe-core in Danish and English, and what was sent is what the API
shows. Screenshots go to test-artifacts/clarity/."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.support import (
    NEEDS_CHROMIUM,
    Service,
    axe_violations,
    chromium,
    cohort_of_two,
    running_service,
    shot,
    sign_in,
)
from tests.integration.test_talent_dev import dev_database
from tests.support import CPH

__all__ = ["dev_database"]  # the fixture, used here

pytestmark = NEEDS_CHROMIUM
FOLDER = "clarity"


@pytest.fixture
async def service(tmp_path: Path, dev_database: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, dev_database) as running:
        yield running


async def _status(service: Service, journey_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        found = await http.get(
            f"/v1/journeys/{journey_id}", headers={"Authorization": f"Bearer {service.tokens['coordinator']}"}
        )
    assert found.status_code == 200, found.text
    status: dict[str, Any] = found.json()
    return status


async def _ok(page: Page) -> None:
    await expect(page.locator(".flash-ok")).to_be_visible()
    await expect(page.locator(".flash-error")).to_have_count(0)


async def _axe_both(page: Page, url: str, name: str) -> list[str]:
    violations: list[str] = []
    for lang in ("da", "en"):
        await page.goto(f"{url}?lang={lang}")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        violations += await axe_violations(page)
        await shot(page, FOLDER, f"{name}-{lang}")
    return violations


async def test_the_talent_answers_readiness_and_the_leader_proposes_the_next_meeting(
    service: Service, tmp_path: Path
) -> None:
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])
    path = f"/dashboard/journeys/{cohort.mine}"
    url = f"{service.url}{path}"
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "talent", then=path)
        violations = await _axe_both(page, url, "talent-journey")

        await page.goto(f"{url}?lang=da")
        readiness = page.locator("form[data-form=readiness][data-stage=enrolment]")
        await expect(readiness.locator("legend")).to_contain_text("Vil du være leder?")
        await expect(page.locator("form[data-form=proposal]")).to_have_count(0)
        await readiness.get_by_label("Ikke nu").check()
        await readiness.get_by_label("Hvorfor? (valgfri)").fill("Jeg vil først prøve flere lederopgaver.")
        await readiness.locator("button[type=submit]").click()
        await _ok(page)
        await expect(page.locator("form[data-form=readiness] input[value=not_now]")).to_be_checked()
        await shot(page, FOLDER, "talent-answered")
        assert (await _status(service, cohort.mine))["readiness"]["enrolment"] == "not_now"

        leader = await browser.new_page()
        await leader.context.clear_cookies()
        await sign_in(leader, service, "leader", then=path)
        violations += await _axe_both(leader, url, "leader-journey")
        await leader.goto(f"{url}?lang=en")
        proposal = leader.locator("form[data-form=proposal]")
        await expect(leader.locator("form[data-form=readiness]")).to_have_count(0)
        starts_at = (datetime.now(CPH) + timedelta(minutes=5)).replace(second=0, microsecond=0)
        when = proposal.get_by_label("Start (date and time; it lasts an hour)")
        await when.fill(starts_at.strftime("%Y-%m-%dT%H:%M"))
        await proposal.locator("button[type=submit]").click()
        await _ok(leader)
        await expect(leader.locator("form[data-form=proposal] [data-appointment]")).to_have_count(1)
        await shot(leader, FOLDER, "leader-proposed")
        appointment = (await _status(service, cohort.mine))["appointment"]
        assert appointment is not None and datetime.fromisoformat(appointment["starts_at"]) == starts_at, appointment
        assert not violations, violations
