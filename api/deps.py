"""Request dependencies as named Annotated aliases: resources, the caller, scoping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request
from temporalio.client import Client

from api.auth import Authenticator, KeysUnavailable, Principal
from api.problems import Problem, unavailable
from api.ratelimit import Budget, count_failure, guard_failures, rate_limits
from infra.settings import Settings
from store.catalog import Catalog
from store.eventstore import EventStore
from store.vault import PeopleVault


@dataclass
class Resources:
    """What the API works with; built once by the app's owner (CLI, tests)."""

    settings: Settings
    pool: asyncpg.Pool[asyncpg.Record]
    store: EventStore
    vault: PeopleVault
    catalog: Catalog
    temporal: Client
    authenticator: Authenticator
    task_queue: str


def _resources(request: Request) -> Resources:
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
    await rate_limits(request).spend(Budget.REQUESTS, principal.token_id)
    return principal


Caller = Annotated[Principal, Depends(_principal)]


def require(principal: Principal, *roles: str) -> None:
    """403 unless the caller has one of `roles`."""
    if principal.role not in roles:
        raise Problem(403, "Forbidden", f"a {principal.role} may not do this", code="forbidden")


#: Object-level scoping (§8.1), as a condition on `journey_status s` ($1 role, $2 person id):
#: coordinators and HR systems see every journey; a leader sees those they lead now, and
#: read-only those where they are the leader's leader now (a former leader's sight ends with the
#: leader change); a talent sees their own. The one rule for the API, the dashboard and feeds.
SCOPE = """($1 IN ('coordinator', 'hr_system')
   OR ($1 = 'leader' AND (s.nearest_leader_id = $2 OR s.leaders_leader_id = $2))
   OR ($1 = 'talent' AND s.talent_id = $2))"""

#: Whether the caller, who may see the journey (`SCOPE`), may also act on it: everyone in scope
#: except a leader who sees it only as the leader's leader.
MAY_ACT = "($1 <> 'leader' OR s.nearest_leader_id = $2)"


async def can_see(resources: Resources, principal: Principal, journey_id: str) -> bool:
    """Whether the journey exists and the caller may see it (`SCOPE`)."""
    return bool(
        await resources.pool.fetchval(
            f"SELECT 1 FROM journey_status s WHERE s.journey_id = $3 AND {SCOPE}",
            principal.role,
            principal.person_id,
            journey_id,
        )
    )
