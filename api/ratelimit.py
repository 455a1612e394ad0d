"""Rate limits (PRODUCT §8.3): budgets per caller and route, kept by the `limits` library.

In memory by default (one process, one budget); `TALENT_RATE_LIMIT_STORAGE` names a shared
storage (`async+redis://host:6379`) so that several API processes spend one budget. A refused
call is 429 problem+json with `Retry-After`, the seconds until the window frees a slot.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from enum import StrEnum

import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from api.problems import Problem, unavailable
from infra.settings import Settings

log = structlog.get_logger("talent.api")


class Budget(StrEnum):
    """What a budget counts, and the key it is kept under."""

    #: Failed sign-ins and unknown or invalid bearer tokens, per client address.
    AUTH_FAILURES = "auth_failures"
    #: Unknown secrets on GET /calendar/{secret}.ics, per client address.
    CALENDAR_GUESSES = "calendar_guesses"
    #: Nominations by a leader, per leader (person id).
    NOMINATIONS = "nominations"
    #: Every authenticated call, per caller (token id).
    REQUESTS = "requests"


class RateLimitStorageDown(Exception):
    """The shared rate-limit storage did not answer."""


@dataclass(frozen=True)
class RateLimits:
    """The API's budgets on one storage; one per app, built by `create_app`."""

    limiter: MovingWindowRateLimiter
    items: dict[Budget, RateLimitItem]

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """The budgets the settings name, on the storage they name (nothing is contacted yet)."""
        uri = settings.rate_limit_storage
        if not uri.startswith("async+"):
            uri = f"async+{uri}"  # the API is asynchronous: `redis://` means the asyncio client
        storage = storage_from_string(uri)
        if not isinstance(storage, Storage):
            raise ValueError("TALENT_RATE_LIMIT_STORAGE must name an asyncio storage of the limits library")
        items = {
            Budget.AUTH_FAILURES: parse(settings.rate_limit_auth_failures),
            Budget.CALENDAR_GUESSES: parse(settings.rate_limit_calendar_guesses),
            Budget.NOMINATIONS: parse(settings.rate_limit_nominations),
            Budget.REQUESTS: parse(settings.rate_limit_requests),
        }
        # A moving window: no double budget across a window's edge, which a guesser would use.
        return cls(limiter=MovingWindowRateLimiter(storage), items=items)

    async def guard(self, budget: Budget, key: str) -> None:
        """429 if the budget is spent, spending nothing (before an attempt that may fail)."""
        item = self.items[budget]
        identity = _identity(budget, key)
        try:
            left = await self.limiter.test(item, *identity)
        except Exception as exc:
            raise _down(budget, exc) from exc
        if not left:
            raise await self._refusal(budget, identity)

    async def spend(self, budget: Budget, key: str) -> None:
        """Take one from the budget; 429 if there was none left."""
        item = self.items[budget]
        identity = _identity(budget, key)
        try:
            taken = await self.limiter.hit(item, *identity)
        except Exception as exc:
            raise _down(budget, exc) from exc
        if not taken:
            raise await self._refusal(budget, identity)

    async def _refusal(self, budget: Budget, identity: tuple[str, ...]) -> Problem:
        try:
            stats = await self.limiter.get_window_stats(self.items[budget], *identity)
            wait = max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:
            wait = self.items[budget].get_expiry()
        log.info("rate_limited", budget=budget.value, retry_after=wait)
        return Problem(
            429,
            "Too many requests",
            f"too many requests; try again in {wait} s",
            code="rate_limited",
            headers={"Retry-After": str(wait)},
            extra={"budget": budget.value},
        )


def _identity(budget: Budget, key: str) -> tuple[str, ...]:
    """The storage key of a caller's budget: a digest, so no address, e-mail or JWT `sub` is stored."""
    return ("talent", budget.value, hashlib.blake2b(key.encode(), digest_size=16).hexdigest())


def _down(budget: Budget, exc: Exception) -> Problem:
    # Fail closed: without its counter a limit would silently stop protecting (503 is retried).
    log.error("rate_limit_storage_unavailable", budget=budget.value, error=type(exc).__name__)
    return unavailable("rate_limits")


def rate_limits(request: Request) -> RateLimits:
    """The app's budgets."""
    limits: RateLimits = request.app.state.rate_limits
    return limits


def client_address(request: Request) -> str:
    """The address the connection comes from (behind a proxy: what the proxy forwards, if uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


async def guard_failures(request: Request, budget: Budget) -> None:
    """429 while the client address has spent its budget of failures (`budget`).

    Asked before every attempt, a correct one included: once a guesser has used up the failures,
    a right guess must not be told apart from a wrong one until the window frees a slot, or
    guessing would go on at full speed, reading the answer's status.
    """
    await rate_limits(request).guard(budget, client_address(request))


async def count_failure(request: Request, budget: Budget) -> None:
    """Count a failed attempt from the client address (only failures count: a valid token spends nothing)."""
    await rate_limits(request).spend(budget, client_address(request))
