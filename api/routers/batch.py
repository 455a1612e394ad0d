"""Bulk enrolment: `POST /v1/journeys/batch`, up to 1,000 nominations, one result per row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from api.deps import Caller, Deps, require
from api.idempotency import IdempotencyKey, idempotent
from api.models import NominationIn, _In
from api.problems import Problem, from_domain, from_error, problem_response
from api.ratelimit import Budget, rate_limits
from domain import commands as c
from domain.errors import DomainError
from domain.policy import roles_for
from infra.auth import Principal
from service import batch
from service.bootstrap import Resources
from service.errors import ServiceError
from service.journeys import Nomination
from store.catalog import UnknownProgramme
from store.vault import PersonErased

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


class BatchIn(_In):
    """POST /v1/journeys/batch."""

    rows: Annotated[
        list[Any],
        Field(
            min_length=1,
            max_length=batch.MAX_ROWS,
            description="Nominations, each the body of POST /v1/journeys (`NominationIn`); each row is "
            "validated on its own, so one bad row is answered `invalid` and the others still run.",
        ),
    ]


class RowOut(BaseModel):
    """The result of one row, in the order of the rows."""

    index: int
    outcome: Literal["created", "existing", "refused", "invalid"]
    journey_id: str | None = Field(default=None, description="created or existing: the journey")
    code: str | None = Field(default=None, description="refused: the domain's or the service's reason code")
    problem: dict[str, Any] | None = Field(default=None, description="refused: the problem detail (RFC 9457)")
    errors: list[dict[str, str]] | None = Field(default=None, description="invalid: the row's validation errors")


class BatchOut(BaseModel):
    """One result per row, and how many rows had each outcome."""

    results: list[RowOut]
    summary: dict[str, int]


def rows_of(raw_rows: Sequence[Any]) -> list[batch.Row]:
    """Validate each raw row on its own as a nomination (`NominationIn`): a valid row or its errors."""
    rows: list[batch.Row] = []
    for raw in raw_rows:
        try:
            nomination = NominationIn.model_validate(raw)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"]} for err in exc.errors()
            ]
            rows.append(batch.Row(None, errors=errors))
            continue
        rows.append(batch.Row(nomination, content=batch.canonical(nomination.model_dump(mode="json"))))
    return rows


def row_out(index: int, result: batch.RowResult) -> dict[str, Any]:
    """A row's result as the API answers it (a refusal as its problem detail, mapped in `api.problems`)."""
    out = RowOut(index=index, outcome=result.outcome, journey_id=result.journey_id)
    if result.outcome == "invalid":
        out.errors = result.errors
    refused = result.refusal
    if refused is not None:
        problem = _problem(refused)
        out.code, out.problem = problem.code, orjson.loads(problem_response(problem).body)
    return out.model_dump(exclude_none=True)


def _problem(refused: Exception) -> Problem:
    if isinstance(refused, Problem):
        return refused
    if isinstance(refused, DomainError):
        return from_domain(refused)
    if isinstance(refused, ServiceError | PersonErased | UnknownProgramme):
        return from_error(refused)
    raise refused  # pragma: no cover - the service answers only refusals


def summary(results: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many rows had each outcome."""
    counts = dict.fromkeys(("created", "existing", "refused", "invalid"), 0)
    for result in results:
        counts[result["outcome"]] += 1
    return counts


async def enrol(
    resources: Resources,
    raw_rows: Sequence[Any],
    caller: Principal,
    *,
    correlation_id: str | None = None,
    admit: Callable[[Nomination], Awaitable[Exception | None]] | None = None,
    on_done: Callable[[batch.RowResult], None] | None = None,
    concurrency: int = batch.CONCURRENCY,
) -> dict[str, Any]:
    """Validate and run a batch of nomination rows: the body `POST /v1/journeys/batch` answers.

    The importer (`talent journey import`) runs a file's batches through this too when it talks
    to the database and Temporal directly.
    """
    results = await batch.nominate_rows(
        resources,
        rows_of(raw_rows),
        caller,
        correlation_id=correlation_id,
        admit=admit,
        on_done=on_done,
        concurrency=concurrency,
    )
    answered = [row_out(index, result) for index, result in enumerate(results)]
    return {"results": answered, "summary": summary(answered)}


@router.post(
    "/batch",
    response_model=BatchOut,
    openapi_extra={"x-max-rows": batch.MAX_ROWS},
)
async def nominate_batch(
    request: Request, resources: Deps, caller: Caller, body: BatchIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Bulk enrolment: up to 1,000 nominations (each row the body of `POST /v1/journeys`), one result per row.

    Each row is validated on its own and runs through the same path as a single nomination, with
    the same rules: `created` (the new journey's id), `existing` (the talent's open journey, or
    the journey this row made before: running the same rows again changes nothing), `refused`
    (the domain's reason `code` and a problem detail) or `invalid` (the row's validation errors).
    A row's idempotency derives from the caller and its `external_ref` (else its content); the
    same `external_ref` with other content is refused (`external_ref_reused`). More than 1,000
    rows, or a body that is not `{"rows": [...]}`: 422 and nothing is done.

    Who may nominate may send a batch; a leader's rows must name them as the nearest leader, and
    each row spends one of the leader's daily nominations.
    """
    require(caller, *roles_for(c.NominateTalent))

    async def admit(nomination: Nomination) -> Exception | None:
        if caller.role != "leader":
            return None
        if caller.person_id != nomination.nearest_leader.person_id:
            return Problem(403, "Forbidden", "a leader nominates as the talent's nearest leader", code="forbidden")
        try:  # PRODUCT §8.3: a leader's nominations per day
            await rate_limits(request).spend(Budget.NOMINATIONS, caller.person_id or caller.token_id)
        except Problem as spent:
            return spent
        return None

    async def run() -> tuple[int, Any]:
        answered = await enrol(resources, body.rows, caller, correlation_id=request.state.correlation_id, admit=admit)
        return 200, answered

    return await idempotent(request, resources, caller, key, run)
