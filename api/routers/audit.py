"""The access log (PRODUCT §8.7): who read or changed whose data, for coordinators and the HR system."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.access import touched
from api.deps import Caller, Deps, require
from store.access_log import AccessLog, AccessPage

router = APIRouter(tags=["audit"])

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


@router.get(
    "/v1/audit",
    response_model=AccessPage,
    summary="The access log: who read or changed a person's or a journey's data",
)
async def read_audit(
    resources: Deps,
    caller: Caller,
    person_id: Annotated[
        str | None,
        Query(pattern=_ID, description="Rows naming this person, or one of the journeys they are the talent of."),
    ] = None,
    journey_id: Annotated[str | None, Query(pattern=_ID, description="Rows naming this journey.")] = None,
    actor: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,119}$",
            description="A stable actor id: `file:<id>`, `jwt:<hash>`, `cli:<user>`, `calendar:<person id>`.",
        ),
    ] = None,
    after: Annotated[
        AwareDatetime | None, Query(description="Rows at or after this instant (with its offset).")
    ] = None,
    before: Annotated[AwareDatetime | None, Query(description="Rows before this instant (with its offset).")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="The previous page's `next`.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AccessPage:
    """Every read or write of a journey's or a person's data through the API, the dashboard, the HR
    feed, the calendar feeds and the CLI, newest first, filtered: who (`actor_id`, `role`), through
    what (`channel`, `action`: the route or CLI verb), whose data (`journey_ids`, `person_ids`: a
    journey's talent and nearest leader are named with it), the correlation id (a caller's own
    `X-Correlation-Id` only as its hash, as the API keeps it) and the `outcome` (the HTTP status,
    or `ok` / `refused` for the CLI). Ids only, never personal data.

    "Who read p-17's journey last month": `?person_id=p-17&after=...&before=...`. Coordinators and
    the HR system; reading the log is itself logged.
    """
    require(caller, "coordinator", "hr_system")
    touched(journeys=[journey_id], people=[person_id])
    return await AccessLog(resources.pool).query(
        person_id=person_id,
        journey_id=journey_id,
        actor=actor,
        after=after,
        before=before,
        cursor=int(cursor) if cursor is not None else None,
        limit=limit,
    )
