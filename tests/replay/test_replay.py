"""Committed workflow histories replayed against TalentJourneyWorkflow: a non-deterministic change fails CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.replay.altered import JourneyWithoutDelivery
from workers.worker import workflow_runner
from workflows.journey import TalentJourneyWorkflow

HISTORIES = Path(__file__).parent / "histories"
SCENARIOS = ("punctual", "absent", "no-meetings", "paused")


def history(scenario: str) -> WorkflowHistory:
    """A recorded history (`talent programme simulate ... --record-histories`), by scenario."""
    text = (HISTORIES / f"{scenario}.json").read_text(encoding="utf-8")
    return WorkflowHistory.from_json(f"journey-sim-{scenario}", text)


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


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_recorded_journey_replays_deterministically(scenario: str) -> None:
    result = await replayer(TalentJourneyWorkflow).replay_workflow(history(scenario), raise_on_replay_failure=False)

    assert result.replay_failure is None, f"{scenario}: {result.replay_failure!r}"


async def test_a_workflow_that_decides_differently_fails_replay_with_a_nondeterminism_error() -> None:
    with pytest.raises(NondeterminismError, match="TMPRL1100"):
        await replayer(JourneyWithoutDelivery).replay_workflow(history("punctual"))
