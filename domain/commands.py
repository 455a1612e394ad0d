"""Commands (imperative) that ask a journey to change; each carries its actor and their role."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from domain.events import AttendanceStatus, ReadinessAnswer, ReadinessStage
from domain.programme import Cohort, Key, Programme

ActorRole = Literal["hr_system", "coordinator", "leader", "talent", "system"]

#: The journey rules a new nomination gets. A journey keeps the rules it was nominated under for
#: its whole life (two years and more), so every rule change is gated on the journey's version:
#: 1: the first rules; 2: mentor meetings dated between enrolment and today, a meeting the talent
#: logs counts once the nearest leader confirms it, logging a logged date again changes nothing;
#: 3: the programme as lived (PRODUCT §8.4: pause stops the clock not the people, inclusive
#: deadlines, the approval ladder and expiry, late nominations and waived milestones, attendance
#: bookkeeping, the sign-off grace, leader changes that keep the leader's leader);
#: 4: clarity (issue 14): the readiness self-assessment asked at enrolment and at evaluation,
#: debriefs after dilemma labs, and the clarified outcome concluded after the evaluation; mentor
#: meetings as appointments the nearest leader proposes, with a reminder before they are due.
CURRENT_RULES_VERSION = 4


class Actor(TypedDict):
    """Who issues a command: spread into any command as `**actor`."""

    actor_id: str
    actor_role: ActorRole


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor_id: str = Field(min_length=1, max_length=200)
    actor_role: ActorRole


class NominateTalent(_Command):
    """Start a journey: nominate a talent for a cohort of a programme version."""

    type: Literal["NominateTalent"] = "NominateTalent"
    journey_id: str = Field(min_length=1, max_length=100)
    talent_id: str = Field(min_length=1, max_length=200)
    nearest_leader_id: str = Field(min_length=1, max_length=200)
    leaders_leader_id: str | None = Field(default=None, max_length=200)
    programme: Programme
    cohort: Cohort
    motivation_ref: str | None = None
    #: The HR reference in clear: only in nominations made before `external_ref_ref`.
    external_ref: str | None = Field(default=None, max_length=200)
    #: The HR reference as a people-vault text id.
    external_ref_ref: str | None = Field(default=None, max_length=200)
    #: Absent in nominations made before rules versions (recorded workflow inputs): the first rules.
    #: New nominations send CURRENT_RULES_VERSION.
    rules_version: int = Field(default=1, ge=1, le=CURRENT_RULES_VERSION)


class DecideNomination(_Command):
    """Approve or reject a nomination."""

    type: Literal["DecideNomination"] = "DecideNomination"
    decision: Literal["approve", "reject"]
    reason_ref: str | None = None


class RecordAttendance(_Command):
    """Record (or correct) a talent's attendance at a session."""

    type: Literal["RecordAttendance"] = "RecordAttendance"
    session_key: Key
    status: AttendanceStatus


class ChangeCohortDetails(_Command):
    """The cohort's coordinator or session places changed (`PATCH /v1/cohorts/{id}`): a running
    journey takes them, so its later rungs reach the cohort's coordinator as it is now."""

    type: Literal["ChangeCohortDetails"] = "ChangeCohortDetails"
    coordinator_id: str | None = Field(default=None, max_length=200)
    locations: dict[Key, str] = Field(default_factory=dict, max_length=100)


class RescheduleSession(_Command):
    """Move a cohort session; the attendance deadline moves with it."""

    type: Literal["RescheduleSession"] = "RescheduleSession"
    session_key: Key
    starts_at: AwareDatetime


class SubmitTrack(_Command):
    """Submit the reflection on a track."""

    type: Literal["SubmitTrack"] = "SubmitTrack"
    track_key: Key
    reflection_ref: str | None = None


class SignOffTrack(_Command):
    """Approve or return a submitted track."""

    type: Literal["SignOffTrack"] = "SignOffTrack"
    track_key: Key
    decision: Literal["approve", "return"]
    comment_ref: str | None = None


class LogMentorMeeting(_Command):
    """Record a mentor meeting that was held."""

    type: Literal["LogMentorMeeting"] = "LogMentorMeeting"
    held_on: date
    notes_ref: str | None = None


class ConfirmMentorMeeting(_Command):
    """Confirm, as the nearest leader, a mentor meeting the talent logged."""

    type: Literal["ConfirmMentorMeeting"] = "ConfirmMentorMeeting"
    held_on: date


class PauseJourney(_Command):
    """Pause the journey (leave, illness): its clock stops."""

    type: Literal["PauseJourney"] = "PauseJourney"
    reason_ref: str | None = None


class ResumeJourney(_Command):
    """Resume a paused journey: open deadlines move by the paused time."""

    type: Literal["ResumeJourney"] = "ResumeJourney"


class ChangeNearestLeader(_Command):
    """Hand the talent to a new nearest leader."""

    type: Literal["ChangeNearestLeader"] = "ChangeNearestLeader"
    nearest_leader_id: str = Field(min_length=1, max_length=200)
    leaders_leader_id: str | None = Field(default=None, max_length=200)


class WithdrawTalent(_Command):
    """End the journey early."""

    type: Literal["WithdrawTalent"] = "WithdrawTalent"
    reason_ref: str | None = None


class OverrideCompletion(_Command):
    """A coordinator's override of the automatic completion evaluation."""

    type: Literal["OverrideCompletion"] = "OverrideCompletion"
    outcome: Literal["completed", "not_completed"]
    reason_ref: str | None = None


class RecordOutcome(_Command):
    """Record whether the talent applied for, or was appointed to, a leader post."""

    type: Literal["RecordOutcome"] = "RecordOutcome"
    applied_for_leader_post: bool
    appointed: bool
    on: date


class RecordErasure(_Command):
    """Note in the history that a person's data was erased from the vault."""

    type: Literal["RecordErasure"] = "RecordErasure"
    person_id: str = Field(min_length=1, max_length=200)


class AcknowledgeEscalation(_Command):
    """Take a milestone's open escalation in hand: its ladder stops climbing, the escalation stays open."""

    type: Literal["AcknowledgeEscalation"] = "AcknowledgeEscalation"
    milestone: str = Field(min_length=1, max_length=200)
    note_ref: str | None = None


class ResolveEscalation(_Command):
    """Close a milestone's open escalation without the milestone being met."""

    type: Literal["ResolveEscalation"] = "ResolveEscalation"
    milestone: str = Field(min_length=1, max_length=200)
    reason_ref: str | None = None


class AssessReadiness(_Command):
    """Rules 4: answer a stage's readiness question (want to lead: yes / not now / no), with an
    optional reason (a people-vault text)."""

    type: Literal["AssessReadiness"] = "AssessReadiness"
    stage: ReadinessStage
    answer: ReadinessAnswer
    reason_ref: str | None = None


class DebriefLab(_Command):
    """Rules 4: the talent's debrief after a dilemma lab session: notes (a vault text) and an
    optional 1-5 'clearer about leadership' scale."""

    type: Literal["DebriefLab"] = "DebriefLab"
    session_key: Key
    clarity: int | None = Field(default=None, ge=1, le=5)
    notes_ref: str | None = None


class ProposeMentorMeeting(_Command):
    """Rules 4: the nearest leader proposes when the next mentor meeting is held (an appointment in
    both calendars; the leader is reminded before it); proposing again moves it."""

    type: Literal["ProposeMentorMeeting"] = "ProposeMentorMeeting"
    starts_at: AwareDatetime


class AdvanceClock(_Command):
    """Let time pass: record the slips, rungs, starts, evaluations and follow-ups now due."""

    type: Literal["AdvanceClock"] = "AdvanceClock"


Command = Annotated[
    NominateTalent
    | DecideNomination
    | RecordAttendance
    | RescheduleSession
    | ChangeCohortDetails
    | SubmitTrack
    | SignOffTrack
    | LogMentorMeeting
    | ConfirmMentorMeeting
    | PauseJourney
    | ResumeJourney
    | ChangeNearestLeader
    | WithdrawTalent
    | OverrideCompletion
    | RecordOutcome
    | RecordErasure
    | AcknowledgeEscalation
    | ResolveEscalation
    | AssessReadiness
    | DebriefLab
    | ProposeMentorMeeting
    | AdvanceClock,
    Field(discriminator="type"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
