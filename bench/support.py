"""The example programmes, cohorts for them, a decide/evolve journey driver and the usual actors.

Shared by the benchmarks and the tests (`tests.support` builds on it): benchmarks import no tests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from domain import commands as c
from domain.events import Event, NewEvent
from domain.journey import JourneyState, decide, evolve
from domain.programme import Cohort, CohortSession, Programme
from infra.programmes import load_programme

ROOT = Path(__file__).resolve().parents[1]
CPH = ZoneInfo("Europe/Copenhagen")


def reference_programme() -> Programme:
    """examples/talent-ny-leder.yaml."""
    return load_programme((ROOT / "examples" / "talent-ny-leder.yaml").read_text())


def compressed_programme() -> Programme:
    """examples/demo-compressed.yaml."""
    return load_programme((ROOT / "examples" / "demo-compressed.yaml").read_text())


def reference_cohort(
    programme: Programme,
    *,
    cohort_id: str = "tnl-2027-1",
    starts_on: date = date(2027, 1, 11),
    coordinator_id: str | None = "p-coord",
) -> Cohort:
    """A cohort with one session every four weeks from the start, 09:00 local."""
    sessions = tuple(
        CohortSession(
            key=s.key,
            starts_at=datetime.combine(starts_on + timedelta(weeks=4 * i), datetime.min.time(), tzinfo=CPH)
            + timedelta(hours=9),
            location="UCN Aalborg",
        )
        for i, s in enumerate(programme.sessions)
    )
    return Cohort(
        cohort_id=cohort_id,
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=starts_on,
        capacity=24,
        coordinator_id=coordinator_id,
        sessions=sessions,
    )


def compressed_cohort(programme: Programme, start: datetime, *, cohort_id: str = "demo-1") -> Cohort:
    """A compressed cohort: a session every minute from `start`."""
    sessions = tuple(
        CohortSession(key=s.key, starts_at=start + timedelta(minutes=i), location="Online")
        for i, s in enumerate(programme.sessions)
    )
    return Cohort(
        cohort_id=cohort_id,
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=start.date(),
        starts_at=start,
        capacity=24,
        coordinator_id="p-coord",
        sessions=sessions,
    )


class Journey:
    """Drives one journey through `decide`/`evolve` the way the workflow will."""

    def __init__(self, new_id: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        self.state: JourneyState | None = None
        self.history: list[NewEvent] = []
        self._new_id = new_id

    def send(self, command: c.Command, now: datetime) -> list[Event]:
        new = decide(self.state, command, now=now, new_ids=self._new_id)
        for n in new:
            self.state = evolve(self.state, n.event)
        self.history.extend(new)
        return [n.event for n in new]

    @property
    def s(self) -> JourneyState:
        assert self.state is not None
        return self.state

    def send_new(self, command: c.Command, now: datetime) -> list[NewEvent]:
        """Like send, returning the new events with their ids (what an append stores)."""
        before = len(self.history)
        self.send(command, now)
        return self.history[before:]

    def types(self, events: list[Event] | None = None) -> list[str]:
        """Event types, of `events` or of the whole history."""
        evs = events if events is not None else [n.event for n in self.history]
        return [ev.type for ev in evs]


def nominate(programme: Programme, cohort: Cohort, **overrides: Any) -> c.NominateTalent:
    """A nomination command with sensible defaults."""
    fields: dict[str, Any] = {
        "actor_id": "p-leader",
        "actor_role": "leader",
        "journey_id": "j-1",
        "talent_id": "p-talent",
        "nearest_leader_id": "p-leader",
        "leaders_leader_id": "p-boss",
        "programme": programme,
        "cohort": cohort,
        "motivation_ref": "t-1",
        "external_ref": "HR-4711",
    }
    fields.update(overrides)
    return c.NominateTalent.model_validate(fields)


COORD: c.Actor = {"actor_id": "p-coord", "actor_role": "coordinator"}
TALENT: c.Actor = {"actor_id": "p-talent", "actor_role": "talent"}
LEADER: c.Actor = {"actor_id": "p-leader", "actor_role": "leader"}
SYSTEM: c.Actor = {"actor_id": "system", "actor_role": "system"}


_ISO_SECONDS = re.compile(r"^PT(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def scaled(programme: Programme, factor: float) -> Programme:
    """The programme with every minutes/seconds ISO delay multiplied by `factor` (at least 50 ms)."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"iso"} and (m := _ISO_SECONDS.match(value["iso"])):
                seconds = (float(m.group(1) or 0) * 60 + float(m.group(2) or 0)) * factor
                return {"iso": f"PT{max(seconds, 0.05):.3f}S"}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return Programme.model_validate(walk(programme.model_dump(mode="json")))
