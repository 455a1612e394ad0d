"""The journey's clock: what time does to a journey (start, slips, rungs, evaluation, follow-ups, close)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from domain import events as e
from domain.journey.appointments import remind, reminding_at
from domain.journey.clarity import conclude, concluding_at
from domain.journey.course import evaluate
from domain.journey.decision import Decision
from domain.journey.nomination import expire, expires_at
from domain.journey.planning import ladder
from domain.journey.state import JourneyState
from domain.policy import EVALUATED_STATES, TERMINAL_STATES

# How many time-driven steps one decision may take: far above any real programme's ladder count.
_MAX_TICKS = 10_000

ClockActionKind = Literal["start", "slip", "rung", "expire", "evaluate", "follow_up", "conclude", "remind", "close"]
#: Of two actions due at the same instant, the one earlier here happens first.
_PRIORITY: dict[ClockActionKind, int] = {
    "start": 0,
    "slip": 1,
    "rung": 2,
    "expire": 3,
    "evaluate": 4,
    "follow_up": 5,
    # Rules 4: the evaluation stage of the readiness assessment closes before the journey does.
    "conclude": 6,
    # Rules 4: the nearest leader's reminder of a proposed mentor meeting.
    "remind": 7,
    "close": 8,
}


@dataclass(frozen=True, slots=True)
class ClockAction:
    """One thing time will do to a journey `at` an instant.

    `milestone` names the milestone that slips or whose ladder climbs, `rung` the rung raised,
    `point` the follow-up requested.
    """

    at: datetime
    kind: ClockActionKind
    milestone: str | None = None
    rung: int | None = None
    point: int | None = None

    @property
    def order(self) -> tuple[datetime, int]:
        """When it happens, and its place among the actions due at the same instant."""
        return self.at, _PRIORITY[self.kind]


def next_action(s: JourneyState) -> ClockAction | None:
    """The earliest thing time will do to this journey, whenever that is."""
    if s.state in TERMINAL_STATES or s.state == "paused":
        return None
    best: ClockAction | None = None

    def consider(action: ClockAction) -> None:
        nonlocal best
        if best is None or action.order < best.order:
            best = action

    if s.state == "enrolled" and s.starts_at is not None:
        consider(ClockAction(s.starts_at, "start"))
    if s.state in ("nominated", "enrolled", "active"):
        for m in s.milestones:
            if m.status == "open":
                consider(ClockAction(m.due_at, "slip", milestone=m.key))
            elif m.ladder_climbing:
                for r in m.ladder:
                    if r.rung not in m.raised:
                        consider(ClockAction(r.due_at, "rung", milestone=m.key, rung=r.rung))
                        break
    expiry = expires_at(s)
    if expiry is not None:
        consider(ClockAction(expiry, "expire"))
    if s.state == "active" and s.evaluate_at is not None:
        consider(ClockAction(s.evaluate_at, "evaluate"))
    reminding = reminding_at(s)
    if reminding is not None:
        consider(ClockAction(reminding, "remind"))
    concluding = concluding_at(s)
    if concluding is not None:
        consider(ClockAction(concluding, "conclude"))
    if s.state in EVALUATED_STATES:
        pending = [f for f in s.follow_ups if f.requested_at is None]
        if pending:
            consider(ClockAction(pending[0].due_at, "follow_up", point=pending[0].point))
        else:
            last = s.follow_ups[-1].respond_by if s.follow_ups else s.evaluated_at
            if last is not None:
                consider(ClockAction(last, "close"))
    return best


#: Rules 3: how long after an instant the clock wakes to act on it (Temporal's timer resolution).
INCLUSIVE_WAKE = timedelta(milliseconds=1)


def next_wakeup(state: JourneyState | None) -> datetime | None:
    """When time will next change this journey (None: only a command can).

    Rules 3: just after the action's instant (`INCLUSIVE_WAKE`), for a deadline is inclusive.
    """
    if state is None:
        return None
    action = next_action(state)
    if action is None:
        return None
    return action.at + INCLUSIVE_WAKE if state.rules_version >= 3 else action.at


def advance(d: Decision, *, before_command: bool = False) -> None:
    """Let time pass up to the decision's `now`: every action due by then happens, in order.

    Rules 3 (PRODUCT §8.4): a deadline is inclusive. Before a command, time stops short of `now`, so
    a command at exactly the due instant comes first (a sign-off then is on time: no slip, no rung);
    what falls due at `now` happens after it. The clock's own wake-up comes just after the instant
    (`next_wakeup`), so waking at every deadline or only for commands records the same history.
    Rules 1 and 2 let time act first.
    """
    for _ in range(_MAX_TICKS):
        action = next_action(d.s)
        if action is None or action.at > d.now:
            return
        if before_command and action.at == d.now and d.s.rules_version >= 3:
            return
        _perform(d, action)
    raise RuntimeError("too many time-driven steps in one decision")  # pragma: no cover


def _bookkeeping(s: JourneyState, kind: str) -> bool:
    """Rules 3: an undecided nomination (it has its own path, expiry) and an unrecorded attendance
    (the coordinator's bookkeeping; a real absence counts against the attendance criterion) never
    mark the journey at risk."""
    return s.rules_version >= 3 and kind in ("approval", "session")


def _perform(d: Decision, action: ClockAction) -> None:
    when, s = action.at, d.s
    if action.kind == "start":
        d.emit(e.JourneyStarted(started_at=when))
    elif action.kind == "slip":
        assert action.milestone is not None
        m = s.milestone(action.milestone)
        assert m is not None
        d.emit(e.MilestoneSlipped(milestone=m.key, due_at=m.due_at, slipped_at=when, ladder=ladder(s, m, when)))
    elif action.kind == "rung":
        assert action.milestone is not None
        m = s.milestone(action.milestone)
        assert m is not None
        plan = next(r for r in m.ladder if r.rung == action.rung)
        d.emit(
            e.EscalationRaised(
                milestone=m.key,
                rung=plan.rung,
                recipient_role=plan.recipient_role,
                recipient_id=s.person_for(plan.recipient_role),
                raised_at=when,
                at_risk=plan.rung == m.ladder[-1].rung and not _bookkeeping(s, m.kind),
            )
        )
    elif action.kind == "expire":
        expire(d, when)
    elif action.kind == "evaluate":
        evaluate(d, when)
    elif action.kind == "follow_up":
        point = next(f for f in s.follow_ups if f.point == action.point)
        d.emit(
            e.FollowUpRequested(
                point=point.point,
                months=point.months,
                requested_at=when,
                respond_by=s.calendar.add(when, s.programme.follow_up.response_window),
            )
        )
    elif action.kind == "remind":
        remind(d, when)
    elif action.kind == "conclude":
        conclude(d, when)
    elif action.kind == "close":
        if concluding_at(s) is not None:
            # Rules 4: a journey that closes before its evaluation stage does concludes it first.
            conclude(d, when)
        d.emit(e.JourneyClosed(closed_at=when, reason="follow_up_finished"))
