"""The journey read models and outbox rows that an append writes, computed from the domain."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import events as e
from domain.journey import JourneyState, evolve
from domain.kpis import FactsFold, KpiRow, fold_facts, kpi_row_of_data
from domain.notifications import notifications_for
from domain.status import dump_status, status_data

_OUTBOX_NAMESPACE = uuid.UUID("6f0b7c1e-3d7a-4b8e-9a52-0c7d1e5f2a91")


@dataclass(frozen=True)
class StatusRow:
    """One row of journey_status, in column order."""

    journey_id: str
    stream_id: str
    cohort_id: str
    programme_id: str
    programme_version: int
    state: str
    at_risk: bool
    talent_id: str
    nearest_leader_id: str
    external_ref: str | None
    next_deadline: datetime | None
    open_escalations: int
    version: int
    status: str
    #: The current leader's leader, who sees the journey read-only (§8.1).
    leaders_leader_id: str | None

    COLUMNS = (
        "journey_id",
        "stream_id",
        "cohort_id",
        "programme_id",
        "programme_version",
        "state",
        "at_risk",
        "talent_id",
        "nearest_leader_id",
        "external_ref",
        "next_deadline",
        "open_escalations",
        "version",
        "status",
        "leaders_leader_id",
    )

    def values(self) -> tuple[object, ...]:
        """The row's values in COLUMNS order."""
        return tuple(getattr(self, c) for c in self.COLUMNS)


@dataclass(frozen=True)
class OutboxRow:
    """One notification to deliver."""

    notification_id: uuid.UUID
    event_id: uuid.UUID
    journey_id: str
    channel: str
    template: str
    recipient_role: str
    recipient_id: str | None


@dataclass
class Projection:
    """What one append writes beside its events."""

    state: JourneyState
    status: StatusRow
    facts: FactsFold
    kpis: KpiRow
    access: list[tuple[str, str]] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)


#: The columns of journey_kpis, in `kpis_row` order.
KPI_COLUMNS = (
    "journey_id",
    "programme_id",
    "cohort_id",
    "version",
    "counters",
    "horizon_ends",
    "horizon_flags",
    "days_to_appointment",
)
#: kpi_totals keeps each cohort's counters in this many rows (shards), by journey.
KPI_SHARDS = 8


def kpi_shard(journey_id: str) -> int:
    """The kpi_totals shard a journey's counters are added to."""
    return zlib.crc32(journey_id.encode()) % KPI_SHARDS


def kpis_row(state: JourneyState, kpis: KpiRow) -> tuple[object, ...]:
    """The journey_kpis row of a state's KPI share, in KPI_COLUMNS order (horizons only once completed)."""
    evaluated = any(end is not None for end in kpis.horizon_ends)
    return (
        state.journey_id,
        state.programme.id,
        state.cohort.cohort_id,
        state.version,
        list(kpis.counters),
        list(kpis.horizon_ends) if evaluated else None,
        list(kpis.horizon_flags) if evaluated else None,
        kpis.days_to_appointment,
    )


def status_row(stream_id: str, state: JourneyState) -> StatusRow:
    """The journey_status row for a state."""
    return status_row_of(stream_id, state, status_data(state))


def rows_of(stream_id: str, state: JourneyState, facts: FactsFold) -> tuple[StatusRow, KpiRow]:
    """The journey_status row and the KPI share of a state (one status_data for both)."""
    data = status_data(state)
    return status_row_of(stream_id, state, data), kpi_row_of_data(data, facts)


def status_row_of(stream_id: str, state: JourneyState, data: dict[str, Any]) -> StatusRow:
    """The journey_status row for a state and its status data."""
    return StatusRow(
        journey_id=state.journey_id,
        stream_id=stream_id,
        cohort_id=data["cohort_id"],
        programme_id=data["programme_id"],
        programme_version=data["programme_version"],
        state=data["state"],
        at_risk=data["at_risk"],
        talent_id=data["talent_id"],
        nearest_leader_id=data["nearest_leader_id"],
        external_ref=data["external_ref"],
        next_deadline=data["next_deadline"],
        # Running ladders (one per slipped milestone), as JourneyStatus.open_escalations counts them.
        open_escalations=len(data["ladders"]),
        version=state.version,
        status=dump_status(data),
        leaders_leader_id=state.leaders_leader_id,
    )


def access_for(event: e.Event) -> list[tuple[str, str]]:
    """Who gains sight of the journey through this event: (person id, role)."""
    if isinstance(event, e.TalentNominated):
        rows = [(event.talent_id, "talent"), (event.nearest_leader_id, "nearest_leader")]
        if event.leaders_leader_id:
            rows.append((event.leaders_leader_id, "leaders_leader"))
        return rows
    if isinstance(event, e.NearestLeaderChanged):
        rows = [(event.nearest_leader_id, "nearest_leader")]
        if event.leaders_leader_id:
            rows.append((event.leaders_leader_id, "leaders_leader"))
        return rows
    return []


def project(
    stream_id: str, state: JourneyState | None, new: Sequence[e.NewEvent], facts: FactsFold | None = None
) -> Projection:
    """Fold `new` onto `state` (and its KPI `facts`) and collect the read-model and outbox rows they cause."""
    access: list[tuple[str, str]] = []
    outbox: list[OutboxRow] = []
    facts = facts if facts is not None else FactsFold()
    for item in new:
        state = evolve(state, item.event)
        facts = fold_facts(facts, item.event)
        access.extend(access_for(item.event))
        for n in notifications_for(state, item.event):
            key = f"{n.channel}:{n.template}:{n.recipient_role}:{n.recipient_id}"
            outbox.append(
                OutboxRow(
                    notification_id=uuid.uuid5(_OUTBOX_NAMESPACE, f"{item.event_id}:{key}"),
                    event_id=item.event_id,
                    journey_id=state.journey_id,
                    channel=n.channel,
                    template=n.template,
                    recipient_role=n.recipient_role,
                    recipient_id=n.recipient_id,
                )
            )
    if state is None:
        raise ValueError("nothing to project")
    status, kpis = rows_of(stream_id, state, facts)
    return Projection(state=state, status=status, facts=facts, kpis=kpis, access=access, outbox=outbox)
