"""Open escalations across journeys: for coordinators, and for a leader's leader those that reached them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.access import touched
from api.deps import Caller, Deps, require
from store.views import escalations as escalations_view

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
    page = await escalations_view.open_rungs(
        resources.pool,
        cohort_id=cohort_id,
        reached=caller.person_id if caller.role == "leader" else None,
        acknowledged_only=state == "acknowledged",
        after=after,
        limit=limit,
    )
    touched(journeys=[x.journey_id for x in page.items])
    return page.model_dump(mode="json")
