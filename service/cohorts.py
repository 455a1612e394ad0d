"""What the API, the dashboard and the CLI do to a cohort: reschedule a session, take a roll call, edit it.

The cohort's definition lives in the catalog; its journeys each hold their own copy of its calendar,
so a change that concerns them (a session moved) reaches every open journey through its workflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog

from domain import commands as c
from domain.errors import DomainError
from domain.policy import IN_PROGRAMME_STATES
from domain.programme import Cohort
from infra.auth import Principal
from service import journeys as journey_service
from service.bootstrap import Resources
from service.errors import NotFound, NotInCohort, PersonErased, ServiceError, UnknownSession
from service.journeys import actor
from store.views import journeys as journeys_view
from workflows.client import JourneyNotRunning

log = structlog.get_logger("talent.service")

#: Every journey of a cohort, however many (a cohort's capacity is at most 10,000).
_ALL = 100_000

AttendanceStatus = Literal["attended", "absent", "excused"]


async def cohort(resources: Resources, cohort_id: str) -> Cohort:
    """A cohort, or `NotFound`."""
    found = await resources.catalog.cohort(cohort_id)
    if found is None:
        raise NotFound("cohort")
    return found


async def reschedule_session(
    resources: Resources,
    cohort_id: str,
    session_key: str,
    caller: Principal,
    *,
    starts_at: datetime,
    location: str | None = None,
) -> dict[str, Any]:
    """Move a session of a cohort: its calendar changes, and every open journey of it is told.

    The catalog's definition changes first (new nominations take the new date); then each journey
    in the programme gets the `session_rescheduled` signal, which its workflow applies on its own
    clock (the domain moves the attendance milestone, the calendar feeds follow its events).
    Answers the new definition and the journeys signalled. `UnknownSession`, `NotFound`; the
    catalog's `ProgrammeInvalid` for a date the programme does not allow.
    """
    before = await cohort(resources, cohort_id)
    if session_key not in {s.key for s in before.sessions}:
        raise UnknownSession(session_key)
    sessions = tuple(
        s.model_copy(update={"starts_at": starts_at, **({"location": location} if location is not None else {})})
        if s.key == session_key
        else s
        for s in before.sessions
    )
    after = Cohort.model_validate({**before.model_dump(), "sessions": [s.model_dump() for s in sessions]})
    await resources.catalog.update_cohort(before, after)
    command = c.RescheduleSession(**actor(caller), session_key=session_key, starts_at=starts_at)
    client = journey_service.journeys(resources)
    signalled: list[str] = []
    for journey in await journeys_view.of_cohort(resources.pool, cohort_id, limit=_ALL):
        if journey.state not in IN_PROGRAMME_STATES:
            continue
        try:
            await client.signal_rescheduled(journey.journey_id, command)
        except JourneyNotRunning:
            continue  # it ended since the read model was read: nothing of it moves any more
        signalled.append(journey.journey_id)
    log.info(
        "session_rescheduled",
        cohort_id=cohort_id,
        session_key=session_key,
        journeys=len(signalled),
        actor=command.actor_id,
    )
    return {"cohort": after.model_dump(mode="json"), "journeys": signalled}


async def edit_cohort(
    resources: Resources,
    cohort_id: str,
    caller: Principal,
    *,
    changes: Mapping[str, Any],
    locations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Change a cohort's capacity, coordinator or session places (`changes` holds only what changes).

    A capacity below the places already taken refuses only the approvals after it. Every journey
    still in the programme is told a new coordinator or place (the `cohort_changed` signal), so
    its later rungs reach the coordinator as the cohort has it now and its calendar shows the
    place. `UnknownSession` for a place of a session it lacks.
    """
    before = await cohort(resources, cohort_id)
    unknown = set(locations or {}) - {s.key for s in before.sessions}
    if unknown:
        raise UnknownSession(sorted(unknown)[0])
    sessions = [
        s.model_dump() | ({"location": locations[s.key]} if locations and s.key in locations else {})
        for s in before.sessions
    ]
    fields = {k: v for k, v in changes.items() if k in ("capacity", "coordinator_id")}
    after = Cohort.model_validate({**before.model_dump(), **fields, "sessions": sessions})
    signalled: list[str] = []
    if after != before:
        await resources.catalog.update_cohort(before, after)
        was = {x.key: x.location for x in before.sessions}
        places = {x.key: x.location for x in after.sessions if x.location != was.get(x.key)}
        if places or after.coordinator_id != before.coordinator_id:
            command = c.ChangeCohortDetails(
                **actor(caller),
                coordinator_id=after.coordinator_id if after.coordinator_id != before.coordinator_id else None,
                locations=places,
            )
            client = journey_service.journeys(resources)
            for journey in await journeys_view.of_cohort(resources.pool, cohort_id, limit=_ALL):
                if journey.state not in IN_PROGRAMME_STATES:
                    continue
                try:
                    await client.signal_cohort_changed(journey.journey_id, command)
                except JourneyNotRunning:
                    continue
                signalled.append(journey.journey_id)
    log.info(
        "cohort_edited",
        journeys=len(signalled),
        cohort_id=cohort_id,
        fields=sorted(fields),
        places=len(locations or {}),
        actor=actor(caller)["actor_id"],
    )
    return after.model_dump(mode="json")


@dataclass(frozen=True)
class RollCallRecord:
    """One line of a roll call: a journey and what happened."""

    journey_id: str
    status: AttendanceStatus


@dataclass(frozen=True)
class RollCallAnswer:
    """What became of one line: recorded, or refused with the error that refused it."""

    journey_id: str
    error: DomainError | ServiceError | PersonErased | None = None


async def roll_call(
    resources: Resources,
    cohort_id: str,
    session_key: str,
    records: Sequence[RollCallRecord],
    caller: Principal,
    *,
    update_key: str | None = None,
) -> list[RollCallAnswer]:
    """Record attendance at a session for many journeys of a cohort: one answer per line, in order.

    Each line is its own command to its own journey (a refusal of one does not hold back the
    others); a journey that is not in the cohort is refused as `NotInCohort`. With `update_key`
    (the caller's Idempotency-Key) a repeated roll call is the same updates again.
    """
    found = await cohort(resources, cohort_id)
    if session_key not in {s.key for s in found.sessions}:
        raise UnknownSession(session_key)
    answers: list[RollCallAnswer] = []
    for record in records:
        journey = await journeys_view.status(resources.pool, record.journey_id)
        if journey is None or journey.cohort_id != cohort_id:
            answers.append(RollCallAnswer(record.journey_id, NotInCohort()))
            continue
        command = c.RecordAttendance(**actor(caller), session_key=session_key, status=record.status)
        update_id = journey_service.update_id_for(
            caller.token_id, f"{update_key}\0{record.journey_id}" if update_key is not None else None
        )
        try:
            await journey_service.execute(resources, record.journey_id, command, update_id=update_id)
        except (DomainError, ServiceError, PersonErased) as refused:
            answers.append(RollCallAnswer(record.journey_id, refused))
            continue
        answers.append(RollCallAnswer(record.journey_id))
    refused_count = sum(1 for a in answers if a.error is not None)
    log.info("roll_call", cohort_id=cohort_id, session_key=session_key, lines=len(answers), refused=refused_count)
    return answers
