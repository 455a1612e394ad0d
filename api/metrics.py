"""`GET /metrics` and the per-request metrics and server spans (pure ASGI, the outermost layer).

`/metrics` is answered here, before the request context, the routes and their authentication:
it is not access-logged, not rate-limited and not behind the API token (TALENT_METRICS_ENABLED,
on by default, turns it off; a deployment that exposes the API publicly keeps /metrics off its
proxy). The series carry route templates (`/v1/journeys/{journey_id}`), never a path: no id, no
calendar feed's secret, ever reaches a label. A write (any method but GET, HEAD and OPTIONS) on
`/v1/` counts as a command: accepted (2xx), or refused with the problem's `code` as its reason.
"""

from __future__ import annotations

import time

import asyncpg
import orjson
from opentelemetry import propagate, trace
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra import telemetry
from infra.telemetry import UNMATCHED

#: Methods that read; every other one on /v1/ is a command.
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: How much of a refusal's problem document is read for its code.
_PROBLEM_CAP = 8192


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _problem_code(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "unknown"
    code = document.get("code") if isinstance(document, dict) else None
    # The code comes from the service's own problems; anything else is not a label.
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else "unknown"


class Metrics:
    """Serves `/metrics` (when enabled) and measures every other HTTP request."""

    def __init__(self, app: ASGIApp, *, serve: bool, pool: asyncpg.Pool[asyncpg.Record] | None = None) -> None:
        self.app = app
        self.serve = serve
        #: Where the gauges (outbox, escalations) are read at scrape time.
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.serve and scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            await self._scrape(scope, send)
            return
        if telemetry.tracing_enabled():
            carrier = {k: v for k, v in Headers(scope=scope).items() if k in ("traceparent", "tracestate")}
            with telemetry.tracer().start_as_current_span(
                scope["method"],  # named by its route template once routed
                context=propagate.extract(carrier),
                kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": scope["method"]},
            ) as span:
                status = await self._measured(scope, receive, send)
                route = _route(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
            return
        await self._measured(scope, receive, send)

    async def _measured(self, scope: Scope, receive: Receive, send: Send) -> int:
        started = time.perf_counter()
        method = scope["method"]
        command = method not in _READS and scope["path"].startswith("/v1/")
        status = 500
        problem = bytearray()
        keep = False

        async def observed_send(message: Message) -> None:
            nonlocal status, keep
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                keep = command and status >= 400 and "json" in content_type
            elif message["type"] == "http.response.body" and keep and len(problem) < _PROBLEM_CAP:
                problem.extend(message.get("body", b"")[: _PROBLEM_CAP - len(problem)])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = _route(scope)
            telemetry.observe_request(method, route, status, time.perf_counter() - started)
            if command:
                name = f"{method} {route}"
                if status < 400:
                    telemetry.count_command(name, accepted=True)
                else:
                    reason = _problem_code(bytes(problem)) if problem else f"http_{status}"
                    telemetry.count_command(name, accepted=False, reason=reason)
        return status

    async def _scrape(self, scope: Scope, send: Send) -> None:
        if self.pool is not None:
            await telemetry.refresh_gauges(self.pool)
        body = telemetry.exposition()
        headers = [
            (b"content-type", telemetry.METRICS_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
