"""A fair baseline for journeys: a workflow of a journey's shape whose every step does nothing.

`script_of` reads a finished journey's Temporal history and lists what its workflow asked Temporal
for, in order: timers (as deadlines from the cohort's start, so the baseline's clock runs like the
journey's), appends, deliveries and search-attribute upserts, and which updates it received.
`BaselineWorkflow` then does the same: it sleeps until each deadline (woken early by an update,
as a journey is), runs a no-op activity for every append (in turn) and every delivery (in the
background, one at a time, as a journey's delivery loop does), upserts the same search attributes
and takes the same updates, each of which runs a no-op append. Whatever a journey costs beyond
this is its own: deciding, folding, serialising its state and the real activities' bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

with workflow.unsafe.imports_passed_through():
    from workflows.names import AT_RISK, JOURNEY_STATE

APPEND = "append_journey_events"
DELIVER = "deliver_notifications"
TIMEOUT = timedelta(seconds=30)


class Step(BaseModel):
    """One thing the journey asked Temporal for: a timer to a deadline, an activity or an upsert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["timer", "append", "deliver", "upsert"]
    #: For a timer: its deadline, in seconds after the cohort's start.
    at: float = 0.0


class BaselineInput(BaseModel):
    """The baseline's run: the cohort's start (the clock's origin) and the journey's steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_at: datetime
    steps: list[Step]


class Script(BaseModel):
    """A journey's shape: its steps outside updates, and the updates it took (by name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[Step]
    updates: list[str]

    def count(self, kind: str) -> int:
        """How many steps of `kind`."""
        return sum(1 for s in self.steps if s.kind == kind)


@activity.defn(name="bench_baseline_append")
async def noop_append(version: int) -> int:
    """An append that stores nothing."""
    return version


@activity.defn(name="bench_baseline_deliver")
async def noop_deliver(version: int) -> int:
    """A delivery that sends nothing."""
    return version


@workflow.defn(name="BenchBaselineWorkflow")
class BaselineWorkflow:
    """A journey's timers, activities, upserts and updates, with no-op bodies."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._changed = False
        self._version = 0
        self._delivery_wanted = False
        self._delivering = False
        self._delivery_task: asyncio.Task[None] | None = None

    @workflow.run
    async def run(self, start: BaselineInput) -> int:
        """Run the steps; return how many appends ran (the journey's version, in effect)."""
        for step in start.steps:
            if step.kind == "timer":
                self._changed = False
                wake = start.start_at + timedelta(seconds=step.at)
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._changed, timeout=max(wake - workflow.now(), timedelta(milliseconds=1))
                    )
            elif step.kind == "append":
                async with self._lock:
                    await self._append()
            elif step.kind == "deliver":
                self._deliver()
            else:
                workflow.upsert_search_attributes(
                    [JOURNEY_STATE.value_set(f"v{self._version}"), AT_RISK.value_set(self._version % 2 == 0)]
                )
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._delivering)
        return self._version

    async def _append(self) -> None:
        self._version = await workflow.execute_activity(noop_append, self._version + 1, start_to_close_timeout=TIMEOUT)
        self._changed = True

    def _deliver(self) -> None:
        self._delivery_wanted = True
        if not self._delivering:
            self._delivering = True
            self._delivery_task = asyncio.create_task(self._delivery_loop())

    async def _delivery_loop(self) -> None:
        try:
            while self._delivery_wanted:
                self._delivery_wanted = False
                await workflow.execute_activity(noop_deliver, self._version, start_to_close_timeout=TIMEOUT)
        finally:
            self._delivering = False

    @workflow.update(name="decide_nomination")
    async def decide_nomination(self, command: dict[str, object]) -> int:
        """A journey's command: one append under the lock."""
        async with self._lock:
            await self._append()
        return self._version


async def script_of(handle: WorkflowHandle[object, object], start_at: datetime) -> Script:
    """The shape of a finished journey, from its history: its steps and the updates it took.

    An update's own append is left out of the steps: the baseline's update handler runs it.
    """
    steps: list[Step] = []
    updates: list[str] = []
    pending_update_appends = 0
    task_started: dict[int, datetime] = {}  # a workflow task's started event: workflow.now() in it
    task_now: dict[int, datetime] = {}  # a workflow task's completed event: the same now
    async for event in handle.fetch_history_events():
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_started[event.event_id] = event.event_time.ToDatetime().replace(tzinfo=UTC)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            started = event.workflow_task_completed_event_attributes.started_event_id
            task_now[event.event_id] = task_started[started]
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            updates.append(event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name)
            pending_update_appends += 1
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            # The deadline the journey's clock aimed at: its now when it set the timer, plus the timer.
            attributes = event.timer_started_event_attributes
            fires = (
                task_now[attributes.workflow_task_completed_event_id] + attributes.start_to_fire_timeout.ToTimedelta()
            )
            steps.append(Step(kind="timer", at=(fires - start_at).total_seconds()))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            if name == APPEND and pending_update_appends:
                pending_update_appends -= 1
            elif name == APPEND:
                steps.append(Step(kind="append"))
            elif name == DELIVER:
                steps.append(Step(kind="deliver"))
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            steps.append(Step(kind="upsert"))
    return Script(steps=steps, updates=updates)
