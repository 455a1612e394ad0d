"""Builders for unit tests: journeys of the reference programme at known points of its calendar."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from domain import commands as c
from domain.events import Event
from domain.programme import Cohort, Programme
from tests.support import (
    COORD,
    CPH,
    SYSTEM,
    Journey,
    nominate,
    reference_cohort,
    reference_programme_v1,
)

#: The hand-counted dates below are on the plain `dk` calendar of the reference programme's version 1.
PROGRAMME = reference_programme_v1()
COHORT = reference_cohort(PROGRAMME)

HR: c.Actor = {"actor_id": "hr-1", "actor_role": "hr_system"}
NEW_LEADER: c.Actor = {"actor_id": "p-leader-2", "actor_role": "leader"}
OTHER_TALENT: c.Actor = {"actor_id": "p-other", "actor_role": "talent"}

#: Tuesday 1 December 2026: the nomination. Its approval is due ten working days later.
NOMINATED_AT = datetime(2026, 12, 1, 10, 0, tzinfo=CPH)
APPROVAL_DUE = datetime(2026, 12, 15, 16, 0, tzinfo=CPH)
APPROVED_AT = datetime(2026, 12, 2, 10, 0, tzinfo=CPH)
#: The reference cohort starts on Monday 11 January 2027, at midnight local time.
COHORT_START = datetime(2027, 1, 11, 0, 0, tzinfo=CPH)
#: Working-day deadlines of the reference plan, counted by hand from the cohort start.
KICKOFF_DUE = datetime(2027, 1, 13, 16, 0, tzinfo=CPH)  # session 11 Jan 09:00 + 2 working days
MEETING_1_DUE = datetime(2027, 3, 2, 16, 0, tzinfo=CPH)  # 36 working days
OBSERVE_DUE = datetime(2027, 3, 8, 16, 0, tzinfo=CPH)  # 40 working days
LEADING_OTHERS_DUE = datetime(2027, 4, 7, 16, 0, tzinfo=CPH)  # session 5 Apr + 2 (after Easter)
LEAD_MEETING_DUE = datetime(2027, 5, 7, 16, 0, tzinfo=CPH)  # 80 working days
HARD_CONVERSATION_DUE = datetime(2027, 9, 13, 16, 0, tzinfo=CPH)  # 170 working days
EVALUATE_AT = datetime(2027, 10, 11, 16, 0, tzinfo=CPH)  # 190 working days


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A Copenhagen wall-clock instant."""
    return datetime(year, month, day, hour, minute, tzinfo=CPH)


def nominated(programme: Programme = PROGRAMME, cohort: Cohort | None = None, **overrides: Any) -> Journey:
    """A journey just nominated on NOMINATED_AT."""
    j = Journey()
    j.send(nominate(programme, cohort or reference_cohort(programme), **overrides), NOMINATED_AT)
    return j


def enrolled(programme: Programme = PROGRAMME, cohort: Cohort | None = None, **overrides: Any) -> Journey:
    """A journey approved (and so enrolled) on APPROVED_AT, before its cohort starts."""
    j = nominated(programme, cohort, **overrides)
    j.send(c.DecideNomination(**COORD, decision="approve"), APPROVED_AT)
    return j


def active(now: datetime | None = None, **overrides: Any) -> Journey:
    """An enrolled journey whose cohort has started (clock advanced to `now`, default its first day)."""
    j = enrolled(**overrides)
    j.send(c.AdvanceClock(**SYSTEM), now or at(2027, 1, 11))
    return j


def attend(j: Journey, now: datetime, *keys: str, status: str = "attended") -> None:
    """Record attendance at sessions."""
    for key in keys:
        j.send(c.RecordAttendance.model_validate({**COORD, "session_key": key, "status": status}), now)


def of(events: Iterable[Event], milestone: str, *types: str) -> list[Event]:
    """The events about one milestone (optionally only of some types)."""
    return [ev for ev in events if getattr(ev, "milestone", None) == milestone and (not types or ev.type in types)]


def raised(events: Iterable[Event], milestone: str) -> list[tuple[int, str, datetime]]:
    """(rung, recipient role, raised at) of the escalations raised for a milestone."""
    return [
        (ev.rung, ev.recipient_role, ev.raised_at)
        for ev in events
        if ev.type == "EscalationRaised" and ev.milestone == milestone
    ]


def history(j: Journey) -> list[Event]:
    """Every event the journey has recorded."""
    return [n.event for n in j.history]


def advance(j: Journey, now: datetime) -> list[Event]:
    """Let time pass to `now`."""
    return j.send(c.AdvanceClock(**SYSTEM), now)


def on_track(j: Journey, until: datetime | None = None, *, meetings_by: c.Actor = COORD) -> None:
    """Attend every session, pass every track and hold every meeting on time, up to `until` (1 Oct 2027).

    The meetings are logged by `meetings_by` (a coordinator: they count under every rules version).
    """
    until = until or at(2027, 10, 1)
    agenda: list[tuple[datetime, c.Command]] = []
    for session in j.s.cohort.sessions:
        agenda.append(
            (
                session.starts_at + timedelta(hours=3),
                c.RecordAttendance(**COORD, session_key=session.key, status="attended"),
            )
        )
    for m in j.s.milestones:
        if m.kind == "mentor_meeting":
            day = m.due_at - timedelta(days=1)
            agenda.append((day, c.LogMentorMeeting(**meetings_by, held_on=day.date())))
        elif m.kind == "track":
            day = m.due_at - timedelta(days=2)
            agenda.append((day, c.SubmitTrack(**COORD, track_key=m.ref)))
            agenda.append((day + timedelta(hours=1), c.SignOffTrack(**COORD, track_key=m.ref, decision="approve")))
    for when, command in sorted(agenda, key=lambda x: x[0]):
        if when <= until:
            j.send(command, when)
