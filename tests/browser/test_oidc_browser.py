"""OpenID Connect sign-in in a real browser (Debian's Chromium) against `talent dev` and a real provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.support import NEEDS_CHROMIUM
from tests.browser.test_dashboard_browser import ARTIFACTS, browser
from tests.e2e.test_oidc import ROLE_MAP, provider
from tests.integration.test_talent_dev import Dev, dev_database, free_port, start_dev, stop_and_check, wait_ready

__all__ = ["browser", "dev_database"]  # the fixtures, used here

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
async def dev_with_oidc(tmp_path: Path, dev_database: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Dev]:
    """`talent dev` signing in with the provider (which runs in this process, on localhost)."""
    with provider() as issuer:
        for name, value in {
            "TALENT_OIDC_ISSUER": issuer,
            "TALENT_OIDC_CLIENT_ID": "talent-journey",
            "TALENT_OIDC_CLIENT_SECRET": "a-client-secret",
            "TALENT_OIDC_ROLE_CLAIM": "groups",
            "TALENT_OIDC_PERSON_CLAIM": "employee_id",
            "TALENT_OIDC_ROLE_MAP": ROLE_MAP,
        }.items():
            monkeypatch.setenv(name, value)
        running = start_dev(tmp_path / "data", dev_database, free_port(), "dev", "--no-demo")
        try:
            await wait_ready(running)
            yield running
        finally:
            if running.process.poll() is None:
                stop_and_check(running)


async def test_a_coordinator_signs_in_with_the_provider_in_chromium_and_out_again(
    dev_with_oidc: Dev, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await page.goto(f"{dev_with_oidc.url}/dashboard/escalations")
    await page.get_by_role("link", name="Log ind med kommunens login").click()
    await expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    await page.get_by_role("button", name="anna@kommune.test").click()
    # Back on the dashboard, past the provider's cross-site redirect, signed in as the coordinator.
    await page.wait_for_url(f"{dev_with_oidc.url}/dashboard/escalations")
    await expect(page.locator('.who[data-role="coordinator"]')).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "oidc-signed-in.png"), full_page=True)
    await page.get_by_role("button", name="Log ud").click()
    await expect(page.get_by_role("button", name="End session")).to_be_visible()
    await page.get_by_role("button", name="End session").click()
    await page.wait_for_url(f"{dev_with_oidc.url}/dashboard/login*")
    await page.goto(f"{dev_with_oidc.url}/dashboard/escalations")
    await page.wait_for_url(f"{dev_with_oidc.url}/dashboard/login*")
