"""The KPI projection (journey_kpis, issue 15): kept by the append, rebuilt with the read models, and
equal to the KPIs as they were computed before it, from every status document and fact event.

The reference below is the KPI function as it stood before the projection (domain/kpis.py at the
commit before issue 15), kept verbatim as the oracle.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime

import asyncpg
import isodate

from bench.scale import instance, templates
from bench.support import reference_cohort, reference_programme
from domain import events as e
from domain.events import MilestoneKind
from domain.kpis import (
    HORIZONS,
    JOURNEY_STATES,
    MILESTONE_KINDS,
    EscalationKpis,
    JourneyFacts,
    Kpis,
    MilestoneKindKpis,
    OutcomeFact,
    OutcomeHorizonKpis,
    compute_funnel,
    facts_from_events,
)
from store.catalog import Catalog
from store.eventstore import EventStore
from store.projection import kpi_shard
from store.views import journeys as journeys_view
from store.views import kpis as kpis_view

META = e.EventMetadata(actor="test", correlation_id="kpi-projection")
#: Instants the horizons are measured to: before any completion, amid the follow-ups, after them all.
AS_OF = (datetime(2027, 3, 1, tzinfo=UTC), datetime(2028, 9, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _milestone_kpis(journeys: Sequence[JourneyFacts]) -> tuple[MilestoneKindKpis, ...]:
    counts: dict[MilestoneKind, Counter[str]] = {kind: Counter() for kind in MILESTONE_KINDS}
    for j in journeys:
        for m in j.status.milestones:
            if m.status == "met":
                counts[m.kind]["late" if m.key in j.late_milestones else "on_time"] += 1
            else:
                counts[m.kind][m.status] += 1
    rows = []
    for kind, c in counts.items():
        due = c["on_time"] + c["late"] + c["missed"] + c["slipped"]
        rows.append(
            MilestoneKindKpis(
                kind=kind,
                on_time=c["on_time"],
                late=c["late"],
                missed=c["missed"],
                slipped=c["slipped"],
                open=c["open"],
                waived=c["waived"],
                due=due,
                on_time_rate=_rate(c["on_time"], due),
            )
        )
    return tuple(rows)


def _escalation_kpis(journeys: Sequence[JourneyFacts]) -> tuple[EscalationKpis, ...]:
    raised: Counter[tuple[MilestoneKind, int]] = Counter()
    still_open: Counter[tuple[MilestoneKind, int]] = Counter()
    for j in journeys:
        kinds = {m.key: m.kind for m in j.status.milestones}
        for x in j.status.escalations:
            kind = kinds.get(x.milestone)
            if kind is None:  # pragma: no cover - every escalation is of one of the journey's milestones
                continue
            raised[(kind, x.rung)] += 1
            still_open[(kind, x.rung)] += x.resolved_at is None
    order = {kind: i for i, kind in enumerate(MILESTONE_KINDS)}
    return tuple(
        EscalationKpis(kind=kind, rung=rung, raised=n, open=still_open[(kind, rung)])
        for (kind, rung), n in sorted(raised.items(), key=lambda item: (order[item[0][0]], item[0][1]))
    )


def _horizon_end(evaluated_at: datetime, months: int) -> datetime:
    """The end of a horizon: `months` calendar months after the evaluation, in its own UTC offset."""
    end: datetime = evaluated_at + isodate.Duration(months=months)
    return end


def _answers(outcome: OutcomeFact, months: int, by: date) -> bool:
    """Whether an answer speaks for a horizon: given at its follow-up or a later one, or dated at its end or after."""
    return (outcome.months is not None and outcome.months >= months) or outcome.on >= by


def reference_kpis(journeys: Sequence[JourneyFacts], *, as_of: datetime) -> Kpis:
    """The KPIs of `journeys` at `as_of` (every denominator is documented on the model's fields)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    states = Counter(j.status.state for j in journeys)
    completed = [j for j in journeys if j.status.completion == "completed"]
    not_completed = sum(1 for j in journeys if j.status.completion == "not_completed")
    evaluated = len(completed) + not_completed
    withdrawn = sum(1 for j in journeys if j.status.state == "withdrawn" and j.status.completion is None)
    rejected = sum(1 for j in journeys if j.status.state == "rejected")

    horizons = []
    for months in HORIZONS:
        eligible = applied = not_applied = appointed = 0
        for j in completed:
            if j.evaluated_at is None:  # pragma: no cover - a completion is always an evaluation
                continue
            end = _horizon_end(j.evaluated_at, months)
            if end > as_of:
                continue
            eligible += 1
            by = end.date()
            did_apply = any(o.applied and o.on <= by for o in j.outcomes)
            applied += did_apply
            not_applied += not did_apply and any(_answers(o, months, by) for o in j.outcomes)
            appointed += any(o.appointed and o.on <= by for o in j.outcomes)
        horizons.append(
            OutcomeHorizonKpis(
                months=months,
                eligible=eligible,
                applied=applied,
                not_applied=not_applied,
                unknown=eligible - applied - not_applied,
                appointed=appointed,
                applied_rate=_rate(applied, eligible),
                appointed_rate=_rate(appointed, eligible),
            )
        )

    days: list[int] = []
    for j in completed:
        appointments = [o.on for o in j.outcomes if o.appointed]
        if appointments and j.evaluated_at is not None:
            days.append(max(0, (min(appointments) - j.evaluated_at.date()).days))

    return Kpis(
        as_of=as_of,
        journeys=len(journeys),
        by_state={state: states[state] for state in JOURNEY_STATES},
        evaluated=evaluated,
        completed=len(completed),
        not_completed=not_completed,
        withdrawn=withdrawn,
        rejected=rejected,
        expired=sum(1 for j in journeys if j.expired),
        in_progress=len(journeys) - evaluated - withdrawn - rejected,
        completion_rate=_rate(len(completed), evaluated),
        milestones=_milestone_kpis(journeys),
        escalations=_escalation_kpis(journeys),
        outcomes=tuple(horizons),
        appointed=len(days),
        median_days_to_appointment=float(statistics.median(days)) if days else None,
    )


# -- the tests -------------------------------------------------------------------------------------


async def _seed(pool: asyncpg.Pool, unique: str) -> tuple[str, list[str]]:
    """Two journeys of every kind a live programme holds (bench/scale.py's, decided by the domain),
    in a cohort of their own; half of each history appended by one store, the rest by a cold one."""
    programme = reference_programme()
    catalog = Catalog(pool)
    await catalog.publish(programme)
    cohort = reference_cohort(programme, cohort_id=f"kpi-{unique}").model_copy(update={"capacity": 100})
    await catalog.create_cohort(cohort)
    ids = []
    for k, (_, _, history) in enumerate(templates()):
        for copy in range(2):
            journey_id = f"kpi-{unique}-{k}-{copy}"
            events = instance(history, journey_id, 2 * k + copy, cohort)
            stream = e.stream_id_for(journey_id)
            half = max(1, len(events) // 2)
            await EventStore(pool).append(stream, 0, events[:half], metadata=META)
            cold = EventStore(pool)  # continues from the stream, folding its facts from the events
            for start in range(half, len(events), 7):
                await cold.append(stream, start, events[start : start + 7], metadata=META)
            ids.append(journey_id)
    return cohort.cohort_id, ids


async def _facts(pool: asyncpg.Pool, journey_ids: list[str]) -> list[JourneyFacts]:
    store = EventStore(pool)
    facts = []
    for journey_id in journey_ids:
        status = await journeys_view.status(pool, journey_id)
        assert status is not None
        events = [ev.to_event() for ev in await store.read_stream(e.stream_id_for(journey_id))]
        facts.append(facts_from_events(status, events))
    return facts


async def _assert_equal_to_the_reference(pool: asyncpg.Pool, cohort_id: str, facts: list[JourneyFacts]) -> None:
    for at in AS_OF:
        expected = reference_kpis(facts, as_of=at)
        assert await kpis_view.cohort_kpis(pool, cohort_id, as_of=at) == expected
        assert await kpis_view.kpis_from_events(pool, "cohort_id", cohort_id, as_of=at) == expected
        report = await kpis_view.cohort_report(pool, cohort_id, as_of=at)
        assert report == (expected, compute_funnel(facts))


async def test_the_kpi_projection_kept_by_the_append_equals_the_kpis_computed_from_the_events(
    pool: asyncpg.Pool, unique: str
) -> None:
    cohort_id, ids = await _seed(pool, unique)
    facts = await _facts(pool, ids)
    kpis = reference_kpis(facts, as_of=AS_OF[-1])
    # The journeys are of every kind: the comparison covers every part of the KPIs.
    assert kpis.completed and kpis.withdrawn and kpis.rejected and kpis.in_progress and kpis.escalations
    assert kpis.outcomes[0].not_applied and kpis.outcomes[1].applied and kpis.appointed
    assert {m.kind for m in kpis.milestones if m.on_time} >= {"approval", "session"}
    await _assert_equal_to_the_reference(pool, cohort_id, facts)
    rows = await pool.fetchval("SELECT count(*) FROM journey_kpis WHERE cohort_id = $1", cohort_id)
    assert rows == len(ids)


async def test_rebuilt_kpi_rows_equal_the_ones_the_appends_kept(pool: asyncpg.Pool, unique: str) -> None:
    cohort_id, ids = await _seed(pool, unique)
    query = "SELECT * FROM journey_kpis WHERE cohort_id = $1 ORDER BY journey_id"
    totals = "SELECT * FROM kpi_totals WHERE cohort_id = $1 ORDER BY shard"
    kept = [dict(r) for r in await pool.fetch(query, cohort_id)]
    kept_totals = [dict(r) for r in await pool.fetch(totals, cohort_id)]
    await EventStore(pool).rebuild_read_models()
    assert [dict(r) for r in await pool.fetch(query, cohort_id)] == kept
    # The totals the appends added up, change by change, are the sums of the rebuilt rows.
    assert [dict(r) for r in await pool.fetch(totals, cohort_id)] == kept_totals
    await _assert_equal_to_the_reference(pool, cohort_id, await _facts(pool, ids))


async def test_journeys_without_kpi_rows_are_counted_from_their_events(pool: asyncpg.Pool, unique: str) -> None:
    """Journeys stored before the projection (no rows yet): the KPIs fall back to the events."""
    cohort_id, ids = await _seed(pool, unique)
    row = await pool.fetchrow("DELETE FROM journey_kpis WHERE journey_id = $1 RETURNING counters", ids[0])
    assert row is not None
    await pool.execute(
        "UPDATE kpi_totals SET counters = ARRAY(SELECT a - b FROM unnest(counters, $2::int[]) AS u(a, b)) "
        "WHERE cohort_id = $1 AND shard = $3",
        cohort_id,
        row["counters"],
        kpi_shard(ids[0]),
    )
    await _assert_equal_to_the_reference(pool, cohort_id, await _facts(pool, ids))


async def test_the_programme_kpis_are_the_sum_of_its_cohorts(pool: asyncpg.Pool, unique: str) -> None:
    await _seed(pool, unique)
    programme_id = reference_programme().id
    at = AS_OF[-1]
    assert await kpis_view.programme_kpis(pool, programme_id, as_of=at) == await kpis_view.programme_kpis_from_events(
        pool, programme_id, as_of=at
    )
    assert await kpis_view.programme_kpis(pool, f"nope-{unique}") is None
    assert await kpis_view.cohort_kpis(pool, f"nope-{unique}") is None


async def test_the_feed_as_json_text_is_the_feed_page_model(pool: asyncpg.Pool, unique: str) -> None:
    """The HR feed's fast path (rows passed through) answers what the typed page says, page by page."""
    from api.routers.feed import feed_page, feed_page_json

    store = EventStore(pool)
    before = await pool.fetchval("SELECT max(global_position) FROM events")
    _, ids = await _seed(pool, unique)
    after = str(before) if before is not None else "0"
    ours: list[str] = []
    while True:
        typed = await feed_page(store, after, 300)
        fast = await feed_page_json(store, after, 300)
        # Other sessions may append between the two reads: compare the items both hold.
        common = min(fast.count, len(typed.items))
        assert json.loads(fast.text)["items"][:common] == typed.model_dump(mode="json")["items"][:common]
        assert fast.journeys[:common] == [item.journey_id for item in typed.items][:common]
        ours += [item.event_type for item in typed.items[:common] if item.journey_id in ids]
        if not common:
            break
        after = typed.items[common - 1].cursor
    assert ours.count("TalentNominated") == len(ids)
