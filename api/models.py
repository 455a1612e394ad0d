"""Request bodies of the API: strict (unknown fields refused), bounded, named in every error."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from domain import programme

#: The domain's own key: a session or track key the API takes, the command takes too.
Key = programme.Key
#: A milestone key as the domain writes it: `approval`, `session:<key>`, `track:<key>`, `mentor_meeting:<n>`.
MilestoneKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}(:[a-z0-9][a-z0-9_-]{0,63})?$")]
PersonId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonIn(_In):
    """A person named in a request; their name and e-mail go to the vault, never to an event."""

    person_id: PersonId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
    workplace: Annotated[str, StringConstraints(max_length=200)] | None = None
    language: Literal["da", "en"] = "da"


class NominationIn(_In):
    """POST /v1/journeys."""

    cohort_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    # It goes into the first event: a NUL (which PostgreSQL cannot store) would stall the journey's workflow.
    external_ref: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = None
    motivation: Text
    talent: PersonIn
    nearest_leader: PersonIn
    leaders_leader: PersonIn | None = None


class DecisionIn(_In):
    """POST .../decision."""

    decision: Literal["approve", "reject"]
    reason: Text | None = None


class AttendanceIn(_In):
    """POST .../attendance."""

    session_key: Key
    status: Literal["attended", "absent", "excused"]


class SubmissionIn(_In):
    """POST .../tracks/{key}/submission."""

    reflection: Text


class SignoffIn(_In):
    """POST .../tracks/{key}/signoff."""

    decision: Literal["approve", "return"]
    comment: Text | None = None


class MeetingIn(_In):
    """POST .../mentor-meetings."""

    held_on: date
    notes: Text | None = None


class ReasonIn(_In):
    """POST .../pause and .../withdraw."""

    reason: Text


class ResumeIn(_In):
    """POST .../resume."""


class OutcomeIn(_In):
    """POST .../outcome."""

    applied_for_leader_post: bool
    appointed: bool
    on: date


class AcknowledgeIn(_In):
    """POST .../escalations/{milestone}/acknowledge."""

    note: Text | None = None


class ResolveIn(_In):
    """POST .../escalations/{milestone}/resolve."""

    reason: Text | None = None
