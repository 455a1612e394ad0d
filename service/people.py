"""What the API and the CLI do to people: replace their details, erase them (the right to be forgotten)."""

from __future__ import annotations

from typing import Any

import structlog

from domain import commands as c
from domain.errors import DomainError
from service.bootstrap import Resources
from service.errors import NotFound
from service.journeys import append_after_end, journeys
from store.calendar_feeds import CalendarFeeds
from store.vault import PersonData
from store.views import journeys as journeys_view
from workflows.client import JourneyNotRunning

log = structlog.get_logger("talent.service")


async def replace_person(resources: Resources, person_id: str, data: PersonData, actor: c.Actor) -> dict[str, Any]:
    """Replace a person's stored details: the one way they change (a nomination never does, §8.2).

    `NotFound` for a person the vault holds no details of, `PersonErased` for an erased one. The
    answer carries no personal data (it may be kept for an Idempotency-Key replay).
    """
    if not await resources.vault.replace_person(person_id, data):
        raise NotFound("person")
    log.info("person_replaced", person_id=person_id, actor_id=actor["actor_id"], role=actor["actor_role"])
    return {"person_id": person_id, "status": "replaced"}


async def erase_person(resources: Resources, person_id: str, actor: c.Actor) -> dict[str, Any]:
    """Crypto-shred a person's data and note the erasure in every journey they appear in.

    Idempotent: erasing twice changes nothing the second time. The events stay (they hold ids,
    never personal data); names, e-mails and free texts become unreadable everywhere at once.
    """
    erased_now = await resources.vault.erase(person_id)
    await CalendarFeeds(resources.pool).revoke(person_id)
    noted = await journeys_view.journeys_of_person(resources.pool, person_id)
    command = c.RecordErasure(**actor, person_id=person_id)
    client = journeys(resources)
    for journey_id in noted:
        try:
            await client.send(journey_id, command, update_id=f"erase:{person_id}")
        except JourneyNotRunning:
            await _note_erasure_on_closed_journey(resources, journey_id, command)
        except DomainError as exc:
            log.warning("erasure_not_noted", journey_id=journey_id, person_id=person_id, code=exc.code)
    log.info("person_erased", person_id=person_id, journeys=len(noted), already_erased=not erased_now)
    return {"person_id": person_id, "erased": True, "already_erased": not erased_now, "journeys": noted}


async def _note_erasure_on_closed_journey(resources: Resources, journey_id: str, command: c.RecordErasure) -> None:
    """The workflow has ended, so nothing else writes the stream: decide and append here."""
    try:
        await append_after_end(resources, journey_id, command, causation_id="erasure")
    except NotFound:
        return
    except DomainError as exc:
        log.warning("erasure_not_noted", journey_id=journey_id, person_id=command.person_id, code=exc.code)
