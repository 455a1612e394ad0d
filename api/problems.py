"""Errors as RFC 9457 `application/problem+json`, mapped to HTTP in this one place."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import DomainError, ProgrammeInvalid
from service.errors import (
    JourneyEnded,
    JourneyExists,
    LeaderIsTalent,
    NotFound,
    NotInCohort,
    PersonErased,
    ServiceError,
    UnknownCohort,
    UnknownProgramme,
    UnknownSession,
)
from store.catalog import CatalogConflict
from workflows.client import refusal

PROBLEM = "application/problem+json"
log = structlog.get_logger("talent.api")
#: Temporal answers that mean "not now": the caller should retry later.
_UNAVAILABLE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED})
#: Domain refusal kinds and the HTTP status each means.
KIND_STATUS = {"conflict": 409, "invalid": 422, "forbidden": 403, "not_found": 404}
#: The application's refusals (`service.errors`, the stores' own): the HTTP status and title of
#: each; the detail is the error's message, the code its stable `code`.
ERROR_STATUS: dict[type[Exception], tuple[int, str]] = {
    NotFound: (404, "Not found"),
    JourneyEnded: (409, "Journey closed"),
    JourneyExists: (409, "Journey exists"),
    UnknownCohort: (422, "Invalid request"),
    LeaderIsTalent: (422, "Invalid request"),
    UnknownSession: (404, "Not found"),
    NotInCohort: (404, "Not found"),
    UnknownProgramme: (422, "Unknown programme"),
    CatalogConflict: (409, "Already exists"),
    # A free text for an erased person cannot be stored: nothing is written.
    PersonErased: (409, "Person erased"),
}


class ProblemDetails(BaseModel):
    """The body of every error response, for the OpenAPI: RFC 9457 fields and the API's `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str


#: The problem responses of the /v1 operations, declared in the OpenAPI (the 422 replaces FastAPI's default).
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {PROBLEM: {"schema": ProblemDetails.model_json_schema()}}}
    for status, description in {
        400: "the body cannot be decoded",
        401: "no or an invalid bearer token",
        403: "the caller's role may not do this",
        404: "unknown, or not the caller's to see",
        409: "a conflict with the current state: the journey refuses the command, or the resource exists",
        413: "the body is too large",
        422: "the request or the command is invalid",
        429: "a rate limit is spent; retry after Retry-After",
        503: "a dependency (database, Temporal, JWKS) is unreachable; retry after Retry-After",
    }.items()
}


class Problem(Exception):
    """An error the API answers with, as problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        code: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}


def problem_response(p: Problem) -> JSONResponse:
    """The problem as a response."""
    body = {
        "type": f"https://talent-journey.example/problems/{p.code}",
        "title": p.title,
        "status": p.status,
        "detail": p.detail,
        "code": p.code,
        **p.extra,
    }
    return JSONResponse(body, status_code=p.status, media_type=PROBLEM, headers=p.headers)


def not_found(what: str) -> Problem:
    """404: unknown, or not yours to see (never tell which)."""
    return Problem(404, "Not found", f"{what} not found", code="not_found")


def unavailable(dependency: str) -> Problem:
    """503 with Retry-After while a dependency is down."""
    return Problem(
        503,
        "Service unavailable",
        f"{dependency} is unreachable; try again shortly",
        code="unavailable",
        headers={"Retry-After": "5"},
        extra={"dependency": dependency},
    )


#: asyncpg's `InterfaceError` texts that mean the connection is gone (PostgreSQL crashed, restarted or
#: cut it): the pool drops it, and a new one works once the server is back. Other `InterfaceError`s
#: (an operation already in progress, a misused prepared statement) are bugs, answered 500.
_CONNECTION_LOST = (
    "connection is closed",
    "connection was closed",
    "connection has been released back to the pool",
)
#: The Temporal SDK's texts (status UNKNOWN) for a server it cannot reach at all, as while it restarts.
_TEMPORAL_UNREACHABLE = ("transport error", "tcp connect error", "connection refused", "broken pipe")


def connection_lost(error: BaseException) -> bool:
    """Whether a database error means only that the connection was lost (so: 503, retry)."""
    if isinstance(error, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
        return True
    if isinstance(error, asyncpg.InterfaceError) and not isinstance(error, asyncpg.DataError):
        return any(text in str(error) for text in _CONNECTION_LOST)
    return False


def _temporal_unreachable(error: RPCError) -> bool:
    return error.status == RPCStatusCode.UNKNOWN and any(t in error.message.lower() for t in _TEMPORAL_UNREACHABLE)


def from_domain(error: DomainError) -> Problem:
    """A domain refusal: its kind decides the status, its code travels along."""
    return Problem(KIND_STATUS.get(error.kind, 409), "Command refused", error.message, code=error.code)


def from_error(error: ServiceError | UnknownProgramme | CatalogConflict | PersonErased) -> Problem:
    """An application refusal (`ERROR_STATUS`): its code travels along."""
    status, title = next(
        (found for kind, found in ERROR_STATUS.items() if isinstance(error, kind)), (409, "Request refused")
    )
    detail = error.message if isinstance(error, ServiceError) else str(error)
    if isinstance(error, PersonErased):
        detail = "the person's data was erased"  # never the person's id in an answer
    return Problem(status, title, detail, code=error.code)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem_response(from_domain(exc))

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update(_: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        return problem_response(from_domain(refusal(exc)))

    for application_error in (ServiceError, PersonErased, CatalogConflict, UnknownProgramme):

        @app.exception_handler(application_error)
        async def _application(_: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, ServiceError | PersonErased | CatalogConflict | UnknownProgramme)
            return problem_response(from_error(exc))

    @app.exception_handler(ProgrammeInvalid)
    async def _invalid(_: Request, exc: ProgrammeInvalid) -> JSONResponse:
        return problem_response(
            Problem(
                422,
                "Invalid definition",
                "; ".join(exc.errors),
                code="invalid_definition",
                extra={"errors": exc.errors},
            )
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(
            Problem(422, "Invalid request", detail, code="invalid_request", extra={"errors": errors})
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        headers = dict(exc.headers or {})
        return problem_response(
            Problem(
                exc.status_code,
                str(exc.detail),
                str(exc.detail),
                code=codes.get(exc.status_code, "http_error"),
                headers=headers,
            )
        )

    @app.exception_handler(asyncpg.DataError)
    async def _bad_value(_: Request, __: Exception) -> JSONResponse:
        # PostgreSQL refused a value from the request: a NUL in a text, a number or a date out of its range.
        detail = "a value is out of range or contains a NUL character"
        return problem_response(Problem(422, "Invalid request", detail, code="invalid_value"))

    @app.exception_handler(asyncpg.PostgresConnectionError)
    async def _pg_down(_: Request, __: Exception) -> JSONResponse:
        return problem_response(unavailable("database"))

    # PostgreSQL starting up, shut down by an operator or recovering from a crash: not the
    # caller's fault and soon over, so 503 with Retry-After, never a 500.
    for starting_or_stopping in (
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
    ):
        app.add_exception_handler(starting_or_stopping, _pg_down)

    @app.exception_handler(asyncpg.InterfaceError)
    async def _interface(_: Request, exc: asyncpg.InterfaceError) -> JSONResponse:
        if connection_lost(exc):
            return problem_response(unavailable("database"))
        log.error("unhandled_error", error=type(exc).__name__, message=str(exc))
        return problem_response(Problem(500, "Internal error", "an unexpected error occurred", code="internal"))

    @app.exception_handler(OSError)
    async def _os(_: Request, __: Exception) -> JSONResponse:
        return problem_response(unavailable("database"))

    @app.exception_handler(RPCError)
    async def _temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status in _UNAVAILABLE or _temporal_unreachable(exc):
            return problem_response(unavailable("temporal"))
        log.error("temporal_error", status=exc.status.name, error=exc.message)
        return problem_response(Problem(500, "Internal error", "an unexpected error occurred", code="internal"))

    @app.exception_handler(RuntimeError)
    async def _runtime(_: Request, exc: RuntimeError) -> JSONResponse:
        # The SDK's client raises this when it cannot (re)connect to the server at all.
        if str(exc).startswith("Failed client connect"):
            return problem_response(unavailable("temporal"))
        log.exception("unhandled_error", error=type(exc).__name__)
        return problem_response(Problem(500, "Internal error", "an unexpected error occurred", code="internal"))
