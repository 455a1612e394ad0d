"""People: erasure of personal data (the right to be forgotten)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import service
from api.deps import Caller, Deps, require
from api.models import PersonId
from api.routers.journeys import actor

router = APIRouter(prefix="/v1/people", tags=["people"])


@router.delete("/{person_id}")
async def erase_person(person_id: PersonId, resources: Deps, caller: Caller) -> dict[str, Any]:
    """Erase a person's data (coordinator): their name, e-mail and free texts become unreadable
    at once; every journey they appear in notes the erasure. Erasing twice changes nothing."""
    require(caller, "coordinator")
    return await service.erase_person(resources, person_id, actor(caller))
