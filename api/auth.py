"""Bearer-token authentication, for the API's modules: it lives in `infra.auth`, below the service layer."""

from __future__ import annotations

from infra.auth import (
    JWKS_ALGORITHMS,
    MIN_HS256_SECRET_BYTES,
    Authenticator,
    KeysUnavailable,
    Principal,
    Role,
    TokenEntry,
    write_tokens_file,
)

__all__ = [
    "JWKS_ALGORITHMS",
    "MIN_HS256_SECRET_BYTES",
    "Authenticator",
    "KeysUnavailable",
    "Principal",
    "Role",
    "TokenEntry",
    "write_tokens_file",
]
