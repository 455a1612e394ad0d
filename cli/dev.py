"""`talent api` and `talent dev`: the HTTP API alone, or the whole service in one process tree."""

from __future__ import annotations

import asyncio
import signal

from api.runtime import open_resources, serve
from workers.settings import Settings


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_api(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """Serve the HTTP API until SIGTERM/SIGINT (TALENT_API_HOST, TALENT_API_PORT)."""
    stop = _stop_on_signals()
    async with open_resources(settings) as resources:
        await serve(resources, host=host or settings.api_host, port=port or settings.api_port, stop=stop)
    return 0


async def run_dev(settings: Settings, *, port: int, demo: bool) -> int:
    """The whole service with embedded defaults (to be written)."""
    raise NotImplementedError
