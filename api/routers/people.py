"""People: their details (§8.2) and erasure of personal data (the right to be forgotten)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import Caller, Deps, require
from api.idempotency import IdempotencyKey, idempotent
from api.models import PersonDetailsIn, PersonId
from service import people
from service.journeys import actor
from store.vault import PersonData

router = APIRouter(prefix="/v1/people", tags=["people"])


@router.put("/{person_id}")
async def replace_person(
    request: Request,
    person_id: PersonId,
    body: PersonDetailsIn,
    resources: Deps,
    caller: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Replace a person's name, e-mail, language and workplace (HR system, coordinator): the one way
    stored details change, since a nomination never changes a stored person. Omitted fields take
    their defaults (Danish, no workplace). 404 for a person the vault holds no details of, 409
    `person_erased` for an erased one (`api.problems` maps both); the same body again gives the same answer.

    The answer carries no personal data: it may be kept for an Idempotency-Key replay."""
    require(caller, "hr_system", "coordinator")

    async def run() -> tuple[int, Any]:
        data = PersonData(name=body.name, email=body.email, workplace=body.workplace, language=body.language)
        return 200, await people.replace_person(resources, person_id, data, actor(caller))

    return await idempotent(request, resources, caller, key, run)


@router.delete("/{person_id}")
async def erase_person(person_id: PersonId, resources: Deps, caller: Caller) -> dict[str, Any]:
    """Erase a person's data (coordinator): their name, e-mail and free texts become unreadable
    at once; every journey they appear in notes the erasure. Erasing twice changes nothing."""
    require(caller, "coordinator")
    return await people.erase_person(resources, person_id, actor(caller))
