"""`talent api` and `talent dev`: the HTTP API alone, or the whole service in one process tree."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

import asyncpg
import structlog

from api.runtime import serve
from cli.dev.banner import Banner, database_label
from cli.dev.demo import demo_cohort, demo_summary, publish_programmes, seed_demo
from cli.dev.host import DevError, data_dir_lock, port_free
from cli.dev.temporal import TemporalSupervisor, start_temporal
from cli.dev.tokens import tokens_for
from infra.postgres import InstanceMismatch
from infra.settings import Settings
from service import bootstrap
from store.catalog import Catalog
from workers.worker import build_worker, register_search_attributes

log = structlog.get_logger("talent.dev")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_api(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """Serve the HTTP API until SIGTERM/SIGINT (TALENT_API_HOST, TALENT_API_PORT)."""
    stop = _stop_on_signals()
    async with bootstrap.open_resources(settings) as resources:
        await serve(resources, host=host or settings.api_host, port=port or settings.api_port, stop=stop)
    return 0


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparing, not binding


async def _wait_listening(host: str, port: int, server: asyncio.Task[None], *, within: float = 30.0) -> bool:
    """Whether the API accepts connections before `within` seconds pass (False: it stopped or failed)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not server.done():
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


async def run_dev(settings: Settings, *, port: int, demo: bool) -> int:
    """The whole service on this machine until SIGINT/SIGTERM: a Temporal dev server, PostgreSQL,
    a worker and the API in this process, the programmes published and (with `demo`) a demo cohort
    whose journeys slip and escalate within minutes. 0 after a clean stop, 1 if it cannot start,
    2 if the database belongs to another instance (another vault key)."""
    stop = _stop_on_signals()
    try:
        await _run_dev(settings, port=port, demo=demo, stop=stop)
    except DevError as exc:
        print(f"talent dev: {exc}", file=sys.stderr)
        return 1
    except InstanceMismatch as exc:
        print(f"talent dev: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run_dev(settings: Settings, *, port: int, demo: bool, stop: asyncio.Event) -> None:
    started = time.monotonic()
    data_dir = settings.data_dir.resolve()
    host = settings.api_host
    if not port_free(host, port):
        raise DevError(f"port {port} on {host} is taken: stop what listens there, or choose another with --port")
    async with contextlib.AsyncExitStack() as stack:
        # Unwound in reverse: API, worker, Temporal, pool, lock.
        stack.enter_context(data_dir_lock(data_dir))
        pool = await stack.enter_async_context(bootstrap.database(settings, max_size=10))
        stack.callback(log.info, "dev_stopped", part="database pool")
        temporal = await start_temporal(data_dir, settings.temporal_namespace)
        # A dev server that dies is started again on the same port and state file.
        supervisor = TemporalSupervisor(temporal, data_dir, settings.temporal_namespace)
        supervisor.start()
        stack.push_async_callback(supervisor.shutdown)
        if stop.is_set():
            return
        catalog = Catalog(pool)
        programme = await publish_programmes(catalog, settings.examples_dir)
        cohort = await demo_cohort(catalog, pool, programme) if demo else None
        tokens_file, tokens = tokens_for(settings, data_dir, cohort)
        api = f"http://{_display_host(host)}:{port}"
        update: dict[str, object] = {"temporal_address": temporal.address, "tokens_file": tokens_file}
        if "public_url" not in settings.model_fields_set:
            update["public_url"] = api  # the e-mails link here, unless TALENT_PUBLIC_URL says where
        settings = settings.model_copy(update=update)
        await _start_worker(stack, settings, pool)
        resources = await stack.enter_async_context(bootstrap.open_resources(settings, pool=pool))
        summary = None
        if cohort is not None:
            await seed_demo(resources, cohort)
            summary = await demo_summary(resources, cohort, programme)
        server = asyncio.create_task(serve(resources, host=host, port=port, stop=stop))
        if await _wait_listening(_display_host(host), port, server):
            banner = Banner(
                api=api,
                temporal=temporal,
                database=await database_label(pool, data_dir),
                data_dir=data_dir,
                tokens_file=tokens_file,
                tokens=tokens,
                demo=summary,
                seconds=time.monotonic() - started,
            )
            print(banner.render(), flush=True)
            log.info("dev_ready", api=api, seconds=round(banner.seconds, 2))
        try:
            await server
        except OSError as exc:
            raise DevError(f"{exc}: stop what listens there, or choose another with --port") from exc
        log.info("dev_stopped", part="api")


async def _start_worker(
    stack: contextlib.AsyncExitStack, settings: Settings, pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    """Register the journey search attributes and run a worker on the dev server until `stack` unwinds."""
    client = await bootstrap.temporal_client(settings)
    # Over the API, not with `--search-attribute`: on a restart the state file has them already.
    await register_search_attributes(client, settings.temporal_namespace)
    parts = await stack.enter_async_context(bootstrap.worker_components(settings, pool))
    worker = build_worker(client, parts, task_queue=settings.task_queue)
    stack.callback(log.info, "dev_stopped", part="worker")
    await stack.enter_async_context(worker)
    log.info("dev_started", part="worker", task_queue=settings.task_queue)
