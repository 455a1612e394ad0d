"""What the API and the CLI do to journeys: nominate, send a command, erase a person.

Reads come from the read models; every change goes through the journey's workflow (its single
writer), except the note of an erasure on a journey whose workflow has ended, which is decided by
the same domain code and appended under the stream's version guard.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.store.calendar_feeds import CalendarFeeds
from activities.store.eventstore import ConcurrencyError
from activities.store.vault import PersonData
from api.deps import Resources
from api.models import NominationIn
from api.problems import Problem, not_found
from domain import commands as c
from domain.events import EventMetadata, stream_id_for
from domain.journey import decide
from workers.journeys import journey_handle, start_journey
from workflows.journey import CommandResult

log = structlog.get_logger("talent.api")

#: A talent has at most one journey in these states per programme; a nomination returns it.
OPEN_STATES = ("nominated", "enrolled", "active", "paused", "completed", "not_completed", "following_up")
_NAMESPACE = uuid.UUID("0d8f4b53-8a3e-4c1e-9b7a-52f1c0e2d6a4")


async def status(resources: Resources, journey_id: str) -> dict[str, Any]:
    """A journey's current status (the read model), or 404."""
    raw = await resources.pool.fetchval("SELECT status::text FROM journey_status WHERE journey_id = $1", journey_id)
    if raw is None:
        raise not_found("journey")
    found: dict[str, Any] = orjson.loads(raw)
    return found


async def nominate(
    resources: Resources, body: NominationIn, actor: c.Actor, *, correlation_id: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """Start a journey, or find the talent's open one: (created, status)."""
    cohort = await resources.catalog.cohort(body.cohort_id)
    if cohort is None:
        raise Problem(422, "Invalid request", f"unknown cohort {body.cohort_id!r}", code="unknown_cohort")
    programme = await resources.catalog.programme(cohort.programme_id, cohort.programme_version)
    if programme is None:  # pragma: no cover - cohorts are created against published programmes
        raise Problem(422, "Invalid request", "the cohort's programme is not published", code="unknown_programme")
    if body.talent.person_id == body.nearest_leader.person_id:
        raise Problem(422, "Invalid request", "the talent cannot be their own nearest leader", code="leader_is_talent")
    existing = await resources.pool.fetchval(
        "SELECT journey_id FROM journey_status WHERE talent_id = $1 AND programme_id = $2 AND state = ANY($3) "
        "ORDER BY journey_id LIMIT 1",
        body.talent.person_id,
        programme.id,
        list(OPEN_STATES),
    )
    if existing is not None:
        return False, await status(resources, existing)
    # A deterministic id: two concurrent nominations of one talent start one workflow.
    ended = await resources.pool.fetchval(
        "SELECT count(*) FROM journey_status WHERE talent_id = $1 AND programme_id = $2",
        body.talent.person_id,
        programme.id,
    )
    journey_id = str(uuid.uuid5(_NAMESPACE, f"{programme.id}:{body.talent.person_id}:{ended}"))
    for person in (body.talent, body.nearest_leader, body.leaders_leader):
        if person is not None:
            await resources.vault.put_person(
                person.person_id,
                PersonData(name=person.name, email=person.email, workplace=person.workplace, language=person.language),
            )
    motivation = await resources.vault.put_text(body.talent.person_id, body.motivation)
    nomination = c.NominateTalent(
        **actor,
        journey_id=journey_id,
        talent_id=body.talent.person_id,
        nearest_leader_id=body.nearest_leader.person_id,
        leaders_leader_id=body.leaders_leader.person_id if body.leaders_leader else None,
        programme=programme,
        cohort=cohort,
        motivation_ref=motivation,
        external_ref=body.external_ref,
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
    resources: Resources, journey_id: str, update: str, command: c.Command, *, update_id: str | None
) -> dict[str, Any]:
    """Send a command to the journey's workflow as an update; its status and the events it caused.

    The same `update_id` twice is one update (Temporal deduplicates it while the workflow runs).
    """
    handle = journey_handle(resources.temporal, journey_id)
    try:
        result = await handle.execute_update(update, command, id=update_id, result_type=CommandResult)
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
