"""Bulk enrolment: many nominations at once, each through the one nomination path (`journeys.nominate`).

A batch is a list of rows; each row is a nomination the caller validated at its edge, or the
reason it could not be (kept in its place, so the answer has one result per row, in order).
Rows run concurrently with a bound; rows naming the same talent (or the same row key) run one
after the other, so the second finds the first's journey. Every rule is the single nomination's:
this module adds only the row's own idempotency.

Idempotency per row: a row's key derives from the caller and the row's HR reference (its
`external_ref`) or, without one, its content. The journey a row created or found is recorded under
that key, so running the same row again answers `existing` with the same journey, even once that
journey has ended; the same HR reference with other content is refused (`external_ref_reused`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import orjson

from domain.errors import DomainError
from infra.auth import Principal
from service.bootstrap import Resources
from service.errors import ServiceError
from service.journeys import Nomination, nominate
from store.catalog import UnknownProgramme
from store.vault import PersonErased

#: The most rows one batch takes (the API's and the importer's batch size).
MAX_ROWS = 1000
#: How many rows of a batch run at once.
CONCURRENCY = 32
#: The idempotency record of a row: `idempotency_keys` under this method and path.
_METHOD, _PATH = "ROW", "/v1/journeys/batch"

Outcome = Literal["created", "existing", "refused", "invalid"]


class ExternalRefReused(ServiceError):
    """A row reuses an HR reference the caller already sent with other content."""

    code = "external_ref_reused"

    def __init__(self) -> None:
        super().__init__("this external_ref was already used for another nomination")


@dataclass(frozen=True)
class Row:
    """One row of a batch: a valid nomination with its canonical content, or the row's validation errors."""

    nomination: Nomination | None
    #: The row as JSON, canonical (sorted keys): its idempotency digest is taken of this.
    content: bytes = b""
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RowResult:
    """The result of one row."""

    outcome: Outcome
    journey_id: str | None = None
    #: The domain's or the service's refusal (or the caller's own, from `admit`).
    refusal: Exception | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


def canonical(row: object) -> bytes:
    """A row's canonical JSON: the same content always hashes the same."""
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


async def nominate_rows(
    resources: Resources,
    rows: Sequence[Row],
    caller: Principal,
    *,
    correlation_id: str | None = None,
    concurrency: int = CONCURRENCY,
    admit: Callable[[Nomination], Awaitable[Exception | None]] | None = None,
    on_done: Callable[[RowResult], None] | None = None,
) -> list[RowResult]:
    """Run every row through the nomination path; one result per row, in order.

    `admit` is the caller's own check of a row before it runs (the API's per-leader scope and
    rate limit): the refusal it answers refuses that row only. `on_done` is told each result as it comes
    (a progress bar). An error that is no refusal (Temporal or PostgreSQL down) ends the batch:
    rows done so far are recorded, so a retry answers them `existing`.
    """
    if len(rows) > MAX_ROWS:
        raise ValueError(f"a batch takes at most {MAX_ROWS} rows")
    bound = asyncio.Semaphore(concurrency)
    locks: dict[str, asyncio.Lock] = {}
    results: list[RowResult | None] = [None] * len(rows)

    async def run(index: int, row: Row) -> None:
        async with bound:
            result = await _row(resources, row, caller, locks, correlation_id, admit)
        results[index] = result
        if on_done is not None:
            on_done(result)

    try:
        async with asyncio.TaskGroup() as group:
            for index, row in enumerate(rows):
                group.create_task(run(index, row))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [result for result in results if result is not None]


async def _row(
    resources: Resources,
    row: Row,
    caller: Principal,
    locks: dict[str, asyncio.Lock],
    correlation_id: str | None,
    admit: Callable[[Nomination], Awaitable[Exception | None]] | None,
) -> RowResult:
    nomination = row.nomination
    if nomination is None:
        return RowResult("invalid", errors=row.errors)
    key = _row_key(nomination, row.content)
    digest = hashlib.sha256(row.content).hexdigest()
    # One talent (or one row key) at a time: the second row finds the first's journey.
    names = sorted({f"talent:{nomination.talent.person_id}", f"key:{key}"})
    first, second = (locks.setdefault(name, asyncio.Lock()) for name in names)
    async with first, second:
        try:
            refused_first = await admit(nomination) if admit is not None else None
            if refused_first is not None:
                return RowResult("refused", refusal=refused_first)
            recorded = await resources.pool.fetchrow(
                "SELECT body_sha256, response->>'journey_id' AS journey_id FROM idempotency_keys "
                "WHERE principal = $1 AND key = $2 AND method = $3",
                caller.token_id,
                key,
                _METHOD,
            )
            if recorded is not None:
                if recorded["body_sha256"] != digest:
                    raise ExternalRefReused
                return RowResult("existing", journey_id=str(recorded["journey_id"]))
            created, status = await nominate(resources, nomination, caller, correlation_id=correlation_id)
        except (DomainError, ServiceError, PersonErased, UnknownProgramme) as refused:
            return RowResult("refused", refusal=refused)
        journey_id = str(status["journey_id"])
        await resources.pool.execute(
            """INSERT INTO idempotency_keys (principal, key, method, path, body_sha256, status, response)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING""",
            caller.token_id,
            key,
            _METHOD,
            _PATH,
            digest,
            201 if created else 200,
            orjson.dumps({"journey_id": journey_id}).decode(),
        )
        return RowResult("created" if created else "existing", journey_id=journey_id)


def _row_key(nomination: Nomination, content: bytes) -> str:
    """The row's idempotency key: its HR reference, else a digest of its content (per caller, by the table)."""
    if nomination.external_ref:
        return "row:ref:" + hashlib.sha256(nomination.external_ref.encode()).hexdigest()
    return "row:content:" + hashlib.sha256(content).hexdigest()
