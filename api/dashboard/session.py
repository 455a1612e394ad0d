"""Signing in to the dashboard: short-lived server-side sessions, a CSRF token derived from them, safe redirects.

Sign-in verifies the API token once (as the API verifies a bearer token), or an OpenID Connect
ID token (`infra.oidc`, whose `exp` the session never outlives), and opens a session: a
random 32-byte id in the cookie, only its SHA-256 in `dashboard_sessions` with who signed in.
The token itself is never stored and never sent back, so a cookie that leaks is worth at most
the rest of one working day, and signing out revokes the session on the server (a copy of the
cookie replayed later opens nothing). The cookie is `HttpOnly` (no script can read it), `Secure`
(browsers send it over HTTPS only; Chromium and Firefox treat http://localhost and 127.0.0.1 as
secure, so `talent dev` works), `SameSite=Strict` (never sent on a request another site starts)
and scoped to `/dashboard`. Forms that change something also carry a CSRF token, an HMAC of the
session id, and the Origin header must name this host when a browser sends one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias
from urllib.parse import urlsplit

import asyncpg
import jwt
from fastapi import Request, Response

from api.auth import Principal
from api.dashboard.i18n import LANGS, Texts, texts_for

SESSION_COOKIE = "tj_session"
LANG_COOKIE = "tj_lang"
FLASH_COOKIE = "tj_flash"
OIDC_COOKIE = "tj_oidc"
OIDC_PATH = "/dashboard/oidc"
COOKIE_PATH = "/dashboard"
#: A working day from sign-in (never past a JWT's own expiry): then the session ends and the
#: browser asks for the token again.
SESSION_SECONDS = 8 * 3600
#: Session rows are kept this long past their expiry (who was signed in, when), then deleted.
_KEEP_EXPIRED = timedelta(days=1)
_CSRF_LABEL = b"talent-journey/dashboard/csrf/v1"
#: Longer than any id `open_session` makes: a cookie past this is not looked up at all.
_MAX_SESSION_ID = 100

# A string: asyncpg's Pool is generic only in its stubs.
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: their principal, the language and the form token of the session."""

    principal: Principal
    texts: Texts
    csrf: str

    @property
    def role(self) -> str:
        """The principal's role."""
        return self.principal.role


def csrf_token(session_id: str) -> str:
    """The form token of a session: only someone holding the session id can compute it."""
    digest = hmac.new(session_id.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(session_id: str, submitted: str | None) -> bool:
    """Whether a submitted form token belongs to the session (constant-time)."""
    return bool(submitted) and hmac.compare_digest(csrf_token(session_id), str(submitted))


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site (its Origin, else its Referer).

    A request with neither (not a browser, or one that strips both) is left to the CSRF token.
    """
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source == "null":  # an opaque origin: a sandboxed frame, a data: URL, a file
        return False
    return urlsplit(source).netloc == request.headers.get("host", "")


def language(request: Request) -> Texts:
    """`?lang=` if given, else the language cookie, else Danish."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return texts_for(asked)
    return texts_for(request.cookies.get(LANG_COOKIE))


def remember_language(request: Request, response: Response) -> None:
    """Keep a `?lang=` choice in a cookie (not personal data: no consent needed, a year long)."""
    asked = request.query_params.get("lang")
    if asked in LANGS and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, path=COOKIE_PATH, samesite="lax", secure=True)


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def token_expiry(token: str) -> datetime | None:
    """When a JWT expires (its `exp`), None for a tokens-file token.

    Read without checking the signature: call it only on a token that was just verified.
    """
    if token.count(".") != 2:
        return None
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


async def open_session(pool: Pool, principal: Principal, *, not_after: datetime | None = None) -> str:
    """Start a session for a verified principal; return its id (for the cookie only: only its
    digest is stored). It ends `SESSION_SECONDS` from now, or at `not_after` if that is sooner."""
    session_id = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO dashboard_sessions (session_sha256, token_id, role, person_id, expires_at) "
            "VALUES ($1, $2, $3, $4, least(now() + make_interval(secs => $5), coalesce($6::timestamptz, 'infinity')))",
            _digest(session_id),
            principal.token_id,
            principal.role,
            principal.person_id,
            float(SESSION_SECONDS),
            not_after,
        )
        await conn.execute("DELETE FROM dashboard_sessions WHERE expires_at < now() - $1::interval", _KEEP_EXPIRED)
    return session_id


async def session_principal(pool: Pool, session_id: str | None) -> Principal | None:
    """Who a session belongs to, or None: no such session, expired, or signed out."""
    if not session_id or len(session_id) > _MAX_SESSION_ID:
        return None
    row = await pool.fetchrow(
        "SELECT token_id, role, person_id FROM dashboard_sessions "
        "WHERE session_sha256 = $1 AND revoked_at IS NULL AND expires_at > now()",
        _digest(session_id),
    )
    if row is None:
        return None
    return Principal(token_id=row["token_id"], role=row["role"], person_id=row["person_id"])


async def close_session(pool: Pool, session_id: str) -> str | None:
    """Sign out on the server: the session opens nothing from now on. The token id it was opened
    with (`oidc:...` for an OpenID Connect sign-in) if it was open, else None."""
    if len(session_id) > _MAX_SESSION_ID:
        return None
    token_id: str | None = await pool.fetchval(
        "UPDATE dashboard_sessions SET revoked_at = now() WHERE session_sha256 = $1 AND revoked_at IS NULL "
        "RETURNING token_id",
        _digest(session_id),
    )
    return token_id


def set_session(response: Response, session_id: str, *, not_after: datetime | None = None) -> None:
    """Sign in: the session id in an HttpOnly, Secure, SameSite=Strict cookie on /dashboard, kept by
    the browser no longer than the session (`SESSION_SECONDS`, or until `not_after` if sooner)."""
    seconds = SESSION_SECONDS
    if not_after is not None:
        seconds = max(0, min(seconds, int((not_after - datetime.now(UTC)).total_seconds())))
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=seconds,
        path=COOKIE_PATH,
        httponly=True,
        secure=True,
        samesite="strict",
    )


def clear_session(response: Response) -> None:
    """Sign out: the browser drops the cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, secure=True, samesite="strict")


def set_oidc_transaction(response: Response, sealed: str, max_age: int) -> None:
    """A started OpenID Connect sign-in (its sealed state, nonce and PKCE verifier) until the callback.

    `SameSite=Lax`, unlike the session: the provider's redirect back is a navigation another site
    starts, and a Strict cookie would not come with it. Scoped to the callback's path.
    """
    response.set_cookie(
        OIDC_COOKIE, sealed, max_age=max_age, path=OIDC_PATH, httponly=True, secure=True, samesite="lax"
    )


def clear_oidc_transaction(response: Response) -> None:
    """The sign-in finished (or failed): its transaction is used up."""
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH, httponly=True, secure=True, samesite="lax")


def set_flash(response: Response, kind: str, code: str) -> None:
    """A one-shot message for the next page (after a POST-redirect-GET): `kind` and a message code."""
    response.set_cookie(
        FLASH_COOKIE, f"{kind}.{code}", max_age=60, path=COOKIE_PATH, httponly=True, secure=True, samesite="strict"
    )


def read_flash(request: Request) -> tuple[str, str] | None:
    """The pending message, if any (`clear_flash` on the response that shows it)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, code = raw.partition(".")
    if kind not in ("ok", "error") or not code.replace("_", "").isalnum():
        return None
    return kind, code


def clear_flash(response: Response) -> None:
    """The message was shown: forget it."""
    response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH, httponly=True, secure=True, samesite="strict")


def secure_transport(request: Request) -> bool:
    """Whether a browser will send a Secure cookie back: HTTPS, or plain HTTP to a loopback host."""
    if request.url.scheme == "https":
        return True
    host = (request.url.hostname or "").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_next(target: str | None) -> str:
    """A redirect target after sign-in: a path inside the dashboard, never another site."""
    if not target or not target.startswith("/dashboard") or target.startswith("//") or "\\" in target:
        return "/dashboard/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/dashboard/"
    return target
