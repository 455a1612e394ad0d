"""The wiring in one place: settings, logging, the pool, the Temporal client, the worker's parts, the API's resources.

Entry points (`talent api`, `talent worker`, `talent dev`, the CLI's commands), the tests and the
benchmarks build what they run here; a test passes its own pool, Temporal client and tokens
(and its vault key in `Settings`). What comes out is frozen: a part is chosen when it is built,
never assigned afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from activities.journey import JourneyActivities
from activities.notify import Notifier, SmtpConfig, SmtpMailer, WebhookConfig, WebhookSender
from activities.retention import RetentionActivities, rules_from
from infra import telemetry
from infra.auth import Authenticator
from infra.logging import configure_logging
from infra.oidc import OidcClient, oidc_from
from infra.postgres import open_pool, vault_for
from infra.settings import Settings
from infra.telemetry import ObservedEventStore
from infra.temporal import connect
from store.catalog import Catalog
from store.eventstore import EventStore
from store.vault import PeopleVault


@dataclass(frozen=True)
class Resources:
    """What the API, the dashboard and the service's commands work with."""

    settings: Settings
    pool: asyncpg.Pool[asyncpg.Record]
    store: EventStore
    vault: PeopleVault
    catalog: Catalog
    temporal: Client
    authenticator: Authenticator
    task_queue: str
    #: The dashboard's OpenID Connect sign-in, when TALENT_OIDC_ISSUER is set.
    oidc: OidcClient | None = None


@dataclass(frozen=True)
class WorkerComponents:
    """What a worker runs: its activities and the stores they hold."""

    pool: asyncpg.Pool[asyncpg.Record]
    store: EventStore
    vault: PeopleVault
    journey: JourneyActivities
    notifier: Notifier
    #: The scheduled retention run (workflows/retention.py, docs/retention.md).
    retention: RetentionActivities

    @property
    def activities(self) -> Sequence[Callable[..., Any]]:
        """Every activity function the worker registers."""
        return [self.journey.append_events, self.notifier.deliver, self.retention.apply]


def configure(settings: Settings, *, level: str | None = None) -> None:
    """Logging as configured (TALENT_LOG_FORMAT, TALENT_LOG_LEVEL, or `level`); first, before anything logs."""
    configure_logging(fmt=settings.log_format, level=level or settings.log_level)
    # Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (before the Temporal client is made).
    telemetry.configure_tracing(settings.otel_endpoint, "talent-journey")


@contextlib.asynccontextmanager
async def database(settings: Settings, *, max_size: int = 4) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    """A pool on the service's database, migrated and checked to be this instance's; closed on exit."""
    pool = await open_pool(settings, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


async def temporal_client(settings: Settings) -> Client:
    """A Temporal client with the pydantic data converter (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE)."""
    return await connect(settings)


def authenticator_from(settings: Settings) -> Authenticator:
    """Tokens file and/or JWT verification, as configured."""
    return Authenticator.from_file(
        settings.tokens_file,
        jwt_secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
        jwks_url=settings.jwt_jwks_url,
        jwks_algorithms=[a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()],
    )


def resources(
    settings: Settings,
    *,
    pool: asyncpg.Pool[asyncpg.Record],
    temporal: Client,
    authenticator: Authenticator | None = None,
    task_queue: str | None = None,
) -> Resources:
    """The API's resources on `pool` and `temporal`: the vault with the settings' key, the
    configured authenticator (or the given one), the settings' task queue (or the given one)."""
    return Resources(
        settings=settings,
        pool=pool,
        store=ObservedEventStore(pool),
        vault=vault_for(pool, settings),
        catalog=Catalog(pool),
        temporal=temporal,
        authenticator=authenticator if authenticator is not None else authenticator_from(settings),
        task_queue=task_queue or settings.task_queue,
        oidc=oidc_from(settings),
    )


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, *, pool: asyncpg.Pool[asyncpg.Record] | None = None
) -> AsyncIterator[Resources]:
    """The API's resources from settings: a pool of its own (or `pool`, left open) and a Temporal client."""
    auth = authenticator_from(settings)  # a bad tokens file or JWT setting fails before anything is opened
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(database(settings, max_size=10))
        yield resources(settings, pool=pool, temporal=await temporal_client(settings), authenticator=auth)


def _mailer(settings: Settings) -> SmtpMailer | None:
    if not settings.smtp_host:
        return None
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            tls=settings.smtp_tls_mode(),
            tls_context=settings.smtp_tls_context(),
        )
    )


@contextlib.asynccontextmanager
async def worker_components(settings: Settings, pool: asyncpg.Pool[asyncpg.Record]) -> AsyncIterator[WorkerComponents]:
    """The worker's activities on `pool`: the vault with the settings' key, e-mail and webhooks as
    configured (a webhook URL without a secret is refused here); the HTTP client closed on exit."""
    store = ObservedEventStore(pool)
    vault = vault_for(pool, settings)
    mailer = _mailer(settings)
    async with httpx.AsyncClient() as http:
        webhook = None
        if settings.webhook_url:
            webhook = WebhookSender(WebhookConfig(url=settings.webhook_url, keys=settings.webhook_keys()), http)
        yield WorkerComponents(
            pool=pool,
            store=store,
            vault=vault,
            journey=JourneyActivities(store),
            notifier=Notifier(pool, vault, mailer=mailer, webhook=webhook, public_url=settings.public_url),
            retention=RetentionActivities(pool, vault, rules_from(settings)),
        )
