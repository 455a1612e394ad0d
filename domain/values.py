"""Value types of the journey: milestone keys, at-risk reasons, languages; each stored as the text it always was."""

from __future__ import annotations

import re
from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, model_serializer, model_validator
from pydantic_core import core_schema

#: The language a person reads (notifications, the dashboard, calendar feeds).
Language = Literal["da", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

MilestoneKind = Literal["approval", "session", "track", "mentor_meeting"]
_KINDS: frozenset[str] = frozenset(get_args(MilestoneKind))
_SUBJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class MilestoneKey(str):
    """A milestone's key: its kind and, but for the approval, its subject (`session:kickoff`,
    `track:observe-leader`, `mentor_meeting:3`, `approval`).

    A `str`, so events, states and status JSON hold exactly the text they always held; build one
    with the constructors below and read it with `kind` and `subject`, never by formatting or
    splitting text.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> Self:
        """The key written `text`; ValueError unless it is a well-formed milestone key."""
        kind, sep, subject = text.partition(":")
        if kind not in _KINDS or (kind == "approval") == bool(sep):
            raise ValueError(f"not a milestone key: {text!r}")
        if sep and not _SUBJECT.match(subject):
            raise ValueError(f"not a milestone key: {text!r}")
        if kind == "mentor_meeting" and not (subject.isdigit() and int(subject) >= 1):
            raise ValueError(f"not a milestone key: {text!r}")
        return super().__new__(cls, text)

    @classmethod
    def of(cls, kind: MilestoneKind, subject: str | int | None = None) -> MilestoneKey:
        """The key of a milestone of `kind` about `subject` (None for the approval)."""
        return cls(kind if subject is None else f"{kind}:{subject}")

    @classmethod
    def approval(cls) -> MilestoneKey:
        """The nomination's approval."""
        return cls("approval")

    @classmethod
    def session(cls, session_key: str) -> MilestoneKey:
        """Attendance at a mandatory session."""
        return cls.of("session", session_key)

    @classmethod
    def track(cls, track_key: str) -> MilestoneKey:
        """A practice track done."""
        return cls.of("track", track_key)

    @classmethod
    def mentor_meeting(cls, number: int) -> MilestoneKey:
        """The `number`-th mentor meeting held."""
        return cls.of("mentor_meeting", number)

    @property
    def kind(self) -> MilestoneKind:
        """What kind of milestone this is."""
        kind = self.partition(":")[0]
        assert kind in _KINDS
        return kind  # type: ignore[return-value]

    @property
    def subject(self) -> str:
        """The session or track key, or the meeting's number; empty for the approval."""
        return self.partition(":")[2]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(), serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


AtRiskKind = Literal["escalated", "attendance_below_minimum"]


class AtRiskReason(BaseModel):
    """Why a journey is at risk: a milestone's ladder reached its last rung (`escalated`), or the
    attendance criterion can no longer be met. Stored as text: `escalated:<milestone>`,
    `attendance_below_minimum`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AtRiskKind
    milestone: MilestoneKey | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            kind, sep, milestone = data.partition(":")
            return {"kind": kind, "milestone": milestone} if sep else {"kind": kind}
        return data

    @model_validator(mode="after")
    def _milestone_iff_escalated(self) -> AtRiskReason:
        if (self.kind == "escalated") != (self.milestone is not None):
            raise ValueError("an escalated reason names its milestone, and only it does")
        return self

    @classmethod
    def escalated(cls, milestone: str) -> AtRiskReason:
        """A milestone's ladder reached its last rung and is not resolved."""
        return cls(kind="escalated", milestone=MilestoneKey(milestone))

    @classmethod
    def attendance_below_minimum(cls) -> AtRiskReason:
        """Attended plus unrecorded mandatory sessions fall short of the required number."""
        return cls(kind="attendance_below_minimum")

    @classmethod
    def parse(cls, text: str) -> AtRiskReason:
        """The reason stored as `text`; ValueError (pydantic's) if it is not one."""
        return cls.model_validate(text)

    @property
    def text(self) -> str:
        """The reason as stored in status JSON."""
        return self.kind if self.milestone is None else f"{self.kind}:{self.milestone}"

    def __str__(self) -> str:
        return self.text

    @model_serializer(mode="plain")
    def _as_text(self) -> str:
        return self.text
