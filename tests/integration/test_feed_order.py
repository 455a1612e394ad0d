"""The HR feed under concurrent writers: every event exactly once, in stream order, across restarts from a cursor."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from api.problems import Problem
from api.routers.feed import FeedEvent, feed_page
from domain.events import stream_id_for
from store.eventstore import EventStore
from tests.integration.test_eventstore import META, _journey

#: How long (real time) a reader waits for the server-wide watermark to pass the last commit.
PATIENCE = 30.0


async def _drained(store: EventStore) -> str:
    """The cursor after everything readable now: where a new HR system's checkpoint would start."""
    cursor = "0"
    while True:
        page = await feed_page(store, cursor, 1000)
        cursor = page.next
        if len(page.items) < 1000:
            return cursor


async def test_a_reader_paging_with_small_limits_and_restarting_from_saved_cursors_sees_every_event_once(
    pool: asyncpg.Pool, unique: str
) -> None:
    journeys = {f"{unique}-{i}": _journey(f"{unique}-{i}") for i in range(12)}
    streams = {stream_id_for(k) for k in journeys}
    expected_count = sum(j.s.version for j, _ in journeys.values())
    saved = await _drained(EventStore(pool))
    writers_done = asyncio.Event()
    handled: list[FeedEvent] = []
    restarts = 0

    async def write(journey_id: str) -> None:
        store = EventStore(pool)
        _, batches = journeys[journey_id]
        version = 0
        for batch in batches:
            version = (await store.append(stream_id_for(journey_id), version, batch, metadata=META)).last_version
            await asyncio.sleep(0)

    def mine() -> list[FeedEvent]:
        return [ev for ev in handled if f"journey-{ev.journey_id}" in streams]

    async def read() -> None:
        nonlocal saved, restarts
        deadline = asyncio.get_running_loop().time() + PATIENCE
        store = EventStore(pool)  # the HR system's process; replaced on every "outage"
        pages = 0
        while not (writers_done.is_set() and len(mine()) >= expected_count):
            assert asyncio.get_running_loop().time() < deadline, f"{len(mine())} of {expected_count} events read"
            page = await feed_page(store, saved, 5)
            pages += 1
            if not page.items:
                assert page.next == saved, "an empty page hands the checkpoint back unchanged"
                await asyncio.sleep(0.005)
                continue
            if pages % 4 == 0 and len(page.items) > 2:
                # An outage mid-page: two events handled and checkpointed, the rest of the page lost.
                handled.extend(page.items[:2])
                saved = page.items[1].cursor
                store = EventStore(pool)
                restarts += 1
                continue
            handled.extend(page.items)
            saved = page.next

    reader = asyncio.create_task(read())
    await asyncio.gather(*(write(k) for k in journeys))
    writers_done.set()
    await reader

    seen = [(f"journey-{ev.journey_id}", ev.stream_version) for ev in mine()]
    assert len(seen) == len(set(seen)), "an event was handed out twice"
    assert set(seen) == {(stream_id_for(k), v) for k, (j, _) in journeys.items() for v in range(1, j.s.version + 1)}
    for stream in streams:
        versions = [v for s, v in seen if s == stream]
        assert versions == sorted(versions), f"{stream} out of version order: {versions}"
    assert restarts > 0, "the reader restarted from a saved cursor at least once"
    assert all(ev.cursor == str(ev.global_position) for ev in handled)


async def test_a_late_commit_is_handed_out_after_the_checkpoint_that_passed_over_its_position(
    pool: asyncpg.Pool, unique: str
) -> None:
    store = EventStore(pool)
    _, early = _journey(f"{unique}-a")
    _, late = _journey(f"{unique}-b")
    ours = {f"{unique}-a", f"{unique}-b"}
    checkpoint = await _drained(store)

    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        # A takes the lower positions but commits after B.
        a = await store.append(stream_id_for(f"{unique}-a"), 0, early[0], metadata=META, conn=slow)
        b = await store.append(stream_id_for(f"{unique}-b"), 0, late[0], metadata=META)
        while_open = await feed_page(store, checkpoint, 1000)
        assert [ev for ev in while_open.items if ev.journey_id in ours] == []
        # The reader moves its checkpoint over whatever else it read meanwhile.
        checkpoint = while_open.next
        await tx.commit()

    got: list[FeedEvent] = []
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while len(got) < len(a.positions) + len(b.positions):
        assert asyncio.get_running_loop().time() < deadline, got
        page = await feed_page(store, checkpoint, 1000)
        got += [ev for ev in page.items if ev.journey_id in ours]
        checkpoint = page.next
        await asyncio.sleep(0.02)
    assert [ev.global_position for ev in got] == [*a.positions, *b.positions]


async def test_a_cursor_that_names_no_event_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(Problem) as refused:
        await feed_page(EventStore(pool), str(10**17), 10)
    assert (refused.value.status, refused.value.code) == (422, "invalid_cursor")
