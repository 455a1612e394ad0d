"""Dashboard sign-in with OpenID Connect against a real provider process (oidc-provider-mock over HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import Authenticator
from service import bootstrap
from tests.conftest import session_settings
from tests.e2e.conftest import TOKENS
from tests.workflows.conftest import time_env  # noqa: F401 - the fixture used here

DASHBOARD = "https://dashboard.test"
ROLE_MAP = "tj-coordinators=coordinator,tj-leaders=leader,tj-talents=talent,hr=hr_system"
USERS = (
    User(sub="anna@kommune.test", claims={"groups": ["staff", "tj-coordinators"], "employee_id": "p-oidc-coord"}),
    User(sub="bo@kommune.test", claims={"groups": ["tj-talents"], "employee_id": "p-oidc-talent"}),
    User(sub="lis@kommune.test", claims={"groups": ["tj-leaders"]}),  # a leader without a person id
    User(sub="hr@kommune.test", claims={"groups": ["hr"]}),
    User(sub="ole@kommune.test", claims={"groups": ["staff"], "employee_id": "p-oidc-ole"}),
)
_REFRESH = re.compile(r'http-equiv="refresh" content="0;url=([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@contextlib.contextmanager
def provider(max_age: timedelta = timedelta(hours=1)) -> Iterator[str]:
    """A running OIDC provider (nonces required, ID tokens valid for `max_age`); its issuer URL."""
    with run_server_in_thread(require_nonce=True, access_token_max_age=max_age, user_claims=USERS) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """The module's identity provider."""
    with provider() as url:
        yield url


@contextlib.asynccontextmanager
async def dashboard(
    issuer: str, pool: asyncpg.Pool[asyncpg.Record], env: WorkflowEnvironment, data_dir: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client: the app in process at https://dashboard.test, the provider over the network."""
    settings = session_settings(
        data_dir,
        TALENT_OIDC_ISSUER=issuer,
        TALENT_OIDC_CLIENT_ID="talent-journey",
        TALENT_OIDC_CLIENT_SECRET="a-client-secret",
        TALENT_OIDC_ROLE_CLAIM="groups",
        TALENT_OIDC_PERSON_CLAIM="employee_id",
        TALENT_OIDC_ROLE_MAP=ROLE_MAP,
    )
    resources = bootstrap.resources(
        settings, pool=pool, temporal=env.client, authenticator=Authenticator(list(TOKENS.values()))
    )
    app = httpx.ASGITransport(app=create_app(resources))
    async with httpx.AsyncClient(mounts={DASHBOARD: app}, follow_redirects=True, timeout=20) as client:
        yield client


@pytest.fixture
async def browser(
    issuer: str,
    pool: asyncpg.Pool[asyncpg.Record],
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard on the module's provider."""
    async with dashboard(issuer, pool, time_env, tmp_path) as client:
        yield client


async def authorize(client: httpx.AsyncClient, next_page: str = "/dashboard/") -> httpx.Response:
    """Start a sign-in on the dashboard: the provider's consent page (after the dashboard's redirect)."""
    consent = await client.get(f"{DASHBOARD}/dashboard/oidc/login", params={"next": next_page})
    assert consent.status_code == 200, consent.text
    assert str(consent.url).startswith("http://localhost:"), consent.url
    assert "Authorize" in consent.text
    return consent


async def consent_as(client: httpx.AsyncClient, authorize_url: str, sub: str) -> httpx.Response:
    """Post the provider's form as the person `sub` would (the form posts back to its own URL)."""
    return await client.post(authorize_url, data={"sub": sub})


async def sign_in(client: httpx.AsyncClient, sub: str, next_page: str = "/dashboard/") -> httpx.Response:
    """The whole dance: dashboard → provider → consent → callback → the page it moves on to."""
    consent = await authorize(client, next_page)
    landed = await consent_as(client, str(consent.url), sub)
    assert landed.url.path == "/dashboard/oidc/callback", landed.url
    return landed


async def follow_refresh(client: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    """Follow a page's meta refresh as a browser would."""
    found = _REFRESH.search(page.text)
    assert found, page.text
    return await client.get(html.unescape(found.group(1)) if "://" in found.group(1) else DASHBOARD + found.group(1))


def session_cookie(client: httpx.AsyncClient) -> str | None:
    """The dashboard session id the client holds."""
    return client.cookies.get("tj_session", domain="dashboard.test")


async def session_row(pool: asyncpg.Pool[asyncpg.Record], session_id: str) -> asyncpg.Record:
    """The stored session (who signed in, until when)."""
    row = await pool.fetchrow(
        "SELECT token_id, role, person_id, expires_at, revoked_at FROM dashboard_sessions WHERE session_sha256 = $1",
        hashlib.sha256(session_id.encode()).digest(),
    )
    assert row is not None
    return row


async def test_the_sign_in_page_offers_the_provider_beside_the_token_form(browser: httpx.AsyncClient) -> None:
    page = await browser.get(f"{DASHBOARD}/dashboard/login", params={"next": "/dashboard/escalations"})
    assert page.status_code == 200
    assert 'href="/dashboard/oidc/login?next=%2Fdashboard%2Fescalations"' in page.text
    assert 'name="token"' in page.text


async def test_a_coordinator_signs_in_through_the_provider_with_the_mapped_role_and_person_id(
    browser: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    landed = await sign_in(browser, "anna@kommune.test", "/dashboard/escalations")
    assert landed.status_code == 200, landed.text
    session_id = session_cookie(browser)
    assert session_id
    row = await session_row(pool, session_id)
    assert (row["role"], row["person_id"]) == ("coordinator", "p-oidc-coord")
    assert row["token_id"].startswith("oidc:")
    assert "anna" not in row["token_id"]  # a hash of issuer and sub, never the sub (an e-mail here)
    # The transaction cookie is used up.
    assert browser.cookies.get("tj_oidc", domain="dashboard.test") is None
    page = await follow_refresh(browser, landed)
    assert page.status_code == 200
    assert page.url.path == "/dashboard/escalations"
    assert 'data-role="coordinator"' in page.text


async def test_the_session_ends_with_the_id_token(
    pool: asyncpg.Pool[asyncpg.Record],
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    with provider(max_age=timedelta(seconds=3)) as short_lived:
        async with dashboard(short_lived, pool, time_env, tmp_path) as client:
            before = datetime.now(UTC)
            landed = await sign_in(client, "bo@kommune.test")
            session_id = session_cookie(client)
            assert session_id
            row = await session_row(pool, session_id)
            assert (row["role"], row["person_id"]) == ("talent", "p-oidc-talent")
            # Not the working day of a token sign-in: the ID token's three seconds.
            assert row["expires_at"] <= before + timedelta(seconds=5)
            page = await follow_refresh(client, landed)
            assert page.url.path == "/dashboard/" and 'data-role="talent"' in page.text
            await asyncio.sleep(max(0.0, (row["expires_at"] - datetime.now(UTC)).total_seconds()) + 0.5)
            expired = await client.get(f"{DASHBOARD}/dashboard/", headers={"Cookie": f"tj_session={session_id}"})
            assert expired.url.path == "/dashboard/login", expired.url
            assert 'data-role="talent"' not in expired.text


async def test_sign_out_revokes_the_session_and_ends_the_providers_session(
    browser: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record], issuer: str
) -> None:
    page = await follow_refresh(browser, await sign_in(browser, "anna@kommune.test"))
    session_id = session_cookie(browser)
    assert session_id
    found = _CSRF.search(page.text)
    assert found, page.text
    out = await browser.post(f"{DASHBOARD}/dashboard/logout", data={"csrf": found.group(1)})
    assert out.status_code == 200, out.text
    assert session_cookie(browser) is None
    assert (await session_row(pool, session_id))["revoked_at"] is not None
    # On to the provider's end_session_endpoint, with this client and the way back.
    ending = _REFRESH.search(out.text)
    assert ending, out.text
    url = urlsplit(html.unescape(ending.group(1)))
    assert f"{url.scheme}://{url.netloc}" == issuer and url.path == "/oauth2/end_session"
    query = parse_qs(url.query)
    assert query["client_id"] == ["talent-journey"]
    assert query["post_logout_redirect_uri"] == [f"{DASHBOARD}/dashboard/login"]
    form = await follow_refresh(browser, out)
    redirect_uri = re.search(r'name="redirect_uri" value="([^"]+)"', form.text)
    assert redirect_uri, form.text
    back = await browser.post(
        f"{issuer}/oauth2/end_session/confirm", data={"redirect_uri": html.unescape(redirect_uri.group(1))}
    )
    assert back.url.path == "/dashboard/login" and back.status_code == 200
    # The old cookie, replayed, opens nothing.
    replay = await browser.get(f"{DASHBOARD}/dashboard/", headers={"Cookie": f"tj_session={session_id}"})
    assert replay.url.path == "/dashboard/login"


async def test_a_talent_signed_in_by_the_provider_is_refused_the_coordinators_pages(browser: httpx.AsyncClient) -> None:
    await follow_refresh(browser, await sign_in(browser, "bo@kommune.test"))
    cohort = await browser.get(f"{DASHBOARD}/dashboard/cohorts/any-cohort")
    assert cohort.status_code == 403
    escalations = await browser.get(f"{DASHBOARD}/dashboard/escalations")
    assert escalations.status_code == 403


@pytest.mark.parametrize(
    ("sub", "status"),
    [("hr@kommune.test", 403), ("ole@kommune.test", 403), ("lis@kommune.test", 403)],
    ids=["hr-system", "no-service-role", "leader-without-person-id"],
)
async def test_a_person_without_a_dashboard_role_gets_no_session(
    browser: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record], sub: str, status: int
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM dashboard_sessions")
    landed = await sign_in(browser, sub)
    assert landed.status_code == status, landed.text
    assert session_cookie(browser) is None
    assert await pool.fetchval("SELECT count(*) FROM dashboard_sessions") == before


async def test_a_forged_state_is_refused(browser: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record]) -> None:
    consent = await authorize(browser)
    browser.follow_redirects = False
    answer = await consent_as(browser, str(consent.url), "anna@kommune.test")
    callback = urlsplit(answer.headers["location"])
    query = parse_qs(callback.query)
    query["state"] = ["forged-state"]
    before = await pool.fetchval("SELECT count(*) FROM dashboard_sessions")
    forged = await browser.get(urlunsplit(callback._replace(query=urlencode(query, doseq=True))))
    assert forged.status_code == 401
    assert session_cookie(browser) is None
    assert await pool.fetchval("SELECT count(*) FROM dashboard_sessions") == before


async def test_a_callback_without_its_transaction_or_with_a_tampered_one_is_refused(
    browser: httpx.AsyncClient,
) -> None:
    consent = await authorize(browser)
    sealed = browser.cookies.get("tj_oidc", domain="dashboard.test")
    assert sealed
    browser.follow_redirects = False
    answer = await consent_as(browser, str(consent.url), "anna@kommune.test")
    callback = answer.headers["location"]
    payload, _, signature = sealed.partition(".")
    for cookie in (None, f"{payload}x.{signature}", f"{payload}.{signature[:-2]}AA"):
        browser.cookies.clear()
        headers = {"Cookie": f"tj_oidc={cookie}"} if cookie else {}
        refused = await browser.get(callback, headers=headers)
        assert refused.status_code == 401, cookie
        assert session_cookie(browser) is None


async def test_an_id_token_for_another_nonce_is_refused(browser: httpx.AsyncClient) -> None:
    consent = await authorize(browser)
    url = urlsplit(str(consent.url))
    query = parse_qs(url.query)
    assert query["nonce"] and query["code_challenge_method"] == ["S256"]
    # The provider is asked with another nonce (the state and the PKCE challenge are the real ones).
    query["nonce"] = ["a-nonce-the-dashboard-never-made"]
    forged = urlunsplit(url._replace(query=urlencode(query, doseq=True)))
    landed = await consent_as(browser, forged, "anna@kommune.test")
    assert landed.url.path == "/dashboard/oidc/callback"
    assert landed.status_code == 401, landed.text
    assert session_cookie(browser) is None


async def test_a_declined_consent_opens_no_session(browser: httpx.AsyncClient) -> None:
    consent = await authorize(browser)
    declined = await browser.post(str(consent.url), data={"action": "deny"})
    assert declined.url.path == "/dashboard/oidc/callback"
    assert declined.status_code == 401
    assert session_cookie(browser) is None


async def test_an_unreachable_provider_is_a_503_not_a_crash(
    pool: asyncpg.Pool[asyncpg.Record],
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    with provider() as gone:
        pass  # stopped: nothing listens on its port any more
    async with dashboard(gone, pool, time_env, tmp_path) as client:
        page = await client.get(f"{DASHBOARD}/dashboard/oidc/login")
        assert page.status_code == 503
        assert page.url.path == "/dashboard/oidc/login"
