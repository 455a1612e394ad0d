"""Temporal: the client, with the pydantic data converter and the SDK core's logs through Python logging."""

from __future__ import annotations

import functools
import logging

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from infra.settings import Settings


@functools.cache
def sdk_runtime() -> Runtime:
    """The Temporal runtime, with the SDK core's logs forwarded to Python logging (so structlog
    renders them like every other line) instead of printed to stdout; one per process."""
    core_level = "WARN" if logging.getLogger().getEffectiveLevel() <= logging.INFO else "ERROR"
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level=core_level, other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )


async def connect(settings: Settings) -> Client:
    """A Temporal client with the pydantic data converter."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=sdk_runtime(),
    )
