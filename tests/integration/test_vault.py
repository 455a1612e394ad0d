"""The people vault on a real PostgreSQL: encryption at rest, erasure by crypto-shredding."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from pydantic import ValidationError

from store.vault import Erased, PeopleVault, PersonData, PersonErased, VaultError

KEK = bytes(range(32))
OTHER_KEK = bytes(range(32, 64))


def _alice(unique: str) -> PersonData:
    return PersonData(name=f"Alice Ærøskøbing {unique}", email=f"alice.{unique}@example.dk", workplace="UCN")


def _bob(unique: str) -> PersonData:
    return PersonData(name=f"Bob Bager {unique}", email=f"bob.{unique}@example.dk", workplace=None)


@pytest.fixture
def vault(pool: asyncpg.Pool) -> PeopleVault:
    """A vault under the test master key."""
    return PeopleVault(pool, KEK)


async def test_a_stored_person_reads_back_and_a_later_put_replaces_them(vault: PeopleVault, unique: str) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))
    assert await vault.get_person(person) == _alice(unique)

    moved = _alice(unique).model_copy(update={"workplace": "Aalborg Kommune"})
    await vault.put_person(person, moved)
    assert await vault.get_person(person) == moved


async def test_an_unknown_person_and_an_unknown_text_read_as_none(vault: PeopleVault, unique: str) -> None:
    assert await vault.get_person(f"p-nobody-{unique}") is None
    assert await vault.get_text(f"t-nothing-{unique}") is None


async def test_the_database_holds_only_ciphertext_and_a_fresh_nonce_per_write(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    person = f"p-{unique}"
    data = _alice(unique)
    await vault.put_person(person, data)
    first = await pool.fetchrow("SELECT nonce, ciphertext FROM people WHERE person_id = $1", person)
    await vault.put_person(person, data)
    second = await pool.fetchrow("SELECT nonce, ciphertext FROM people WHERE person_id = $1", person)
    wrapped = await pool.fetchval("SELECT wrapped_key FROM person_keys WHERE person_id = $1", person)

    assert first is not None and second is not None and wrapped is not None
    for secret in (data.name, data.email, "Alice", unique):
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in first["ciphertext"]
    assert len(first["nonce"]) == 12
    assert first["nonce"] != second["nonce"] and first["ciphertext"] != second["ciphertext"]
    assert len(wrapped) == 12 + 32 + 16


async def test_a_text_reads_back_and_is_stored_encrypted(vault: PeopleVault, pool: asyncpg.Pool, unique: str) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))
    reflection = f"Jeg lærte at lytte før jeg svarer. {unique}"
    text_id = await vault.put_text(person, reflection)
    other_id = await vault.put_text(person, "En anden tanke.")

    assert text_id.startswith("t-") and text_id != other_id
    assert await vault.get_text(text_id) == reflection
    assert await vault.get_text(other_id) == "En anden tanke."
    stored = await pool.fetchval("SELECT ciphertext FROM person_texts WHERE text_id = $1", text_id)
    assert unique.encode() not in stored and b"lytte" not in stored


async def test_a_text_can_be_stored_before_the_persons_data_and_the_person_stays_unknown(
    vault: PeopleVault, unique: str
) -> None:
    person = f"p-{unique}"
    text_id = await vault.put_text(person, "Først en refleksion.")
    assert await vault.get_text(text_id) == "Først en refleksion."
    assert await vault.get_person(person) is None
    assert await vault.get_people([person]) == {}

    await vault.put_person(person, _alice(unique))
    assert await vault.get_person(person) == _alice(unique)
    assert await vault.get_text(text_id) == "Først en refleksion."


async def test_erasing_a_person_makes_their_data_and_texts_read_as_erased_but_leaves_others_readable(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    alice, bob = f"p-a-{unique}", f"p-b-{unique}"
    await vault.put_person(alice, _alice(unique))
    await vault.put_person(bob, _bob(unique))
    alice_text = await vault.put_text(alice, "Alices tanker.")
    bob_text = await vault.put_text(bob, "Bobs tanker.")

    assert await vault.erase(alice) is True

    erased = await vault.get_person(alice)
    assert isinstance(erased, Erased)
    assert erased.person_id == alice and erased.erased_at.tzinfo is not None
    assert await vault.get_text(alice_text) == erased
    assert await vault.get_person(bob) == _bob(unique)
    assert await vault.get_text(bob_text) == "Bobs tanker."
    # Crypto-shredding: the key is gone and the person row keeps no ciphertext.
    assert await pool.fetchval("SELECT count(*) FROM person_keys WHERE person_id = $1", alice) == 0
    row = await pool.fetchrow("SELECT nonce, ciphertext, erased_at FROM people WHERE person_id = $1", alice)
    assert row is not None and row["nonce"] is None and row["ciphertext"] is None
    assert row["erased_at"] == erased.erased_at


async def test_erasing_twice_is_harmless_and_only_the_first_call_reports_an_erasure(
    vault: PeopleVault, unique: str
) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))

    assert await vault.erase(person) is True
    first = await vault.get_person(person)
    assert await vault.erase(person) is False
    assert await vault.get_person(person) == first
    assert isinstance(first, Erased)


async def test_data_and_texts_for_an_erased_person_are_refused(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))
    await vault.erase(person)

    with pytest.raises(PersonErased) as refused:
        await vault.put_person(person, _alice(unique))
    assert refused.value.person_id == person and refused.value.code == "person_erased"
    with pytest.raises(PersonErased):
        await vault.put_text(person, "Efter sletning.")
    assert isinstance(await vault.get_person(person), Erased)
    assert await pool.fetchval("SELECT count(*) FROM person_keys WHERE person_id = $1", person) == 0
    assert await pool.fetchval("SELECT count(*) FROM person_texts WHERE person_id = $1", person) == 0


async def test_erasing_an_unknown_person_records_the_erasure_and_refuses_later_data(
    vault: PeopleVault, unique: str
) -> None:
    person = f"p-{unique}"
    assert await vault.erase(person) is True

    assert isinstance(await vault.get_person(person), Erased)
    with pytest.raises(PersonErased):
        await vault.put_person(person, _alice(unique))
    assert await vault.erase(person) is False


async def test_a_vault_with_another_master_key_cannot_read_and_says_so(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))
    text_id = await vault.put_text(person, "Hemmeligt.")
    stranger = PeopleVault(pool, OTHER_KEK)

    with pytest.raises(VaultError):
        await stranger.get_person(person)
    with pytest.raises(VaultError):
        await stranger.get_text(text_id)
    with pytest.raises(VaultError):
        await stranger.put_person(person, _bob(unique))
    assert await vault.get_person(person) == _alice(unique)


async def test_a_tampered_person_ciphertext_is_rejected_not_decrypted(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))
    stored: bytes = await pool.fetchval("SELECT ciphertext FROM people WHERE person_id = $1", person)
    flipped = bytes([stored[0] ^ 0x01]) + stored[1:]
    await pool.execute("UPDATE people SET ciphertext = $2 WHERE person_id = $1", person, flipped)

    with pytest.raises(VaultError) as failure:
        await vault.get_person(person)
    assert failure.value.code == "vault_integrity"
    assert "Alice" not in str(failure.value) and "example.dk" not in str(failure.value)


async def test_a_tampered_wrapped_key_is_rejected(vault: PeopleVault, pool: asyncpg.Pool, unique: str) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))
    await pool.execute(
        "UPDATE person_keys SET wrapped_key = overlay(wrapped_key PLACING '\\xff'::bytea FROM 20 FOR 1) "
        "WHERE person_id = $1",
        person,
    )
    with pytest.raises(VaultError):
        await vault.get_person(person)


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    alice, bob = f"p-a-{unique}", f"p-b-{unique}"
    await vault.put_person(alice, _alice(unique))
    await vault.put_person(bob, _bob(unique))
    first = await vault.put_text(alice, "Første tekst.")
    second = await vault.put_text(alice, "Anden tekst.")

    # Same person, same key: only the text id in the associated data tells the texts apart.
    await pool.execute(
        """UPDATE person_texts SET nonce = s.nonce, ciphertext = s.ciphertext
             FROM person_texts s WHERE person_texts.text_id = $1 AND s.text_id = $2""",
        first,
        second,
    )
    # Alice's wrapped key given to Bob: the person id in the associated data refuses it.
    await pool.execute(
        """UPDATE person_keys SET wrapped_key = s.wrapped_key
             FROM person_keys s WHERE person_keys.person_id = $1 AND s.person_id = $2""",
        bob,
        alice,
    )
    with pytest.raises(VaultError):
        await vault.get_text(first)
    with pytest.raises(VaultError):
        await vault.get_person(bob)
    assert await vault.get_text(second) == "Anden tekst."


async def test_get_people_returns_known_and_erased_people_and_leaves_out_unknown_ids(
    vault: PeopleVault, unique: str
) -> None:
    known, erased, unknown = f"p-k-{unique}", f"p-e-{unique}", f"p-u-{unique}"
    await vault.put_person(known, _alice(unique))
    await vault.put_person(erased, _bob(unique))
    await vault.erase(erased)

    found = await vault.get_people([known, erased, unknown, known])

    assert set(found) == {known, erased}
    assert found[known] == _alice(unique)
    gone = found[erased]
    assert isinstance(gone, Erased) and gone.person_id == erased
    assert await vault.get_people([]) == {}


async def test_concurrent_first_writes_for_one_person_share_a_single_readable_key(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    person = f"p-{unique}"
    versions = [_alice(unique).model_copy(update={"workplace": f"Sted {i}"}) for i in range(8)]

    await asyncio.gather(*(vault.put_person(person, v) for v in versions))

    assert await vault.get_person(person) in versions
    assert await pool.fetchval("SELECT count(*) FROM person_keys WHERE person_id = $1", person) == 1


async def _wait_until_a_backend_waits_for_a_lock(pool: asyncpg.Pool) -> None:
    for _ in range(200):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("no backend ever waited for a lock")


async def test_a_put_that_waits_behind_an_erasure_is_refused_once_the_erasure_commits(
    vault: PeopleVault, pool: asyncpg.Pool, unique: str
) -> None:
    person = f"p-{unique}"
    await vault.put_person(person, _alice(unique))

    async with pool.acquire() as eraser:
        erasure = eraser.transaction()
        await erasure.start()
        # An erasure that has locked the person but not yet written: a put must wait for it, then
        # see its outcome, rather than read the person as live and write over the erasure.
        await eraser.execute("SELECT 1 FROM people WHERE person_id = $1 FOR UPDATE", person)
        put = asyncio.create_task(vault.put_person(person, _bob(unique)))
        await _wait_until_a_backend_waits_for_a_lock(pool)
        assert not put.done()
        await eraser.execute("DELETE FROM person_keys WHERE person_id = $1", person)
        await eraser.execute(
            "UPDATE people SET nonce = NULL, ciphertext = NULL, erased_at = now() WHERE person_id = $1",
            person,
        )
        await erasure.commit()

    with pytest.raises(PersonErased):
        await put
    assert isinstance(await vault.get_person(person), Erased)
    assert await pool.fetchval("SELECT ciphertext FROM people WHERE person_id = $1", person) is None
    assert await pool.fetchval("SELECT count(*) FROM person_keys WHERE person_id = $1", person) == 0


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
async def test_a_master_key_of_the_wrong_length_is_rejected(pool: asyncpg.Pool, length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PeopleVault(pool, os.urandom(length))


async def test_a_master_key_that_is_not_bytes_is_rejected(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PeopleVault(pool, "x" * 32)  # type: ignore[arg-type]


def test_person_data_rejects_a_malformed_email_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as failure:
        PersonData(name="Alice", email="alice-at-example.dk")
    assert "alice-at-example.dk" not in str(failure.value)


def test_person_data_keeps_personal_fields_out_of_its_repr() -> None:
    data = PersonData(name="Alice Hansen", email="alice@example.dk", workplace="UCN")
    assert "Alice" not in repr(data) and "alice@example.dk" not in repr(data) and "UCN" not in repr(data)
