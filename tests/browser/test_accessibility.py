"""WCAG 2.1 AA in a real browser: axe-core on every dashboard page in Danish and English, and the
sign-in and an action form by keyboard alone, with a visible focus. Screenshots go to
test-artifacts/accessibility/.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.support import (
    NEEDS_CHROMIUM,
    Cohort,
    Service,
    axe_violations,
    chromium,
    cohort_of_two,
    running_service,
    shot,
    sign_in,
    sign_out,
)
from tests.integration.test_talent_dev import dev_database

__all__ = ["dev_database"]  # the fixture, used here

pytestmark = NEEDS_CHROMIUM
FOLDER = "accessibility"
#: The pages of a role's sweep at most (they are found by following the dashboard's own links).
MOST_PAGES = 30
#: Links that are not pages to check: the stylesheet and the calendar feeds.
SKIP = ("/dashboard/static/",)
ESCALATION_WITHIN = 60.0


@pytest.fixture
async def service(tmp_path: Path, dev_database: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, dev_database) as running:
        yield running


def _with_lang(path: str, lang: str) -> str:
    parts = urlsplit(path)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("lang="))
    return f"{parts.path}?{query + '&' if query else ''}{urlencode({'lang': lang})}"


async def _links(page: Page, base: str) -> list[str]:
    """The dashboard pages this page links to (path and query)."""
    # A download (the purpose page's CSV) is a file, not a page.
    hrefs: list[str] = await page.eval_on_selector_all("a[href]:not([download])", "els => els.map(e => e.href)")
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if not href.startswith(base) or not parts.path.startswith("/dashboard") or parts.path.startswith(SKIP):
            continue
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("lang="))
        found.append(parts.path + (f"?{query}" if query else ""))
    return found


async def _sweep(page: Page, service: Service, who: str, start: list[str]) -> tuple[list[str], list[str]]:
    """Every page reachable from `start` by the dashboard's links, in both languages, through
    axe-core: (the pages seen, the serious or critical violations)."""
    seen: list[str] = []
    queue = list(start)
    violations: list[str] = []
    while queue and len(seen) < MOST_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        for lang in ("da", "en"):
            response = await page.goto(f"{service.url}{_with_lang(path, lang)}")
            if response is None or response.status >= 500:
                violations.append(f"{path}: {response and response.status}")
                continue
            landed = urlsplit(page.url).query  # a redirect (home to a leader's page) keeps the cookie's language
            if f"lang={lang}" in landed and (said := await page.locator("html").get_attribute("lang")) != lang:
                violations.append(f"{path}?lang={lang}: html lang={said}")
            violations += await axe_violations(page)
            name = f"{who}-{len(seen):02d}-{lang}"
            await shot(page, FOLDER, name)
        queue += [link for link in await _links(page, service.url) if link not in seen]
    return seen, violations


async def _wait_for_escalation(page: Page, service: Service, journey_id: str) -> None:
    """The late track's ladder has reached the coordinator (the escalations page shows it)."""
    deadline = time.monotonic() + ESCALATION_WITHIN
    row = page.locator(f'tr[data-journey-id="{journey_id}"]')
    await page.goto(f"{service.url}/dashboard/escalations")
    while await row.count() == 0:
        assert time.monotonic() < deadline, f"no escalation within {ESCALATION_WITHIN:.0f} s"
        await page.wait_for_timeout(1000)
        await page.reload()


async def test_every_page_of_every_role_has_no_serious_or_critical_axe_violation_in_both_languages(
    service: Service, tmp_path: Path
) -> None:
    cohort: Cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        # axe-core runs and finds what it should: an unlabelled field is a critical violation.
        await page.goto(f"{service.url}/dashboard/login")
        await page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')")
        assert any("label (critical)" in v for v in await axe_violations(page))
        violations: list[str] = []
        # Before signing in: the sign-in form, the accessibility statement, an unknown page.
        for path in ("/dashboard/login", "/dashboard/tilgaengelighed"):
            for lang in ("da", "en"):
                await page.goto(f"{service.url}{_with_lang(path, lang)}")
                await expect(page.locator("html")).to_have_attribute("lang", lang)
                violations += await axe_violations(page)
                await shot(page, FOLDER, f"anonymous-{path.rsplit('/', 1)[-1]}-{lang}")
        # The statement is linked from every page's footer.
        await expect(page.locator("footer a[href='/dashboard/tilgaengelighed']")).to_be_visible()

        await sign_in(page, service, "coordinator")
        await _wait_for_escalation(page, service, cohort.mine)
        seen, found = await _sweep(
            page,
            service,
            "coordinator",
            ["/dashboard/", "/dashboard/escalations", f"/dashboard/cohorts/{cohort.cohort_id}"],
        )
        violations += found
        assert f"/dashboard/journeys/{cohort.mine}" in seen, seen  # the sweep follows the links
        assert "/dashboard/tilgaengelighed" in seen, seen
        # Error pages: not found and forbidden.
        for path in ("/dashboard/journeys/no-such-journey", "/dashboard/cohorts/no-such-cohort"):
            for lang in ("da", "en"):
                await page.goto(f"{service.url}{_with_lang(path, lang)}")
                violations += await axe_violations(page)
        await sign_out(page)

        for who, start in (
            ("leader", ["/dashboard/leader"]),
            ("leaders_leader", ["/dashboard/leader"]),
            ("talent", ["/dashboard/"]),
        ):
            await sign_in(page, service, who, start[0])
            seen, found = await _sweep(page, service, who, start)
            violations += found
            await page.goto(f"{service.url}/dashboard/escalations")  # forbidden: the error page
            violations += await axe_violations(page)
            await sign_out(page)
    assert violations == [], "\n".join(violations)


async def _focus_visible(locator: Locator) -> None:
    """The focused element shows it: an outline (or a box shadow) that is not `none`."""
    await expect(locator).to_be_focused()
    style = await locator.evaluate(
        "e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }"
    )
    outline_style, outline_width, box_shadow = style
    assert (outline_style != "none" and outline_width not in ("0px", "")) or box_shadow != "none", style


async def _tab_to(page: Page, target: Locator, most: int = 60) -> None:
    """Press Tab until `target` has the focus (each stop showing a visible focus)."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await target.evaluate("e => e === document.activeElement"):
            await _focus_visible(target)
            return
    raise AssertionError(f"{target} was not reached by Tab within {most} presses")


async def test_the_sign_in_and_acknowledging_an_escalation_work_by_keyboard_alone_with_a_visible_focus(
    service: Service, tmp_path: Path
) -> None:
    cohort = await cohort_of_two(service, uuid.uuid4().hex[:8])
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(f"{service.url}/dashboard/escalations")  # to the sign-in form, and back
        token = page.locator("#token")
        await expect(token).to_be_focused()  # the form's only field has the focus from the start
        await _focus_visible(token)
        await page.keyboard.type(service.tokens["coordinator"])
        await page.keyboard.press("Tab")
        await _focus_visible(page.get_by_role("button", name="Log ind"))
        await shot(page, FOLDER, "keyboard-01-sign-in")
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(f"{service.url}/dashboard/escalations")

        await _wait_for_escalation(page, service, cohort.mine)
        # Pinned by its milestone: another of the journey's ladders may reach the page meanwhile.
        milestone = await page.locator(f'tr[data-journey-id="{cohort.mine}"]').first.get_attribute("data-milestone")
        row = page.locator(f'tr[data-journey-id="{cohort.mine}"][data-milestone="{milestone}"]')
        acknowledge = row.get_by_role("button", name="Kvittér")
        await _tab_to(page, acknowledge)
        await shot(page, FOLDER, "keyboard-02-acknowledge-focused")
        await page.keyboard.press("Enter")
        await expect(page.locator(".flash-ok")).to_have_text("Eskaleringen er kvitteret.")
        await expect(row.locator(".badge.acknowledged")).to_be_visible()

        # The resolve form opens and is sent by keyboard too.
        summary = row.locator("details.resolve summary")
        await _tab_to(page, summary)
        await page.keyboard.press("Enter")
        note = row.locator("details.resolve input[name=note]")
        await _tab_to(page, note, most=3)
        await page.keyboard.type("Talt med lederen.")
        await page.keyboard.press("Enter")
        await expect(page.locator(".flash-ok")).to_be_visible()
        await expect(row).to_have_count(0)
        await shot(page, FOLDER, "keyboard-03-resolved")
        await sign_out(page)
        await expect(page.locator(".flash-ok")).to_have_text("Du er logget ud.")
