"""Open escalations across journeys: for coordinators, and for a leader's leader those that reached them."""

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
    first, from a page of at most `limit` journeys (`after` = the previous page's `next`).

    A coordinator sees all; a leader sees the rungs that reached them as a journey's current
    leader's leader (§8.1), read-only.
    """
    require(caller, "coordinator", "leader")
    reached = caller.person_id if caller.role == "leader" else None
    rows = await resources.pool.fetch(
        "SELECT journey_id, cohort_id, status->'escalations' AS escalations FROM journey_status "
        "WHERE open_escalations > 0 AND ($1::text IS NULL OR cohort_id = $1) AND ($2::text IS NULL OR journey_id > $2) "
        "AND ($4::text IS NULL OR leaders_leader_id = $4) ORDER BY journey_id LIMIT $3",
        cohort_id,
        after,
        limit,
        reached,
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
        if x["resolved_at"] is None and (reached is None or x["recipient_role"] == "leaders_leader")
    ]
    if state == "acknowledged":
        items = [x for x in items if x["acknowledged_at"] is not None]
    items.sort(key=lambda x: x["raised_at"])
    return {"items": items, "next": rows[-1]["journey_id"] if len(rows) == limit else None}
