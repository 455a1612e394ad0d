"""What people do from the dashboard's forms: act on a journey, nominate, get a calendar link, handle escalations."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import FormData
from temporalio.service import RPCError

from api.dashboard.render import (
    current_viewer,
    error_page,
    redirect,
    render,
    to_login,
)
from api.dashboard.session import (
    SESSION_COOKIE,
    Viewer,
    csrf_ok,
    language,
    safe_next,
    same_origin,
    set_flash,
)
from api.deps import Deps, Resources, can_see
from api.models import CohortPatchIn, Key, NominationIn, RescheduleIn, RollCallIn
from api.problems import Problem
from api.ratelimit import Budget, rate_limits
from api.routers.clarity import DebriefIn, MeetingProposalIn, ReadinessIn
from api.routers.journeys import COMMANDS, PATH_PARAMS
from domain import commands as c
from domain.errors import DomainError
from domain.policy import roles_for
from infra.present import zone_of
from service import cohorts as cohorts_service
from service import journeys as service
from service.errors import ServiceError, UnknownProgramme
from store.calendar_feeds import CalendarFeeds
from store.vault import Erased, PersonData, PersonErased
from store.views import journeys as journeys_view

log = structlog.get_logger("talent.dashboard")
router = APIRouter(prefix="/dashboard", include_in_schema=False)
#: A form's nonce: its update id, so submitting the same form twice is one command.
_NONCE = re.compile(r"^[0-9a-f]{32}$")

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
        viewer = await current_viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        return error_page(request, texts, None, 503, "unavailable", "unavailable_text")
    if viewer is None:
        return to_login(request, safe_next(next))
    if not same_origin(request) or not csrf_ok(request.cookies.get(SESSION_COOKIE, ""), csrf):
        log.warning("dashboard_csrf_refused", path=request.url.path)
        return error_page(request, texts, viewer, 403, "forbidden", "csrf_failed")
    if viewer.role != "coordinator":
        return error_page(request, texts, viewer, 403, "forbidden", "forbidden_text")
    back = safe_next(next or "/dashboard/escalations")
    response = redirect(back)
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
        found = await journeys_view.status(resources.pool, journey_id)
        talent_id = found.talent_id if found is not None else None
        command: Callable[[dict[str, str | None]], c.Command]
        if action == "acknowledge":
            text = "note"

            def command(refs: dict[str, str | None]) -> c.Command:
                return c.AcknowledgeEscalation(**actor, milestone=milestone, note_ref=refs["note_ref"])
        else:
            text = "reason"

            def command(refs: dict[str, str | None]) -> c.Command:
                return c.ResolveEscalation(**actor, milestone=milestone, reason_ref=refs["reason_ref"])

        await service.execute(
            resources,
            journey_id,
            command,
            update_id=service.update_id_for(viewer.principal.token_id, form),
            talent_id=talent_id,
            texts={text: note or None},
        )
    except ValidationError:
        return "invalid_request"
    except (DomainError, ServiceError, PersonErased) as exc:
        # The flash message of a refusal is its stable code, whoever refused (domain, service, vault).
        return exc.code
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_command_failed", journey_id=journey_id, error=type(exc).__name__)
        return "unavailable"
    log.info("dashboard_escalation_" + action, journey_id=journey_id, milestone=milestone)
    return "acknowledged" if action == "acknowledge" else "resolved"


# -- acting on a journey -------------------------------------------------------------------------

#: A journey form's name → the command it sends. The API's command table (`COMMANDS`) gives the
#: body the form's fields must make, how the command is built from it, and who may send it: a
#: form checks and does exactly what the route does.
JOURNEY_FORMS: dict[str, type[c.Command]] = {
    "decision": c.DecideNomination,
    "attendance": c.RecordAttendance,
    "submission": c.SubmitTrack,
    "signoff": c.SignOffTrack,
    "meeting": c.LogMentorMeeting,
    "confirm": c.ConfirmMentorMeeting,
    "pause": c.PauseJourney,
    "resume": c.ResumeJourney,
    "withdraw": c.WithdrawTalent,
    "outcome": c.RecordOutcome,
    "leader": c.ChangeNearestLeader,
    "override": c.OverrideCompletion,
}
#: The fields every form carries that are not the command's.
_CONTROL = frozenset({"csrf", "nonce", "next"})
#: The flash code of a form's success.
_DONE = "done"


def _spec(command: type[c.Command]) -> Any | None:
    """The API's command route of a command type, if it has one."""
    return next((s for s in COMMANDS if s.command is command), None)


def form_fields(form: FormData, model: type[BaseModel], *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A form's fields as the body `model` takes them: `a.b` names nest, empty optional fields are left
    out, a checkbox of a yes/no field is true when sent and false when not."""
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in _CONTROL or key in skip or not isinstance(value, str) or value.strip() == "":
            continue
        *parents, leaf = key.split(".")
        target = data
        for part in parents:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise ValueError(f"{key} is both a value and a group")
            target = nested
        target[leaf] = value
    for name, field in model.model_fields.items():
        if field.annotation is bool:
            data[name] = data.get(name) in ("on", "true", "1", "yes")
    return data


async def _signed_in(request: Request, resources: Resources, form: FormData) -> Viewer | Response:
    """The viewer of a form post that passed sign-in and the CSRF check, or the page that refuses it."""
    texts = language(request)
    try:
        viewer = await current_viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        return error_page(request, texts, None, 503, "unavailable", "unavailable_text")
    if viewer is None:
        next_page = form.get("next")
        return to_login(request, safe_next(next_page if isinstance(next_page, str) else None))
    csrf = form.get("csrf")
    session = request.cookies.get(SESSION_COOKIE, "")
    if not same_origin(request) or not csrf_ok(session, csrf if isinstance(csrf, str) else None):
        log.warning("dashboard_csrf_refused", path=request.url.path)
        return error_page(request, texts, viewer, 403, "forbidden", "csrf_failed")
    return viewer


def _update_id(viewer: Viewer, form: FormData) -> str:
    """The form's update id: its nonce, scoped to the caller (a double click is one command)."""
    nonce = form.get("nonce")
    key = nonce if isinstance(nonce, str) and _NONCE.match(nonce) else uuid.uuid4().hex
    return service.update_id_for(viewer.principal.token_id, f"dashboard:{key}")


def _refusal(exc: Exception) -> str:
    """The flash code of a refusal: its stable code, whoever refused (domain, service, vault)."""
    if isinstance(exc, ValidationError | ValueError) and not isinstance(exc, DomainError):
        return "invalid_request"
    return str(getattr(exc, "code", "refused"))


@router.post("/journeys/{journey_id}/{form_name}")
async def journey_action(request: Request, resources: Deps, journey_id: str, form_name: str) -> Response:
    """A journey form (decide, attendance, reflection, sign-off, meeting, pause, ...): the same role
    and scope checks as its API route, then the same service call; back to the page with the
    outcome, a refusal shown as the domain's reason."""
    form = await request.form()
    viewer = await _signed_in(request, resources, form)
    if isinstance(viewer, Response):
        return viewer
    t = viewer.texts
    if form_name in CLARITY_FORMS:
        return await _clarity_action(request, resources, viewer, form, journey_id, form_name)
    command = JOURNEY_FORMS.get(form_name)
    spec = _spec(command) if command is not None else None
    if spec is None or len(journey_id) > 100:
        return error_page(request, t, viewer, 404, "not_found", "not_found_text")
    if viewer.role not in roles_for(command):  # type: ignore[arg-type]
        return error_page(request, t, viewer, 403, "forbidden", "forbidden_text")
    # The API's scope rule: unknown and out of scope look the same (404); the leader's leader reads only.
    access = await journeys_view.access(resources.pool, viewer.principal, journey_id)
    if access is None:
        return error_page(request, t, viewer, 404, "not_found", "not_found_text")
    if not access.may_act:
        return error_page(request, t, viewer, 403, "forbidden", "read_only_text")
    next_page = form.get("next")
    response = redirect(
        safe_next(next_page if isinstance(next_page, str) else None)
        if next_page
        else f"/dashboard/journeys/{journey_id}"
    )
    try:
        params = {
            name: TypeAdapter(kind).validate_python(form.get(name))
            for name, kind in PATH_PARAMS.items()
            if f"{{{name}}}" in spec.path
        }
        body = spec.body.model_validate(form_fields(form, spec.body, skip=frozenset(params)))
        await service.execute(
            resources,
            journey_id,
            lambda refs: spec.build(service.actor(viewer.principal), body, {**params, **refs}),
            update_id=_update_id(viewer, form),
            talent_id=access.talent_id,
            texts={field: getattr(body, field) for field in spec.texts},
            people=[person for field in spec.people if (person := getattr(body, field)) is not None],
        )
    except (ValidationError, ValueError, DomainError, ServiceError, PersonErased) as exc:
        code = _refusal(exc)
        log.info("dashboard_command_refused", journey_id=journey_id, form=form_name, code=code)
        set_flash(response, "error", code)
        return response
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_command_failed", journey_id=journey_id, error=type(exc).__name__)
        set_flash(response, "error", "unavailable")
        return response
    log.info("dashboard_command_done", journey_id=journey_id, form=form_name)
    set_flash(response, "ok", f"{_DONE}_{form_name}")
    return response


# -- clarity (issue 14, rules 4) -----------------------------------------------------------------

#: A clarity form's name → the body its API route (`api.routers.clarity`) takes and the command it
#: sends: the form checks the same roles and scope and makes the same service call as the route.
CLARITY_FORMS: dict[str, tuple[type[BaseModel], type[c.Command]]] = {
    "readiness": (ReadinessIn, c.AssessReadiness),
    "debrief": (DebriefIn, c.DebriefLab),
    "proposal": (MeetingProposalIn, c.ProposeMentorMeeting),
}


def _clarity_command(
    actor: c.Actor, body: BaseModel, session_key: str | None
) -> tuple[Callable[[dict[str, str | None]], c.Command], dict[str, str | None]]:
    """The command a clarity form's body makes (as its API route builds it) and the texts for the vault."""
    if isinstance(body, ReadinessIn):
        readiness = body

        def assess(refs: dict[str, str | None]) -> c.Command:
            return c.AssessReadiness(
                **actor, stage=readiness.stage, answer=readiness.answer, reason_ref=refs.get("reason_ref")
            )

        return assess, {"reason": readiness.reason}
    if isinstance(body, DebriefIn):
        debrief = body
        key = TypeAdapter(Key).validate_python(session_key)

        def debrief_lab(refs: dict[str, str | None]) -> c.Command:
            return c.DebriefLab(**actor, session_key=key, clarity=debrief.clarity, notes_ref=refs.get("notes_ref"))

        return debrief_lab, {"notes": debrief.notes}
    if not isinstance(body, MeetingProposalIn):  # pragma: no cover - CLARITY_FORMS names these three
        raise ValueError("unknown clarity form")
    starts_at = body.starts_at

    def propose(_: dict[str, str | None]) -> c.Command:
        return c.ProposeMentorMeeting(**actor, starts_at=starts_at)

    return propose, {}


async def _clarity_action(
    request: Request, resources: Resources, viewer: Viewer, form: FormData, journey_id: str, form_name: str
) -> Response:
    """A clarity form (readiness, debrief, proposal): the same role and scope checks as its API
    route, then the same service call; back to the page with the outcome."""
    t = viewer.texts
    model, command = CLARITY_FORMS[form_name]
    if len(journey_id) > 100:
        return error_page(request, t, viewer, 404, "not_found", "not_found_text")
    if viewer.role not in roles_for(command):
        return error_page(request, t, viewer, 403, "forbidden", "forbidden_text")
    access = await journeys_view.access(resources.pool, viewer.principal, journey_id)
    if access is None:
        return error_page(request, t, viewer, 404, "not_found", "not_found_text")
    if not access.may_act:
        return error_page(request, t, viewer, 403, "forbidden", "read_only_text")
    next_page = form.get("next")
    response = redirect(
        safe_next(next_page if isinstance(next_page, str) else None)
        if next_page
        else f"/dashboard/journeys/{journey_id}"
    )
    try:
        data = form_fields(form, model, skip=frozenset({"session_key"}))
        if form_name == "proposal" and "starts_at" in data:
            # A browser's datetime-local has no offset: it is the programme's local time.
            row = await journeys_view.status(resources.pool, journey_id)
            zone = await _cohort_zone(resources, row.cohort_id if row is not None else "")
            data["starts_at"] = _local(str(data["starts_at"]), zone)
        body = model.model_validate(data)
        key = form.get("session_key")
        build, texts = _clarity_command(service.actor(viewer.principal), body, key if isinstance(key, str) else None)
        await service.execute(
            resources,
            journey_id,
            build,
            update_id=_update_id(viewer, form),
            talent_id=access.talent_id,
            texts=texts,
        )
    except (ValidationError, ValueError, DomainError, ServiceError, PersonErased) as exc:
        code = _refusal(exc)
        log.info("dashboard_command_refused", journey_id=journey_id, form=form_name, code=code)
        set_flash(response, "error", code)
        return response
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_command_failed", journey_id=journey_id, error=type(exc).__name__)
        set_flash(response, "error", "unavailable")
        return response
    log.info("dashboard_command_done", journey_id=journey_id, form=form_name)
    set_flash(response, "ok", f"{_DONE}_{form_name}")
    return response


# -- nominating ----------------------------------------------------------------------------------


@router.post("/nominate")
async def nominate(request: Request, resources: Deps) -> Response:
    """A leader nominates a talent as their nearest leader (the same checks and service call as
    `POST /v1/journeys`, and the same daily budget); to the journey, or back to the form."""
    form = await request.form()
    viewer = await _signed_in(request, resources, form)
    if isinstance(viewer, Response):
        return viewer
    t = viewer.texts
    if viewer.role != "leader" or not viewer.principal.person_id:
        return error_page(request, t, viewer, 403, "forbidden", "forbidden_text")
    back = redirect("/dashboard/nominate")
    leader_id = viewer.principal.person_id
    me = (await resources.vault.read_people([leader_id])).get(leader_id)
    if not isinstance(me, PersonData):
        set_flash(back, "error", "leader_unknown")
        return back
    try:
        await rate_limits(request).spend(Budget.NOMINATIONS, leader_id)
    except Problem:
        set_flash(back, "error", "rate_limited")
        return back
    try:
        data = form_fields(form, NominationIn)
        data["nearest_leader"] = {
            "person_id": leader_id,
            "name": me.name,
            "email": me.email,
            "workplace": me.workplace,
            "language": me.language,
        }
        body = NominationIn.model_validate(data)
        created, journey = await service.nominate(resources, body, viewer.principal)
    except (ValidationError, ValueError, DomainError, ServiceError, PersonErased, UnknownProgramme) as exc:
        code = _refusal(exc)
        log.info("dashboard_nomination_refused", code=code)
        set_flash(back, "error", code)
        return back
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_nomination_failed", error=type(exc).__name__)
        set_flash(back, "error", "unavailable")
        return back
    journey_id = str(journey["journey_id"])
    log.info("dashboard_nominated", journey_id=journey_id, created=created)
    response = redirect(f"/dashboard/journeys/{journey_id}")
    set_flash(response, "ok", "nominated" if created else "nomination_exists")
    return response


# -- the calendar link ---------------------------------------------------------------------------


@router.post("/calendar")
async def calendar_link(request: Request, resources: Deps) -> Response:
    """Issue (or re-issue) the viewer's own calendar feed URL and show it once: any earlier URL stops working."""
    form = await request.form()
    viewer = await _signed_in(request, resources, form)
    if isinstance(viewer, Response):
        return viewer
    person_id = viewer.principal.person_id
    if viewer.role not in ("leader", "talent") or not person_id:
        return error_page(request, viewer.texts, viewer, 403, "forbidden", "forbidden_text")
    if isinstance(await resources.vault.get_person(person_id), Erased):
        return error_page(request, viewer.texts, viewer, 404, "not_found", "not_found_text")
    secret = await CalendarFeeds(resources.pool).issue(person_id)
    log.info("calendar_feed_issued", person_id=person_id, by=viewer.principal.token_id)
    return render(
        request,
        "calendar.html",
        viewer.texts,
        viewer=viewer,
        feed_url=str(request.url_for("calendar_feed", secret=secret)),
    )


# -- acting on a cohort --------------------------------------------------------------------------


async def _coordinator(request: Request, resources: Resources, form: FormData, cohort_id: str) -> Viewer | Response:
    """A signed-in coordinator's form post on a cohort that exists, or the page that refuses it."""
    viewer = await _signed_in(request, resources, form)
    if isinstance(viewer, Response):
        return viewer
    if viewer.role != "coordinator":
        return error_page(request, viewer.texts, viewer, 403, "forbidden", "forbidden_text")
    if len(cohort_id) > 100 or await resources.catalog.cohort(cohort_id) is None:
        return error_page(request, viewer.texts, viewer, 404, "not_found", "not_found_text")
    return viewer


@router.post("/cohorts/{cohort_id}/sessions/{session_key}/{form_name}")
async def session_action(
    request: Request, resources: Deps, cohort_id: str, session_key: str, form_name: Literal["roll-call", "reschedule"]
) -> Response:
    """A session's roll call (one answer per journey; blank lines are left out) or its move for the
    whole cohort: the same service calls as the API's cohort routes; back to the cohort page."""
    form = await request.form()
    viewer = await _coordinator(request, resources, form, cohort_id)
    if isinstance(viewer, Response):
        return viewer
    response = redirect(f"/dashboard/cohorts/{cohort_id}")
    try:
        if form_name == "roll-call":
            statuses = form_fields(form, RollCallIn).get("status", {})
            records = (
                [{"journey_id": j, "status": s} for j, s in statuses.items()] if isinstance(statuses, dict) else []
            )
            body = RollCallIn.model_validate({"records": records})
            answers = await cohorts_service.roll_call(
                resources,
                cohort_id,
                session_key,
                [cohorts_service.RollCallRecord(journey_id=r.journey_id, status=r.status) for r in body.records],
                viewer.principal,
                update_key=_update_id(viewer, form),
            )
            refused = [a.error for a in answers if a.error is not None]
            log.info("dashboard_roll_call", cohort_id=cohort_id, lines=len(answers), refused=len(refused))
            if refused:
                set_flash(response, "error", _refusal(refused[0]))
                return response
        else:
            data = form_fields(form, RescheduleIn)
            programme_zone = await _cohort_zone(resources, cohort_id)
            if "starts_at" in data:
                data["starts_at"] = _local(str(data["starts_at"]), programme_zone)
            move = RescheduleIn.model_validate(data)
            await cohorts_service.reschedule_session(
                resources, cohort_id, session_key, viewer.principal, starts_at=move.starts_at, location=move.location
            )
            log.info("dashboard_session_rescheduled", cohort_id=cohort_id, session_key=session_key)
    except (ValidationError, ValueError, DomainError, ServiceError, PersonErased) as exc:
        set_flash(response, "error", _refusal(exc))
        return response
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_cohort_action_failed", cohort_id=cohort_id, error=type(exc).__name__)
        set_flash(response, "error", "unavailable")
        return response
    set_flash(response, "ok", "done_" + form_name.replace("-", "_"))
    return response


@router.post("/cohorts/{cohort_id}/edit")
async def edit_cohort(request: Request, resources: Deps, cohort_id: str) -> Response:
    """Change a cohort's capacity, coordinator or places (blank fields stay as they are)."""
    form = await request.form()
    viewer = await _coordinator(request, resources, form, cohort_id)
    if isinstance(viewer, Response):
        return viewer
    response = redirect(f"/dashboard/cohorts/{cohort_id}")
    try:
        body = CohortPatchIn.model_validate(form_fields(form, CohortPatchIn))
        changes: dict[str, Any] = {}
        if body.capacity is not None:
            changes["capacity"] = body.capacity
        if body.coordinator_id is not None:
            changes["coordinator_id"] = body.coordinator_id
        await cohorts_service.edit_cohort(
            resources, cohort_id, viewer.principal, changes=changes, locations=body.locations
        )
    except (ValidationError, ValueError, DomainError, ServiceError) as exc:
        set_flash(response, "error", _refusal(exc))
        return response
    log.info("dashboard_cohort_edited", cohort_id=cohort_id)
    set_flash(response, "ok", "done_edit")
    return response


async def _cohort_zone(resources: Resources, cohort_id: str) -> ZoneInfo:
    """The time zone a cohort's dates are written in (its programme's)."""
    cohort = await resources.catalog.cohort(cohort_id)
    programme = await resources.catalog.programme(cohort.programme_id, cohort.programme_version) if cohort else None
    return zone_of(programme)


def _local(value: str, zone: ZoneInfo) -> str:
    """A browser's `datetime-local` value (no offset) as an instant in `zone`; one with an offset as it is."""
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()
