"""Shared test helpers: the example programmes and cohorts (from `bench.support`), and faster ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bench.support import (
    COORD,
    CPH,
    LEADER,
    ROOT,
    SYSTEM,
    TALENT,
    Journey,
    compressed_cohort,
    compressed_programme,
    nominate,
    reference_cohort,
    reference_programme,
    scaled,
)
from domain.calendar import parse_iso_duration
from domain.programme import CalendarDef, Cohort, Programme

__all__ = [
    "COORD",
    "CPH",
    "FACTOR",
    "LADDER_FACTOR",
    "LEADER",
    "ROOT",
    "SYSTEM",
    "TALENT",
    "Journey",
    "compressed_cohort",
    "compressed_programme",
    "fast_cohort",
    "fast_programme",
    "nominate",
    "reference_cohort",
    "reference_programme",
    "reference_programme_v1",
    "scaled",
]


#: The compressed demo's ten minutes in about half a minute...
FACTOR = 20
#: ...but its escalation rungs only five times faster: 2 s apart, time for the test to step in
#: between two of them.
LADDER_FACTOR = 5


def _faster(node: Any, factor: float) -> Any:
    """Every ISO delay in a dumped programme (or part of one) divided by `factor`."""
    if isinstance(node, dict):
        if set(node) == {"iso"}:
            value = parse_iso_duration(node["iso"])
            assert isinstance(value, timedelta), node
            return {"iso": f"PT{value.total_seconds() / factor:g}S"}
        return {key: _faster(value, factor) for key, value in node.items()}
    if isinstance(node, list):
        return [_faster(value, factor) for value in node]
    return node


def reference_programme_v1() -> Programme:
    """examples/talent-ny-leder.yaml as its version 1 had it: the plain `dk` calendar (no municipal
    days off, no closures). The tests whose dates are counted by hand on `dk` use it; the municipal
    calendar and its closures have tests of their own (tests/unit/test_rules_v3_time.py)."""
    return reference_programme().model_copy(update={"version": 1, "calendar": CalendarDef(name="dk")})


def fast_programme() -> Programme:
    """examples/demo-compressed.yaml, FACTOR times faster (its ladder LADDER_FACTOR times)."""
    data = compressed_programme().model_dump(mode="json")
    ladder = _faster(data.pop("escalation"), LADDER_FACTOR)
    return Programme.model_validate({**_faster(data, FACTOR), "escalation": ladder, "title": "Talent Ny Leder (fast)"})


def fast_cohort(programme: Programme, start: datetime, *, cohort_id: str, coordinator_id: str) -> Cohort:
    """The compressed demo's cohort (a session a minute), FACTOR times faster."""
    base = compressed_cohort(programme, start, cohort_id=cohort_id)
    sessions = [s.model_copy(update={"starts_at": start + (s.starts_at - start) / FACTOR}) for s in base.sessions]
    return Cohort.model_validate(
        {**base.model_dump(), "sessions": [s.model_dump() for s in sessions], "coordinator_id": coordinator_id}
    )
