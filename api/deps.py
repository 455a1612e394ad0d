"""Request dependencies as named Annotated aliases: resources, the caller, scoping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request
from temporalio.client import Client

from activities.store.catalog import Catalog
from activities.store.eventstore import EventStore
from activities.store.vault import PeopleVault
from api.auth import Authenticator, KeysUnavailable, Principal
from api.problems import Problem, unavailable
from workers.settings import Settings


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


async def _principal(resources: Deps, authorization: Annotated[str | None, Header()] = None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(
            401,
            "Unauthorized",
            "a bearer token is required",
            code="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = authorization[7:].strip()
    try:
        # A tokens-file token is checked in the loop; a JWT may need the issuer's JWKS (blocking
        # HTTP on a cache miss), so it is verified in a thread.
        if token.count(".") == 2:
            principal = await asyncio.to_thread(resources.authenticator.authenticate, token)
        else:
            principal = resources.authenticator.authenticate(token)
    except KeysUnavailable as exc:
        raise unavailable("jwks") from exc
    if principal is None:
        raise Problem(
            401,
            "Unauthorized",
            "the token is not valid",
            code="unauthorized",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


Caller = Annotated[Principal, Depends(_principal)]


def require(principal: Principal, *roles: str) -> None:
    """403 unless the caller has one of `roles`."""
    if principal.role not in roles:
        raise Problem(403, "Forbidden", f"a {principal.role} may not do this", code="forbidden")


#: Object-level scoping, as a condition on `journey_status s`: coordinators and HR systems see
#: every journey, a leader those they lead or led, a talent their own. ($1 role, $2 person id.)
SCOPE = """($1 IN ('coordinator', 'hr_system')
   OR ($1 = 'leader' AND EXISTS (SELECT 1 FROM journey_access a WHERE a.journey_id = s.journey_id
                                  AND a.person_id = $2 AND a.role = 'nearest_leader'))
   OR ($1 = 'talent' AND s.talent_id = $2))"""


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
