"""Per-person secrets of iCalendar feed URLs: issued, revoked, and resolved by their SHA-256 digest."""

from __future__ import annotations

import hashlib
import re
import secrets

import asyncpg

#: What `issue` hands out: `secrets.token_urlsafe(32)`, 43 characters of the URL-safe alphabet.
SECRET_BYTES = 32
_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# Serialises issue/revoke per person (with the person id's hash as the second key): without it,
# two concurrent issues would both revoke the old secret and then collide on the one-active index.
_LOCK_CLASS = 0x7A1E47


def digest(secret: str) -> bytes:
    """The stored form of a secret: its SHA-256 digest."""
    return hashlib.sha256(secret.encode()).digest()


def well_formed(secret: str) -> bool:
    """Whether `secret` could be one `issue` handed out (anything else is refused unread)."""
    return _SECRET_PATTERN.fullmatch(secret) is not None


class CalendarFeeds:
    """Feed secrets in PostgreSQL (table `calendar_feeds`): one active secret per person.

    Only the digest is stored, and a secret is found by looking its digest up: no stored value is
    ever compared with what a caller sent, so lookup time says nothing about a valid secret.
    A secret carries 256 random bits, so a fast unsalted hash is enough (nothing to brute-force).
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    async def issue(self, person_id: str) -> str:
        """A new secret for the person; their previous secret, if any, stops working at once."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, person_id)
            await conn.execute(
                "UPDATE calendar_feeds SET revoked_at = now() WHERE person_id = $1 AND revoked_at IS NULL",
                person_id,
            )
            await conn.execute(
                "INSERT INTO calendar_feeds (secret_sha256, person_id) VALUES ($1, $2)", digest(secret), person_id
            )
        return secret

    async def revoke(self, person_id: str) -> bool:
        """Revoke the person's active secret; False if they had none."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, person_id)
            revoked = await conn.fetchval(
                "UPDATE calendar_feeds SET revoked_at = now() WHERE person_id = $1 AND revoked_at IS NULL "
                "RETURNING true",
                person_id,
            )
        return bool(revoked)

    async def person_for(self, secret: str) -> str | None:
        """The person whose active secret this is, or None (unknown, malformed or revoked)."""
        if not well_formed(secret):
            return None
        person_id: str | None = await self._pool.fetchval(
            "SELECT person_id FROM calendar_feeds WHERE secret_sha256 = $1 AND revoked_at IS NULL", digest(secret)
        )
        return person_id
