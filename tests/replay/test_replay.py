"""Committed workflow histories replayed against TalentJourneyWorkflow: a non-deterministic change fails CI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from domain.events import Event, parse_event
from domain.journey import fold
from domain.status import JourneyStatus, status_of
from tests.replay.altered import JourneyWithoutDelivery
from workers.worker import workflow_runner
from workflows.journey import TalentJourneyWorkflow

HISTORIES = Path(__file__).parent / "histories"
#: The scripted journeys as recorded now (rules version 3: pauses over Easter and July with work
#: done during them, a late approval, a late sign-off), under rules version 2 (`v2-`: in
#: `punctual` the talent logs each meeting and the nearest leader confirms it), and as recorded
#: before rules versions (`v1-`): journeys of every shape run for years, so all must replay.
CURRENT = ("punctual", "absent", "no-meetings", "paused", "late-approval", "late-signoff")
RULES_2 = ("punctual", "absent", "no-meetings", "paused")
#: Rules 4 (issue 14), recorded with CURRENT_RULES_VERSION 4 under their own prefix: the talent
#: answers the readiness question at enrolment and evaluation and debriefs each dilemma lab; the
#: nearest leader proposes each mentor meeting ahead and is reminded before it.
RULES_4 = ("punctual", "paused")
SCENARIOS = (
    *CURRENT,
    *(f"v2-{name}" for name in RULES_2),
    *(f"v1-{name}" for name in RULES_2),
    *(f"rules-4-{name}" for name in RULES_4),
)


def rules_version_of(scenario: str) -> int:
    """The rules version a recorded scenario's journey was nominated under, by its file name."""
    if scenario.startswith("rules-4-"):
        return 4
    return 1 if scenario.startswith("v1-") else 2 if scenario.startswith("v2-") else 3


def history(scenario: str) -> WorkflowHistory:
    """A recorded history (`talent programme simulate ... --record-histories`), by scenario."""
    text = (HISTORIES / f"{scenario}.json").read_text(encoding="utf-8")
    name = scenario.removeprefix("v1-").removeprefix("v2-").removeprefix("rules-4-")
    return WorkflowHistory.from_json(f"journey-sim-{name}", text)


def _payload(payloads: Any) -> dict[str, Any]:
    data = json.loads(payloads.payloads[0].data)
    assert isinstance(data, dict)
    return data


def appended_events(events: Sequence[HistoryEvent]) -> list[Event]:
    """The journey events the history's append activities stored, read as the event store reads them."""
    out: list[Event] = []
    for ev in events:
        if ev.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributes = ev.activity_task_scheduled_event_attributes
        if attributes.activity_type.name != "append_journey_events":
            continue
        for new in _payload(attributes.input)["events"]:
            data = {k: v for k, v in new["event"].items() if k not in ("type", "schema_version")}
            out.append(parse_event(new["event"]["type"], new["event"]["schema_version"], data))
    return out


def replayer(workflow_class: type) -> Replayer:
    """A replayer as the worker runs workflows: pydantic payloads, the same sandbox."""
    return Replayer(
        workflows=[workflow_class], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )


def test_every_scenario_has_a_recorded_history_of_a_whole_journey() -> None:
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(SCENARIOS)
    for scenario in SCENARIOS:
        events = history(scenario).events
        kinds = {ev.event_type for ev in events}
        # Updates, timers and both activities: the replay exercises every way the journey moves.
        assert {
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            EventType.EVENT_TYPE_TIMER_FIRED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        } <= kinds, scenario
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, scenario


def test_the_histories_hold_journeys_of_every_rules_version_and_the_rules_3_facts() -> None:
    rules = {}
    for scenario in SCENARIOS:
        nomination = appended_events(history(scenario).events)[0]
        assert nomination.type == "TalentNominated"
        rules[scenario] = nomination.rules_version
    assert rules == {s: rules_version_of(s) for s in SCENARIOS}
    for punctual in ("punctual", "v2-punctual"):
        types = [ev.type for ev in appended_events(history(punctual).events)]
        assert types.count("MentorMeetingConfirmed") == types.count("MentorMeetingLogged") == 5, punctual
    # What only rules 3 records: milestones waived at a late approval, an evaluation that waited.
    assert "MilestoneWaived" in [ev.type for ev in appended_events(history("late-approval").events)]
    assert "EvaluationDeferred" in [ev.type for ev in appended_events(history("late-signoff").events)]
    paused = [ev.type for ev in appended_events(history("paused").events)]
    assert paused.count("JourneyPaused") == paused.count("JourneyResumed") == 2
    # What only rules 4 records: readiness asked and answered at both stages, lab debriefs, clarity.
    for scenario in (f"rules-4-{name}" for name in RULES_4):
        events = appended_events(history(scenario).events)
        kinds = [ev.type for ev in events]
        assert kinds.count("ReadinessAsked") == kinds.count("ReadinessAssessed") == 2, scenario
        assert "LabDebriefed" in kinds, scenario
        # Mentor meetings as appointments: each proposed by the nearest leader, who is reminded.
        assert kinds.count("MentorMeetingProposed") == 5, scenario
        assert "MentorMeetingReminded" in kinds, scenario
        [concluded] = [ev for ev in events if ev.type == "ClarityConcluded"]
        assert (concluded.enrolment_answer, concluded.evaluation_answer, concluded.clarified) == (
            "not_now",
            "yes",
            True,
        )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_folding_the_events_a_history_stored_gives_the_status_the_workflow_ended_with(scenario: str) -> None:
    events = history(scenario).events
    completed = events[-1].workflow_execution_completed_event_attributes

    state = fold(appended_events(events))

    assert state is not None
    # The recording holds the status as its workflow then returned it: every field it has must
    # come out of the fold unchanged. Fields the status view gained later (the leader's leader,
    # ladders, ...) are not in the recording, so they are compared where both have them.
    recorded = _payload(completed.result)
    folded = status_of(state).model_dump(mode="json")
    expected = JourneyStatus.model_validate(recorded).model_dump(mode="json")
    assert _known(folded, recorded) == _known(expected, recorded)


def _known(value: Any, shape: Any) -> Any:
    """`value` limited to the keys `shape` has, at every depth (lists element by element)."""
    if isinstance(shape, dict) and isinstance(value, dict):
        return {key: _known(value.get(key), sub) for key, sub in shape.items()}
    if isinstance(shape, list) and isinstance(value, list) and len(shape) == len(value):
        return [_known(v, s) for v, s in zip(value, shape, strict=True)]
    return value


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_recorded_journey_replays_deterministically(scenario: str) -> None:
    result = await replayer(TalentJourneyWorkflow).replay_workflow(history(scenario), raise_on_replay_failure=False)

    assert result.replay_failure is None, f"{scenario}: {result.replay_failure!r}"


async def test_a_workflow_that_decides_differently_fails_replay_with_a_nondeterminism_error() -> None:
    with pytest.raises(NondeterminismError, match="TMPRL1100"):
        await replayer(JourneyWithoutDelivery).replay_workflow(history("punctual"))
