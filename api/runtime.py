"""Running the API: its resources from settings, and a uvicorn server that stops on a signal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import asyncpg
import structlog
import uvicorn

from api.app import create_app
from api.auth import Authenticator
from api.deps import Resources
from infra.postgres import open_pool
from infra.settings import Settings
from infra.temporal import connect
from store.catalog import Catalog
from store.eventstore import EventStore
from store.vault import PeopleVault

log = structlog.get_logger("talent.api")


def authenticator(settings: Settings) -> Authenticator:
    """Tokens file and/or JWT verification, as configured."""
    return Authenticator.from_file(
        settings.tokens_file,
        jwt_secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
        jwks_url=settings.jwt_jwks_url,
        jwks_algorithms=[a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()],
    )


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, *, pool: asyncpg.Pool[asyncpg.Record] | None = None
) -> AsyncIterator[Resources]:
    """What the API needs, built from settings (a given `pool` is used and left open)."""
    auth = authenticator(settings)
    own_pool = pool is None
    if pool is None:
        pool = await open_pool(settings, max_size=10)
    try:
        yield Resources(
            settings=settings,
            pool=pool,
            store=EventStore(pool),
            vault=PeopleVault(pool, settings.master_key()),
            catalog=Catalog(pool),
            temporal=await connect(settings),
            authenticator=auth,
            task_queue=settings.task_queue,
        )
    finally:
        if own_pool:
            await pool.close()


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
