"""What the read-model modules share: the pool type, frozen rows, the scope rule and a tolerant parse."""

from __future__ import annotations

from typing import Protocol, TypeAlias

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from domain.status import JourneyStatus

log = structlog.get_logger("talent.views")

# A string: asyncpg's Pool is generic only in its stubs.
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"

#: At most this many rows in a list a page shows; the page says when there are more.
PAGE = 200

#: Object-level scoping (§8.1), as a condition on `journey_status s` ($1 role, $2 person id):
#: coordinators and HR systems see every journey; a leader sees those they lead now, and
#: read-only those where they are the leader's leader now (a former leader's sight ends with the
#: leader change); a talent sees their own. The one rule for the API, the dashboard and feeds.
SCOPE = """($1 IN ('coordinator', 'hr_system')
   OR ($1 = 'leader' AND (s.nearest_leader_id = $2 OR s.leaders_leader_id = $2))
   OR ($1 = 'talent' AND s.talent_id = $2))"""


def scope_for(reader: Reader, first: int = 1) -> tuple[str, list[object]]:
    """`SCOPE` for one reader, as a condition on `journey_status s` and its arguments from `$first`.

    The same rule written for the reader's role, so list queries plan on the indexes of the
    columns that role is scoped by (a leader's journeys by leader, not by probing every row).
    """
    if reader.role in ("coordinator", "hr_system"):
        return "TRUE", []
    if reader.role == "leader" and reader.person_id is not None:
        return f"(s.nearest_leader_id = ${first} OR s.leaders_leader_id = ${first})", [reader.person_id]
    if reader.role == "talent" and reader.person_id is not None:
        return f"s.talent_id = ${first}", [reader.person_id]
    return "FALSE", []


#: Whether the caller, who may see the journey (`SCOPE`), may also act on it: everyone in scope
#: except a leader who sees it only as the leader's leader.
MAY_ACT = "($1 <> 'leader' OR s.nearest_leader_id = $2)"


class Reader(Protocol):
    """Who reads: a role and, for leaders and talents, their person id (an API principal fits)."""

    @property
    def role(self) -> str: ...  # pragma: no cover - a protocol

    @property
    def person_id(self) -> str | None: ...  # pragma: no cover - a protocol


class Row(BaseModel):
    """A small typed row of the read model."""

    model_config = ConfigDict(frozen=True, extra="forbid")


#: The columns `parse` reads: the status document and the column the oldest documents lack.
STATUS_COLUMNS = "s.journey_id, s.status::text AS status, s.leaders_leader_id"


def parse(row: asyncpg.Record) -> JourneyStatus | None:
    """A row's status document as the typed view; an unreadable one degrades to None (§8.3), logged."""
    try:
        found = JourneyStatus.model_validate_json(row["status"])
    except ValidationError as exc:
        log.error("read_model_row_unreadable", journey_id=row["journey_id"], errors=exc.error_count())
        return None
    if found.leaders_leader_id is None and row["leaders_leader_id"] is not None:
        # Stored before the document carried it: the column has it.
        found = found.model_copy(update={"leaders_leader_id": row["leaders_leader_id"]})
    return found


def parse_all(rows: list[asyncpg.Record]) -> list[JourneyStatus]:
    """The readable rows' statuses, in order (an unreadable row is left out, logged)."""
    return [s for s in (parse(r) for r in rows) if s is not None]
