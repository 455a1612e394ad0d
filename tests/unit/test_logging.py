"""One log shape: structlog lines and stdlib lines (with their `extra` key/values) render alike."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from infra.logging import configure_logging


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


def test_a_structlog_line_and_a_stdlib_line_have_one_shape(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt="json", level="INFO")

    structlog.get_logger("talent.test").info("track_submitted", journey_id="j-1")
    logging.getLogger("talent.stdlib").info("track_submitted", extra={"journey_id": "j-2"})

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [(entry["event"], entry["journey_id"]) for entry in lines] == [
        ("track_submitted", "j-1"),
        ("track_submitted", "j-2"),
    ]
    assert all({"timestamp", "level", "logger"} <= entry.keys() for entry in lines)
