"""Running the API: a uvicorn server that stops on a signal (its resources come from `service.bootstrap`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn

from api.app import create_app
from service.bootstrap import Resources


class Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the owner decides when to stop (`should_exit`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


async def serve(resources: Resources, *, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the API on host:port until `stop` is set, then finish in-flight requests and return."""
    config = uvicorn.Config(
        create_app(resources),
        host=host,
        port=port,
        log_config=None,  # structlog renders uvicorn's lines through the root logger
        access_log=False,  # the app logs every request itself, with its correlation id
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    server = Server(config)
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    try:
        await task
    except SystemExit as exc:  # uvicorn exits when it cannot start (e.g. the port is taken)
        raise OSError(f"the API could not start on {host}:{port}") from exc
    if not server.started and task in done:
        raise OSError(f"the API could not start on {host}:{port}")
