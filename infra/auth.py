"""Bearer-token authentication: a tokens file for development and tests, JWT for production.

An adapter below the service layer: the API, the dashboard, the service and `talent dev` use
its `Principal`, and the bootstrap builds its `Authenticator` from settings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

Role = Literal["hr_system", "coordinator", "leader", "talent"]

#: The pattern of a person id, as the HR system or the identity provider gives it (`api.models.PersonId`
#: adds the API's plain-text check to it); a tokens-file entry's own `id` has the same shape.
PERSON_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


class Principal(BaseModel):
    """Who is calling: a role and, for leaders and talents, their person id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The caller's stable id (§8.2): `file:<id>` or `file:<hash of the token>` for a tokens-file
    #: entry, `jwt:<hash of issuer and sub>` for a JWT. Never a list position, never an e-mail.
    token_id: str
    role: Role
    person_id: str | None = None


class TokenEntry(BaseModel):
    """One entry of the tokens file; `id` names the caller in events and keys (optional: an entry
    without one, as every file written before it existed, is named by a hash of its token)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str
    role: Role
    # Not tightened: a file that loaded before still loads.
    person_id: str | None = None
    id: Annotated[str, StringConstraints(pattern=PERSON_ID_PATTERN)] | None = None

    @property
    def token_id(self) -> str:
        """The caller's stable id: `file:` and the entry's `id`, or the first 16 hex digits of the
        SHA-256 of its token, so reordering or extending the file moves nobody's history."""
        return f"file:{self.id or _digest(self.token)}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


_ENTRIES = TypeAdapter(list[TokenEntry])


#: The shortest HS256 secret taken: RFC 7518 §3.2 asks for a key at least as long as the hash.
MIN_HS256_SECRET_BYTES = 32

#: Asymmetric algorithms a JWKS key may sign with; `none` and HMAC are never taken from a JWKS.
JWKS_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class Authenticator:
    """Checks a bearer token against the tokens file, or as a JWT: HS256 with a shared secret, or
    signed by a key from the issuer's JWKS with an algorithm from an allow-list. Every JWT must
    carry `exp`, `sub` and `role` (and `person_id` for leaders and talents); issuer and audience
    are checked when configured."""

    def __init__(
        self,
        entries: list[TokenEntry],
        *,
        jwt_secret: str | None = None,
        jwt_issuer: str | None = None,
        jwt_audience: str | None = None,
        jwks_url: str | None = None,
        jwks_algorithms: Sequence[str] = ("RS256", "ES256"),
    ) -> None:
        # The entries with their stable ids; two entries with one id would share a history.
        self._entries = [(entry, entry.token_id) for entry in entries]
        ids = [token_id for _, token_id in self._entries]
        if len(set(ids)) != len(ids):
            raise ValueError("the tokens file names two entries with the same id (or holds one token twice)")
        if jwt_secret is not None and len(jwt_secret.encode()) < MIN_HS256_SECRET_BYTES:
            # The length rule only: the secret itself must never appear in an error or a log.
            raise ValueError(f"TALENT_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes for HS256")
        self._jwt_secret = jwt_secret
        self._issuer = jwt_issuer
        self._audience = jwt_audience
        unknown = set(jwks_algorithms) - JWKS_ALGORITHMS
        if unknown:
            raise ValueError(f"TALENT_JWT_ALGORITHMS: not allowed for JWKS keys: {', '.join(sorted(unknown))}")
        self._jwks_algorithms = list(jwks_algorithms)
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5) if jwks_url else None

    @classmethod
    def from_file(cls, path: Path | None, **jwt_options: Any) -> Authenticator:
        """Load a tokens file: a JSON list of {"token", "role", "person_id"?, "id"?}."""
        entries = _ENTRIES.validate_json(path.read_bytes()) if path is not None else []
        for entry in entries:
            if entry.role in ("leader", "talent") and not entry.person_id:
                raise ValueError(f"a {entry.role} token needs a person_id")
        return cls(entries, **jwt_options)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a token, or None."""
        for entry, token_id in self._entries:
            # Constant-time comparison: a token's prefix must not be guessable from timing.
            if hmac.compare_digest(entry.token.encode(), token.encode()):
                return Principal(token_id=token_id, role=entry.role, person_id=entry.person_id)
        if token.count(".") != 2:
            return None
        claims = self._claims(token)
        if claims is None:
            return None
        role = claims.get("role")
        if role not in ("hr_system", "coordinator", "leader", "talent"):
            return None
        person = claims.get("person_id")
        if role in ("leader", "talent") and not person:
            return None
        # A hash, never the `sub` itself: it is often an e-mail address, and the id lands in events,
        # keys and logs. With the issuer, so two issuers' equal subs stay two callers.
        issuer = claims.get("iss") or ""
        subject = "\0".join((str(issuer), str(claims["sub"])))
        return Principal(token_id=f"jwt:{_digest(subject)}", role=role, person_id=person)

    def _claims(self, token: str) -> dict[str, Any] | None:
        """The verified claims of a JWT, or None; the header's `alg` picks the key source."""
        try:
            alg = jwt.get_unverified_header(token).get("alg")
            if alg == "HS256" and self._jwt_secret is not None:
                key: Any = self._jwt_secret
                algorithms = ["HS256"]
            elif self._jwks is not None and alg in self._jwks_algorithms:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = self._jwks_algorithms
            else:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub", "role"]},
                leeway=30,
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable(str(exc)) from exc
        except jwt.PyJWTError:
            return None
        return claims


class KeysUnavailable(Exception):
    """The issuer's JWKS could not be fetched: the caller may be fine, so this is a 503, not a 401."""


def write_tokens_file(path: Path, entries: list[TokenEntry]) -> None:
    """Write a tokens file, readable by its owner only from its first byte, and atomically.

    The tokens go to a new temporary file in the same directory, created with mode 0600
    (`O_EXCL`: never an existing file or a planted symlink), which then replaces `path`. A chmod
    after writing would leave a moment in which the tokens are readable by others, and a crash
    in between would leave them so.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps([e.model_dump(exclude_none=True) for e in entries], indent=2).encode()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
