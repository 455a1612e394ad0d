"""Signing in with OpenID Connect: authorization code with PKCE against the identity provider (authlib).

The relying party of the dashboard's sign-in. The provider is found from its issuer (discovery,
`/.well-known/openid-configuration`, whose `issuer` must be the configured one). Starting a
sign-in makes a state, a nonce and a PKCE verifier; they travel in a *sealed transaction* (an
HMAC-signed, ten-minute value the dashboard keeps in an HttpOnly cookie), so any API process can
finish a sign-in another one started and nothing is stored for abandoned ones. Finishing checks
the state against the transaction, exchanges the code with the verifier, and verifies the ID
token: its signature with a key from the provider's JWKS (asymmetric algorithms only), `iss`,
`aud` (this client), `exp`, `iat` and the `nonce`. The principal comes from configured claims (a
role, optionally mapped from the provider's values, and a person id); its stable id is a hash of
issuer and `sub` (§8.2), never the `sub` itself, which is often an e-mail address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError

from infra.auth import JWKS_ALGORITHMS, PERSON_ID_PATTERN, Principal, Role
from infra.settings import Settings

#: How long a started sign-in may take at the provider (the transaction's and its cookie's life).
TRANSACTION_SECONDS = 600
#: When a person holds several of the service's roles, the one they sign in with.
_PRECEDENCE: tuple[Role, ...] = ("coordinator", "leader", "talent", "hr_system")
_ROLES: frozenset[str] = frozenset(get_args(Role))
_SEAL_LABEL = b"talent-journey/dashboard/oidc-transaction/v1"
_PERSON_ID = re.compile(PERSON_ID_PATTERN)


class OidcRefused(Exception):
    """A sign-in that must not open a session; `code` says why (for the page and the log, never a claim)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class OidcUnavailable(Exception):
    """The identity provider could not be reached or answered nonsense: try again later (503)."""


@dataclass(frozen=True)
class Started:
    """A sign-in on its way: the provider's authorization URL and the sealed transaction to keep."""

    url: str
    transaction: str


@dataclass(frozen=True)
class SignedIn:
    """A finished sign-in: who, until when (the ID token's `exp`), and where they were going."""

    principal: Principal
    expires_at: datetime
    next_path: str


def parse_role_map(value: str | None) -> dict[str, Role]:
    """`provider value=role` pairs, comma-separated; a ValueError names a bad pair's role, never guesses."""
    mapping: dict[str, Role] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        provider_value, sep, role = pair.rpartition("=")
        role = role.strip()
        if not sep or not provider_value.strip() or role not in _ROLES:
            raise ValueError(f"TALENT_OIDC_ROLE_MAP: each entry is 'provider value=role', a role of {sorted(_ROLES)}")
        mapping[provider_value.strip()] = role  # type: ignore[assignment]  # checked against Role's values above
    return mapping


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OidcClient:
    """The dashboard's OpenID Connect client for one provider (built from settings by `oidc_from`)."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        scopes: str,
        role_claim: str,
        person_claim: str,
        role_map: Mapping[str, Role],
        seal_key: bytes,
        redirect_url: str | None = None,
    ) -> None:
        if "openid" not in scopes.split():
            raise ValueError("TALENT_OIDC_SCOPES must include 'openid'")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_url = redirect_url
        self._role_claim = role_claim
        self._person_claim = person_claim
        self._role_map = dict(role_map)
        self._seal_key = hmac.new(seal_key, _SEAL_LABEL, hashlib.sha256).digest()
        client_kwargs: dict[str, Any] = {"scope": scopes, "code_challenge_method": "S256", "timeout": 10}
        if client_secret is None:
            client_kwargs["token_endpoint_auth_method"] = "none"  # noqa: S105 - a public client: PKCE is its proof
        self._app = OAuth().register(
            "idp",
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs=client_kwargs,
        )

    async def _metadata(self) -> dict[str, Any]:
        """The provider's discovery document (read once), checked to be the configured issuer's."""
        try:
            metadata: dict[str, Any] = await self._app.load_server_metadata()
        except (httpx.HTTPError, ValueError) as exc:
            self._app.server_metadata.clear()
            raise OidcUnavailable("discovery") from exc
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            self._app.server_metadata.clear()
            raise OidcUnavailable("discovery names another issuer")
        # Only asymmetric signatures: never `none`, never an HMAC keyed with the (shared) client secret.
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        metadata["id_token_signing_alg_values_supported"] = [a for a in algorithms if a in JWKS_ALGORITHMS]
        return metadata

    async def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to end the provider's session too, or None when it has no such endpoint."""
        try:
            metadata = await self._metadata()
        except OidcUnavailable:
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        result = await self._app.create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri, client_id=self.client_id
        )
        return str(result["url"])

    async def start(self, redirect_uri: str, next_path: str) -> Started:
        """Begin a sign-in: the authorization URL (state, nonce, S256 code challenge) and its sealed transaction."""
        await self._metadata()
        try:
            created = await self._app.create_authorization_url(redirect_uri)
        except (httpx.HTTPError, RuntimeError) as exc:
            raise OidcUnavailable("authorization endpoint") from exc
        transaction = {
            "state": created["state"],
            "nonce": created["nonce"],
            "verifier": created["code_verifier"],
            "redirect_uri": redirect_uri,
            "next": next_path,
            "at": int(time.time()),
        }
        return Started(url=str(created["url"]), transaction=self._seal(transaction))

    async def finish(self, transaction: str | None, params: Mapping[str, str]) -> SignedIn:
        """Finish a sign-in from the callback's query: `OidcRefused` for anything that does not hold."""
        opened = self._unseal(transaction)
        if "error" in params:
            raise OidcRefused("oidc_denied")  # the person declined, or the provider refused them
        state = params.get("state", "")
        if not state or not hmac.compare_digest(state.encode(), str(opened["state"]).encode()):
            raise OidcRefused("oidc_state")
        code = params.get("code")
        if not code:
            raise OidcRefused("oidc_no_code")
        metadata = await self._metadata()
        try:
            token = await self._app.fetch_access_token(
                redirect_uri=opened["redirect_uri"], code=code, code_verifier=opened["verifier"]
            )
        except OAuthError as exc:
            raise OidcRefused("oidc_code") from exc
        except httpx.HTTPError as exc:
            raise OidcUnavailable("token endpoint") from exc
        if "id_token" not in token:
            raise OidcRefused("oidc_no_id_token")
        options = {
            "iss": {"essential": True, "values": [metadata["issuer"]]},
            "aud": {"essential": True, "values": [self.client_id]},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        try:
            claims = await self._app.parse_id_token(token, nonce=opened["nonce"], claims_options=options, leeway=30)
        except JoseError as exc:
            raise OidcRefused("oidc_id_token") from exc
        except (ValueError, TypeError) as exc:  # not a JWT at all
            raise OidcRefused("oidc_id_token") from exc
        except httpx.HTTPError as exc:
            raise OidcUnavailable("jwks") from exc
        if claims.get("nonce") != opened["nonce"]:  # authlib checks a nonce that is there; it must be there
            raise OidcRefused("oidc_id_token")
        return SignedIn(
            principal=self.principal(dict(claims)),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            next_path=str(opened["next"]),
        )

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The principal of verified ID-token claims: the role claim (mapped), the person id claim."""
        found: Any = claims
        for part in self._role_claim.split("."):
            found = found.get(part) if isinstance(found, Mapping) else None
        values = [found] if isinstance(found, str) else found if isinstance(found, list) else []
        if self._role_map:
            roles: set[str] = {self._role_map[v] for v in values if isinstance(v, str) and v in self._role_map}
        else:
            roles = {v for v in values if isinstance(v, str) and v in _ROLES}
        role = next((r for r in _PRECEDENCE if r in roles), None)
        if role is None:
            raise OidcRefused("oidc_no_role")
        person = claims.get(self._person_claim)
        if person is not None and not (isinstance(person, str) and _PERSON_ID.fullmatch(person)):
            raise OidcRefused("oidc_bad_person")
        if role in ("leader", "talent") and person is None:
            raise OidcRefused("oidc_no_person")
        subject = "\0".join((str(claims.get("iss", "")), str(claims["sub"])))
        token_id = f"oidc:{hashlib.sha256(subject.encode()).hexdigest()[:16]}"
        return Principal(token_id=token_id, role=role, person_id=person)

    def _seal(self, transaction: Mapping[str, Any]) -> str:
        payload = _b64(json.dumps(transaction, separators=(",", ":")).encode())
        return f"{payload}.{_b64(hmac.new(self._seal_key, payload.encode(), hashlib.sha256).digest())}"

    def _unseal(self, sealed: str | None) -> dict[str, Any]:
        """The transaction of a sealed value that this service made less than ten minutes ago."""
        payload, _, signature = (sealed or "").partition(".")
        expected = _b64(hmac.new(self._seal_key, payload.encode(), hashlib.sha256).digest())
        if not payload or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise OidcRefused("oidc_state")
        transaction: dict[str, Any] = json.loads(_unb64(payload))
        if not 0 <= time.time() - int(transaction["at"]) <= TRANSACTION_SECONDS:
            raise OidcRefused("oidc_expired")
        return transaction


def oidc_from(settings: Settings) -> OidcClient | None:
    """The dashboard's OIDC client as configured, or None when TALENT_OIDC_ISSUER is unset."""
    if settings.oidc_issuer is None:
        return None
    if not settings.oidc_client_id:
        raise ValueError("TALENT_OIDC_CLIENT_ID must be set with TALENT_OIDC_ISSUER")
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
        scopes=settings.oidc_scopes,
        role_claim=settings.oidc_role_claim,
        person_claim=settings.oidc_person_claim,
        role_map=parse_role_map(settings.oidc_role_map),
        # Derived from the vault's key: every API process of one instance shares it, and it is secret.
        seal_key=settings.master_key(),
        redirect_url=settings.oidc_redirect_url,
    )
