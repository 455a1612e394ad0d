"""Sign-in and sign-out (a server-side session from an API token), and the stylesheet."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import structlog
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import KeysUnavailable
from api.dashboard.render import (
    STATIC,
    current_viewer,
    redirect,
    render,
    static_file,
)
from api.dashboard.session import (
    SESSION_COOKIE,
    clear_session,
    close_session,
    csrf_ok,
    language,
    open_session,
    safe_next,
    same_origin,
    secure_transport,
    set_flash,
    set_session,
    token_expiry,
)
from api.deps import Deps, authenticate
from api.ratelimit import Budget, count_failure, guard_failures

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
    return render(
        request,
        "login.html",
        texts,
        next=safe_next(next),
        insecure=not secure_transport(request),
        error=None,
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
        return render(
            request,
            "login.html",
            texts,
            status_code=status_code,
            next=target,
            insecure=not secure_transport(request),
            error=texts(error),
        )

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
    response = redirect("/dashboard/login")
    if session_id and same_origin(request) and csrf_ok(session_id, csrf):
        if await close_session(resources.pool, session_id):
            log.info("dashboard_signed_out")
        clear_session(response)
        set_flash(response, "ok", "signed_out")
    return response
