"""PUT /v1/people/{id} over HTTP: the one way a stored person's details change (§8.2)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from store.vault import Erased, PeopleVault, PersonData
from tests.e2e.conftest import VAULT_KEY, auth


@pytest.fixture
def vault(pool: asyncpg.Pool) -> PeopleVault:
    """The vault the API under test reads and writes."""
    return PeopleVault(pool, VAULT_KEY)


@pytest.fixture
async def person(vault: PeopleVault, unique: str) -> str:
    """A stored person's id."""
    person_id = f"p-people-{unique}"
    await vault.put_person(person_id, PersonData(name="Mette Sørensen", email="mette@example.org", workplace="UCN"))
    return person_id


def _body(**changes: Any) -> dict[str, Any]:
    return {"name": "Mette Holm", "email": "mette.holm@example.org", "language": "en", "workplace": "Skolen"} | changes


async def test_a_put_replaces_the_stored_person_and_repeating_it_changes_nothing(
    api: httpx.AsyncClient, vault: PeopleVault, person: str
) -> None:
    first = await api.put(f"/v1/people/{person}", json=_body(), headers=auth("hr"))
    assert first.status_code == 200, first.text
    # The answer names the person by id only: it may be kept for a replay, so it holds no personal data.
    assert first.json() == {"person_id": person, "status": "replaced"}
    stored = PersonData(name="Mette Holm", email="mette.holm@example.org", workplace="Skolen", language="en")
    assert await vault.get_person(person) == stored

    again = await api.put(f"/v1/people/{person}", json=_body(), headers=auth("coordinator"))
    assert (again.status_code, again.json()) == (200, first.json())
    assert await vault.get_person(person) == stored

    # A replacement replaces: what the body leaves out takes its default.
    minimal = await api.put(f"/v1/people/{person}", json={"name": "M", "email": "m@example.org"}, headers=auth("hr"))
    assert minimal.status_code == 200, minimal.text
    assert await vault.get_person(person) == PersonData(name="M", email="m@example.org")


async def test_an_idempotency_key_replays_the_put(api: httpx.AsyncClient, vault: PeopleVault, person: str) -> None:
    headers = auth("hr") | {"Idempotency-Key": f"put-{person}"}
    first = await api.put(f"/v1/people/{person}", json=_body(), headers=headers)
    replay = await api.put(f"/v1/people/{person}", json=_body(), headers=headers)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.json() == first.json() and replay.headers.get("Idempotent-Replayed") == "true"
    other = await api.put(f"/v1/people/{person}", json=_body(name="Someone Else"), headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    person_data = await vault.get_person(person)
    assert isinstance(person_data, PersonData) and person_data.name == "Mette Holm"


@pytest.mark.parametrize("who", ["leader", "other_leader", "talent"])
async def test_leaders_and_talents_may_not_change_a_person(
    api: httpx.AsyncClient, vault: PeopleVault, person: str, who: str
) -> None:
    before = await vault.get_person(person)
    response = await api.put(f"/v1/people/{person}", json=_body(), headers=auth(who))
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert await vault.get_person(person) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "mette@example.org, boss@example.org"}, "email"),
        ({"email": "Mette <mette@example.org>"}, "email"),
        ({"email": "mette@example.org\r\nBcc: x@evil.example"}, "email"),
        ({"name": "Mette\r\nBcc: x@evil.example"}, "name"),
        ({"name": "Mette \u202egnoS"}, "name"),
        ({"workplace": "Skolen\x00"}, "workplace"),
        ({"language": "de"}, "language"),
        ({"role": "coordinator"}, "role"),
    ],
)
async def test_a_bad_body_is_422_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient, vault: PeopleVault, person: str, change: dict[str, str], field: str
) -> None:
    before = await vault.get_person(person)
    response = await api.put(f"/v1/people/{person}", json=_body(**change), headers=auth("hr"))
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert await vault.get_person(person) == before


async def test_a_bad_person_id_is_422(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/people/p%0Ax", json=_body(), headers=auth("hr"))
    assert response.status_code == 422, response.text


async def test_an_unknown_person_is_404_and_is_not_created(
    api: httpx.AsyncClient, vault: PeopleVault, unique: str
) -> None:
    response = await api.put(f"/v1/people/p-nobody-{unique}", json=_body(), headers=auth("hr"))
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert await vault.get_person(f"p-nobody-{unique}") is None


async def test_a_put_for_an_erased_person_is_409_and_they_stay_erased(
    api: httpx.AsyncClient, vault: PeopleVault, person: str
) -> None:
    assert await vault.erase(person)
    response = await api.put(f"/v1/people/{person}", json=_body(), headers=auth("coordinator"))
    assert (response.status_code, response.json()["code"]) == (409, "person_erased")
    assert isinstance(await vault.get_person(person), Erased)
