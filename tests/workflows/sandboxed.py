"""A workflow that tries what the sandbox must refuse: imported inside the sandbox by `test_sandbox`."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime

from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

with workflow.unsafe.imports_passed_through():
    from domain.calendar import danish_holidays


@workflow.defn(name="TriesTheNonDeterministic")
class TriesTheNonDeterministic:
    """Calls the clock, the random generator and the file system; answers what the sandbox refused."""

    @workflow.run
    async def run(self) -> dict[str, str]:
        """Each attempt's outcome: the refused name, or `allowed`; and a passed-through domain call."""
        attempts: dict[str, Callable[[], object]] = {
            "clock": datetime.now,
            "random": random.random,
            "file": lambda: open(__file__, encoding="utf-8").read(),  # noqa: SIM115
            "domain": lambda: date(2026, 12, 25) in danish_holidays(),
        }
        outcomes: dict[str, str] = {}
        for name, attempt in attempts.items():
            try:
                outcomes[name] = f"allowed: {attempt()}"
            except RestrictedWorkflowAccessError as refused:
                outcomes[name] = f"refused: {refused.qualified_name}"
        return outcomes
