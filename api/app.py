"""The HTTP API (v1): `create_app()` builds it around resources its owner made."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api import dashboard, problems
from api.deps import Resources
from api.problems import Problem, problem_response
from api.routers import calendar, catalog, escalations, feed, health, journeys, kpis, people

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
    for router in (catalog.router, journeys.router, escalations.router, people.router, kpis.router, feed.router):
        app.include_router(router, responses=problems.RESPONSES)
    # iCalendar feeds and the dashboard answer in their own formats (text/calendar, HTML).
    app.include_router(calendar.router)
    app.include_router(dashboard.router)
    limit = resources.settings.max_body_bytes

    @app.middleware("http")
    async def context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """A correlation id on every log line; bodies over the cap refused before they are read."""
        correlation = request.headers.get("X-Correlation-Id") or uuid.uuid4().hex
        request.state.correlation_id = correlation
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return problem_response(Problem(413, "Too large", f"the body exceeds {limit} bytes", code="too_large"))
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
            if len(body) > limit:
                return problem_response(Problem(413, "Too large", f"the body exceeds {limit} bytes", code="too_large"))
        response = await call_next(request)
        response.headers["X-Correlation-Id"] = correlation
        # The route's template, not the path: a calendar feed's path is its secret.
        route = request.scope.get("route")
        path = getattr(route, "path", None) or request.url.path
        log.info("request", method=request.method, path=path, status=response.status_code)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return problem_response(Problem(500, "Internal error", "an unexpected error occurred", code="internal"))

    return app
