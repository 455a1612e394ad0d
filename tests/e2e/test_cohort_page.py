"""The dashboard's cohort page at scale (issue 15): its journeys read from columns, paged, and its
tiles counting the whole cohort; the narrow reads equal what the status documents say."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest

from api.dashboard import pages
from bench.scale import instance, templates
from bench.support import reference_cohort, reference_programme
from domain import events as e
from store.catalog import Catalog
from store.eventstore import EventStore
from store.views import cohorts as cohorts_view
from store.views import escalations as escalations_view
from store.views import journeys as journeys_view
from tests.e2e.test_dashboard import browser, sign_in  # noqa: F401 - the fixture

META = e.EventMetadata(actor="test", correlation_id="cohort-page")


async def _seed(pool: asyncpg.Pool, unique: str, copies: int = 2) -> str:
    """`copies` journeys of every kind a live programme holds (bench/scale.py's), in a cohort of their own."""
    programme = reference_programme()
    catalog = Catalog(pool)
    await catalog.publish(programme)
    cohort = reference_cohort(programme, cohort_id=f"cp-{unique}").model_copy(update={"capacity": 100})
    await catalog.create_cohort(cohort)
    store = EventStore(pool)
    for k, (_, _, history) in enumerate(templates()):
        for copy in range(copies):
            journey_id = f"cp-{unique}-{k:02d}-{copy}"
            await store.append(
                e.stream_id_for(journey_id), 0, instance(history, journey_id, 2 * k + copy, cohort), metadata=META
            )
    return cohort.cohort_id


async def test_the_narrow_reads_equal_the_status_documents(pool: asyncpg.Pool, unique: str) -> None:
    cohort_id = await _seed(pool, unique)
    statuses = await journeys_view.of_cohort(pool, cohort_id, limit=1000)
    assert len(statuses) >= 20
    seen: list[cohorts_view.CohortJourney] = []
    offset = 0
    while True:
        page = await cohorts_view.journeys(pool, cohort_id, offset=offset, limit=7)
        assert page.total == len(statuses)
        assert page.at_risk == sum(s.at_risk for s in statuses)
        if not page.rows:
            break
        seen += page.rows
        offset += len(page.rows)
    by_id = {s.journey_id: s for s in statuses}
    assert [j.journey_id for j in seen] == sorted(by_id)
    for j in seen:
        s = by_id[j.journey_id]
        assert (j.talent_id, j.nearest_leader_id, j.state, j.at_risk) == (
            s.talent_id,
            s.nearest_leader_id,
            s.state,
            s.at_risk,
        )
        assert (j.at_risk_reasons, j.next_deadline, j.progress) == (s.at_risk_reasons, s.next_deadline, s.progress)
    by_state = await cohorts_view.journeys(pool, cohort_id, order="state", limit=1000)
    assert [j.journey_id for j in by_state.rows] == [
        s.journey_id for s in sorted(statuses, key=lambda s: (s.state, s.journey_id))
    ]
    at_risk = await cohorts_view.at_risk_journeys(pool, cohort_id)
    assert [(j.journey_id, j.at_risk_reasons) for j in at_risk] == [
        (s.journey_id, s.at_risk_reasons) for s in statuses if s.at_risk
    ]
    assert await cohorts_view.open_ladders(pool, cohort_id) == await escalations_view.open_ladders(pool, cohort_id)
    summary = await cohorts_view.summary(pool, cohort_id)
    assert [(a.journey_id, a.reasons) for a in summary.at_risk] == [(j.journey_id, j.at_risk_reasons) for j in at_risk]
    assert summary.open_escalations == sum(len(s.ladders) for s in statuses)
    # Past the last page: no rows, the counts still.
    past = await cohorts_view.journeys(pool, cohort_id, offset=10_000, limit=7)
    assert (past.rows, past.total, past.at_risk) == ((), len(statuses), page.at_risk)


async def test_the_page_counts_the_whole_cohort_and_pages_its_journeys(
    browser: httpx.AsyncClient,  # noqa: F811 - the fixture
    pool: asyncpg.Pool,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cohort_id = await _seed(pool, unique)
    statuses = await journeys_view.of_cohort(pool, cohort_id, limit=1000)
    monkeypatch.setattr(pages, "COHORT_PAGE", 5)
    await sign_in(browser, "coordinator")
    first = await browser.get(f"/dashboard/cohorts/{cohort_id}?lang=en")
    assert first.status_code == 200, first.text
    text = first.text
    assert re.search(r'data-count="journeys">(\d+)<', text).group(1) == str(len(statuses))  # type: ignore[union-attr]
    at_risk = sum(s.at_risk for s in statuses)
    assert re.search(r'data-count="at-risk">(\d+)<', text).group(1) == str(at_risk)  # type: ignore[union-attr]
    table = text.split('<table class="list journeys">', 1)[1].split("</table>", 1)[0]
    ids = sorted(s.journey_id for s in statuses)
    assert re.findall(r'data-journey-id="([^"]+)"', table) == ids[:5]
    assert 'rel="next"' in text and 'rel="prev"' not in text
    second = await browser.get(f"/dashboard/cohorts/{cohort_id}?order=id&offset=5")
    table = second.text.split('<table class="list journeys">', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-journey-id="([^"]+)"', table) == ids[5:10]
    assert 'rel="prev"' in second.text
    by_state = await browser.get(f"/dashboard/cohorts/{cohort_id}?order=state")
    table = by_state.text.split('<table class="list journeys">', 1)[1].split("</table>", 1)[0]
    expected = [s.journey_id for s in sorted(statuses, key=lambda s: (s.state, s.journey_id))][:5]
    assert re.findall(r'data-journey-id="([^"]+)"', table) == expected
    for bad in ("?order=name", "?offset=-1", "?offset=x"):
        assert (await browser.get(f"/dashboard/cohorts/{cohort_id}{bad}")).status_code == 422
