"""A workflow's log lines keep the key/values of their `extra` (the journey id) through structlog."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import structlog
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from infra.logging import configure_logging


@workflow.defn(name="LogsJourneyId")
class LogsJourneyId:
    """Logs one line the way the journey workflow does."""

    @workflow.run
    async def run(self, journey_id: str) -> None:
        """Log a refusal with the journey id in `extra`."""
        workflow.logger.info("signal_refused", extra={"journey_id": journey_id, "code": "journey_paused"})


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were: the test reconfigures both."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


async def test_a_workflow_log_line_carries_the_journey_id_of_its_extra(
    time_env: WorkflowEnvironment, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt="json", level="INFO")
    task_queue = f"log-{uuid.uuid4().hex[:8]}"
    journey_id = f"j-{uuid.uuid4().hex[:8]}"

    async with Worker(
        time_env.client, task_queue=task_queue, workflows=[LogsJourneyId], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        await time_env.client.execute_workflow(
            LogsJourneyId.run, journey_id, id=f"log-{journey_id}", task_queue=task_queue
        )

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (line,) = [entry for entry in lines if entry["event"].startswith("signal_refused")]
    assert line["journey_id"] == journey_id
    assert line["code"] == "journey_paused"
    assert line["temporal_workflow"]["workflow_id"] == f"log-{journey_id}"
