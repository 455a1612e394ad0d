"""The coordinator dashboard: server-rendered pages (Jinja2), signed in with an API token.

Plain HTML forms and POST-redirect-GET, no script: the pages work in any browser, offline from
the internet (the stylesheet is served here, the charts are inline SVG). Sign-in verifies the
token as the API verifies a bearer token and opens a short server-side session (`session`); every
page checks that session and shows only what the API would let its principal see (the same role
checks, `can_see` and the scoped queries).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import asyncpg
import structlog
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api import kpis as kpi_reader
from api.auth import KeysUnavailable
from api.dashboard import charts, queries, views
from api.dashboard.charts import Series
from api.dashboard.i18n import Texts
from api.dashboard.present import Presenter
from api.dashboard.session import (
    SESSION_COOKIE,
    Viewer,
    clear_flash,
    clear_session,
    close_session,
    csrf_ok,
    csrf_token,
    language,
    open_session,
    read_flash,
    remember_language,
    safe_next,
    same_origin,
    secure_transport,
    session_principal,
    set_flash,
    set_session,
    token_expiry,
)
from api.deps import Deps, Resources, authenticate, can_see
from api.problems import Problem, from_domain, from_update_failure
from api.ratelimit import Budget, count_failure, guard_failures
from domain import commands as c
from domain.errors import DomainError
from domain.events import stream_id_for
from service import journeys as service
from store.vault import PersonErased

log = structlog.get_logger("talent.dashboard")
router = APIRouter(prefix="/dashboard", include_in_schema=False)

_env = Environment(
    loader=PackageLoader("api.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
#: No script at all, nothing from elsewhere, no framing: the pages are plain HTML and one stylesheet.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages hold personal data: never kept by a shared cache or the browser's back-forward cache.
    "Cache-Control": "no-store",
}
_STATIC = {"dashboard.css": "text/css; charset=utf-8"}
#: Rows of a list on the cohort page before "show all".
_SHOWN = 15
_NONCE = re.compile(r"^[0-9a-f]{32}$")


# -- rendering -----------------------------------------------------------------------------------


@cache
def _static(name: str) -> tuple[bytes, str]:
    """A static file's bytes and a short content hash (its cache-busting version)."""
    data = (importlib.resources.files("api.dashboard") / "static" / name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


def _lang_url(request: Request, texts: Texts) -> str:
    """This page in the other language."""
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    query["lang"] = "en" if texts.lang == "da" else "da"
    return f"{request.url.path}?{urlencode(query)}"


def _render(
    request: Request,
    template: str,
    texts: Texts,
    *,
    viewer: Viewer | None = None,
    viewer_name: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the layout's context, the security headers, the language cookie."""
    pending = read_flash(request)
    body = _env.get_template(template).render(
        t=texts,
        viewer=viewer,
        viewer_name=viewer_name,
        path=request.url.path,
        lang_url=_lang_url(request, texts),
        css_url=f"/dashboard/static/dashboard.css?v={_static('dashboard.css')[1]}",
        flash=_flash_text(texts, pending) if pending else None,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=_SECURITY_HEADERS)
    if pending:
        clear_flash(response)
    remember_language(request, response)
    return response


def _flash_text(texts: Texts, flash: tuple[str, str]) -> dict[str, str]:
    kind, code = flash
    key = f"flash_{code}"
    if texts.has(key):
        return {"kind": kind, "text": texts(key)}
    refusal = f"refusal_{code}"
    detail = texts(refusal) if texts.has(refusal) else code.replace("_", " ")
    return {"kind": kind, "text": texts("flash_refused", detail=detail)}


def _error(request: Request, texts: Texts, viewer: Viewer | None, status_code: int, title: str, text: str) -> Response:
    return _render(
        request,
        "error.html",
        texts,
        viewer=viewer,
        status_code=status_code,
        title=texts(title),
        text=texts(text),
    )


def _new_nonce() -> str:
    """A form's own id: its update id, so submitting the same form twice is one command."""
    return uuid.uuid4().hex


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def _to_login(request: Request, target: str | None = None) -> RedirectResponse:
    """To the sign-in form, and from there back to `target` (default: this page)."""
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _redirect(f"/dashboard/login?{urlencode({'next': target})}")


async def _viewer(request: Request, resources: Resources) -> Viewer | None:
    """The signed-in viewer, or None (no cookie, or a session that expired or was signed out)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    principal = await session_principal(resources.pool, session_id)
    if principal is None or principal.role == "hr_system":
        return None
    return Viewer(principal=principal, texts=language(request), csrf=csrf_token(session_id))


Page = Callable[[Viewer, Presenter], Awaitable[Response]]


async def _page(request: Request, resources: Resources, build: Page, *, roles: tuple[str, ...] = ()) -> Response:
    """Sign-in, role check and the unavailable page around a page's builder."""
    texts = language(request)
    try:
        viewer = await _viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        log.warning("dashboard_unavailable", path=request.url.path)
        return _error(request, texts, None, 503, "unavailable", "unavailable_text")
    if viewer is None:
        return _to_login(request)
    if roles and viewer.role not in roles:
        return _error(request, texts, viewer, 403, "forbidden", "forbidden_text")
    presenter = Presenter(texts, resources.vault, resources.catalog, datetime.now(UTC))
    try:
        return await build(viewer, presenter)
    except (asyncpg.PostgresConnectionError, OSError):
        log.warning("dashboard_unavailable", path=request.url.path)
        return _error(request, texts, viewer, 503, "unavailable", "unavailable_text")


async def _viewer_name(viewer: Viewer, presenter: Presenter) -> str:
    person = viewer.principal.person_id
    if not person:
        return ""
    await presenter.load_people([person])
    return presenter.name(person).text


# -- static files, sign-in -----------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet (versioned by its hash in the URL, so it may be cached for a year)."""
    if name not in _STATIC:
        return Response(status_code=404)
    data, _ = _static(name)
    return Response(
        data,
        media_type=_STATIC[name],
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )


@router.get("")
async def root() -> RedirectResponse:
    """/dashboard → /dashboard/."""
    return _redirect("/dashboard/")


@router.get("/login")
async def login_form(request: Request, resources: Deps, next: str | None = None) -> Response:
    """The sign-in form (or straight on, when already signed in)."""
    texts = language(request)
    try:
        if await _viewer(request, resources) is not None:
            return _redirect(safe_next(next))
    except (asyncpg.PostgresConnectionError, OSError):
        pass
    return _render(
        request,
        "login.html",
        texts,
        next=safe_next(next),
        insecure=not secure_transport(request),
        error=None,
    )


@router.post("/login")
async def login(
    request: Request,
    resources: Deps,
    token: Annotated[str, Form(max_length=8192)] = "",
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    """Check the token as the API would, open a session (its id in the cookie, never the token), go on."""
    texts = language(request)
    target = safe_next(next)

    def again(error: str, status_code: int) -> Response:
        return _render(
            request,
            "login.html",
            texts,
            status_code=status_code,
            next=target,
            insecure=not secure_transport(request),
            error=texts(error),
        )

    if not same_origin(request):
        return again("csrf_failed", 403)
    token = token.strip()
    await guard_failures(request, Budget.AUTH_FAILURES)  # 429 problem+json once the address spent its failures
    try:
        principal = await authenticate(resources.authenticator, token) if token else None
    except KeysUnavailable:
        return again("login_unavailable", 503)
    if principal is None:
        await count_failure(request, Budget.AUTH_FAILURES)
        log.info("dashboard_sign_in_refused")
        return again("login_invalid", 401)
    if principal.role == "hr_system":
        return again("login_role_refused", 403)
    session_id = await open_session(resources.pool, principal, not_after=token_expiry(token))
    log.info("dashboard_signed_in", role=principal.role, token_id=principal.token_id)
    response = _redirect(target)
    set_session(response, session_id)
    return response


@router.post("/logout")
async def logout(request: Request, resources: Deps, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Sign out: the session is revoked on the server and the cookie dropped (a form with the
    session's CSRF token, so another site cannot sign you out)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    response = _redirect("/dashboard/login")
    if session_id and same_origin(request) and csrf_ok(session_id, csrf):
        if await close_session(resources.pool, session_id):
            log.info("dashboard_signed_out")
        clear_session(response)
        set_flash(response, "ok", "signed_out")
    return response


# -- pages ---------------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, resources: Deps) -> Response:
    """Coordinators: the cohorts and the open escalations. Leaders: their talents. Talents: their journeys."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        if viewer.role == "leader":
            return _redirect("/dashboard/leader")
        name = await _viewer_name(viewer, p)
        if viewer.role == "talent":
            rows = await views.journey_lines(resources, viewer, p)
            return _render(
                request, "mine.html", viewer.texts, viewer=viewer, viewer_name=name, journeys=rows, leader=False
            )
        cohort_rows = await queries.cohorts(resources.pool)
        escalations = await views.open_escalations(resources, p, None)
        return _render(
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
            nonce=_new_nonce,
        )

    return await _page(request, resources, build, roles=("coordinator", "leader", "talent"))


@router.get("/leader")
async def leader_page(request: Request, resources: Deps) -> Response:
    """A leader's talents: what each is waiting on, and their next mentor meeting."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        name = await _viewer_name(viewer, p)
        rows = await views.journey_lines(resources, viewer, p)
        return _render(request, "mine.html", viewer.texts, viewer=viewer, viewer_name=name, journeys=rows, leader=True)

    return await _page(request, resources, build, roles=("leader",))


@router.get("/cohorts/{cohort_id}")
async def cohort_page(request: Request, resources: Deps, cohort_id: str) -> Response:
    """A cohort: the funnel, counts by state, at-risk journeys, this week's deadlines, escalations, KPIs."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        t = viewer.texts
        cohort = await resources.catalog.cohort(cohort_id)
        if cohort is None:
            return _error(request, t, viewer, 404, "not_found", "not_found_text")
        programme = await p.programme(cohort.programme_id, cohort.programme_version)
        zone = p.zone(programme)
        journeys = await queries.cohort_journeys(resources.pool, cohort_id)
        at_risk = await queries.at_risk(resources.pool, cohort_id)
        deadlines = await queries.deadlines(resources.pool, cohort_id, p.now, p.now + timedelta(days=7))
        await p.load_people(
            [viewer.principal.person_id]
            + [j.talent_id for j in journeys]
            + [j.nearest_leader_id for j in journeys]
            + [d.talent_id for d in deadlines]
        )
        funnel = await queries.funnel(resources.pool, cohort_id)
        funnel_chart = charts.bar_chart(
            "", [(t(f"funnel_{stage}"), [(Series("", "c-main"), n)], None) for stage, n in funnel.items()]
        )
        kpis = await kpi_reader.cohort_kpis(resources, cohort_id)
        return _render(
            request,
            "cohort.html",
            t,
            viewer=viewer,
            viewer_name=p.name(viewer.principal.person_id).text,
            cohort=cohort,
            programme=programme,
            zone=zone,
            journeys=journeys,
            counts=await queries.counts_by_state(resources.pool, cohort_id),
            funnel=funnel_chart,
            at_risk=at_risk,
            deadlines=deadlines,
            escalations=await views.open_escalations(resources, p, cohort_id),
            kpi_charts=views.kpi_charts(t, kpis, programme) if kpis is not None else [],
            kpis=kpis,
            shown=_SHOWN,
            p=p,
            next_url=request.url.path,
            nonce=_new_nonce,
        )

    return await _page(request, resources, build, roles=("coordinator",))


@router.get("/escalations")
async def escalations_page(request: Request, resources: Deps, cohort_id: str | None = None) -> Response:
    """Open escalations, oldest first: rung, milestone, age; acknowledge or resolve."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        name = await _viewer_name(viewer, p)
        found = await views.open_escalations(resources, p, cohort_id)
        return _render(
            request,
            "escalations.html",
            viewer.texts,
            viewer=viewer,
            viewer_name=name,
            escalations=found,
            cohort_id=cohort_id,
            p=p,
            next_url=request.url.path + (f"?{urlencode({'cohort_id': cohort_id})}" if cohort_id else ""),
            nonce=_new_nonce,
        )

    return await _page(request, resources, build, roles=("coordinator",))


@router.get("/journeys/{journey_id}")
async def journey_page(request: Request, resources: Deps, journey_id: str) -> Response:
    """A talent's journey: people, progress, the milestone plan, escalations and the timeline."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        t = viewer.texts
        row = await queries.journey(resources.pool, journey_id) if len(journey_id) <= 100 else None
        if row is None or not await can_see(resources, viewer.principal, journey_id):
            return _error(request, t, viewer, 404, "not_found", "not_found_text")
        programme = await p.programme(row.programme_id, row.programme_version)
        events = await resources.store.read_stream(stream_id_for(journey_id))
        leaders_leader = None
        for ev in events:
            if ev.event_type in ("TalentNominated", "NearestLeaderChanged"):
                leaders_leader = ev.data.get("leaders_leader_id")
        await p.load_people(
            [viewer.principal.person_id, row.talent_id, row.nearest_leader_id, leaders_leader, *p.people_in(events)]
        )
        status = row.status
        escalations = p.open_escalations(journey_id, row.cohort_id, row.talent_id, status, programme)
        return _render(
            request,
            "journey.html",
            t,
            viewer=viewer,
            viewer_name=p.name(viewer.principal.person_id).text,
            journey=row,
            status=status,
            programme=programme,
            zone=p.zone(programme),
            talent=p.name(row.talent_id),
            leader=p.name(row.nearest_leader_id),
            leaders_leader=p.name(leaders_leader) if leaders_leader else None,
            escalations=escalations,
            all_escalations=status.get("escalations", []),
            timeline=p.timeline(events, programme),
            p=p,
            next_url=request.url.path,
            nonce=_new_nonce,
        )

    return await _page(request, resources, build, roles=("coordinator", "leader", "talent"))


# -- acting on escalations -----------------------------------------------------------------------


@router.post("/escalations/{action}")
async def escalation_action(
    request: Request,
    resources: Deps,
    action: Literal["acknowledge", "resolve"],
    journey_id: Annotated[str, Form(max_length=100)],
    milestone: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=20_000)] = "",
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    """Acknowledge or resolve a milestone's open escalation (coordinators), then back to the page."""
    texts = language(request)
    try:
        viewer = await _viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        return _error(request, texts, None, 503, "unavailable", "unavailable_text")
    if viewer is None:
        return _to_login(request, safe_next(next))
    if not same_origin(request) or not csrf_ok(request.cookies.get(SESSION_COOKIE, ""), csrf):
        log.warning("dashboard_csrf_refused", path=request.url.path)
        return _error(request, texts, viewer, 403, "forbidden", "csrf_failed")
    if viewer.role != "coordinator":
        return _error(request, texts, viewer, 403, "forbidden", "forbidden_text")
    back = safe_next(next or "/dashboard/escalations")
    response = _redirect(back)
    if not await can_see(resources, viewer.principal, journey_id):
        set_flash(response, "error", "not_found")
        return response
    outcome = await _send(resources, viewer, action, journey_id, milestone, note.strip(), nonce)
    set_flash(response, "ok" if outcome in ("acknowledged", "resolved") else "error", outcome)
    return response


async def _send(
    resources: Resources, viewer: Viewer, action: str, journey_id: str, milestone: str, note: str, nonce: str
) -> str:
    """Send the command to the journey's workflow; the flash code of the outcome (never an exception)."""
    actor: c.Actor = {"actor_id": viewer.principal.person_id or viewer.principal.token_id, "actor_role": "coordinator"}
    # One form, one update id: a double click sends the same update twice, which Temporal runs once.
    form = f"dashboard:{nonce if _NONCE.match(nonce) else uuid.uuid4().hex}"
    try:
        talent_id = await resources.pool.fetchval(
            "SELECT talent_id FROM journey_status WHERE journey_id = $1", journey_id
        )
        command: Callable[[dict[str, str | None]], c.Command]
        if action == "acknowledge":
            text = "note"
            update = "acknowledge_escalation"

            def command(refs: dict[str, str | None]) -> c.Command:
                return c.AcknowledgeEscalation(**actor, milestone=milestone, note_ref=refs["note_ref"])
        else:
            text = "reason"
            update = "resolve_escalation"

            def command(refs: dict[str, str | None]) -> c.Command:
                return c.ResolveEscalation(**actor, milestone=milestone, reason_ref=refs["reason_ref"])

        await service.execute(
            resources,
            journey_id,
            update,
            command,
            update_id=service.update_id_for(viewer.principal.token_id, form),
            talent_id=talent_id,
            texts={text: note or None},
        )
    except PersonErased:
        return "person_erased"
    except ValidationError:
        return "invalid_request"
    except Problem as exc:
        return exc.code
    except DomainError as exc:
        return from_domain(exc).code
    except WorkflowUpdateFailedError as exc:
        return from_update_failure(exc).code
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_command_failed", journey_id=journey_id, error=type(exc).__name__)
        return "unavailable"
    log.info("dashboard_escalation_" + action, journey_id=journey_id, milestone=milestone)
    return "acknowledged" if action == "acknowledge" else "resolved"
