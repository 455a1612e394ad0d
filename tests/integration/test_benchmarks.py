"""Benchmarks are not tests, but each must keep working: CI runs every one once at a small size
(the README says how to run them at full size). The chaos, batch and worker-kill benchmarks run in
their own tests (test_chaos.py, test_import_cli.py, test_worker_scale.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SMALL: dict[str, list[str]] = {
    "store_bench": ["bench/store_bench.py", "--rounds", "1", "--appends", "40"],
    "api_bench": ["bench/api_bench.py", "--journeys", "4", "--requests", "40", "--commands", "8"],
    "workflow_bench": ["bench/workflow_bench.py", "--journeys", "4", "--rounds", "1", "--scale", "0.002"],
    "worker_scale": ["bench/worker_scale.py", "memory", "--open", "30", "--step", "15", "--cache", "10"],
    "command_bench": ["bench/command_bench.py", "--journeys", "4", "--rounds", "1", "--per-round", "8"],
    "scale": ["bench/scale.py", "--journeys", "200", "--requests", "30", "--feed-events", "2000"],
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_benchmark_runs_at_a_small_size_and_prints_its_figures(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, *SMALL[name]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    # Every benchmark prints figures: at least one number beside a name.
    assert any(ch.isdigit() for ch in done.stdout), done.stdout[-2000:]
