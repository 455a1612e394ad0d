"""Open escalations across journeys, for coordinators."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import Caller, Deps, require

router = APIRouter(prefix="/v1/escalations", tags=["escalations"])


@router.get("")
async def list_escalations(
    resources: Deps,
    caller: Caller,
    state: Literal["open", "acknowledged"] = "open",
    cohort_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    """Raised rungs not yet resolved (`acknowledged`: only those a coordinator has in hand), oldest
    first, from a page of at most `limit` journeys (`after` = the previous page's `next`)."""
    require(caller, "coordinator")
    rows = await resources.pool.fetch(
        "SELECT journey_id, cohort_id, status->'escalations' AS escalations FROM journey_status "
        "WHERE open_escalations > 0 AND ($1::text IS NULL OR cohort_id = $1) AND ($2::text IS NULL OR journey_id > $2) "
        "ORDER BY journey_id LIMIT $3",
        cohort_id,
        after,
        limit,
    )
    # Status stored before acknowledging existed has no acknowledged_* keys: they default to null.
    items = [
        {
            "journey_id": r["journey_id"],
            "cohort_id": r["cohort_id"],
            "acknowledged_at": None,
            "acknowledged_by": None,
            **x,
        }
        for r in rows
        for x in json.loads(r["escalations"])
        if x["resolved_at"] is None
    ]
    if state == "acknowledged":
        items = [x for x in items if x["acknowledged_at"] is not None]
    items.sort(key=lambda x: x["raised_at"])
    return {"items": items, "next": rows[-1]["journey_id"] if len(rows) == limit else None}
