"""How moments and pages read for people, the same in the dashboard and the e-mails: dates as
Danes (or the English) write them, with Babel's CLDR data, and links to the dashboard's pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from domain.programme import Programme
from domain.values import Language

CPH = ZoneInfo("Europe/Copenhagen")

#: `long` in a sentence ("onsdag den 10. februar kl. 16.00"), `short` in a table
#: ("10. feb. 2027 16.00"), `seconds` where the second matters (a timeline).
Style = Literal["long", "short", "seconds"]

_PATTERNS: dict[tuple[Language, Style], str] = {
    ("da", "long"): "EEEE 'den' d. MMMM 'kl.' HH.mm",
    ("en", "long"): "EEEE d MMMM 'at' HH:mm",
    ("da", "short"): "d. MMM y HH.mm",
    ("en", "short"): "d MMM y HH:mm",
    ("da", "seconds"): "d. MMM y HH.mm.ss",
    ("en", "seconds"): "d MMM y HH:mm:ss",
}


def parse_time(value: object) -> datetime | None:
    """A timestamp from a status document or an event's data (ISO 8601 text), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def zone_of(programme: Programme | None) -> ZoneInfo:
    """The programme's time zone (Copenhagen unless it says otherwise)."""
    if programme is None:
        return CPH
    try:
        return ZoneInfo(programme.timezone)
    except (KeyError, ValueError):
        return CPH


def when(moment: datetime | str | None, language: Language, zone: ZoneInfo = CPH, style: Style = "long") -> str:
    """A moment in local time as people write it; "—" for none."""
    parsed = parse_time(moment)
    if parsed is None:
        return "—"
    return format_datetime(parsed.astimezone(zone), _PATTERNS[(language, style)], locale=language)


#: The dashboard's pages an e-mail links to (api/dashboard/pages.py serves them): a journey's page
#: holds the forms of what waits on it (decide, roll call, reflection, sign-off, meeting, ...).
JOURNEY_PAGE = "/dashboard/journeys/{journey_id}"
LEADER_PAGE = "/dashboard/leader"
NOMINATE_PAGE = "/dashboard/nominate"
ESCALATIONS_PAGE = "/dashboard/escalations"

Page = Literal["journey", "leader", "nominate", "escalations"]
_PAGES: dict[Page, str] = {"leader": LEADER_PAGE, "nominate": NOMINATE_PAGE, "escalations": ESCALATIONS_PAGE}


@dataclass(frozen=True)
class Links:
    """Absolute links to the dashboard at TALENT_PUBLIC_URL."""

    public_url: str

    def journey(self, journey_id: str) -> str:
        """A journey's page: its plan and the forms of what waits on it."""
        return self._absolute(JOURNEY_PAGE.format(journey_id=quote(journey_id, safe="")))

    def page(self, page: Page, journey_id: str) -> str:
        """The page `page` names; a journey's when it is `journey`."""
        if page == "journey":
            return self.journey(journey_id)
        return self._absolute(_PAGES[page])

    def _absolute(self, path: str) -> str:
        return self.public_url.rstrip("/") + path
