"""Playing the scripts: every scripted command sent to its journey's workflow, in server time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from temporalio.testing import WorkflowEnvironment

from cli.simulate.script import COORDINATOR, Pace, Scenario, nomination, plan
from domain import commands as c
from domain.errors import DomainError
from domain.events import RecordedEvent
from domain.programme import Cohort, Programme
from domain.status import JourneyStatus
from store.eventstore import EventStore
from workflows.client import JourneyHandle, execute, start_journey
from workflows.journey import CommandResult

#: Wall-clock limit: an update that takes longer means a stuck workflow task.
UPDATE_TIMEOUT = 30.0


class SimulationError(Exception):
    """The simulation cannot run (no test server binary, ...): a message for the user."""


@dataclass(order=True)
class _Step:
    when: datetime
    seq: int
    scenario: Scenario = field(compare=False)
    command: c.Command = field(compare=False)


async def send(handle: JourneyHandle, command: c.Command) -> CommandResult:
    """Issue a command as its workflow update (the journey client's table); return the update's result."""
    return await execute(handle, command)


@dataclass
class Outcome:
    """What one scripted journey did."""

    scenario: Scenario
    status: JourneyStatus
    events: list[RecordedEvent]
    refused: list[str]


async def drive(
    env: WorkflowEnvironment,
    store: EventStore,
    programme: Programme,
    cohort: Cohort,
    cast: Sequence[Scenario],
    pace: Pace,
    *,
    task_queue: str,
) -> tuple[dict[str, JourneyHandle], dict[str, list[str]]]:
    """Nominate every scenario's talent now, then play the scripts in server time, in one timeline."""
    handles: dict[str, JourneyHandle] = {}
    refused: dict[str, list[str]] = {s.name: [] for s in cast}
    queue: list[_Step] = []
    seq = itertools.count()

    def push(scenario: Scenario, steps: Iterable[tuple[datetime, c.Command]]) -> None:
        for when, command in steps:
            heapq.heappush(queue, _Step(when, next(seq), scenario, command))

    start = await env.get_current_time()
    for scenario in cast:
        handles[scenario.name] = await start_journey(
            env.client, nomination(scenario, programme, cohort), task_queue=task_queue
        )
        approves_at = scenario.approves_at or start + pace.day / 24
        push(scenario, [(approves_at, c.DecideNomination(**COORDINATOR, decision="approve"))])
    while queue:
        step = heapq.heappop(queue)
        now = await env.get_current_time()
        if step.when > now:
            await env.sleep(step.when - now)
        try:
            await asyncio.wait_for(send(handles[step.scenario.name], step.command), UPDATE_TIMEOUT)
        except TimeoutError as exc:
            raise SimulationError(
                f"{step.command.type} on journey {step.scenario.journey_id} got no answer in {UPDATE_TIMEOUT:.0f} s: "
                "a failing workflow task? (see the worker's log on stderr)"
            ) from exc
        except DomainError as exc:
            code = exc.code
            local = step.when.astimezone(programme.working_calendar.tz)
            refused[step.scenario.name].append(f"{local:{pace.time_format}}  {step.command.type} refused ({code})")
            continue
        if isinstance(step.command, c.DecideNomination | c.ResumeJourney):
            # The update returned after its events were stored: the store has the journey as it is.
            state = await store.load(step.scenario.journey_id)
            assert state is not None
            push(step.scenario, plan(step.scenario, state, pace, await env.get_current_time()))
    return handles, refused
