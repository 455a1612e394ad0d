"""The retention activity: plan what the rules say is due and delete exactly that (docs/retention.md)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict
from temporalio import activity

from infra.settings import Settings
from store.retention import Category, Retention, RetentionRules
from store.vault import PeopleVault

log = structlog.get_logger("talent.activities")


def rules_from(settings: Settings) -> RetentionRules:
    """The retention rules configured by TALENT_RETENTION_<CATEGORY> (defaults otherwise)."""
    periods: dict[Category, str] = {
        "free_texts": settings.retention_free_texts,
        "contact_data": settings.retention_contact_data,
        "idempotency_keys": settings.retention_idempotency_keys,
        "outbox_delivered": settings.retention_outbox_delivered,
        "dashboard_sessions": settings.retention_dashboard_sessions,
        "access_log": settings.retention_access_log,
    }
    return RetentionRules.from_periods(periods)


class RetentionInput(BaseModel):
    """A run: the instant its rules are measured at, and the id its ledger rows carry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    now: AwareDatetime
    run_id: str


class RetentionOutput(BaseModel):
    """What the run deleted per category, and how many ledger rows it wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deleted: dict[str, int]
    recorded: int


class RetentionActivities:
    """The retention run, built once per worker with the pool, the vault and the rules."""

    def __init__(self, pool: asyncpg.Pool, vault: PeopleVault, rules: RetentionRules) -> None:
        self._retention = Retention(pool, vault, rules)

    @activity.defn(name="apply_retention")
    async def apply(self, request: RetentionInput) -> RetentionOutput:
        """Plan at `request.now` and apply it; a retry deletes and records nothing twice."""
        now: datetime = request.now
        report = await self._retention.apply(now, request.run_id)
        return RetentionOutput(deleted=report.deleted, recorded=report.recorded)
