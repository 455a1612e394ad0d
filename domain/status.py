"""The journey status view: what `GET /v1/journeys/{id}` returns, derived from the state."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator

from domain.events import JourneyStateName, MilestoneKind
from domain.journey import JourneyState, MilestoneStatus
from domain.programme import Role
from domain.values import AtRiskReason

#: The states in which a journey's deadlines run (a paused journey's clock stands still, §8.4).
DEADLINE_STATES: frozenset[JourneyStateName] = frozenset({"nominated", "enrolled", "active"})


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
    #: This rung is its ladder's last: the journey is at risk until the milestone is resolved.
    at_risk: bool = False


class LadderView(_Frozen):
    """A slipped milestone's running ladder (its unresolved rungs): how far it climbed, and since when.

    `at_risk` is the domain's rule (the ladder reached its own last rung), the one the at-risk
    reasons follow; `last_rung` is that last rung's number (None in rows stored before it).
    """

    milestone: str
    rung: int
    last_rung: int | None
    recipient_role: Role
    first_raised_at: AwareDatetime
    raised_at: AwareDatetime
    at_risk: bool
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str | None = None


def _escalated_milestone(reason: Any) -> str | None:
    """The milestone of an "escalated" at-risk reason, as stored (text or model), else None."""
    if not isinstance(reason, dict):
        reason = str(reason)  # an AtRiskReason reads as its stored text
    if isinstance(reason, str):
        try:
            return AtRiskReason.parse(reason).milestone
        except ValueError:
            return None
    if isinstance(reason, dict) and reason.get("kind", "escalated") == "escalated":
        found = reason.get("milestone")
        return str(found) if found else None
    return None


def ladders_from_escalations(escalations: Any, at_risk_reasons: Any) -> list[dict[str, Any]]:
    """Open ladders derived from stored status data that predates `ladders` (the last rung unknown)."""
    at_risk = {_escalated_milestone(r) for r in at_risk_reasons or ()}
    by_milestone: dict[str, list[dict[str, Any]]] = {}
    for x in escalations or ():
        if isinstance(x, dict) and x.get("resolved_at") is None:
            by_milestone.setdefault(str(x["milestone"]), []).append(x)
    found = []
    for milestone, raised in by_milestone.items():
        top = max(raised, key=lambda x: int(x["rung"]))
        acknowledged = [x for x in raised if x.get("acknowledged_at")]
        ack = max(acknowledged, key=lambda x: str(x["acknowledged_at"])) if acknowledged else None
        found.append(
            {
                "milestone": milestone,
                "rung": int(top["rung"]),
                "last_rung": int(top["rung"]) if milestone in at_risk else None,
                "recipient_role": top["recipient_role"],
                "first_raised_at": min(str(x["raised_at"]) for x in raised),
                "raised_at": top["raised_at"],
                "at_risk": milestone in at_risk,
                "acknowledged_at": ack["acknowledged_at"] if ack else None,
                "acknowledged_by": ack.get("acknowledged_by") if ack else None,
            }
        )
    return found


class ReadinessView(_Frozen):
    """Rules 4: the readiness self-assessment: the stage open now (and until when), the answer at
    each stage (None: not answered), and the clarified outcome once concluded (None: unknown)."""

    open_stage: str | None = None
    respond_by: AwareDatetime | None = None
    enrolment: str | None = None
    evaluation: str | None = None
    concluded: bool = False
    clarified: bool | None = None


class DebriefView(_Frozen):
    """Rules 4: a dilemma lab session's debrief (the notes are a vault text, not shown here)."""

    session_key: str
    clarity: int | None = None


class AppointmentView(_Frozen):
    """Rules 4: the next mentor meeting as the nearest leader proposed it."""

    number: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    remind_at: AwareDatetime | None = None
    reminded: bool = False


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
    #: The current leader's leader, who follows the journey read-only (§8.1).
    leaders_leader_id: str | None = None
    #: Keys of the tracks the talent submitted that wait for the nearest leader's sign-off.
    awaiting_signoff: tuple[str, ...] = ()
    #: The running escalation ladders, one per slipped milestone (rows stored before: derived on reading).
    ladders: tuple[LadderView, ...] = ()
    #: The journey's rules version (domain.commands.CURRENT_RULES_VERSION when nominated).
    rules_version: int = 1
    #: Rules 4: the readiness self-assessment (None under earlier rules).
    readiness: ReadinessView | None = None
    #: Rules 4: the debriefs of dilemma lab sessions.
    debriefs: tuple[DebriefView, ...] = ()
    #: Rules 4: the proposed next mentor meeting (None: none proposed, or it was held).
    appointment: AppointmentView | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_ladders(cls, data: Any) -> Any:
        """Status JSON stored before `ladders` gets them from its escalations and at-risk reasons."""
        if isinstance(data, dict) and "ladders" not in data and data.get("escalations"):
            return {**data, "ladders": ladders_from_escalations(data["escalations"], data.get("at_risk_reasons"))}
        return data

    @property
    def open_escalations(self) -> int:
        """Open escalations, counted as the lists show them: running ladders, not rungs."""
        return len(self.ladders)


def next_deadline(state: JourneyState) -> datetime | None:
    """The earliest open milestone deadline, else the completion evaluation while running."""
    if state.state not in DEADLINE_STATES:
        return None
    dues = [m.due_at for m in state.milestones if m.status == "open"]
    if dues:
        return min(dues)
    return state.evaluate_at if state.state in ("enrolled", "active") else None


def awaiting_signoff(state: JourneyState) -> tuple[str, ...]:
    """Tracks submitted and waiting for the nearest leader (a track needing no sign-off is done at once)."""
    return tuple(t.key for t in state.tracks if t.status == "submitted")


def ladders(state: JourneyState) -> list[dict[str, Any]]:
    """The running ladders as plain data (LadderView's shape): one per milestone with unresolved rungs."""
    by_milestone: dict[str, list[Any]] = {}
    for x in state.escalations:
        if x.resolved_at is None:
            by_milestone.setdefault(x.milestone, []).append(x)
    found = []
    for key, raised in by_milestone.items():
        top = max(raised, key=lambda x: x.rung)
        m = state.milestone(key)
        plan = m.ladder if m is not None else ()
        found.append(
            {
                "milestone": key,
                "rung": top.rung,
                "last_rung": plan[-1].rung if plan else None,
                "recipient_role": top.recipient_role,
                "first_raised_at": min(x.raised_at for x in raised),
                "raised_at": top.raised_at,
                "at_risk": any(x.at_risk for x in raised),
                "acknowledged_at": m.acknowledged_at if m is not None else None,
                "acknowledged_by": m.acknowledged_by if m is not None else None,
            }
        )
    return found


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
                "at_risk": x.at_risk,
            }
            for x in state.escalations
        ],
        "next_deadline": next_deadline(state),
        "completion": state.completion,
        "completion_reasons": state.completion_reasons,
        "version": state.version,
        "external_ref_ref": state.external_ref_ref,
        "pending_meetings": [m.held_on for m in state.pending_meetings()],
        "leaders_leader_id": state.leaders_leader_id,
        "awaiting_signoff": awaiting_signoff(state),
        "ladders": ladders(state),
        "rules_version": state.rules_version,
        "readiness": readiness(state),
        "debriefs": [{"session_key": x.session_key, "clarity": x.clarity} for x in state.debriefs],
        "appointment": state.appointment.model_dump(exclude={"proposals"}) if state.appointment else None,
    }


def readiness(state: JourneyState) -> dict[str, Any] | None:
    """Rules 4: the readiness self-assessment as plain data (ReadinessView's shape)."""
    if state.rules_version < 4:
        return None
    start, end = state.readiness_at("enrolment"), state.readiness_at("evaluation")
    return {
        "open_stage": state.readiness_stage,
        "respond_by": state.readiness_respond_by,
        "enrolment": start.answer if start is not None else None,
        "evaluation": end.answer if end is not None else None,
        "concluded": state.clarity_concluded_at is not None,
        "clarified": state.clarified,
    }


def dump_status(data: dict[str, Any]) -> str:
    """Status data (from `status_data`) as JSON text, what the read model stores (instants and
    dates in ISO 8601, as they always were)."""
    return json.dumps(data, default=_iso, ensure_ascii=False, separators=(",", ":"))


def _iso(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a status")


def status_of(state: JourneyState) -> JourneyStatus:
    """Derive the status view from a journey's state."""
    return JourneyStatus.model_validate(status_data(state))
