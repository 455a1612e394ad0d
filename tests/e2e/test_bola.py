"""Object-level authorisation, attacked route by route (§8.1): every route of the app that takes a
journey, cohort or person id is called by people who must not reach that object, with a body that
passes validation. Out of scope answers exactly as an unknown id does, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator, TokenEntry
from domain import commands as c
from service import bootstrap
from store.vault import PeopleVault, PersonData
from tests.conftest import session_settings
from tests.e2e.conftest import VAULT_KEY
from tests.support import reference_cohort, reference_programme
from workflows.client import execute, journey_handle

# -- every route with an object id, classified ------------------------------------------------

READ, WRITE, PERSON, COHORT, DASHBOARD = "read", "write", "person", "cohort", "dashboard"
#: The dashboard's forms: each is attacked out of scope (404), without CSRF and as a refusal in
#: tests/e2e/test_self_service.py, form by form.
DASHBOARD_FORM = "dashboard_form"
#: (method, path) -> what the route does with the id in its path. A new route that takes a
#: journey, cohort or person id must be added here: the test fails until it is classified.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/journeys/{journey_id}"): READ,
    ("GET", "/v1/journeys/{journey_id}/events"): READ,
    ("POST", "/v1/journeys/{journey_id}/decision"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/attendance"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/tracks/{track_key}/submission"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/tracks/{track_key}/signoff"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/mentor-meetings"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/mentor-meetings/{held_on}/confirm"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/pause"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/resume"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/withdraw"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/outcome"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/escalations/{milestone}/acknowledge"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/escalations/{milestone}/resolve"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/nearest-leader"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/completion-override"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/readiness"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/sessions/{session_key}/debrief"): WRITE,
    ("POST", "/v1/journeys/{journey_id}/mentor-meetings/proposal"): WRITE,
    ("GET", "/v1/cohorts/{cohort_id}"): COHORT,
    ("GET", "/v1/cohorts/{cohort_id}/kpis"): COHORT,
    ("PATCH", "/v1/cohorts/{cohort_id}"): COHORT,
    ("POST", "/v1/cohorts/{cohort_id}/sessions/{session_key}/reschedule"): COHORT,
    ("POST", "/v1/cohorts/{cohort_id}/sessions/{session_key}/attendance"): COHORT,
    ("PUT", "/v1/people/{person_id}"): PERSON,
    ("DELETE", "/v1/people/{person_id}"): PERSON,
    ("POST", "/v1/people/{person_id}/calendar-feed"): PERSON,
    ("DELETE", "/v1/people/{person_id}/calendar-feed"): PERSON,
    ("GET", "/dashboard/journeys/{journey_id}"): DASHBOARD,
    ("GET", "/dashboard/cohorts/{cohort_id}"): DASHBOARD,
    ("POST", "/dashboard/journeys/{journey_id}/{form_name}"): DASHBOARD_FORM,
    ("POST", "/dashboard/cohorts/{cohort_id}/edit"): DASHBOARD_FORM,
    ("POST", "/dashboard/cohorts/{cohort_id}/sessions/{session_key}/{form_name}"): DASHBOARD_FORM,
    # The follow-up's one-click answer form (issue 14): no session, the signed link is the key; without
    # a valid signature a journey answers as an unknown one (tests/e2e/test_vacancies.py signs and
    # tampers). The vacancy routes take no journey, cohort or person id: role-checked there too.
    ("GET", "/dashboard/answer/{journey_id}"): DASHBOARD_FORM,
    ("POST", "/dashboard/answer/{journey_id}"): DASHBOARD_FORM,
}
_OBJECT_IDS = ("{journey_id}", "{cohort_id}", "{person_id}")

#: A body each route's model accepts: the attack must pass validation to reach the scope check.
BODIES: dict[str, dict[str, Any]] = {
    "decision": {"decision": "approve", "reason": "ok"},
    "attendance": {"session_key": "kickoff", "status": "attended"},
    "submission": {"reflection": "Jeg lærte noget."},
    "signoff": {"decision": "approve", "comment": "Fint."},
    "mentor-meetings": {"held_on": "2027-01-20", "notes": "Godt møde."},
    "confirm": {},
    "calendar-feed": {},
    "pause": {"reason": "orlov"},
    "resume": {},
    "withdraw": {"reason": "flyttet"},
    "outcome": {"applied_for_leader_post": True, "appointed": False, "on": "2027-11-01"},
    "acknowledge": {"note": "set"},
    "resolve": {"reason": "løst"},
    "{person_id}": {"name": "Ny Navn", "email": "ny@example.org"},
    "nearest-leader": {"nearest_leader": {"person_id": "p-bola-new", "name": "Ny", "email": "ny@example.org"}},
    "completion-override": {"result": "completed", "reason": "Alt er gjort."},
    "readiness": {"stage": "enrolment", "answer": "yes", "reason": "Jeg vil gerne."},
    "debrief": {"clarity": 3, "notes": "Lærerigt."},
    "proposal": {"starts_at": "2027-02-03T14:00:00+01:00"},
    "{cohort_id}": {"capacity": 30},
    "reschedule": {"starts_at": "2027-02-03T09:00:00+01:00", "reason": "Underviseren er syg."},
    # Routes whose last segment another route shares: by their whole path.
    "/v1/cohorts/{cohort_id}/sessions/{session_key}/attendance": {
        "records": [{"journey_id": "00000000-0000-4000-8000-000000000000", "status": "excused"}]
    },
}
PATH_VALUES = {
    "track_key": "lead-meeting",
    "held_on": "2027-01-20",
    "milestone": "session:kickoff",
    "session_key": "kickoff",
}


def _routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every (method, path) the app serves, included routers flattened."""
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            original = getattr(ctx, "original_route", ctx)
            for method in sorted(getattr(original, "methods", None) or ()):
                if method != "HEAD":
                    yield method, str(getattr(ctx, "path", ""))


def _body(path: str) -> dict[str, Any] | None:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return BODIES.get(path, BODIES.get(last))


# -- the cast ------------------------------------------------------------------------------------


@pytest.fixture
async def cast(
    time_env: WorkflowEnvironment,
    journey_worker: Worker,
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], FastAPI]]:
    """An API with a journey whose nearest leader changed, and a token for everyone around it."""
    people = {
        "coordinator": ("coordinator", f"p-coord-{unique}"),
        "hr": ("hr_system", None),
        "leader": ("leader", f"p-lead-{unique}"),
        "former_leader": ("leader", f"p-former-{unique}"),
        "leaders_leader": ("leader", f"p-boss-{unique}"),
        "other_leader": ("leader", f"p-other-{unique}"),
        "talent": ("talent", f"p-tal-{unique}"),
        "other_talent": ("talent", f"p-othertal-{unique}"),
    }
    entries = [TokenEntry(token=f"tok-{who}-{unique}", role=role, person_id=pid) for who, (role, pid) in people.items()]  # type: ignore[arg-type]
    resources = bootstrap.resources(
        session_settings(tmp_path),
        pool=pool,
        temporal=time_env.client,
        authenticator=Authenticator(entries),
        task_queue=journey_worker.task_queue,
    )
    app = create_app(resources)
    headers = {who: f"Bearer tok-{who}-{unique}" for who in people}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        programme = reference_programme().model_copy(update={"id": f"tnl-{unique}"})
        now = await time_env.get_current_time()
        cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=(now + timedelta(days=21)).date())
        coord = {"Authorization": headers["coordinator"]}
        for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
            created = await client.post(path, json=body.model_dump(mode="json"), headers=coord)
            assert created.status_code == 201, created.text
        nominated = await client.post(
            "/v1/journeys",
            json={
                "cohort_id": cohort.cohort_id,
                "motivation": "Stærk.",
                "talent": {"person_id": people["talent"][1], "name": "Tala", "email": "tala@example.org"},
                "nearest_leader": {"person_id": people["former_leader"][1], "name": "Fie", "email": "fie@example.org"},
                "leaders_leader": {"person_id": people["leaders_leader"][1], "name": "Bo", "email": "bo@example.org"},
            },
            headers={"Authorization": headers["hr"]},
        )
        assert nominated.status_code == 201, nominated.text
        journey_id = nominated.json()["journey_id"]
        approved = await client.post(f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=coord)
        assert approved.status_code == 200, approved.text
        await resources.vault.put_person(f"p-lead-{unique}", PersonData(name="Lea", email="lea@example.org"))
        await execute(
            journey_handle(time_env.client, journey_id),
            c.ChangeNearestLeader(
                actor_id=f"p-coord-{unique}",
                actor_role="coordinator",
                nearest_leader_id=f"p-lead-{unique}",
                leaders_leader_id=people["leaders_leader"][1],
            ),
        )
        ids = {"journey_id": journey_id, "cohort_id": cohort.cohort_id, "person_id": f"p-tal-{unique}"}
        pids = {f"pid:{who}": pid for who, (_, pid) in people.items() if pid}
        yield client, {**headers, **pids, **{f"id:{k}": v for k, v in ids.items()}}, app


async def _version(pool: asyncpg.Pool[asyncpg.Record], journey_id: str) -> int:
    return int(await pool.fetchval("SELECT version FROM journey_status WHERE journey_id = $1", journey_id))


def _problem(response: httpx.Response) -> tuple[int, Any]:
    """What a caller learns from a refusal: the status and the body (without per-request fields)."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.status_code, response.text
    if isinstance(body, dict):
        body.pop("instance", None)
    return response.status_code, body


# -- the attack ----------------------------------------------------------------------------------


async def test_every_route_with_an_object_id_is_classified(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI],
) -> None:
    _, _, app = cast
    served = {(m, p) for m, p in _routes(app) if any(x in p for x in _OBJECT_IDS)}
    unclassified = served - set(ROUTES)
    assert not unclassified, f"classify these routes in ROUTES: {sorted(unclassified)}"
    # And nothing classified has gone: the table stays the truth.
    assert set(ROUTES) <= served, sorted(set(ROUTES) - served)


@pytest.mark.parametrize("caller", ["other_leader", "other_talent", "former_leader", "leaders_leader", "hr"])
async def test_out_of_scope_calls_answer_as_an_unknown_id_and_change_nothing(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI], pool: asyncpg.Pool[asyncpg.Record], caller: str
) -> None:
    client, h, _ = cast
    journey_id = h["id:journey_id"]
    bearer = {"Authorization": h[caller]}
    before = await _version(pool, journey_id)
    checked = 0
    for (method, template), kind in sorted(ROUTES.items()):
        if kind in (DASHBOARD, DASHBOARD_FORM):
            continue  # the dashboard's pages: tested with a session in test_dashboard_pages_obey_the_same_scope
        values = {**PATH_VALUES, "journey_id": journey_id, "cohort_id": h["id:cohort_id"]}
        values["person_id"] = h["id:person_id"]
        unknown = {**values, "journey_id": "00000000-0000-4000-8000-000000000000", "cohort_id": "c-nobody"}
        unknown["person_id"] = "p-nobody"
        body = _body(template) if method in ("POST", "PUT", "PATCH") else None
        real = await client.request(method, template.format(**values), json=body, headers=bearer)
        fake = await client.request(method, template.format(**unknown), json=body, headers=bearer)
        where = (caller, method, template, real.status_code, real.text[:300])
        checked += 1
        if caller == "hr" and kind in (READ, WRITE):
            # HR systems see every journey (§8.1): their refusals are by role, never by scope.
            assert real.status_code != 404, where
            continue
        if caller == "leaders_leader" and kind == READ:
            assert real.status_code == 200, where  # read-only sight of their line
            continue
        if caller == "leaders_leader" and kind == WRITE:
            assert real.status_code == 403, where  # sees it, may not act
            continue
        if caller == "hr" and (method, template) == ("PUT", "/v1/people/{person_id}"):
            continue  # HR keeps people's data: allowed (tests/e2e/test_people.py)
        assert real.status_code in (403, 404), where
        assert _problem(real) == _problem(fake), (where, fake.text[:300])
    assert checked == len([k for k in ROUTES.values() if k not in (DASHBOARD, DASHBOARD_FORM)])
    if caller != "hr":
        assert await _version(pool, journey_id) == before, caller


async def test_the_current_people_see_the_journey_and_the_former_leader_no_longer(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI],
) -> None:
    client, h, _ = cast
    journey_id = h["id:journey_id"]

    def mine(who: str) -> dict[str, str]:
        return {"Authorization": h[who]}

    for who, status in (("leader", 200), ("talent", 200), ("leaders_leader", 200), ("former_leader", 404)):
        got = await client.get(f"/v1/journeys/{journey_id}", headers=mine(who))
        assert got.status_code == status, (who, got.text)
        listed = (await client.get("/v1/journeys", params={"limit": 200}, headers=mine(who))).json()["items"]
        assert (journey_id in [j["journey_id"] for j in listed]) == (status == 200), who
    # The history still names what the former leader did: the nomination's leader.
    events = (await client.get(f"/v1/journeys/{journey_id}/events", headers=mine("leader"))).json()["items"]
    assert events[0]["data"]["nearest_leader_id"].startswith("p-former-")


async def test_a_nomination_of_a_talent_with_an_open_journey_reveals_it_only_to_who_may_see_it(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI], pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    client, h, _ = cast
    journey_id = h["id:journey_id"]
    vault = PeopleVault(pool, VAULT_KEY)
    talent_id = h["id:person_id"]
    stored_before = await vault.get_person(talent_id)

    def nomination(leader: str) -> dict[str, Any]:
        return {
            "cohort_id": h["id:cohort_id"],
            "motivation": "Igen.",
            "talent": {"person_id": talent_id, "name": "Someone Else", "email": "attacker@example.org"},
            "nearest_leader": {"person_id": leader, "name": "Me", "email": "me@example.org"},
        }

    for who in ("other_leader", "former_leader"):
        refused = await client.post("/v1/journeys", json=nomination(h[f"pid:{who}"]), headers={"Authorization": h[who]})
        assert refused.status_code == 409, (who, refused.text)
        assert refused.json()["code"] == "journey_exists"
        assert journey_id not in refused.text and "state" not in refused.json()
    seen = await client.post("/v1/journeys", json=nomination(h["pid:leader"]), headers={"Authorization": h["leader"]})
    assert seen.status_code == 200 and seen.json()["journey_id"] == journey_id, seen.text
    # §8.2: naming a stored person with other data changes nothing of them.
    assert await vault.get_person(talent_id) == stored_before


async def test_a_leaders_leader_sees_the_escalations_that_reached_them_and_no_others(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI],
) -> None:
    client, h, _ = cast
    mine = await client.get("/v1/escalations", headers={"Authorization": h["leaders_leader"]})
    assert mine.status_code == 200, mine.text
    assert all(x["recipient_role"] == "leaders_leader" for x in mine.json()["items"])
    assert {x["journey_id"] for x in mine.json()["items"]} <= {h["id:journey_id"]}
    assert (await client.get("/v1/escalations", headers={"Authorization": h["talent"]})).status_code == 403


def test_bodies_cover_every_write_route() -> None:
    for (method, template), kind in ROUTES.items():
        if method in ("POST", "PUT", "PATCH") and kind not in (DASHBOARD, DASHBOARD_FORM):
            assert _body(template) is not None, template
    assert date.fromisoformat(PATH_VALUES["held_on"])


@pytest.mark.parametrize("caller", ["other_leader", "other_talent", "former_leader", "leaders_leader"])
async def test_dashboard_pages_obey_the_same_scope(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI], caller: str
) -> None:
    _, h, app = cast
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://dashboard.test") as browser:
        token = h[caller].removeprefix("Bearer ")
        signed_in = await browser.post("/dashboard/login", data={"token": token, "next": "/dashboard/"})
        assert signed_in.status_code == 303, signed_in.text
        for (method, template), kind in sorted(ROUTES.items()):
            if kind != DASHBOARD:
                continue
            real = await browser.request(
                method, template.format(journey_id=h["id:journey_id"], cohort_id=h["id:cohort_id"])
            )
            fake = await browser.request(
                method, template.format(journey_id="00000000-0000-4000-8000-000000000000", cohort_id="c-nobody")
            )
            where = (caller, template, real.status_code)
            if caller == "leaders_leader" and "{journey_id}" in template:
                assert real.status_code == 200, where  # their line, read-only
                assert 'action="/dashboard/escalations/' not in real.text, where  # nothing to act on
                continue
            assert real.status_code in (403, 404), where
            # The same page as for an unknown id, but for the id itself (the page links to its own URL).
            unknown = {h["id:journey_id"]: "00000000-0000-4000-8000-000000000000", h["id:cohort_id"]: "c-nobody"}
            page = real.text
            for mine, theirs in unknown.items():
                page = page.replace(mine, theirs)
            assert (real.status_code, page) == (fake.status_code, fake.text), where


async def test_a_refused_command_stores_none_of_its_free_texts(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI], pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    client, h, _ = cast
    journey_id, talent = h["id:journey_id"], h["pid:talent"]

    async def texts() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM person_texts WHERE person_id = $1", talent))

    before, version = await texts(), await _version(pool, journey_id)
    # A sign-off of a track never submitted (409), a reflection on an unknown track (422), a
    # former leader's note on the journey (404): each checked before its text is stored.
    for who, path, body, status in (
        ("leader", "tracks/lead-meeting/signoff", {"decision": "return", "comment": "Nej."}, 409),
        ("talent", "tracks/no-such-track/submission", {"reflection": "Tekst."}, 422),
        ("former_leader", "mentor-meetings", {"held_on": "2027-01-20", "notes": "Noter."}, 404),
    ):
        refused = await client.post(f"/v1/journeys/{journey_id}/{path}", json=body, headers={"Authorization": h[who]})
        assert refused.status_code == status, (who, path, refused.text)
    assert (await texts(), await _version(pool, journey_id)) == (before, version)
    # An accepted one stores its text once, even when retried with its Idempotency-Key.
    submit = {"Authorization": h["talent"], "Idempotency-Key": f"reflection-{journey_id}"}
    for _ in range(2):
        accepted = await client.post(
            f"/v1/journeys/{journey_id}/tracks/lead-meeting/submission",
            json={"reflection": "Jeg lærte."},
            headers=submit,
        )
        assert accepted.status_code == 200, accepted.text
    assert await texts() == before + 1


async def test_a_repeated_meeting_with_notes_changes_nothing_and_stores_no_second_text(
    cast: tuple[httpx.AsyncClient, dict[str, str], FastAPI],
    pool: asyncpg.Pool[asyncpg.Record],
    time_env: WorkflowEnvironment,
) -> None:
    client, h, _ = cast
    journey_id, talent = h["id:journey_id"], h["pid:talent"]
    today = (await time_env.get_current_time()).date().isoformat()
    leader = {"Authorization": h["leader"]}
    first = await client.post(
        f"/v1/journeys/{journey_id}/mentor-meetings", json={"held_on": today, "notes": "Et"}, headers=leader
    )
    assert first.status_code == 200 and first.json()["events"], first.text
    texts = await pool.fetchval("SELECT count(*) FROM person_texts WHERE person_id = $1", talent)
    version = await _version(pool, journey_id)
    again = await client.post(
        f"/v1/journeys/{journey_id}/mentor-meetings", json={"held_on": today, "notes": "To"}, headers=leader
    )
    assert again.status_code == 200 and again.json()["events"] == [], again.text
    assert await pool.fetchval("SELECT count(*) FROM person_texts WHERE person_id = $1", talent) == texts
    assert await _version(pool, journey_id) == version
