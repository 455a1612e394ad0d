"""Programme definitions and cohorts: versioned data, validated with messages that name the field."""

from __future__ import annotations

import itertools
import json
import math
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from domain.calendar import CalendarName, ClosurePeriod, Delay, WorkingCalendar, get_calendar
from domain.errors import ProgrammeInvalid

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Role = Literal["talent", "nearest_leader", "leaders_leader", "coordinator"]
SessionKind = Literal["teaching", "dilemma_lab", "network"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SessionDef(_Frozen):
    """A session of the programme; its date and place come from the cohort calendar."""

    key: Key
    title: str = Field(min_length=1)
    kind: SessionKind
    mandatory: bool = True


class TrackDef(_Frozen):
    """A practice track done in the talent's own workplace."""

    key: Key
    title: str = Field(min_length=1)
    description: str = ""
    due: Delay
    leader_signoff: bool = True


class MentorMeetingsDef(_Frozen):
    """How many mentor meetings and how often (the n-th is due n × cadence after cohort start)."""

    count: int = Field(ge=0, le=52)
    cadence: Delay


class CompletionDef(_Frozen):
    """What completing the programme takes, and when it is evaluated (the programme's end)."""

    min_attendance_share: float = Field(ge=0, le=1)
    tracks_required: int = Field(ge=0)
    min_mentor_meetings: int = Field(ge=0)
    evaluate_after: Delay
    #: Rules 3 (PRODUCT §8.4): how long the evaluation waits for tracks that await sign-off at the
    #: programme's end; a sign-off in this window counts.
    signoff_grace: Delay = Delay(working_days=10)


class RungDef(_Frozen):
    """One rung of the escalation ladder: `after` the slip, notify `recipient`."""

    after: Delay
    recipient: Role


class EscalationDef(_Frozen):
    """The ladder; the last rung marks the journey at risk."""

    rungs: tuple[RungDef, ...] = Field(min_length=1, max_length=10)

    @field_validator("rungs")
    @classmethod
    def _ordered(cls, rungs: tuple[RungDef, ...]) -> tuple[RungDef, ...]:
        for i in range(1, len(rungs)):
            if rungs[i].after.nominal_days() < rungs[i - 1].after.nominal_days():
                raise ValueError(f"rung {i} comes before rung {i - 1}: rungs must not go back in time")
        return rungs


def _default_approval_ladder() -> EscalationDef:
    return EscalationDef(
        rungs=(
            RungDef(after=Delay(working_days=0), recipient="coordinator"),
            RungDef(after=Delay(working_days=0), recipient="nearest_leader"),
            RungDef(after=Delay(working_days=2), recipient="coordinator"),
        )
    )


class ApprovalDef(_Frozen):
    """How long a coordinator has to decide on a nomination; under rules 3 also who is told when
    the deadline passes (`escalation`, the approval's own ladder) and when an undecided nomination
    expires (`expires_after` its deadline)."""

    deadline: Delay
    #: Rules 3: the approval's ladder. Default: the coordinator at 0 and 2 working days after the
    #: deadline, the nominating (nearest) leader told at 0. It never marks the journey at risk.
    escalation: EscalationDef = Field(default_factory=_default_approval_ladder)
    #: Rules 3: an undecided nomination expires this long after its deadline (NominationExpired).
    expires_after: Delay = Delay(working_days=20)

    @model_validator(mode="after")
    def _expires_after_ladder(self) -> ApprovalDef:
        last = self.escalation.rungs[-1].after
        if self.expires_after.nominal_days() < last.nominal_days():
            raise ValueError(
                f"approval.expires_after: {self.expires_after} comes before the approval ladder's last rung ({last})"
            )
        return self


class EnrolmentDef(_Frozen):
    """Rules 3: until when a cohort takes nominations."""

    #: After the cohort's start; None (the default): until its first mandatory session starts.
    closes: Delay | None = None


class FollowUpDef(_Frozen):
    """When, after completion, outcomes are asked for; the journey closes after the last answer window."""

    months: tuple[int, ...] = (6, 12, 24)
    #: Explicit delays after completion, used instead of `months` (compressed demo programmes).
    after: tuple[Delay, ...] | None = None
    response_window: Delay = Delay(working_days=20)

    @field_validator("months")
    @classmethod
    def _increasing(cls, months: tuple[int, ...]) -> tuple[int, ...]:
        if any(m <= 0 for m in months):
            raise ValueError("follow-up months must be positive")
        if list(months) != sorted(set(months)):
            raise ValueError("follow-up months must be strictly increasing")
        return months


#: A closure longer than a season is a typo (a year for a month), not a break.
_MAX_CLOSURE_DAYS = 92


class ClosureDef(_Frozen):
    """A period the programme's people are away (a school's winter break, July), both days included:
    no working-day deadline falls in it, and the working-day clock skips it (PRODUCT §8.4)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from")
    to: date
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> ClosureDef:
        if self.to < self.from_:
            raise ValueError(f"from ({self.from_}) is after to ({self.to})")
        if (self.to - self.from_).days >= _MAX_CLOSURE_DAYS:
            raise ValueError(f"{self.from_} to {self.to} is longer than {_MAX_CLOSURE_DAYS} days")
        return self


class CalendarDef(_Frozen):
    """The programme's working-day calendar: `dk`, `dk-municipal` (PRODUCT §8.4) or `weekdays`, and
    its closure periods.

    Written as a name (`calendar: dk`) or as `{name, closures}`. Stored as the bare name while it
    has no closures, so a programme stored before closures existed reads, and compares, unchanged.
    """

    name: CalendarName = "dk"
    closures: tuple[ClosureDef, ...] = Field(default=(), max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("closures")
    @classmethod
    def _apart(cls, closures: tuple[ClosureDef, ...]) -> tuple[ClosureDef, ...]:
        ordered = sorted(enumerate(closures), key=lambda x: x[1].from_)
        for (i, a), (j, b) in itertools.pairwise(ordered):
            if b.from_ <= a.to:
                raise ValueError(f"closures {i} ({a.from_} to {a.to}) and {j} ({b.from_} to {b.to}) overlap")
        return closures

    @model_serializer(mode="wrap")
    def _serialise(self, handler: SerializerFunctionWrapHandler) -> str | dict[str, Any]:
        if not self.closures:
            return self.name
        dumped: dict[str, Any] = handler(self)
        return dumped

    def periods(self) -> tuple[ClosurePeriod, ...]:
        """The closures as the working calendar keeps them, in date order."""
        return tuple(sorted((x.from_, x.to, x.reason) for x in self.closures))


class Programme(_Frozen):
    """A published programme version: immutable once published; journeys pin the version."""

    id: Key
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    description: str = ""
    calendar: CalendarDef = CalendarDef()
    timezone: str = "Europe/Copenhagen"
    deadline_time: time = time(16, 0)
    attendance_grace: Delay = Delay(working_days=2)
    sessions: tuple[SessionDef, ...] = Field(min_length=1)
    tracks: tuple[TrackDef, ...] = ()
    mentor_meetings: MentorMeetingsDef
    approval: ApprovalDef
    enrolment: EnrolmentDef = EnrolmentDef()
    completion: CompletionDef
    escalation: EscalationDef
    follow_up: FollowUpDef = FollowUpDef()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        get_calendar("weekdays", value, time(16, 0))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        errors: list[str] = []
        seen: dict[str, str] = {}
        keyed: list[tuple[str, int, str]] = [("sessions", i, x.key) for i, x in enumerate(self.sessions)]
        keyed += [("tracks", i, x.key) for i, x in enumerate(self.tracks)]
        for field, i, key in keyed:
            if key in seen:
                errors.append(f"{field}[{i}].key: duplicate key {key!r} (also in {seen[key]})")
            else:
                seen[key] = f"{field}[{i}]"
        end = self.completion.evaluate_after
        for i, track in enumerate(self.tracks):
            if track.due.nominal_days() > end.nominal_days():
                errors.append(
                    f"tracks[{i}].due: {track.key!r} is due ({track.due}) after the programme ends "
                    f"(completion.evaluate_after = {end})"
                )
        meetings = self.mentor_meetings
        if meetings.count and meetings.cadence.nominal_days() * meetings.count > end.nominal_days():
            errors.append(
                f"mentor_meetings: the last of {meetings.count} meetings every {meetings.cadence} "
                f"falls after the programme ends (completion.evaluate_after = {end})"
            )
        if self.completion.tracks_required > len(self.tracks):
            errors.append(
                f"completion.tracks_required: {self.completion.tracks_required} exceeds the "
                f"{len(self.tracks)} tracks defined"
            )
        if self.completion.min_mentor_meetings > meetings.count:
            errors.append(
                f"completion.min_mentor_meetings: {self.completion.min_mentor_meetings} exceeds the "
                f"{meetings.count} meetings planned"
            )
        if errors:
            raise ValueError("\n".join(errors))
        return self

    @property
    def working_calendar(self) -> WorkingCalendar:
        """The programme's calendar."""
        return get_calendar(self.calendar.name, self.timezone, self.deadline_time, self.calendar.periods())

    def mandatory_sessions(self) -> tuple[SessionDef, ...]:
        """Sessions whose attendance counts towards completion."""
        return tuple(s for s in self.sessions if s.mandatory)

    def rungs_for(self, milestone_kind: str, rules_version: int = 1) -> tuple[tuple[int, RungDef], ...]:
        """The escalation ladder of a kind of milestone, as (rung number, rung), in order.

        Only a coordinator can decide a nomination, so an approval climbs only the coordinator's
        rungs (the last rung if none is the coordinator's); every other milestone climbs them all.
        Rules 3: an approval climbs its own ladder (`approval.escalation`), and an unrecorded
        attendance only the coordinator's rungs (bookkeeping is the coordinator's; the last rung,
        sent to the coordinator, if none is theirs).
        """
        indexed = tuple(enumerate(self.escalation.rungs, start=1))
        if rules_version >= 3:
            if milestone_kind == "approval":
                return tuple(enumerate(self.approval.escalation.rungs, start=1))
            if milestone_kind == "session":
                own = tuple((i, r) for i, r in indexed if r.recipient == "coordinator")
                return own or tuple((i, r.model_copy(update={"recipient": "coordinator"})) for i, r in indexed[-1:])
        if milestone_kind == "approval":
            return tuple((i, r) for i, r in indexed if r.recipient == "coordinator") or indexed[-1:]
        return indexed

    def escalates_to_coordinator(self, rules_version: int) -> bool:
        """Whether some ladder a journey on these rules climbs ends at the cohort's coordinator."""
        kinds = ["approval", "track", "mentor_meeting"]
        if self.mandatory_sessions():
            kinds.append("session")
        return any(r.recipient == "coordinator" for k in kinds for _, r in self.rungs_for(k, rules_version))

    def sessions_required(self) -> int:
        """How many mandatory sessions must be attended."""
        return math.ceil(self.completion.min_attendance_share * len(self.mandatory_sessions()) - 1e-9)


class CohortSession(_Frozen):
    """When and where a session takes place for one cohort."""

    key: Key
    starts_at: AwareDatetime
    location: str = ""


class Cohort(_Frozen):
    """A cohort (hold) of a programme version, with its session calendar."""

    cohort_id: Key
    programme_id: Key
    programme_version: int = Field(ge=1)
    starts_on: date
    #: Optional exact start instant; compressed programmes (ISO durations in minutes) need it.
    starts_at: AwareDatetime | None = None
    capacity: int = Field(ge=1, le=10_000)
    coordinator_id: str | None = None
    sessions: tuple[CohortSession, ...] = ()

    def start_instant(self, programme: Programme) -> datetime:
        """The instant the cohort starts: `starts_at`, else midnight of `starts_on` locally."""
        if self.starts_at is not None:
            return self.starts_at
        return datetime.combine(self.starts_on, time(0, 0), tzinfo=programme.working_calendar.tz)

    def enrolment_closes(self, programme: Programme) -> datetime:
        """Rules 3: the instant after which the cohort takes no nominations (`enrolment.closes`
        after its start, else its first mandatory session's start, else its start)."""
        closes = programme.enrolment.closes
        if closes is not None:
            return programme.working_calendar.add(self.start_instant(programme), closes)
        mandatory = {s.key for s in programme.mandatory_sessions()}
        starts = [x.starts_at for x in self.sessions if x.key in mandatory]
        return min(starts) if starts else self.start_instant(programme)

    def check_staffed(self, programme: Programme, rules_version: int) -> None:
        """Raise ProgrammeInvalid if a ladder would escalate to a coordinator the cohort lacks.

        A coordinator rung without a coordinator would mail no one, silently: such a cohort is
        refused (PRODUCT §8.4; chosen over a programme-level fallback, since a published
        programme version is immutable and a person's id does not belong in it).
        """
        if self.coordinator_id is None and programme.escalates_to_coordinator(rules_version):
            raise ProgrammeInvalid(
                ["coordinator_id: required: the programme's escalation ladders reach the cohort's coordinator"]
            )

    def check_against(self, programme: Programme) -> None:
        """Raise ProgrammeInvalid unless the cohort schedules exactly the programme's sessions."""
        errors: list[str] = []
        if (self.programme_id, self.programme_version) != (programme.id, programme.version):
            errors.append(
                f"programme_id: cohort is for {self.programme_id} v{self.programme_version}, "
                f"not {programme.id} v{programme.version}"
            )
        known = {s.key for s in programme.sessions}
        seen: set[str] = set()
        start = self.start_instant(programme)
        for i, session in enumerate(self.sessions):
            if session.key not in known:
                errors.append(f"sessions[{i}].key: unknown session {session.key!r}")
            if session.key in seen:
                errors.append(f"sessions[{i}].key: session {session.key!r} scheduled twice")
            seen.add(session.key)
            if session.starts_at < start:
                errors.append(f"sessions[{i}].starts_at: before the cohort starts")
        missing = sorted(known - seen)
        if missing:
            errors.append(f"sessions: not scheduled: {', '.join(missing)}")
        if errors:
            raise ProgrammeInvalid(errors)


def _format_errors(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "programme"
        message = str(err["msg"]).removeprefix("Value error, ")
        for line in message.splitlines():
            # A message that already names its field starts with "field.path: "; any other colon
            # (a quoted value such as '10:00') is not a field name and still needs the location.
            out.append(line if line.split(" ", 1)[0].endswith(":") else f"{loc}: {line}")
    return out


def parse_programme(data: Any) -> Programme:
    """Validate parsed data as a programme; raise ProgrammeInvalid naming each bad field."""
    try:
        return Programme.model_validate(data)
    except ValidationError as exc:
        raise ProgrammeInvalid(_format_errors(exc)) from exc


def parse_cohort(data: Any) -> Cohort:
    """Validate parsed data as a cohort; raise ProgrammeInvalid naming each bad field."""
    try:
        return Cohort.model_validate(data)
    except ValidationError as exc:
        raise ProgrammeInvalid(_format_errors(exc)) from exc


def programme_json(programme: Programme) -> str:
    """The canonical JSON of a programme (stable key order) for storage and comparison."""
    return json.dumps(programme.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
