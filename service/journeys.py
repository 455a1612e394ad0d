"""What the API, the dashboard and the CLI do to journeys: nominate, send a command.

Reads come from the read models; every change goes through the journey's workflow (its single
writer), by the typed journey client. Refusals are the domain's errors or `service.errors`.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
import structlog

from domain import commands as c
from domain.errors import DomainError
from domain.events import EventMetadata, stream_id_for
from domain.journey import decide
from domain.journey.nomination import check_cohort_open, check_cohort_staffed
from domain.policy import OPEN_STATES
from domain.values import Language
from infra.auth import Principal
from service.bootstrap import Resources
from service.errors import CohortFull, JourneyEnded, JourneyExists, LeaderIsTalent, NotFound, UnknownCohort
from store.catalog import UnknownProgramme
from store.eventstore import ConcurrencyError
from store.vault import PersonData
from store.views import cohorts as cohorts_view
from store.views import journeys as journeys_view
from workflows.client import JourneyClient, JourneyNotRunning

log = structlog.get_logger("talent.service")


class NamedPerson(Protocol):
    """A person a nomination names (the API's `PersonIn` is one): created in the vault if new."""

    @property
    def person_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def workplace(self) -> str | None: ...
    @property
    def language(self) -> Language: ...


class Nomination(Protocol):
    """What a nomination asks for (the API's `NominationIn` is one, validated at the edge)."""

    @property
    def cohort_id(self) -> str: ...
    @property
    def external_ref(self) -> str | None: ...
    @property
    def motivation(self) -> str: ...
    @property
    def talent(self) -> NamedPerson: ...
    @property
    def nearest_leader(self) -> NamedPerson: ...
    @property
    def leaders_leader(self) -> NamedPerson | None: ...


def actor(caller: Principal) -> c.Actor:
    """The caller as the actor of a command: a person id, or the token's stable id (§8.2)."""
    role: c.ActorRole = caller.role
    return {"actor_id": caller.person_id or caller.token_id, "actor_role": role}


def journeys(resources: Resources) -> JourneyClient:
    """The typed client of the journeys' workflows on the resources' Temporal and task queue."""
    return JourneyClient(resources.temporal, resources.task_queue)


async def status(resources: Resources, journey_id: str) -> dict[str, Any]:
    """A journey's current status (the read model), or `NotFound`."""
    raw = await journeys_view.stored_json(resources.pool, journey_id)
    if raw is None:
        raise NotFound("journey")
    found: dict[str, Any] = orjson.loads(raw)
    return found


async def nominate(
    resources: Resources, body: Nomination, caller: Principal, *, correlation_id: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """Start a journey, or find the talent's open one: (created, status).

    The open journey is answered only to a caller who may see it (§8.1); anyone else gets
    `JourneyExists`. The journey is answered once its nomination is stored: the workflow starts
    with an update that returns then (update-with-start), and its read model row is written in
    the same transaction as the events, so it is read once.
    """
    cohort = await resources.catalog.cohort(body.cohort_id)
    if cohort is None:
        raise UnknownCohort(body.cohort_id)
    programme = await resources.catalog.programme(cohort.programme_id, cohort.programme_version)
    if programme is None:  # pragma: no cover - cohorts are created against published programmes
        raise UnknownProgramme("the cohort's programme is not published")
    if body.talent.person_id == body.nearest_leader.person_id:
        raise LeaderIsTalent
    existing = await journeys_view.open_journey(
        resources.pool, caller, body.talent.person_id, programme.id, OPEN_STATES
    )
    if existing is not None:
        if not existing.visible:
            # §8.1: the caller learns that a journey exists, nothing of it.
            raise JourneyExists
        return False, await status(resources, existing.journey_id)
    # Rules 3 (PRODUCT §8.4): the journey would refuse a nomination into a cohort that is closed
    # or lacks the coordinator its ladders reach; ask the domain the same before anything is
    # stored (people, texts) or a workflow starts. The journey asks again on its own clock.
    check_cohort_staffed(programme, cohort, c.CURRENT_RULES_VERSION)
    check_cohort_open(programme, cohort, datetime.now(UTC))
    # A deterministic id, so two concurrent nominations of one talent start one workflow; keyed
    # by the vault's key, so nobody can compute a journey's id from a person id.
    ended = await journeys_view.journeys_counted(resources.pool, body.talent.person_id, programme.id)
    journey_id = resources.vault.keyed_id("journey", programme.id, body.talent.person_id, str(ended))
    # §8.2: a nomination creates the people it names that are not stored yet, and never changes
    # a stored person (that is PUT /v1/people/{id}, audited).
    for person in (body.talent, body.nearest_leader, body.leaders_leader):
        if person is not None:
            await resources.vault.add_person(
                person.person_id,
                PersonData(name=person.name, email=person.email, workplace=person.workplace, language=person.language),
            )
    # Free texts and the HR reference live in the vault under the talent, with ids derived from
    # the journey's: a retried nomination stores them once.
    motivation = await resources.vault.put_text(
        body.talent.person_id, body.motivation, text_id=_text_id(journey_id, "motivation")
    )
    external_ref = (
        await resources.vault.put_text(
            body.talent.person_id, body.external_ref, text_id=_text_id(journey_id, "external_ref")
        )
        if body.external_ref
        else None
    )
    nomination = c.NominateTalent(
        **actor(caller),
        journey_id=journey_id,
        talent_id=body.talent.person_id,
        nearest_leader_id=body.nearest_leader.person_id,
        leaders_leader_id=body.leaders_leader.person_id if body.leaders_leader else None,
        programme=programme,
        cohort=cohort,
        motivation_ref=motivation,
        external_ref_ref=external_ref,
        rules_version=c.CURRENT_RULES_VERSION,
    )
    await journeys(resources).start(nomination, correlation_id=correlation_id)
    log.info("journey_started", journey_id=journey_id, workflow_id=f"journey-{journey_id}")
    return True, await status(resources, journey_id)


async def execute(
    resources: Resources,
    journey_id: str,
    command: c.Command | Callable[[dict[str, str | None]], c.Command],
    *,
    update_id: str,
    talent_id: str | None = None,
    texts: Mapping[str, str | None] | None = None,
    people: Sequence[NamedPerson] = (),
) -> dict[str, Any]:
    """Send a command to the journey (the journey client's update for it); its status and the events it caused.

    `command` is the command, or makes it from the vault references of its free `texts` (field
    -> text; they are stored under `talent_id`, so an erasure of the talent takes them too). A
    command with texts is first checked by the workflow (the `check_command` query runs the
    update's own validator), so a refused command stores nothing; the texts go to the vault only
    then, with ids derived from the update id, so a retry stores them once; if the journey
    refuses the command after all (it moved on in between), they are deleted again. The same
    `update_id` twice is one update (Temporal deduplicates it while the workflow runs).

    Raises the domain's `DomainError` for a refusal, `JourneyEnded` once the workflow has ended
    (but for an outcome: a fact about a career, appended to the ended journey, PRODUCT §8.4),
    `PersonErased` for a text of an erased talent.

    `people` are the persons the command names (a new nearest leader): once the journey would
    take the command, those not stored yet are created in the vault, a stored one never changed
    (§8.2), as a nomination does.
    """
    client = journeys(resources)
    build = command if callable(command) else (lambda _: command)
    given = {field: text for field, text in (texts or {}).items() if text}
    if given and talent_id is None:
        raise ValueError("texts are stored under the journey's talent: pass talent_id")
    probe = build({f"{field}_ref": _UNSTORED for field in texts or {}})
    if isinstance(probe, c.DecideNomination) and probe.decision == "approve":
        async with _seat_taken(resources, journey_id):
            return await _execute(
                resources, client, journey_id, command, build, given, update_id, talent_id, texts, people
            )
    return await _execute(resources, client, journey_id, command, build, given, update_id, talent_id, texts, people)


#: The states in which a journey holds one of its cohort's places (capacity, PRODUCT §8.4).
SEATED_STATES = frozenset({"enrolled", "active"})
#: Per cohort, this process's approvals waiting for the seat lock (gone once none is waiting).
_seat_queues: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
#: Per pool (by id; gone once nobody holds it), the seat locks this process holds or waits for: at
#: most the pool's size less one, so a holder always finds a connection for the work it does
#: under its lock, however many cohorts approve at once.
_seat_holders: weakref.WeakValueDictionary[int, asyncio.Semaphore] = weakref.WeakValueDictionary()


@asynccontextmanager
async def _seat_taken(resources: Resources, journey_id: str) -> AsyncIterator[None]:
    """Hold the journey's cohort's seat lock while its approval is checked against the capacity and sent.

    The domain cannot count other journeys, so the service counts the cohort's seated journeys
    in the read model before it sends the approval (CohortFull: 409 `cohort_full`). Two
    approvals at once would both count the last free place: a check-then-act race. So the
    count and the approval run under a PostgreSQL advisory lock per cohort, on a connection of
    its own: approvals in one cohort are serialised across every API process, and the second
    counts the first's enrolment (the approval returns once its events and read-model row are
    committed). The lock goes with its session, so a crashed process never keeps it (asyncpg
    also unlocks all on a connection's return to the pool). What the lock cannot see: a
    capacity lowered by `PATCH /v1/cohorts` below the places already taken refuses only the
    approvals after it; and an approval whose answer timed out but still lands later.
    """
    found = await journeys_view.status(resources.pool, journey_id)
    if found is None or found.state != "nominated":
        yield  # unknown or already decided: the journey answers for itself
        return
    cohort = await resources.catalog.cohort(found.cohort_id)
    if cohort is None:  # pragma: no cover - a journey's cohort is never deleted
        yield
        return
    key = f"cohort-seats:{cohort.cohort_id}"
    # Approvals in this process queue here first, holding no connection: waiting in
    # pg_advisory_lock each would hold one of the pool's, and with more waiters than the pool has
    # connections the holder could never get the ones it needs to count and to answer (a deadlock).
    # Each holder takes one connection for its lock and needs another, now and then, for its work:
    # with fewer holders than connections, one is always free (approvals in several cohorts at once).
    queue = _seat_queues.setdefault(cohort.cohort_id, asyncio.Lock())
    pool = resources.pool
    holders = _seat_holders.setdefault(id(pool), asyncio.Semaphore(max(1, pool.get_max_size() - 1)))
    async with queue, holders, pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
        try:
            counts = await cohorts_view.counts_by_state(pool, cohort.cohort_id)
            seated = sum(n for state, n in counts.items() if state in SEATED_STATES)
            if seated >= cohort.capacity:
                log.info("cohort_full", journey_id=journey_id, cohort_id=cohort.cohort_id, capacity=cohort.capacity)
                raise CohortFull(cohort.capacity)
            yield
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError) as exc:
                # The connection died (PostgreSQL crashed or restarted): its session's lock went
                # with it, and the error that matters is the one that ended the work, if any.
                log.warning("seat_unlock_lost", cohort_id=cohort.cohort_id, error=type(exc).__name__)


async def _execute(
    resources: Resources,
    client: JourneyClient,
    journey_id: str,
    command: c.Command | Callable[[dict[str, str | None]], c.Command],
    build: Callable[[dict[str, str | None]], c.Command],
    given: dict[str, str],
    update_id: str,
    talent_id: str | None,
    texts: Mapping[str, str | None] | None,
    people: Sequence[NamedPerson] = (),
) -> dict[str, Any]:
    try:
        if given or people:
            unstored = {f"{field}_ref": _UNSTORED if field in given else None for field in texts or {}}
            check = await client.check(journey_id, build(unstored))
            if not check.accepted:
                if (replay := await _replayed(resources, journey_id, update_id)) is not None:
                    return replay
                raise DomainError(check.code or "refused", check.message or "refused", kind=check.kind)
            if not check.changes:
                # A repeat (a meeting logged again): nothing to record, so no text to keep either.
                log.info("command_changes_nothing", journey_id=journey_id, update_id=update_id)
                return {**await status(resources, journey_id), "events": []}
        for person in people:
            await resources.vault.add_person(
                person.person_id,
                PersonData(name=person.name, email=person.email, workplace=person.workplace, language=person.language),
            )
        refs: dict[str, str | None] = {f"{field}_ref": None for field in texts or {}}
        for field, text in given.items():
            refs[f"{field}_ref"] = await resources.vault.put_text(
                str(talent_id), text, text_id=_text_id(update_id, field)
            )
        built = build(refs)
        try:
            events = (await client.send(journey_id, built, update_id=update_id)).events
        except (DomainError, JourneyNotRunning):
            # A retry of a command already applied (its first answer was lost): the same answer.
            # Its texts are the first one's (the same ids): they stay.
            if (replay := await _replayed(resources, journey_id, update_id)) is not None:
                return replay
            await resources.vault.discard_texts(ref for ref in refs.values() if ref)
            raise
    except JourneyNotRunning as exc:
        if (replay := await _replayed(resources, journey_id, update_id)) is not None:
            return replay  # a retried withdrawal, say, that ended the journey the first time
        # An outcome is a fact about a career: it is taken after the close (§8.4). It carries no
        # text, so it can be built here without storing any.
        outcome = build({}) if not texts else None
        if not isinstance(outcome, c.RecordOutcome):
            raise JourneyEnded from exc
        built = outcome
        try:
            events = await append_after_end(resources, journey_id, outcome, causation_id=update_id)
        except DomainError as refused:
            # A journey on rules 1 or 2 takes no outcome once closed: it answers as every ended journey.
            if refused.code == "invalid_state":
                raise JourneyEnded from exc
            raise
    log.info("command_applied", journey_id=journey_id, command=built.type, update_id=update_id, events=events)
    body = await status(resources, journey_id)
    body["events"] = events
    return body


async def _replayed(resources: Resources, journey_id: str, update_id: str) -> dict[str, Any] | None:
    """The answer to a command the journey refuses because it already took it (a retry with the
    same update id whose first answer was lost), or None.

    Temporal deduplicates an update id only within one run of the workflow and while it keeps the
    update's outcome; the journey's own refusal ("already decided") or its end would answer a
    retry otherwise. The events record the update id they answer (their correlation id; an
    outcome after the end, its causation id): a retry gets the status and the events the first
    attempt caused. Asked only on a refusal.
    """
    stream = await resources.store.read_stream(stream_id_for(journey_id))
    events = [r.event_type for r in stream if update_id in (r.metadata.correlation_id, r.metadata.causation_id)]
    if not events:
        return None
    log.info("command_replayed", journey_id=journey_id, update_id=update_id, events=events)
    return {**await status(resources, journey_id), "events": events}


async def append_after_end(
    resources: Resources, journey_id: str, command: c.Command, *, causation_id: str | None
) -> list[str]:
    """A command to a journey whose workflow has ended (an outcome, an erasure note): the types of
    the events it caused.

    Nothing else writes an ended journey's stream, so the service decides with the domain and
    appends under the stream's version guard; a writer that got there first (two such commands at
    once) makes it decide again on the new state. The domain refuses what an ended journey does not
    take (`DomainError`); `NotFound` for a journey that does not exist.
    """
    stream = stream_id_for(journey_id)
    for _ in range(3):
        state = await resources.store.load(journey_id)
        if state is None:
            raise NotFound("journey")
        events = decide(state, command, now=datetime.now(UTC), new_ids=uuid.uuid4)
        if not events:
            return []
        metadata = EventMetadata(actor=command.actor_id, causation_id=causation_id)
        try:
            await resources.store.append(stream, state.version, events, metadata=metadata)
        except ConcurrencyError:
            continue
        log.info("appended_after_end", journey_id=journey_id, command=command.type, events=len(events))
        return [n.event.type for n in events]
    raise DomainError("concurrent_change", "the journey changed while the command was applied; try again")


#: The reference a command carries for a text while it is only being checked: never stored.
_UNSTORED = "t-unstored"


def _text_id(update_id: str, field: str) -> str:
    """A text's vault id, derived from its command's update id: a retried command stores it once."""
    return "t-" + hashlib.sha256(f"{update_id}\0{field}".encode()).hexdigest()[:32]


def update_id_for(token_id: str, idempotency_key: str | None) -> str:
    """The Temporal update id of a caller's command: their Idempotency-Key, scoped to them.

    Temporal deduplicates updates by id per workflow, so two callers' keys must never collide,
    and the key (a caller's free choice) is hashed: it is stored in the events' metadata. Without
    a key every request is its own update.
    """
    if idempotency_key is None:
        return f"u-{uuid.uuid4().hex}"
    return "u-" + hashlib.sha256(f"{token_id}\0{idempotency_key}".encode()).hexdigest()[:32]
