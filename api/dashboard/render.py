"""Rendering the dashboard: templates, security headers, flash messages, redirects, the signed-in viewer."""

from __future__ import annotations

import hashlib
import importlib.resources
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

import asyncpg
import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.access import identify
from api.dashboard.i18n import Texts
from api.dashboard.present import Presenter
from api.dashboard.session import (
    SESSION_COOKIE,
    Viewer,
    clear_flash,
    csrf_token,
    language,
    read_flash,
    remember_language,
    session_principal,
)
from api.deps import Resources

log = structlog.get_logger("talent.dashboard")

_env = Environment(
    loader=PackageLoader("api.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
#: No script at all, nothing from elsewhere, no framing: the pages are plain HTML and one stylesheet.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages hold personal data: never kept by a shared cache or the browser's back-forward cache.
    "Cache-Control": "no-store",
}
STATIC = {"dashboard.css": "text/css; charset=utf-8"}
#: Rows of a list on the cohort page before "show all".


# -- rendering -----------------------------------------------------------------------------------


@cache
def static_file(name: str) -> tuple[bytes, str]:
    """A static file's bytes and a short content hash (its cache-busting version)."""
    data = (importlib.resources.files("api.dashboard") / "static" / name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


def _lang_url(request: Request, texts: Texts) -> str:
    """This page in the other language."""
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    query["lang"] = "en" if texts.lang == "da" else "da"
    return f"{request.url.path}?{urlencode(query)}"


def render(
    request: Request,
    template: str,
    texts: Texts,
    *,
    viewer: Viewer | None = None,
    viewer_name: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the layout's context, the security headers, the language cookie."""
    pending = read_flash(request)
    body = _env.get_template(template).render(
        t=texts,
        viewer=viewer,
        viewer_name=viewer_name,
        path=request.url.path,
        lang_url=_lang_url(request, texts),
        css_url=f"/dashboard/static/dashboard.css?v={static_file('dashboard.css')[1]}",
        flash=_flash_text(texts, pending) if pending else None,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=_SECURITY_HEADERS)
    if pending:
        clear_flash(response)
    remember_language(request, response)
    return response


def _flash_text(texts: Texts, flash: tuple[str, str]) -> dict[str, str]:
    kind, code = flash
    key = f"flash_{code}"
    if texts.has(key):
        return {"kind": kind, "text": texts(key)}
    refusal = f"refusal_{code}"
    detail = texts(refusal) if texts.has(refusal) else code.replace("_", " ")
    return {"kind": kind, "text": texts("flash_refused", detail=detail)}


def error_page(
    request: Request, texts: Texts, viewer: Viewer | None, status_code: int, title: str, text: str
) -> Response:
    return render(
        request,
        "error.html",
        texts,
        viewer=viewer,
        status_code=status_code,
        title=texts(title),
        text=texts(text),
    )


def new_nonce() -> str:
    """A form's own id: its update id, so submitting the same form twice is one command."""
    return uuid.uuid4().hex


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def to_login(request: Request, target: str | None = None) -> RedirectResponse:
    """To the sign-in form, and from there back to `target` (default: this page)."""
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/dashboard/login?{urlencode({'next': target})}")


async def current_viewer(request: Request, resources: Resources) -> Viewer | None:
    """The signed-in viewer, or None (no cookie, or a session that expired or was signed out)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    principal = await session_principal(resources.pool, session_id)
    if principal is None or principal.role == "hr_system":
        return None
    identify(principal)  # the access log's actor (§8.7)
    return Viewer(principal=principal, texts=language(request), csrf=csrf_token(session_id))


Page = Callable[[Viewer, Presenter], Awaitable[Response]]


async def page(request: Request, resources: Resources, build: Page, *, roles: tuple[str, ...] = ()) -> Response:
    """Sign-in, role check and the unavailable page around a page's builder."""
    texts = language(request)
    try:
        viewer = await current_viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        log.warning("dashboard_unavailable", path=request.url.path)
        return error_page(request, texts, None, 503, "unavailable", "unavailable_text")
    if viewer is None:
        return to_login(request)
    if roles and viewer.role not in roles:
        return error_page(request, texts, viewer, 403, "forbidden", "forbidden_text")
    presenter = Presenter(texts, resources.vault, resources.catalog, datetime.now(UTC))
    try:
        return await build(viewer, presenter)
    except (asyncpg.PostgresConnectionError, OSError):
        log.warning("dashboard_unavailable", path=request.url.path)
        return error_page(request, texts, viewer, 503, "unavailable", "unavailable_text")


async def viewer_name(viewer: Viewer, presenter: Presenter) -> str:
    person = viewer.principal.person_id
    if not person:
        return ""
    await presenter.load_people([person])
    return presenter.name(person).text
