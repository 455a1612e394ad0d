"""The dashboard through HTTP: sign-in and its cookie, scoping, CSRF, languages, erasure, escalations."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import get_args

import asyncpg
import httpx
import jwt
import pytest
from structlog.testing import capture_logs
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal
from api.dashboard.i18n import EVENTS, TEXTS, VALUES
from api.dashboard.session import open_session, token_expiry
from domain import commands as c
from domain.events import Event
from store.vault import PeopleVault, PersonData
from tests.e2e.conftest import TOKENS, auth
from tests.support import reference_cohort, reference_programme
from tests.workflows.journeys import advance_to, local

KICKOFF = "session:kickoff"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def browser(api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the same app over https (the session cookie is Secure), keeping cookies like a browser."""
    async with httpx.AsyncClient(transport=api._transport, base_url="https://dashboard.test") as client:
        yield client


async def sign_in(browser: httpx.AsyncClient, who: str, next_page: str = "/dashboard/") -> httpx.Response:
    """Sign in with a test principal's token; the redirect."""
    browser.cookies.clear()
    response = await browser.post("/dashboard/login", data={"token": TOKENS[who].token, "next": next_page})
    assert response.status_code == 303, response.text
    return response


def session_of(response: httpx.Response) -> str:
    """The session id a sign-in set in the cookie."""
    found = re.match(r"tj_session=([^;]+);", response.headers["set-cookie"])
    assert found, response.headers
    return found.group(1)


@contextlib.asynccontextmanager
async def replaying(browser: httpx.AsyncClient, session_id: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client on the app that sends `session_id` as its session cookie (a copied cookie)."""
    async with httpx.AsyncClient(
        transport=browser._transport, base_url="https://dashboard.test", headers={"Cookie": f"tj_session={session_id}"}
    ) as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def text_of(page: httpx.Response) -> str:
    """The page's text with the HTML entities decoded (names are escaped: ø, æ, ')."""
    return html.unescape(page.text)


async def _cohort(api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str) -> str:
    programme = reference_programme().model_copy(update={"id": f"dash-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"dash-{unique}", starts_on=local(now + timedelta(days=14)).date())
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text
    return cohort.cohort_id


def _first_rung(due_at: str) -> datetime:
    """When an unrecorded kickoff attendance raises its first rung (rules 3: the coordinator's)."""
    programme = reference_programme()
    _, rung = programme.rungs_for("session", c.CURRENT_RULES_VERSION)[0]
    return programme.working_calendar.add(datetime.fromisoformat(due_at), rung.after)


async def _journey(api: httpx.AsyncClient, cohort_id: str, talent: str, name: str, leader: str) -> dict[str, object]:
    """Nominate (as HR) and approve (as the coordinator): the approved journey's status."""
    nomination = {
        "cohort_id": cohort_id,
        "motivation": "Tager ansvar i teamet.",
        "talent": {"person_id": talent, "name": name, "email": "talent@example.org", "workplace": "Skolen"},
        "nearest_leader": {"person_id": leader, "name": f"Leder {leader}", "email": "leder@example.org"},
    }
    nominated = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert nominated.status_code == 201, nominated.text
    journey_id = nominated.json()["journey_id"]
    approved = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert approved.status_code == 200, approved.text
    body: dict[str, object] = approved.json()
    return body


async def _withdraw(api: httpx.AsyncClient, time_env: WorkflowEnvironment, *journey_ids: object) -> None:
    """Withdraw the journeys and wait for their workflows to finish.

    A journey left running keeps a timer on the test server, whose clock other tests share; one
    whose last workflow task outlives this test's worker holds that clock still.
    """
    for journey_id in journey_ids:
        status = (await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))).json()
        if status["state"] != "withdrawn":
            withdrawn = await api.post(
                f"/v1/journeys/{journey_id}/withdraw", json={"reason": "test"}, headers=auth("coordinator")
            )
            assert withdrawn.status_code == 200, withdrawn.text
        handle = time_env.client.get_workflow_handle(f"journey-{journey_id}")
        for _ in range(200):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.05)


def test_every_text_is_in_both_languages_and_every_event_type_has_its_timeline_text() -> None:
    for table in (TEXTS, EVENTS, VALUES):
        assert set(table["da"]) == set(table["en"]), set(table["da"]) ^ set(table["en"])
    event_types = {get_args(model.model_fields["type"].annotation)[0] for model in get_args(get_args(Event)[0])}
    assert "EscalationAcknowledged" in event_types
    assert event_types <= set(EVENTS["da"]), event_types - set(EVENTS["da"])


async def test_signing_in_opens_a_session_in_a_secure_http_only_cookie_and_every_page_needs_it(
    browser: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    # No cookie: every page sends the browser to the sign-in form, remembering where it was going.
    for path in ("/dashboard/", "/dashboard/escalations", "/dashboard/journeys/j-nope", "/dashboard/leader"):
        response = await browser.get(path)
        assert response.status_code == 303, (path, response.status_code)
        assert response.headers["location"].startswith("/dashboard/login?next=%2Fdashboard%2F"), path
    form = await browser.get("/dashboard/login")
    assert form.status_code == 200 and 'name="token"' in form.text and 'type="password"' in form.text

    # A bad token, a machine's token: refused, no cookie.
    bad = await browser.post("/dashboard/login", data={"token": "nope"})
    hr = await browser.post("/dashboard/login", data={"token": TOKENS["hr"].token})
    assert bad.status_code == 401 and "Adgangsnøglen er ikke gyldig." in text_of(bad)
    assert hr.status_code == 403 and "set-cookie" not in hr.headers and "set-cookie" not in bad.headers

    # The coordinator's token: a session id in a cookie only the server reads, sent only over HTTPS,
    # never cross-site. The cookie never holds the API token; the database holds only the id's digest.
    signed_in = await sign_in(browser, "coordinator", "/dashboard/escalations")
    assert signed_in.headers["location"] == "/dashboard/escalations"
    cookie = signed_in.headers["set-cookie"]
    session_id = session_of(signed_in)
    assert TOKENS["coordinator"].token not in cookie and len(session_id) >= 43
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/dashboard"):
        assert attribute in cookie, cookie
    row = await pool.fetchrow(
        "SELECT * FROM dashboard_sessions WHERE session_sha256 = $1", hashlib.sha256(session_id.encode()).digest()
    )
    assert row is not None and (row["role"], row["person_id"], row["revoked_at"]) == ("coordinator", "p-coord", None)
    assert session_id not in {str(v) for v in row.values()} and TOKENS["coordinator"].token not in str(dict(row))
    assert timedelta(hours=7) < row["expires_at"] - row["created_at"] <= timedelta(hours=8)
    page = await browser.get("/dashboard/escalations")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    stylesheet = await browser.get(re.search(r'href="(/dashboard/static/dashboard\.css\?v=\w+)"', page.text)[1])  # type: ignore[index]
    assert stylesheet.status_code == 200 and stylesheet.headers["content-type"].startswith("text/css")

    # Never redirected off-site after sign-in.
    for target in ("https://evil.example/", "//evil.example/", "/v1/journeys"):
        away = await browser.post("/dashboard/login", data={"token": TOKENS["coordinator"].token, "next": target})
        assert away.headers["location"] == "/dashboard/", target

    # Signing out needs the form's CSRF token; then the cookie is gone and pages redirect again.
    await sign_in(browser, "coordinator")
    session_id = browser.cookies["tj_session"]
    page = await browser.get("/dashboard/escalations")
    refused = await browser.post("/dashboard/logout", data={"csrf": "forged"})
    assert refused.status_code == 303 and (await browser.get("/dashboard/")).status_code == 200
    out = await browser.post("/dashboard/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and 'tj_session=""' in out.headers["set-cookie"]
    assert (await browser.get("/dashboard/")).status_code == 303

    # The session was revoked on the server: a copy of the old cookie replayed opens nothing, and
    # its form token no longer acts.
    async with replaying(browser, session_id) as replayed:
        for path in ("/dashboard/", "/dashboard/escalations"):
            again = await replayed.get(path)
            assert again.status_code == 303 and again.headers["location"].startswith("/dashboard/login"), path
        acted = await replayed.post(
            "/dashboard/escalations/acknowledge",
            data={"journey_id": "j-x", "milestone": KICKOFF, "csrf": csrf_of(page)},
        )
        assert acted.status_code == 303 and acted.headers["location"].startswith("/dashboard/login")


async def test_an_expired_or_unknown_session_is_refused(
    browser: httpx.AsyncClient, pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    await sign_in(browser, "coordinator")
    session_id = browser.cookies["tj_session"]
    assert (await browser.get("/dashboard/")).status_code == 200
    await pool.execute(
        "UPDATE dashboard_sessions SET expires_at = now() - interval '1 second' WHERE session_sha256 = $1",
        hashlib.sha256(session_id.encode()).digest(),
    )
    expired = await browser.get("/dashboard/")
    assert expired.status_code == 303 and expired.headers["location"].startswith("/dashboard/login")
    # The sign-in form asks again rather than passing the expired session on.
    assert (await browser.get("/dashboard/login")).status_code == 200
    # A session never outlives the JWT it was opened with (a tokens-file token has no expiry of its own).
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    signed = jwt.encode({"sub": "s", "role": "coordinator", "exp": soon}, "k" * 32, algorithm="HS256")
    assert token_expiry(signed) == soon and token_expiry(TOKENS["coordinator"].token) is None
    short = await open_session(pool, Principal(token_id="jwt:s", role="coordinator"), not_after=soon)
    expires_at = await pool.fetchval(
        "SELECT expires_at FROM dashboard_sessions WHERE session_sha256 = $1", hashlib.sha256(short.encode()).digest()
    )
    assert expires_at == soon
    # A made-up session id, or the API token itself as the cookie (what the cookie held before): nothing.
    for forged in ("x" * 43, TOKENS["coordinator"].token, "y" * 5000):
        async with replaying(browser, forged) as replayed:
            assert (await replayed.get("/dashboard/")).status_code == 303, forged[:10]


async def test_the_dashboard_is_danish_by_default_and_english_on_request(browser: httpx.AsyncClient) -> None:
    danish = await browser.get("/dashboard/login")
    assert '<html lang="da">' in danish.text and "Log ind" in danish.text and "Adgangsnøgle" in text_of(danish)
    english = await browser.get("/dashboard/login?lang=en")
    assert '<html lang="en">' in english.text and "Sign in" in english.text and "Access token" in english.text
    assert "tj_lang=en" in english.headers["set-cookie"]
    # Signed in: Danish until asked; the choice sticks (a cookie).
    await sign_in(browser, "coordinator")
    assert "Åbne eskaleringer" in text_of(await browser.get("/dashboard/"))
    assert "Open escalations" in (await browser.get("/dashboard/?lang=en")).text
    overview = await browser.get("/dashboard/")
    assert '<html lang="en">' in overview.text and "Open escalations" in overview.text
    back = await browser.get("/dashboard/?lang=da")
    assert '<html lang="da">' in back.text and "Åbne eskaleringer" in text_of(back)


async def test_a_leader_sees_only_their_talents_and_an_erased_talent_shows_as_erased(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort_id = await _cohort(api, time_env, unique)
    mine = await _journey(api, cohort_id, f"p-{unique}-a", "Astrid Bøgh", "p-leader")
    # Led by a leader of this test's own: other tests count the shared leaders' journeys.
    theirs = await _journey(api, cohort_id, f"p-{unique}-b", "Bjørn Dahl", f"p-leader-{unique}")
    try:
        # The coordinator sees the whole cohort: both talents, the funnel, the milestone plan and the timeline.
        await sign_in(browser, "coordinator")
        cohort = await browser.get(f"/dashboard/cohorts/{cohort_id}")
        assert cohort.status_code == 200, cohort.text
        assert "Astrid Bøgh" in text_of(cohort) and "Bjørn Dahl" in text_of(cohort)
        assert "<svg" in cohort.text and "Tragten" in cohort.text and "Søgt lederstilling" in text_of(cohort)
        assert 'data-state="enrolled"' in cohort.text
        page = await browser.get(f"/dashboard/journeys/{mine['journey_id']}")
        assert page.status_code == 200 and "Astrid Bøgh" in text_of(page)
        events = re.findall(r'data-event="(\w+)"', page.text)
        assert events[:4] == ["TalentNominated", "NominationApproved", "MilestoneMet", "TalentEnrolled"], events
        for said in ("Indstillet til hold", "Indstillingen er godkendt", "Milepæl nået: Beslutning om indstillingen"):
            assert said in text_of(page), said
        assert "<progress" in page.text and 'data-milestone="session:kickoff"' in page.text

        # The leader: their own talent only; another leader's talent is "not found", as in the API.
        await sign_in(browser, "leader")
        assert (await browser.get("/dashboard/")).headers["location"] == "/dashboard/leader"
        led = await browser.get("/dashboard/leader")
        assert led.status_code == 200 and "Astrid Bøgh" in text_of(led) and "Bjørn Dahl" not in text_of(led)
        assert f'data-journey-id="{mine["journey_id"]}"' in led.text
        assert f'data-journey-id="{theirs["journey_id"]}"' not in led.text
        assert (await browser.get(f"/dashboard/journeys/{mine['journey_id']}")).status_code == 200
        hidden = await browser.get(f"/dashboard/journeys/{theirs['journey_id']}")
        assert hidden.status_code == 404 and "Bjørn Dahl" not in text_of(hidden)
        assert (await browser.get(f"/dashboard/cohorts/{cohort_id}")).status_code == 403
        assert (await browser.get("/dashboard/escalations")).status_code == 403

        # A talent sees their own journeys only (this test's talents are not theirs).
        await sign_in(browser, "talent")
        own = await browser.get("/dashboard/")
        assert own.status_code == 200 and "Mine forløb" in text_of(own)
        assert "Astrid" not in text_of(own) and "Bjørn" not in text_of(own)
        assert (await browser.get(f"/dashboard/journeys/{mine['journey_id']}")).status_code == 404
        assert (await browser.get("/dashboard/leader")).status_code == 403

        # Erased: the history stays, the person is unreadable and shown as erased. (Withdrawn first: a
        # command with a text for an erased talent cannot store its text.)
        await _withdraw(api, time_env, mine["journey_id"])
        erased = await api.delete(f"/v1/people/p-{unique}-a", headers=auth("coordinator"))
        assert erased.status_code == 200, erased.text
        await sign_in(browser, "coordinator")
        after = await browser.get(f"/dashboard/journeys/{mine['journey_id']}")
        assert after.status_code == 200 and "Astrid" not in text_of(after)
        assert '<span class="erased" data-talent-name>slettet</span>' in after.text
        assert "PersonalDataErased" in after.text and "Persondata slettet: slettet" in text_of(after)
        assert (
            '<span class="erased" data-talent-name>erased</span>'
            in (await browser.get(f"/dashboard/journeys/{mine['journey_id']}?lang=en")).text
        )
    finally:
        await _withdraw(api, time_env, mine["journey_id"], theirs["journey_id"])


async def test_a_coordinator_acknowledges_and_resolves_from_the_page_and_a_forged_form_is_refused(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    cohort_id = await _cohort(api, time_env, unique)
    journey = await _journey(api, cohort_id, f"p-{unique}", "Mette Holm", "p-leader")
    journey_id = str(journey["journey_id"])
    try:
        kickoff = next(m for m in journey["milestones"] if m["key"] == KICKOFF)  # type: ignore[attr-defined]
        await advance_to(time_env, _first_rung(kickoff["due_at"]) + timedelta(minutes=1))
        await sign_in(browser, "coordinator")
        escalations = await browser.get(f"/dashboard/escalations?cohort_id={cohort_id}")
        for _ in range(100):
            if f'data-journey-id="{journey_id}" data-milestone="{KICKOFF}"' in escalations.text:
                break
            escalations = await browser.get(f"/dashboard/escalations?cohort_id={cohort_id}")
        assert f'data-journey-id="{journey_id}" data-milestone="{KICKOFF}"' in escalations.text, escalations.text
        kickoff_title = reference_programme().sessions[0].title
        assert "Mette Holm" in escalations.text and kickoff_title in text_of(escalations)
        form = {"journey_id": journey_id, "milestone": KICKOFF, "next": f"/dashboard/journeys/{journey_id}"}

        # Without the form's CSRF token, with a forged one, or from another site: refused, nothing sent.
        for data, headers in (
            (form, {}),
            ({**form, "csrf": "forged"}, {}),
            ({**form, "csrf": csrf_of(escalations)}, {"Origin": "https://evil.example"}),
        ):
            refused = await browser.post("/dashboard/escalations/acknowledge", data=data, headers=headers)
            assert refused.status_code == 403 and "Formularen er udløbet" in text_of(refused), refused.text
        # A leader may not act on escalations, even with their own valid form token.
        await sign_in(browser, "leader")
        leader_csrf = csrf_of(await browser.get("/dashboard/leader"))
        as_leader = await browser.post("/dashboard/escalations/acknowledge", data={**form, "csrf": leader_csrf})
        assert as_leader.status_code == 403
        status = (await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))).json()
        assert all(x["acknowledged_at"] is None for x in status["escalations"]), status

        # The coordinator acknowledges: back to the talent's page with a message; the escalation shows it.
        await sign_in(browser, "coordinator")
        csrf = csrf_of(await browser.get("/dashboard/escalations"))
        acknowledged = await browser.post(
            "/dashboard/escalations/acknowledge", data={**form, "csrf": csrf, "nonce": "a" * 32, "note": "Ringer."}
        )
        assert acknowledged.status_code == 303 and acknowledged.headers["location"] == form["next"]
        page = await browser.get(form["next"])
        assert "Eskaleringen er kvitteret." in page.text and 'data-acknowledged="true"' in page.text
        assert "EscalationAcknowledged" in page.text and f"Eskalering kvitteret: {kickoff_title}" in text_of(page)
        status = (await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))).json()
        assert {x["acknowledged_by"] for x in status["escalations"] if x["milestone"] == KICKOFF} == {"p-coord"}
        # The message is shown once.
        assert "Eskaleringen er kvitteret." not in (await browser.get(form["next"])).text

        # Resolving closes it; resolving again is a refusal on the page, never an error page.
        resolved = await browser.post("/dashboard/escalations/resolve", data={**form, "csrf": csrf})
        assert resolved.status_code == 303
        assert "Eskaleringen er afsluttet." in text_of(await browser.get(form["next"]))
        again = await browser.post("/dashboard/escalations/resolve", data={**form, "csrf": csrf})
        assert again.status_code == 303
        refusal = await browser.get(form["next"])
        assert refusal.status_code == 200
        assert "Handlingen blev afvist: eskaleringen er ikke længere åben" in text_of(refusal), refusal.text
        unknown = await browser.post(
            "/dashboard/escalations/acknowledge", data={**form, "milestone": "track:juggling", "csrf": csrf}
        )
        assert unknown.status_code == 303
        assert "forløbet har ikke den milepæl" in text_of(await browser.get(form["next"]))
        too_long = await browser.post(
            "/dashboard/escalations/acknowledge", data={**form, "milestone": "x" * 201, "csrf": csrf}
        )
        assert too_long.status_code == 422  # never a 500
    finally:
        await _withdraw(api, time_env, journey_id)


async def test_a_person_whose_record_will_not_decrypt_shows_as_unavailable_and_every_page_still_answers(
    api: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    time_env: WorkflowEnvironment,
    pool: asyncpg.Pool[asyncpg.Record],
    unique: str,
) -> None:
    cohort_id = await _cohort(api, time_env, unique)
    talent = f"p-{unique}-u"
    journey = await _journey(api, cohort_id, talent, "Ulla Ulæst", "p-leader")
    journey_id = str(journey["journey_id"])
    readable = await pool.fetchrow(
        "SELECT p.nonce, p.ciphertext, k.wrapped_key, k.kek_id FROM people p JOIN person_keys k USING (person_id) "
        "WHERE person_id = $1",
        talent,
    )
    assert readable is not None
    try:
        # The talent's record rewritten by another instance (another vault key) sharing this database,
        # as when two checkouts once used the same `talent_journey`.
        await pool.execute("DELETE FROM person_keys WHERE person_id = $1", talent)
        await PeopleVault(pool, os.urandom(32)).put_person(
            talent, PersonData(name="Ulla Ulæst", email="ulla@example.org")
        )
        kickoff = next(m for m in journey["milestones"] if m["key"] == KICKOFF)  # type: ignore[attr-defined]
        await advance_to(time_env, _first_rung(kickoff["due_at"]) + timedelta(minutes=1))
        await sign_in(browser, "coordinator")
        row = f'data-journey-id="{journey_id}" data-milestone="{KICKOFF}"'
        with capture_logs() as logs:
            mine = await browser.get(f"/dashboard/escalations?cohort_id={cohort_id}")
            for _ in range(100):
                if row in mine.text:
                    break
                mine = await browser.get(f"/dashboard/escalations?cohort_id={cohort_id}")
            assert mine.status_code == 200 and row in mine.text, mine.text
            assert '<span class="unreadable" data-unreadable>utilgængelig</span>' in text_of(mine)
            assert "Ulla" not in text_of(mine)
            pages = {
                "overview": await browser.get("/dashboard/"),
                "escalations": await browser.get("/dashboard/escalations"),
                "cohort": await browser.get(f"/dashboard/cohorts/{cohort_id}"),
                "journey": await browser.get(f"/dashboard/journeys/{journey_id}"),
            }
            for name, page in pages.items():
                assert page.status_code == 200, (name, page.text)
                assert "Ulla" not in text_of(page), name
            for name in ("escalations", "cohort", "journey"):
                assert "utilgængelig" in text_of(pages[name]), name
            # Unavailable is not erased: the talent's data is there but cannot be read.
            assert '<span class="unreadable" data-talent-name>utilgængelig</span>' in text_of(pages["journey"])
            assert "slettet" not in text_of(pages["journey"])
            english = await browser.get(f"/dashboard/journeys/{journey_id}?lang=en")
            assert '<span class="unreadable" data-talent-name>unavailable</span>' in english.text
            # Their leader's list answers too.
            await sign_in(browser, "leader")
            led = await browser.get("/dashboard/leader")
            assert led.status_code == 200 and f'data-journey-id="{journey_id}"' in led.text
            assert "utilgængelig" in text_of(led) and "Ulla" not in text_of(led)
        # Other tests' people written under other keys may be listed too: this talent's lines.
        unreadable = [e for e in logs if e["event"] == "vault_record_unreadable" and e.get("person_id") == talent]
        assert unreadable, [e["event"] for e in logs]
        # An error, with the person id only: no name, no address, no cause text.
        assert all(
            e == {"event": "vault_record_unreadable", "person_id": talent, "log_level": "error"} for e in unreadable
        )
    finally:
        # Readable again, so the withdrawal can store its reason under the talent's key.
        await pool.execute(
            "UPDATE people SET nonce = $2, ciphertext = $3 WHERE person_id = $1",
            talent,
            readable["nonce"],
            readable["ciphertext"],
        )
        await pool.execute(
            "UPDATE person_keys SET wrapped_key = $2, kek_id = $3 WHERE person_id = $1",
            talent,
            readable["wrapped_key"],
            readable["kek_id"],
        )
        await _withdraw(api, time_env, journey_id)
