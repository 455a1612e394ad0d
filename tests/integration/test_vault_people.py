"""The vault's people rules on a real PostgreSQL: a nomination adds, never changes; a PUT replaces (§8.2)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from store.vault import Erased, PeopleVault, PersonData, PersonErased

KEK = bytes(range(32))


@pytest.fixture
def vault(pool: asyncpg.Pool) -> PeopleVault:
    """A vault under the test master key."""
    return PeopleVault(pool, KEK)


def _mette(unique: str) -> PersonData:
    return PersonData(name=f"Mette {unique}", email=f"mette.{unique}@example.dk", workplace="UCN")


def _impostor() -> PersonData:
    return PersonData(name="Coordinator", email="attacker@example.org", workplace="Elsewhere", language="en")


async def test_add_person_stores_a_new_person_and_never_changes_a_stored_one(vault: PeopleVault, unique: str) -> None:
    person = f"p-add-{unique}"
    assert await vault.add_person(person, _mette(unique)) is True
    assert await vault.add_person(person, _impostor()) is False
    assert await vault.get_person(person) == _mette(unique)


async def test_add_person_stores_data_for_a_person_known_only_by_their_texts(vault: PeopleVault, unique: str) -> None:
    person = f"p-add-texts-{unique}"
    text_id = await vault.put_text(person, "a reflection")
    assert await vault.get_person(person) is None
    assert await vault.add_person(person, _mette(unique)) is True
    assert await vault.get_person(person) == _mette(unique)
    assert await vault.get_text(text_id) == "a reflection"  # the same key: the texts stay readable


async def test_concurrent_first_adds_store_exactly_one(vault: PeopleVault, unique: str) -> None:
    person = f"p-add-race-{unique}"
    candidates = [PersonData(name=f"N{i}", email=f"n{i}@example.dk") for i in range(8)]
    created = await asyncio.gather(*(vault.add_person(person, data) for data in candidates))
    assert sorted(created) == [False] * 7 + [True]
    assert await vault.get_person(person) == candidates[created.index(True)]


async def test_an_erased_person_is_not_created_again(vault: PeopleVault, unique: str) -> None:
    person = f"p-add-erased-{unique}"
    await vault.add_person(person, _mette(unique))
    await vault.erase(person)
    with pytest.raises(PersonErased):
        await vault.add_person(person, _mette(unique))
    with pytest.raises(PersonErased):
        await vault.replace_person(person, _mette(unique))
    assert isinstance(await vault.get_person(person), Erased)


async def test_replace_person_changes_a_stored_person_only(vault: PeopleVault, pool: asyncpg.Pool, unique: str) -> None:
    person = f"p-replace-{unique}"
    assert await vault.replace_person(person, _mette(unique)) is False
    # An unknown person stays unknown: not even an empty row is left behind.
    assert await pool.fetchval("SELECT count(*) FROM people WHERE person_id = $1", person) == 0
    await vault.add_person(person, _mette(unique))
    assert await vault.replace_person(person, _impostor()) is True
    assert await vault.get_person(person) == _impostor()
