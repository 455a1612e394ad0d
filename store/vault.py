"""The people vault: personal data and free texts, encrypted with a per-person key that erasure destroys."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, TypeAlias

import asyncpg
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from domain.values import Language

# AES-256 for both the key-encryption key and the per-person data keys.
KEY_BYTES = 32
# The GCM standard nonce. Nonces are random: a person's key encrypts at most a few hundred values
# in its life, far below the 2**32 messages per key up to which random 96-bit nonces are safe.
NONCE_BYTES = 12
_TAG_BYTES = 16

log = structlog.get_logger("talent.vault")

# Writes run on a connection acquired from the pool, which asyncpg's stubs type as a proxy; the
# alias is a string because the proxy class is not subscriptable at run time.
_Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

# Deliberately loose: `email-validator` is not a dependency, and the vault only has to reject
# values that are plainly not addresses; deliverability is the mailer's business.
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_EMAIL_PATTERN, max_length=320)]


class PersonData(BaseModel):
    """A person's personal data, as stored (encrypted) in the vault.

    The fields are left out of `repr` and of validation errors so that logging a model or an
    error can never write a name or an address to the logs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, repr=False)
    email: Email = Field(repr=False)
    workplace: str | None = Field(default=None, repr=False)
    #: The language their notifications are written in: Danish unless they ask for English.
    language: Language = "da"


class Erased(BaseModel):
    """What the vault answers for a person (or a person's text) whose data was erased.

    A value, not an exception: readers such as the status view or a notification render an
    erased person as such and carry on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: str
    erased_at: AwareDatetime


class Unreadable(BaseModel):
    """What a degraded read answers for a person whose stored data will not decrypt.

    Distinct from `Erased`: the data should be there but cannot be read (written under another
    master key, corrupt or tampered with); an operator has to look, the page around it carries on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: str


class VaultError(Exception):
    """Stored data cannot be decrypted: tampered with, corrupt, or read with the wrong master key."""

    code = "vault_integrity"


class PersonErased(Exception):
    """The person was erased; the vault refuses to store data for them again."""

    code = "person_erased"

    def __init__(self, person_id: str) -> None:
        super().__init__(f"person {person_id} was erased; their data cannot be stored again")
        self.person_id = person_id


def _aad(kind: str, item_id: str) -> bytes:
    # The label keeps the three kinds of ciphertext apart: a person id could look like a text id,
    # and without it a stored value could be moved into another table and still authenticate.
    return f"{kind}:{item_id}".encode()


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE_BYTES)
    return nonce, aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, nonce: bytes, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    try:
        return aead.decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        # InvalidTag: tampered or wrong key; ValueError: a nonce of the wrong length.
        raise VaultError(f"{what} cannot be decrypted: tampered with, corrupt or the wrong master key") from None


class PeopleVault:
    """Personal data encrypted per person, each data key wrapped by the service's master key.

    Erasing a person deletes their data key (crypto-shredding): their ciphertexts may stay in the
    database and in its backups, but nothing can read them any more. Data keys are unwrapped per
    call and never cached, so an erasure takes effect at once in every process.
    """

    def __init__(self, pool: asyncpg.Pool, master_key: bytes) -> None:
        """Build the vault on a pool, with the 32-byte key-encryption key from the settings."""
        if not isinstance(master_key, bytes) or len(master_key) != KEY_BYTES:
            # The length only: the key itself must never appear in an error or a log.
            raise ValueError(f"the vault master key must be {KEY_BYTES} bytes")
        self._pool = pool
        self._kek = AESGCM(master_key)
        # A separate key for ids derived from personal ones: never the key-encryption key itself.
        self._id_key = hmac.new(master_key, b"talent-journey/keyed-ids/v1", hashlib.sha256).digest()

    def keyed_id(self, *parts: str) -> str:
        """A stable uuid for `parts` that only a holder of this instance's key can compute.

        Used where an id must be deterministic (two concurrent nominations of one talent start one
        journey) without being a public function of a person id.
        """
        digest = hmac.new(self._id_key, "\0".join(parts).encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    # -- writes ---------------------------------------------------------------------------------

    async def put_person(self, person_id: str, data: PersonData) -> None:
        """Store (or replace) a person's data; creates their data key on first use.

        Raises `PersonErased` if the person was erased: erased stays erased.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            data_key = await self._lock_live_person(conn, person_id)
            await self._write_person(conn, data_key, person_id, data)

    async def add_person(self, person_id: str, data: PersonData) -> bool:
        """Store a person the vault holds no data for; never change a stored one (§8.2).

        Returns True when this call stored them, False when their data was already there: it is
        left as it was (only `replace_person`, behind PUT /v1/people/{id}, changes it). Atomic: the
        row is created by INSERT ... ON CONFLICT DO NOTHING and then locked, so of two concurrent
        first nominations one stores and the other finds the stored data. A row holding only the
        person's key (texts stored, no data yet) counts as no data.

        An erased person stays erased and is not created again: this raises `PersonErased`, so a
        nomination naming them is refused (409 `person_erased`) and writes nothing, rather than
        start a journey for someone the service can no longer name or reach.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            data_key = await self._lock_live_person(conn, person_id)
            if await conn.fetchval("SELECT ciphertext IS NOT NULL FROM people WHERE person_id = $1", person_id):
                return False
            await self._write_person(conn, data_key, person_id, data)
            return True

    async def replace_person(self, person_id: str, data: PersonData) -> bool:
        """Replace a stored person's data; False (nothing written) if the vault holds no data for
        them. Raises `PersonErased` if the person was erased."""
        async with self._pool.acquire() as conn, conn.transaction():
            # No row is created here: an unknown person stays unknown.
            row = await conn.fetchrow(
                "SELECT erased_at, ciphertext IS NOT NULL AS stored FROM people WHERE person_id = $1 FOR UPDATE",
                person_id,
            )
            if row is not None and row["erased_at"] is not None:
                raise PersonErased(person_id)
            if row is None or not row["stored"]:
                return False
            data_key = await self._lock_live_person(conn, person_id)
            await self._write_person(conn, data_key, person_id, data)
            return True

    async def put_text(self, person_id: str, text: str, *, text_id: str | None = None) -> str:
        """Store a free text (e.g. a reflection) under the person's key; return its text id.

        A caller that retries passes the same `text_id` (derived from its idempotency key): the
        text is stored once. Raises `PersonErased` if the person was erased.
        """
        text_id = text_id or f"t-{uuid.uuid4().hex}"
        async with self._pool.acquire() as conn, conn.transaction():
            data_key = await self._lock_live_person(conn, person_id)
            nonce, ciphertext = _seal(data_key, text.encode(), _aad("person_texts", text_id))
            await conn.execute(
                "INSERT INTO person_texts (text_id, person_id, nonce, ciphertext) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (text_id) DO NOTHING",
                text_id,
                person_id,
                nonce,
                ciphertext,
            )
        return text_id

    async def discard_texts(self, text_ids: Iterable[str]) -> None:
        """Delete texts a refused command had stored: nothing refers to them."""
        await self._pool.execute("DELETE FROM person_texts WHERE text_id = ANY($1::text[])", list(text_ids))

    async def erase(self, person_id: str) -> bool:
        """Crypto-shred a person: delete their data key, wipe their data, remember the erasure.

        Idempotent. Returns True when this call did the erasing, False when the person had already
        been erased. Erasing a person the vault has never seen records the erasure (and returns
        True), so data that arrives for them later is refused.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            erased_at = await self._lock_person(conn, person_id)
            # Deleted even when already erased: cheap, and it leaves no key behind whatever happened.
            await conn.execute("DELETE FROM person_keys WHERE person_id = $1", person_id)
            if erased_at is not None:
                return False
            await conn.execute(
                """UPDATE people SET nonce = NULL, ciphertext = NULL, erased_at = now(), updated_at = now()
                    WHERE person_id = $1""",
                person_id,
            )
            return True

    # -- reads ----------------------------------------------------------------------------------

    async def get_person(self, person_id: str) -> PersonData | Erased | None:
        """A person's data; `Erased` if they were erased; None if the vault holds no data for them."""
        found = await self.get_people([person_id])
        return found.get(person_id)

    async def get_people(self, person_ids: Iterable[str]) -> dict[str, PersonData | Erased]:
        """Many people in one round trip; ids the vault holds no data for are left out.

        Strict: raises `VaultError` if any of them will not decrypt (`read_people` degrades instead).
        """
        found: dict[str, PersonData | Erased] = {}
        for row in await self._fetch_people(person_ids):
            person = self._person(row)
            if person is not None:
                found[row["person_id"]] = person
        return found

    async def read_people(self, person_ids: Iterable[str]) -> dict[str, PersonData | Erased | Unreadable]:
        """Like `get_people`, for pages and lists: a person whose data will not decrypt is `Unreadable`.

        One bad record (written under another master key, corrupt, tampered with) degrades that
        person only, so the list around them still answers. Each is logged as an error, with the
        person id only.
        """
        found: dict[str, PersonData | Erased | Unreadable] = {}
        for row in await self._fetch_people(person_ids):
            person_id: str = row["person_id"]
            try:
                person = self._person(row)
            except VaultError:
                log.error("vault_record_unreadable", person_id=person_id)
                found[person_id] = Unreadable(person_id=person_id)
                continue
            if person is not None:
                found[person_id] = person
        return found

    async def _fetch_people(self, person_ids: Iterable[str]) -> list[asyncpg.Record]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        # One statement, so the person row and their key come from the same snapshot: a
        # concurrent erasure is seen either entirely or not at all.
        rows: list[asyncpg.Record] = await self._pool.fetch(
            """SELECT p.person_id, p.nonce, p.ciphertext, p.erased_at, k.wrapped_key
                 FROM people p LEFT JOIN person_keys k USING (person_id)
                WHERE p.person_id = ANY($1::text[])""",
            ids,
        )
        return rows

    def _person(self, row: asyncpg.Record) -> PersonData | Erased | None:
        """A person's row as data, `Erased`, or None (the row only holds their key: texts, no data
        yet); `VaultError` if it will not decrypt or decrypts to data that is not valid."""
        person_id: str = row["person_id"]
        if row["erased_at"] is not None:
            return Erased(person_id=person_id, erased_at=row["erased_at"])
        if row["ciphertext"] is None:
            return None
        data_key = self._unwrap(person_id, row["wrapped_key"])
        plaintext = _open(data_key, row["nonce"], row["ciphertext"], _aad("people", person_id), f"person {person_id}")
        return _person_data(person_id, plaintext)

    async def get_text(self, text_id: str) -> str | Erased | None:
        """A stored text; `Erased` if its author was erased; None if there is no such text."""
        row = await self._pool.fetchrow(
            """SELECT t.person_id, t.nonce, t.ciphertext, p.erased_at, k.wrapped_key
                 FROM person_texts t
                 LEFT JOIN people p USING (person_id)
                 LEFT JOIN person_keys k USING (person_id)
                WHERE t.text_id = $1""",
            text_id,
        )
        if row is None:
            return None
        person_id: str = row["person_id"]
        if row["erased_at"] is not None:
            return Erased(person_id=person_id, erased_at=row["erased_at"])
        data_key = self._unwrap(person_id, row["wrapped_key"])
        plaintext = _open(data_key, row["nonce"], row["ciphertext"], _aad("person_texts", text_id), f"text {text_id}")
        try:
            return plaintext.decode()
        except UnicodeDecodeError:
            raise VaultError(f"text {text_id} decrypted to invalid UTF-8") from None

    async def read_texts(self, text_ids: Iterable[str]) -> dict[str, str]:
        """The readable texts among `text_ids` (for lists): an erased author's or an unreadable
        text is left out, and an unreadable one is logged."""
        found: dict[str, str] = {}
        for text_id in dict.fromkeys(text_ids):
            try:
                text = await self.get_text(text_id)
            except VaultError:
                log.error("vault_record_unreadable", text_id=text_id)
                continue
            if isinstance(text, str):
                found[text_id] = text
        return found

    async def opens_stored_keys(self, sample: int = 5) -> bool:
        """Whether this master key opens the data keys already stored (True when there are none).

        A few keys are tried and one that opens is enough: one damaged record must not lock the
        service out, while a key that opens none of them is plainly another instance's.
        """
        rows = await self._pool.fetch(
            "SELECT person_id, wrapped_key FROM person_keys ORDER BY person_id LIMIT $1", sample
        )
        for row in rows:
            try:
                self._unwrap(row["person_id"], row["wrapped_key"])
            except VaultError:
                continue
            return True
        return not rows

    # -- keys -----------------------------------------------------------------------------------

    async def _lock_person(self, conn: _Connection, person_id: str) -> datetime | None:
        """Lock the person's row (creating an empty one) for the transaction; return `erased_at`.

        The row lock serialises every write for one person: two first writes cannot both create a
        data key, and a write cannot slip in between an erasure's checks and its deletes.
        """
        await conn.execute("INSERT INTO people (person_id) VALUES ($1) ON CONFLICT (person_id) DO NOTHING", person_id)
        erased_at: datetime | None = await conn.fetchval(
            "SELECT erased_at FROM people WHERE person_id = $1 FOR UPDATE", person_id
        )
        return erased_at

    async def _lock_live_person(self, conn: _Connection, person_id: str) -> AESGCM:
        """Lock the person, refuse if erased, and return their data key (made on first use)."""
        if await self._lock_person(conn, person_id) is not None:
            raise PersonErased(person_id)
        wrapped: bytes | None = await conn.fetchval(
            "SELECT wrapped_key FROM person_keys WHERE person_id = $1", person_id
        )
        if wrapped is not None:
            return self._unwrap(person_id, wrapped)
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce, sealed = _seal(self._kek, data_key, _aad("person_keys", person_id))
        await conn.execute(
            "INSERT INTO person_keys (person_id, wrapped_key) VALUES ($1, $2)", person_id, nonce + sealed
        )
        return AESGCM(data_key)

    async def _write_person(self, conn: _Connection, data_key: AESGCM, person_id: str, data: PersonData) -> None:
        """Encrypt and store a person's data on their locked row."""
        nonce, ciphertext = _seal(data_key, data.model_dump_json().encode(), _aad("people", person_id))
        await conn.execute(
            "UPDATE people SET nonce = $2, ciphertext = $3, updated_at = now() WHERE person_id = $1",
            person_id,
            nonce,
            ciphertext,
        )

    def _unwrap(self, person_id: str, wrapped: bytes | None) -> AESGCM:
        # A person who is not erased but has no key was damaged outside the vault: refuse loudly
        # rather than report them as unknown.
        if wrapped is None or len(wrapped) != NONCE_BYTES + KEY_BYTES + _TAG_BYTES:
            raise VaultError(f"the data key of person {person_id} is missing or malformed")
        data_key = _open(
            self._kek,
            wrapped[:NONCE_BYTES],
            wrapped[NONCE_BYTES:],
            _aad("person_keys", person_id),
            f"the data key of person {person_id}",
        )
        return AESGCM(data_key)


def _person_data(person_id: str, plaintext: bytes) -> PersonData:
    try:
        return PersonData.model_validate_json(plaintext)
    except ValidationError:
        # `from None`: the original error would carry the decrypted text into tracebacks and logs.
        raise VaultError(f"person {person_id} decrypted to data that is not valid") from None
