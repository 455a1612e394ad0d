"""Planning: the milestones an enrolment sets, the rungs a slip climbs, the follow-ups a completion asks."""

from __future__ import annotations

from datetime import datetime

import isodate

from domain import events as e
from domain.calendar import Delay, WorkingCalendar
from domain.journey.state import JourneyState, MilestoneState
from domain.values import MilestoneKey


def enrolment(s: JourneyState) -> e.TalentEnrolled:
    """The enrolment of an approved nomination: every milestone of the programme, planned."""
    programme, cohort, cal = s.programme, s.cohort, s.calendar
    start = cohort.start_instant(programme)
    plans: list[e.MilestonePlan] = []
    scheduled = {x.key: x.starts_at for x in cohort.sessions}
    grace = programme.attendance_grace
    for session in programme.mandatory_sessions():
        plans.append(
            e.MilestonePlan(
                key=MilestoneKey.session(session.key),
                kind="session",
                ref=session.key,
                due_at=cal.add(scheduled[session.key], grace),
                clock=grace.clock,
            )
        )
    for track in programme.tracks:
        plans.append(
            e.MilestonePlan(
                key=MilestoneKey.track(track.key),
                kind="track",
                ref=track.key,
                due_at=cal.add(start, track.due),
                clock=track.due.clock,
            )
        )
    cadence = programme.mentor_meetings.cadence
    for n in range(1, programme.mentor_meetings.count + 1):
        plans.append(
            e.MilestonePlan(
                key=MilestoneKey.mentor_meeting(n),
                kind="mentor_meeting",
                ref=str(n),
                due_at=add_times(cal, start, cadence, n),
                clock=cadence.clock,
            )
        )
    plans.sort(key=lambda p: (p.due_at, p.key))
    end = programme.completion.evaluate_after
    return e.TalentEnrolled(
        cohort_id=cohort.cohort_id,
        starts_at=start,
        milestones=tuple(plans),
        evaluate_at=cal.add(start, end),
        evaluate_clock=end.clock,
    )


def add_times(cal: WorkingCalendar, start: datetime, delay: Delay, n: int) -> datetime:
    """`start` plus `n` times `delay`."""
    if delay.working_days is not None:
        return cal.add(start, Delay(working_days=delay.working_days * n))
    at = start
    for _ in range(n):
        at = cal.add(at, delay)
    return at


def follow_up_dues(s: JourneyState, at: datetime) -> tuple[datetime, ...]:
    """When the outcome follow-ups fall due after an evaluation `at`.

    Rules 3: a follow-up months after falls on a working day of the calendar (the next one, at the
    same wall-clock time), never on a Saturday, a holiday or in a closure.
    """
    fu = s.programme.follow_up
    local = s.calendar.local(at)
    if fu.after is not None:
        return tuple(s.calendar.add(local, delay) for delay in fu.after)
    dues = tuple(local + isodate.Duration(months=m) for m in fu.months)
    if s.rules_version >= 3:
        return tuple(s.calendar.next_working_day(due) for due in dues)
    return dues


def waived_at_enrolment(s: JourneyState, now: datetime) -> list[e.MilestoneWaived]:
    """Rules 3: the milestones already due when the talent is enrolled `now` are waived, not
    slipped, so a late approval never sets off a storm of escalations (PRODUCT §8.4)."""
    if s.rules_version < 3:
        return []
    return [
        e.MilestoneWaived(milestone=m.key, due_at=m.due_at, waived_at=now)
        for m in s.milestones
        if m.status == "open" and m.kind != "approval" and m.due_at <= now
    ]


def ladder(s: JourneyState, m: MilestoneState, slipped_at: datetime) -> tuple[e.RungPlan, ...]:
    """The rungs a milestone that slipped `slipped_at` will climb (domain.programme.Programme.rungs_for).

    Rules 3: a rung zero working days after the slip fires at the slip itself.
    """
    rules = s.rules_version
    return tuple(
        e.RungPlan(
            rung=i,
            recipient_role=r.recipient,
            due_at=slipped_at if rules >= 3 and r.after.working_days == 0 else s.calendar.add(slipped_at, r.after),
            clock=r.after.clock,
        )
        for i, r in s.programme.rungs_for(m.kind, rules)
    )
