"""The benchmark's baseline: a workflow that runs N no-op activities in a row (Temporal's ceiling)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(i: int) -> int:
    """Does nothing: the cost of an activity round trip through Temporal."""
    return i


@workflow.defn(name="BenchTrivialWorkflow")
class TrivialWorkflow:
    """Runs `count` no-op activities one after another, as a journey runs its appends."""

    @workflow.run
    async def run(self, count: int) -> int:
        """Execute the activities; return how many ran."""
        for i in range(count):
            await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=30))
        return count
