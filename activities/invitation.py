"""The iCalendar invitation (RFC 5545/5546, METHOD:REQUEST) attached to a proposed mentor meeting's
e-mail (rules 4, issue 14).

Its UID is the one the person's calendar feed gives the same appointment
(`<journey_id>.mentor_meeting_appointment.<n>@talent-journey`, see api/ical.py) and its SEQUENCE
the proposal's count less one, so a moved meeting updates the entry a calendar already has,
whether it came by the feed or by this e-mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from icalendar import CLASS, STATUS, Calendar, Event

from domain.programme import Programme
from domain.values import Language

PRODID = "-//talent-journey//mentor meeting//EN"
UID_DOMAIN = "talent-journey"

_SUMMARY: dict[Language, str] = {"da": "Mentormøde {n}", "en": "Mentor meeting {n}"}


def appointment_uid(journey_id: str, number: int) -> str:
    """The appointment's UID, as the calendar feed gives it."""
    return f"{journey_id}.mentor_meeting_appointment.{number}@{UID_DOMAIN}"


def invitation(
    journey_id: str,
    data: Mapping[str, Any],
    occurred_at: datetime,
    programme: Programme | None,
    language: Language,
) -> bytes:
    """The invitation of a `MentorMeetingProposed` event's stored data, as iCalendar bytes."""
    number = int(data["number"])
    start = datetime.fromisoformat(str(data["due_at"]))
    end = datetime.fromisoformat(str(data["ends_at"]))
    calendar = Calendar()
    calendar.prodid = PRODID
    calendar.version = "2.0"
    calendar.add("METHOD", "REQUEST")
    zone = programme.working_calendar.tz if programme is not None else UTC
    stamp = occurred_at.astimezone(UTC)
    event = Event.new(
        uid=appointment_uid(journey_id, number),
        sequence=int(data.get("proposal", 1)) - 1,
        stamp=stamp,
        created=stamp,
        last_modified=stamp,
        start=start.astimezone(zone),
        end=end.astimezone(zone),
        summary=_SUMMARY[language].format(n=number),
        description=programme.title if programme is not None else None,
        status=STATUS.CONFIRMED,
        classification=CLASS.PRIVATE,
    )
    calendar.add_component(event)
    if programme is not None:
        calendar.add_missing_timezones(first_date=date(start.year - 1, 1, 1), last_date=date(end.year + 2, 1, 1))
    text: bytes = calendar.to_ical()
    return text
