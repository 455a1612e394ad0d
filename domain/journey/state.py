"""The journey's state, folded from its events, and the facts derived from it."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from domain import events as e
from domain.calendar import Clock, WorkingCalendar
from domain.policy import RUNNING_STATES
from domain.programme import Cohort, Programme, Role
from domain.values import AtRiskReason, MilestoneKey

MilestoneStatus = Literal["open", "met", "slipped", "missed", "waived"]
TrackStatus = Literal["open", "submitted", "signed_off", "returned"]


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


class ReadinessRecord(_Frozen):
    """Rules 4: the talent's current answer at a stage of the readiness self-assessment."""

    stage: e.ReadinessStage
    answer: e.ReadinessAnswer
    reason_ref: str | None = None
    changes: int = 0


class DebriefRecord(_Frozen):
    """Rules 4: the talent's debrief of a dilemma lab session (the latest one)."""

    session_key: str
    clarity: int | None = None
    notes_ref: str | None = None


class AppointmentRecord(_Frozen):
    """Rules 4: the next mentor meeting as the nearest leader proposed it."""

    number: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    remind_at: AwareDatetime | None = None
    reminded: bool = False
    #: How often it was proposed (a calendar entry's changes).
    proposals: int = 1


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
    #: Rules 3: the nomination expired undecided (NominationExpired): rejected with the reason `expired`.
    expired_at: AwareDatetime | None = None
    #: Rules 3: the evaluation waits for these tracks' sign-off (EvaluationDeferred), until evaluate_at.
    awaiting_signoff: tuple[str, ...] = ()
    evaluation_deferred_at: AwareDatetime | None = None
    #: Rules 4: the readiness stage that takes answers now (ReadinessAsked), and until when.
    readiness_stage: e.ReadinessStage | None = None
    readiness_respond_by: AwareDatetime | None = None
    #: Rules 4: the current answer at each stage answered.
    readiness: tuple[ReadinessRecord, ...] = ()
    #: Rules 4: the debriefs of dilemma lab sessions, one per session.
    debriefs: tuple[DebriefRecord, ...] = ()
    #: Rules 4: the clarified outcome (ClarityConcluded): None until concluded, or when unknown.
    clarity_concluded_at: AwareDatetime | None = None
    clarified: bool | None = None
    #: Rules 4: the proposed next mentor meeting, until a meeting on its date is logged.
    appointment: AppointmentRecord | None = None

    # -- derived views ---------------------------------------------------------------------

    def readiness_at(self, stage: e.ReadinessStage) -> ReadinessRecord | None:
        """Rules 4: the talent's current answer at a stage, if any."""
        return next((r for r in self.readiness if r.stage == stage), None)

    def debrief_of(self, session_key: str) -> DebriefRecord | None:
        """Rules 4: the debrief of a lab session, if any."""
        return next((x for x in self.debriefs if x.session_key == session_key), None)

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
        excused = sum(1 for s in mandatory if self.attendance_of(s.key) == "excused" or self._waived_unattended(s.key))
        base = len(mandatory) - excused
        share = self.programme.completion.min_attendance_share
        required = max(0, -int(-(share * base - 1e-9) // 1))
        return attended, required

    def _waived_unattended(self, session_key: str) -> bool:
        """Rules 3: a session held before the talent's enrolment (its milestone waived) leaves the
        base like an excused one, unless the talent attended it after all."""
        m = self.milestone(MilestoneKey.session(session_key))
        return m is not None and m.status == "waived" and self.attendance_of(session_key) != "attended"

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

    def at_risk(self) -> tuple[AtRiskReason, ...]:
        """Why the journey is at risk: a ladder at its last rung, or attendance out of reach."""
        reasons = [AtRiskReason.escalated(x.milestone) for x in self.escalations if x.at_risk and x.resolved_at is None]
        if self.state in RUNNING_STATES or self.state == "paused":
            attended, required = self.sessions_counts()
            unrecorded = sum(1 for s in self.programme.mandatory_sessions() if self.attendance_of(s.key) is None)
            if attended + unrecorded < required:
                reasons.append(AtRiskReason.attendance_below_minimum())
        return tuple(dict.fromkeys(reasons))

    def at_risk_reasons(self) -> tuple[str, ...]:
        """The at-risk reasons as stored in the status view (`escalated:<milestone>`, ...)."""
        return tuple(r.text for r in self.at_risk())

    def milestone_keys(self) -> set[str]:
        """Every milestone key the journey has or its programme will plan at enrolment."""
        p = self.programme
        return {
            MilestoneKey.approval(),
            *(MilestoneKey.session(x.key) for x in p.mandatory_sessions()),
            *(MilestoneKey.track(t.key) for t in p.tracks),
            *(MilestoneKey.mentor_meeting(n) for n in range(1, p.mentor_meetings.count + 1)),
            *(m.key for m in self.milestones),
        }
