"""Programme versions and cohorts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse

from api.deps import Caller, Deps, require
from api.idempotency import IdempotencyKey, idempotent
from api.problems import not_found
from domain.programme import parse_cohort, parse_programme
from store.views import cohorts as cohorts_view

router = APIRouter(prefix="/v1", tags=["programmes", "cohorts"])


@router.post("/programmes", status_code=201, responses={200: {"description": "the same version was published before"}})
async def publish_programme(
    request: Request,
    resources: Deps,
    caller: Caller,
    body: Annotated[dict[str, Any], Body()],
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Publish a programme version (§3); published versions are immutable."""
    require(caller, "coordinator")

    async def run() -> tuple[int, Any]:
        programme = parse_programme(body)
        created = await resources.catalog.publish(programme)
        return (201 if created else 200), programme.model_dump(mode="json")

    return await idempotent(request, resources, caller, key, run)


@router.get("/programmes/{programme_id}/versions/{version}")
async def read_programme(
    programme_id: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)], resources: Deps, caller: Caller
) -> dict[str, Any]:
    """A published programme version."""
    del caller
    programme = await resources.catalog.programme(programme_id, version)
    if programme is None:
        raise not_found("programme version")
    return programme.model_dump(mode="json")


@router.post("/cohorts", status_code=201, responses={200: {"description": "the same cohort was created before"}})
async def create_cohort(
    request: Request,
    resources: Deps,
    caller: Caller,
    body: Annotated[dict[str, Any], Body()],
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a cohort of a published programme version, with its session calendar."""
    require(caller, "coordinator")

    async def run() -> tuple[int, Any]:
        cohort = parse_cohort(body)
        created = await resources.catalog.create_cohort(cohort)
        return (201 if created else 200), cohort.model_dump(mode="json")

    return await idempotent(request, resources, caller, key, run)


@router.get("/cohorts/{cohort_id}")
async def cohort_status(cohort_id: str, resources: Deps, caller: Caller) -> dict[str, Any]:
    """Counts by state, at-risk journeys and open escalations of a cohort."""
    require(caller, "coordinator")
    cohort = await resources.catalog.cohort(cohort_id)
    if cohort is None:
        raise not_found("cohort")
    summary = await cohorts_view.summary(resources.pool, cohort_id)
    return {"cohort": cohort.model_dump(mode="json"), **summary.model_dump(mode="json")}
