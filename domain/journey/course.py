"""The journey's course: pause and resume, a new leader, withdrawal, evaluation, override, outcomes."""

from __future__ import annotations

from datetime import datetime

from domain import commands as c
from domain import events as e
from domain.calendar import real_time_between
from domain.errors import InvalidCommand, InvalidState, NotAllowed
from domain.journey.decision import Decision, is_talent, require_role, require_state, stop_ladders
from domain.journey.planning import follow_up_dues
from domain.policy import EVALUATED_STATES, IN_PROGRAMME_STATES, OPEN_STATES, RUNNING_STATES, may_send
from domain.values import MilestoneKey


def pause(d: Decision, cmd: c.PauseJourney) -> None:
    """Stop the journey's clock (PRODUCT §8.4: not the people)."""
    require_role(cmd, "pause")
    require_state(d.s, RUNNING_STATES | {"nominated"}, "pause")
    d.emit(
        e.JourneyPaused(paused_by=cmd.actor_id, reason_ref=cmd.reason_ref, paused_at=d.now, previous_state=d.s.state)
    )


def resume(d: Decision, cmd: c.ResumeJourney) -> None:
    """The clock runs again: the journey's own deadlines and pending rungs move by the pause."""
    require_role(cmd, "resume")
    s = d.s
    if s.state != "paused" or s.paused_at is None or s.paused_from is None:
        raise InvalidState(f"cannot resume a journey that is {s.state}", code="not_paused")
    cal, paused_at = s.calendar, s.paused_at
    shifts: list[e.DeadlineShift] = []
    for m in s.milestones:
        if m.status == "open":
            shifts.append(e.DeadlineShift(milestone=m.key, due_at=cal.shift(m.due_at, m.clock, paused_at, d.now)))
        elif m.ladder_running:
            ladder = tuple(
                r
                if r.rung in m.raised
                else r.model_copy(update={"due_at": cal.shift(r.due_at, r.clock, paused_at, d.now)})
                for r in m.ladder
            )
            shifts.append(e.DeadlineShift(milestone=m.key, due_at=m.due_at, ladder=ladder))
    evaluate_at = cal.shift(s.evaluate_at, s.evaluate_clock, paused_at, d.now) if s.evaluate_at is not None else None
    approval = s.milestone(MilestoneKey.approval())
    approval_due = None
    if approval is not None and approval.status == "open":
        approval_due = next(x.due_at for x in shifts if x.milestone == MilestoneKey.approval())
    d.emit(
        e.JourneyResumed(
            resumed_by=cmd.actor_id,
            resumed_at=d.now,
            paused_working_days=cal.working_days_between(paused_at, d.now),
            paused_seconds=int(real_time_between(paused_at, d.now).total_seconds()),
            resumed_state=s.paused_from,
            shifts=tuple(shifts),
            evaluate_at=evaluate_at,
            approval_due=approval_due,
        )
    )


def change_leader(d: Decision, cmd: c.ChangeNearestLeader) -> None:
    """The talent gets a new nearest leader (and leader's leader)."""
    require_role(cmd, "change the nearest leader of")
    s = d.s
    require_state(s, OPEN_STATES, "change the nearest leader of")
    if cmd.nearest_leader_id == s.talent_id:
        raise InvalidCommand("leader_is_talent", "the talent cannot be their own nearest leader")
    if cmd.nearest_leader_id == s.nearest_leader_id and cmd.leaders_leader_id == s.leaders_leader_id:
        return
    d.emit(
        e.NearestLeaderChanged(
            previous_leader_id=s.nearest_leader_id,
            nearest_leader_id=cmd.nearest_leader_id,
            leaders_leader_id=cmd.leaders_leader_id,
            changed_by=cmd.actor_id,
        )
    )


def withdraw(d: Decision, cmd: c.WithdrawTalent) -> None:
    """The talent leaves the programme; running ladders stop."""
    require_role(cmd, "withdraw")
    require_state(d.s, IN_PROGRAMME_STATES, "withdraw")
    stop_ladders(d)
    d.emit(e.TalentWithdrawn(withdrawn_by=cmd.actor_id, reason_ref=cmd.reason_ref, withdrawn_at=d.now))


def evaluate(d: Decision, at: datetime) -> None:
    """Completion is evaluated `at` the programme's end: completed, or not with its reasons."""
    s = d.s
    # At the evaluation instant, not at `now`: when the clock is advanced must not change history.
    stop_ladders(d, at)
    attended, required = s.sessions_counts()
    done = s.tracks_done()
    held = s.meetings_held()
    rules = s.programme.completion
    reasons = []
    if attended < required:
        reasons.append("attendance_below_minimum")
    if done < rules.tracks_required:
        reasons.append("tracks_missing")
    if held < rules.min_mentor_meetings:
        reasons.append("mentor_meetings_missing")
    follow_ups = follow_up_dues(s, at)
    if reasons:
        d.emit(
            e.ProgrammeNotCompleted(
                evaluated_at=at,
                reasons=tuple(reasons),
                sessions_attended=attended,
                tracks_done=done,
                meetings_held=held,
                follow_ups=follow_ups,
            )
        )
    else:
        d.emit(
            e.ProgrammeCompleted(
                evaluated_at=at,
                sessions_attended=attended,
                tracks_done=done,
                meetings_held=held,
                follow_ups=follow_ups,
            )
        )


def override(d: Decision, cmd: c.OverrideCompletion) -> None:
    """A coordinator overrides the evaluated completion, with a reason."""
    require_role(cmd, "override completion of")
    s = d.s
    require_state(s, EVALUATED_STATES, "override completion of")
    if cmd.reason_ref is None:
        raise InvalidCommand("reason_required", "an override needs a reason")
    if s.completion == cmd.outcome:
        return
    attended, _ = s.sessions_counts()
    common = {
        "evaluated_at": d.now,
        "override": True,
        "decided_by": cmd.actor_id,
        "reason_ref": cmd.reason_ref,
        "sessions_attended": attended,
        "tracks_done": s.tracks_done(),
        "meetings_held": s.meetings_held(),
        "follow_ups": tuple(f.due_at for f in s.follow_ups),
    }
    if cmd.outcome == "completed":
        d.emit(e.ProgrammeCompleted.model_validate(common))
    else:
        d.emit(e.ProgrammeNotCompleted.model_validate({**common, "reasons": ("coordinator_override",)}))


def record_outcome(d: Decision, cmd: c.RecordOutcome) -> None:
    """An outcome (applied for, appointed to a leader post) is recorded, once per answer."""
    s = d.s
    if cmd.actor_role == "talent" and not is_talent(s, cmd):
        raise NotAllowed("a talent can record only their own outcome")
    if not may_send(cmd.actor_role, type(cmd)):
        raise NotAllowed(f"a {cmd.actor_role} cannot record an outcome")
    require_state(s, EVALUATED_STATES, "record an outcome on")
    if cmd.appointed and not cmd.applied_for_leader_post:
        raise InvalidCommand("invalid_outcome", "an appointment implies an application")
    if cmd.on > s.calendar.local(d.now).date():
        raise InvalidCommand("invalid_date", "an outcome cannot be dated in the future")
    latest = [f for f in s.follow_ups if f.requested_at is not None]
    months = latest[-1].months if latest else None
    last = s.outcomes[-1] if s.outcomes else None
    if last is not None and (last.applied_for_leader_post, last.appointed, last.on) == (
        cmd.applied_for_leader_post,
        cmd.appointed,
        cmd.on,
    ):
        return
    d.emit(
        e.OutcomeRecorded(
            applied_for_leader_post=cmd.applied_for_leader_post,
            appointed=cmd.appointed,
            on=cmd.on,
            recorded_by=cmd.actor_id,
            months=months,
        )
    )


def record_erasure(d: Decision, cmd: c.RecordErasure) -> None:
    """A person's data was erased: noted once in the journey (the events keep only ids)."""
    if cmd.person_id not in d.s.erased:
        d.emit(e.PersonalDataErased(person_id=cmd.person_id, erased_by=cmd.actor_id))
