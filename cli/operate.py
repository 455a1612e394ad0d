"""Operator commands on running journeys and cohorts: decide, attend, pause, resume, withdraw, change a
leader, override a completion, answer the readiness question, debrief a lab, propose a mentor meeting;
reschedule a session, take a roll call, edit a cohort.

The same service functions as the API's routes and the dashboard's forms, with the same body models
for their input (so the same limits). Exit codes (mapped in `cli.main`): 0 done, 1 refused or
invalid input (a roll call with any line refused is 1 too), 2 a dependency is unreachable.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from api.auth import Principal, Role
from api.models import (
    AttendanceIn,
    CohortPatchIn,
    CompletionOverrideIn,
    DecisionIn,
    Key,
    NearestLeaderIn,
    ReasonIn,
    RescheduleIn,
    RollCallIn,
)
from api.routers.clarity import DebriefIn, MeetingProposalIn, ReadinessIn
from cli.ops import Refused, _errors, _read_document
from domain import commands as c
from domain.errors import DomainError, ProgrammeInvalid
from infra.settings import Settings
from service import cohorts as cohort_service
from service import journeys as service
from service.bootstrap import open_resources
from service.errors import ServiceError
from service.journeys import NamedPerson, actor

M = TypeVar("M", bound=BaseModel)
#: A command made from its texts' vault references (`<field>_ref`), as the API's table builds them.
Build = Callable[[c.Actor, dict[str, str | None]], c.Command]


def _operator(role: Role = "coordinator") -> Principal:
    """The person at the terminal, as a caller: their login, with the role the command acts in."""
    return Principal(token_id=f"cli:{getpass.getuser()}", role=role)


def _parse(model: type[M], data: Any, where: str = "input") -> M:
    """`data` as the API's body model, or Refused naming what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Refused(f"{where}: {_errors(exc)}") from exc


async def _send(
    settings: Settings,
    journey_id: str,
    build: Build,
    *,
    role: Role = "coordinator",
    texts: Mapping[str, str | None] | None = None,
    people: Sequence[NamedPerson] = (),
) -> int:
    """Send one command to a journey through the service; print its status and what it caused."""
    caller = _operator(role)
    async with open_resources(settings) as resources:
        talent_id = str((await service.status(resources, journey_id))["talent_id"])
        result = await service.execute(
            resources,
            journey_id,
            lambda refs: build(actor(caller), refs),
            update_id=service.update_id_for(caller.token_id, None),
            talent_id=talent_id,
            texts=texts,
            people=people,
        )
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    events = ", ".join(result.get("events", [])) or "nothing changed"
    print(f"{journey_id}: {events}", file=sys.stderr)
    return 0


async def decide(settings: Settings, journey_id: str, decision: str, reason: str | None) -> int:
    """Approve or reject a nomination."""
    body = _parse(DecisionIn, {"decision": decision, "reason": reason})
    return await _send(
        settings,
        journey_id,
        lambda a, x: c.DecideNomination(**a, decision=body.decision, reason_ref=x["reason_ref"]),
        texts={"reason": body.reason},
    )


async def attend(settings: Settings, journey_id: str, session_key: str, status: str) -> int:
    """Record a journey's attendance at a session."""
    body = _parse(AttendanceIn, {"session_key": session_key, "status": status})
    return await _send(
        settings, journey_id, lambda a, _: c.RecordAttendance(**a, session_key=body.session_key, status=body.status)
    )


async def pause(settings: Settings, journey_id: str, reason: str) -> int:
    """Pause a journey (its clock stops)."""
    body = _parse(ReasonIn, {"reason": reason})
    return await _send(
        settings,
        journey_id,
        lambda a, x: c.PauseJourney(**a, reason_ref=x["reason_ref"]),
        texts={"reason": body.reason},
    )


async def resume(settings: Settings, journey_id: str) -> int:
    """Resume a paused journey."""
    return await _send(settings, journey_id, lambda a, _: c.ResumeJourney(**a))


async def withdraw(settings: Settings, journey_id: str, reason: str) -> int:
    """Withdraw the talent."""
    body = _parse(ReasonIn, {"reason": reason})
    return await _send(
        settings,
        journey_id,
        lambda a, x: c.WithdrawTalent(**a, reason_ref=x["reason_ref"]),
        texts={"reason": body.reason},
    )


async def change_leader(settings: Settings, journey_id: str, path: Path, role: Role) -> int:
    """Hand the talent to a new nearest leader, from a YAML/JSON file (the body of POST .../nearest-leader)."""
    body = _parse(NearestLeaderIn, _read_document(path), str(path))
    people = [p for p in (body.nearest_leader, body.leaders_leader) if p is not None]
    return await _send(
        settings,
        journey_id,
        lambda a, _: c.ChangeNearestLeader(
            **a,
            nearest_leader_id=body.nearest_leader.person_id,
            leaders_leader_id=body.leaders_leader.person_id if body.leaders_leader else None,
        ),
        role=role,
        people=people,
    )


async def override(settings: Settings, journey_id: str, result: str, reason: str) -> int:
    """Override a journey's completion evaluation."""
    body = _parse(CompletionOverrideIn, {"result": result, "reason": reason})
    return await _send(
        settings,
        journey_id,
        lambda a, x: c.OverrideCompletion(**a, outcome=body.result, reason_ref=x["reason_ref"]),
        texts={"reason": body.reason},
    )


# -- clarity (issue 14, rules 4) -----------------------------------------------------------------


async def readiness(settings: Settings, journey_id: str, stage: str, answer: str, reason: str | None) -> int:
    """Answer the readiness question of the open stage on the talent's behalf (coordinator), as
    POST .../readiness: the same answer again changes nothing."""
    body = _parse(ReadinessIn, {"stage": stage, "answer": answer, "reason": reason})
    return await _send(
        settings,
        journey_id,
        lambda a, x: c.AssessReadiness(**a, stage=body.stage, answer=body.answer, reason_ref=x["reason_ref"]),
        texts={"reason": body.reason},
    )


async def debrief(settings: Settings, journey_id: str, session_key: str, clarity: int | None, notes: str | None) -> int:
    """Enter a talent's debrief of a held dilemma lab (e.g. handed in on paper), as POST
    .../sessions/{session_key}/debrief. Only the talent debriefs through the API; the operator
    enters it on the programme's behalf, recorded as the system with the operator's login."""
    body = _parse(DebriefIn, {"clarity": clarity, "notes": notes})
    try:
        key = TypeAdapter(Key).validate_python(session_key)
    except ValidationError as exc:
        raise Refused(f"session_key: {_errors(exc)}") from exc
    return await _send(
        settings,
        journey_id,
        lambda a, x: c.DebriefLab(
            actor_id=a["actor_id"], actor_role="system", session_key=key, clarity=body.clarity, notes_ref=x["notes_ref"]
        ),
        texts={"notes": body.notes},
    )


async def propose_meeting(settings: Settings, journey_id: str, starts_at: str) -> int:
    """Propose when the next mentor meeting is held on the nearest leader's behalf (coordinator), as
    POST .../mentor-meetings/proposal: both get the invitation; another time moves it."""
    body = _parse(MeetingProposalIn, {"starts_at": starts_at})
    return await _send(settings, journey_id, lambda a, _: c.ProposeMentorMeeting(**a, starts_at=body.starts_at))


# -- cohorts -------------------------------------------------------------------------------------


async def reschedule(
    settings: Settings, cohort_id: str, session_key: str, starts_at: str, reason: str, location: str | None
) -> int:
    """Move a session of a cohort for every open journey of it."""
    body = _parse(RescheduleIn, {"starts_at": starts_at, "location": location, "reason": reason})
    async with open_resources(settings) as resources:
        try:
            moved = await cohort_service.reschedule_session(
                resources, cohort_id, session_key, _operator(), starts_at=body.starts_at, location=body.location
            )
        except ProgrammeInvalid as exc:
            raise Refused("; ".join(exc.errors)) from exc
    print(json.dumps(moved, indent=2, ensure_ascii=False))
    print(f"{cohort_id} {session_key}: moved; {len(moved['journeys'])} journey(s) told", file=sys.stderr)
    return 0


async def roll_call(settings: Settings, cohort_id: str, session_key: str, lines: Sequence[str]) -> int:
    """Record a session's attendance for many journeys (`JOURNEY=STATUS` each); one line of answer per journey."""
    records: list[dict[str, str]] = []
    for line in lines:
        journey_id, sep, status = line.partition("=")
        if not sep:
            raise Refused(f"{line!r}: expected JOURNEY_ID=attended|absent|excused")
        records.append({"journey_id": journey_id, "status": status})
    body = _parse(RollCallIn, {"records": records})
    async with open_resources(settings) as resources:
        answers = await cohort_service.roll_call(
            resources,
            cohort_id,
            session_key,
            [cohort_service.RollCallRecord(journey_id=r.journey_id, status=r.status) for r in body.records],
            _operator(),
        )
    for answer in answers:
        error = answer.error
        if error is None:
            print(f"{answer.journey_id}  recorded")
        else:
            detail = error.message if isinstance(error, ServiceError | DomainError) else str(error)
            print(f"{answer.journey_id}  refused: {detail} ({error.code})")
    refused = sum(1 for a in answers if a.error is not None)
    if refused:
        print(f"talent: {refused} of {len(answers)} line(s) refused", file=sys.stderr)
        return 1
    return 0


async def edit(
    settings: Settings,
    cohort_id: str,
    *,
    capacity: int | None,
    coordinator: str | None,
    no_coordinator: bool,
    places: Sequence[str],
) -> int:
    """Change a cohort's capacity, coordinator or session places."""
    data: dict[str, Any] = {}
    if capacity is not None:
        data["capacity"] = capacity
    if coordinator is not None and no_coordinator:
        raise Refused("give --coordinator or --no-coordinator, not both")
    if coordinator is not None or no_coordinator:
        data["coordinator_id"] = coordinator
    locations: dict[str, str] = {}
    for place in places:
        key, sep, where = place.partition("=")
        if not sep:
            raise Refused(f"{place!r}: expected SESSION=PLACE")
        locations[key] = where
    if locations:
        data["locations"] = locations
    if not data:
        raise Refused("nothing to change: give --capacity, --coordinator, --no-coordinator or --place")
    body = _parse(CohortPatchIn, data)
    async with open_resources(settings) as resources:
        try:
            cohort = await cohort_service.edit_cohort(
                resources, cohort_id, _operator(), changes=body.changes(), locations=body.locations
            )
        except ProgrammeInvalid as exc:
            raise Refused("; ".join(exc.errors)) from exc
    print(json.dumps(cohort, indent=2, ensure_ascii=False))
    return 0
