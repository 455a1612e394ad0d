"""The HR event feed: journey events in commit order from the HR system's own checkpoint, and webhook delivery state.

Cursors. The feed's order is the event store's gap-free global order, (transaction id, position)
below the reader's snapshot xmin (activities/store/eventstore.py). An event's position determines
its transaction id, so the position of the last event a reader has handled is a complete
checkpoint: `read_all(after=position)` resumes right after that event in this order, and no event
can still commit before it (its transaction was below the xmin when it was handed out). The
cursor is therefore the position in decimal, as a string: every item carries its own `cursor`,
and `next` is the last item's (or the `after` given, when nothing new is readable yet). A client
that stores any item's cursor, crashes, and resumes from it gets exactly the events after that
item, none skipped, none repeated; it should treat the cursor as opaque.

The delivery listing is a view of mutable state, not a log: it pages the webhook outbox rows in
the order of the events that caused them, with a cursor of that event's position and the row's id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.access import touched
from api.deps import Caller, Deps, require
from api.problems import Problem
from domain.events import EventMetadata, RecordedEvent, public_event_data
from store.eventstore import EventStore, UnknownPosition, journey_id_of
from store.vault import PeopleVault
from store.views import feed as feed_view

router = APIRouter(tags=["feed"])

FEED_CURSOR = r"^[0-9]{1,18}$"
DELIVERY_CURSOR = r"^[0-9]{1,18}-[0-9a-fA-F-]{32,36}$"
DeliveryStatus = Literal["pending", "delivered", "skipped", "dead"]
_DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "delivered", "skipped", "dead")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedEvent(_Out):
    """A journey event as the HR system sees it: ids and facts, never personal data."""

    cursor: str = Field(description="Resume after this event: pass it as `after`.")
    global_position: int = Field(description="The event's position in the store (its cursor, as a number).")
    event_id: UUID
    journey_id: str
    stream_version: int = Field(description="The event's version in its journey's stream, 1, 2, ...")
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    data: dict[str, Any] = Field(
        description="The event's data: person ids and references into the people vault (`*_ref`), never names, "
        "e-mail addresses or free text. A TalentNominated carries `programme_id`, `programme_version` and "
        "`cohort_id` instead of the whole programme and cohort definitions."
    )
    metadata: EventMetadata


class FeedPage(_Out):
    """A page of the feed."""

    items: list[FeedEvent] = Field(description="At most `limit` events in commit order; fewer: you are up to date.")
    next: str = Field(description="The cursor to pass as `after` next time (the last item's, or `after` itself).")


class Delivery(_Out):
    """A webhook notification to the HR system and where its delivery stands."""

    notification_id: UUID = Field(description="Sent as the webhook's Idempotency-Key.")
    journey_id: str
    event_id: UUID
    global_position: int = Field(description="The position of the event that caused it, as in the feed.")
    event_type: str
    status: DeliveryStatus = Field(
        description="pending (to be tried, or retrying), delivered, skipped (no webhook configured) or dead "
        "(failed for good: dead-lettered)."
    )
    attempts: int
    last_error: str | None
    created_at: AwareDatetime
    next_attempt_at: AwareDatetime | None = Field(description="When a pending delivery is due; null otherwise.")
    delivered_at: AwareDatetime | None


class DeliveryPage(_Out):
    """A page of webhook deliveries, in the order of the events that caused them."""

    items: list[Delivery]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


def _feed_event(ev: RecordedEvent, external_ref: str | None = None) -> FeedEvent:
    return FeedEvent(
        cursor=str(ev.global_position),
        global_position=ev.global_position,
        event_id=ev.event_id,
        journey_id=journey_id_of(ev.stream_id),
        stream_version=ev.stream_version,
        event_type=ev.event_type,
        schema_version=ev.schema_version,
        occurred_at=ev.occurred_at,
        recorded_at=ev.recorded_at,
        data=public_event_data(ev.event_type, ev.data, external_ref=external_ref),
        metadata=ev.metadata,
    )


def _bad_cursor(detail: str) -> Problem:
    return Problem(422, "Invalid cursor", detail, code="invalid_cursor")


async def feed_page(
    store: EventStore, after: str = "0", limit: int = 100, *, vault: PeopleVault | None = None
) -> FeedPage:
    """The events after cursor `after` ("0": from the beginning) that are readable now, in commit
    order; with the `vault`, nominations carry HR's own reference."""
    try:
        events = await store.read_all(int(after), limit=limit)
    except UnknownPosition as exc:
        raise _bad_cursor("the cursor names no event of this feed") from exc
    refs = {ev.event_id: ev.data.get("external_ref_ref") for ev in events if ev.event_type == "TalentNominated"}
    texts = await vault.read_texts([r for r in refs.values() if r]) if vault is not None else {}
    items = [_feed_event(ev, texts.get(refs.get(ev.event_id) or "")) for ev in events]
    return FeedPage(items=items, next=items[-1].cursor if items else str(int(after)))


async def feed_page_json(
    store: EventStore, after: str = "0", limit: int = 100, *, vault: PeopleVault | None = None
) -> feed_view.FeedPageJson:
    """`feed_page` as JSON text built by PostgreSQL from the stored rows (`store.views.feed`), for speed."""
    try:
        return await feed_view.page_json(store, int(after), limit, vault=vault)
    except UnknownPosition as exc:
        raise _bad_cursor("the cursor names no event of this feed") from exc


@router.get("/v1/feed", response_model=FeedPage)
async def read_feed(
    resources: Deps,
    caller: Caller,
    after: Annotated[
        str, Query(pattern=FEED_CURSOR, description="A cursor from an earlier page; 0 = from the beginning.")
    ] = "0",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Journey events for an HR system, in commit order, from its own checkpoint.

    An event that commits late is never skipped: the feed only hands out events below the oldest
    transaction still in flight, so a page can lag a moment behind the newest writes. Store the
    cursor of the last event you have handled; after any outage resume with `after=<cursor>`.
    """
    require(caller, "hr_system")
    page = await feed_page_json(resources.store, after, limit, vault=resources.vault)
    touched(journeys=page.journeys)
    return Response(page.text, media_type="application/json")


def _parse_delivery_cursor(cursor: str) -> tuple[int, UUID]:
    position, _, notification = cursor.partition("-")
    try:
        return int(position), UUID(notification)
    except ValueError as exc:
        raise _bad_cursor("not a cursor of this listing") from exc


# In the order of the events that caused them (an append's events share one created_at). Every
# outbox row's event is stored in the same transaction, so the join always finds it.
_DELIVERIES = """
SELECT o.notification_id, o.journey_id, o.event_id, ev.global_position, o.template, o.status, o.attempts,
       o.last_error, o.created_at, o.next_attempt_at, o.delivered_at
  FROM outbox o JOIN events ev ON ev.event_id = o.event_id
 WHERE o.channel = 'webhook' AND o.status = ANY($1::text[]) AND ($2::text IS NULL OR o.journey_id = $2)
   AND (ev.global_position, o.notification_id) > ($3::bigint, $4::uuid)
 ORDER BY ev.global_position, o.notification_id
 LIMIT $5"""
_START = (0, UUID(int=0))


@router.get("/v1/feed/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    resources: Deps,
    caller: Caller,
    status: DeliveryStatus | None = None,
    journey_id: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[str | None, Query(pattern=DELIVERY_CURSOR, description="The previous page's `next`.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryPage:
    """The webhook notifications to the HR system and their delivery state, in the order of their events.

    Filter by `status` (e.g. `dead` for what was dead-lettered) or by journey.
    """
    require(caller, "hr_system")
    position_after, id_after = _parse_delivery_cursor(after) if after is not None else _START
    rows = await resources.pool.fetch(
        _DELIVERIES,
        [status] if status is not None else list(_DELIVERY_STATUSES),
        journey_id,
        position_after,
        id_after,
        limit,
    )
    items = [
        Delivery(
            notification_id=r["notification_id"],
            journey_id=r["journey_id"],
            event_id=r["event_id"],
            global_position=r["global_position"],
            event_type=r["template"],
            status=r["status"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            created_at=r["created_at"],
            next_attempt_at=r["next_attempt_at"] if r["status"] == "pending" else None,
            delivered_at=r["delivered_at"],
        )
        for r in rows
    ]
    touched(journeys=[d.journey_id for d in items])
    last = items[-1] if len(items) == limit else None
    return DeliveryPage(items=items, next=f"{last.global_position}-{last.notification_id}" if last else None)
