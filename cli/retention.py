"""`talent retention plan|run`: what the retention rules would delete now, and a run of them now."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from temporalio.client import ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.retention import rules_from
from cli.ops import Refused
from infra.postgres import open_pool
from infra.settings import Settings
from service.bootstrap import temporal_client
from store.retention import Retention, format_plan
from store.vault import PeopleVault
from workflows.retention import retention_schedule_id


def parse_at(value: str) -> datetime:
    """`--at`: an ISO 8601 instant with its offset (`2027-06-01T03:00+02:00`)."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Refused(f"--at: not an ISO 8601 instant: {value!r}") from exc
    if at.tzinfo is None:
        raise Refused(f"--at: give the instant with its offset, e.g. {value}+01:00")
    return at


async def plan(settings: Settings, at: str | None, *, as_json: bool) -> int:
    """Print what a retention run at `at` (default: now) would delete, and by which rule. Deletes nothing."""
    now = parse_at(at) if at else datetime.now(UTC)
    pool = await open_pool(settings)
    try:
        items = await Retention(pool, PeopleVault(pool, settings.master_key()), rules_from(settings)).plan(now)
    finally:
        await pool.close()
    if as_json:
        print(json.dumps({"at": now.isoformat(), "items": [i.as_json() for i in items]}, indent=2))
    else:
        print(f"retention plan at {now.isoformat(timespec='seconds')}")
        print(format_plan(items))
    return 0


async def run(settings: Settings) -> int:
    """Trigger the retention schedule now (a run still going makes this one skip)."""
    client = await temporal_client(settings)
    schedule_id = retention_schedule_id(settings.task_queue)
    try:
        await client.get_schedule_handle(schedule_id).trigger(overlap=ScheduleOverlapPolicy.SKIP)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Refused(f"no retention schedule {schedule_id}: start a worker (`talent worker`) first") from exc
        raise
    print(f"triggered the retention schedule {schedule_id}; the run is recorded in retention_ledger")
    return 0
