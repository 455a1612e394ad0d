"""Request dependencies as named Annotated aliases: resources (built by `service.bootstrap`), the caller, scoping."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Header, Request

from api.access import identify
from api.auth import Authenticator, KeysUnavailable, Principal
from api.problems import Problem, unavailable
from api.ratelimit import Budget, count_failure, guard_failures, rate_limits
from service.bootstrap import Resources as Resources  # noqa: PLC0414 - re-exported for the API's modules
from store.views import journeys as journeys_view


async def _resources(request: Request) -> Resources:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request.
    resources: Resources = request.app.state.resources
    return resources


Deps = Annotated[Resources, Depends(_resources)]


async def authenticate(authenticator: Authenticator, token: str) -> Principal | None:
    """A bearer token's principal, or None; `KeysUnavailable` if the issuer's keys cannot be fetched.

    A tokens-file token is checked in the loop; a JWT may need the issuer's JWKS (blocking HTTP on
    a cache miss) and costs a signature check, so it is verified in a thread. The API and the
    dashboard's sign-in both verify here.
    """
    if token.count(".") == 2:
        return await asyncio.to_thread(authenticator.authenticate, token)
    return authenticator.authenticate(token)


async def _principal(
    request: Request, resources: Deps, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(
            401,
            "Unauthorized",
            "a bearer token is required",
            code="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = authorization[7:].strip()
    await guard_failures(request, Budget.AUTH_FAILURES)
    try:
        principal = await authenticate(resources.authenticator, token)
    except KeysUnavailable as exc:
        raise unavailable("jwks") from exc
    if principal is None:
        await count_failure(request, Budget.AUTH_FAILURES)
        raise Problem(
            401,
            "Unauthorized",
            "the token is not valid",
            code="unauthorized",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    identify(principal)  # the access log's actor (§8.7)
    await rate_limits(request).spend(Budget.REQUESTS, principal.token_id)
    return principal


Caller = Annotated[Principal, Depends(_principal)]


def require(principal: Principal, *roles: str) -> None:
    """403 unless the caller has one of `roles`."""
    if principal.role not in roles:
        raise Problem(403, "Forbidden", f"a {principal.role} may not do this", code="forbidden")


async def can_see(resources: Resources, principal: Principal, journey_id: str) -> bool:
    """Whether the journey exists and the caller may see it (the read model's scope rule, §8.1)."""
    return await journeys_view.can_see(resources.pool, principal, journey_id)
