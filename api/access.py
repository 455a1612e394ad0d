"""The access log's request side (PRODUCT §8.7): a collector per request and the one place that writes its row.

`AccessLogMiddleware` (pure ASGI) gives every request a `Touched` collector (a context variable,
so route functions, dependencies, dashboard views and the presenter reach it without passing the
request along). Whoever learns who is calling says so (`identify`: the API's bearer-token
dependency, the dashboard's session, a calendar feed's secret); handlers add the journeys and
people they read or changed (`touched`). The path's own `journey_id` and `person_id` count
without being named, and the INSERT adds each journey's talent and nearest leader from the read
model (`store.access_log`).

When the response starts, before its body leaves, the middleware writes one row: actor, role,
channel, the route's template (never the path: a calendar feed's path is its secret), the ids,
the request's correlation id (a hash of a caller's own value) and the status. If that write
fails the caller gets a 503 problem instead, without the body. A read's row is committed
asynchronously (no wait for the WAL flush; a command's row is durable): see `store.access_log`.
A request nobody was identified in (health, sign-in, static files, a bad token) writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from api.problems import problem_response, unavailable
from store.access_log import AccessLog, Channel

log = structlog.get_logger("talent.api")

#: Paths never logged: they read no one's data (sign-in verifies a token, it reads no journey).
NOT_LOGGED = ("/healthz", "/readyz", "/metrics", "/dashboard/static/", "/dashboard/login", "/dashboard/oidc/")
#: Methods that only read: their rows are committed without waiting for the WAL flush (a
#: PostgreSQL crash may lose the last few hundred ms of them; `store.access_log`). Every other
#: method may change something, and its row is as durable as the change.
READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Path parameters that name a journey or a person.
_ID_PARAMS = {"journey_id": "journeys", "person_id": "people"}
#: An id worth recording (a malformed one in a path is refused anyway and would only add noise).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


@dataclass
class Touched:
    """Who is calling, and the journeys and people the request involved."""

    actor_id: str | None = None
    role: str | None = None
    journeys: set[str] = field(default_factory=set)
    people: set[str] = field(default_factory=set)


_current: ContextVar[Touched | None] = ContextVar("talent_access", default=None)


def identify(principal: Principal) -> None:
    """The request's caller: their stable id and role."""
    identify_as(principal.token_id, principal.role)


def identify_as(actor_id: str, role: str) -> None:
    """The request's caller by id and role (a calendar feed's owner, who sends no token)."""
    found = _current.get()
    if found is not None:
        found.actor_id, found.role = actor_id, role


def touched(*, journeys: Iterable[str | None] = (), people: Iterable[str | None] = ()) -> None:
    """The request read or changed these journeys and people (no-op outside a logged request)."""
    found = _current.get()
    if found is None:
        return
    found.journeys.update(j for j in journeys if j and _ID.match(j))
    found.people.update(p for p in people if p and _ID.match(p))


def channel_of(path: str) -> Channel:
    """Through what the request came."""
    if path.startswith("/dashboard"):
        return "dashboard"
    if path.startswith("/calendar/"):
        return "calendar"
    if path.startswith("/v1/feed"):
        return "feed"
    return "api"


class AccessLogMiddleware:
    """Writes each identified request's access row before its response leaves (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NOT_LOGGED):
            await self.app(scope, receive, send)
            return
        collected = Touched()
        token = _current.set(collected)
        started = False
        refused = False

        async def logged_send(message: Message) -> None:
            nonlocal started, refused
            if refused:
                return  # the original response's body: never sent after the 503
            if message["type"] == "http.response.start":
                started = True
                try:
                    await self._write(scope, collected, str(message["status"]))
                except Exception as exc:
                    log.error("access_log_failed", error=type(exc).__name__)
                    refused = True
                    # The log lives in the database: to the caller, the database is unavailable.
                    await problem_response(unavailable("database"))(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        except Exception:
            if not started:
                try:
                    await self._write(scope, collected, "500")
                except Exception as exc:
                    log.error("access_log_failed", error=type(exc).__name__)
            raise
        finally:
            _current.reset(token)

    @staticmethod
    async def _write(scope: Scope, collected: Touched, outcome: str) -> None:
        if collected.actor_id is None or collected.role is None:
            return
        route = scope.get("route")
        template = getattr(route, "path", None) or scope["path"]
        params = scope.get("path_params") or {}
        for name, kind in _ID_PARAMS.items():
            value = params.get(name)
            if isinstance(value, str) and _ID.match(value):
                getattr(collected, kind).add(value)
        await AccessLog(scope["app"].state.resources.pool).record(
            actor_id=collected.actor_id,
            role=collected.role,
            channel=channel_of(scope["path"]),
            action=f"{scope['method']} {template}",
            journey_ids=collected.journeys,
            person_ids=collected.people,
            correlation_id=scope.get("state", {}).get("correlation_id"),
            outcome=outcome,
            durable=scope["method"] not in READS,
        )
