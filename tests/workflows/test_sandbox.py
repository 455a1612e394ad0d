"""The worker's sandbox still refuses the clock, randomness and files, with the domain passed through."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.sandboxed import TriesTheNonDeterministic
from workers.worker import PASSTHROUGH_MODULES, workflow_runner


async def test_the_workers_sandbox_refuses_non_deterministic_calls(time_env: WorkflowEnvironment) -> None:
    task_queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=[TriesTheNonDeterministic], workflow_runner=workflow_runner()
    ):
        outcomes = await time_env.client.execute_workflow(
            TriesTheNonDeterministic.run, id=f"sandbox-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )

    assert outcomes["clock"].startswith("refused: datetime.datetime.now"), outcomes
    assert outcomes["random"].startswith("refused: random.random"), outcomes
    assert outcomes["file"].startswith("refused: "), outcomes
    # The domain runs passed through (loaded once, not per run) and answers as outside.
    assert outcomes["domain"] == "allowed: True"


def test_the_workflow_modules_themselves_are_not_passed_through() -> None:
    # Passed through, a module's own calls escape the sandbox: only pure libraries may be.
    own = ("workflows", "activities", "service", "store", "infra", "api", "workers")
    assert not [name for name in PASSTHROUGH_MODULES if name.split(".")[0] in own]
