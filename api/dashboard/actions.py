"""What a coordinator does from the dashboard's forms: acknowledge or resolve an escalation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Literal

import asyncpg
import structlog
from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError
from temporalio.service import RPCError

from api.dashboard.render import (
    current_viewer,
    error_page,
    redirect,
    to_login,
)
from api.dashboard.session import (
    SESSION_COOKIE,
    Viewer,
    csrf_ok,
    language,
    safe_next,
    same_origin,
    set_flash,
)
from api.deps import Deps, Resources, can_see
from domain import commands as c
from domain.errors import DomainError
from service import journeys as service
from service.errors import ServiceError
from store.vault import PersonErased
from store.views import journeys as journeys_view

log = structlog.get_logger("talent.dashboard")
router = APIRouter(prefix="/dashboard", include_in_schema=False)
#: A form's nonce: its update id, so submitting the same form twice is one command.
_NONCE = re.compile(r"^[0-9a-f]{32}$")

# -- acting on escalations -----------------------------------------------------------------------


@router.post("/escalations/{action}")
async def escalation_action(
    request: Request,
    resources: Deps,
    action: Literal["acknowledge", "resolve"],
    journey_id: Annotated[str, Form(max_length=100)],
    milestone: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=20_000)] = "",
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    """Acknowledge or resolve a milestone's open escalation (coordinators), then back to the page."""
    texts = language(request)
    try:
        viewer = await current_viewer(request, resources)
    except (asyncpg.PostgresConnectionError, OSError):
        return error_page(request, texts, None, 503, "unavailable", "unavailable_text")
    if viewer is None:
        return to_login(request, safe_next(next))
    if not same_origin(request) or not csrf_ok(request.cookies.get(SESSION_COOKIE, ""), csrf):
        log.warning("dashboard_csrf_refused", path=request.url.path)
        return error_page(request, texts, viewer, 403, "forbidden", "csrf_failed")
    if viewer.role != "coordinator":
        return error_page(request, texts, viewer, 403, "forbidden", "forbidden_text")
    back = safe_next(next or "/dashboard/escalations")
    response = redirect(back)
    if not await can_see(resources, viewer.principal, journey_id):
        set_flash(response, "error", "not_found")
        return response
    outcome = await _send(resources, viewer, action, journey_id, milestone, note.strip(), nonce)
    set_flash(response, "ok" if outcome in ("acknowledged", "resolved") else "error", outcome)
    return response


async def _send(
    resources: Resources, viewer: Viewer, action: str, journey_id: str, milestone: str, note: str, nonce: str
) -> str:
    """Send the command to the journey's workflow; the flash code of the outcome (never an exception)."""
    actor: c.Actor = {"actor_id": viewer.principal.person_id or viewer.principal.token_id, "actor_role": "coordinator"}
    # One form, one update id: a double click sends the same update twice, which Temporal runs once.
    form = f"dashboard:{nonce if _NONCE.match(nonce) else uuid.uuid4().hex}"
    try:
        found = await journeys_view.status(resources.pool, journey_id)
        talent_id = found.talent_id if found is not None else None
        command: Callable[[dict[str, str | None]], c.Command]
        if action == "acknowledge":
            text = "note"

            def command(refs: dict[str, str | None]) -> c.Command:
                return c.AcknowledgeEscalation(**actor, milestone=milestone, note_ref=refs["note_ref"])
        else:
            text = "reason"

            def command(refs: dict[str, str | None]) -> c.Command:
                return c.ResolveEscalation(**actor, milestone=milestone, reason_ref=refs["reason_ref"])

        await service.execute(
            resources,
            journey_id,
            command,
            update_id=service.update_id_for(viewer.principal.token_id, form),
            talent_id=talent_id,
            texts={text: note or None},
        )
    except ValidationError:
        return "invalid_request"
    except (DomainError, ServiceError, PersonErased) as exc:
        # The flash message of a refusal is its stable code, whoever refused (domain, service, vault).
        return exc.code
    except (RPCError, RuntimeError, asyncpg.PostgresConnectionError, OSError) as exc:
        log.warning("dashboard_command_failed", journey_id=journey_id, error=type(exc).__name__)
        return "unavailable"
    log.info("dashboard_escalation_" + action, journey_id=journey_id, milestone=milestone)
    return "acknowledged" if action == "acknowledge" else "resolved"
