"""The HTTP API (v1): `create_app()` builds it around resources its owner made."""

from __future__ import annotations

import hashlib
import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import dashboard, problems
from api.access import AccessLogMiddleware
from api.deps import Resources
from api.metrics import Metrics
from api.models import is_plain
from api.problems import Problem, problem_response
from api.ratelimit import RateLimits
from api.routers import (
    audit,
    batch,
    calendar,
    catalog,
    clarity,
    cohorts,
    escalations,
    feed,
    health,
    journeys,
    kpis,
    people,
    programme_clarity,
    vacancies,
)

log = structlog.get_logger("talent.api")


def create_app(resources: Resources) -> FastAPI:
    """The API; `resources` (pool, store, vault, Temporal client, authenticator) are the caller's to close."""
    app = FastAPI(
        title="talent-journey",
        version="1.0.0",
        description="Journeys of the Talent Ny Leder programme: nominations, sessions, tracks, mentor meetings, "
        "escalations and outcomes.",
    )
    app.state.resources = resources
    problems.install(app)
    app.include_router(health.router)
    routers = (
        catalog.router,
        cohorts.router,
        batch.router,
        journeys.router,
        escalations.router,
        people.router,
        kpis.router,
        vacancies.router,
        clarity.router,
        programme_clarity.router,
    )
    for router in (*routers, feed.router, audit.router):
        app.include_router(router, responses=problems.RESPONSES)
    # iCalendar feeds and the dashboard answer in their own formats (text/calendar, HTML).
    app.include_router(calendar.router)
    app.include_router(dashboard.router)
    app.state.rate_limits = RateLimits.from_settings(resources.settings)
    # Inside RequestContext: the access log's row carries the correlation id it sets (§8.7).
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(
        RequestContext,
        limit=resources.settings.max_body_bytes,
        larger={"/v1/journeys/batch": resources.settings.max_batch_body_bytes},
    )
    # Outermost: /metrics before the request log and the routes; every request measured and traced.
    app.add_middleware(Metrics, serve=resources.settings.metrics_enabled, pool=resources.pool)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return problem_response(Problem(500, "Internal error", "an unexpected error occurred", code="internal"))

    return app


def correlation_id(supplied: str | None) -> str:
    """The id a request's log lines, events and Temporal calls carry.

    A caller's `X-Correlation-Id` is their free choice and may name a person (an e-mail, an
    employee number): it is echoed back as sent, but only its hash is kept anywhere, so the
    caller's value still finds the request (hash it the same way) and no log holds it.
    """
    if not supplied:
        return uuid.uuid4().hex
    return "h" + hashlib.sha256(supplied.encode()).hexdigest()[:31]


class _TooLarge(Exception):
    """The body passed the cap while it was being read."""


class RequestContext:
    """A correlation id on every log line, one request log line, and the body cap (pure ASGI).

    The cap is kept while the body arrives: a declared Content-Length over it is refused before
    anything is read, and a streamed (chunked) body is counted chunk by chunk and refused as soon
    as it passes the cap, so at most the cap plus one chunk is ever read.
    """

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        #: Paths with a larger cap than `limit` (the bulk enrolment's 1,000 rows).
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        supplied = headers.get("x-correlation-id")
        correlation = correlation_id(supplied)
        scope.setdefault("state", {})["correlation_id"] = correlation
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation)
        echoed = supplied or correlation
        if supplied is not None and (not supplied or len(supplied) > 200 or not is_plain(supplied)):
            problem = Problem(
                422,
                "Invalid request",
                "X-Correlation-Id: at most 200 characters, no control characters or bidirectional controls",
                code="invalid_correlation_id",
            )
            response = problem_response(problem)
            response.headers["X-Correlation-Id"] = correlation
            await response(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.limit)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._too_large(scope, receive, send, limit)
            return

        received = 0
        over = False
        started = False
        status = 500

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal started, status
            if over and not started:
                return  # whatever the app answers to the failed read, the answer is 413 (below)
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message)["X-Correlation-Id"] = echoed
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        except Exception:
            if not (over and not started):
                raise
        if over and not started:
            await self._too_large(scope, receive, send, limit)
            return
        # The route's template, not the path: a calendar feed's path is its secret.
        route = scope.get("route")
        path = getattr(route, "path", None) or scope["path"]
        log.info("request", method=scope["method"], path=path, status=status)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        log.info("request_too_large", method=scope["method"], limit=limit)
        detail = f"the body exceeds {limit} bytes"
        response = problem_response(Problem(413, "Too large", detail, code="too_large"))
        # Echoed as the caller sent it (only its hash is logged).
        response.headers["X-Correlation-Id"] = (
            Headers(scope=scope).get("x-correlation-id") or scope["state"]["correlation_id"]
        )
        await response(scope, receive, send)
