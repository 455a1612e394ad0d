"""Journey events (past tense) and the one envelope every stored event travels in.

Events carry person ids and references to encrypted texts in the people vault, never names,
e-mail addresses or free text. Every date an event implies is written into it (due times,
shifted deadlines), so replaying history never depends on a calendar library's version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from domain.calendar import Clock
from domain.programme import Cohort, Programme, Role

MilestoneKind = Literal["approval", "session", "track", "mentor_meeting"]
#: Rules 4 (issue 14): the two stages at which the talent assesses whether they want to lead.
ReadinessStage = Literal["enrolment", "evaluation"]
#: Want to lead: yes, not now, or no (a well-founded yes or no at the end is "clarified").
ReadinessAnswer = Literal["yes", "not_now", "no"]
AttendanceStatus = Literal["attended", "absent", "excused"]
JourneyStateName = Literal[
    "nominated",
    "enrolled",
    "active",
    "completed",
    "not_completed",
    "following_up",
    "closed",
    "rejected",
    "paused",
    "withdrawn",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventMetadata(_Frozen):
    """Who caused an event and in answer to what."""

    actor: str
    correlation_id: str | None = None
    causation_id: str | None = None


class MilestonePlan(_Frozen):
    """A milestone as planned at enrolment: what is due, when, on which clock."""

    key: str
    kind: MilestoneKind
    ref: str
    due_at: AwareDatetime
    clock: Clock


class RungPlan(_Frozen):
    """One rung of a slipped milestone's ladder, with the instant it fires."""

    rung: int
    recipient_role: Role
    due_at: AwareDatetime
    clock: Clock


class DeadlineShift(_Frozen):
    """Where an open deadline moved to when a pause ended."""

    milestone: str
    due_at: AwareDatetime
    ladder: tuple[RungPlan, ...] = ()


class _Event(_Frozen):
    schema_version: Literal[1] = 1


class _Upcast(BaseModel):
    """Mixed into an event whose schema_version went up: data of an older version is upcast first.

    Stored events go through `parse_event`, which does the same; this catches the other ways an
    event arrives, e.g. an activity input that a worker of the previous release scheduled. (Only
    these events pay for the Python validator: the others keep pydantic's JSON fast path.)
    """

    @model_validator(mode="before")
    @classmethod
    def _upcast_older_shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        version = data.get("schema_version")
        current = cls.model_fields["schema_version"].default
        if isinstance(version, int) and version < current:
            event_type = cls.model_fields["type"].default
            fields = {k: v for k, v in data.items() if k not in ("type", "schema_version")}
            upcast, version = upcast_data(event_type, version, fields)
            return {**upcast, "type": event_type, "schema_version": version}
        return data


class TalentNominated(_Event, _Upcast):
    """A nearest leader (or HR on their behalf) nominated a talent for a cohort.

    Schema 2 added `rules_version` (which journey rules the journey keeps for its whole life) and
    `external_ref_ref` (the HR reference as a people-vault text); `external_ref` stays readable in
    the events stored before, new nominations leave it empty. Schema 1 data is upcast to
    `rules_version` 1 and no `external_ref_ref`.
    """

    schema_version: Literal[2] = 2  # type: ignore[assignment]
    type: Literal["TalentNominated"] = "TalentNominated"
    journey_id: str
    talent_id: str
    nearest_leader_id: str
    leaders_leader_id: str | None = None
    nominated_by: str
    programme: Programme
    cohort: Cohort
    motivation_ref: str | None = None
    external_ref: str | None = None
    nominated_at: AwareDatetime
    approval_due: AwareDatetime
    approval_clock: Clock
    rules_version: int = Field(ge=1)
    external_ref_ref: str | None = None


class NominationApproved(_Event):
    """A coordinator approved the nomination."""

    type: Literal["NominationApproved"] = "NominationApproved"
    decided_by: str
    reason_ref: str | None = None
    decided_at: AwareDatetime


class NominationRejected(_Event):
    """A coordinator rejected the nomination, with a reason."""

    type: Literal["NominationRejected"] = "NominationRejected"
    decided_by: str
    reason_ref: str | None = None
    decided_at: AwareDatetime


class NominationExpired(_Event):
    """Rules 3: nobody decided the nomination within `approval.expires_after` of its deadline;
    it is rejected with the reason `expired`."""

    type: Literal["NominationExpired"] = "NominationExpired"
    expired_at: AwareDatetime
    #: The approval deadline that passed.
    due_at: AwareDatetime


class TalentEnrolled(_Event):
    """The talent was placed in the cohort, with the milestone plan computed from its calendar."""

    type: Literal["TalentEnrolled"] = "TalentEnrolled"
    cohort_id: str
    starts_at: AwareDatetime
    milestones: tuple[MilestonePlan, ...]
    evaluate_at: AwareDatetime
    evaluate_clock: Clock


class JourneyStarted(_Event):
    """The cohort started: the enrolled talent's journey is active."""

    type: Literal["JourneyStarted"] = "JourneyStarted"
    started_at: AwareDatetime


class SessionAttendanceRecorded(_Event):
    """Attendance at a session was recorded (a later record corrects an earlier one)."""

    type: Literal["SessionAttendanceRecorded"] = "SessionAttendanceRecorded"
    session_key: str
    status: AttendanceStatus
    recorded_by: str


class CohortDetailsChanged(_Event):
    """The cohort's coordinator or session places changed; the journey follows them from now on."""

    type: Literal["CohortDetailsChanged"] = "CohortDetailsChanged"
    coordinator_id: str | None = None
    locations: dict[str, str] = {}


class SessionRescheduled(_Event):
    """The cohort's session moved; the attendance milestone moves with it."""

    type: Literal["SessionRescheduled"] = "SessionRescheduled"
    session_key: str
    starts_at: AwareDatetime
    previous_starts_at: AwareDatetime
    milestone_due_at: AwareDatetime | None = None


class TrackSubmitted(_Event):
    """The talent submitted a reflection on a track."""

    type: Literal["TrackSubmitted"] = "TrackSubmitted"
    track_key: str
    submission: int
    reflection_ref: str | None = None
    submitted_by: str


class TrackSignedOff(_Event):
    """The nearest leader approved a submitted track."""

    type: Literal["TrackSignedOff"] = "TrackSignedOff"
    track_key: str
    signed_off_by: str
    comment_ref: str | None = None


class TrackReturned(_Event):
    """The nearest leader returned a submitted track for another round."""

    type: Literal["TrackReturned"] = "TrackReturned"
    track_key: str
    returned_by: str
    comment_ref: str | None = None


class MentorMeetingLogged(_Event, _Upcast):
    """Talent and nearest leader held a mentor meeting; `number` counts the meetings logged.

    Under rules version 2 a meeting the talent logs is not `confirmed` (it does not count) until
    the nearest leader confirms it (MentorMeetingConfirmed). Schema 2 added `confirmed`; every
    meeting logged under schema 1 counted, so schema 1 data is upcast to `confirmed` true.
    """

    schema_version: Literal[2] = 2  # type: ignore[assignment]
    type: Literal["MentorMeetingLogged"] = "MentorMeetingLogged"
    number: int
    held_on: date
    leader_id: str
    logged_by: str
    notes_ref: str | None = None
    confirmed: bool


class MentorMeetingConfirmed(_Event):
    """The nearest leader confirmed a mentor meeting the talent logged: from now on it counts."""

    type: Literal["MentorMeetingConfirmed"] = "MentorMeetingConfirmed"
    number: int
    held_on: date
    confirmed_by: str


class MilestoneMet(_Event):
    """A milestone was met (late if it had slipped)."""

    type: Literal["MilestoneMet"] = "MilestoneMet"
    milestone: str
    met_at: AwareDatetime
    late: bool


class MilestoneMissed(_Event):
    """A milestone can no longer be met (the talent was absent from a mandatory session)."""

    type: Literal["MilestoneMissed"] = "MilestoneMissed"
    milestone: str
    missed_at: AwareDatetime
    reason: str


class MilestoneWaived(_Event):
    """Rules 3: the milestone was already due when the talent was enrolled; it never slips or escalates."""

    type: Literal["MilestoneWaived"] = "MilestoneWaived"
    milestone: str
    due_at: AwareDatetime
    waived_at: AwareDatetime
    reason: Literal["due_before_enrolment"] = "due_before_enrolment"


class MilestoneSlipped(_Event):
    """A milestone passed its deadline unmet; its escalation ladder starts."""

    type: Literal["MilestoneSlipped"] = "MilestoneSlipped"
    milestone: str
    due_at: AwareDatetime
    slipped_at: AwareDatetime
    ladder: tuple[RungPlan, ...]


class EscalationRaised(_Event):
    """A rung of a slipped milestone's ladder fired; the last rung marks the journey at risk."""

    type: Literal["EscalationRaised"] = "EscalationRaised"
    milestone: str
    rung: int
    recipient_role: Role
    recipient_id: str | None = None
    raised_at: AwareDatetime
    at_risk: bool


class EscalationAcknowledged(_Event):
    """A coordinator took a slipped milestone's escalation in hand: no further rung fires, it stays open."""

    type: Literal["EscalationAcknowledged"] = "EscalationAcknowledged"
    milestone: str
    acknowledged_by: str
    acknowledged_at: AwareDatetime
    note_ref: str | None = None


class EscalationResolved(_Event):
    """A slipped milestone's ladder stopped: met late, missed, rescheduled, the journey ended, or a
    coordinator closed it (`resolved_by_coordinator`, with who and why; the milestone stays unmet)."""

    type: Literal["EscalationResolved"] = "EscalationResolved"
    milestone: str
    resolved_at: AwareDatetime
    resolution: Literal["met", "missed", "rescheduled", "journey_ended", "resolved_by_coordinator"]
    # Added later, optional: histories stored before them parse unchanged.
    resolved_by: str | None = None
    reason_ref: str | None = None


class JourneyPaused(_Event):
    """The journey was paused (leave, illness): its clock stops."""

    type: Literal["JourneyPaused"] = "JourneyPaused"
    paused_by: str
    reason_ref: str | None = None
    paused_at: AwareDatetime
    previous_state: JourneyStateName


class JourneyResumed(_Event):
    """The journey resumed; every open deadline and rung moved by the paused time."""

    type: Literal["JourneyResumed"] = "JourneyResumed"
    resumed_by: str
    resumed_at: AwareDatetime
    paused_working_days: int
    paused_seconds: int
    resumed_state: JourneyStateName
    shifts: tuple[DeadlineShift, ...]
    evaluate_at: AwareDatetime | None = None
    approval_due: AwareDatetime | None = None


class NearestLeaderChanged(_Event):
    """The talent's nearest leader changed; pending sign-offs and meetings move to the new one."""

    type: Literal["NearestLeaderChanged"] = "NearestLeaderChanged"
    previous_leader_id: str
    nearest_leader_id: str
    leaders_leader_id: str | None = None
    changed_by: str


class TalentWithdrawn(_Event):
    """The talent left the programme."""

    type: Literal["TalentWithdrawn"] = "TalentWithdrawn"
    withdrawn_by: str
    reason_ref: str | None = None
    withdrawn_at: AwareDatetime


class ProgrammeCompleted(_Event):
    """Evaluated (or overridden by a coordinator) as completed."""

    type: Literal["ProgrammeCompleted"] = "ProgrammeCompleted"
    evaluated_at: AwareDatetime
    override: bool = False
    decided_by: str | None = None
    reason_ref: str | None = None
    sessions_attended: int
    tracks_done: int
    meetings_held: int
    follow_ups: tuple[AwareDatetime, ...]


class ProgrammeNotCompleted(_Event):
    """Evaluated (or overridden by a coordinator) as not completed, with the reasons."""

    type: Literal["ProgrammeNotCompleted"] = "ProgrammeNotCompleted"
    evaluated_at: AwareDatetime
    reasons: tuple[str, ...]
    override: bool = False
    decided_by: str | None = None
    reason_ref: str | None = None
    sessions_attended: int
    tracks_done: int
    meetings_held: int
    follow_ups: tuple[AwareDatetime, ...]


class EvaluationDeferred(_Event):
    """Rules 3 (PRODUCT §8.4): at the programme's end tracks still awaited sign-off, so the evaluation
    waits for them until `due_at` (`completion.signoff_grace` after `ended_at`); a sign-off in that
    window counts."""

    type: Literal["EvaluationDeferred"] = "EvaluationDeferred"
    ended_at: AwareDatetime
    due_at: AwareDatetime
    awaiting: tuple[str, ...]


class FollowUpRequested(_Event):
    """An outcome follow-up point was reached: the talent and HR are asked about leader posts."""

    type: Literal["FollowUpRequested"] = "FollowUpRequested"
    point: int
    months: int | None = None
    requested_at: AwareDatetime
    respond_by: AwareDatetime


class OutcomeRecorded(_Event):
    """Whether the talent applied for / was appointed to a leader post."""

    type: Literal["OutcomeRecorded"] = "OutcomeRecorded"
    applied_for_leader_post: bool
    appointed: bool
    on: date
    recorded_by: str
    months: int | None = None


class JourneyClosed(_Event):
    """The journey is over: no more timers, no more commands but erasure."""

    type: Literal["JourneyClosed"] = "JourneyClosed"
    closed_at: AwareDatetime
    reason: str


class PersonalDataErased(_Event):
    """A person's data in the vault was crypto-shredded; the history stays, unreadable."""

    type: Literal["PersonalDataErased"] = "PersonalDataErased"
    person_id: str
    erased_by: str


class ReadinessAsked(_Event):
    """Rules 4: a stage of the readiness self-assessment opened (at enrolment, and when completion
    is evaluated): the talent is asked whether they want to lead. The evaluation stage takes answers
    until `respond_by`; the enrolment stage until the evaluation stage opens."""

    type: Literal["ReadinessAsked"] = "ReadinessAsked"
    stage: ReadinessStage
    asked_at: AwareDatetime
    respond_by: AwareDatetime | None = None


class ReadinessAssessed(_Event):
    """Rules 4: the talent (or a coordinator on their behalf) answered a stage's readiness question;
    a later answer at the same stage records the change. The reason is a people-vault text."""

    type: Literal["ReadinessAssessed"] = "ReadinessAssessed"
    stage: ReadinessStage
    answer: ReadinessAnswer
    reason_ref: str | None = None
    assessed_by: str
    #: The answer this one changed at the same stage (None: the stage's first answer).
    previous_answer: ReadinessAnswer | None = None


class LabDebriefed(_Event):
    """Rules 4: the talent's short debrief after a dilemma lab session: a vault text and an optional
    1-5 'clearer about leadership' scale; a later debrief of the same session records the change."""

    type: Literal["LabDebriefed"] = "LabDebriefed"
    session_key: str
    clarity: int | None = Field(default=None, ge=1, le=5)
    notes_ref: str | None = None
    debriefed_by: str


class ClarityConcluded(_Event):
    """Rules 4: the evaluation stage closed (or the journey closed first): the clarified outcome of
    the programme. `clarified` is true for a well-founded answer at the end (yes or no at
    evaluation), false for `not_now`, None when the talent never answered (unknown)."""

    type: Literal["ClarityConcluded"] = "ClarityConcluded"
    concluded_at: AwareDatetime
    enrolment_answer: ReadinessAnswer | None = None
    evaluation_answer: ReadinessAnswer | None = None
    clarified: bool | None = None


class MentorMeetingProposed(_Event):
    """Rules 4: the nearest leader proposed when mentor meeting `number` is held (`due_at`, until
    `ends_at`): an appointment in the talent's and the leader's calendars; the leader is reminded at
    `remind_at` (None: too soon for a reminder). A proposal while one is pending moves it."""

    type: Literal["MentorMeetingProposed"] = "MentorMeetingProposed"
    number: int
    due_at: AwareDatetime
    ends_at: AwareDatetime
    proposed_by: str
    remind_at: AwareDatetime | None = None
    #: The proposal's count for this meeting (1 first, 2 when moved once...): the calendar SEQUENCE + 1.
    proposal: int = Field(default=1, ge=1)


class MentorMeetingReminded(_Event):
    """Rules 4: the nearest leader was reminded of the proposed mentor meeting ahead of it."""

    type: Literal["MentorMeetingReminded"] = "MentorMeetingReminded"
    number: int
    due_at: AwareDatetime
    reminded_at: AwareDatetime


Event = Annotated[
    TalentNominated
    | NominationApproved
    | NominationRejected
    | NominationExpired
    | TalentEnrolled
    | JourneyStarted
    | SessionAttendanceRecorded
    | SessionRescheduled
    | CohortDetailsChanged
    | TrackSubmitted
    | TrackSignedOff
    | TrackReturned
    | MentorMeetingLogged
    | MentorMeetingConfirmed
    | MilestoneMet
    | MilestoneMissed
    | MilestoneWaived
    | MilestoneSlipped
    | EscalationRaised
    | EscalationAcknowledged
    | EscalationResolved
    | JourneyPaused
    | JourneyResumed
    | NearestLeaderChanged
    | TalentWithdrawn
    | ProgrammeCompleted
    | ProgrammeNotCompleted
    | EvaluationDeferred
    | FollowUpRequested
    | OutcomeRecorded
    | JourneyClosed
    | PersonalDataErased
    | ReadinessAsked
    | ReadinessAssessed
    | LabDebriefed
    | ClarityConcluded
    | MentorMeetingProposed
    | MentorMeetingReminded,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: frozenset[str] = frozenset(t.model_fields["type"].default for t in _Event.__subclasses__())


def _talent_nominated_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Journeys nominated before rules versions keep the first rules; their HR reference is in clear."""
    return {**data, "rules_version": 1, "external_ref_ref": None}


def _mentor_meeting_logged_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Before leader confirmation, every meeting logged counted."""
    return {**data, "confirmed": True}


# Upcasters turn an older stored shape into the current one: {(type, from_version): fn(data)}.
# A released shape never changes in place: its schema_version goes up and an upcaster is added.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("TalentNominated", 1): _talent_nominated_1_to_2,
    ("MentorMeetingLogged", 1): _mentor_meeting_logged_1_to_2,
}


def upcast_data(event_type: str, schema_version: int, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Stored event data (without type and schema version) upcast to its current shape, and that version."""
    version = schema_version
    while (event_type, version) in UPCASTERS:
        data = UPCASTERS[(event_type, version)](data)
        version += 1
    return data, version


class NewEvent(_Frozen):
    """An event decided but not yet stored: its id is minted by the caller, deterministically."""

    event_id: UUID
    occurred_at: AwareDatetime
    event: Event


class RecordedEvent(_Frozen):
    """The envelope of a stored event (§5)."""

    event_id: UUID
    stream_id: str
    stream_version: int
    global_position: int
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: EventMetadata
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime

    def to_event(self) -> Event:
        """The typed domain event, upcast to the current schema if stored in an older one."""
        return parse_event(self.event_type, self.schema_version, self.data)


def parse_event(event_type: str, schema_version: int, data: dict[str, Any]) -> Event:
    """Parse stored event data into its typed model, upcasting older schema versions."""
    data, version = upcast_data(event_type, schema_version, data)
    return EVENT_ADAPTER.validate_python({**data, "type": event_type, "schema_version": version})


_EVENT_CLASSES: dict[str, type[_Event]] = {t.model_fields["type"].default: t for t in _Event.__subclasses__()}


def parse_event_json(event_type: str, schema_version: int, data: str) -> Event:
    """Parse stored event data (JSON text) into its typed model; the fast path of parse_event."""
    cls = _EVENT_CLASSES.get(event_type)
    if cls is None:
        raise ValueError(f"unknown event type {event_type!r}")
    if schema_version == cls.model_fields["schema_version"].default:
        return cls.model_validate_json(data)  # type: ignore[return-value]
    return parse_event(event_type, schema_version, json.loads(data))


def event_json(event: Event) -> str:
    """The event's data as stored (JSON text): everything but the envelope's type and schema version."""
    return event.model_dump_json(exclude={"type", "schema_version"})


def event_data(event: Event) -> dict[str, Any]:
    """The event's data as stored: everything but the envelope's type and schema version."""
    return event.model_dump(mode="json", exclude={"type", "schema_version"})


def stream_id_for(journey_id: str) -> str:
    """The event stream of a journey."""
    return f"journey-{journey_id}"


def public_event_data(event_type: str, data: dict[str, Any], *, external_ref: str | None = None) -> dict[str, Any]:
    """Stored event data as an HR system receives it (feed and webhooks): ids and facts only, the
    nomination's bulky programme and cohort definitions reduced to their ids.

    A nomination's HR reference lives in the people vault (its event holds the text id,
    `external_ref_ref`): the caller reads it and passes it as `external_ref`, so HR gets its own
    reference back, and none once the talent is erased.
    """
    if event_type != "TalentNominated":
        return data
    public = {k: v for k, v in data.items() if k not in ("programme", "cohort", "external_ref_ref")}
    programme, cohort = data.get("programme") or {}, data.get("cohort") or {}
    return public | {
        "programme_id": programme.get("id"),
        "programme_version": programme.get("version"),
        "cohort_id": cohort.get("cohort_id"),
        "external_ref": data.get("external_ref") or external_ref,
    }
