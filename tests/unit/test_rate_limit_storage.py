"""The in-process rate-limit storage (`api.ratelimit.LoopMemoryStorage`): a moving window kept in the
event loop, with no thread hop, under the `limits` library's moving-window limiter."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from api.ratelimit import LoopMemoryStorage, RateLimits
from infra.settings import Settings


async def test_a_moving_window_refuses_past_its_amount_and_frees_slots_as_hits_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    limiter = MovingWindowRateLimiter(LoopMemoryStorage())
    item = parse("3/minute")
    assert await limiter.test(item, "a")
    for seconds in (0, 10, 20):
        now[0] = 1_000_000.0 + seconds
        assert await limiter.hit(item, "a")
    assert not await limiter.hit(item, "a")
    assert not await limiter.test(item, "a")
    assert await limiter.hit(item, "b")  # another key has its own window
    stats = await limiter.get_window_stats(item, "a")
    assert (stats.reset_time, stats.remaining) == (1_000_060.0, 0)
    now[0] = 1_000_060.0  # the first hit leaves the window: one slot, and only one
    assert await limiter.test(item, "a")
    assert await limiter.hit(item, "a")
    assert not await limiter.hit(item, "a")
    assert not await limiter.hit(item, "c", cost=4)


async def test_keys_whose_hits_all_expired_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    storage = LoopMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    for key in ("a", "b", "c"):
        await limiter.hit(parse("5/second"), key)
    now[0] = LoopMemoryStorage.SWEEP_SECONDS + 1
    await limiter.hit(parse("5/hour"), "d")
    assert await storage.reset() == 1  # only d was left


async def test_a_check_runs_in_the_event_loop_s_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_thread(*_: object, **__: object) -> None:
        raise AssertionError("a thread hop")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    limiter = MovingWindowRateLimiter(LoopMemoryStorage())
    before = threading.active_count()
    for _ in range(100):
        assert await limiter.hit(parse("1000/minute"), "a")
    assert threading.active_count() == before


def test_the_default_memory_storage_is_the_loop_s_own(tmp_path: Path) -> None:
    limits = RateLimits.from_settings(Settings.model_validate({"data_dir": tmp_path}))
    assert isinstance(limits.limiter.storage, LoopMemoryStorage)
