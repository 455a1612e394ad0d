"""Retention as a Temporal Schedule: a daily workflow that runs the retention activity (§8.7).

The worker creates the schedule at start, or updates it to the configured time, idempotently:
one schedule per task queue, overlap policy SKIP (a run still going when the next is due makes the
next one skip, never two runs at once). `talent retention run` triggers it now.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities, RetentionInput, RetentionOutput

RETENTION_TIMEOUT = timedelta(minutes=30)
RETENTION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


def retention_schedule_id(task_queue: str) -> str:
    """The retention schedule of the workers on `task_queue`."""
    return f"retention-{task_queue}"


@workflow.defn(name="Retention")
class RetentionWorkflow:
    """One retention run: the plan at the run's start, applied, recorded under the workflow id."""

    @workflow.run
    async def run(self) -> RetentionOutput:
        """Apply the retention rules as they stand at the workflow's start."""
        result: RetentionOutput = await workflow.execute_activity_method(
            RetentionActivities.apply,
            RetentionInput(now=workflow.now(), run_id=workflow.info().workflow_id),
            start_to_close_timeout=RETENTION_TIMEOUT,
            retry_policy=RETENTION_RETRY,
        )
        return result


def retention_schedule(*, task_queue: str, cron: str, time_zone: str) -> Schedule:
    """The schedule: `cron` in `time_zone` (default 03:00 Europe/Copenhagen), SKIP on overlap."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            id=f"retention-run-{task_queue}",
            task_queue=task_queue,
            execution_timeout=timedelta(hours=2),
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name=time_zone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        state=ScheduleState(note="retention per data category (docs/retention.md)"),
    )


async def ensure_retention_schedule(client: Client, *, task_queue: str, cron: str, time_zone: str) -> ScheduleHandle:
    """Create the retention schedule, or bring an existing one to the configured one (idempotent)."""
    schedule = retention_schedule(task_queue=task_queue, cron=cron, time_zone=time_zone)
    schedule_id = retention_schedule_id(task_queue)
    try:
        return await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)

        def _update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # The configured action, time and policy; the state (paused by an operator, say) stays.
            return ScheduleUpdate(
                schedule=Schedule(
                    action=schedule.action,
                    spec=schedule.spec,
                    policy=schedule.policy,
                    state=current.description.schedule.state,
                )
            )

        await handle.update(_update)
        return handle
