"""The accessibility statement (webtilgængelighedsloven): open to all, in both languages, with its contact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator
from service import bootstrap
from tests.conftest import session_settings
from tests.e2e.conftest import TOKENS
from tests.workflows.conftest import journey_worker, time_env  # noqa: F401 - fixtures used here


async def _client(
    settings_dir: Path, pool: asyncpg.Pool[asyncpg.Record], env: WorkflowEnvironment, queue: str, **values: str
) -> httpx.AsyncClient:
    resources = bootstrap.resources(
        session_settings(settings_dir, **values),
        pool=pool,
        temporal=env.client,
        authenticator=Authenticator(list(TOKENS.values())),
        task_queue=queue,
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(resources)), base_url="https://dashboard.test"
    )


@pytest.fixture
async def configured(
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    journey_worker: Worker,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard with TALENT_ACCESSIBILITY_CONTACT set to an e-mail address."""
    async with await _client(
        tmp_path, pool, time_env, journey_worker.task_queue, TALENT_ACCESSIBILITY_CONTACT="tilgaengelighed@kommune.dk"
    ) as client:
        yield client


async def test_the_statement_is_open_to_all_in_both_languages_with_a_placeholder_contact(
    api: httpx.AsyncClient,
) -> None:
    da = await api.get("/dashboard/tilgaengelighed")
    assert da.status_code == 200, da.text
    assert '<html lang="da">' in da.text
    assert "<h1>Tilgængelighedserklæring</h1>" in da.text
    assert "WCAG 2.1" in da.text and "Kendte mangler" in da.text
    assert 'data-contact-configured="false"' in da.text
    assert "TALENT_ACCESSIBILITY_CONTACT" in da.text  # the placeholder names the setting
    assert 'href="/dashboard/tilgaengelighed"' in da.text  # the footer links it, as on every page
    en = await api.get("/dashboard/tilgaengelighed?lang=en")
    assert '<html lang="en">' in en.text and "<h1>Accessibility statement</h1>" in en.text
    assert "Known gaps" in en.text
    # Every other page links it too: the sign-in form.
    login = await api.get("/dashboard/login")
    assert 'href="/dashboard/tilgaengelighed"' in login.text and 'class="skip-link"' in login.text


async def test_the_statement_links_the_configured_contact(configured: httpx.AsyncClient) -> None:
    response = await configured.get("/dashboard/tilgaengelighed")
    assert response.status_code == 200
    assert 'data-contact-configured="true"' in response.text
    assert '<a href="mailto:tilgaengelighed@kommune.dk">tilgaengelighed@kommune.dk</a>' in response.text
    assert "TALENT_ACCESSIBILITY_CONTACT" not in response.text
