"""Journeys: nominate, read (scoped), and the commands that go to the workflow as updates."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel

from api import service
from api.auth import Principal
from api.deps import Caller, Deps, can_see, require
from api.idempotency import idempotent
from api.models import (
    AcknowledgeIn,
    AttendanceIn,
    DecisionIn,
    Key,
    MeetingIn,
    MilestoneKey,
    NominationIn,
    OutcomeIn,
    ReasonIn,
    ResolveIn,
    ResumeIn,
    SignoffIn,
    SubmissionIn,
)
from api.problems import Problem, not_found
from domain import commands as c
from domain.events import JourneyStateName, stream_id_for

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe writes: the same key and body replays the first response; another body is 422.",
    ),
]


def actor(caller: Principal) -> c.Actor:
    """The caller as the actor of a command."""
    role: c.ActorRole = caller.role
    return {"actor_id": caller.person_id or caller.token_id, "actor_role": role}


@router.post("", status_code=201, responses={200: {"description": "the talent's open journey in the programme"}})
async def nominate(
    request: Request, resources: Deps, caller: Caller, body: NominationIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Nominate a talent: 201 with the new journey, or 200 with the talent's open journey."""
    require(caller, "hr_system", "leader", "coordinator")
    if caller.role == "leader" and caller.person_id != body.nearest_leader.person_id:
        raise Problem(403, "Forbidden", "a leader nominates as the talent's nearest leader", code="forbidden")

    async def run() -> tuple[int, Any]:
        created, journey = await service.nominate(
            resources, body, actor(caller), correlation_id=request.state.correlation_id
        )
        return (201 if created else 200), journey

    return await idempotent(request, resources, caller, key, run)


@router.get("")
async def list_journeys(
    resources: Deps,
    caller: Caller,
    cohort_id: str | None = None,
    state: JourneyStateName | None = None,
    at_risk: bool | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Journeys the caller may see, filtered, in pages of at most 200 (`after` = the page's `next`)."""
    scope_sql, scope_args = "", []
    if caller.role == "leader":
        scope_sql = (
            " AND journey_id IN (SELECT journey_id FROM journey_access"
            " WHERE person_id = $6 AND role = 'nearest_leader')"
        )
        scope_args = [caller.person_id]
    elif caller.role == "talent":
        scope_sql = " AND talent_id = $6"
        scope_args = [caller.person_id]
    rows = await resources.pool.fetch(
        "SELECT status::text FROM journey_status WHERE ($1::text IS NULL OR cohort_id = $1) "
        "AND ($2::text IS NULL OR state = $2) AND ($3::bool IS NULL OR at_risk = $3) "
        "AND ($4::text IS NULL OR journey_id > $4)" + scope_sql + " ORDER BY journey_id LIMIT $5",
        cohort_id,
        state,
        at_risk,
        after,
        limit,
        *scope_args,
    )
    items = [json.loads(r["status"]) for r in rows]
    return {"items": items, "next": items[-1]["journey_id"] if len(items) == limit else None}


@router.get("/{journey_id}")
async def read_journey(
    journey_id: str, resources: Deps, caller: Caller, as_of: AwareDatetime | None = None
) -> dict[str, Any]:
    """A journey's status; `as_of` (with a UTC offset) returns it as it stood then."""
    if not await can_see(resources, caller, journey_id):
        raise not_found("journey")
    if as_of is None:
        return await service.status(resources, journey_id)
    status = await resources.store.status_as_of(journey_id, as_of)
    if status is None:
        raise not_found("journey at that time")
    return status.model_dump(mode="json")


@router.get("/{journey_id}/events")
async def journey_events(
    journey_id: str,
    resources: Deps,
    caller: Caller,
    after_version: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """A journey's history: the stored events (ids, never personal data), oldest first."""
    if not await can_see(resources, caller, journey_id):
        raise not_found("journey")
    events = await resources.store.read_stream(stream_id_for(journey_id), after_version=after_version)
    return {"items": [ev.model_dump(mode="json") for ev in events]}


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Command:
    """A command route: who may send it, the update it becomes, and how its body maps to a command.

    `texts` are body fields of free text: they go to the people vault (under the talent, so an
    erasure takes them too) and the command carries only their reference, `<field>_ref`.
    """

    path: str
    update: str
    roles: tuple[str, ...]
    body: type[BaseModel]
    build: Callable[[c.Actor, Any, dict[str, Any]], c.Command]
    summary: str
    texts: tuple[str, ...] = ()


COMMANDS = (
    _Command(
        "/{journey_id}/decision",
        "decide_nomination",
        ("coordinator",),
        DecisionIn,
        lambda a, b, x: c.DecideNomination(**a, decision=b.decision, reason_ref=x["reason_ref"]),
        "Approve or reject the nomination",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/attendance",
        "record_attendance",
        ("coordinator",),
        AttendanceIn,
        lambda a, b, _: c.RecordAttendance(**a, session_key=b.session_key, status=b.status),
        "Record attendance at a session",
    ),
    _Command(
        "/{journey_id}/tracks/{track_key}/submission",
        "submit_track",
        ("talent",),
        SubmissionIn,
        lambda a, b, x: c.SubmitTrack(**a, track_key=x["track_key"], reflection_ref=x["reflection_ref"]),
        "Submit a track's reflection (the talent)",
        ("reflection",),
    ),
    _Command(
        "/{journey_id}/tracks/{track_key}/signoff",
        "sign_off_track",
        ("leader",),
        SignoffIn,
        lambda a, b, x: c.SignOffTrack(
            **a, track_key=x["track_key"], decision=b.decision, comment_ref=x["comment_ref"]
        ),
        "Approve or return a submitted track (the nearest leader)",
        ("comment",),
    ),
    _Command(
        "/{journey_id}/mentor-meetings",
        "log_mentor_meeting",
        ("leader", "talent"),
        MeetingIn,
        lambda a, b, x: c.LogMentorMeeting(**a, held_on=b.held_on, notes_ref=x["notes_ref"]),
        "Record a mentor meeting (the nearest leader or the talent)",
        ("notes",),
    ),
    _Command(
        "/{journey_id}/pause",
        "pause",
        ("coordinator",),
        ReasonIn,
        lambda a, b, x: c.PauseJourney(**a, reason_ref=x["reason_ref"]),
        "Pause the journey; its deadlines move by the pause",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/resume",
        "resume",
        ("coordinator",),
        ResumeIn,
        lambda a, b, _: c.ResumeJourney(**a),
        "Resume a paused journey",
    ),
    _Command(
        "/{journey_id}/withdraw",
        "withdraw",
        ("coordinator",),
        ReasonIn,
        lambda a, b, x: c.WithdrawTalent(**a, reason_ref=x["reason_ref"]),
        "Withdraw the talent",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/outcome",
        "record_outcome",
        ("hr_system", "coordinator", "talent"),
        OutcomeIn,
        lambda a, b, _: c.RecordOutcome(
            **a, applied_for_leader_post=b.applied_for_leader_post, appointed=b.appointed, on=b.on
        ),
        "Record whether the talent applied for, or was appointed to, a leader post",
    ),
    _Command(
        "/{journey_id}/escalations/{milestone}/acknowledge",
        "acknowledge_escalation",
        ("coordinator",),
        AcknowledgeIn,
        lambda a, b, x: c.AcknowledgeEscalation(**a, milestone=x["milestone"], note_ref=x["note_ref"]),
        "Acknowledge a milestone's open escalation: no further rung fires, it stays open",
        ("note",),
    ),
    _Command(
        "/{journey_id}/escalations/{milestone}/resolve",
        "resolve_escalation",
        ("coordinator",),
        ResolveIn,
        lambda a, b, x: c.ResolveEscalation(**a, milestone=x["milestone"], reason_ref=x["reason_ref"]),
        "Resolve a milestone's open escalation: its ladder stops and it no longer makes the journey at risk",
        ("reason",),
    ),
)

#: Path parameters a command route may have besides the journey id, and how each is validated.
PATH_PARAMS: dict[str, Any] = {"track_key": Key, "milestone": MilestoneKey}


def _endpoint(spec: _Command) -> Callable[..., Any]:
    """The route function of a command: roles, scope, vault texts, the update, idempotency."""

    async def endpoint(
        request: Request,
        journey_id: str,
        body: BaseModel,
        resources: Deps,
        caller: Caller,
        key: IdempotencyKey = None,
        **path: str,
    ) -> JSONResponse:
        require(caller, *spec.roles)
        if not await can_see(resources, caller, journey_id):
            raise not_found("journey")

        async def run() -> tuple[int, Any]:
            extra: dict[str, Any] = dict(path)
            talent_id = await resources.pool.fetchval(
                "SELECT talent_id FROM journey_status WHERE journey_id = $1", journey_id
            )
            for field in spec.texts:
                text = getattr(body, field)
                extra[f"{field}_ref"] = await resources.vault.put_text(talent_id, text) if text else None
            command = spec.build(actor(caller), body, extra)
            # Temporal deduplicates updates by id per workflow: a key is the caller's, so it is scoped to them.
            update_id = f"{caller.token_id}:{key}" if key else request.state.correlation_id
            return 200, await service.execute(resources, journey_id, spec.update, command, update_id=update_id)

        return await idempotent(request, resources, caller, key, run)

    # FastAPI reads the signature: give it this command's body model and path parameters.
    params = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter("journey_id", inspect.Parameter.KEYWORD_ONLY, annotation=str),
        inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=spec.body),
        inspect.Parameter("resources", inspect.Parameter.KEYWORD_ONLY, annotation=Deps),
        inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=Caller),
        inspect.Parameter("key", inspect.Parameter.KEYWORD_ONLY, annotation=IdempotencyKey, default=None),
    ]
    for name, annotation in PATH_PARAMS.items():
        if f"{{{name}}}" in spec.path:
            params.insert(2, inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    endpoint.__signature__ = inspect.Signature(params, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    endpoint.__name__ = spec.update
    endpoint.__doc__ = f"{spec.summary} ({', '.join(spec.roles)})."
    return endpoint


for _spec in COMMANDS:
    router.add_api_route(
        _spec.path,
        _endpoint(_spec),
        methods=["POST"],
        summary=_spec.summary,
        name=_spec.update,
        response_class=JSONResponse,
    )
