"""Bearer-token authentication: a tokens file for development and tests, JWT for production."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Literal

import jwt
from pydantic import BaseModel, ConfigDict, TypeAdapter

Role = Literal["hr_system", "coordinator", "leader", "talent"]


class Principal(BaseModel):
    """Who is calling: a role and, for leaders and talents, their person id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_id: str
    role: Role
    person_id: str | None = None


class TokenEntry(BaseModel):
    """One entry of the tokens file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str
    role: Role
    person_id: str | None = None


_ENTRIES = TypeAdapter(list[TokenEntry])


class Authenticator:
    """Checks a bearer token against the tokens file, or as a JWT (HS256 shared secret)."""

    def __init__(
        self,
        entries: list[TokenEntry],
        *,
        jwt_secret: str | None = None,
        jwt_issuer: str | None = None,
        jwt_audience: str | None = None,
    ) -> None:
        self._entries = entries
        self._jwt_secret = jwt_secret
        self._issuer = jwt_issuer
        self._audience = jwt_audience

    @classmethod
    def from_file(cls, path: Path | None, **jwt_options: str | None) -> Authenticator:
        """Load a tokens file: a JSON list of {"token", "role", "person_id"}."""
        entries = _ENTRIES.validate_json(path.read_bytes()) if path is not None else []
        for entry in entries:
            if entry.role in ("leader", "talent") and not entry.person_id:
                raise ValueError(f"a {entry.role} token needs a person_id")
        return cls(entries, **jwt_options)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a token, or None."""
        for i, entry in enumerate(self._entries):
            # Constant-time comparison: a token's prefix must not be guessable from timing.
            if hmac.compare_digest(entry.token.encode(), token.encode()):
                return Principal(token_id=f"file:{i}", role=entry.role, person_id=entry.person_id)
        if self._jwt_secret is None or token.count(".") != 2:
            return None
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.PyJWTError:
            return None
        role = claims.get("role")
        if role not in ("hr_system", "coordinator", "leader", "talent"):
            return None
        person = claims.get("person_id")
        if role in ("leader", "talent") and not person:
            return None
        return Principal(token_id=f"jwt:{claims['sub']}", role=role, person_id=person)


def write_tokens_file(path: Path, entries: list[TokenEntry]) -> None:
    """Write a tokens file (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([e.model_dump() for e in entries], indent=2))
    path.chmod(0o600)
