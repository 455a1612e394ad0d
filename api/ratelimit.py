"""Rate limits (PRODUCT §8.3): budgets per caller and route, kept by the `limits` library.

In memory by default (one process, one budget: `LoopMemoryStorage`, kept in the event loop);
`TALENT_RATE_LIMIT_STORAGE` names a shared storage (`async+redis://host:6379`) so that several API
processes spend one budget. A refused call is 429 problem+json with `Retry-After`, the seconds
until the window frees a slot.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MovingWindowSupport, Storage
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


class LoopMemoryStorage(Storage, MovingWindowSupport):
    """Moving windows in this process's memory, kept by the event loop itself (`async+memory://`).

    The `limits` library's own asyncio memory storage starts an expiry task after nearly every
    hit, and that task sends every key's list to a worker thread (`asyncio.to_thread`) to find
    its cutoff: a thread hop per key per request. Here a window is a deque of hit times, oldest
    first; a check drops its key's expired hits and counts the rest, in the loop, with no await
    in between (so no lock is needed), and keys whose every hit expired are swept at most once
    per `SWEEP_SECONDS`, in the check that comes after.
    """

    #: Seconds between two sweeps of the keys whose hits have all expired.
    SWEEP_SECONDS = 30.0

    def __init__(self) -> None:
        super().__init__(None)
        self._windows: dict[str, tuple[int, deque[float]]] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._swept = time.time()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _window(self, key: str, expiry: int, now: float) -> deque[float]:
        """The key's hits within the window ending now (expired ones dropped)."""
        if now - self._swept > self.SWEEP_SECONDS:
            self._sweep(now)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = (expiry, deque())
        hits = found[1]
        while hits and hits[0] <= now - expiry:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key, (expiry, hits) in list(self._windows.items()):
            if not hits or hits[-1] <= now - expiry:
                del self._windows[key]
        for key, (_, until) in list(self._counters.items()):
            if until <= now:
                del self._counters[key]

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take `amount` hits in the key's window if they fit within `limit`."""
        now = time.time()
        hits = self._window(key, expiry, now)
        if amount > limit or len(hits) + amount > limit:
            return False
        hits.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest hit in the window and the number of hits in it."""
        now = time.time()
        if key not in self._windows:  # a check before any hit keeps nothing
            return now, 0
        hits = self._window(key, expiry, now)
        return (hits[0], len(hits)) if hits else (now, 0)

    # The fixed-window counter (a `Storage` must have one; the API's budgets use moving windows).
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add to the key's counter, which starts its `expiry` seconds when it is first added to."""
        now = time.time()
        count, until = self._counters.get(key, (0, 0.0))
        if until <= now:
            count, until = 0, now + expiry
        self._counters[key] = (count + amount, until)
        return count + amount

    async def get(self, key: str) -> int:
        """The key's counter (0 once expired)."""
        count, until = self._counters.get(key, (0, 0.0))
        return count if until > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        """When the key's counter expires."""
        return self._counters.get(key, (0, time.time()))[1]

    async def check(self) -> bool:
        """Always available: it is this process's memory."""
        return True

    async def reset(self) -> int | None:
        """Forget every key; how many there were."""
        count = len(self._windows) + len(self._counters)
        self._windows.clear()
        self._counters.clear()
        return count

    async def clear(self, key: str) -> None:
        """Forget one key."""
        self._windows.pop(key, None)
        self._counters.pop(key, None)


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
        storage = LoopMemoryStorage() if uri == "async+memory://" else storage_from_string(uri)
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
