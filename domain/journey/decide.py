"""`decide`: the events a command causes at an instant, after and before letting time pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from domain import commands as c
from domain import events as e
from domain.errors import InvalidState
from domain.journey import appointments, clarity, course, escalations, nomination, sessions, work
from domain.journey.clock import advance
from domain.journey.decision import Decision
from domain.journey.state import JourneyState


def decide(
    state: JourneyState | None,
    command: c.Command,
    *,
    now: datetime,
    new_ids: Callable[[], UUID],
) -> list[e.NewEvent]:
    """The events a command causes at `now`, or a DomainError with a stable code.

    An empty list means the command is already satisfied (it changes nothing twice).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    d = Decision(state, now)
    if state is None:
        if not isinstance(command, c.NominateTalent):
            raise InvalidState("the journey does not exist", code="journey_not_found")
        nomination.nominate(d, command)
    else:
        if isinstance(command, c.NominateTalent):
            raise InvalidState("the journey already exists", code="journey_exists")
        advance(d, before_command=True)
        _handle(d, command)
    advance(d)
    return [e.NewEvent(event_id=new_ids(), occurred_at=now, event=ev) for ev in d.events]


def _handle(d: Decision, cmd: c.Command) -> None:
    match cmd:
        case c.DecideNomination():
            nomination.decide_nomination(d, cmd)
        case c.RecordAttendance():
            sessions.record_attendance(d, cmd)
        case c.RescheduleSession():
            sessions.reschedule(d, cmd)
        case c.ChangeCohortDetails():
            sessions.change_cohort_details(d, cmd)
        case c.SubmitTrack():
            work.submit_track(d, cmd)
        case c.SignOffTrack():
            work.sign_off(d, cmd)
        case c.LogMentorMeeting():
            if d.s.rules_version >= 2:
                work.log_meeting_confirmed(d, cmd)
            else:
                work.log_meeting(d, cmd)
        case c.ConfirmMentorMeeting():
            work.confirm_meeting(d, cmd)
        case c.PauseJourney():
            course.pause(d, cmd)
        case c.ResumeJourney():
            course.resume(d, cmd)
        case c.ChangeNearestLeader():
            course.change_leader(d, cmd)
        case c.WithdrawTalent():
            course.withdraw(d, cmd)
        case c.OverrideCompletion():
            course.override(d, cmd)
        case c.RecordOutcome():
            course.record_outcome(d, cmd)
        case c.RecordErasure():
            course.record_erasure(d, cmd)
        case c.AcknowledgeEscalation():
            escalations.acknowledge(d, cmd)
        case c.ResolveEscalation():
            escalations.resolve_escalation(d, cmd)
        case c.AssessReadiness():
            clarity.assess_readiness(d, cmd)
        case c.DebriefLab():
            clarity.debrief_lab(d, cmd)
        case c.ProposeMentorMeeting():
            appointments.propose(d, cmd)
        case c.AdvanceClock():
            pass
        case c.NominateTalent():  # pragma: no cover - handled by decide()
            raise InvalidState("the journey already exists", code="journey_exists")
