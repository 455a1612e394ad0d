"""The HR feed's page as JSON text, passing the stored rows on (issue 15).

A page of the feed (api/routers/feed.py, `FeedPage`) is the event store's global order
(`EventStore.read_all_rows`) with each event as the HR system sees it. Decoding every event into a
model and encoding it again cost more than reading it (22,000 events/s against a raw scan's
280,000 at 100,000 journeys), so each item's JSON is written around the stored `data` and
`metadata` text as they are, by PostgreSQL in the page's query (`FEED_COLUMNS`: in Python the
strings cost three times the query). Only a nomination goes through `domain.events.public_event_data` (its
definitions reduced to ids, HR's reference read from the vault), and metadata stored without every
field of `EventMetadata` through the model: the page is the same JSON as the typed `FeedPage`
(tests/integration/test_kpi_projection.py compares them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import EventMetadata, public_event_data
from store.eventstore import EventStore, journey_id_of
from store.vault import PeopleVault

_METADATA_FIELDS = tuple(EventMetadata.model_fields)


def _instant_sql(column: str) -> str:
    """SQL for `_instant(column)`: ISO 8601 in UTC with `Z`, microseconds only when there are any."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') """
        f"|| CASE WHEN date_trunc('second', {column}) = {column} THEN '' ELSE to_char({utc}, '.US') END || 'Z'"
    )


# Which rows PostgreSQL writes the item of: a journey event other than a nomination whose stored
# metadata has every field of EventMetadata (then both are passed on as stored). The rest come
# with their columns, for `_item`.
_PASSED = (
    "(event_type <> 'TalentNominated' AND stream_id LIKE 'journey-%' AND metadata ?& ARRAY["
    + ", ".join(f"'{name}'" for name in _METADATA_FIELDS)
    + "])"
)
# The data of an item left to Python: a nomination's bulky programme and cohort definitions cut to
# the fields `public_event_data` reads of them (it keeps the rule; this only spares sending and
# parsing what it drops), any other event's as stored.
_DATA_FOR_PYTHON = """(CASE WHEN event_type = 'TalentNominated'
     THEN data - 'programme' - 'cohort' || jsonb_build_object(
        'programme', jsonb_build_object('id', data->'programme'->'id', 'version', data->'programme'->'version'),
        'cohort', jsonb_build_object('cohort_id', data->'cohort'->'cohort_id'))
     ELSE data END)::text"""
#: The columns the feed reads: each item PostgreSQL can write as JSON text (`item`, the same text
#: `_item` would write), and for the others the stored data and metadata as JSON text. Writing the
#: items in PostgreSQL costs it little; in Python it was three quarters of a page's time.
FEED_COLUMNS = f"""global_position, stream_id, event_id, event_type,
    CASE WHEN {_PASSED} THEN
        '{{"cursor":"' || global_position || '","global_position":' || global_position
        || ',"event_id":"' || event_id || '","journey_id":' || to_json(substr(stream_id, 9))::text
        || ',"stream_version":' || stream_version || ',"event_type":' || to_json(event_type)::text
        || ',"schema_version":' || schema_version
        || ',"occurred_at":"' || {_instant_sql("occurred_at")} || '","recorded_at":"' || {_instant_sql("recorded_at")}
        || '","data":' || data::text || ',"metadata":' || metadata::text || '}}'
    END AS item,
    CASE WHEN NOT {_PASSED} THEN {_DATA_FOR_PYTHON} END AS data,
    CASE WHEN NOT {_PASSED} THEN metadata::text END AS metadata,
    stream_version, schema_version, occurred_at, recorded_at"""


def _complete(metadata: str) -> bool:
    """Whether stored metadata has every field of the model (as `metadata ?& ...` in FEED_COLUMNS)."""
    return all(f'"{name}":' in metadata for name in _METADATA_FIELDS)


@dataclass(frozen=True)
class FeedPageJson:
    """A page of the HR feed as JSON text (`FeedPage`'s shape), and what the API logs of it."""

    text: str
    count: int
    #: The cursor to resume after (the last item's, or the one given).
    next: str
    #: The page's journeys, in order (for the access log).
    journeys: list[str]


def _instant(value: datetime) -> str:
    text = value.isoformat()
    return f"{text[:-6]}Z" if text.endswith("+00:00") else text


async def page_json(store: EventStore, after: int, limit: int, *, vault: PeopleVault | None = None) -> FeedPageJson:
    """The events after position `after` that are readable now, in commit order, as a feed page.

    Raises `store.eventstore.UnknownPosition` for a position that names no event.
    """
    rows = await store.read_all_rows(after, limit=limit, columns=FEED_COLUMNS)
    nominations = {r["event_id"]: json.loads(r["data"]) for r in rows if r["event_type"] == "TalentNominated"}
    refs = [ref for d in nominations.values() if (ref := d.get("external_ref_ref"))]
    texts = await vault.read_texts(refs) if vault is not None and refs else {}
    items: list[str] = []
    journeys: list[str] = []
    for r in rows:
        journey_id = journey_id_of(r["stream_id"])
        journeys.append(journey_id)
        item = r["item"]
        items.append(item if item is not None else _item(r, journey_id, nominations.get(r["event_id"]), texts))
    following = str(rows[-1]["global_position"]) if rows else str(after)
    return FeedPageJson(
        text=f'{{"items":[{",".join(items)}],"next":"{following}"}}',
        count=len(items),
        next=following,
        journeys=journeys,
    )


def _item(r: asyncpg.Record, journey_id: str, nominated: dict[str, Any] | None, texts: dict[str, str]) -> str:
    """An item PostgreSQL left to us: a nomination, or metadata stored without every field."""
    if nominated is None:
        data: Any = json.loads(r["data"])  # metadata stored without every field
    else:
        ref = texts.get(nominated.get("external_ref_ref") or "")
        data = public_event_data(r["event_type"], nominated, external_ref=ref)
    metadata = r["metadata"]
    if not _complete(metadata):
        metadata = EventMetadata.model_validate_json(metadata).model_dump_json()
    position = r["global_position"]
    return json.dumps(
        {
            "cursor": str(position),
            "global_position": position,
            "event_id": str(r["event_id"]),
            "journey_id": journey_id,
            "stream_version": r["stream_version"],
            "event_type": r["event_type"],
            "schema_version": r["schema_version"],
            "occurred_at": _instant(r["occurred_at"]),
            "recorded_at": _instant(r["recorded_at"]),
            "data": data,
            "metadata": json.loads(metadata),
        }
    )
