"""Sign-in and sign-out (a server-side session from an API token or OpenID Connect), and the stylesheet."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import structlog
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import KeysUnavailable
from api.dashboard.i18n import Texts
from api.dashboard.render import (
    STATIC,
    current_viewer,
    redirect,
    render,
    static_file,
)
from api.dashboard.session import (
    OIDC_COOKIE,
    SESSION_COOKIE,
    clear_oidc_transaction,
    clear_session,
    close_session,
    csrf_ok,
    language,
    open_session,
    safe_next,
    same_origin,
    secure_transport,
    set_flash,
    set_oidc_transaction,
    set_session,
    token_expiry,
)
from api.deps import Deps, Resources, authenticate
from api.ratelimit import Budget, count_failure, guard_failures
from infra.oidc import TRANSACTION_SECONDS, OidcRefused, OidcUnavailable

log = structlog.get_logger("talent.dashboard")
router = APIRouter(prefix="/dashboard", include_in_schema=False)

# -- static files, sign-in -----------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet (versioned by its hash in the URL, so it may be cached for a year)."""
    if name not in STATIC:
        return Response(status_code=404)
    data, _ = static_file(name)
    return Response(
        data,
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )


@router.get("")
async def root() -> RedirectResponse:
    """/dashboard → /dashboard/."""
    return redirect("/dashboard/")


@router.get("/login")
async def login_form(request: Request, resources: Deps, next: str | None = None) -> Response:
    """The sign-in form (or straight on, when already signed in)."""
    texts = language(request)
    try:
        if await current_viewer(request, resources) is not None:
            return redirect(safe_next(next))
    except (asyncpg.PostgresConnectionError, OSError):
        pass
    return login_page(request, resources, texts, safe_next(next))


def login_page(
    request: Request, resources: Resources, texts: Texts, target: str, error: str | None = None, status_code: int = 200
) -> Response:
    """The sign-in page: the identity provider's button when OIDC is configured, the token form beside it."""
    return render(
        request,
        "login.html",
        texts,
        status_code=status_code,
        next=target,
        insecure=not secure_transport(request),
        oidc=resources.oidc is not None,
        error=texts(error) if error else None,
    )


@router.post("/login")
async def login(
    request: Request,
    resources: Deps,
    token: Annotated[str, Form(max_length=8192)] = "",
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    """Check the token as the API would, open a session (its id in the cookie, never the token), go on."""
    texts = language(request)
    target = safe_next(next)

    def again(error: str, status_code: int) -> Response:
        return login_page(request, resources, texts, target, error, status_code)

    if not same_origin(request):
        return again("csrf_failed", 403)
    token = token.strip()
    await guard_failures(request, Budget.AUTH_FAILURES)  # 429 problem+json once the address spent its failures
    try:
        principal = await authenticate(resources.authenticator, token) if token else None
    except KeysUnavailable:
        return again("login_unavailable", 503)
    if principal is None:
        await count_failure(request, Budget.AUTH_FAILURES)
        log.info("dashboard_sign_in_refused")
        return again("login_invalid", 401)
    if principal.role == "hr_system":
        return again("login_role_refused", 403)
    session_id = await open_session(resources.pool, principal, not_after=token_expiry(token))
    log.info("dashboard_signed_in", role=principal.role, token_id=principal.token_id)
    response = redirect(target)
    set_session(response, session_id)
    return response


@router.post("/logout")
async def logout(request: Request, resources: Deps, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Sign out: the session is revoked on the server and the cookie dropped (a form with the
    session's CSRF token, so another site cannot sign you out)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    response: Response = redirect("/dashboard/login")
    if session_id and same_origin(request) and csrf_ok(session_id, csrf):
        token_id = await close_session(resources.pool, session_id)
        if token_id:
            log.info("dashboard_signed_out")
        if token_id and token_id.startswith("oidc:") and resources.oidc is not None:
            # Also end the provider's session (RP-initiated logout), when it offers that, and come back here.
            ending = await resources.oidc.end_session_url(f"{_base(request)}/dashboard/login")
            if ending is not None:
                response = render(request, "continue.html", language(request), target=ending)
        clear_session(response)
        set_flash(response, "ok", "signed_out")
    return response


# -- OpenID Connect ------------------------------------------------------------------------------


def _base(request: Request) -> str:
    """This service's origin as the browser reached it."""
    return str(request.base_url).rstrip("/")


#: Why a sign-in was refused → the sign-in page's message and status.
_REFUSALS = {
    "oidc_denied": ("login_oidc_denied", 401),
    "oidc_expired": ("login_oidc_expired", 401),
    "oidc_no_role": ("login_oidc_no_role", 403),
    "oidc_no_person": ("login_oidc_no_role", 403),
    "oidc_bad_person": ("login_oidc_no_role", 403),
}


@router.get("/oidc/login")
async def oidc_login(request: Request, resources: Deps, next: str | None = None) -> Response:
    """Start an OpenID Connect sign-in: to the provider, with state, nonce and PKCE kept in a sealed cookie."""
    texts = language(request)
    target = safe_next(next)
    if resources.oidc is None:
        return login_page(request, resources, texts, target, "login_oidc_unavailable", 404)
    redirect_uri = resources.oidc.redirect_url or f"{_base(request)}/dashboard/oidc/callback"
    try:
        started = await resources.oidc.start(redirect_uri, target)
    except OidcUnavailable as exc:
        log.warning("dashboard_oidc_unavailable", step=str(exc))
        return login_page(request, resources, texts, target, "login_oidc_unavailable", 503)
    response = redirect(started.url)
    set_oidc_transaction(response, started.transaction, TRANSACTION_SECONDS)
    return response


@router.get("/oidc/callback")
async def oidc_callback(request: Request, resources: Deps) -> Response:
    """The provider sends the browser back here: verify everything, open a session, go on."""
    texts = language(request)
    if resources.oidc is None:
        return login_page(request, resources, texts, "/dashboard/", "login_oidc_unavailable", 404)
    await guard_failures(request, Budget.AUTH_FAILURES)  # 429 once the address spent its failures
    try:
        signed_in = await resources.oidc.finish(request.cookies.get(OIDC_COOKIE), dict(request.query_params))
    except OidcUnavailable as exc:
        log.warning("dashboard_oidc_unavailable", step=str(exc))
        response = login_page(request, resources, texts, "/dashboard/", "login_oidc_unavailable", 503)
        clear_oidc_transaction(response)
        return response
    except OidcRefused as exc:
        await count_failure(request, Budget.AUTH_FAILURES)
        log.info("dashboard_sign_in_refused", reason=exc.code)
        message, status_code = _REFUSALS.get(exc.code, ("login_oidc_failed", 401))
        response = login_page(request, resources, texts, "/dashboard/", message, status_code)
        clear_oidc_transaction(response)
        return response
    principal = signed_in.principal
    if principal.role == "hr_system":
        log.info("dashboard_sign_in_refused", reason="hr_system")
        response = login_page(request, resources, texts, signed_in.next_path, "login_role_refused", 403)
        clear_oidc_transaction(response)
        return response
    session_id = await open_session(resources.pool, principal, not_after=signed_in.expires_at)
    log.info("dashboard_signed_in", role=principal.role, token_id=principal.token_id, via="oidc")
    # A page that moves on, not a redirect: see continue.html (the session cookie is SameSite=Strict).
    response = render(request, "continue.html", texts, target=safe_next(signed_in.next_path))
    set_session(response, session_id, not_after=signed_in.expires_at)
    clear_oidc_transaction(response)
    return response
