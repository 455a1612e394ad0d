"""Contract tests of the event store on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import asyncpg
import pytest

from domain import commands as c
from domain.events import EventMetadata, NewEvent, RecordedEvent, TalentNominated, stream_id_for
from domain.journey import next_wakeup
from domain.status import status_of
from store.eventstore import ConcurrencyError, EventStore, UnknownPosition
from tests.support import COORD, CPH, LEADER, SYSTEM, TALENT, Journey, nominate, reference_cohort, reference_programme

META = EventMetadata(actor="p-coord", correlation_id="corr-1")
T0 = datetime(2027, 1, 4, 10, 0, tzinfo=CPH)


def _journey(journey_id: str) -> tuple[Journey, list[list[NewEvent]]]:
    """A journey driven through nomination, approval, some work and a slip; its appends in order."""
    programme = reference_programme()
    cohort = reference_cohort(programme, cohort_id=f"c-{journey_id}")
    j = Journey()
    batches = [
        j.send_new(nominate(programme, cohort, journey_id=journey_id), T0),
        j.send_new(c.DecideNomination(**COORD, decision="approve"), T0 + timedelta(days=1)),
        j.send_new(
            c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), datetime(2027, 1, 11, 12, tzinfo=CPH)
        ),
        j.send_new(c.AdvanceClock(**SYSTEM), datetime(2027, 3, 20, 12, tzinfo=CPH)),
        j.send_new(c.SubmitTrack(**TALENT, track_key="observe-leader"), datetime(2027, 3, 22, 9, tzinfo=CPH)),
        j.send_new(
            c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"),
            datetime(2027, 3, 23, 9, tzinfo=CPH),
        ),
    ]
    return j, [b for b in batches if b]


async def _append_all(store: EventStore, stream: str, batches: list[list[NewEvent]]) -> int:
    version = 0
    for batch in batches:
        result = await store.append(stream, version, batch, metadata=META)
        version = result.last_version
    return version


async def test_an_append_stores_the_envelope_and_updates_the_status_read_model(pool: asyncpg.Pool, unique: str) -> None:
    store = EventStore(pool)
    j, batches = _journey(unique)
    stream = stream_id_for(unique)
    version = await _append_all(store, stream, batches)

    events = await store.read_stream(stream)
    assert [ev.stream_version for ev in events] == list(range(1, version + 1))
    assert [ev.event_type for ev in events] == j.types()
    assert [ev.event_id for ev in events] == [n.event_id for n in j.history]
    first = events[0]
    assert (
        first.metadata == META
        and first.schema_version == TalentNominated.model_fields["schema_version"].default
        and first.stream_id == stream
    )
    assert first.occurred_at == T0 and first.recorded_at is not None
    assert first.to_event() == j.history[0].event
    status = await store.status(unique)
    assert status == status_of(j.s)
    assert status is not None and status.state == "active" and status.progress.tracks_done == 1


async def test_a_retried_append_with_the_same_event_ids_writes_nothing_twice(pool: asyncpg.Pool, unique: str) -> None:
    store = EventStore(pool)
    _, batches = _journey(unique)
    stream = stream_id_for(unique)
    first = await store.append(stream, 0, batches[0], metadata=META)
    second_try = await store.append(stream, 1, batches[1], metadata=META)
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM events WHERE stream_id = $1) AS events, "
        "(SELECT count(*) FROM outbox WHERE journey_id = $2) AS outbox",
        stream,
        unique,
    )
    for retry_store in (store, EventStore(pool)):  # warm cache and cold cache
        again = await retry_store.append(stream, 1, batches[1], metadata=META)
        assert again.replayed and again.positions == second_try.positions and again.versions == second_try.versions
        again_first = await retry_store.append(stream, 0, batches[0], metadata=META)
        assert again_first.replayed and again_first.positions == first.positions
    after = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM events WHERE stream_id = $1) AS events, "
        "(SELECT count(*) FROM outbox WHERE journey_id = $2) AS outbox",
        stream,
        unique,
    )
    assert after == counts


async def test_a_different_event_at_a_taken_version_is_a_concurrency_error_and_writes_nothing(
    pool: asyncpg.Pool, unique: str
) -> None:
    store = EventStore(pool)
    _, batches = _journey(unique)
    _rival, rival_batches = _journey(unique)  # the same journey decided twice: other event ids
    stream = stream_id_for(unique)
    await store.append(stream, 0, batches[0], metadata=META)
    await store.append(stream, 1, batches[1], metadata=META)
    before = await pool.fetchval("SELECT status::text FROM journey_status WHERE journey_id = $1", unique)
    outbox = await pool.fetchval("SELECT count(*) FROM outbox WHERE journey_id = $1", unique)

    for retry_store in (store, EventStore(pool)):
        with pytest.raises(ConcurrencyError) as raised:
            await retry_store.append(stream, 1, rival_batches[1], metadata=META)
        assert raised.value.actual_version == 1 + len(batches[1])
    # An expected version the stream has not reached would leave a gap: refused too.
    with pytest.raises(ConcurrencyError):
        await EventStore(pool).append(stream, 10, batches[2], metadata=META)

    assert await pool.fetchval("SELECT status::text FROM journey_status WHERE journey_id = $1", unique) == before
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE journey_id = $1", unique) == outbox
    assert await pool.fetchval("SELECT max(stream_version) FROM events WHERE stream_id = $1", stream) == 1 + len(
        batches[1]
    )


async def test_two_concurrent_appends_at_the_same_version_let_exactly_one_win(pool: asyncpg.Pool, unique: str) -> None:
    _, batches = _journey(unique)
    _, rival = _journey(unique)
    stream = stream_id_for(unique)
    await EventStore(pool).append(stream, 0, batches[0], metadata=META)
    results = await asyncio.gather(
        EventStore(pool).append(stream, 1, batches[1], metadata=META),
        EventStore(pool).append(stream, 1, rival[1], metadata=META),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ConcurrencyError) for r in results) == 1
    versions = await pool.fetch("SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY 1", stream)
    assert [r["stream_version"] for r in versions] == list(range(1, 2 + len(batches[1])))


async def test_the_outbox_gets_the_notifications_of_the_events_in_the_same_append(
    pool: asyncpg.Pool, unique: str
) -> None:
    store = EventStore(pool)
    _, batches = _journey(unique)
    await store.append(stream_id_for(unique), 0, batches[0], metadata=META)
    rows = await pool.fetch(
        "SELECT channel, template, recipient_role, recipient_id, status FROM outbox WHERE journey_id = $1 ORDER BY 1",
        unique,
    )
    assert [(r["channel"], r["template"], r["recipient_role"], r["recipient_id"]) for r in rows] == [
        ("email", "nomination_received", "coordinator", "p-coord"),
        ("webhook", "TalentNominated", "hr_system", None),
    ]
    assert {r["status"] for r in rows} == {"pending"}


async def test_a_late_commit_is_never_skipped_by_a_reader_following_the_global_order(
    pool: asyncpg.Pool, unique: str
) -> None:
    store = EventStore(pool)
    _, early = _journey(f"{unique}-a")
    _, late = _journey(f"{unique}-b")
    ours = {stream_id_for(f"{unique}-a"), stream_id_for(f"{unique}-b")}
    checkpoint_events = await store.read_all(0, limit=1_000_000)
    checkpoint = checkpoint_events[-1].global_position if checkpoint_events else 0

    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        # A takes its positions first but commits last.
        a = await store.append(stream_id_for(f"{unique}-a"), 0, early[0], metadata=META, conn=slow)
        b = await store.append(stream_id_for(f"{unique}-b"), 0, late[0], metadata=META)
        assert a.positions[0] < b.positions[0]
        seen_while_open = [ev for ev in await store.read_all(checkpoint, limit=10_000) if ev.stream_id in ours]
        # A plain position cursor would hand out B now and skip A for ever once it commits.
        assert seen_while_open == []
        await tx.commit()
    # The watermark is the whole server's oldest transaction: other databases' work on a shared
    # server can hold it back a moment longer, so wait for it rather than read once.
    after: list[RecordedEvent] = []
    for _ in range(200):
        after = [ev for ev in await store.read_all(checkpoint, limit=10_000) if ev.stream_id in ours]
        if len(after) == len(a.positions) + len(b.positions):
            break
        await asyncio.sleep(0.05)
    assert [ev.global_position for ev in after] == [*a.positions, *b.positions]


async def test_sixteen_concurrent_writers_and_a_following_reader_see_every_event_once(
    pool: asyncpg.Pool, unique: str
) -> None:
    store = EventStore(pool)
    journeys = {f"{unique}-{i}": _journey(f"{unique}-{i}") for i in range(16)}
    streams = {stream_id_for(k) for k in journeys}
    start = await store.read_all(0, limit=1_000_000)
    checkpoint = start[-1].global_position if start else 0
    done = asyncio.Event()
    seen: list[tuple[str, int]] = []
    expected_count = sum(j.s.version for j, _ in journeys.values())

    async def write(journey_id: str) -> None:
        _, batches = journeys[journey_id]
        version = 0
        for batch in batches:
            result = await store.append(stream_id_for(journey_id), version, batch, metadata=META)
            version = result.last_version
            await asyncio.sleep(0)

    async def follow() -> None:
        nonlocal checkpoint
        deadline = asyncio.get_running_loop().time() + 30
        # Follow until every written event was read (the watermark may lag on a shared server).
        while not (done.is_set() and len(seen) >= expected_count) and asyncio.get_running_loop().time() < deadline:
            page = await store.read_all(checkpoint, limit=50)
            for ev in page:
                if ev.stream_id in streams:
                    seen.append((ev.stream_id, ev.stream_version))
            if page:
                checkpoint = page[-1].global_position
            else:
                await asyncio.sleep(0.001)

    reader = asyncio.create_task(follow())
    await asyncio.gather(*(write(k) for k in journeys))
    done.set()
    await reader
    expected = {(stream_id_for(k), v) for k, (j, _) in journeys.items() for v in range(1, j.s.version + 1)}
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert set(seen) == expected, "an event was skipped"
    for stream in streams:  # per stream, the global order keeps version order
        versions = [v for s, v in seen if s == stream]
        assert versions == sorted(versions)


async def test_reading_after_an_unknown_position_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(UnknownPosition):
        await EventStore(pool).read_all(10**15)


async def test_the_status_as_of_a_time_is_the_journey_as_it_stood_then(pool: asyncpg.Pool, unique: str) -> None:
    store = EventStore(pool)
    j, batches = _journey(unique)
    await _append_all(store, stream_id_for(unique), batches)
    before_approval = await store.status_as_of(unique, T0 + timedelta(hours=1))
    assert before_approval is not None and before_approval.state == "nominated" and before_approval.version == 1
    mid = await store.status_as_of(unique, datetime(2027, 1, 12, tzinfo=CPH))
    assert mid is not None and mid.state == "active" and mid.progress.sessions_attended == 1
    assert mid.progress.tracks_done == 0
    assert await store.status_as_of(unique, T0 - timedelta(days=1)) is None
    assert await store.status_as_of(unique, datetime(2030, 1, 1, tzinfo=CPH)) == status_of(j.s)


async def test_rebuilt_read_models_equal_the_live_ones(pool: asyncpg.Pool, unique: str) -> None:
    store = EventStore(pool)
    for i in range(5):
        _j, batches = _journey(f"{unique}-{i}")
        await _append_all(store, stream_id_for(f"{unique}-{i}"), batches)
    changed, batches = _journey(f"{unique}-leader")
    version = await _append_all(store, stream_id_for(f"{unique}-leader"), batches)
    more = changed.send_new(
        c.ChangeNearestLeader(**COORD, nearest_leader_id="p-new-leader"), datetime(2027, 4, 1, tzinfo=CPH)
    )
    await store.append(stream_id_for(f"{unique}-leader"), version, more, metadata=META)

    query_status = "SELECT * FROM journey_status ORDER BY journey_id"
    query_access = "SELECT * FROM journey_access ORDER BY journey_id, person_id, role"

    def comparable(rows: list[asyncpg.Record]) -> list[dict[str, object]]:
        out = []
        for r in rows:
            d = dict(r)
            d.pop("updated_at", None)
            if "status" in d:
                d["status"] = json.loads(d["status"])
            out.append(d)
        return out

    live_status = comparable(await pool.fetch(query_status))
    live_access = comparable(await pool.fetch(query_access))
    report = await store.rebuild_read_models()
    assert report.events >= 6 * 6
    assert comparable(await pool.fetch(query_status)) == live_status
    assert comparable(await pool.fetch(query_access)) == live_access
    leaders = await pool.fetch(
        "SELECT person_id FROM journey_access WHERE journey_id = $1 AND role = 'nearest_leader' ORDER BY 1",
        f"{unique}-leader",
    )
    assert [r["person_id"] for r in leaders] == ["p-leader", "p-new-leader"]


async def test_a_store_with_a_cold_cache_continues_a_stream_written_by_another(pool: asyncpg.Pool, unique: str) -> None:
    j, batches = _journey(unique)
    stream = stream_id_for(unique)
    version = 0
    for batch in batches:  # every append through a new store: as if each ran on another worker
        version = (await EventStore(pool).append(stream, version, batch, metadata=META)).last_version
    assert await EventStore(pool).status(unique) == status_of(j.s)
    assert next_wakeup(await EventStore(pool).load(unique)) == next_wakeup(j.s)


async def test_stored_events_cannot_be_updated_deleted_or_truncated_even_by_the_services_own_role(
    pool: asyncpg.Pool, unique: str
) -> None:
    store = EventStore(pool)
    _, batches = _journey(unique)
    stream = stream_id_for(unique)
    await _append_all(store, stream, batches)
    before = await store.read_stream(stream)
    for statement in (
        "UPDATE events SET data = '{}'::jsonb WHERE stream_id = $1",
        "DELETE FROM events WHERE stream_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement, stream)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("TRUNCATE events")
    assert await store.read_stream(stream) == before
