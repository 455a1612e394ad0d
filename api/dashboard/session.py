"""Signing in to the dashboard: the API token in a cookie, a CSRF token derived from it, safe redirects.

The session cookie holds the bearer token itself, so the dashboard needs no session store and no
secret of its own, and every request is authenticated exactly as the API authenticates it (a
revoked token or an expired JWT ends the session at once). It is `HttpOnly` (no script can read
it), `Secure` (browsers send it over HTTPS only; Chromium and Firefox treat http://localhost and
127.0.0.1 as secure, so `talent dev` works), `SameSite=Strict` (never sent on a request another
site starts) and scoped to `/dashboard`. Forms that change something also carry a CSRF token, an
HMAC of the session token, and the Origin header must name this host when a browser sends one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from api.auth import Principal
from api.dashboard.i18n import LANGS, Texts, texts_for

SESSION_COOKIE = "tj_session"
LANG_COOKIE = "tj_lang"
FLASH_COOKIE = "tj_flash"
COOKIE_PATH = "/dashboard"
#: A working day: after that the browser forgets the token and asks for it again.
SESSION_SECONDS = 8 * 3600
_CSRF_LABEL = b"talent-journey/dashboard/csrf/v1"


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


def csrf_token(session_token: str) -> str:
    """The form token of a session: only someone holding the session token can compute it."""
    digest = hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(session_token: str, submitted: str | None) -> bool:
    """Whether a submitted form token belongs to the session (constant-time)."""
    return bool(submitted) and hmac.compare_digest(csrf_token(session_token), str(submitted))


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


def set_session(response: Response, token: str) -> None:
    """Sign in: the token in an HttpOnly, Secure, SameSite=Strict cookie on /dashboard."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        secure=True,
        samesite="strict",
    )


def clear_session(response: Response) -> None:
    """Sign out: the browser drops the cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, secure=True, samesite="strict")


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
