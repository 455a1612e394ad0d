"""Retention per data category (PRODUCT §8.7): what is due for deletion, and deleting exactly that.

`plan(now)` lists what the rules say must go, each item with its category, the rule that makes it
due, a PII-free subject reference (an id the service minted, or a row count) and the instant it
became due. `apply(items, run_id)` deletes exactly those items and records each deletion in the
append-only `retention_ledger`. Personal data is crypto-shredded in the vault (free texts lose
their ciphertext, a person's contact data loses their data key); the other categories are rows.
The events are never touched: the archive keeps the (pseudonymous) history, the vault forgets the
person. Running a plan twice deletes nothing the second time and records nothing new.

The facts come from where they live: a journey's end (its close, withdrawal or rejection) and its
recorded outcomes from the domain's fold of its events; which journeys are ended from the read
model's state. Defaults and their reasons: docs/retention.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

import asyncpg
import isodate
import structlog

from domain import events as e
from domain.calendar import parse_iso_duration
from domain.journey import TERMINAL_STATES, JourneyState, evolve
from store.eventstore import EventStore
from store.vault import PeopleVault

log = structlog.get_logger("talent.retention")

Category = Literal[
    "free_texts", "contact_data", "idempotency_keys", "outbox_delivered", "dashboard_sessions", "access_log"
]
CATEGORIES: tuple[Category, ...] = (
    "free_texts",
    "contact_data",
    "idempotency_keys",
    "outbox_delivered",
    "dashboard_sessions",
    "access_log",
)
SubjectKind = Literal["text", "person", "rows"]
Duration: TypeAlias = "timedelta | isodate.Duration"

#: The access log's own expiry, created by the access log's migration (0007).
_EXPIRE_ACCESS_LOG = "expire_access_log(timestamptz)"
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Rule:
    """One category's rule: how long after its starting point (`after`) the data goes."""

    category: Category
    period: str
    after: str

    @property
    def duration(self) -> Duration:
        """The period as a duration (`P6M` is six calendar months)."""
        return parse_iso_duration(self.period)

    @property
    def text(self) -> str:
        """The rule as shown and recorded, e.g. `free_texts: P6M after the journey ended`."""
        return f"{self.category}: {self.period} after {self.after}"


#: The defaults (docs/retention.md gives the reasons), overridden by TALENT_RETENTION_<CATEGORY>.
DEFAULT_PERIODS: dict[Category, str] = {
    "free_texts": "P6M",
    "contact_data": "P1Y",
    "idempotency_keys": "P7D",
    "outbox_delivered": "P30D",
    "dashboard_sessions": "P1D",
    "access_log": "P3Y",
}
_AFTER: dict[Category, str] = {
    "free_texts": "the journey ended",
    "contact_data": "the talent's last journey ended, not appointed",
    "idempotency_keys": "the request",
    "outbox_delivered": "delivery",
    "dashboard_sessions": "the session expired",
    "access_log": "the access",
}


@dataclass(frozen=True)
class RetentionRules:
    """The rules of every category."""

    rules: dict[Category, Rule]

    @classmethod
    def from_periods(cls, periods: dict[Category, str] | None = None) -> RetentionRules:
        """Rules from ISO 8601 periods per category (missing ones: the defaults); ValueError on a bad one."""
        chosen = {**DEFAULT_PERIODS, **(periods or {})}
        rules: dict[Category, Rule] = {}
        for category in CATEGORIES:
            parse_iso_duration(chosen[category])  # refuse a bad period before anything runs
            rules[category] = Rule(category, chosen[category], _AFTER[category])
        return cls(rules)

    def __getitem__(self, category: Category) -> Rule:
        return self.rules[category]


@dataclass(frozen=True)
class RetentionItem:
    """One thing a retention run deletes: never a name or an address, only ids and counts."""

    category: Category
    rule: str
    subject_kind: SubjectKind
    #: A text id or person id (minted by the service); None for a count of rows.
    subject_ref: str | None
    due_since: datetime
    #: Rows: how many the plan found; None where only the deleting answers (the access log).
    count: int | None = 1
    #: Rows: the cutoff they are deleted below (inclusive); the subject's journeys otherwise.
    cutoff: datetime | None = None
    journeys: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, object]:
        """The item for `talent retention plan --json`."""
        return {
            "category": self.category,
            "rule": self.rule,
            "subject_kind": self.subject_kind,
            "subject_ref": self.subject_ref,
            "count": self.count,
            "due_since": self.due_since.isoformat(),
            "journeys": list(self.journeys),
        }


@dataclass(frozen=True)
class RetentionReport:
    """What a run deleted, per category (0: nothing was due, or a run before did it)."""

    run_id: str
    deleted: dict[str, int]
    recorded: int


@dataclass(frozen=True)
class _Ended:
    journey_id: str
    talent_id: str
    ended_at: datetime
    appointed: bool
    text_refs: tuple[str, ...]


def ended_journey(events: Sequence[e.RecordedEvent]) -> _Ended | None:
    """A journey's end (None while it runs): when it entered a terminal state (its close, the
    withdrawal, the rejection), whether an outcome says the talent was appointed, and the vault
    text ids its events carry. The domain's fold decides the state; nothing is recomputed here."""
    state: JourneyState | None = None
    ended_at: datetime | None = None
    refs: list[str] = []
    for recorded in events:
        state = evolve(state, recorded.to_event())
        if ended_at is None and state.state in TERMINAL_STATES:
            ended_at = state.closed_at or recorded.occurred_at
        refs.extend(v for k, v in recorded.data.items() if k.endswith("_ref") and isinstance(v, str))
    if state is None or ended_at is None or state.state not in TERMINAL_STATES:
        return None
    appointed = any(o.appointed for o in state.outcomes)
    return _Ended(state.journey_id, state.talent_id, ended_at, appointed, tuple(dict.fromkeys(refs)))


def _due_since(start: datetime, duration: Duration) -> datetime:
    due: datetime = start + duration
    return due


def _cutoff(now: datetime, duration: Duration) -> datetime:
    cutoff: datetime = now - duration
    return cutoff


class Retention:
    """Plans and applies retention on the service's database and vault."""

    def __init__(self, pool: asyncpg.Pool, vault: PeopleVault, rules: RetentionRules) -> None:
        """Retention with `rules` on `pool`, shredding through `vault`."""
        self._pool = pool
        self._vault = vault
        self._store = EventStore(pool)
        self.rules = rules

    # -- plan -----------------------------------------------------------------------------------

    async def plan(self, now: datetime) -> list[RetentionItem]:
        """Everything due at `now` (a deadline is inclusive: due at exactly the limit)."""
        if now.tzinfo is None:
            raise ValueError("the plan's instant needs a time zone offset")
        items = await self._plan_people(now)
        items += await self._plan_rows(now)
        return items

    async def _ended_journeys(self) -> list[_Ended]:
        rows = await self._pool.fetch(
            "SELECT journey_id, stream_id FROM journey_status WHERE state = ANY($1::text[]) ORDER BY journey_id",
            sorted(TERMINAL_STATES),
        )
        ended: list[_Ended] = []
        for row in rows:
            found = ended_journey(await self._store.read_stream(row["stream_id"]))
            if found is not None:
                ended.append(found)
        return ended

    async def _plan_people(self, now: datetime) -> list[RetentionItem]:
        ended = await self._ended_journeys()
        texts_rule, contact_rule = self.rules["free_texts"], self.rules["contact_data"]
        items: list[RetentionItem] = []
        # Free texts: every vault text an ended journey's events refer to, N after its end.
        due_texts: dict[str, tuple[datetime, str]] = {}
        for j in ended:
            since = _due_since(j.ended_at, texts_rule.duration)
            if since <= now:
                for ref in j.text_refs:
                    due_texts.setdefault(ref, (since, j.journey_id))
        if due_texts:
            stored = await self._pool.fetch(
                "SELECT text_id FROM person_texts WHERE text_id = ANY($1::text[]) ORDER BY text_id", list(due_texts)
            )
            for row in stored:
                since, journey_id = due_texts[row["text_id"]]
                items.append(
                    RetentionItem("free_texts", texts_rule.text, "text", row["text_id"], since, journeys=(journey_id,))
                )
        # Contact data: a talent none of whose journeys runs or appointed them, M after the last end.
        by_talent: dict[str, list[_Ended]] = {}
        for j in ended:
            by_talent.setdefault(j.talent_id, []).append(j)
        candidates = sorted(
            talent
            for talent, journeys in by_talent.items()
            if not any(j.appointed for j in journeys)
            and _due_since(max(j.ended_at for j in journeys), contact_rule.duration) <= now
        )
        if candidates:
            keep = await self._still_needed(candidates, {t: len(by_talent[t]) for t in candidates})
            for talent in candidates:
                if talent in keep:
                    continue
                journeys = by_talent[talent]
                since = _due_since(max(j.ended_at for j in journeys), contact_rule.duration)
                items.append(
                    RetentionItem(
                        "contact_data",
                        contact_rule.text,
                        "person",
                        talent,
                        since,
                        journeys=tuple(j.journey_id for j in journeys),
                    )
                )
        return items

    async def _still_needed(self, people: list[str], ended_counts: dict[str, int]) -> set[str]:
        """The people among `people` whose contact data must stay: already erased or never stored,
        a journey of theirs that is not ended (or not read as ended), a place as a leader on any
        journey, or a cohort they coordinate."""
        rows = await self._pool.fetch(
            """SELECT p.person_id,
                      (p.erased_at IS NOT NULL OR p.ciphertext IS NULL) AS nothing_to_shred,
                      (SELECT count(*) FROM journey_status s WHERE s.talent_id = p.person_id) AS as_talent,
                      EXISTS (SELECT 1 FROM journey_access a
                               WHERE a.person_id = p.person_id AND a.role <> 'talent')
                      OR EXISTS (SELECT 1 FROM journey_status s
                                  WHERE s.nearest_leader_id = p.person_id OR s.leaders_leader_id = p.person_id)
                      OR EXISTS (SELECT 1 FROM cohorts c
                                  WHERE c.definition->>'coordinator_id' = p.person_id) AS other_role
                 FROM people p WHERE p.person_id = ANY($1::text[])""",
            people,
        )
        found = {r["person_id"]: r for r in rows}
        keep: set[str] = set()
        for person in people:
            row = found.get(person)
            if row is None or row["nothing_to_shred"] or row["other_role"] or row["as_talent"] != ended_counts[person]:
                keep.add(person)
        return keep

    async def _plan_rows(self, now: datetime) -> list[RetentionItem]:
        queries: dict[Category, str] = {
            "idempotency_keys": "SELECT count(*), min(created_at) FROM idempotency_keys WHERE created_at <= $1",
            "outbox_delivered": (
                "SELECT count(*), min(delivered_at) FROM outbox WHERE status = 'delivered' AND delivered_at <= $1"
            ),
            "dashboard_sessions": ("SELECT count(*), min(expires_at) FROM dashboard_sessions WHERE expires_at <= $1"),
        }
        items: list[RetentionItem] = []
        for category, query in queries.items():
            rule = self.rules[category]
            cutoff = _cutoff(now, rule.duration)
            row = await self._pool.fetchrow(query, cutoff)
            assert row is not None
            if row[0]:
                since = _due_since(row[1], rule.duration)
                items.append(RetentionItem(category, rule.text, "rows", None, since, count=row[0], cutoff=cutoff))
        if await self._access_log_expiry_exists():
            rule = self.rules["access_log"]
            cutoff = _cutoff(now, rule.duration)
            row = await self._pool.fetchrow("SELECT count(*), min(at) FROM access_log WHERE at <= $1", cutoff)
            assert row is not None
            if row[0]:
                since = _due_since(row[1], rule.duration)
                items.append(RetentionItem("access_log", rule.text, "rows", None, since, count=row[0], cutoff=cutoff))
        return items

    async def _access_log_expiry_exists(self) -> bool:
        """The access log (migration 0007) and its own expiry, the one way its rows are deleted."""
        return bool(
            await self._pool.fetchval(
                "SELECT to_regprocedure($1) IS NOT NULL AND to_regclass('access_log') IS NOT NULL", _EXPIRE_ACCESS_LOG
            )
        )

    # -- apply ----------------------------------------------------------------------------------

    async def apply(self, plan_or_now: Sequence[RetentionItem] | datetime, run_id: str) -> RetentionReport:
        """Delete exactly the planned items (or those due at an instant) and record each deletion.

        Idempotent: an item a run before already deleted deletes nothing and is not recorded.
        """
        items = await self.plan(plan_or_now) if isinstance(plan_or_now, datetime) else list(plan_or_now)
        deleted: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        recorded = 0
        for item in items:
            count = await self._delete(item)
            if count:
                await self._record(item, count, run_id)
                deleted[item.category] += count
                recorded += 1
        log.info("retention_applied", run_id=run_id, planned=len(items), recorded=recorded, **deleted)
        return RetentionReport(run_id=run_id, deleted=deleted, recorded=recorded)

    async def _delete(self, item: RetentionItem) -> int:
        match item.category:
            case "free_texts":
                assert item.subject_ref is not None
                return len(await self._vault.expire_texts([item.subject_ref]))
            case "contact_data":
                assert item.subject_ref is not None
                return 1 if await self._vault.erase(item.subject_ref) else 0
            case "idempotency_keys":
                return await self._delete_rows("DELETE FROM idempotency_keys WHERE created_at <= $1", item)
            case "outbox_delivered":
                return await self._delete_rows(
                    "DELETE FROM outbox WHERE status = 'delivered' AND delivered_at <= $1", item
                )
            case "dashboard_sessions":
                return await self._delete_rows("DELETE FROM dashboard_sessions WHERE expires_at <= $1", item)
            case "access_log":
                if item.cutoff is None:
                    raise ValueError("an access_log item needs its cutoff")
                # The expiry deletes rows strictly before its argument; a deadline here is inclusive
                # (due at exactly the limit), so the argument is the cutoff's next microsecond.
                result = await self._pool.fetchval("SELECT expire_access_log($1)", item.cutoff + _MICROSECOND)
                return int(result or 0)
        raise ValueError(f"unknown retention category {item.category!r}")  # pragma: no cover

    async def _delete_rows(self, statement: str, item: RetentionItem) -> int:
        if item.cutoff is None:
            raise ValueError(f"a {item.category} item needs its cutoff")
        status: str = await self._pool.execute(statement, item.cutoff)
        return int(status.rsplit(" ", 1)[-1])

    async def _record(self, item: RetentionItem, count: int, run_id: str) -> None:
        await self._pool.execute(
            """INSERT INTO retention_ledger (run_id, category, rule, subject_kind, subject_ref, deleted, due_since)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            run_id,
            item.category,
            item.rule,
            item.subject_kind,
            item.subject_ref,
            count,
            item.due_since,
        )


def format_plan(items: Iterable[RetentionItem]) -> str:
    """The plan as a table for `talent retention plan`."""
    items = list(items)
    if not items:
        return "nothing is due"
    header = f"{'CATEGORY':<19} {'SUBJECT':<44} {'COUNT':>6}  {'DUE SINCE':<25} RULE"
    lines = [header]
    for item in items:
        subject = f"{item.subject_kind}:{item.subject_ref}" if item.subject_ref else item.subject_kind
        count = "?" if item.count is None else str(item.count)
        lines.append(
            f"{item.category:<19} {subject:<44} {count:>6}  {item.due_since.isoformat(timespec='seconds'):<25} "
            f"{item.rule}"
        )
    return "\n".join(lines)
