"""Helpers for the workflow tests: start journeys on the test server, drive them in server time, read the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeAlias, TypeVar

import asyncpg
import holidays
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain import commands as c
from domain.programme import Cohort, Programme
from domain.status import JourneyStatus, MilestoneView
from tests.support import COORD, CPH, LEADER, TALENT, nominate
from workflows.client import start_journey, update_for
from workflows.journey import CommandResult, TalentJourneyWorkflow

Handle = WorkflowHandle[TalentJourneyWorkflow, JourneyStatus]
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
T = TypeVar("T")

#: How long (real time) a command may take before a test gives up on it.
COMMAND_TIMEOUT = 15.0

#: The reference programme's deadline time and the Danish public holidays, for counting by hand.
DEADLINE = time(16, 0)
DK_HOLIDAYS = holidays.country_holidays("DK", categories=("public",))


# -- starting and commanding -----------------------------------------------------------------------


class Journeys:
    """Starts journeys on a test worker and terminates, at teardown, those a test left running."""

    def __init__(self, env: WorkflowEnvironment, worker: Worker) -> None:
        self.env = env
        self.worker = worker
        self._handles: list[Handle] = []

    async def start(
        self,
        journey_id: str,
        programme: Programme,
        cohort: Cohort,
        *,
        continue_as_new_after: int | None = None,
        **overrides: Any,
    ) -> Handle:
        """Nominate (p-talent by p-leader, p-boss above) and start the journey's workflow."""
        handle = await start_journey(
            self.env.client,
            nominate(programme, cohort, journey_id=journey_id, **overrides),
            task_queue=self.worker.task_queue,
            continue_as_new_after=continue_as_new_after,
        )
        self._handles.append(handle)
        return handle

    async def close(self) -> None:
        """End what a test left running (`end_journey`)."""
        for handle in self._handles:
            await end_journey(handle)


async def end_journey(handle: WorkflowHandle[Any, Any]) -> None:
    """End a journey a test left running, by withdrawing the talent (terminating only if that is refused).

    Work left pending on a queue whose worker has gone (a timer that fires later) would lock the
    test server's clock, and so would terminating a run (a known leak of the Java test server's
    time-skipping lock): every later test's time skipping would stall in real time.
    """
    described = await eventually(handle.describe, _idle)
    if described.status != WorkflowExecutionStatus.RUNNING:
        return
    try:
        await send(handle, c.WithdrawTalent(**COORD, reason_ref="test-finished"))
    except WorkflowUpdateFailedError:
        await handle.terminate("test finished")
    else:
        await handle.result()


def _idle(described: WorkflowExecutionDescription) -> bool:
    raw = described.raw_description
    return not raw.pending_activities and not raw.HasField("pending_workflow_task")


async def send(handle: Handle, command: c.Command, *, update_id: str | None = None) -> CommandResult:
    """Send a command as its update (the journey client's table), raw: a refusal is Temporal's failure.

    The workflow tests look at the failure the workflow raises (`WorkflowUpdateFailedError` whose
    cause's type is the domain's code); the client's `execute` turns it into a `DomainError`.
    """
    # A bounded wait: a workflow task that keeps failing would otherwise leave the update pending for ever.
    result: object = await asyncio.wait_for(
        handle.execute_update(update_for(command), command, id=update_id), timeout=COMMAND_TIMEOUT
    )
    assert isinstance(result, CommandResult)
    return result


async def approve(handle: Handle) -> CommandResult:
    """The coordinator approves the nomination."""
    return await send(handle, c.DecideNomination(**COORD, decision="approve"))


async def status(handle: Handle) -> JourneyStatus:
    """The workflow's status query; retried while the nomination is still being stored."""
    for _ in range(200):
        try:
            return await handle.query(TalentJourneyWorkflow.status)
        except WorkflowQueryFailedError:
            await asyncio.sleep(0.02)
    return await handle.query(TalentJourneyWorkflow.status)


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, seconds: float = 10.0) -> T:
    """Probe until `ok` (in real time: the test server's clock does not skip meanwhile)."""
    deadline = asyncio.get_running_loop().time() + seconds
    value = await probe()
    while not ok(value) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
        value = await probe()
    return value


async def accepted_update_ids(handle: Handle) -> set[str]:
    """Ids of the updates the workflow's history records as accepted."""
    history = await handle.fetch_history()
    return {
        ev.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for ev in history.events
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    }


# -- server time -----------------------------------------------------------------------------------


async def advance_to(env: WorkflowEnvironment, when: datetime) -> None:
    """Skip the server's clock forward to `when` (timers due meanwhile fire on the way)."""
    gap = when - await env.get_current_time()
    if gap > timedelta(0):
        await env.sleep(gap)


def local(at: datetime) -> datetime:
    """`at` on Copenhagen wall-clock time."""
    return at.astimezone(CPH)


def parse_time(value: Any) -> datetime:
    """A timestamp from stored event data."""
    assert isinstance(value, str)
    return datetime.fromisoformat(value)


def is_working_day(day: date) -> bool:
    """Monday to Friday, not a Danish public holiday (counted here by hand, not by domain.calendar)."""
    return day.weekday() < 5 and day not in DK_HOLIDAYS


def nth_working_day(day: date, n: int) -> date:
    """The n-th working day after `day` (n = 0: `day` itself if it is one, else the next)."""
    while n == 0 and not is_working_day(day):
        day += timedelta(days=1)
    while n > 0:
        day += timedelta(days=1)
        n -= is_working_day(day)
    return day


def working_days_later(at: datetime, n: int) -> datetime:
    """A working-day deadline: 16:00 on the n-th working day after `at`, never before `at`."""
    start = local(at)
    due = datetime.combine(nth_working_day(start.date(), n), DEADLINE, tzinfo=CPH)
    if due < start:
        due = datetime.combine(nth_working_day(start.date(), n + 1), DEADLINE, tzinfo=CPH)
    return due


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the Meeus/Jones/Butcher algorithm)."""
    a, b, cc = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(cc, 4)
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday) // 451
    month, day = divmod(h + weekday - 7 * m + 114, 31)
    return date(year, month, day + 1)


def milestone(status_: JourneyStatus, key: str) -> MilestoneView:
    """A milestone of the status view by key."""
    return next(m for m in status_.milestones if m.key == key)


# -- the event store ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A stored event of a journey's stream, as the tests read it back."""

    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    text: str


async def stored_events(pool: Pool, journey_id: str) -> list[Stored]:
    """The journey's stream `journey-<id>` in version order."""
    rows = await pool.fetch(
        "SELECT stream_version, event_type, data::text AS data, metadata::text AS metadata"
        " FROM events WHERE stream_id = $1 ORDER BY stream_version",
        f"journey-{journey_id}",
    )
    return [
        Stored(
            version=r["stream_version"],
            type=r["event_type"],
            data=json.loads(r["data"]),
            metadata=json.loads(r["metadata"]),
            text=r["data"],
        )
        for r in rows
    ]


def assert_contiguous(events: list[Stored]) -> None:
    """Versions run 1..N without a gap."""
    assert [ev.version for ev in events] == list(range(1, len(events) + 1))


def types(events: Iterable[Stored]) -> list[str]:
    """The event types, in order."""
    return [ev.type for ev in events]


def of_type(events: Iterable[Stored], *wanted: str) -> list[Stored]:
    """The events of some types."""
    return [ev for ev in events if ev.type in wanted]


def about(events: Iterable[Stored], key: str, *wanted: str) -> list[Stored]:
    """The events about one milestone (optionally of some types)."""
    return [ev for ev in events if ev.data.get("milestone") == key and (not wanted or ev.type in wanted)]


def rungs_raised(events: Iterable[Stored], key: str) -> list[int]:
    """The rungs raised for a milestone, in order."""
    return [ev.data["rung"] for ev in about(events, key, "EscalationRaised")]


# -- a journey on track --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """When, relative to its time, each item of an on-track journey is done."""

    attend_after: timedelta
    submit_before: timedelta
    sign_off_after: timedelta
    meet_before: timedelta


REFERENCE_PACE = Pace(timedelta(hours=3), timedelta(days=2), timedelta(hours=1), timedelta(days=1))
COMPRESSED_PACE = Pace(timedelta(seconds=5), timedelta(seconds=20), timedelta(seconds=10), timedelta(seconds=10))


def on_track(cohort: Cohort, plan: JourneyStatus, pace: Pace) -> list[tuple[datetime, c.Command]]:
    """Attend every session, submit and sign off every track, hold every meeting, all on time."""
    agenda: list[tuple[datetime, c.Command]] = [
        (s.starts_at + pace.attend_after, c.RecordAttendance(**COORD, session_key=s.key, status="attended"))
        for s in cohort.sessions
    ]
    for m in plan.milestones:
        if m.kind == "track":
            key = m.key.removeprefix("track:")
            submitted = m.due_at - pace.submit_before
            agenda.append((submitted, c.SubmitTrack(**TALENT, track_key=key, reflection_ref=f"r-{key}")))
            agenda.append(
                (submitted + pace.sign_off_after, c.SignOffTrack(**LEADER, track_key=key, decision="approve"))
            )
        elif m.kind == "mentor_meeting":
            held = m.due_at - pace.meet_before
            agenda.append((held, c.LogMentorMeeting(**LEADER, held_on=local(held).date())))
    return sorted(agenda, key=lambda item: item[0])


async def drive(env: WorkflowEnvironment, handle: Handle, agenda: list[tuple[datetime, c.Command]]) -> None:
    """Send each command at its time in server time."""
    for when, command in sorted(agenda, key=lambda item: item[0]):
        await advance_to(env, when)
        await send(handle, command)
