"""Request bodies of the API: strict (unknown fields refused), bounded, named in every error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from email.errors import MessageError
from email.headerregistry import Address
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from domain import programme, values
from infra.auth import PERSON_ID_PATTERN

# -- the characters no value may carry ---------------------------------------------------------

#: Unicode category Cc: C0, DEL and C1. A line break in a name breaks a mail header; a NUL
#: cannot be stored by PostgreSQL.
_CONTROLS = r"\u0000-\u001f\u007f-\u009f"
#: Free texts keep their tabs and line breaks (CRLF from a browser's textarea too).
_TEXT_CONTROLS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
#: Bidi embeddings, overrides and isolates, and the invisible direction marks: they make a value
#: read differently from what it is ("Trojan Source", a spoofed name in a mail or a page).
_BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: Line and paragraph separators: not Cc, but `str.splitlines` (and so a mail header) breaks on them.
_SEPARATORS = r"\u2028\u2029"


@dataclass(frozen=True)
class _Refuse:
    """Refuse a string holding any of `chars` (a regex character-class body), with a message that
    says why and never echoes the value; the OpenAPI says the same as a `pattern`."""

    chars: str
    what: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        found = re.compile(f"[{self.chars}]").search

        def check(value: str) -> str:
            if found(value):
                raise ValueError(f"must not contain {self.what}")
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", f"^[^{self.chars}]*$")
        return json_schema


def is_plain(value: str) -> bool:
    """Whether `value` is one line of plain text (the rule of `_PLAIN`, for values outside a body)."""
    return _NOT_PLAIN.search(value) is None


_NOT_PLAIN = re.compile(f"[{_CONTROLS}{_BIDI}{_SEPARATORS}]")
#: One line of plain text: no control character, no bidi control, no line separator.
_PLAIN = _Refuse(_CONTROLS + _BIDI + _SEPARATORS, "control characters, line breaks or bidirectional controls")
#: Free text: tabs and line breaks allowed, other control characters and bidi controls not.
_FREE = _Refuse(_TEXT_CONTROLS + _BIDI, "control characters other than tabs and line breaks, or bidirectional controls")


def _addr_spec(value: str) -> str:
    """Exactly one `local@domain` as RFC 5322's addr-spec, dot-atom form, with a host name.

    Parsed with the standard library's header parser (`email.headerregistry`, the one the mailer
    builds its To: header with), so what passes here is what the mailer can address: no second
    address, display name, angle brackets, comment, quoted local part or domain literal.
    """
    if _EMAIL_REFUSED.search(value):
        raise ValueError("must be one address (local@domain): no spaces, commas, quotes, brackets or names")
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, MessageError):
        # The parser raises ValueError (defects included) for most bad input, IndexError for a
        # missing domain (`a@`) and HeaderParseError for some others.
        raise ValueError("must be one address (local@domain)") from None
    if address.addr_spec != value or len(address.username) > 64 or not _HOST.fullmatch(address.domain):
        raise ValueError("must be one address (local@domain) with a host name as its domain")
    return value


# Whitespace, the specials of RFC 5322 that can only appear in other forms than a dot-atom addr-spec
# (`"(),:;<>[\]`), and everything `_PLAIN` refuses.
_EMAIL_REFUSED = re.compile(rf"[\s\"(),:;<>\[\\\]{_CONTROLS}{_BIDI}{_SEPARATORS}]")
# A DNS host name of at least two labels; an internationalised domain in its `xn--` form.
_HOST = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}")

# -- the constrained types every body uses -------------------------------------------------------

#: The domain's own key: a session or track key the API takes, the command takes too.
Key = programme.Key
#: A milestone key as the domain writes it: `approval`, `session:<key>`, `track:<key>`, `mentor_meeting:<n>`.
MilestoneKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}(:[a-z0-9][a-z0-9_-]{0,63})?$")]
#: A person's id, as the HR system or the identity provider gives it.
PersonId = Annotated[str, StringConstraints(pattern=PERSON_ID_PATTERN), _PLAIN]
#: A cohort's id.
CohortId = Annotated[str, StringConstraints(min_length=1, max_length=64), _PLAIN]
#: A person's name: one line, any script.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), _PLAIN]
#: A workplace (a school, an institution): one line.
Workplace = Annotated[str, StringConstraints(max_length=200), _PLAIN]
#: An e-mail address: exactly one addr-spec (see `_addr_spec`).
Email = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_addr_spec)]
#: The HR system's own reference of a nomination.
ExternalRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
#: A free text (motivation, reflection, notes, a reason, a comment): line breaks and tabs allowed.
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000), _FREE]
#: The language a person's notifications are written in.
Language = values.Language


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonDetailsIn(_In):
    """A person's details: PUT /v1/people/{person_id} replaces them with these."""

    name: Name
    email: Email
    workplace: Workplace | None = None
    language: Language = "da"


class PersonIn(PersonDetailsIn):
    """A person named in a request; their name and e-mail go to the vault, never to an event."""

    person_id: PersonId


class NominationIn(_In):
    """POST /v1/journeys."""

    cohort_id: CohortId
    external_ref: ExternalRef | None = None
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


class ConfirmMeetingIn(_In):
    """POST .../mentor-meetings/{held_on}/confirm: `{}` (the meeting is the path's date)."""


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


# -- issue 12: leader change, completion override, cohort operations ------------------------------

#: A session's place: one line.
Place = Annotated[str, StringConstraints(max_length=200), _PLAIN]
#: A journey's id, as the API answers it.
JourneyId = Annotated[str, StringConstraints(min_length=1, max_length=64), _PLAIN]


class NearestLeaderIn(_In):
    """POST .../nearest-leader: the new nearest leader (and leader's leader, else the current one stays)."""

    nearest_leader: PersonIn
    leaders_leader: PersonIn | None = None


class CompletionOverrideIn(_In):
    """POST .../completion-override."""

    result: Literal["completed", "not_completed"]
    reason: Text


class RescheduleIn(_In):
    """POST /v1/cohorts/{id}/sessions/{key}/reschedule."""

    starts_at: AwareDatetime
    location: Place | None = None
    reason: Text


class RollCallLineIn(_In):
    """One journey's attendance in a roll call."""

    journey_id: JourneyId
    status: Literal["attended", "absent", "excused"]


class RollCallIn(_In):
    """POST /v1/cohorts/{id}/sessions/{key}/attendance: a session's roll call, one line per journey."""

    records: Annotated[list[RollCallLineIn], Field(min_length=1, max_length=1000)]


class CohortPatchIn(_In):
    """PATCH /v1/cohorts/{id}: only the fields given change (`coordinator_id: null` removes the coordinator)."""

    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    coordinator_id: PersonId | None = None
    locations: Annotated[dict[Key, Place], Field(max_length=100)] | None = None

    def changes(self) -> dict[str, Any]:
        """The cohort fields this edit changes (capacity, coordinator_id): only those given."""
        found: dict[str, Any] = {}
        if self.capacity is not None:
            found["capacity"] = self.capacity
        if "coordinator_id" in self.model_fields_set:
            found["coordinator_id"] = self.coordinator_id
        return found
