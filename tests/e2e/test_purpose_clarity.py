"""The clarity KPIs on the purpose page and in the API, and the clarity forms on the dashboard
(issue 14, rules 4): the talent answers the readiness question and debriefs a lab, the nearest
leader proposes the next mentor meeting, each through a CSRF-checked form that sends what the API
route sends; coordinators see the KPIs per cohort (a table, a movement matrix, a chart, the
definitions in Danish and English) and download them in the CSV; HR reads them from the API."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.clarity import DEFINITIONS
from infra.present import zone_of
from tests.e2e.conftest import auth
from tests.e2e.test_dashboard import browser, csrf_of, sign_in
from tests.integration.test_cli_operate import talent
from tests.support import compressed_cohort, compressed_programme
from tests.workflows.journeys import advance_to

__all__ = ["browser", "talent"]  # the fixtures, used here


async def _cohort(api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str) -> tuple[Any, Any]:
    programme = compressed_programme().model_copy(update={"id": f"pc-{unique}"})
    start = await time_env.get_current_time() + timedelta(minutes=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"pc-{unique}").model_copy(
        update={"coordinator_id": "p-coord"}
    )
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text
    return programme, cohort


async def _enrol(api: httpx.AsyncClient, cohort_id: str, talent_id: str) -> str:
    nomination = {
        "cohort_id": cohort_id,
        "motivation": "Tager ansvar.",
        "talent": {"person_id": talent_id, "name": "Mette", "email": f"{talent_id}@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    nominated = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert nominated.status_code == 201, nominated.text
    journey_id: str = nominated.json()["journey_id"]
    approved = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert approved.status_code == 200, approved.text
    return journey_id


async def _withdraw(api: httpx.AsyncClient, *journey_ids: str) -> None:
    for journey_id in journey_ids:
        await api.post(f"/v1/journeys/{journey_id}/withdraw", json={"reason": "slut"}, headers=auth("coordinator"))


async def _status(api: httpx.AsyncClient, journey_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get(f"/v1/journeys/{journey_id}", headers=auth("coordinator"))).json()
    return found


def _form(page: httpx.Response, name: str) -> str | None:
    found = re.search(rf'<form[^>]*data-form="{name}".*?</form>', page.text, re.S)
    return found.group(0) if found else None


async def test_the_talent_and_the_leader_act_on_clarity_from_the_dashboard(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme, cohort = await _cohort(api, time_env, unique)
    journey_id = await _enrol(api, cohort.cohort_id, "p-talent")
    path = f"/dashboard/journeys/{journey_id}"

    # The talent: the readiness question of the open stage, as a labelled form; no proposal form.
    await sign_in(browser, "talent", path)
    page = await browser.get(path)
    readiness = _form(page, "readiness")
    assert page.status_code == 200 and readiness is not None, page.text
    assert 'data-stage="enrolment"' in readiness and 'for="readiness-reason"' in readiness
    assert _form(page, "proposal") is None and _form(page, "debrief") is None
    data = {"csrf": csrf_of(page), "stage": "enrolment", "answer": "not_now", "reason": "Først mere erfaring."}
    forged = await browser.post(f"{path}/readiness", data={**data, "csrf": "forged"})
    assert forged.status_code == 403
    assert (await _status(api, journey_id))["readiness"]["enrolment"] is None
    sent = await browser.post(f"{path}/readiness", data={**data, "next": path})
    assert sent.status_code == 303 and sent.headers["location"] == path, sent.text
    assert (await _status(api, journey_id))["readiness"]["enrolment"] == "not_now"
    shown = await browser.get(path)
    assert 'value="not_now" required aria-describedby="readiness-hint" checked' in shown.text
    assert "Dit svar er gemt." in shown.text
    # A stage that is not open is refused with the domain's reason; nothing changes.
    await browser.post(f"{path}/readiness", data={**data, "stage": "evaluation", "answer": "yes"})
    refused = await browser.get(path)
    assert "spørgsmålet er ikke åbent nu" in refused.text
    assert (await _status(api, journey_id))["readiness"]["evaluation"] is None

    # Once the first dilemma lab was held (its roll call taken), the talent debriefs it from the page.
    lab = next(s for s in cohort.sessions if s.key == "dilemma-lab-1")
    await advance_to(time_env, lab.starts_at + timedelta(seconds=5))
    attended = await api.post(
        f"/v1/journeys/{journey_id}/attendance",
        json={"session_key": lab.key, "status": "attended"},
        headers=auth("coordinator"),
    )
    assert attended.status_code == 200, attended.text
    page = await browser.get(f"{path}?lang=en")
    debrief = _form(page, "debrief")
    assert debrief is not None and 'value="dilemma-lab-1"' in debrief and 'for="debrief-clarity"' in debrief
    sent = await browser.post(
        f"{path}/debrief",
        data={"csrf": csrf_of(page), "session_key": "dilemma-lab-1", "clarity": "4", "notes": "Tydeligt."},
    )
    assert sent.status_code == 303, sent.text
    assert (await _status(api, journey_id))["debriefs"] == [{"session_key": "dilemma-lab-1", "clarity": 4}]

    # The nearest leader: proposes the next meeting in the programme's local time; no readiness form.
    await sign_in(browser, "leader", path)
    page = await browser.get(path)
    proposal = _form(page, "proposal")
    assert proposal is not None and 'for="proposal-starts-at"' in proposal, page.text
    assert _form(page, "readiness") is None
    zone = zone_of(programme)
    soon = await time_env.get_current_time() + timedelta(minutes=2)
    starts_at = soon.astimezone(zone).replace(second=0, microsecond=0)
    sent = await browser.post(
        f"{path}/proposal", data={"csrf": csrf_of(page), "starts_at": starts_at.strftime("%Y-%m-%dT%H:%M")}
    )
    assert sent.status_code == 303, sent.text
    appointment = (await _status(api, journey_id))["appointment"]
    assert appointment is not None and datetime.fromisoformat(appointment["starts_at"]) == starts_at, appointment
    assert "data-appointment=" in (await browser.get(path)).text
    # A leader may not answer for the talent: the form's route refuses the role.
    forbidden = await browser.post(f"{path}/readiness", data={**data, "csrf": csrf_of(page)})
    assert forbidden.status_code == 403
    # Another line's leader: the journey is out of scope, answered as an unknown one; nothing changes.
    await sign_in(browser, "other_leader")
    home = await browser.get("/dashboard/leader")
    later = {"csrf": csrf_of(home), "starts_at": (starts_at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")}
    assert (await browser.post(f"{path}/proposal", data=later)).status_code == 404
    assert (await browser.post(f"/dashboard/journeys/j-none-{unique}/proposal", data=later)).status_code == 404
    assert (await _status(api, journey_id))["appointment"] == appointment
    await _withdraw(api, journey_id)


async def test_the_clarity_kpis_per_cohort_on_the_purpose_page_in_the_csv_and_for_hr(
    api: httpx.AsyncClient, browser: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    programme, cohort = await _cohort(api, time_env, unique)
    first = await _enrol(api, cohort.cohort_id, "p-talent")
    second = await _enrol(api, cohort.cohort_id, f"p-second-{unique}")
    for journey_id, answer in ((first, "not_now"), (second, "yes")):
        answered = await api.post(
            f"/v1/journeys/{journey_id}/readiness",
            json={"stage": "enrolment", "answer": answer},
            headers=auth("coordinator"),
        )
        assert answered.status_code == 200, answered.text

    # HR reads the KPIs from the API; leaders and talents may not; an unknown programme is 404.
    url = f"/v1/programmes/{programme.id}/clarity"
    kpis = await api.get(url, headers=auth("hr"))
    assert kpis.status_code == 200, kpis.text
    body = kpis.json()
    assert [c["cohort_id"] for c in body["cohorts"]] == [cohort.cohort_id, "all"]
    mine = body["cohorts"][0]
    assert (mine["talents"], mine["completed"], mine["clarified"], mine["not_clarified"], mine["unknown"]) == (
        2,
        0,
        0,
        0,
        2,
    )
    assert mine["clarified_share"] is None  # fewer than five talents: counts only
    assert mine["movement"]["not_now"]["unknown"] == 1 and mine["movement"]["yes"]["unknown"] == 1
    assert body["definitions"] == dict(DEFINITIONS)
    for who in ("leader", "talent"):
        assert (await api.get(url, headers=auth(who))).status_code == 403
    assert (await api.get(f"/v1/programmes/none-{unique}/clarity", headers=auth("hr"))).status_code == 404
    assert "/v1/programmes/{programme_id}/clarity" in (await api.get("/openapi.json")).json()["paths"]

    # The coordinator finds the purpose page from the dashboard's home.
    purpose = f"/dashboard/programmes/{programme.id}/purpose"
    await sign_in(browser, "coordinator")
    home = await browser.get("/dashboard/")
    assert f'href="{purpose}"' in home.text

    for lang, words in (("da", ("Afklaring", "Ikke nu", "Alle hold")), ("en", ("Clarity", "Not now", "All cohorts"))):
        page = await browser.get(f"{purpose}?lang={lang}")
        assert page.status_code == 200, page.text
        section = page.text[page.text.index('data-slot="clarity"') : page.text.index('id="recruitment"')]
        assert all(word in section for word in words), (lang, section)
        row = re.search(rf'<tr data-cohort="{cohort.cohort_id}">(.*?)</tr>', section, re.S)
        assert row is not None
        assert '<td class="num" data-kpi="talents">2</td>' in row.group(1)
        assert '<td class="num" data-kpi="unknown">2</td>' in row.group(1)
        matrix = re.search(
            rf'<table[^>]*data-table="movement" data-cohort="{cohort.cohort_id}">(.*?)</table>', section, re.S
        )
        assert matrix is not None and "<caption>" in matrix.group(1) and 'scope="row"' in matrix.group(1)
        cells = re.findall(r'<tr data-from="(\w+)">.*?</tr>', matrix.group(1), re.S)
        assert cells == ["yes", "not_now", "no", "unknown"]
        assert re.search(r'data-from="not_now">.*?data-to="unknown">1<', matrix.group(1), re.S)
        assert 'data-chart="clarity"' in section and 'role="img"' in section
        assert 'data-clarity-definition="clarified"' in section
    assert DEFINITIONS["clarified"].split("'")[0] in page.text  # English, the domain's own wording

    exported = await browser.get(f"{purpose}.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["section", "group", "kpi", "value"]
    clarity = {(r[1], r[2]): r[3] for r in rows if r[0] == "clarity"}
    assert clarity[(cohort.cohort_id, "talents")] == "2" and clarity[("all", "talents")] == "2"
    assert clarity[(cohort.cohort_id, "clarified_share")] == ""
    assert clarity[(cohort.cohort_id, "movement:not_now>unknown")] == "1"
    assert clarity[(cohort.cohort_id, "movement:yes>yes")] == "0"

    # Leaders and talents do not see the page.
    for who in ("leader", "talent"):
        await sign_in(browser, who)
        assert (await browser.get(purpose)).status_code == 403
    await _withdraw(api, first, second)


@pytest.mark.parametrize("lang", ["da", "en"])
async def test_every_clarity_definition_has_its_danish_wording(lang: str) -> None:
    from api.dashboard.purpose import PageTexts

    texts = PageTexts(lang)
    assert set(texts.clarity_definitions) == set(DEFINITIONS)
    assert all(texts(f"k_{kpi}") != f"k_{kpi}" for kpi in DEFINITIONS)


async def test_the_cli_answers_readiness_debriefs_and_proposes_as_the_api_does(
    api: httpx.AsyncClient,
    talent: Any,
    time_env: WorkflowEnvironment,
    unique: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, cohort = await _cohort(api, time_env, unique)
    journey_id = await _enrol(api, cohort.cohort_id, f"p-cli-{unique}")

    async def run(*args: str) -> tuple[int, dict[str, Any] | None, str]:
        code, out, err = await talent("journey", *args, capsys=capsys)
        return code, json.loads(out) if code == 0 else None, err

    code, result, err = await run("readiness", journey_id, "enrolment", "no", "--reason", "Ikke for mig.")
    assert code == 0 and result is not None, err
    assert result["events"] == ["ReadinessAssessed"] and result["readiness"]["enrolment"] == "no"
    code, result, _ = await run("readiness", journey_id, "enrolment", "no")
    assert code == 0 and result is not None and result["events"] == []
    code, _, err = await run("readiness", journey_id, "evaluation", "yes")
    assert code == 1 and "(stage_not_open)" in err

    lab = next(s for s in cohort.sessions if s.key == "dilemma-lab-1")
    code, _, err = await run("debrief", journey_id, lab.key, "--clarity", "5")
    assert code == 1 and "(session_not_held)" in err
    await advance_to(time_env, lab.starts_at + timedelta(seconds=5))
    code, result, err = await run("debrief", journey_id, lab.key, "--clarity", "5", "--notes", "Klart nu.")
    assert code == 0 and result is not None, err
    assert result["debriefs"] == [{"session_key": lab.key, "clarity": 5}]
    code, _, err = await run("debrief", journey_id, lab.key, "--clarity", "9")
    assert code == 1 and "clarity" in err

    starts_at = (await time_env.get_current_time() + timedelta(minutes=2)).replace(microsecond=0)
    code, result, err = await run("propose-meeting", journey_id, starts_at.isoformat())
    assert code == 0 and result is not None, err
    assert result["events"] == ["MentorMeetingProposed"]
    assert datetime.fromisoformat(result["appointment"]["starts_at"]) == starts_at
    code, _, err = await run("propose-meeting", journey_id, "2027-01-01T10:00")
    assert code == 1 and "starts_at" in err
    await _withdraw(api, journey_id)
