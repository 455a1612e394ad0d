"""Clarity (issue 14, rules 4): the talent's readiness self-assessment and lab debriefs, and mentor
meetings as appointments the nearest leader proposes.

Both are journey commands like the others (`api.routers.journeys`): the domain's policy says who
may send them, free texts go to the people vault under the talent (the command carries their
reference), the journey's workflow takes them as updates, and an Idempotency-Key makes a retry safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from api.deps import Caller, Deps, require
from api.idempotency import IdempotencyKey, idempotent
from api.models import Key, Text, _In
from api.problems import Problem, not_found
from domain import commands as c
from domain.events import ReadinessAnswer, ReadinessStage
from domain.policy import roles_for
from service import journeys as service
from service.journeys import actor
from store.views import journeys as journeys_view

router = APIRouter(prefix="/v1/journeys", tags=["clarity"])


class ReadinessIn(_In):
    """POST .../readiness: want to lead (yes / not_now / no) at a stage, with an optional reason."""

    stage: ReadinessStage = Field(description="enrolment or evaluation: the stage open now")
    answer: ReadinessAnswer = Field(description="Do you want to lead? yes, not_now or no")
    reason: Text | None = Field(default=None, description="Why (kept in the people vault)")


class DebriefIn(_In):
    """POST .../sessions/{session_key}/debrief: notes after a dilemma lab, and how much clearer."""

    clarity: int | None = Field(default=None, ge=1, le=5, description="Clearer about leadership: 1 (not) to 5 (much)")
    notes: Text | None = Field(default=None, description="The debrief (kept in the people vault)")


class MeetingProposalIn(_In):
    """POST .../mentor-meetings/proposal: when the next mentor meeting is held (with a UTC offset)."""

    starts_at: AwareDatetime = Field(description="When the meeting starts; it is booked for an hour")


async def _send(
    request: Request,
    resources: Deps,
    caller: Caller,
    key: str | None,
    journey_id: str,
    command: type[c.Command],
    build: Callable[[dict[str, str | None]], c.Command],
    texts: dict[str, str | None],
) -> JSONResponse:
    require(caller, *roles_for(command))
    row = await journeys_view.access(resources.pool, caller, journey_id)
    if row is None:
        raise not_found("journey")
    if not row.may_act:
        raise Problem(403, "Forbidden", "the leader's leader follows this journey read-only", code="read_only")

    async def run() -> tuple[int, Any]:
        update_id = service.update_id_for(caller.token_id, key)
        return 200, await service.execute(
            resources, journey_id, build, update_id=update_id, talent_id=row.talent_id, texts=texts
        )

    return await idempotent(request, resources, caller, key, run)


@router.post("/{journey_id}/readiness", name="assess_readiness", response_class=JSONResponse)
async def assess_readiness(
    request: Request, journey_id: str, body: ReadinessIn, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Answer the readiness question of the open stage (talent; coordinator on the talent's behalf).

    The same answer again changes nothing (200, no events); a changed answer records the change.
    """

    def build(refs: dict[str, str | None]) -> c.Command:
        return c.AssessReadiness(
            **actor(caller), stage=body.stage, answer=body.answer, reason_ref=refs.get("reason_ref")
        )

    return await _send(request, resources, caller, key, journey_id, c.AssessReadiness, build, {"reason": body.reason})


@router.post("/{journey_id}/sessions/{session_key}/debrief", name="debrief_lab", response_class=JSONResponse)
async def debrief_lab(
    request: Request,
    journey_id: str,
    session_key: Key,
    body: DebriefIn,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Debrief a dilemma lab session once it has been held (talent): notes and a 1-5 clarity scale."""

    def build(refs: dict[str, str | None]) -> c.Command:
        return c.DebriefLab(
            **actor(caller), session_key=session_key, clarity=body.clarity, notes_ref=refs.get("notes_ref")
        )

    return await _send(request, resources, caller, key, journey_id, c.DebriefLab, build, {"notes": body.notes})


@router.post("/{journey_id}/mentor-meetings/proposal", name="propose_mentor_meeting", response_class=JSONResponse)
async def propose_mentor_meeting(
    request: Request,
    journey_id: str,
    body: MeetingProposalIn,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Propose when the next mentor meeting is held (the nearest leader; a coordinator on their behalf).

    Both get it in their calendar feeds and as an invitation by e-mail; the leader is reminded
    before it; proposing another time moves it, the same time again changes nothing.
    """

    def build(_: dict[str, str | None]) -> c.Command:
        return c.ProposeMentorMeeting(**actor(caller), starts_at=body.starts_at)

    return await _send(request, resources, caller, key, journey_id, c.ProposeMentorMeeting, build, {})
