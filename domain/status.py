"""The journey status view: what `GET /v1/journeys/{id}` returns, derived from the state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict

from domain.events import JourneyStateName, MilestoneKind
from domain.journey import JourneyState, MilestoneStatus
from domain.programme import Role


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Progress(_Frozen):
    """How far the talent has come against the completion criteria."""

    sessions_attended: int
    sessions_required: int
    tracks_done: int
    tracks_required: int
    meetings_held: int
    meetings_required: int


class MilestoneView(_Frozen):
    """A milestone as shown to users."""

    key: str
    kind: MilestoneKind
    due_at: AwareDatetime
    status: MilestoneStatus


class EscalationView(_Frozen):
    """A raised rung as shown to users; acknowledged: a coordinator has it in hand (no further rung fires)."""

    milestone: str
    rung: int
    recipient_role: Role
    raised_at: AwareDatetime
    resolved_at: AwareDatetime | None
    # Added later, with defaults: status JSON stored before them still parses.
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str | None = None


class JourneyStatus(_Frozen):
    """A journey's status (§6)."""

    journey_id: str
    cohort_id: str
    programme_id: str
    programme_version: int
    state: JourneyStateName
    at_risk: bool
    at_risk_reasons: tuple[str, ...]
    talent_id: str
    nearest_leader_id: str
    external_ref: str | None
    progress: Progress
    milestones: tuple[MilestoneView, ...]
    escalations: tuple[EscalationView, ...]
    next_deadline: AwareDatetime | None
    completion: str | None
    completion_reasons: tuple[str, ...]
    version: int
    # Added later, with defaults: status JSON stored before them still parses.
    #: The HR reference as a people-vault text id (journeys nominated before it carry `external_ref`).
    external_ref_ref: str | None = None
    #: Dates of mentor meetings the talent logged that wait for the nearest leader's confirmation.
    pending_meetings: tuple[date, ...] = ()


def next_deadline(state: JourneyState) -> datetime | None:
    """The earliest open milestone deadline, else the completion evaluation while running."""
    if state.state not in ("nominated", "enrolled", "active"):
        return None
    dues = [m.due_at for m in state.milestones if m.status == "open"]
    if dues:
        return min(dues)
    return state.evaluate_at if state.state in ("enrolled", "active") else None


def status_data(state: JourneyState) -> dict[str, Any]:
    """The status view as plain data, in the shape of JourneyStatus.

    The projection writes this on every append and for every journey of a rebuild, so it skips
    building a model per milestone and escalation; `status_of` validates it into the model.
    """
    attended, required = state.sessions_counts()
    completion = state.programme.completion
    reasons = state.at_risk_reasons()
    return {
        "journey_id": state.journey_id,
        "cohort_id": state.cohort.cohort_id,
        "programme_id": state.programme.id,
        "programme_version": state.programme.version,
        "state": state.state,
        "at_risk": bool(reasons),
        "at_risk_reasons": reasons,
        "talent_id": state.talent_id,
        "nearest_leader_id": state.nearest_leader_id,
        "external_ref": state.external_ref,
        "progress": {
            "sessions_attended": attended,
            "sessions_required": required,
            "tracks_done": state.tracks_done(),
            "tracks_required": completion.tracks_required,
            "meetings_held": state.meetings_held(),
            "meetings_required": completion.min_mentor_meetings,
        },
        "milestones": [
            {"key": m.key, "kind": m.kind, "due_at": m.due_at, "status": m.status} for m in state.milestones
        ],
        "escalations": [
            {
                "milestone": x.milestone,
                "rung": x.rung,
                "recipient_role": x.recipient_role,
                "raised_at": x.raised_at,
                "resolved_at": x.resolved_at,
                "acknowledged_at": x.acknowledged_at,
                "acknowledged_by": x.acknowledged_by,
            }
            for x in state.escalations
        ],
        "next_deadline": next_deadline(state),
        "completion": state.completion,
        "completion_reasons": state.completion_reasons,
        "version": state.version,
        "external_ref_ref": state.external_ref_ref,
        "pending_meetings": [m.held_on for m in state.pending_meetings()],
    }


def dump_status(data: dict[str, Any]) -> str:
    """Status data (from `status_data`) as JSON text, what the read model stores."""
    return orjson.dumps(data).decode()


def status_of(state: JourneyState) -> JourneyStatus:
    """Derive the status view from a journey's state."""
    return JourneyStatus.model_validate(status_data(state))
