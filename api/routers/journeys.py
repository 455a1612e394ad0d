"""Journeys: nominate, read (scoped), and the commands that go to the workflow as updates."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints
from temporalio.service import RPCError, RPCStatusCode

from activities.store.vault import PersonData
from api.auth import Principal
from api.deps import Caller, Deps, Resources, can_see, require
from api.idempotency import idempotent
from api.problems import Problem, not_found
from domain import commands as c
from domain.events import stream_id_for
from workers.journeys import journey_handle, start_journey
from workflows.journey import CommandResult

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
PersonId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
_NAMESPACE = uuid.UUID("0d8f4b53-8a3e-4c1e-9b7a-52f1c0e2d6a4")
OPEN_STATES = ("nominated", "enrolled", "active", "paused", "completed", "not_completed", "following_up")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonIn(_In):
    """A person named in a request; their name and e-mail go to the vault, never to an event."""

    person_id: PersonId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
    workplace: Annotated[str, StringConstraints(max_length=200)] | None = None
    language: Literal["da", "en"] = "da"


class NominationIn(_In):
    """POST /v1/journeys."""

    cohort_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    external_ref: Annotated[str, StringConstraints(max_length=200)] | None = None
    motivation: Text
    talent: PersonIn
    nearest_leader: PersonIn
    leaders_leader: PersonIn | None = None


class DecisionIn(_In):
    """POST .../decision."""

    decision: Literal["approve", "reject"]
    reason: Text | None = None


class AttendanceIn(_In):
    """POST .../attendance."""

    session_key: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    status: Literal["attended", "absent", "excused"]


class SubmissionIn(_In):
    """POST .../tracks/{key}/submission."""

    reflection: Text


class SignoffIn(_In):
    """POST .../tracks/{key}/signoff."""

    decision: Literal["approve", "return"]
    comment: Text | None = None


class MeetingIn(_In):
    """POST .../mentor-meetings."""

    held_on: date
    notes: Text | None = None


class ReasonIn(_In):
    """POST .../pause and .../withdraw."""

    reason: Text


class ResumeIn(_In):
    """POST .../resume."""


class OutcomeIn(_In):
    """POST .../outcome."""

    applied_for_leader_post: bool
    appointed: bool
    on: date


def _actor(caller: Principal) -> c.Actor:
    role: c.ActorRole = caller.role
    return {"actor_id": caller.person_id or caller.token_id, "actor_role": role}


async def _status(resources: Resources, journey_id: str) -> dict[str, Any]:
    status = await resources.store.status(journey_id)
    if status is None:
        raise not_found("journey")
    return status.model_dump(mode="json")


@router.post("", status_code=201)
async def nominate(
    request: Request, resources: Deps, caller: Caller, body: NominationIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Nominate a talent: 201 with the new journey, or 200 with the talent's open journey."""
    require(caller, "hr_system", "leader", "coordinator")
    if caller.role == "leader" and caller.person_id != body.nearest_leader.person_id:
        raise Problem(403, "Forbidden", "a leader nominates as the talent's nearest leader", code="forbidden")

    async def run() -> tuple[int, Any]:
        cohort = await resources.catalog.cohort(body.cohort_id)
        if cohort is None:
            raise Problem(422, "Invalid request", f"unknown cohort {body.cohort_id!r}", code="unknown_cohort")
        programme = await resources.catalog.programme(cohort.programme_id, cohort.programme_version)
        if programme is None:  # pragma: no cover - cohorts are created against published programmes
            raise Problem(422, "Invalid request", "the cohort's programme is not published", code="unknown_programme")
        existing = await resources.pool.fetchval(
            "SELECT journey_id FROM journey_status WHERE talent_id = $1 AND programme_id = $2 AND state = ANY($3) "
            "ORDER BY journey_id LIMIT 1",
            body.talent.person_id,
            programme.id,
            list(OPEN_STATES),
        )
        if existing is not None:
            return 200, await _status(resources, existing)
        # A deterministic id: two concurrent nominations of one talent start one workflow.
        ended = await resources.pool.fetchval(
            "SELECT count(*) FROM journey_status WHERE talent_id = $1 AND programme_id = $2",
            body.talent.person_id,
            programme.id,
        )
        journey_id = str(uuid.uuid5(_NAMESPACE, f"{programme.id}:{body.talent.person_id}:{ended}"))
        for person in (body.talent, body.nearest_leader, body.leaders_leader):
            if person is not None:
                await resources.vault.put_person(
                    person.person_id,
                    PersonData(
                        name=person.name, email=person.email, workplace=person.workplace, language=person.language
                    ),
                )
        motivation = await resources.vault.put_text(body.talent.person_id, body.motivation)
        nomination = c.NominateTalent(
            **_actor(caller),
            journey_id=journey_id,
            talent_id=body.talent.person_id,
            nearest_leader_id=body.nearest_leader.person_id,
            leaders_leader_id=body.leaders_leader.person_id if body.leaders_leader else None,
            programme=programme,
            cohort=cohort,
            motivation_ref=motivation,
            external_ref=body.external_ref,
        )
        await start_journey(
            resources.temporal,
            nomination,
            task_queue=resources.task_queue,
            correlation_id=request.headers.get("X-Correlation-Id"),
        )
        # The workflow stores the nomination in its first step; answer with the stored journey.
        for _ in range(200):
            status = await resources.store.status(journey_id)
            if status is not None:
                return 201, status.model_dump(mode="json")
            await asyncio.sleep(0.05)
        return 201, {"journey_id": journey_id, "cohort_id": cohort.cohort_id, "state": "nominated"}

    return await idempotent(request, resources, caller, key, run)


@router.get("")
async def list_journeys(
    resources: Deps,
    caller: Caller,
    cohort_id: str | None = None,
    state: str | None = None,
    at_risk: bool | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Journeys the caller may see, filtered, in pages of at most 200 (`after` = last journey id)."""
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
    """A journey's status; `as_of` returns it as it stood then."""
    if not await can_see(resources, caller, journey_id):
        raise not_found("journey")
    if as_of is None:
        return await _status(resources, journey_id)
    status = await resources.store.status_as_of(journey_id, as_of)
    if status is None:
        raise not_found("journey at that time")
    return status.model_dump(mode="json")


@router.get("/{journey_id}/events")
async def journey_events(journey_id: str, resources: Deps, caller: Caller) -> dict[str, Any]:
    """A journey's history: the stored events, ids only."""
    if not await can_see(resources, caller, journey_id):
        raise not_found("journey")
    events = await resources.store.read_stream(stream_id_for(journey_id))
    return {"items": [ev.model_dump(mode="json") for ev in events]}


async def _send(
    request: Request,
    resources: Resources,
    caller: Caller,
    journey_id: str,
    update: str,
    make: Any,
    key: str | None,
) -> JSONResponse:
    if not await can_see(resources, caller, journey_id):
        raise not_found("journey")

    async def run() -> tuple[int, Any]:
        talent_id = await resources.pool.fetchval(
            "SELECT talent_id FROM journey_status WHERE journey_id = $1", journey_id
        )
        command = await make(talent_id)
        handle = journey_handle(resources.temporal, journey_id)
        try:
            result = await handle.execute_update(update, command, id=key, result_type=CommandResult)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Problem(
                    409, "Journey closed", "the journey has ended and takes no commands", code="journey_ended"
                ) from exc
            raise
        body = await _status(resources, journey_id)
        body["events"] = result.events
        return 200, body

    return await idempotent(request, resources, caller, key, run)


async def _text(resources: Resources, talent_id: str, text: str | None) -> str | None:
    return await resources.vault.put_text(talent_id, text) if text else None


@router.post("/{journey_id}/decision")
async def decide_nomination(
    journey_id: str, body: DecisionIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Approve or reject the nomination (coordinator)."""
    require(caller, "coordinator")

    async def make(talent_id: str) -> c.Command:
        return c.DecideNomination(
            **_actor(caller), decision=body.decision, reason_ref=await _text(resources, talent_id, body.reason)
        )

    return await _send(request, resources, caller, journey_id, "decide_nomination", make, key)


@router.post("/{journey_id}/attendance")
async def record_attendance(
    journey_id: str, body: AttendanceIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Record attendance at a session (coordinator)."""
    require(caller, "coordinator")

    async def make(_: str) -> c.Command:
        return c.RecordAttendance(**_actor(caller), session_key=body.session_key, status=body.status)

    return await _send(request, resources, caller, journey_id, "record_attendance", make, key)


@router.post("/{journey_id}/tracks/{track_key}/submission")
async def submit_track(
    journey_id: str,
    track_key: str,
    body: SubmissionIn,
    request: Request,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Submit a track's reflection (the talent)."""
    require(caller, "talent")

    async def make(talent_id: str) -> c.Command:
        return c.SubmitTrack(
            **_actor(caller), track_key=track_key, reflection_ref=await _text(resources, talent_id, body.reflection)
        )

    return await _send(request, resources, caller, journey_id, "submit_track", make, key)


@router.post("/{journey_id}/tracks/{track_key}/signoff")
async def sign_off_track(
    journey_id: str,
    track_key: str,
    body: SignoffIn,
    request: Request,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Approve or return a submitted track (the nearest leader)."""
    require(caller, "leader")

    async def make(talent_id: str) -> c.Command:
        return c.SignOffTrack(
            **_actor(caller),
            track_key=track_key,
            decision=body.decision,
            comment_ref=await _text(resources, talent_id, body.comment),
        )

    return await _send(request, resources, caller, journey_id, "sign_off_track", make, key)


@router.post("/{journey_id}/mentor-meetings")
async def log_mentor_meeting(
    journey_id: str, body: MeetingIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Record a mentor meeting (the nearest leader or the talent)."""
    require(caller, "leader", "talent")

    async def make(talent_id: str) -> c.Command:
        return c.LogMentorMeeting(
            **_actor(caller), held_on=body.held_on, notes_ref=await _text(resources, talent_id, body.notes)
        )

    return await _send(request, resources, caller, journey_id, "log_mentor_meeting", make, key)


@router.post("/{journey_id}/pause")
async def pause(
    journey_id: str, body: ReasonIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Pause the journey (coordinator)."""
    require(caller, "coordinator")

    async def make(talent_id: str) -> c.Command:
        return c.PauseJourney(**_actor(caller), reason_ref=await _text(resources, talent_id, body.reason))

    return await _send(request, resources, caller, journey_id, "pause", make, key)


@router.post("/{journey_id}/resume")
async def resume(
    journey_id: str, body: ResumeIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Resume a paused journey (coordinator)."""
    require(caller, "coordinator")
    del body

    async def make(_: str) -> c.Command:
        return c.ResumeJourney(**_actor(caller))

    return await _send(request, resources, caller, journey_id, "resume", make, key)


@router.post("/{journey_id}/withdraw")
async def withdraw(
    journey_id: str, body: ReasonIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Withdraw the talent (coordinator)."""
    require(caller, "coordinator")

    async def make(talent_id: str) -> c.Command:
        return c.WithdrawTalent(**_actor(caller), reason_ref=await _text(resources, talent_id, body.reason))

    return await _send(request, resources, caller, journey_id, "withdraw", make, key)


@router.post("/{journey_id}/outcome")
async def record_outcome(
    journey_id: str, body: OutcomeIn, request: Request, resources: Deps, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Record whether the talent applied for / was appointed to a leader post."""
    require(caller, "hr_system", "coordinator", "talent")

    async def make(_: str) -> c.Command:
        return c.RecordOutcome(
            **_actor(caller), applied_for_leader_post=body.applied_for_leader_post, appointed=body.appointed, on=body.on
        )

    return await _send(request, resources, caller, journey_id, "record_outcome", make, key)
