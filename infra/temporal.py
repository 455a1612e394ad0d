"""Temporal: the client, with the pydantic data converter, the transport's TLS and API key, tracing
when configured, and the SDK core's logs (and, for a worker, its metrics) through this process."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import TLSConfig

from infra import telemetry
from infra.settings import Settings


class TransportSettingsError(ValueError):
    """A TEMPORAL_TLS_* setting that cannot be used (a file missing or unreadable, a half pair)."""


@functools.cache
def sdk_runtime(metrics_bind_address: str | None = None) -> Runtime:
    """The Temporal runtime, with the SDK core's logs forwarded to Python logging (so structlog
    renders them like every other line) instead of printed to stdout; one per process (per address).

    With `metrics_bind_address` (host:port) the SDK's own metrics (task latencies, slots, polls,
    cache) are served in Prometheus format there; the worker's /metrics includes them.
    """
    core_level = "WARN" if logging.getLogger().getEffectiveLevel() <= logging.INFO else "ERROR"
    metrics = PrometheusConfig(bind_address=metrics_bind_address) if metrics_bind_address else None
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level=core_level, other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=metrics,
        )
    )


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        # The path is configuration, not a secret; the file's content is never quoted.
        raise TransportSettingsError(f"{setting}: cannot read {str(path)!r} ({exc.strerror or exc})") from None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The client's TLS from the TEMPORAL_TLS_* settings: a TLSConfig with the files' contents,
    True for TLS with the system's CAs (TEMPORAL_TLS, or an API key: Temporal Cloud needs TLS),
    False for plain text. A file that cannot be read, or a certificate without its key (or the
    reverse), is a TransportSettingsError naming the setting."""
    cert, key = settings.temporal_tls_cert_file, settings.temporal_tls_key_file
    if (cert is None) != (key is None):
        raise TransportSettingsError("TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE are set together (mTLS)")
    ca = settings.temporal_tls_ca_file
    if ca is None and cert is None and settings.temporal_tls_server_name is None:
        return settings.temporal_tls or settings.temporal_api_key is not None
    return TLSConfig(
        server_root_ca_cert=_read("TEMPORAL_TLS_CA_FILE", ca) if ca is not None else None,
        client_cert=_read("TEMPORAL_TLS_CERT_FILE", cert) if cert is not None else None,
        client_private_key=_read("TEMPORAL_TLS_KEY_FILE", key) if key is not None else None,
        domain=settings.temporal_tls_server_name,
    )


def connect_args(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `Client.connect` but the runtime: namespace, data converter, TLS,
    API key and (when tracing is on) the tracing interceptor. The API key is in the result as a
    plain string for the SDK: never log this dictionary."""
    interceptors: list[Interceptor] = list(telemetry.temporal_interceptors())
    return {
        "namespace": settings.temporal_namespace,
        "data_converter": pydantic_data_converter,
        "tls": tls_config(settings),
        "api_key": settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        "interceptors": interceptors,
    }


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A Temporal client with the pydantic data converter and the configured transport."""
    return await Client.connect(settings.temporal_address, runtime=runtime or sdk_runtime(), **connect_args(settings))
