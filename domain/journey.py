"""A talent's journey: its state, `decide` (command -> events) and `evolve` (state + event -> state).

`decide` never reads the clock or makes ids: `now` and `new_ids` are parameters. Before and after
handling a command it lets time pass up to `now` (slips, rungs, start, evaluation, follow-ups),
so the journey a command sees is never stale, whoever drives the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID

import isodate
from pydantic import AwareDatetime, BaseModel, ConfigDict

from domain import commands as c
from domain import events as e
from domain.calendar import Clock, Delay, WorkingCalendar, real_time_between
from domain.errors import InvalidCommand, InvalidState, NotAllowed, NotFound, ProgrammeInvalid
from domain.programme import Cohort, Programme, Role

MilestoneStatus = Literal["open", "met", "slipped", "missed"]
TrackStatus = Literal["open", "submitted", "signed_off", "returned"]

OPEN_STATES: frozenset[str] = frozenset({"nominated", "enrolled", "active", "paused"})
RUNNING_STATES: frozenset[str] = frozenset({"enrolled", "active"})
EVALUATED_STATES: frozenset[str] = frozenset({"completed", "not_completed", "following_up"})
TERMINAL_STATES: frozenset[str] = frozenset({"closed", "rejected", "withdrawn"})

# How many time-driven steps one decision may take: far above any real programme's ladder count.
_MAX_TICKS = 10_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MilestoneState(_Frozen):
    """A milestone and where it stands; a slipped one carries its ladder."""

    key: str
    kind: e.MilestoneKind
    ref: str
    due_at: AwareDatetime
    clock: Clock
    status: MilestoneStatus = "open"
    slipped_at: AwareDatetime | None = None
    met_at: AwareDatetime | None = None
    ladder: tuple[e.RungPlan, ...] = ()
    raised: tuple[int, ...] = ()
    resolved_at: AwareDatetime | None = None
    #: A coordinator has the escalation in hand: no further rung fires, the ladder stays unresolved.
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str | None = None

    @property
    def ladder_running(self) -> bool:
        """Slipped and neither met, missed nor otherwise resolved."""
        return self.status == "slipped" and self.resolved_at is None

    @property
    def ladder_climbing(self) -> bool:
        """Running and not acknowledged: its pending rungs still fire."""
        return self.ladder_running and self.acknowledged_at is None


class EscalationRecord(_Frozen):
    """A raised rung."""

    milestone: str
    rung: int
    recipient_role: Role
    recipient_id: str | None
    raised_at: AwareDatetime
    at_risk: bool
    resolved_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str | None = None


class TrackState(_Frozen):
    """A track's progress."""

    key: str
    status: TrackStatus = "open"
    submissions: int = 0
    done_at: AwareDatetime | None = None


class MeetingRecord(_Frozen):
    """A mentor meeting held; one the talent logged under rules 2 counts once it is confirmed."""

    number: int
    held_on: date
    leader_id: str
    notes_ref: str | None = None
    confirmed: bool = True


class FollowUpState(_Frozen):
    """An outcome follow-up point after completion."""

    point: int
    months: int | None
    due_at: AwareDatetime
    requested_at: AwareDatetime | None = None
    respond_by: AwareDatetime | None = None


class OutcomeRecord(_Frozen):
    """An outcome answer."""

    applied_for_leader_post: bool
    appointed: bool
    on: date
    months: int | None
    recorded_by: str


class JourneyState(_Frozen):
    """Everything the journey's rules need, folded from its events."""

    journey_id: str
    version: int = 0
    state: e.JourneyStateName
    talent_id: str
    nearest_leader_id: str
    leaders_leader_id: str | None
    leader_history: tuple[str, ...]
    programme: Programme
    cohort: Cohort
    external_ref: str | None
    nominated_at: AwareDatetime
    approval_due: AwareDatetime
    # Added later, with defaults: a snapshot carried over by continue-as-new before them still parses.
    #: The journey rules it keeps for life (domain.commands.CURRENT_RULES_VERSION when nominated).
    rules_version: int = 1
    external_ref_ref: str | None = None
    #: When the nomination was approved, which enrols the talent.
    enrolled_at: AwareDatetime | None = None
    starts_at: AwareDatetime | None = None
    evaluate_at: AwareDatetime | None = None
    evaluate_clock: Clock = "working_days"
    milestones: tuple[MilestoneState, ...] = ()
    escalations: tuple[EscalationRecord, ...] = ()
    attendance: tuple[tuple[str, e.AttendanceStatus], ...] = ()
    tracks: tuple[TrackState, ...] = ()
    meetings: tuple[MeetingRecord, ...] = ()
    paused_at: AwareDatetime | None = None
    paused_from: e.JourneyStateName | None = None
    completion: Literal["completed", "not_completed"] | None = None
    completion_reasons: tuple[str, ...] = ()
    completion_override: bool = False
    evaluated_at: AwareDatetime | None = None
    follow_ups: tuple[FollowUpState, ...] = ()
    outcomes: tuple[OutcomeRecord, ...] = ()
    closed_at: AwareDatetime | None = None
    erased: tuple[str, ...] = ()

    # -- derived views ---------------------------------------------------------------------

    @property
    def calendar(self) -> WorkingCalendar:
        """The programme's working-day calendar."""
        return self.programme.working_calendar

    def milestone(self, key: str) -> MilestoneState | None:
        """A milestone by key."""
        for m in self.milestones:
            if m.key == key:
                return m
        return None

    def track(self, key: str) -> TrackState | None:
        """A track's progress by key."""
        for t in self.tracks:
            if t.key == key:
                return t
        return None

    def attendance_of(self, session_key: str) -> e.AttendanceStatus | None:
        """The recorded attendance at a session."""
        for key, status in self.attendance:
            if key == session_key:
                return status
        return None

    def person_for(self, role: Role) -> str | None:
        """Who holds a role on this journey now."""
        if role == "talent":
            return self.talent_id
        if role == "nearest_leader":
            return self.nearest_leader_id
        if role == "leaders_leader":
            return self.leaders_leader_id
        return self.cohort.coordinator_id

    def sessions_counts(self) -> tuple[int, int]:
        """(mandatory sessions attended, mandatory sessions required); excused ones leave the base."""
        mandatory = self.programme.mandatory_sessions()
        attended = sum(1 for s in mandatory if self.attendance_of(s.key) == "attended")
        excused = sum(1 for s in mandatory if self.attendance_of(s.key) == "excused")
        base = len(mandatory) - excused
        share = self.programme.completion.min_attendance_share
        required = max(0, -int(-(share * base - 1e-9) // 1))
        return attended, required

    def tracks_done(self) -> int:
        """Tracks signed off, or submitted where no sign-off is needed."""
        return sum(1 for t in self.tracks if t.done_at is not None)

    def meetings_held(self) -> int:
        """Mentor meetings that count: every one logged, or under rules 2 the confirmed ones."""
        if self.rules_version < 2:
            return len(self.meetings)
        return sum(1 for m in self.meetings if m.confirmed)

    def pending_meetings(self) -> tuple[MeetingRecord, ...]:
        """Meetings the talent logged that wait for the nearest leader's confirmation (rules 2)."""
        return tuple(m for m in self.meetings if not m.confirmed)

    def at_risk_reasons(self) -> tuple[str, ...]:
        """Why the journey is at risk: a ladder at its last rung, or attendance out of reach."""
        reasons = [f"escalated:{x.milestone}" for x in self.escalations if x.at_risk and x.resolved_at is None]
        if self.state in RUNNING_STATES or self.state == "paused":
            attended, required = self.sessions_counts()
            unrecorded = sum(1 for s in self.programme.mandatory_sessions() if self.attendance_of(s.key) is None)
            if attended + unrecorded < required:
                reasons.append("attendance_below_minimum")
        return tuple(dict.fromkeys(reasons))


# -- evolve --------------------------------------------------------------------------------------


_M = TypeVar("_M", bound=BaseModel)


def _evolved(model: _M, changes: dict[str, Any]) -> _M:
    """`model.model_copy(update=changes)` without its generic copying machinery.

    Folding is the hot path of every append and rebuild; pydantic's `model_copy` costs twice as
    much. Like `model_copy`, it does not validate: the values come from validated events. The
    attributes set are those `model_construct` sets (pinned pydantic; a unit test compares).
    """
    new = model.__class__.__new__(model.__class__)
    values = model.__dict__.copy()
    values.update(changes)
    object.__setattr__(new, "__dict__", values)
    object.__setattr__(new, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", None)
    return new


def _replace_milestone(state: JourneyState, key: str, **changes: Any) -> tuple[MilestoneState, ...]:
    return tuple(_evolved(m, changes) if m.key == key else m for m in state.milestones)


def _replace_track(state: JourneyState, key: str, **changes: Any) -> tuple[TrackState, ...]:
    return tuple(_evolved(t, changes) if t.key == key else t for t in state.tracks)


def _nominated(event: e.TalentNominated) -> JourneyState:
    approval = MilestoneState(
        key="approval",
        kind="approval",
        ref="nomination",
        due_at=event.approval_due,
        clock=event.approval_clock,
    )
    return JourneyState(
        journey_id=event.journey_id,
        version=1,
        state="nominated",
        talent_id=event.talent_id,
        nearest_leader_id=event.nearest_leader_id,
        leaders_leader_id=event.leaders_leader_id,
        leader_history=(event.nearest_leader_id,),
        programme=event.programme,
        cohort=event.cohort,
        external_ref=event.external_ref,
        external_ref_ref=event.external_ref_ref,
        rules_version=event.rules_version,
        nominated_at=event.nominated_at,
        approval_due=event.approval_due,
        milestones=(approval,),
    )


def evolve(state: JourneyState | None, event: e.Event) -> JourneyState:
    """Fold one event into the state. Total: it never raises for an event `decide` produced."""
    if state is None:
        if isinstance(event, e.TalentNominated):
            return _nominated(event)
        raise ValueError(f"a journey starts with TalentNominated, not {event.type}")
    changes = _apply(state, event)
    changes["version"] = state.version + 1
    return _evolved(state, changes)


def _apply(s: JourneyState, ev: e.Event) -> dict[str, Any]:
    match ev:
        case e.TalentNominated():
            return {}
        case e.NominationApproved():
            return {"enrolled_at": ev.decided_at}
        case e.NominationRejected():
            return {"state": "rejected"}
        case e.TalentEnrolled():
            planned = tuple(
                MilestoneState(key=p.key, kind=p.kind, ref=p.ref, due_at=p.due_at, clock=p.clock) for p in ev.milestones
            )
            return {
                "state": "enrolled",
                "starts_at": ev.starts_at,
                "evaluate_at": ev.evaluate_at,
                "evaluate_clock": ev.evaluate_clock,
                "milestones": s.milestones + planned,
                "tracks": tuple(TrackState(key=t.key) for t in s.programme.tracks),
            }
        case e.JourneyStarted():
            return {"state": "active"}
        case e.SessionAttendanceRecorded():
            others = tuple((k, v) for k, v in s.attendance if k != ev.session_key)
            return {"attendance": (*others, (ev.session_key, ev.status))}
        case e.SessionRescheduled():
            sessions = tuple(
                _evolved(x, {"starts_at": ev.starts_at}) if x.key == ev.session_key else x for x in s.cohort.sessions
            )
            update: dict[str, Any] = {"cohort": _evolved(s.cohort, {"sessions": sessions})}
            key = f"session:{ev.session_key}"
            m = s.milestone(key)
            if ev.milestone_due_at is not None and m is not None:
                update["milestones"] = _replace_milestone(
                    s,
                    key,
                    due_at=ev.milestone_due_at,
                    status="open",
                    slipped_at=None,
                    ladder=(),
                    raised=(),
                    resolved_at=None,
                    acknowledged_at=None,
                    acknowledged_by=None,
                )
            return update
        case e.TrackSubmitted():
            return {"tracks": _replace_track(s, ev.track_key, status="submitted", submissions=ev.submission)}
        case e.TrackSignedOff():
            return {"tracks": _replace_track(s, ev.track_key, status="signed_off")}
        case e.TrackReturned():
            return {"tracks": _replace_track(s, ev.track_key, status="returned")}
        case e.MentorMeetingLogged():
            meeting = MeetingRecord(
                number=ev.number,
                held_on=ev.held_on,
                leader_id=ev.leader_id,
                notes_ref=ev.notes_ref,
                confirmed=ev.confirmed,
            )
            return {"meetings": (*s.meetings, meeting)}
        case e.MentorMeetingConfirmed():
            return {
                "meetings": tuple(_evolved(m, {"confirmed": True}) if m.number == ev.number else m for m in s.meetings)
            }
        case e.MilestoneMet():
            m = s.milestone(ev.milestone)
            update = {"milestones": _replace_milestone(s, ev.milestone, status="met", met_at=ev.met_at)}
            if m is not None and m.kind == "track":
                update["tracks"] = _replace_track(s, m.ref, done_at=ev.met_at)
            return update
        case e.MilestoneMissed():
            return {"milestones": _replace_milestone(s, ev.milestone, status="missed")}
        case e.MilestoneSlipped():
            return {
                "milestones": _replace_milestone(
                    s, ev.milestone, status="slipped", slipped_at=ev.slipped_at, ladder=ev.ladder
                )
            }
        case e.EscalationRaised():
            m = s.milestone(ev.milestone)
            raised = (*(m.raised if m else ()), ev.rung)
            record = EscalationRecord(
                milestone=ev.milestone,
                rung=ev.rung,
                recipient_role=ev.recipient_role,
                recipient_id=ev.recipient_id,
                raised_at=ev.raised_at,
                at_risk=ev.at_risk,
            )
            return {
                "milestones": _replace_milestone(s, ev.milestone, raised=raised),
                "escalations": (*s.escalations, record),
            }
        case e.EscalationAcknowledged():
            acknowledged = {"acknowledged_at": ev.acknowledged_at, "acknowledged_by": ev.acknowledged_by}
            escalations = tuple(
                _evolved(x, acknowledged) if x.milestone == ev.milestone and x.resolved_at is None else x
                for x in s.escalations
            )
            return {
                "milestones": _replace_milestone(s, ev.milestone, **acknowledged),
                "escalations": escalations,
            }
        case e.EscalationResolved():
            escalations = tuple(
                _evolved(x, {"resolved_at": ev.resolved_at})
                if x.milestone == ev.milestone and x.resolved_at is None
                else x
                for x in s.escalations
            )
            return {
                "milestones": _replace_milestone(s, ev.milestone, resolved_at=ev.resolved_at),
                "escalations": escalations,
            }
        case e.JourneyPaused():
            return {"state": "paused", "paused_at": ev.paused_at, "paused_from": ev.previous_state}
        case e.JourneyResumed():
            shifts = {x.milestone: x for x in ev.shifts}
            milestones = tuple(
                _evolved(m, {"due_at": shifts[m.key].due_at, "ladder": shifts[m.key].ladder}) if m.key in shifts else m
                for m in s.milestones
            )
            update = {
                "state": ev.resumed_state,
                "paused_at": None,
                "paused_from": None,
                "milestones": milestones,
            }
            if ev.evaluate_at is not None:
                update["evaluate_at"] = ev.evaluate_at
            if ev.approval_due is not None:
                update["approval_due"] = ev.approval_due
            return update
        case e.NearestLeaderChanged():
            history = s.leader_history
            if ev.nearest_leader_id not in history:
                history = (*history, ev.nearest_leader_id)
            return {
                "nearest_leader_id": ev.nearest_leader_id,
                "leaders_leader_id": ev.leaders_leader_id,
                "leader_history": history,
            }
        case e.TalentWithdrawn():
            return {"state": "withdrawn", "paused_at": None, "paused_from": None}
        case e.ProgrammeCompleted() | e.ProgrammeNotCompleted():
            outcome: Literal["completed", "not_completed"] = (
                "completed" if isinstance(ev, e.ProgrammeCompleted) else "not_completed"
            )
            reasons = ev.reasons if isinstance(ev, e.ProgrammeNotCompleted) else ()
            follow_ups = s.follow_ups or _plan_follow_ups(s.programme, ev.follow_ups)
            state = s.state if s.state == "following_up" else outcome
            return {
                "state": state,
                "completion": outcome,
                "completion_reasons": reasons,
                "completion_override": ev.override,
                "evaluated_at": s.evaluated_at or ev.evaluated_at,
                "follow_ups": follow_ups,
            }
        case e.FollowUpRequested():
            follow_ups = tuple(
                _evolved(f, {"requested_at": ev.requested_at, "respond_by": ev.respond_by})
                if f.point == ev.point
                else f
                for f in s.follow_ups
            )
            return {"state": "following_up", "follow_ups": follow_ups}
        case e.OutcomeRecorded():
            outcome_record = OutcomeRecord(
                applied_for_leader_post=ev.applied_for_leader_post,
                appointed=ev.appointed,
                on=ev.on,
                months=ev.months,
                recorded_by=ev.recorded_by,
            )
            return {"outcomes": (*s.outcomes, outcome_record)}
        case e.JourneyClosed():
            return {"state": "closed", "closed_at": ev.closed_at}
        case e.PersonalDataErased():
            return {"erased": (*s.erased, ev.person_id)}
    raise ValueError(f"unknown event {ev!r}")  # pragma: no cover - the union is exhaustive


def _plan_follow_ups(programme: Programme, dues: Sequence[datetime]) -> tuple[FollowUpState, ...]:
    fu = programme.follow_up
    labels: Sequence[int | None] = fu.months if fu.after is None else [None] * len(fu.after)
    return tuple(
        FollowUpState(point=i + 1, months=label, due_at=due)
        for i, (label, due) in enumerate(zip(labels, dues, strict=True))
    )


def fold(events: Iterable[e.Event], state: JourneyState | None = None) -> JourneyState | None:
    """Fold a sequence of events, from `state` (None: from nothing)."""
    for event in events:
        state = evolve(state, event)
    return state


# -- decide --------------------------------------------------------------------------------------


class _Decision:
    """Accumulates the events of one decision, keeping the folded state current."""

    def __init__(self, state: JourneyState | None, now: datetime) -> None:
        self.state = state
        self.now = now
        self.events: list[e.Event] = []

    @property
    def s(self) -> JourneyState:
        assert self.state is not None
        return self.state

    def emit(self, event: e.Event) -> None:
        self.events.append(event)
        self.state = evolve(self.state, event)


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
    d = _Decision(state, now)
    if state is None:
        if not isinstance(command, c.NominateTalent):
            raise InvalidState("the journey does not exist", code="journey_not_found")
        _nominate(d, command)
    else:
        if isinstance(command, c.NominateTalent):
            raise InvalidState("the journey already exists", code="journey_exists")
        _advance(d)
        _handle(d, command)
    _advance(d)
    return [e.NewEvent(event_id=new_ids(), occurred_at=now, event=ev) for ev in d.events]


def _require_state(s: JourneyState, allowed: Iterable[str], action: str) -> None:
    if s.state not in allowed:
        code = "journey_paused" if s.state == "paused" else "invalid_state"
        raise InvalidState(f"cannot {action} a journey that is {s.state}", code=code)


def _nominate(d: _Decision, cmd: c.NominateTalent) -> None:
    if cmd.actor_role not in ("hr_system", "leader", "coordinator"):
        raise NotAllowed("only a leader, a coordinator or an HR system can nominate")
    if cmd.talent_id == cmd.nearest_leader_id:
        raise InvalidCommand("leader_is_talent", "the talent cannot be their own nearest leader")
    try:
        cmd.cohort.check_against(cmd.programme)
    except ProgrammeInvalid as exc:
        raise InvalidCommand("invalid_cohort", "; ".join(exc.errors)) from exc
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


def _handle(d: _Decision, cmd: c.Command) -> None:
    match cmd:
        case c.DecideNomination():
            _decide_nomination(d, cmd)
        case c.RecordAttendance():
            _record_attendance(d, cmd)
        case c.RescheduleSession():
            _reschedule(d, cmd)
        case c.SubmitTrack():
            _submit_track(d, cmd)
        case c.SignOffTrack():
            _sign_off(d, cmd)
        case c.LogMentorMeeting():
            if d.s.rules_version >= 2:
                _log_meeting_confirmed(d, cmd)
            else:
                _log_meeting(d, cmd)
        case c.ConfirmMentorMeeting():
            _confirm_meeting(d, cmd)
        case c.PauseJourney():
            _require_role(cmd, ("coordinator",), "pause")
            _require_state(d.s, RUNNING_STATES | {"nominated"}, "pause")
            d.emit(
                e.JourneyPaused(
                    paused_by=cmd.actor_id,
                    reason_ref=cmd.reason_ref,
                    paused_at=d.now,
                    previous_state=d.s.state,
                )
            )
        case c.ResumeJourney():
            _require_role(cmd, ("coordinator",), "resume")
            _resume(d, cmd)
        case c.ChangeNearestLeader():
            _change_leader(d, cmd)
        case c.WithdrawTalent():
            _require_role(cmd, ("coordinator", "hr_system"), "withdraw")
            _require_state(d.s, OPEN_STATES, "withdraw")
            _stop_ladders(d)
            d.emit(e.TalentWithdrawn(withdrawn_by=cmd.actor_id, reason_ref=cmd.reason_ref, withdrawn_at=d.now))
        case c.OverrideCompletion():
            _require_role(cmd, ("coordinator",), "override completion of")
            _override(d, cmd)
        case c.RecordOutcome():
            _record_outcome(d, cmd)
        case c.RecordErasure():
            if cmd.person_id not in d.s.erased:
                d.emit(e.PersonalDataErased(person_id=cmd.person_id, erased_by=cmd.actor_id))
        case c.AcknowledgeEscalation():
            _acknowledge(d, cmd)
        case c.ResolveEscalation():
            _resolve_escalation(d, cmd)
        case c.AdvanceClock():
            pass
        case c.NominateTalent():  # pragma: no cover - handled by decide()
            raise InvalidState("the journey already exists", code="journey_exists")


def _require_role(cmd: c.Command, roles: Sequence[str], action: str) -> None:
    if cmd.actor_role not in (*roles, "system"):
        raise NotAllowed(f"a {cmd.actor_role} cannot {action} a journey")


def _is_leader(s: JourneyState, cmd: c.Command) -> bool:
    return cmd.actor_role == "leader" and cmd.actor_id == s.nearest_leader_id


def _is_talent(s: JourneyState, cmd: c.Command) -> bool:
    return cmd.actor_role == "talent" and cmd.actor_id == s.talent_id


def _decide_nomination(d: _Decision, cmd: c.DecideNomination) -> None:
    _require_role(cmd, ("coordinator",), "decide on")
    s = d.s
    if s.state != "nominated":
        code = {"paused": "journey_paused", "withdrawn": "invalid_state"}.get(s.state, "already_decided")
        raise InvalidState(f"the nomination cannot be decided: the journey is {s.state}", code=code)
    if cmd.decision == "reject":
        if cmd.reason_ref is None:
            raise InvalidCommand("reason_required", "a rejection needs a reason")
        _resolve(d, "approval", "met")
        d.emit(e.NominationRejected(decided_by=cmd.actor_id, reason_ref=cmd.reason_ref, decided_at=d.now))
        return
    d.emit(e.NominationApproved(decided_by=cmd.actor_id, reason_ref=cmd.reason_ref, decided_at=d.now))
    _resolve(d, "approval", "met")
    d.emit(_enrolment(d.s))


def _enrolment(s: JourneyState) -> e.TalentEnrolled:
    programme, cohort, cal = s.programme, s.cohort, s.calendar
    start = cohort.start_instant(programme)
    plans: list[e.MilestonePlan] = []
    scheduled = {x.key: x.starts_at for x in cohort.sessions}
    grace = programme.attendance_grace
    for session in programme.mandatory_sessions():
        plans.append(
            e.MilestonePlan(
                key=f"session:{session.key}",
                kind="session",
                ref=session.key,
                due_at=cal.add(scheduled[session.key], grace),
                clock=grace.clock,
            )
        )
    for track in programme.tracks:
        plans.append(
            e.MilestonePlan(
                key=f"track:{track.key}",
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
                key=f"mentor_meeting:{n}",
                kind="mentor_meeting",
                ref=str(n),
                due_at=_add_times(cal, start, cadence, n),
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


def _add_times(cal: WorkingCalendar, start: datetime, delay: Delay, n: int) -> datetime:
    """`start` plus `n` times `delay`."""
    if delay.working_days is not None:
        return cal.add(start, Delay(working_days=delay.working_days * n))
    at = start
    for _ in range(n):
        at = cal.add(at, delay)
    return at


def _session_milestone(s: JourneyState, session_key: str) -> MilestoneState | None:
    return s.milestone(f"session:{session_key}")


def _known_session(s: JourneyState, key: str) -> None:
    if key not in {x.key for x in s.programme.sessions}:
        raise InvalidCommand("unknown_session", f"the programme has no session {key!r}")


def _record_attendance(d: _Decision, cmd: c.RecordAttendance) -> None:
    _require_role(cmd, ("coordinator",), "record attendance on")
    _known_session(d.s, cmd.session_key)
    _require_state(d.s, RUNNING_STATES, "record attendance on")
    if d.s.attendance_of(cmd.session_key) == cmd.status:
        return
    d.emit(e.SessionAttendanceRecorded(session_key=cmd.session_key, status=cmd.status, recorded_by=cmd.actor_id))
    m = _session_milestone(d.s, cmd.session_key)
    if m is None:
        return
    if cmd.status == "absent":
        if m.status != "missed":
            _resolve(d, m.key, "missed")
    elif m.status != "met":
        _resolve(d, m.key, "met")


def _resolve(d: _Decision, key: str, how: Literal["met", "missed"]) -> None:
    """Meet or miss a milestone, stopping its ladder if it had slipped."""
    m = d.s.milestone(key)
    if m is None:
        return
    if how == "met":
        d.emit(e.MilestoneMet(milestone=key, met_at=d.now, late=m.status == "slipped" or d.now > m.due_at))
    else:
        d.emit(e.MilestoneMissed(milestone=key, missed_at=d.now, reason="absent"))
    if m.ladder_running:
        d.emit(e.EscalationResolved(milestone=key, resolved_at=d.now, resolution=how))


def _reschedule(d: _Decision, cmd: c.RescheduleSession) -> None:
    _require_role(cmd, ("coordinator",), "reschedule a session of")
    s = d.s
    _known_session(s, cmd.session_key)
    _require_state(s, OPEN_STATES, "reschedule a session of")
    current = next((x for x in s.cohort.sessions if x.key == cmd.session_key), None)
    if current is None:
        raise InvalidCommand("unknown_session", f"the cohort has no session {cmd.session_key!r}")
    if current.starts_at == cmd.starts_at:
        return
    m = _session_milestone(s, cmd.session_key)
    new_due: datetime | None = None
    if m is not None and m.status in ("open", "slipped"):
        new_due = s.calendar.add(cmd.starts_at, s.programme.attendance_grace)
        if m.status == "slipped" and new_due <= d.now:
            new_due = None  # moved into the past: the slip stands and its ladder runs on
    if m is not None and m.ladder_running and new_due is not None:
        d.emit(e.EscalationResolved(milestone=m.key, resolved_at=d.now, resolution="rescheduled"))
    d.emit(
        e.SessionRescheduled(
            session_key=cmd.session_key,
            starts_at=cmd.starts_at,
            previous_starts_at=current.starts_at,
            milestone_due_at=new_due,
        )
    )


def _known_track(s: JourneyState, key: str) -> None:
    if key not in {t.key for t in s.programme.tracks}:
        raise InvalidCommand("unknown_track", f"the programme has no track {key!r}")


def _track_state(s: JourneyState, key: str) -> TrackState:
    track = s.track(key)
    if track is None:  # pragma: no cover - tracks exist from enrolment, which RUNNING_STATES imply
        raise InvalidState("the journey has no tracks before enrolment")
    return track


def _submit_track(d: _Decision, cmd: c.SubmitTrack) -> None:
    s = d.s
    if not (_is_talent(s, cmd) or cmd.actor_role in ("coordinator", "system")):
        raise NotAllowed("only the talent can submit a track")
    _known_track(s, cmd.track_key)
    _require_state(s, RUNNING_STATES, "submit a track on")
    track = _track_state(s, cmd.track_key)
    if track.status in ("submitted", "signed_off"):
        raise InvalidState(f"track {cmd.track_key!r} is already {track.status}", code="already_submitted")
    d.emit(
        e.TrackSubmitted(
            track_key=cmd.track_key,
            submission=track.submissions + 1,
            reflection_ref=cmd.reflection_ref,
            submitted_by=cmd.actor_id,
        )
    )
    definition = next(t for t in s.programme.tracks if t.key == cmd.track_key)
    if not definition.leader_signoff:
        d.emit(e.TrackSignedOff(track_key=cmd.track_key, signed_off_by="system", comment_ref=None))
        _resolve(d, f"track:{cmd.track_key}", "met")


def _sign_off(d: _Decision, cmd: c.SignOffTrack) -> None:
    s = d.s
    if not (_is_leader(s, cmd) or cmd.actor_role in ("coordinator", "system")):
        raise NotAllowed("only the talent's nearest leader can sign off a track")
    _known_track(s, cmd.track_key)
    _require_state(s, RUNNING_STATES, "sign off a track on")
    track = _track_state(s, cmd.track_key)
    if track.status != "submitted":
        code = "already_signed_off" if track.status == "signed_off" else "not_submitted"
        raise InvalidState(f"track {cmd.track_key!r} is {track.status}, not submitted", code=code)
    if cmd.decision == "return":
        d.emit(e.TrackReturned(track_key=cmd.track_key, returned_by=cmd.actor_id, comment_ref=cmd.comment_ref))
        return
    d.emit(e.TrackSignedOff(track_key=cmd.track_key, signed_off_by=cmd.actor_id, comment_ref=cmd.comment_ref))
    _resolve(d, f"track:{cmd.track_key}", "met")


def _log_meeting(d: _Decision, cmd: c.LogMentorMeeting) -> None:
    """Rules 1: any past date; every meeting logged counts; a logged date again is refused."""
    s = d.s
    if not (_is_leader(s, cmd) or _is_talent(s, cmd) or cmd.actor_role in ("coordinator", "system")):
        raise NotAllowed("only the talent or their nearest leader can log a mentor meeting")
    _require_state(s, RUNNING_STATES, "log a mentor meeting on")
    if cmd.held_on > s.calendar.local(d.now).date():
        raise InvalidCommand("invalid_date", "a mentor meeting cannot be logged before it is held")
    # A meeting is known by its date, so logging it twice (talent and leader) counts it once; a
    # programme compressed into minutes (cadence under a day) holds several meetings a day.
    by_date = s.programme.mentor_meetings.cadence.nominal_days() >= 1
    if by_date and any(m.held_on == cmd.held_on for m in s.meetings):
        raise InvalidState(f"a mentor meeting on {cmd.held_on} is already logged", code="already_logged")
    number = len(s.meetings) + 1
    d.emit(
        e.MentorMeetingLogged(
            number=number,
            held_on=cmd.held_on,
            leader_id=s.nearest_leader_id,
            logged_by=cmd.actor_id,
            notes_ref=cmd.notes_ref,
            confirmed=True,
        )
    )
    key = f"mentor_meeting:{number}"
    m = d.s.milestone(key)
    if m is not None and m.status in ("open", "slipped"):
        _resolve(d, key, "met")


def _leader_side(s: JourneyState, cmd: c.Command) -> bool:
    """The nearest leader, or a coordinator (or the system) acting on the programme's behalf."""
    return _is_leader(s, cmd) or cmd.actor_role in ("coordinator", "system")


def _log_meeting_confirmed(d: _Decision, cmd: c.LogMentorMeeting) -> None:
    """Rules 2 (PRODUCT §8.4): dated between enrolment and today; the talent's log counts once
    the nearest leader confirms it, and the leader logging the same date confirms it; logging a
    date already logged changes nothing."""
    s = d.s
    leader_side = _leader_side(s, cmd)
    if not (leader_side or _is_talent(s, cmd)):
        raise NotAllowed("only the talent or their nearest leader can log a mentor meeting")
    _require_state(s, RUNNING_STATES, "log a mentor meeting on")
    today = s.calendar.local(d.now).date()
    if cmd.held_on > today:
        raise InvalidCommand("invalid_date", "a mentor meeting cannot be logged before it is held")
    enrolled = s.calendar.local(s.enrolled_at or s.nominated_at).date()
    if cmd.held_on < enrolled:
        raise InvalidCommand("invalid_date", "a mentor meeting cannot be dated before the talent's enrolment")
    pending = next((m for m in s.meetings if m.held_on == cmd.held_on and not m.confirmed), None)
    if leader_side and pending is not None:
        _count_meeting(d, pending, cmd.actor_id)
        return
    # A meeting is known by its date (see _log_meeting): the same date again, by the same side or
    # by the talent after the leader, is the meeting already logged. A programme compressed into
    # minutes holds several meetings a day, so there each log is a meeting of its own.
    by_date = s.programme.mentor_meetings.cadence.nominal_days() >= 1
    if by_date and any(m.held_on == cmd.held_on for m in s.meetings):
        return
    d.emit(
        e.MentorMeetingLogged(
            number=len(s.meetings) + 1,
            held_on=cmd.held_on,
            leader_id=s.nearest_leader_id,
            logged_by=cmd.actor_id,
            notes_ref=cmd.notes_ref,
            confirmed=leader_side,
        )
    )
    if leader_side:
        _meet_meeting_milestone(d)


def _confirm_meeting(d: _Decision, cmd: c.ConfirmMentorMeeting) -> None:
    """The nearest leader confirms a meeting the talent logged; a confirmed one again changes nothing."""
    s = d.s
    if not _leader_side(s, cmd):
        raise NotAllowed("only the talent's nearest leader can confirm a mentor meeting")
    _require_state(s, RUNNING_STATES, "confirm a mentor meeting on")
    logged = [m for m in s.meetings if m.held_on == cmd.held_on]
    if not logged:
        raise NotFound("unknown_meeting", f"no mentor meeting on {cmd.held_on} is logged")
    pending = next((m for m in logged if not m.confirmed), None)
    if pending is not None:
        _count_meeting(d, pending, cmd.actor_id)


def _count_meeting(d: _Decision, meeting: MeetingRecord, confirmed_by: str) -> None:
    d.emit(e.MentorMeetingConfirmed(number=meeting.number, held_on=meeting.held_on, confirmed_by=confirmed_by))
    _meet_meeting_milestone(d)


def _meet_meeting_milestone(d: _Decision) -> None:
    """A meeting just started to count: the milestone of its number (among those that count) is met."""
    key = f"mentor_meeting:{d.s.meetings_held()}"
    m = d.s.milestone(key)
    if m is not None and m.status in ("open", "slipped"):
        _resolve(d, key, "met")


def _resume(d: _Decision, cmd: c.ResumeJourney) -> None:
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
    approval = s.milestone("approval")
    approval_due = None
    if approval is not None and approval.status == "open":
        approval_due = next(x.due_at for x in shifts if x.milestone == "approval")
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


def _change_leader(d: _Decision, cmd: c.ChangeNearestLeader) -> None:
    _require_role(cmd, ("coordinator", "hr_system"), "change the nearest leader of")
    s = d.s
    _require_state(s, OPEN_STATES | EVALUATED_STATES, "change the nearest leader of")
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


def _milestone_keys(s: JourneyState) -> set[str]:
    """Every milestone key the journey has or its programme will plan at enrolment."""
    p = s.programme
    return {
        "approval",
        *(f"session:{x.key}" for x in p.mandatory_sessions()),
        *(f"track:{t.key}" for t in p.tracks),
        *(f"mentor_meeting:{n}" for n in range(1, p.mentor_meetings.count + 1)),
        *(m.key for m in s.milestones),
    }


def _open_escalation(d: _Decision, key: str, action: str) -> MilestoneState:
    """The milestone whose escalation a coordinator acts on: known, with a raised rung unresolved."""
    s = d.s
    if key not in _milestone_keys(s):
        raise InvalidCommand("unknown_milestone", f"the journey has no milestone {key!r}")
    m = s.milestone(key)
    raised = any(x.milestone == key and x.resolved_at is None for x in s.escalations)
    if m is None or not m.ladder_running or not raised:
        raise InvalidState(f"cannot {action}: milestone {key!r} has no open escalation", code="no_open_escalation")
    return m


def _acknowledge(d: _Decision, cmd: c.AcknowledgeEscalation) -> None:
    """A coordinator has it in hand: the ladder stops climbing; the escalation (and any risk) stays."""
    _require_role(cmd, ("coordinator",), "acknowledge an escalation of")
    m = _open_escalation(d, cmd.milestone, "acknowledge")
    if m.acknowledged_at is not None:
        return
    d.emit(
        e.EscalationAcknowledged(
            milestone=m.key, acknowledged_by=cmd.actor_id, acknowledged_at=d.now, note_ref=cmd.note_ref
        )
    )


def _resolve_escalation(d: _Decision, cmd: c.ResolveEscalation) -> None:
    """A coordinator closes the escalation: the ladder stops and its at-risk mark goes; the milestone
    stays unmet (meeting it later is still recorded, and counts towards completion as before)."""
    _require_role(cmd, ("coordinator",), "resolve an escalation of")
    m = _open_escalation(d, cmd.milestone, "resolve")
    d.emit(
        e.EscalationResolved(
            milestone=m.key,
            resolved_at=d.now,
            resolution="resolved_by_coordinator",
            resolved_by=cmd.actor_id,
            reason_ref=cmd.reason_ref,
        )
    )


def _stop_ladders(d: _Decision, at: datetime | None = None) -> None:
    """Resolve every running ladder `at` the moment the journey ended (default: now)."""
    for m in d.s.milestones:
        if m.ladder_running:
            d.emit(e.EscalationResolved(milestone=m.key, resolved_at=at or d.now, resolution="journey_ended"))


def _evaluate(d: _Decision, at: datetime) -> None:
    s = d.s
    # At the evaluation instant, not at `now`: when the clock is advanced must not change history.
    _stop_ladders(d, at)
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
    follow_ups = _follow_up_dues(s, at)
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


def _follow_up_dues(s: JourneyState, at: datetime) -> tuple[datetime, ...]:
    fu = s.programme.follow_up
    local = s.calendar.local(at)
    if fu.after is not None:
        return tuple(s.calendar.add(local, delay) for delay in fu.after)
    return tuple(local + isodate.Duration(months=m) for m in fu.months)


def _override(d: _Decision, cmd: c.OverrideCompletion) -> None:
    s = d.s
    _require_state(s, EVALUATED_STATES, "override completion of")
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


def _record_outcome(d: _Decision, cmd: c.RecordOutcome) -> None:
    s = d.s
    if cmd.actor_role == "talent" and not _is_talent(s, cmd):
        raise NotAllowed("a talent can record only their own outcome")
    if cmd.actor_role not in ("hr_system", "coordinator", "talent", "system"):
        raise NotAllowed(f"a {cmd.actor_role} cannot record an outcome")
    _require_state(s, EVALUATED_STATES, "record an outcome on")
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


# -- time ----------------------------------------------------------------------------------------

_Action = tuple[datetime, int, str, str]  # (when, priority, kind, milestone/rung detail)


def _next_action(s: JourneyState) -> _Action | None:
    """The earliest thing time will do to this journey, whenever that is."""
    if s.state in TERMINAL_STATES or s.state == "paused":
        return None
    best: _Action | None = None

    def consider(action: _Action) -> None:
        nonlocal best
        if best is None or action[:2] < best[:2]:
            best = action

    if s.state == "enrolled" and s.starts_at is not None:
        consider((s.starts_at, 0, "start", ""))
    if s.state in ("nominated", "enrolled", "active"):
        for m in s.milestones:
            if m.status == "open":
                consider((m.due_at, 1, "slip", m.key))
            elif m.ladder_climbing:
                for r in m.ladder:
                    if r.rung not in m.raised:
                        consider((r.due_at, 2, "rung", f"{m.key}#{r.rung}"))
                        break
    if s.state == "active" and s.evaluate_at is not None:
        consider((s.evaluate_at, 3, "evaluate", ""))
    if s.state in EVALUATED_STATES:
        pending = [f for f in s.follow_ups if f.requested_at is None]
        if pending:
            consider((pending[0].due_at, 4, "follow_up", str(pending[0].point)))
        else:
            last = s.follow_ups[-1].respond_by if s.follow_ups else s.evaluated_at
            if last is not None:
                consider((last, 5, "close", ""))
    return best


def next_wakeup(state: JourneyState | None) -> datetime | None:
    """When time will next change this journey (None: only a command can)."""
    if state is None:
        return None
    action = _next_action(state)
    return action[0] if action else None


def _advance(d: _Decision) -> None:
    for _ in range(_MAX_TICKS):
        action = _next_action(d.s)
        if action is None or action[0] > d.now:
            return
        _perform(d, action)
    raise RuntimeError("too many time-driven steps in one decision")  # pragma: no cover


def _perform(d: _Decision, action: _Action) -> None:
    when, _, kind, detail = action
    s = d.s
    if kind == "start":
        d.emit(e.JourneyStarted(started_at=when))
    elif kind == "slip":
        m = s.milestone(detail)
        assert m is not None
        d.emit(e.MilestoneSlipped(milestone=m.key, due_at=m.due_at, slipped_at=when, ladder=_ladder(s, m, when)))
    elif kind == "rung":
        key, rung_text = detail.rsplit("#", 1)
        m = s.milestone(key)
        assert m is not None
        rung = int(rung_text)
        plan = next(r for r in m.ladder if r.rung == rung)
        d.emit(
            e.EscalationRaised(
                milestone=key,
                rung=rung,
                recipient_role=plan.recipient_role,
                recipient_id=s.person_for(plan.recipient_role),
                raised_at=when,
                at_risk=rung == m.ladder[-1].rung,
            )
        )
    elif kind == "evaluate":
        _evaluate(d, when)
    elif kind == "follow_up":
        point = next(f for f in s.follow_ups if f.point == int(detail))
        d.emit(
            e.FollowUpRequested(
                point=point.point,
                months=point.months,
                requested_at=when,
                respond_by=s.calendar.add(when, s.programme.follow_up.response_window),
            )
        )
    elif kind == "close":
        d.emit(e.JourneyClosed(closed_at=when, reason="follow_up_finished"))


def _ladder(s: JourneyState, m: MilestoneState, slipped_at: datetime) -> tuple[e.RungPlan, ...]:
    rungs = s.programme.escalation.rungs
    indexed = list(enumerate(rungs, start=1))
    if m.kind == "approval":
        # Only a coordinator can decide a nomination: the talent and leaders are not asked.
        indexed = [(i, r) for i, r in indexed if r.recipient == "coordinator"] or indexed[-1:]
    return tuple(
        e.RungPlan(rung=i, recipient_role=r.recipient, due_at=s.calendar.add(slipped_at, r.after), clock=r.after.clock)
        for i, r in indexed
    )
