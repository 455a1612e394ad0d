"""Cohort operations (PRODUCT §8.5): reschedule a session, take a session's roll call, edit a cohort."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.access import touched
from api.deps import Caller, Deps, require
from api.idempotency import IdempotencyKey, idempotent
from api.models import CohortId, CohortPatchIn, Key, RescheduleIn, RollCallIn
from api.problems import Problem, from_domain, from_error
from domain.errors import DomainError
from service import cohorts as service

router = APIRouter(prefix="/v1/cohorts", tags=["cohorts"])


@router.post("/{cohort_id}/sessions/{session_key}/reschedule")
async def reschedule_session(
    request: Request,
    cohort_id: CohortId,
    session_key: Key,
    body: RescheduleIn,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Move a session of the cohort (coordinator): the cohort's calendar changes and every journey in
    the programme moves with it (its attendance deadline, its participants' calendar feeds).

    Answers the cohort as it is now and the journeys told (`journeys`); each applies the move on its
    own clock, so their status follows within moments."""
    require(caller, "coordinator")

    async def run() -> tuple[int, Any]:
        moved = await service.reschedule_session(
            resources, cohort_id, session_key, caller, starts_at=body.starts_at, location=body.location
        )
        touched(journeys=moved["journeys"])
        return 200, moved

    return await idempotent(request, resources, caller, key, run)


@router.post("/{cohort_id}/sessions/{session_key}/attendance")
async def roll_call(
    request: Request,
    cohort_id: CohortId,
    session_key: Key,
    body: RollCallIn,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A session's roll call (coordinator): one answer per line, in order, `recorded` or `refused` with
    the problem that refused it. A journey outside the cohort is refused `not_in_cohort`."""
    require(caller, "coordinator")

    async def run() -> tuple[int, Any]:
        lines = [service.RollCallRecord(journey_id=r.journey_id, status=r.status) for r in body.records]
        touched(journeys=[r.journey_id for r in body.records])
        answers = await service.roll_call(resources, cohort_id, session_key, lines, caller, update_key=key)
        return 200, {"results": [_answer(a) for a in answers]}

    return await idempotent(request, resources, caller, key, run)


def _answer(answer: service.RollCallAnswer) -> dict[str, Any]:
    if answer.error is None:
        return {"journey_id": answer.journey_id, "status": "recorded"}
    error = answer.error
    problem: Problem = from_domain(error) if isinstance(error, DomainError) else from_error(error)
    return {
        "journey_id": answer.journey_id,
        "status": "refused",
        "problem": {"status": problem.status, "title": problem.title, "detail": problem.detail, "code": problem.code},
    }


@router.patch("/{cohort_id}")
async def edit_cohort(
    request: Request,
    cohort_id: CohortId,
    body: CohortPatchIn,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Change a cohort's capacity, coordinator or session places (coordinator); fields left out stay.

    Running journeys keep the coordinator and places they were nominated with."""
    require(caller, "coordinator")

    async def run() -> tuple[int, Any]:
        return 200, await service.edit_cohort(
            resources, cohort_id, caller, changes=body.changes(), locations=body.locations
        )

    return await idempotent(request, resources, caller, key, run)
