"""A coordinator acts on an escalation: acknowledges it, or resolves it."""

from __future__ import annotations

from domain import commands as c
from domain import events as e
from domain.errors import InvalidCommand, InvalidState
from domain.journey.decision import Decision, require_role
from domain.journey.state import MilestoneState


def _open_escalation(d: Decision, key: str, action: str) -> MilestoneState:
    """The milestone whose escalation a coordinator acts on: known, with a raised rung unresolved."""
    s = d.s
    if key not in s.milestone_keys():
        raise InvalidCommand("unknown_milestone", f"the journey has no milestone {key!r}")
    m = s.milestone(key)
    raised = any(x.milestone == key and x.resolved_at is None for x in s.escalations)
    if m is None or not m.ladder_running or not raised:
        raise InvalidState(f"cannot {action}: milestone {key!r} has no open escalation", code="no_open_escalation")
    return m


def acknowledge(d: Decision, cmd: c.AcknowledgeEscalation) -> None:
    """A coordinator has it in hand: the ladder stops climbing; the escalation (and any risk) stays."""
    require_role(cmd, "acknowledge an escalation of")
    m = _open_escalation(d, cmd.milestone, "acknowledge")
    if m.acknowledged_at is not None:
        return
    d.emit(
        e.EscalationAcknowledged(
            milestone=m.key, acknowledged_by=cmd.actor_id, acknowledged_at=d.now, note_ref=cmd.note_ref
        )
    )


def resolve_escalation(d: Decision, cmd: c.ResolveEscalation) -> None:
    """A coordinator closes the escalation: the ladder stops and its at-risk mark goes; the milestone
    stays unmet (meeting it later is still recorded, and counts towards completion as before)."""
    require_role(cmd, "resolve an escalation of")
    m = _open_escalation(d, cmd.milestone, "resolve")
    d.emit(
        e.EscalationResolved(
            milestone=m.key,
            resolved_at=d.now,
            resolution="resolved_by_coordinator",
            resolved_by=cmd.actor_id,
            reason_ref=cmd.reason_ref,
        )
    )
