"""Journeys: nominate, read (scoped), and the commands that go to the workflow as updates."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from api.access import touched
from api.deps import Caller, Deps, can_see, require
from api.idempotency import IdempotencyKey, idempotent
from api.models import (
    AcknowledgeIn,
    AttendanceIn,
    CompletionOverrideIn,
    ConfirmMeetingIn,
    DecisionIn,
    Key,
    MeetingIn,
    MilestoneKey,
    NearestLeaderIn,
    NominationIn,
    OutcomeIn,
    ReasonIn,
    ResolveIn,
    ResumeIn,
    SignoffIn,
    SubmissionIn,
)
from api.problems import Problem, not_found
from api.ratelimit import Budget, rate_limits
from domain import commands as c
from domain.events import JourneyStateName, stream_id_for
from domain.policy import roles_for
from service import journeys as service
from service.journeys import actor
from store.views import journeys as journeys_view
from workflows.client import update_name

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])
#: A journey id in a page of status documents built by PostgreSQL (keys as `json_agg` writes them).
_JOURNEY_ID = re.compile(r'"journey_id": "([^"\\]{1,100})"')


@router.post("", status_code=201, responses={200: {"description": "the talent's open journey in the programme"}})
async def nominate(
    request: Request, resources: Deps, caller: Caller, body: NominationIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Nominate a talent: 201 with the new journey, or 200 with the talent's open journey."""
    require(caller, *roles_for(c.NominateTalent))
    if caller.role == "leader" and caller.person_id != body.nearest_leader.person_id:
        raise Problem(403, "Forbidden", "a leader nominates as the talent's nearest leader", code="forbidden")
    if caller.role == "leader":  # PRODUCT §8.3: a leader's nominations per day
        await rate_limits(request).spend(Budget.NOMINATIONS, caller.person_id or caller.token_id)

    async def run() -> tuple[int, Any]:
        touched(people=[body.talent.person_id, body.nearest_leader.person_id])
        created, journey = await service.nominate(resources, body, caller, correlation_id=request.state.correlation_id)
        touched(journeys=[journey.get("journey_id")])
        return (201 if created else 200), journey

    return await idempotent(request, resources, caller, key, run)


class JourneyPage(BaseModel):
    """A page of journeys' statuses."""

    items: list[dict[str, Any]]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


@router.get("", response_model=JourneyPage)
async def list_journeys(
    resources: Deps,
    caller: Caller,
    cohort_id: str | None = None,
    state: JourneyStateName | None = None,
    at_risk: bool | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Journeys the caller may see, filtered, in pages of at most 200 (`after` = the page's `next`).

    The page is built as JSON by PostgreSQL from the read model: no decoding and re-encoding here.
    """
    page = await journeys_view.page_json(
        resources.pool, caller, cohort_id=cohort_id, state=state, at_risk=at_risk, after=after, limit=limit
    )
    # The access log records the page's journeys (their talents and leaders come with them, §8.7).
    touched(journeys=_JOURNEY_ID.findall(page))
    return Response(page, media_type="application/json")


@router.get("/{journey_id}", response_model=dict[str, Any])
async def read_journey(
    journey_id: str, resources: Deps, caller: Caller, as_of: AwareDatetime | None = None
) -> Response:
    """A journey's status; `as_of` (with a UTC offset) returns it as it stood then."""
    if as_of is None:
        # The read model's JSON as stored, scoped in the same query: one round trip.
        raw = await journeys_view.status_json(resources.pool, caller, journey_id)
        if raw is None:
            raise not_found("journey")
        return Response(raw, media_type="application/json")
    if not await can_see(resources, caller, journey_id):
        raise not_found("journey")
    status = await resources.store.status_as_of(journey_id, as_of)
    if status is None:
        raise not_found("journey at that time")
    return Response(status.model_dump_json(), media_type="application/json")


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
    """A command route: the command it sends and how its body maps to it.

    Who may send it is the domain's policy (`domain.policy`); the journey client sends it as the
    workflow's update for its type. `texts` are body fields of free text: they go to the people
    vault (under the talent, so an erasure takes them too) and the command carries only their
    reference, `<field>_ref`. `people` are body fields naming persons (a new nearest leader): the
    service creates those not stored yet once the journey would take the command (§8.2).
    """

    path: str
    command: type[c.Command]
    body: type[BaseModel]
    build: Callable[[c.Actor, Any, dict[str, Any]], c.Command]
    summary: str
    texts: tuple[str, ...] = ()
    people: tuple[str, ...] = ()


COMMANDS = (
    _Command(
        "/{journey_id}/decision",
        c.DecideNomination,
        DecisionIn,
        lambda a, b, x: c.DecideNomination(**a, decision=b.decision, reason_ref=x["reason_ref"]),
        "Approve or reject the nomination",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/attendance",
        c.RecordAttendance,
        AttendanceIn,
        lambda a, b, _: c.RecordAttendance(**a, session_key=b.session_key, status=b.status),
        "Record attendance at a session",
    ),
    _Command(
        "/{journey_id}/tracks/{track_key}/submission",
        c.SubmitTrack,
        SubmissionIn,
        lambda a, b, x: c.SubmitTrack(**a, track_key=x["track_key"], reflection_ref=x["reflection_ref"]),
        "Submit a track's reflection (the talent)",
        ("reflection",),
    ),
    _Command(
        "/{journey_id}/tracks/{track_key}/signoff",
        c.SignOffTrack,
        SignoffIn,
        lambda a, b, x: c.SignOffTrack(
            **a, track_key=x["track_key"], decision=b.decision, comment_ref=x["comment_ref"]
        ),
        "Approve or return a submitted track (the nearest leader)",
        ("comment",),
    ),
    _Command(
        "/{journey_id}/mentor-meetings",
        c.LogMentorMeeting,
        MeetingIn,
        lambda a, b, x: c.LogMentorMeeting(**a, held_on=b.held_on, notes_ref=x["notes_ref"]),
        "Record a mentor meeting (the nearest leader or the talent)",
        ("notes",),
    ),
    _Command(
        "/{journey_id}/pause",
        c.PauseJourney,
        ReasonIn,
        lambda a, b, x: c.PauseJourney(**a, reason_ref=x["reason_ref"]),
        "Pause the journey; its deadlines move by the pause",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/resume",
        c.ResumeJourney,
        ResumeIn,
        lambda a, b, _: c.ResumeJourney(**a),
        "Resume a paused journey",
    ),
    _Command(
        "/{journey_id}/withdraw",
        c.WithdrawTalent,
        ReasonIn,
        lambda a, b, x: c.WithdrawTalent(**a, reason_ref=x["reason_ref"]),
        "Withdraw the talent",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/outcome",
        c.RecordOutcome,
        OutcomeIn,
        lambda a, b, _: c.RecordOutcome(
            **a, applied_for_leader_post=b.applied_for_leader_post, appointed=b.appointed, on=b.on
        ),
        "Record whether the talent applied for, or was appointed to, a leader post",
    ),
    _Command(
        "/{journey_id}/escalations/{milestone}/acknowledge",
        c.AcknowledgeEscalation,
        AcknowledgeIn,
        lambda a, b, x: c.AcknowledgeEscalation(**a, milestone=x["milestone"], note_ref=x["note_ref"]),
        "Acknowledge a milestone's open escalation: no further rung fires, it stays open",
        ("note",),
    ),
    _Command(
        "/{journey_id}/escalations/{milestone}/resolve",
        c.ResolveEscalation,
        ResolveIn,
        lambda a, b, x: c.ResolveEscalation(**a, milestone=x["milestone"], reason_ref=x["reason_ref"]),
        "Resolve a milestone's open escalation: its ladder stops and it no longer makes the journey at risk",
        ("reason",),
    ),
    _Command(
        "/{journey_id}/mentor-meetings/{held_on}/confirm",
        c.ConfirmMentorMeeting,
        ConfirmMeetingIn,
        lambda a, b, x: c.ConfirmMentorMeeting(**a, held_on=x["held_on"]),
        "Confirm a mentor meeting the talent logged (the nearest leader): from then on it counts",
    ),
    _Command(
        "/{journey_id}/nearest-leader",
        c.ChangeNearestLeader,
        NearestLeaderIn,
        lambda a, b, _: c.ChangeNearestLeader(
            **a,
            nearest_leader_id=b.nearest_leader.person_id,
            leaders_leader_id=b.leaders_leader.person_id if b.leaders_leader else None,
        ),
        "Hand the talent to a new nearest leader; the leader's leader stays unless a new one is given",
        people=("nearest_leader", "leaders_leader"),
    ),
    _Command(
        "/{journey_id}/completion-override",
        c.OverrideCompletion,
        CompletionOverrideIn,
        lambda a, b, x: c.OverrideCompletion(**a, outcome=b.result, reason_ref=x["reason_ref"]),
        "Override the completion evaluation (the coordinator), with the reason",
        ("reason",),
    ),
)

#: Path parameters a command route may have besides the journey id, and how each is validated.
PATH_PARAMS: dict[str, Any] = {"track_key": Key, "milestone": MilestoneKey, "held_on": date}


def _endpoint(spec: _Command) -> Callable[..., Any]:
    """The route function of a command: roles, scope, vault texts, the update, idempotency."""
    roles = roles_for(spec.command)
    name = update_name(spec.command)

    async def endpoint(
        request: Request,
        journey_id: str,
        body: BaseModel,
        resources: Deps,
        caller: Caller,
        key: IdempotencyKey = None,
        **path: str,
    ) -> JSONResponse:
        require(caller, *roles)
        # Scope check, whether the caller may act, and the talent (whose vault holds the texts):
        # one round trip.
        row = await journeys_view.access(resources.pool, caller, journey_id)
        if row is None:
            raise not_found("journey")
        if not row.may_act:
            raise Problem(403, "Forbidden", "the leader's leader follows this journey read-only", code="read_only")

        async def run() -> tuple[int, Any]:
            update_id = service.update_id_for(caller.token_id, key)
            return 200, await service.execute(
                resources,
                journey_id,
                lambda refs: spec.build(actor(caller), body, {**path, **refs}),
                update_id=update_id,
                talent_id=row.talent_id,
                texts={field: getattr(body, field) for field in spec.texts},
                people=[person for field in spec.people if (person := getattr(body, field)) is not None],
            )

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
    endpoint.__name__ = name
    endpoint.__doc__ = f"{spec.summary} ({', '.join(roles)})."
    return endpoint


for _spec in COMMANDS:
    router.add_api_route(
        _spec.path,
        _endpoint(_spec),
        methods=["POST"],
        summary=_spec.summary,
        name=update_name(_spec.command),
        response_class=JSONResponse,
    )
