"""What the API and the CLI do to journeys: nominate, send a command, erase a person.

Reads come from the read models; every change goes through the journey's workflow (its single
writer), except the note of an erasure on a journey whose workflow has ended, which is decided by
the same domain code and appended under the stream's version guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.deps import SCOPE, Resources
from api.models import NominationIn
from api.problems import Problem, not_found
from domain import commands as c
from domain.errors import DomainError
from domain.events import EventMetadata, stream_id_for
from domain.journey import decide
from store.calendar_feeds import CalendarFeeds
from store.eventstore import ConcurrencyError
from store.vault import PersonData
from workflows.client import journey_handle, start_journey
from workflows.journey import CommandResult, TalentJourneyWorkflow

log = structlog.get_logger("talent.api")

#: A talent has at most one journey in these states per programme; a nomination returns it.
OPEN_STATES = ("nominated", "enrolled", "active", "paused", "completed", "not_completed", "following_up")


def actor(caller: Principal) -> c.Actor:
    """The caller as the actor of a command: a person id, or the token's stable id (§8.2)."""
    role: c.ActorRole = caller.role
    return {"actor_id": caller.person_id or caller.token_id, "actor_role": role}


async def status(resources: Resources, journey_id: str) -> dict[str, Any]:
    """A journey's current status (the read model), or 404."""
    raw = await resources.pool.fetchval("SELECT status::text FROM journey_status WHERE journey_id = $1", journey_id)
    if raw is None:
        raise not_found("journey")
    found: dict[str, Any] = orjson.loads(raw)
    return found


async def nominate(
    resources: Resources, body: NominationIn, caller: Principal, *, correlation_id: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """Start a journey, or find the talent's open one: (created, status).

    The open journey is answered only to a caller who may see it (§8.1); anyone else gets 409
    `journey_exists`.
    """
    cohort = await resources.catalog.cohort(body.cohort_id)
    if cohort is None:
        raise Problem(422, "Invalid request", f"unknown cohort {body.cohort_id!r}", code="unknown_cohort")
    programme = await resources.catalog.programme(cohort.programme_id, cohort.programme_version)
    if programme is None:  # pragma: no cover - cohorts are created against published programmes
        raise Problem(422, "Invalid request", "the cohort's programme is not published", code="unknown_programme")
    if body.talent.person_id == body.nearest_leader.person_id:
        raise Problem(422, "Invalid request", "the talent cannot be their own nearest leader", code="leader_is_talent")
    existing = await resources.pool.fetchrow(
        f"SELECT s.journey_id, {SCOPE} AS visible FROM journey_status s "
        "WHERE s.talent_id = $3 AND s.programme_id = $4 AND s.state = ANY($5) ORDER BY s.journey_id LIMIT 1",
        caller.role,
        caller.person_id,
        body.talent.person_id,
        programme.id,
        list(OPEN_STATES),
    )
    if existing is not None:
        if not existing["visible"]:
            # §8.1: the caller learns that a journey exists, nothing of it.
            raise Problem(
                409, "Journey exists", "the talent already has an open journey in this programme", code="journey_exists"
            )
        return False, await status(resources, existing["journey_id"])
    # A deterministic id, so two concurrent nominations of one talent start one workflow; keyed
    # by the vault's key, so nobody can compute a journey's id from a person id.
    ended = await resources.pool.fetchval(
        "SELECT count(*) FROM journey_status WHERE talent_id = $1 AND programme_id = $2",
        body.talent.person_id,
        programme.id,
    )
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
    await start_journey(resources.temporal, nomination, task_queue=resources.task_queue, correlation_id=correlation_id)
    log.info("journey_started", journey_id=journey_id, workflow_id=f"journey-{journey_id}")
    # The workflow stores the nomination in its first step; answer with the stored journey.
    for _ in range(200):
        found = await resources.store.status(journey_id)
        if found is not None:
            return True, found.model_dump(mode="json")
        await asyncio.sleep(0.05)
    return True, {"journey_id": journey_id, "cohort_id": cohort.cohort_id, "state": "nominated"}


async def execute(
    resources: Resources,
    journey_id: str,
    update: str,
    command: c.Command | Callable[[dict[str, str | None]], c.Command],
    *,
    update_id: str,
    talent_id: str | None = None,
    texts: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Send a command to the journey's workflow as an update; its status and the events it caused.

    `command` is the command, or makes it from the vault references of its free `texts` (field
    -> text; they are stored under `talent_id`, so an erasure of the talent takes them too). A
    command with texts is first checked by the workflow (the `check_command` query runs the
    update's own validator), so a refused command stores nothing; the texts go to the vault only
    then, with ids derived from the update id, so a
    retry stores them once; if the journey refuses the command after all (it moved on in
    between), they are deleted again. The same `update_id` twice is one update (Temporal
    deduplicates it while the workflow runs).
    """
    handle = journey_handle(resources.temporal, journey_id)
    build = command if callable(command) else (lambda _: command)
    given = {field: text for field, text in (texts or {}).items() if text}
    if given and talent_id is None:
        raise ValueError("texts are stored under the journey's talent: pass talent_id")
    try:
        if given:
            check = await handle.query(
                TalentJourneyWorkflow.check_command, build({f"{field}_ref": _UNSTORED for field in given})
            )
            if not check.accepted:
                raise DomainError(check.code or "refused", check.message or "refused", kind=check.kind)
        refs: dict[str, str | None] = {f"{field}_ref": None for field in texts or {}}
        for field, text in given.items():
            refs[f"{field}_ref"] = await resources.vault.put_text(
                str(talent_id), text, text_id=_text_id(update_id, field)
            )
        try:
            result = await handle.execute_update(update, build(refs), id=update_id, result_type=CommandResult)
        except WorkflowUpdateFailedError:
            await resources.vault.discard_texts(ref for ref in refs.values() if ref)
            raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Problem(
                409, "Journey closed", "the journey has ended and takes no commands", code="journey_ended"
            ) from exc
        raise
    log.info("command_applied", journey_id=journey_id, update=update, update_id=update_id, events=result.events)
    body = await status(resources, journey_id)
    body["events"] = result.events
    return body


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


async def erase_person(resources: Resources, person_id: str, actor: c.Actor) -> dict[str, Any]:
    """Crypto-shred a person's data and note the erasure in every journey they appear in.

    Idempotent: erasing twice changes nothing the second time. The events stay (they hold ids,
    never personal data); names, e-mails and free texts become unreadable everywhere at once.
    """
    erased_now = await resources.vault.erase(person_id)
    await CalendarFeeds(resources.pool).revoke(person_id)
    journeys = [
        r["journey_id"]
        for r in await resources.pool.fetch(
            "SELECT DISTINCT journey_id FROM journey_access WHERE person_id = $1 ORDER BY journey_id", person_id
        )
    ]
    command = c.RecordErasure(**actor, person_id=person_id)
    for journey_id in journeys:
        try:
            await journey_handle(resources.temporal, journey_id).execute_update(
                "record_erasure", command, id=f"erase:{person_id}", result_type=CommandResult
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await _note_erasure_on_closed_journey(resources, journey_id, command)
        except WorkflowUpdateFailedError:
            log.warning("erasure_not_noted", journey_id=journey_id, person_id=person_id)
    log.info("person_erased", person_id=person_id, journeys=len(journeys), already_erased=not erased_now)
    return {"person_id": person_id, "erased": True, "already_erased": not erased_now, "journeys": journeys}


async def _note_erasure_on_closed_journey(resources: Resources, journey_id: str, command: c.RecordErasure) -> None:
    """The workflow has ended, so nothing else writes the stream: decide and append here."""
    stream = stream_id_for(journey_id)
    for _ in range(3):
        state = await resources.store.load(journey_id)
        if state is None:
            return
        events = decide(state, command, now=datetime.now(UTC), new_ids=uuid.uuid4)
        if not events:
            return
        try:
            await resources.store.append(
                stream, state.version, events, metadata=EventMetadata(actor=command.actor_id, causation_id="erasure")
            )
        except ConcurrencyError:
            continue
        return
