"""The programme's purpose page in Chromium (issue 14): a coordinator sees the clarity KPIs per
cohort and the recruitment base as charts with their definitions in Danish and English, downloads
the CSV, and the page (and the one-click answer page a bad link reaches) pass axe-core.
Screenshots go to test-artifacts/purpose/."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from api.dashboard.purpose import CLARITY_DEFINITIONS_DA
from domain.clarity import DEFINITIONS as CLARITY_DEFINITIONS
from domain.recruitment import DEFINITIONS, DEFINITIONS_DA
from infra.present import CPH
from tests.browser.support import (
    NEEDS_CHROMIUM,
    Service,
    axe_violations,
    chromium,
    cohort_of_two,
    post,
    running_service,
    shot,
    sign_in,
)
from tests.integration.test_talent_dev import dev_database

__all__ = ["dev_database"]  # the fixture, used here

pytestmark = NEEDS_CHROMIUM
FOLDER = "purpose"
EVALUATED_WITHIN = 120.0


@pytest.fixture
async def service(tmp_path: Path, dev_database: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, dev_database) as running:
        yield running


async def test_a_coordinator_sees_the_recruitment_base_with_definitions_and_exports_it(
    service: Service, tmp_path: Path
) -> None:
    unique = uuid.uuid4().hex[:8]
    # The fast programme evaluates in half a minute; the coordinator's override makes the talent an alumnus.
    cohort = await cohort_of_two(service, unique, evaluate_after=None)
    programme_id = f"browser-{unique}"
    today = datetime.now(UTC).astimezone(CPH).date().isoformat()
    t = service.tokens
    coordinator = {"Authorization": f"Bearer {t['coordinator']}"}
    readiness = f"/v1/journeys/{cohort.mine}/readiness"
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        # The talent is not sure at enrolment, and clear ("no") at evaluation: clarified.
        await post(http, t["talent"], readiness, {"stage": "enrolment", "answer": "not_now"})
        deadline = time.monotonic() + EVALUATED_WITHIN
        while (await http.get(f"/v1/journeys/{cohort.mine}", headers=coordinator)).json()["completion"] is None:
            assert time.monotonic() < deadline, "the journey was not evaluated in time"
            await asyncio.sleep(1)
        await post(http, t["talent"], readiness, {"stage": "evaluation", "answer": "no", "reason": "Ikke for mig."})
        override = {"result": "completed", "reason": "Alt er gjort."}
        await post(http, t["coordinator"], f"/v1/journeys/{cohort.mine}/completion-override", override)
        for post_id, unit in ((f"P1-{unique}", "Børn og Unge"), (f"P2-{unique}", "Ældre")):
            body = {"post_id": post_id, "unit": unit, "profession": "skole", "level": "first-line", "opened_on": today}
            await post(http, t["hr_system"], "/v1/vacancies", body, 201)
            for person in ("p-talent", f"p-b-{unique}"):
                entry = {"person_id": person, "applied_on": today}
                await post(http, t["hr_system"], f"/v1/vacancies/{post_id}/applications", entry, 201)
        kpis = (
            await http.get(
                f"/v1/programmes/{programme_id}/recruitment", headers={"Authorization": f"Bearer {t['hr_system']}"}
            )
        ).json()
        clarity = (
            await http.get(
                f"/v1/programmes/{programme_id}/clarity", headers={"Authorization": f"Bearer {t['hr_system']}"}
            )
        ).json()
    mine = clarity["cohorts"][0]
    assert (mine["cohort_id"], mine["talents"], mine["completed"], mine["clarified"]) == (cohort.cohort_id, 2, 1, 1)
    assert mine["movement"]["not_now"]["no"] == 1, clarity
    [year] = kpis["by_cohort_year"]
    assert (year["alumni"], year["applied"], year["alumni_applicants"]) == (1, 1, 2), kpis
    assert (kpis["all_posts"]["posts"], kpis["all_posts"]["alumni_applicants_per_post"]) == (2, 1.0), kpis

    path = f"/dashboard/programmes/{programme_id}/purpose"
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await sign_in(page, service, "coordinator", then=path)
        violations: list[str] = []
        for lang, definitions in (("da", DEFINITIONS_DA), ("en", DEFINITIONS)):
            await page.goto(f"{service.url}{path}?lang={lang}")
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            # The charts are inline SVG; the tiles and the definitions say the same as the API.
            assert await page.locator("#recruitment svg[role=img]").count() >= 1
            assert int(await page.locator('[data-kpi="posts"]').inner_text()) >= 2
            await expect(page.locator('[data-definition="unknown"]')).to_have_text(definitions["unknown"])
            await expect(page.locator('[data-kpi="alumni_applicants_per_post"]')).to_have_text("1")
            assert await page.locator("table[data-table=timing] tr[data-year]").count() == 1
            # The clarity KPIs in their slot: a chart, the table per cohort, the movement matrix, definitions.
            clarity_section = page.locator('section[data-slot="clarity"]')
            await expect(clarity_section.locator("h2")).to_be_visible()
            assert await clarity_section.locator("[data-chart=clarity] svg[role=img]").count() == 1
            row = clarity_section.locator(f'table[data-table=clarity] tr[data-cohort="{cohort.cohort_id}"]')
            await expect(row.locator('[data-kpi="clarified"]')).to_have_text("1")
            matrix = clarity_section.locator(f'table[data-table=movement][data-cohort="{cohort.cohort_id}"]')
            await expect(matrix.locator('tr[data-from="not_now"] td[data-to="no"]')).to_have_text("1")
            clarity_words = CLARITY_DEFINITIONS_DA if lang == "da" else CLARITY_DEFINITIONS
            await expect(clarity_section.locator('[data-clarity-definition="clarified"]')).to_have_text(
                clarity_words["clarified"]
            )
            violations += await axe_violations(page)
            await shot(page, FOLDER, f"purpose-{lang}")

        # The CSV export, with the session's cookie.
        csv = await page.request.get(f"{service.url}{path}.csv")
        assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
        text = await csv.text()
        assert text.splitlines()[0] == "section,group,kpi,value"
        assert "posts,all,alumni_applicants_per_post," in text
        assert f"clarity,{cohort.cohort_id},clarified,1" in text and "clarity,all,movement:not_now>no,1" in text

        # A tampered or expired one-click link answers with a page that passes axe too.
        for lang in ("da", "en"):
            response = await page.goto(f"{service.url}/dashboard/answer/j-none?point=1&expires=1&sig=x&lang={lang}")
            assert response is not None and response.status == 403
            violations += await axe_violations(page)
        assert not violations, violations

        # Leaders and talents do not see the page.
        leader = await browser.new_page()
        await leader.context.clear_cookies()
        await sign_in(leader, service, "leader", then="/dashboard/leader")
        refused = await leader.goto(f"{service.url}{path}")
        assert refused is not None and refused.status == 403
