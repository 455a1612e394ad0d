"""Published programme versions (immutable) and cohorts, in PostgreSQL."""

from __future__ import annotations

import asyncpg

from domain.commands import CURRENT_RULES_VERSION
from domain.programme import Cohort, Programme, programme_json


class CatalogConflict(Exception):
    """A programme version or cohort id is taken by a different definition (they are immutable)."""

    code = "already_exists"


class UnknownProgramme(Exception):
    """A cohort names a programme version that was never published."""

    code = "unknown_programme"


class Catalog:
    """Programmes and cohorts: publish once, read many times."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    async def publish(self, programme: Programme) -> bool:
        """Publish a version; True if new, False if this very definition was already published."""
        definition = programme_json(programme)
        inserted = await self._pool.fetchval(
            """INSERT INTO programmes (programme_id, version, definition) VALUES ($1, $2, $3::jsonb)
               ON CONFLICT (programme_id, version) DO NOTHING RETURNING true""",
            programme.id,
            programme.version,
            definition,
        )
        if inserted:
            return True
        existing = await self.programme(programme.id, programme.version)
        if existing is None or programme_json(existing) != definition:
            raise CatalogConflict(f"programme {programme.id} v{programme.version} is published with other content")
        return False

    async def programme(self, programme_id: str, version: int) -> Programme | None:
        """A published version."""
        raw = await self._pool.fetchval(
            "SELECT definition::text FROM programmes WHERE programme_id = $1 AND version = $2", programme_id, version
        )
        return Programme.model_validate_json(raw) if raw is not None else None

    async def create_cohort(self, cohort: Cohort) -> bool:
        """Create a cohort of a published programme; True if new, False if identical already exists."""
        programme = await self.programme(cohort.programme_id, cohort.programme_version)
        if programme is None:
            raise UnknownProgramme(f"programme {cohort.programme_id} v{cohort.programme_version} is not published")
        cohort.check_against(programme)
        # Every rung reaches someone: a cohort whose ladders end at a coordinator it lacks is refused.
        cohort.check_staffed(programme, CURRENT_RULES_VERSION)
        definition = cohort.model_dump_json()
        inserted = await self._pool.fetchval(
            """INSERT INTO cohorts (cohort_id, programme_id, programme_version, definition)
               VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (cohort_id) DO NOTHING RETURNING true""",
            cohort.cohort_id,
            cohort.programme_id,
            cohort.programme_version,
            definition,
        )
        if inserted:
            return True
        existing = await self.cohort(cohort.cohort_id)
        if existing != cohort:
            raise CatalogConflict(f"cohort {cohort.cohort_id} exists with other content")
        return False

    async def cohort(self, cohort_id: str) -> Cohort | None:
        """A cohort by id."""
        raw = await self._pool.fetchval("SELECT definition::text FROM cohorts WHERE cohort_id = $1", cohort_id)
        return Cohort.model_validate_json(raw) if raw is not None else None

    async def update_cohort(self, previous: Cohort, cohort: Cohort) -> None:
        """Replace a cohort's definition with `cohort`, if it is still `previous` (else CatalogConflict).

        A cohort's calendar, capacity and coordinator change while it runs (PRODUCT §8.4, §8.5);
        its programme never does. The guard on the stored definition is optimistic concurrency:
        two edits at once cannot both build on the same definition, the second is told to retry.
        Who changed what is recorded by the caller (the journeys' events, the service's log).
        """
        if (cohort.cohort_id, cohort.programme_id, cohort.programme_version) != (
            previous.cohort_id,
            previous.programme_id,
            previous.programme_version,
        ):
            raise ValueError("a cohort's id and programme never change")
        programme = await self.programme(cohort.programme_id, cohort.programme_version)
        if programme is None:  # pragma: no cover - cohorts are created against published programmes
            raise UnknownProgramme(f"programme {cohort.programme_id} v{cohort.programme_version} is not published")
        cohort.check_against(programme)
        cohort.check_staffed(programme, CURRENT_RULES_VERSION)
        updated = await self._pool.fetchval(
            """UPDATE cohorts SET definition = $2::jsonb
                WHERE cohort_id = $1 AND definition = $3::jsonb RETURNING true""",
            cohort.cohort_id,
            cohort.model_dump_json(),
            previous.model_dump_json(),
        )
        if not updated:
            raise CatalogConflict(f"cohort {cohort.cohort_id} changed meanwhile: read it again and retry")
