"""The dashboard's pages: home, a leader's talents and line, nominating, a cohort, the escalations, a journey."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from api.access import touched
from api.dashboard import charts, views
from api.dashboard.charts import Series
from api.dashboard.clarity_forms import clarity_forms
from api.dashboard.present import Presenter
from api.dashboard.render import (
    current_viewer,
    error_page,
    new_nonce,
    page,
    redirect,
    render,
    viewer_name,
)
from api.dashboard.session import (
    Viewer,
    language,
)
from api.deps import Deps, can_see
from domain.events import stream_id_for
from domain.policy import RUNNING_STATES
from store.views import cohorts as cohorts_view
from store.views import journeys as journeys_view
from store.views import kpis as kpis_view

router = APIRouter(prefix="/dashboard", include_in_schema=False)

#: Rows of a list on the cohort page before "show all".
SHOWN = 15
#: Journeys a page of the cohort page's journey table lists.
COHORT_PAGE = 100

# -- pages ---------------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, resources: Deps) -> Response:
    """Coordinators: the cohorts and the open escalations. Leaders: their talents. Talents: their journeys."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        if viewer.role == "leader":
            # The language asked for travels with the redirect.
            lang = request.query_params.get("lang")
            return redirect("/dashboard/leader" + (f"?{urlencode({'lang': lang})}" if lang else ""))
        name = await viewer_name(viewer, p)
        if viewer.role == "talent":
            rows = await views.journey_lines(resources, viewer, p)
            return render(
                request, "mine.html", viewer.texts, viewer=viewer, viewer_name=name, journeys=rows, leader=False
            )
        cohort_rows = await cohorts_view.cohorts(resources.pool)
        escalations = await views.open_escalations(resources, p, None)
        return render(
            request,
            "home.html",
            viewer.texts,
            viewer=viewer,
            viewer_name=name,
            cohorts=cohort_rows,
            escalations=escalations[:10],
            escalations_total=len(escalations),
            at_risk_total=sum(r.at_risk for r in cohort_rows),
            p=p,
            next_url="/dashboard/",
            nonce=new_nonce,
        )

    return await page(request, resources, build, roles=("coordinator", "leader", "talent"))


@router.get("/leader")
async def leader_page(request: Request, resources: Deps) -> Response:
    """A leader's talents: what each is waiting on, and their next mentor meeting."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        name = await viewer_name(viewer, p)
        rows = await views.journey_lines(resources, viewer, p)
        me = viewer.principal.person_id
        # A leader's leader follows their line read-only (§8.1): apart from the talents they lead.
        led = [j for j in rows if j.row.nearest_leader_id == me]
        line = [j for j in rows if j.row.nearest_leader_id != me]
        reached = await views.reached_escalations(resources, viewer, p, line)
        return render(
            request,
            "mine.html",
            viewer.texts,
            viewer=viewer,
            viewer_name=name,
            journeys=led,
            line=line,
            reached=reached,
            leader=True,
            p=p,
        )

    return await page(request, resources, build, roles=("leader",))


@router.get("/nominate")
async def nominate_page(request: Request, resources: Deps) -> Response:
    """A leader's nomination form: the talent, the motivation, and a cohort that still takes nominations."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        name = await viewer_name(viewer, p)
        return render(
            request,
            "nominate.html",
            viewer.texts,
            viewer=viewer,
            viewer_name=name,
            cohorts=await views.open_cohorts(resources, p),
        )

    return await page(request, resources, build, roles=("leader",))


@router.get("/cohorts/{cohort_id}")
async def cohort_page(
    request: Request,
    resources: Deps,
    cohort_id: str,
    order: Literal["id", "state"] = "id",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """A cohort: the funnel, counts by state, at-risk journeys, this week's deadlines, escalations, KPIs.

    The journeys table is paged (`COHORT_PAGE` a page, in `order`); the tiles count the whole cohort.
    """

    async def build(viewer: Viewer, p: Presenter) -> Response:
        t = viewer.texts
        cohort = await resources.catalog.cohort(cohort_id)
        if cohort is None:
            return error_page(request, t, viewer, 404, "not_found", "not_found_text")
        programme = await p.programme(cohort.programme_id, cohort.programme_version)
        zone = p.zone(programme)
        listed = await cohorts_view.journeys(resources.pool, cohort_id, order=order, offset=offset, limit=COHORT_PAGE)
        journeys = list(listed.rows)
        touched(journeys=[j.journey_id for j in journeys])
        at_risk = await cohorts_view.at_risk_journeys(resources.pool, cohort_id)
        deadlines = await cohorts_view.deadlines(resources.pool, cohort_id, p.now, p.now + timedelta(days=7))
        await p.load_people(
            [viewer.principal.person_id]
            + [j.talent_id for j in journeys]
            + [j.nearest_leader_id for j in journeys]
            + [j.talent_id for j in at_risk]
            + [d.talent_id for d in deadlines]
        )
        report = await kpis_view.cohort_report(resources.pool, cohort_id, as_of=p.now)
        kpis, funnel = report if report is not None else (None, None)
        stages = funnel.model_dump() if funnel is not None else {}
        funnel_chart = charts.bar_chart(
            "", [(t(f"funnel_{stage}"), [(Series("", "c-main"), n)], None) for stage, n in stages.items()]
        )
        # The running ladders as `views.open_escalations` presents them, their ladders read alone.
        ladders = await cohorts_view.open_ladders(resources.pool, cohort_id)
        touched(journeys=[x.journey_id for x in ladders])
        await p.load_people([x.talent_id for x in ladders] + [x.ladder.acknowledged_by for x in ladders])
        escalations = [
            p.open_escalation(
                x.journey_id, x.cohort_id, x.talent_id, x.ladder, await p.programme(x.programme_id, x.programme_version)
            )
            for x in ladders
        ]
        base = request.url.path
        shown_to = listed.offset + len(journeys)
        return render(
            request,
            "cohort.html",
            t,
            viewer=viewer,
            viewer_name=p.name(viewer.principal.person_id).text,
            cohort=cohort,
            programme=programme,
            zone=zone,
            journeys=journeys,
            listed=listed,
            order=order,
            orders={key: f"{base}?{urlencode({'order': key})}" for key in ("id", "state")},
            prev_url=(
                f"{base}?{urlencode({'order': order, 'offset': max(0, listed.offset - COHORT_PAGE)})}"
                if listed.offset > 0
                else None
            ),
            next_url_page=(
                f"{base}?{urlencode({'order': order, 'offset': shown_to})}" if shown_to < listed.total else None
            ),
            counts=await cohorts_view.counts_by_state(resources.pool, cohort_id),
            open_escalations=await cohorts_view.open_escalations(resources.pool, cohort_id),
            funnel=funnel_chart,
            at_risk=at_risk,
            deadlines=deadlines,
            escalations=escalations,
            kpi_charts=views.kpi_charts(t, kpis, programme) if kpis is not None else [],
            kpis=kpis,
            shown=SHOWN,
            roll_call=[j for j in journeys if j.state in RUNNING_STATES or j.state == "paused"],
            p=p,
            next_url=request.url.path,
            nonce=new_nonce,
        )

    return await page(request, resources, build, roles=("coordinator",))


@router.get("/escalations")
async def escalations_page(request: Request, resources: Deps, cohort_id: str | None = None) -> Response:
    """Open escalations, oldest first: rung, milestone, age; acknowledge or resolve."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        name = await viewer_name(viewer, p)
        found = await views.open_escalations(resources, p, cohort_id)
        return render(
            request,
            "escalations.html",
            viewer.texts,
            viewer=viewer,
            viewer_name=name,
            escalations=found,
            cohort_id=cohort_id,
            p=p,
            next_url=request.url.path + (f"?{urlencode({'cohort_id': cohort_id})}" if cohort_id else ""),
            nonce=new_nonce,
        )

    return await page(request, resources, build, roles=("coordinator",))


@router.get("/journeys/{journey_id}")
async def journey_page(request: Request, resources: Deps, journey_id: str) -> Response:
    """A talent's journey: people, progress, the milestone plan, escalations and the timeline."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        t = viewer.texts
        row = await journeys_view.status(resources.pool, journey_id) if len(journey_id) <= 100 else None
        if row is None or not await can_see(resources, viewer.principal, journey_id):
            return error_page(request, t, viewer, 404, "not_found", "not_found_text")
        programme = await p.programme(row.programme_id, row.programme_version)
        # The history is the timeline itself; every fact the page states comes from the status view.
        events = await resources.store.read_stream(stream_id_for(journey_id))
        leaders_leader = row.leaders_leader_id
        await p.load_people(
            [viewer.principal.person_id, row.talent_id, row.nearest_leader_id, leaders_leader, *p.people_in(events)]
        )
        escalations = [
            p.open_escalation(journey_id, row.cohort_id, row.talent_id, ladder, programme) for ladder in row.ladders
        ]
        access = await journeys_view.access(resources.pool, viewer.principal, journey_id)
        return render(
            request,
            "journey.html",
            t,
            viewer=viewer,
            viewer_name=p.name(viewer.principal.person_id).text,
            journey=row,
            status=row,
            programme=programme,
            zone=p.zone(programme),
            talent=p.name(row.talent_id),
            leader=p.name(row.nearest_leader_id),
            leaders_leader=p.name(leaders_leader) if leaders_leader else None,
            escalations=escalations,
            all_escalations=row.escalations,
            timeline=p.timeline(events, programme),
            forms=views.journey_forms(viewer, row, programme, may_act=access is not None and access.may_act),
            clarity_forms=clarity_forms(
                viewer,
                row,
                programme,
                await resources.catalog.cohort(row.cohort_id) if row.readiness is not None else None,
                may_act=access is not None and access.may_act,
                now=p.now,
            ),
            read_only=access is not None and not access.may_act,
            today=p.now.astimezone(p.zone(programme)).date().isoformat(),
            p=p,
            next_url=request.url.path,
            nonce=new_nonce,
        )

    return await page(request, resources, build, roles=("coordinator", "leader", "talent"))


@router.get("/tilgaengelighed")
async def accessibility_statement(request: Request, resources: Deps) -> Response:
    """The accessibility statement (webtilgængelighedsloven): open to all, signed in or not."""
    try:
        viewer = await current_viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        viewer = None  # the statement needs no database
    contact = resources.settings.accessibility_contact.strip()
    return render(
        request,
        "accessibility.html",
        language(request),
        viewer=viewer,
        contact=contact,
        contact_href=_contact_href(contact),
    )


def _contact_href(contact: str) -> str:
    """A link for the contact: mailto for an e-mail address, the address itself for a web page, else none."""
    if contact.startswith(("https://", "http://", "mailto:")):
        return contact
    if "@" in contact and ":" not in contact and " " not in contact:
        return f"mailto:{contact}"
    return ""
