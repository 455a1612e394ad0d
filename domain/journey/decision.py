"""One decision under way, and the checks and steps every command handler shares."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from domain import commands as c
from domain import events as e
from domain.errors import InvalidState, NotAllowed
from domain.journey.evolve import evolve
from domain.journey.state import JourneyState
from domain.policy import RUNNING_STATES, may_send


class Decision:
    """Accumulates the events of one decision, keeping the folded state current."""

    def __init__(self, state: JourneyState | None, now: datetime) -> None:
        self.state = state
        self.now = now
        self.events: list[e.Event] = []

    @property
    def s(self) -> JourneyState:
        """The state as the events so far leave it (a decision on an existing journey)."""
        assert self.state is not None
        return self.state

    def emit(self, event: e.Event) -> None:
        """Record an event and fold it into the state."""
        self.events.append(event)
        self.state = evolve(self.state, event)


def require_state(s: JourneyState, allowed: Iterable[str], action: str) -> None:
    """InvalidState unless the journey is in one of the `allowed` states."""
    if s.state not in allowed:
        code = "journey_paused" if s.state == "paused" else "invalid_state"
        raise InvalidState(f"cannot {action} a journey that is {s.state}", code=code)


def require_running(s: JourneyState, action: str) -> None:
    """InvalidState unless the talent's work can be recorded: the journey is enrolled or active, or
    under rules 3 paused from one of them (PRODUCT §8.4: a pause stops the clock, not the people)."""
    if s.rules_version >= 3 and s.state == "paused" and s.paused_from in RUNNING_STATES:
        return
    require_state(s, RUNNING_STATES, action)


def require_role(cmd: c.Command, action: str) -> None:
    """NotAllowed unless the sender's role may send this command (domain.policy)."""
    if not may_send(cmd.actor_role, type(cmd)):
        raise NotAllowed(f"a {cmd.actor_role} cannot {action} a journey")


def require_sender(s: JourneyState, cmd: c.Command, message: str) -> None:
    """NotAllowed(message) unless the role may send the command and, for a person acting as
    themselves, they are this journey's talent or its current nearest leader."""
    if not may_send(cmd.actor_role, type(cmd)) or not (is_talent(s, cmd) or is_leader(s, cmd) or on_behalf(cmd)):
        raise NotAllowed(message)


def on_behalf(cmd: c.Command) -> bool:
    """Sent on the programme's behalf (a coordinator, an HR system, the system), not by a participant."""
    return cmd.actor_role not in ("talent", "leader")


def is_leader(s: JourneyState, cmd: c.Command) -> bool:
    """Sent by the journey's current nearest leader."""
    return cmd.actor_role == "leader" and cmd.actor_id == s.nearest_leader_id


def is_talent(s: JourneyState, cmd: c.Command) -> bool:
    """Sent by the journey's talent."""
    return cmd.actor_role == "talent" and cmd.actor_id == s.talent_id


def leader_side(s: JourneyState, cmd: c.Command) -> bool:
    """The nearest leader, or a coordinator (or the system) acting on the programme's behalf."""
    return is_leader(s, cmd) or cmd.actor_role in ("coordinator", "system")


def resolve(d: Decision, key: str, how: Literal["met", "missed"]) -> None:
    """Meet or miss a milestone, stopping its ladder if it had slipped."""
    m = d.s.milestone(key)
    if m is None:
        return
    if how == "met":
        # Rules 3: while paused the journey's clock stands at the pause, so what was not yet due
        # then is on time (its deadline moves by the pause when the journey resumes).
        clock = d.s.paused_at if d.s.rules_version >= 3 and d.s.paused_at is not None else d.now
        # A milestone waived at enrolment (rules 3) was due before the talent joined: never late.
        late = m.status == "slipped" or (m.status != "waived" and clock > m.due_at)
        d.emit(e.MilestoneMet(milestone=key, met_at=d.now, late=late))
    else:
        d.emit(e.MilestoneMissed(milestone=key, missed_at=d.now, reason="absent"))
    if m.ladder_running:
        d.emit(e.EscalationResolved(milestone=key, resolved_at=d.now, resolution=how))


def stop_ladders(d: Decision, at: datetime | None = None) -> None:
    """Resolve every running ladder `at` the moment the journey ended (default: now)."""
    for m in d.s.milestones:
        if m.ladder_running:
            d.emit(e.EscalationResolved(milestone=m.key, resolved_at=at or d.now, resolution="journey_ended"))
