"""The people vault: personal data and free texts, encrypted with a per-person key that erasure destroys."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeAlias

import asyncpg
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from domain.values import Language
from store.db import key_id

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


class LedgerError(Exception):
    """The erasure ledger cannot be read: a line that is not one of its entries."""

    code = "erasure_ledger_invalid"


@dataclass(frozen=True)
class LedgerEntry:
    """One erasure: the person's keyed id (never the id itself), the key it was keyed with, when.

    `id_key`: the id of the instance id key it was keyed with (entries written since the id key).
    `kek_id`: entries from before it name the KEK their key was derived from instead.
    """

    person: str
    erased_at: str
    id_key: str | None = None
    kek_id: str | None = None


class ErasureLedger:
    """An append-only file of erasures (JSON lines) kept OUTSIDE the database (PRODUCT §8.7).

    A database backup restores the people it held, and with them the data keys of anyone erased
    after the backup was taken. The ledger is not in that backup: `talent vault replay-erasures`
    reads it after a restore and shreds those people again. An entry holds no personal data: a
    keyed hash of the person id (`PeopleVault.keyed_id`), the id of the key it was keyed under and
    the time. Each entry is one `write` to a file opened for appending and is fsync'd before the
    erasure commits, so an erasure reported done is in the ledger.
    """

    def __init__(self, path: Path) -> None:
        """The ledger at `path` (created, mode 0600, on the first erasure)."""
        self.path = path

    async def append(self, entry: LedgerEntry) -> None:
        """Append `entry` and fsync it (and the directory when the file is new)."""
        line = json.dumps({"v": 2, "person": entry.person, "id_key": entry.id_key, "erased_at": entry.erased_at})
        await asyncio.to_thread(self._append, (line + "\n").encode())

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def entries(self) -> list[LedgerEntry]:
        """Every entry, oldest first; none if the file does not exist; `LedgerError` on a bad line."""
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[LedgerEntry]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        found: list[LedgerEntry] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
                person, erased_at = str(value["person"]), str(value["erased_at"])
                if value["v"] == 1:
                    found.append(LedgerEntry(person, erased_at, kek_id=str(value["kek_id"])))
                elif value["v"] == 2:
                    found.append(LedgerEntry(person, erased_at, id_key=str(value["id_key"])))
                else:
                    raise ValueError(value["v"])
            except (ValueError, KeyError, TypeError):
                # A torn last line (a crash mid-write of an erasure that then never committed) is
                # the one harmless case; any other bad line is reported, by number only.
                if number == len(text.splitlines()) and not text.endswith("\n"):
                    continue
                raise LedgerError(f"{self.path}: line {number} is not an erasure ledger entry") from None
        return found


@dataclass(frozen=True)
class RotationReport:
    """What `PeopleVault.rewrap` did: data keys re-wrapped, batches committed, keys still to do."""

    rewrapped: int
    batches: int
    remaining: int


@dataclass(frozen=True)
class VerifyReport:
    """What `PeopleVault.verify` found: every data key tried under the KEK its row names."""

    current: str
    bound: str | None
    keys: int
    by_kek: dict[str, int] = field(default_factory=dict)
    #: Person ids (no personal data) whose data key does not open under the KEK their row names.
    unopenable: list[str] = field(default_factory=list)
    #: Data keys wrapped under another KEK than the current one (work a rotation has left).
    remaining: int = 0
    #: Data keys wrapped under a KEK a completed rotation retired.
    under_retired: int = 0
    #: The KEK the instance id key is wrapped under (None: the database holds no id key yet).
    id_key_kek: str | None = None
    #: Whether the instance id key opens under the KEK its row names.
    id_key_opens: bool = False

    @property
    def ok(self) -> bool:
        """Every data key and the id key open, all under the current KEK, and the database is bound to it."""
        return (
            not self.unopenable
            and not self.remaining
            and not self.under_retired
            and self.bound == self.current
            and self.id_key_opens
            and self.id_key_kek == self.current
        )


@dataclass(frozen=True)
class ReplayReport:
    """What `PeopleVault.replay_erasures` did with the ledger."""

    entries: int
    shredded: int
    already_erased: int
    not_here: int
    #: Ids of the KEKs some entries from before the id key were keyed under that this vault does
    #: not hold: those entries cannot be matched until the key is given (TALENT_VAULT_OLD_KEYS).
    unheld_keys: list[str] = field(default_factory=list)
    #: Ids of other instances' id keys some entries were keyed with: not this database's erasures.
    other_id_keys: list[str] = field(default_factory=list)


#: The label of the keyed ids in the erasure ledger.
_LEDGER_LABEL = "erasure-ledger"


#: The additional data of the wrapped instance id key (one per database).
_ID_KEY_AAD = b"vault_id_key:instance"

# The instance id key of each pool's database, unwrapped at start (`PeopleVault.open_id_key`, run
# by `infra.postgres.open_pool`): the vaults built on that pool afterwards, synchronously, key ids
# with it. Keyed by the pool's id; the pool is kept beside its key so a recycled id cannot match.
_POOL_ID_KEYS: dict[int, tuple[object, bytes]] = {}


def _id_key(master_key: bytes) -> bytes:
    """The id key databases from before the instance id key derived from their KEK (still theirs)."""
    return hmac.new(master_key, b"talent-journey/keyed-ids/v1", hashlib.sha256).digest()


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

    def __init__(
        self,
        pool: asyncpg.Pool,
        master_key: bytes,
        *,
        old_keys: Iterable[bytes] = (),
        ledger: ErasureLedger | None = None,
        id_key: bytes | None = None,
    ) -> None:
        """Build the vault on a pool, with the 32-byte key-encryption key from the settings.

        `old_keys`: KEKs of a rotation in progress, read (data keys whose row names them) and
        never written with. `ledger`: where erasures are recorded outside the database.
        `id_key`: the instance id key of `keyed_id`; unset, the one `open_id_key` unwrapped for
        this pool at start. A pool that was not opened so (a test's, a unit test's None) keys ids
        as databases from before the id key did: with the derivation of `master_key`.
        """
        old = tuple(old_keys)
        for key in (master_key, *old, *(() if id_key is None else (id_key,))):
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                # The length only: the key itself must never appear in an error or a log.
                raise ValueError(f"the vault master key must be {KEY_BYTES} bytes")
        self._pool = pool
        self._kek = AESGCM(master_key)
        self._kek_id = key_id(master_key)
        self._keks = {key_id(key): AESGCM(key) for key in old}
        self._keks[self._kek_id] = self._kek
        self._ledger = ledger
        # A separate key for ids derived from personal ones: never the key-encryption key itself,
        # and not derived from it either, so that a rotation of the KEK leaves every id as it was.
        if id_key is None:
            opened = _POOL_ID_KEYS.get(id(pool))
            id_key = opened[1] if opened is not None and opened[0] is pool else _id_key(master_key)
        self._id_key = id_key
        # The derivations of the KEKs held, for erasure-ledger entries from before the id key.
        self._derived_id_keys = {key_id(key): _id_key(key) for key in (master_key, *old)}

    @property
    def kek_id(self) -> str:
        """The id of the KEK new data keys are wrapped under (an HMAC of it, never the key)."""
        return self._kek_id

    def keyed_id(self, *parts: str) -> str:
        """A stable uuid for `parts` that only a holder of this instance's id key can compute.

        Used where an id must be deterministic (two concurrent nominations of one talent start one
        journey) without being a public function of a person id. Stable across KEK rotations: the
        id key is the instance's own, only wrapped under the KEK.
        """
        return _keyed(self._id_key, parts)

    async def open_id_key(self) -> None:
        """Unwrap the database's instance id key (made on its first start) and key ids with it, in
        this vault and in every vault built on the same pool from now on. Run at start, after the
        instance check (`infra.postgres.open_pool`).

        The first start makes it: random for a new database; for a database from before the id key
        (it holds people or journeys, whose keyed ids exist) the derivation of the KEK it is bound
        to, so its journey ids, answer links and ledger entries stay valid. `VaultError` if it will
        not open under a KEK this start holds.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT wrapped_key, kek_id FROM vault_id_key FOR UPDATE")
            if row is not None:
                id_key = self._unwrap_id_key(row["wrapped_key"], row["kek_id"])
            else:
                # Locks out a concurrent first start until this one commits; its INSERT then waits
                # on the primary key and finds the row.
                await conn.execute("LOCK TABLE vault_id_key IN SHARE ROW EXCLUSIVE MODE")
                row = await conn.fetchrow("SELECT wrapped_key, kek_id FROM vault_id_key")
                if row is not None:
                    id_key = self._unwrap_id_key(row["wrapped_key"], row["kek_id"])
                else:
                    id_key, derived_from = await self._new_id_key(conn)
                    nonce, sealed = _seal(self._kek, id_key, _ID_KEY_AAD)
                    await conn.execute(
                        "INSERT INTO vault_id_key (wrapped_key, kek_id, derived_from) VALUES ($1, $2, $3)",
                        nonce + sealed,
                        self._kek_id,
                        derived_from,
                    )
                    log.info("vault_id_key_created", kek_id=self._kek_id, derived_from=derived_from)
        self._id_key = id_key
        _POOL_ID_KEYS[id(self._pool)] = (self._pool, id_key)

    async def _new_id_key(self, conn: _Connection) -> tuple[bytes, str | None]:
        """A new database's id key (random), or an older one's (the derivation of its bound KEK)."""
        existing = await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM people) OR EXISTS (SELECT 1 FROM person_keys)
                   OR EXISTS (SELECT 1 FROM events)"""
        )
        if not existing:
            return os.urandom(KEY_BYTES), None
        bound: str = await conn.fetchval("SELECT key_id FROM instance_binding") or self._kek_id
        if bound not in self._derived_id_keys:
            raise VaultError(
                f"the keyed ids of this database were derived from the key {bound}, which this start does not hold "
                "(TALENT_VAULT_KEY, TALENT_VAULT_OLD_KEYS)"
            )
        return self._derived_id_keys[bound], bound

    def _unwrap_id_key(self, wrapped: bytes, kek_id: str) -> bytes:
        kek = self._keks.get(kek_id)
        if kek is None:
            raise VaultError(
                f"the instance id key is wrapped under the key {kek_id}, which this start does not hold "
                "(TALENT_VAULT_KEY, TALENT_VAULT_OLD_KEYS)"
            )
        id_key = _open(kek, wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _ID_KEY_AAD, "the instance id key")
        if len(id_key) != KEY_BYTES:
            raise VaultError("the instance id key is malformed")
        return id_key

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
        True), so data that arrives for them later is refused. With a ledger, the erasure is
        appended to it (and fsync'd) before it commits: a failed ledger write fails the erasure.
        """
        return await self._erase(person_id, record=True)

    async def _erase(self, person_id: str, *, record: bool) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            erased_at = await self._lock_person(conn, person_id)
            # Deleted even when already erased: cheap, and it leaves no key behind whatever happened.
            await conn.execute("DELETE FROM person_keys WHERE person_id = $1", person_id)
            if erased_at is not None:
                return False
            if record and self._ledger is not None:
                entry = LedgerEntry(
                    person=self.keyed_id(_LEDGER_LABEL, person_id),
                    erased_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    id_key=key_id(self._id_key),
                )
                await self._ledger.append(entry)
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
            """SELECT p.person_id, p.nonce, p.ciphertext, p.erased_at, k.wrapped_key, k.kek_id
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
        data_key = self._unwrap(person_id, row["wrapped_key"], row["kek_id"])
        plaintext = _open(data_key, row["nonce"], row["ciphertext"], _aad("people", person_id), f"person {person_id}")
        return _person_data(person_id, plaintext)

    async def get_text(self, text_id: str) -> str | Erased | None:
        """A stored text; `Erased` if its author was erased; None if there is no such text."""
        row = await self._pool.fetchrow(
            """SELECT t.person_id, t.nonce, t.ciphertext, p.erased_at, k.wrapped_key, k.kek_id
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
        data_key = self._unwrap(person_id, row["wrapped_key"], row["kek_id"])
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
        id_key = await self._pool.fetchrow("SELECT wrapped_key, kek_id FROM vault_id_key")
        if id_key is not None:
            # The id key is the instance's: whoever opens it holds the instance's key.
            try:
                self._unwrap_id_key(id_key["wrapped_key"], id_key["kek_id"])
            except VaultError:
                return False
            return True
        rows = await self._pool.fetch(
            "SELECT person_id, wrapped_key, kek_id FROM person_keys ORDER BY person_id LIMIT $1", sample
        )
        for row in rows:
            try:
                self._unwrap(row["person_id"], row["wrapped_key"], row["kek_id"])
            except VaultError:
                continue
            return True
        return not rows

    # -- key rotation and the erasure ledger (PRODUCT §8.7) ---------------------------------------

    async def rewrap(self, *, batch_size: int = 500, max_batches: int | None = None) -> RotationReport:
        """Re-wrap every data key not under the current KEK under it, `batch_size` rows a transaction.

        Resumable: the rows still under another KEK are the work left, so a run that stopped
        (crashed, interrupted, `max_batches` reached) is finished by running it again. A data key
        that will not open under the KEK its row names raises `VaultError` and its batch is rolled
        back; the batches before it stay done. Reads work throughout: each row names its KEK.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        await self._rewrap_id_key()
        rewrapped = batches = 0
        while max_batches is None or batches < max_batches:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """SELECT person_id, wrapped_key, kek_id FROM person_keys
                        WHERE kek_id IS DISTINCT FROM $1 ORDER BY person_id LIMIT $2 FOR UPDATE""",
                    self._kek_id,
                    batch_size,
                )
                if not rows:
                    break
                updates = []
                for row in rows:
                    person_id: str = row["person_id"]
                    data_key = self._unwrap_bytes(person_id, row["wrapped_key"], row["kek_id"])
                    nonce, sealed = _seal(self._kek, data_key, _aad("person_keys", person_id))
                    updates.append((person_id, nonce + sealed, self._kek_id))
                await conn.executemany(
                    "UPDATE person_keys SET wrapped_key = $2, kek_id = $3 WHERE person_id = $1", updates
                )
            rewrapped += len(rows)
            batches += 1
            log.info("vault_rewrap_batch", rows=len(rows), kek_id=self._kek_id)
        remaining: int = await self._pool.fetchval(
            "SELECT count(*) FROM person_keys WHERE kek_id IS DISTINCT FROM $1", self._kek_id
        )
        return RotationReport(rewrapped=rewrapped, batches=batches, remaining=remaining)

    async def _rewrap_id_key(self) -> None:
        """Re-wrap the instance id key under the current KEK (its value, and so every keyed id, kept)."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT wrapped_key, kek_id FROM vault_id_key FOR UPDATE")
            if row is None:
                raise VaultError("the database holds no instance id key: start the service once before a rotation")
            if row["kek_id"] == self._kek_id:
                return
            id_key = self._unwrap_id_key(row["wrapped_key"], row["kek_id"])
            nonce, sealed = _seal(self._kek, id_key, _ID_KEY_AAD)
            await conn.execute("UPDATE vault_id_key SET wrapped_key = $1, kek_id = $2", nonce + sealed, self._kek_id)
        log.info("vault_id_key_rewrapped", kek_id=self._kek_id)

    async def verify(self, *, batch_size: int = 1000) -> VerifyReport:
        """Open every data key under the KEK its row names; count what is not under the current one."""
        by_kek: dict[str, int] = {}
        unopenable: list[str] = []
        keys = 0
        after = ""
        while True:
            rows = await self._pool.fetch(
                """SELECT person_id, wrapped_key, kek_id FROM person_keys
                    WHERE person_id > $1 ORDER BY person_id LIMIT $2""",
                after,
                batch_size,
            )
            if not rows:
                break
            for row in rows:
                keys += 1
                named: str = row["kek_id"] or self._kek_id
                by_kek[named] = by_kek.get(named, 0) + 1
                try:
                    self._unwrap_bytes(row["person_id"], row["wrapped_key"], row["kek_id"])
                except VaultError:
                    unopenable.append(row["person_id"])
            after = rows[-1]["person_id"]
        async with self._pool.acquire() as conn:
            bound: str | None = await conn.fetchval("SELECT key_id FROM instance_binding")
            under_retired: int = await conn.fetchval(
                "SELECT count(*) FROM person_keys WHERE kek_id IN (SELECT key_id FROM vault_retired_keys)"
            )
            id_row = await conn.fetchrow("SELECT wrapped_key, kek_id FROM vault_id_key")
        id_key_opens = False
        if id_row is not None:
            try:
                id_key_opens = self._unwrap_id_key(id_row["wrapped_key"], id_row["kek_id"]) == self._id_key
            except VaultError:
                id_key_opens = False
        return VerifyReport(
            current=self._kek_id,
            bound=bound,
            keys=keys,
            by_kek=by_kek,
            unopenable=unopenable,
            remaining=keys - by_kek.get(self._kek_id, 0),
            under_retired=under_retired,
            id_key_kek=None if id_row is None else id_row["kek_id"],
            id_key_opens=id_key_opens,
        )

    async def retire_old_keys(self) -> list[str]:
        """Finish a rotation: bind the database to the current KEK and retire every other one.

        Refused (`VaultError`, nothing changed) while any data key is still under another KEK.
        The table is locked for the check, so no data key can be written under an old KEK between
        the check and the commit. Returns the ids retired.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE person_keys IN SHARE MODE")
            remaining: int = await conn.fetchval(
                "SELECT count(*) FROM person_keys WHERE kek_id IS DISTINCT FROM $1", self._kek_id
            )
            if remaining:
                raise VaultError(f"{remaining} data keys are still wrapped under another key; run the rotation again")
            id_key_kek: str | None = await conn.fetchval("SELECT kek_id FROM vault_id_key FOR UPDATE")
            if id_key_kek != self._kek_id:
                raise VaultError("the instance id key is not wrapped under the new key; run the rotation again")
            previous: str | None = await conn.fetchval("SELECT key_id FROM instance_binding FOR UPDATE")
            retired = sorted(k for k in {previous, *self._keks} if k is not None and k != self._kek_id)
            if previous is None:
                await conn.execute("INSERT INTO instance_binding (key_id) VALUES ($1)", self._kek_id)
            else:
                await conn.execute("UPDATE instance_binding SET key_id = $1", self._kek_id)
            await conn.execute(
                "INSERT INTO vault_retired_keys (key_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", retired
            )
            await conn.execute("DELETE FROM vault_retired_keys WHERE key_id = $1", self._kek_id)
        log.info("vault_keys_retired", kek_id=self._kek_id, retired=retired)
        return retired

    async def replay_erasures(self, ledger: ErasureLedger) -> ReplayReport:
        """Shred again every person the ledger lists who is still readable here (after a restore).

        A person matches an entry when their keyed id under the instance id key is listed: it
        survives KEK rotations, so no old KEK is needed. Entries from before the id key name the KEK
        their key was derived from: the id key itself when the database's ids were derived from
        that KEK, else the derivation of a KEK this vault holds; one it does not hold is named in
        `unheld_keys`. Idempotent: a second replay finds them erased. Nothing is appended to the
        ledger.
        """
        entries = await ledger.entries()
        listed = {entry.person for entry in entries}
        mine = key_id(self._id_key)
        # A database from before the id key: its id key is the derivation of this KEK.
        derived_from: str | None = await self._pool.fetchval("SELECT derived_from FROM vault_id_key")
        id_keys = {self._id_key}
        unheld: set[str] = set()
        other: set[str] = set()
        for entry in entries:
            if entry.id_key is not None:
                if entry.id_key != mine:
                    other.add(entry.id_key)
            elif entry.kek_id is not None and entry.kek_id != derived_from:
                derived = self._derived_id_keys.get(entry.kek_id)
                if derived is None:
                    unheld.add(entry.kek_id)
                else:
                    id_keys.add(derived)
        shredded = already = 0
        found: set[str] = set()
        if listed:
            rows = await self._pool.fetch("SELECT person_id, erased_at IS NOT NULL AS erased FROM people")
            for row in rows:
                person_id: str = row["person_id"]
                keyed = {_keyed(id_key, (_LEDGER_LABEL, person_id)) for id_key in id_keys} & listed
                if not keyed:
                    continue
                found |= keyed
                if row["erased"]:
                    already += 1
                elif await self._erase(person_id, record=False):
                    shredded += 1
                    log.info("erasure_replayed", person_id=person_id)
                else:
                    already += 1
        return ReplayReport(
            entries=len(listed),
            shredded=shredded,
            already_erased=already,
            not_here=len(listed) - len(found),
            unheld_keys=sorted(unheld),
            other_id_keys=sorted(other),
        )

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
        stored = await conn.fetchrow("SELECT wrapped_key, kek_id FROM person_keys WHERE person_id = $1", person_id)
        if stored is not None:
            return self._unwrap(person_id, stored["wrapped_key"], stored["kek_id"])
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce, sealed = _seal(self._kek, data_key, _aad("person_keys", person_id))
        # Never under a retired KEK: a process still running with the key a completed rotation
        # replaced is refused here (the rotation's lock on the table closes the race).
        inserted = await conn.execute(
            """INSERT INTO person_keys (person_id, wrapped_key, kek_id) SELECT $1, $2, $3
                WHERE NOT EXISTS (SELECT 1 FROM vault_retired_keys WHERE key_id = $3)""",
            person_id,
            nonce + sealed,
            self._kek_id,
        )
        if inserted == "INSERT 0 0":
            raise VaultError(f"the vault key {self._kek_id} was retired by a key rotation; restart with the new key")
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

    def _unwrap(self, person_id: str, wrapped: bytes | None, kek_id: str | None) -> AESGCM:
        return AESGCM(self._unwrap_bytes(person_id, wrapped, kek_id))

    def _unwrap_bytes(self, person_id: str, wrapped: bytes | None, kek_id: str | None) -> bytes:
        """The raw data key, opened under the KEK its row names (a row from before ids: the current)."""
        # A person who is not erased but has no key was damaged outside the vault: refuse loudly
        # rather than report them as unknown.
        if wrapped is None or len(wrapped) != NONCE_BYTES + KEY_BYTES + _TAG_BYTES:
            raise VaultError(f"the data key of person {person_id} is missing or malformed")
        kek = self._keks.get(kek_id or self._kek_id)
        if kek is None:
            raise VaultError(
                f"the data key of person {person_id} is wrapped under the key {kek_id}, which this start does not "
                "hold (TALENT_VAULT_KEY, TALENT_VAULT_OLD_KEYS)"
            )
        return _open(
            kek,
            wrapped[:NONCE_BYTES],
            wrapped[NONCE_BYTES:],
            _aad("person_keys", person_id),
            f"the data key of person {person_id}",
        )

    # -- retention (store/retention.py) ---------------------------------------------------------

    async def expire_texts(self, text_ids: Iterable[str]) -> list[str]:
        """Retention: delete stored texts whose purpose ended; return the ids this call deleted.

        A text shares its author's data key with their other texts and their data, so it is shred
        by deleting its nonce and ciphertext (the key stays for what is still kept); the author's
        erasure shreds whatever a backup still holds of it. Already gone: not returned, so a
        second run deletes (and reports) nothing.
        """
        rows = await self._pool.fetch(
            "DELETE FROM person_texts WHERE text_id = ANY($1::text[]) RETURNING text_id", list(text_ids)
        )
        return [r["text_id"] for r in rows]


def _keyed(id_key: bytes, parts: tuple[str, ...]) -> str:
    digest = hmac.new(id_key, "\0".join(parts).encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _person_data(person_id: str, plaintext: bytes) -> PersonData:
    try:
        return PersonData.model_validate_json(plaintext)
    except ValidationError:
        # `from None`: the original error would carry the decrypted text into tracebacks and logs.
        raise VaultError(f"person {person_id} decrypted to data that is not valid") from None
