"""A talent's journey: its state, `decide` (command -> events) and `evolve` (state + event -> state).

`decide` never reads the clock or makes ids: `now` and `new_ids` are parameters. Before and after
handling a command it lets time pass up to `now` (slips, rungs, start, evaluation, follow-ups),
so the journey a command sees is never stale, whoever drives the clock.

The modules, by reason to change: `state` (what a journey knows), `evolve` (how events change
it), `decide` (which handler a command reaches) with the handlers `nomination`, `sessions`,
`work`, `course`, `escalations` and `clarity`, `planning` (milestones, rungs, follow-ups planned) and
`clock` (what time does).
"""

from domain.journey.clock import ClockAction, next_action, next_wakeup
from domain.journey.decide import decide
from domain.journey.evolve import _evolved, evolve, fold
from domain.journey.state import (
    DebriefRecord,
    EscalationRecord,
    FollowUpState,
    JourneyState,
    MeetingRecord,
    MilestoneState,
    MilestoneStatus,
    OutcomeRecord,
    ReadinessRecord,
    TrackState,
    TrackStatus,
)
from domain.policy import EVALUATED_STATES, IN_PROGRAMME_STATES, OPEN_STATES, RUNNING_STATES, TERMINAL_STATES

__all__ = [
    "EVALUATED_STATES",
    "IN_PROGRAMME_STATES",
    "OPEN_STATES",
    "RUNNING_STATES",
    "TERMINAL_STATES",
    "ClockAction",
    "DebriefRecord",
    "EscalationRecord",
    "FollowUpState",
    "JourneyState",
    "MeetingRecord",
    "MilestoneState",
    "MilestoneStatus",
    "OutcomeRecord",
    "ReadinessRecord",
    "TrackState",
    "TrackStatus",
    "_evolved",
    "decide",
    "evolve",
    "fold",
    "next_action",
    "next_wakeup",
]
