"""Shared by the browser tests: `talent dev` with a token per person, Chromium, sign-in, axe-core, screenshots."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from domain.calendar import Delay
from tests.integration.conftest import HOST as MAIL_HOST
from tests.integration.conftest import MailServer, _EphemeralController
from tests.integration.test_talent_dev import ROOT, Dev, free_port, start_dev, stop_and_check, wait_ready
from tests.support import CPH, fast_cohort, fast_programme

CHROMIUM = Path("/usr/bin/chromium")
#: Every browser test module's mark: Debian's Chromium, never a downloaded browser.
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
)
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: axe-core's impacts that fail a page (WCAG 2.1 AA: nothing serious or critical).
FAILING_IMPACTS = ("serious", "critical")
#: The people the tests sign in as: (tokens-file id, role, person id).
PEOPLE = {
    "coordinator": ("coordinator", "p-coordinator"),
    "hr_system": ("hr_system", None),
    "leader": ("leader", "p-leader"),
    "talent": ("talent", "p-talent"),
    "leaders_leader": ("leader", "p-leaders-leader"),
    "other_leader": ("leader", "p-other-leader"),
    "new_leader": ("leader", "p-new-leader"),
    "other_leaders_leader": ("leader", "p-other-leaders-leader"),
}
_AXE = Axe()


@dataclass(frozen=True)
class Service:
    """A running `talent dev` and a token per person of PEOPLE."""

    dev: Dev
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.dev.url


def write_tokens(data_dir: Path) -> dict[str, str]:
    """A tokens file naming every person of PEOPLE (`talent dev` keeps entries added by hand)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tokens = {who: secrets.token_urlsafe(24) for who in PEOPLE}
    entries = [
        {"token": tokens[who], "role": role, "person_id": person, "id": f"test-{who.replace('_', '-')}"}
        for who, (role, person) in PEOPLE.items()
    ]
    (data_dir / "tokens.json").write_text(json.dumps(entries))
    return tokens


@asynccontextmanager
async def running_service(tmp: Path, dsn: str) -> AsyncIterator[Service]:
    """`talent dev --no-demo` on a fresh database with the tokens of PEOPLE; stopped cleanly at the end."""
    data = tmp / "data"
    tokens = write_tokens(data)
    running = start_dev(data, dsn, free_port(), "dev", "--no-demo")
    try:
        await wait_ready(running)
        yield Service(running, tokens)
    finally:
        if running.process.poll() is None:
            stop_and_check(running)


@contextmanager
def mail_server() -> Iterator[MailServer]:
    """An SMTP server (aiosmtpd, the integration tests' MailServer) on 127.0.0.1 and a free port."""
    sink = MailServer()
    controller = _EphemeralController(sink, hostname=MAIL_HOST, port=0)
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()


@asynccontextmanager
async def chromium(profile: Path, locale: str = "da-DK") -> AsyncIterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale=locale,
        )
        try:
            yield context
        finally:
            await context.close()


async def post(http: httpx.AsyncClient, token: str, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json()


@dataclass(frozen=True)
class Cohort:
    """A fast cohort of two journeys: the `talent`'s (leader `leader`, leader's leader
    `leaders_leader`) and another line's (leader `other_leader`)."""

    cohort_id: str
    mine: str
    other: str
    tracks: tuple[str, ...]
    sessions: tuple[str, ...]
    #: When each of `sessions` starts, in the same order.
    starts: tuple[datetime, ...]


async def cohort_of_two(
    service: Service,
    unique: str,
    *,
    approve: bool = True,
    start_in: float = 4.0,
    evaluate_after: str | None = "PT10M",
) -> Cohort:
    """A fast cohort (evaluated ten minutes on, so it stays open; `evaluate_after=None` keeps the
    fast programme's own half a minute) with the talent's journey and another line's; both
    approved unless `approve` is false."""
    base = fast_programme()
    completion = (
        base.completion.model_copy(update={"evaluate_after": Delay(iso=evaluate_after)})
        if evaluate_after is not None
        else base.completion
    )
    programme = base.model_copy(update={"id": f"browser-{unique}", "completion": completion})
    start = datetime.now(CPH) + timedelta(seconds=start_in)
    cohort = fast_cohort(programme, start, cohort_id=f"browser-{unique}", coordinator_id="p-coordinator")
    t = service.tokens
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        await post(http, t["coordinator"], "/v1/programmes", programme.model_dump(mode="json"), 201)
        await post(http, t["coordinator"], "/v1/cohorts", cohort.model_dump(mode="json"), 201)
        journeys = []
        for talent, name, lead, lead_name, above, above_name in (
            ("p-talent", "Mette Browser", "p-leader", "Lars Leder", "p-leaders-leader", "Birgit Chef"),
            (f"p-other-{unique}", "Ole Andensen", "p-other-leader", "Hanne Anden", "p-other-leaders-leader", "Kim"),
        ):
            nomination = {
                "cohort_id": cohort.cohort_id,
                "motivation": "Tager ansvar i teamet.",
                "talent": {"person_id": talent, "name": name, "email": "talent@example.org"},
                "nearest_leader": {"person_id": lead, "name": lead_name, "email": "leder@example.org"},
                "leaders_leader": {"person_id": above, "name": above_name, "email": "chef@example.org"},
            }
            created = await post(http, t["hr_system"], "/v1/journeys", nomination, 201)
            if approve:
                path = f"/v1/journeys/{created['journey_id']}/decision"
                await post(http, t["coordinator"], path, {"decision": "approve"})
            journeys.append(created["journey_id"])
    return Cohort(
        cohort.cohort_id,
        journeys[0],
        journeys[1],
        tuple(track.key for track in programme.tracks),
        tuple(session.key for session in cohort.sessions),
        tuple(session.starts_at for session in cohort.sessions),
    )


async def sign_in(page: Page, service: Service, who: str, then: str = "/dashboard/") -> None:
    """Sign in as `who` through the form (by mouse), landing on `then`."""
    await page.goto(f"{service.url}/dashboard/login?next={quote(then, safe='')}")
    await page.locator("#token").fill(service.tokens[who])
    await page.locator("form[action='/dashboard/login'] button[type=submit]").click()
    await expect(page).to_have_url(f"{service.url}{then}")


async def sign_out(page: Page) -> None:
    await page.locator("form[action='/dashboard/logout'] button").click()
    await expect(page.locator("form[action='/dashboard/login']")).to_be_visible()


async def shot(page: Page, folder: str, name: str) -> None:
    """A full-page screenshot to test-artifacts/<folder>/<name>.png."""
    (ARTIFACTS / folder).mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / folder / f"{name}.png"), full_page=True)


async def axe_violations(page: Page) -> list[str]:
    """axe-core's (the copy bundled with axe-playwright-python) serious and critical violations of the page."""
    results = await _AXE.run(page)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") in FAILING_IMPACTS:
            targets = [" ".join(node["target"]) for node in violation["nodes"]][:3]
            where = urlsplit(page.url)
            found.append(f"{where.path}?{where.query}: {violation['id']} ({violation['impact']}) {targets}")
    return found
