"""Rules 4 (issue 14, PRODUCT §8.4): mentor meetings as appointments.

The nearest leader proposes when the next mentor meeting is held (`MentorMeetingProposed`): both
the talent and the leader get it in their calendar feeds and as an invitation by e-mail. The
leader is reminded ahead of it (`MentorMeetingReminded`, a clock action); the meeting is then
logged, or confirmed, as any other (logging a meeting on its date ends the appointment).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import commands as c
from domain import events as e
from domain.errors import InvalidCommand, InvalidState
from domain.journey.decision import Decision, require_running, require_sender
from domain.journey.state import JourneyState

#: The first rules version with appointments.
APPOINTMENT_RULES = 4
#: How long a mentor meeting is booked for (the programme gives no length).
MEETING_LENGTH = timedelta(hours=1)
#: How long before the meeting the leader is reminded: a working day's notice, or half the time
#: left when it is proposed sooner (a programme compressed into minutes).
REMINDER_LEAD = timedelta(days=1)


def reminder_at(proposed_at: datetime, starts_at: datetime) -> datetime | None:
    """When the leader is reminded of a meeting proposed `proposed_at` for `starts_at` (None: no time for one)."""
    lead = min(REMINDER_LEAD, (starts_at - proposed_at) / 2)
    if lead <= timedelta(0):
        return None
    return starts_at - lead


def propose(d: Decision, cmd: c.ProposeMentorMeeting) -> None:
    """The nearest leader (or a coordinator) proposes the next meeting; the same time again changes nothing."""
    s = d.s
    require_sender(s, cmd, "only the talent's nearest leader can propose a mentor meeting")
    if s.rules_version < APPOINTMENT_RULES:
        raise InvalidState(
            f"cannot propose a mentor meeting: the journey's rules (version {s.rules_version}) have no appointments",
            code="not_in_rules",
        )
    require_running(s, "propose a mentor meeting on")
    if cmd.starts_at <= d.now:
        raise InvalidCommand("invalid_date", "a mentor meeting is proposed for a time to come")
    if s.evaluate_at is not None and cmd.starts_at > s.evaluate_at:
        raise InvalidCommand("invalid_date", "a mentor meeting is proposed before the programme ends")
    current = s.appointment
    if current is not None and current.starts_at == cmd.starts_at:
        return
    d.emit(
        e.MentorMeetingProposed(
            number=current.number if current is not None else s.meetings_held() + 1,
            due_at=cmd.starts_at,
            ends_at=cmd.starts_at + MEETING_LENGTH,
            proposed_by=cmd.actor_id,
            remind_at=reminder_at(d.now, cmd.starts_at),
            proposal=current.proposals + 1 if current is not None else 1,
        )
    )


def reminding_at(s: JourneyState) -> datetime | None:
    """Rules 4: when the leader is reminded of the proposed meeting (None: nothing to remind of)."""
    a = s.appointment
    if s.rules_version < APPOINTMENT_RULES or a is None or a.reminded or a.remind_at is None:
        return None
    if s.state not in ("enrolled", "active"):
        return None
    return a.remind_at


def remind(d: Decision, at: datetime) -> None:
    """The leader is reminded of the proposed meeting `at` its reminder time."""
    a = d.s.appointment
    if a is None:  # pragma: no cover - reminding_at found one
        return
    d.emit(e.MentorMeetingReminded(number=a.number, due_at=a.starts_at, reminded_at=at))
