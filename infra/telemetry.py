"""Seeing it (issue 15): Prometheus metrics and OpenTelemetry traces, in one place.

Metrics live in prometheus_client's default registry, one set per process: the API serves them on
`GET /metrics` (api.metrics), a worker on TALENT_WORKER_METRICS_PORT (`serve_worker_metrics`),
together with the Temporal SDK's own. Labels hold route templates, command names, outcomes and
reasons from the service's own codes: never a path, an id or a person.

Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (`configure_tracing`): then a tracer
provider exports spans over OTLP/HTTP, the Temporal client (and the workers on it) carries
`TracingInterceptor`, and the API opens a server span per request with the caller's W3C
`traceparent` as its parent. Off, nothing is installed and nothing costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.request
from collections.abc import AsyncIterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from temporalio.contrib.opentelemetry import TracingInterceptor

from domain import events as e
from store.eventstore import AppendResult, EventStore

log = structlog.get_logger("talent.telemetry")

# -- metrics --------------------------------------------------------------------------------------

HTTP_REQUEST_SECONDS = Histogram(
    "talent_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status class",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
COMMANDS = Counter(
    "talent_commands",
    "Commands (writes) through the API: accepted, or refused with the problem's code as reason",
    ["command", "outcome", "reason"],
)
EVENTS_APPENDED = Counter("talent_events_appended", "Events this process appended to the store", ["event_type"])
OUTBOX_PENDING = Gauge("talent_outbox_pending", "Notifications waiting to be delivered")
OUTBOX_DEAD = Gauge("talent_outbox_dead", "Notifications given up on (dead letters)")
ESCALATIONS_OPEN = Gauge("talent_escalations_open", "Open escalations over all journeys")

#: The content type of `exposition()`.
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The label of a request no route matched (a 404): never its path.
UNMATCHED = "unmatched"


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ... of an HTTP status."""
    return f"{status // 100}xx"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request under its route template."""
    HTTP_REQUEST_SECONDS.labels(method, route, status_class(status)).observe(seconds)


def count_command(command: str, *, accepted: bool, reason: str = "") -> None:
    """Count one command: accepted, or refused with `reason` (a problem code such as `invalid_state`)."""
    COMMANDS.labels(command, "accepted" if accepted else "refused", "" if accepted else reason or "unknown").inc()


class ObservedEventStore(EventStore):
    """The event store, counting the events each append writes (a replayed append writes none).

    The store knows nothing of metrics; this subclass, built in `service.bootstrap`, counts them.
    """

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[e.NewEvent],
        *,
        metadata: e.EventMetadata,
        conn: Any = None,
    ) -> AppendResult:
        result = await super().append(stream_id, expected_version, events, metadata=metadata, conn=conn)
        if not result.replayed:
            for new in events[: len(result.versions)]:
                EVENTS_APPENDED.labels(new.event.type).inc()
        return result


#: Cheap reads of the read model: the pending rows have a partial index, open escalations too.
_GAUGES_SQL = """
SELECT (SELECT count(*) FROM outbox WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM outbox WHERE status = 'dead') AS dead,
       (SELECT coalesce(sum(open_escalations), 0) FROM journey_status WHERE open_escalations > 0) AS escalations
"""


async def refresh_gauges(pool: asyncpg.Pool[asyncpg.Record]) -> None:
    """Set the outbox and escalation gauges from the read model; a failed read leaves them as they were."""
    try:
        row = await pool.fetchrow(_GAUGES_SQL, timeout=2.0)
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        log.warning("metrics_gauges_unavailable", error=type(exc).__name__)
        return
    if row is not None:
        OUTBOX_PENDING.set(row["pending"])
        OUTBOX_DEAD.set(row["dead"])
        ESCALATIONS_OPEN.set(row["escalations"])


def exposition() -> bytes:
    """This process's metrics in the Prometheus text format."""
    return generate_latest(REGISTRY)


def _sdk_metrics(url: str | None) -> bytes:
    if url is None:
        return b""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - a loopback URL of our own
            body: bytes = answer.read()
            return body
    except OSError:
        return b""


class _MetricsHandler(BaseHTTPRequestHandler):
    sdk_url: str | None = None

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        body = exposition() + _sdk_metrics(self.sdk_url)
        self.send_response(200)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.asynccontextmanager
async def serve_worker_metrics(
    pool: asyncpg.Pool[asyncpg.Record],
    *,
    host: str,
    port: int,
    sdk_metrics_url: str | None = None,
    refresh_every: float = 15.0,
) -> AsyncIterator[int]:
    """A worker's `/metrics` on host:port (a thread), with the Temporal SDK's metrics read from
    `sdk_metrics_url` appended, and the gauges refreshed every `refresh_every` seconds; yields the port."""
    handler = type("WorkerMetricsHandler", (_MetricsHandler,), {"sdk_url": sdk_metrics_url})
    server = ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True)
    thread.start()

    async def refresh() -> None:
        while True:
            await refresh_gauges(pool)
            await asyncio.sleep(refresh_every)

    task = asyncio.create_task(refresh())
    log.info("worker_metrics_serving", host=host, port=server.server_address[1])
    try:
        yield int(server.server_address[1])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.shutdown()
        server.server_close()


# -- tracing --------------------------------------------------------------------------------------

_tracing: dict[str, TracerProvider] = {}


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Turn tracing on with `provider` (the service's spans and the Temporal interceptor's), or off
    with None. `configure_tracing` also makes it the global provider, for libraries' own spans."""
    if provider is None:
        _tracing.clear()
    else:
        _tracing["provider"] = provider


def configure_tracing(endpoint: str | None, service_name: str) -> bool:
    """Tracing over OTLP/HTTP when `endpoint` (OTEL_EXPORTER_OTLP_ENDPOINT) is set; whether it is on.

    The exporter reads the endpoint and the other OTEL_EXPORTER_OTLP_* variables (headers,
    timeout) from the environment itself.
    """
    if not endpoint or tracing_enabled():
        return tracing_enabled()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    use_tracer_provider(provider)
    log.info("tracing_enabled", service=service_name)
    return True


def tracing_enabled() -> bool:
    """Whether tracing is on in this process."""
    return "provider" in _tracing


def shutdown_tracing() -> None:
    """Flush and stop the exporter (at a process's end)."""
    provider = _tracing.get("provider")
    if provider is not None:
        provider.shutdown()


def tracer(name: str = "talent") -> trace.Tracer:
    """A tracer of the configured provider (a no-op one when tracing is off)."""
    provider = _tracing.get("provider")
    return provider.get_tracer(name) if provider is not None else trace.NoOpTracer()


def temporal_interceptors() -> list[TracingInterceptor]:
    """The Temporal client's (and so its workers') interceptors: tracing when it is on, else none."""
    return [TracingInterceptor(tracer("temporalio"))] if tracing_enabled() else []
