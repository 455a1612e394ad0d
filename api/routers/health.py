"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Deps

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "a dependency is down: `checks` names it; `Retry-After` says when to ask again"}},
)
async def readyz(resources: Deps) -> JSONResponse:
    """The database and Temporal are reachable; 503 says which is not."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(resources.pool.fetchval("SELECT 1"), timeout=2)
        checks["database"] = "ok"
    except (OSError, TimeoutError, Exception):
        checks["database"] = "down"
    try:
        await asyncio.wait_for(resources.temporal.service_client.check_health(), timeout=2)
        checks["temporal"] = "ok"
    except (OSError, TimeoutError, Exception):
        checks["temporal"] = "down"
    ready = all(v == "ok" for v in checks.values())
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers=headers,
    )
