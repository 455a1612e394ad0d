"""Operator commands: publish a programme, create a cohort, nominate, read a journey, erase a person.

They act as the API does (the same service code, the same checks) on the configured database
and Temporal. Exit codes (mapped in `cli.main`): 0 done, 1 refused or invalid input (the message
says why), 2 a dependency (PostgreSQL, Temporal) is unreachable.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from api.auth import Principal, Role
from api.models import NominationIn
from domain import commands as c
from domain.errors import ProgrammeInvalid
from domain.events import stream_id_for
from domain.programme import parse_cohort
from infra.postgres import open_pool
from infra.programmes import load_programme
from infra.settings import Settings
from service import journeys as service
from service import people
from service.bootstrap import open_resources
from store.catalog import Catalog, CatalogConflict, UnknownProgramme
from store.eventstore import EventStore

REFUSED = 1


class Refused(Exception):
    """The command was refused: bad input, unknown id, or a rule; exit code 1."""


def _operator(role: c.ActorRole = "coordinator") -> c.Actor:
    return {"actor_id": f"cli:{getpass.getuser()}", "actor_role": role}


def _read_document(path: Path) -> Any:
    """A YAML or JSON file (JSON is YAML), or Refused naming the file."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise Refused(f"{path}: no such file") from exc
    except yaml.YAMLError as exc:
        raise Refused(f"{path}: not valid YAML/JSON: {exc}") from exc


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())


async def publish_programme(settings: Settings, path: Path) -> int:
    """Publish a programme version from a YAML/JSON definition (§3)."""
    try:
        programme = load_programme(path.read_text())  # noqa: ASYNC240 - a small local file, once
    except FileNotFoundError as exc:
        raise Refused(f"{path}: no such file") from exc
    except ProgrammeInvalid as exc:
        raise Refused(f"{path}: " + "; ".join(exc.errors)) from exc
    pool = await open_pool(settings)
    try:
        created = await Catalog(pool).publish(programme)
    except CatalogConflict as exc:
        raise Refused(str(exc)) from exc
    finally:
        await pool.close()
    print(f"{'published' if created else 'already published'}: {programme.id} version {programme.version}")
    return 0


async def create_cohort(settings: Settings, path: Path) -> int:
    """Create a cohort from a YAML/JSON file (the body of POST /v1/cohorts)."""
    try:
        cohort = parse_cohort(_read_document(path))
    except ProgrammeInvalid as exc:
        raise Refused(f"{path}: " + "; ".join(exc.errors)) from exc
    pool = await open_pool(settings)
    try:
        created = await Catalog(pool).create_cohort(cohort)
    except (CatalogConflict, UnknownProgramme, ProgrammeInvalid) as exc:
        raise Refused(str(exc)) from exc
    finally:
        await pool.close()
    print(f"{'created' if created else 'already exists'}: cohort {cohort.cohort_id}")
    return 0


async def nominate(settings: Settings, path: Path, role: Role) -> int:
    """Nominate a talent from a YAML/JSON file (the body of POST /v1/journeys)."""
    try:
        body = NominationIn.model_validate(_read_document(path))
    except ValidationError as exc:
        raise Refused(f"{path}: {_errors(exc)}") from exc
    async with open_resources(settings) as resources:
        created, journey = await service.nominate(
            resources, body, Principal(token_id=f"cli:{getpass.getuser()}", role=role)
        )
    print(json.dumps(journey, indent=2, ensure_ascii=False))
    print(f"{'nominated' if created else 'already has an open journey'}: {journey['journey_id']}", file=sys.stderr)
    return 0


async def journey_status(settings: Settings, journey_id: str, as_of: datetime | None) -> int:
    """Print a journey's status (now, or as it stood at `as_of`) as JSON."""
    if as_of is not None and as_of.tzinfo is None:
        raise Refused("--as-of needs a UTC offset, e.g. 2027-03-01T12:00:00+01:00")
    pool = await open_pool(settings)
    try:
        store = EventStore(pool)
        status = await (store.status(journey_id) if as_of is None else store.status_as_of(journey_id, as_of))
    finally:
        await pool.close()
    if status is None:
        raise Refused(f"journey {journey_id} not found" + (" at that time" if as_of else ""))
    print(status.model_dump_json(indent=2))
    return 0


async def journey_history(settings: Settings, journey_id: str, *, as_json: bool) -> int:
    """Print a journey's events, oldest first."""
    pool = await open_pool(settings)
    try:
        events = await EventStore(pool).read_stream(stream_id_for(journey_id))
    finally:
        await pool.close()
    if not events:
        raise Refused(f"journey {journey_id} not found")
    for ev in events:
        if as_json:
            print(ev.model_dump_json())
            continue
        detail = ", ".join(f"{k}={v}" for k, v in ev.data.items() if v not in (None, [], {}) and k != "schema_version")
        print(f"{ev.stream_version:>4}  {ev.occurred_at:%Y-%m-%d %H:%M:%S%z}  {ev.event_type:<26} {detail}")
    return 0


async def erase_person(settings: Settings, person_id: str, *, confirmed: bool) -> int:
    """Erase a person's personal data (crypto-shredding) and note it in their journeys."""
    if not confirmed:
        raise Refused(f"erasing {person_id} cannot be undone: repeat with --yes")
    async with open_resources(settings) as resources:
        result = await people.erase_person(resources, person_id, _operator())
    state = "was already erased" if result["already_erased"] else "erased"
    print(f"{person_id} {state}; noted in {len(result['journeys'])} journey(s)")
    return 0
