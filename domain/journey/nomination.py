"""Nominating a talent and deciding the nomination."""

from __future__ import annotations

from datetime import datetime

from domain import commands as c
from domain import events as e
from domain.errors import InvalidCommand, InvalidState, NotAllowed, ProgrammeInvalid
from domain.journey.clarity import ask_at_enrolment
from domain.journey.decision import Decision, require_role, resolve, stop_ladders
from domain.journey.planning import enrolment, waived_at_enrolment
from domain.journey.state import JourneyState
from domain.policy import may_send
from domain.programme import Cohort, Programme
from domain.values import MilestoneKey


def check_cohort_open(programme: Programme, cohort: Cohort, now: datetime) -> None:
    """Rules 3 (PRODUCT §8.4): a cohort takes nominations until `enrolment.closes` (default: its
    first mandatory session); later ones are refused with `cohort_closed`. The service asks the
    same before it stores anything; the journey asks again when it decides the nomination."""
    closes = cohort.enrolment_closes(programme)
    if now > closes:
        raise InvalidState(
            f"the cohort took nominations until {closes.isoformat()}: it is closed", code="cohort_closed"
        )


def check_cohort_staffed(programme: Programme, cohort: Cohort, rules_version: int) -> None:
    """Every rung reaches someone: a cohort whose ladders end at a coordinator it lacks is refused."""
    try:
        cohort.check_staffed(programme, rules_version)
    except ProgrammeInvalid as exc:
        raise InvalidCommand("invalid_cohort", "; ".join(exc.errors)) from exc


def nominate(d: Decision, cmd: c.NominateTalent) -> None:
    """A talent is nominated: the journey begins, its approval due by the programme's deadline."""
    if not may_send(cmd.actor_role, type(cmd)):
        raise NotAllowed("only a leader, a coordinator or an HR system can nominate")
    if cmd.talent_id == cmd.nearest_leader_id:
        raise InvalidCommand("leader_is_talent", "the talent cannot be their own nearest leader")
    try:
        cmd.cohort.check_against(cmd.programme)
    except ProgrammeInvalid as exc:
        raise InvalidCommand("invalid_cohort", "; ".join(exc.errors)) from exc
    if cmd.rules_version >= 3:
        check_cohort_staffed(cmd.programme, cmd.cohort, cmd.rules_version)
        check_cohort_open(cmd.programme, cmd.cohort, d.now)
    approval = cmd.programme.approval.deadline
    d.emit(
        e.TalentNominated(
            journey_id=cmd.journey_id,
            talent_id=cmd.talent_id,
            nearest_leader_id=cmd.nearest_leader_id,
            leaders_leader_id=cmd.leaders_leader_id,
            nominated_by=cmd.actor_id,
            programme=cmd.programme,
            cohort=cmd.cohort,
            motivation_ref=cmd.motivation_ref,
            external_ref=cmd.external_ref,
            external_ref_ref=cmd.external_ref_ref,
            rules_version=cmd.rules_version,
            nominated_at=d.now,
            approval_due=cmd.programme.working_calendar.add(d.now, approval),
            approval_clock=approval.clock,
        )
    )


def decide_nomination(d: Decision, cmd: c.DecideNomination) -> None:
    """A coordinator approves (the talent is enrolled) or rejects (with a reason) the nomination."""
    require_role(cmd, "decide on")
    s = d.s
    if s.state != "nominated":
        code = {"paused": "journey_paused", "withdrawn": "invalid_state"}.get(s.state, "already_decided")
        raise InvalidState(f"the nomination cannot be decided: the journey is {s.state}", code=code)
    if cmd.decision == "reject":
        if cmd.reason_ref is None:
            raise InvalidCommand("reason_required", "a rejection needs a reason")
        resolve(d, MilestoneKey.approval(), "met")
        d.emit(e.NominationRejected(decided_by=cmd.actor_id, reason_ref=cmd.reason_ref, decided_at=d.now))
        return
    d.emit(e.NominationApproved(decided_by=cmd.actor_id, reason_ref=cmd.reason_ref, decided_at=d.now))
    resolve(d, MilestoneKey.approval(), "met")
    d.emit(enrolment(d.s))
    for waived in waived_at_enrolment(d.s, d.now):
        d.emit(waived)
    ask_at_enrolment(d)


def expires_at(s: JourneyState) -> datetime | None:
    """Rules 3: when an undecided nomination expires (`approval.expires_after` its deadline)."""
    if s.rules_version < 3 or s.state != "nominated":
        return None
    return s.calendar.add(s.approval_due, s.programme.approval.expires_after)


def expire(d: Decision, at: datetime) -> None:
    """Rules 3: nobody decided the nomination in time: its ladder stops, it is rejected as `expired`."""
    stop_ladders(d, at)
    d.emit(e.NominationExpired(expired_at=at, due_at=d.s.approval_due))
