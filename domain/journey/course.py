"""The journey's course: pause and resume, a new leader, withdrawal, evaluation, override, outcomes."""

from __future__ import annotations

from datetime import datetime

from domain import commands as c
from domain import events as e
from domain.calendar import Clock, real_time_between
from domain.errors import InvalidCommand, InvalidState, NotAllowed
from domain.journey.clarity import ask_at_evaluation
from domain.journey.decision import Decision, is_talent, require_role, require_state, resolve, stop_ladders
from domain.journey.planning import follow_up_dues
from domain.journey.state import JourneyState
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
    """The clock runs again: the journey's own deadlines and pending rungs move by the pause.

    Rules 3 (PRODUCT §8.4): a session keeps the cohort's date (its attendance milestone never
    moves, so one rescheduled during the pause is not moved twice); a mandatory session held during
    the pause with no attendance recorded is excused by the system; the pause is measured in the
    working-day deadlines it took (a Friday evening to Monday morning pause takes none).
    """
    require_role(cmd, "resume")
    s = d.s
    if s.state != "paused" or s.paused_at is None or s.paused_from is None:
        raise InvalidState(f"cannot resume a journey that is {s.state}", code="not_paused")
    cal, paused_at, paused_from, now = s.calendar, s.paused_at, s.paused_from, d.now
    rules3 = s.rules_version >= 3
    if rules3:
        working_days = cal.working_days_elapsed(paused_at, now)
        elapsed = real_time_between(paused_at, now)

        def move(due: datetime, clock: Clock) -> datetime:
            return cal.shift_by(due, clock, working_days, elapsed)

        _excuse_sessions_held_while_paused(d, paused_at)
        s = d.s
    else:
        working_days = cal.working_days_between(paused_at, now)

        def move(due: datetime, clock: Clock) -> datetime:
            return cal.shift(due, clock, paused_at, now)

    shifts: list[e.DeadlineShift] = []
    for m in s.milestones:
        if m.status == "open":
            if rules3 and m.kind == "session":
                continue  # the cohort's date, not the journey's
            shifts.append(e.DeadlineShift(milestone=m.key, due_at=move(m.due_at, m.clock)))
        elif m.ladder_running:
            ladder = tuple(
                r if r.rung in m.raised else r.model_copy(update={"due_at": move(r.due_at, r.clock)}) for r in m.ladder
            )
            shifts.append(e.DeadlineShift(milestone=m.key, due_at=m.due_at, ladder=ladder))
    evaluate_at = move(s.evaluate_at, s.evaluate_clock) if s.evaluate_at is not None else None
    approval = s.milestone(MilestoneKey.approval())
    approval_due = None
    if approval is not None and approval.status == "open":
        approval_due = next(x.due_at for x in shifts if x.milestone == MilestoneKey.approval())
    d.emit(
        e.JourneyResumed(
            resumed_by=cmd.actor_id,
            resumed_at=now,
            paused_working_days=working_days,
            paused_seconds=int(real_time_between(paused_at, now).total_seconds()),
            resumed_state=paused_from,
            shifts=tuple(shifts),
            evaluate_at=evaluate_at,
            approval_due=approval_due,
        )
    )


def _excuse_sessions_held_while_paused(d: Decision, paused_at: datetime) -> None:
    """Rules 3: a mandatory session the cohort held while the journey was paused, with no attendance
    recorded for it, is excused by the system (`SessionAttendanceRecorded`, status `excused`,
    recorded by `system`): it leaves the attendance criterion's base and its milestone is met."""
    s = d.s
    if s.paused_from not in RUNNING_STATES:
        return  # paused as a nomination: no session is the talent's yet
    held = {x.key: x.starts_at for x in s.cohort.sessions}
    for session in s.programme.mandatory_sessions():
        at = held.get(session.key)
        if at is None or not paused_at <= at < d.now or d.s.attendance_of(session.key) is not None:
            continue
        d.emit(e.SessionAttendanceRecorded(session_key=session.key, status="excused", recorded_by="system"))
        m = d.s.milestone(MilestoneKey.session(session.key))
        if m is not None and m.status in ("open", "slipped"):
            resolve(d, m.key, "met")


def change_leader(d: Decision, cmd: c.ChangeNearestLeader) -> None:
    """The talent gets a new nearest leader (and leader's leader)."""
    require_role(cmd, "change the nearest leader of")
    s = d.s
    require_state(s, OPEN_STATES, "change the nearest leader of")
    if cmd.nearest_leader_id == s.talent_id:
        raise InvalidCommand("leader_is_talent", "the talent cannot be their own nearest leader")
    leaders_leader_id = cmd.leaders_leader_id
    if s.rules_version >= 3 and leaders_leader_id is None:
        # Rules 3 (PRODUCT §8.4): a change that names no leader's leader keeps the one the journey
        # has (rules 1 and 2 cleared it, and rung 3 then reached no one).
        leaders_leader_id = s.leaders_leader_id
    if cmd.nearest_leader_id == s.nearest_leader_id and leaders_leader_id == s.leaders_leader_id:
        return
    d.emit(
        e.NearestLeaderChanged(
            previous_leader_id=s.nearest_leader_id,
            nearest_leader_id=cmd.nearest_leader_id,
            leaders_leader_id=leaders_leader_id,
            changed_by=cmd.actor_id,
        )
    )


def withdraw(d: Decision, cmd: c.WithdrawTalent) -> None:
    """The talent leaves the programme; running ladders stop."""
    require_role(cmd, "withdraw")
    require_state(d.s, IN_PROGRAMME_STATES, "withdraw")
    stop_ladders(d)
    d.emit(e.TalentWithdrawn(withdrawn_by=cmd.actor_id, reason_ref=cmd.reason_ref, withdrawn_at=d.now))


def awaiting_signoff(s: JourneyState) -> tuple[str, ...]:
    """The tracks submitted and waiting for the nearest leader's sign-off."""
    needs = {t.key for t in s.programme.tracks if t.leader_signoff}
    return tuple(t.key for t in s.tracks if t.status == "submitted" and t.key in needs)


def evaluation_pending(s: JourneyState) -> bool:
    """Rules 3: the programme has ended and its evaluation waits for the awaited sign-offs."""
    return s.evaluation_deferred_at is not None and s.completion is None


def evaluate(d: Decision, at: datetime) -> None:
    """Completion is evaluated `at` the programme's end: completed, or not with its reasons.

    Rules 3 (PRODUCT §8.4): while tracks await sign-off, the evaluation first waits for them, up
    to `completion.signoff_grace`; it happens when the last of them is signed off or returned, or
    when the grace ends, whichever comes first.
    """
    s = d.s
    if s.rules_version >= 3 and s.evaluation_deferred_at is None:
        awaiting = awaiting_signoff(s)
        if awaiting:
            _defer_evaluation(d, at, awaiting)
            return
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
    _record_completion(d, at, reasons, attended, done, held, follow_ups)
    # Rules 4: the evaluation stage of the readiness assessment opens with the evaluation.
    ask_at_evaluation(d, at)


def _record_completion(
    d: Decision,
    at: datetime,
    reasons: list[str],
    attended: int,
    done: int,
    held: int,
    follow_ups: tuple[datetime, ...],
) -> None:
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


def _defer_evaluation(d: Decision, at: datetime, awaiting: tuple[str, ...]) -> None:
    """The programme has ended but tracks await sign-off: every other ladder stops `at` its end
    (nothing else can be done any more); the awaited tracks' ladders keep reminding the leader."""
    s = d.s
    waiting = {MilestoneKey.track(k) for k in awaiting}
    for m in s.milestones:
        if m.ladder_running and m.key not in waiting:
            d.emit(e.EscalationResolved(milestone=m.key, resolved_at=at, resolution="journey_ended"))
    d.emit(
        e.EvaluationDeferred(
            ended_at=at,
            due_at=s.calendar.add(at, s.programme.completion.signoff_grace),
            awaiting=awaiting,
        )
    )


def evaluate_if_nothing_awaited(d: Decision) -> None:
    """Rules 3: the evaluation waited for sign-offs and none is awaited any more: it happens now."""
    if evaluation_pending(d.s) and not awaiting_signoff(d.s):
        evaluate(d, d.now)


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
    allowed: frozenset[e.JourneyStateName] = EVALUATED_STATES
    if s.rules_version >= 3 and s.completion is not None:
        # Rules 3 (PRODUCT §8.4): an outcome is a fact about a career, not a step of the journey:
        # it is taken after the evaluated journey closed too, appended without reopening it.
        allowed = EVALUATED_STATES | {"closed"}
    require_state(s, allowed, "record an outcome on")
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
