"""The clarity forms of a journey's page (issue 14, rules 4): the talent's readiness self-assessment
while a stage is open, the talent's debrief of a dilemma lab once it was held, and the nearest
leader's proposal of the next mentor meeting. What a viewer is offered follows the policy and the
read model; the journey itself still decides (a form shown is never a promise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.dashboard.session import Viewer
from domain import commands as c
from domain.policy import IN_PROGRAMME_STATES, RUNNING_STATES, TERMINAL_STATES, may_send
from domain.programme import Cohort, Programme
from domain.status import JourneyStatus


@dataclass(frozen=True)
class ClarityForms:
    """The clarity forms offered: the open readiness stage (and the answer given there), the labs
    that may be debriefed (key, title), and whether the next mentor meeting may be proposed."""

    readiness_stage: str | None = None
    readiness_answer: str | None = None
    debrief: tuple[tuple[str, str], ...] = ()
    propose: bool = False

    @property
    def any(self) -> bool:
        """Whether there is a form at all."""
        return bool(self.readiness_stage or self.debrief or self.propose)


def clarity_forms(
    viewer: Viewer,
    row: JourneyStatus,
    programme: Programme | None,
    cohort: Cohort | None,
    *,
    may_act: bool,
    now: datetime,
) -> ClarityForms:
    """The clarity forms of a journey's page for this viewer (none under earlier rules or read-only)."""
    role = viewer.principal.role
    if not may_act or row.readiness is None or row.state in TERMINAL_STATES:
        return ClarityForms()
    if role not in ("coordinator", "leader", "talent"):
        return ClarityForms()
    stage = row.readiness.open_stage if may_send(role, c.AssessReadiness) else None
    answer = None
    if stage == "enrolment":
        answer = row.readiness.enrolment
    elif stage == "evaluation":
        answer = row.readiness.evaluation
    # Held: its time has come, or the read model has moved its milestone on (attendance recorded,
    # or slipped after it), which the journey's own clock may do before this server's.
    held = {s.key for s in cohort.sessions if s.starts_at <= now} if cohort is not None else set()
    held |= {m.key.removeprefix("session:") for m in row.milestones if m.kind == "session" and m.status != "open"}
    labs = (
        tuple((s.key, s.title) for s in programme.sessions if s.kind == "dilemma_lab" and s.key in held)
        if programme is not None and row.state != "nominated" and may_send(role, c.DebriefLab)
        else ()
    )
    working = row.state in RUNNING_STATES or row.state == "paused"
    return ClarityForms(
        readiness_stage=stage,
        readiness_answer=answer,
        debrief=labs,
        propose=working and row.state in IN_PROGRAMME_STATES and may_send(role, c.ProposeMentorMeeting),
    )
