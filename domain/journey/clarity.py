"""Rules 4 (issue 14): clarity. The talent's readiness self-assessment (want to lead: yes / not
now / no) at enrolment and at evaluation, their debrief after each dilemma lab, and the clarified
outcome concluded when the evaluation stage closes.

A stage opens with `ReadinessAsked` (the talent is told by e-mail): the enrolment stage when the
talent is enrolled, the evaluation stage when completion is evaluated; the evaluation stage
takes answers for the programme's `follow_up.response_window`, then `ClarityConcluded` records
whether the talent became clear: a well-founded yes or no at the end is clarified, not now is not,
no answer is unknown.
"""

from __future__ import annotations

from datetime import datetime

from domain import commands as c
from domain import events as e
from domain.errors import InvalidCommand, InvalidState
from domain.journey.decision import Decision, require_running, require_sender
from domain.journey.state import JourneyState
from domain.policy import TERMINAL_STATES

#: The first rules version with clarity.
CLARITY_RULES = 4


def _require_clarity_rules(s: JourneyState, action: str) -> None:
    if s.rules_version < CLARITY_RULES:
        raise InvalidState(
            f"cannot {action}: the journey's rules (version {s.rules_version}) do not ask for it",
            code="not_in_rules",
        )


def clarified(answer: e.ReadinessAnswer | None) -> bool | None:
    """Whether an answer at the end is well-founded: yes or no is clarified, not now is not, none is unknown."""
    if answer is None:
        return None
    return answer != "not_now"


def ask_at_enrolment(d: Decision) -> None:
    """Rules 4: the enrolment stage opens when the talent is enrolled."""
    if d.s.rules_version >= CLARITY_RULES:
        d.emit(e.ReadinessAsked(stage="enrolment", asked_at=d.now))


def ask_at_evaluation(d: Decision, at: datetime) -> None:
    """Rules 4: the evaluation stage opens when completion is evaluated `at`, for the follow-up's
    response window (the enrolment stage closes)."""
    s = d.s
    if s.rules_version < CLARITY_RULES or s.readiness_stage == "evaluation" or s.clarity_concluded_at is not None:
        return
    respond_by = s.calendar.add(at, s.programme.follow_up.response_window)
    d.emit(e.ReadinessAsked(stage="evaluation", asked_at=at, respond_by=respond_by))


def concluding_at(s: JourneyState) -> datetime | None:
    """Rules 4: when the evaluation stage closes and the clarified outcome is concluded (None: not pending)."""
    if s.rules_version < CLARITY_RULES or s.readiness_stage != "evaluation" or s.clarity_concluded_at is not None:
        return None
    return s.readiness_respond_by


def conclude(d: Decision, at: datetime) -> None:
    """Rules 4: the evaluation stage closes `at`: the clarified outcome is recorded."""
    s = d.s
    start, end = s.readiness_at("enrolment"), s.readiness_at("evaluation")
    final = end.answer if end is not None else None
    d.emit(
        e.ClarityConcluded(
            concluded_at=at,
            enrolment_answer=start.answer if start is not None else None,
            evaluation_answer=final,
            clarified=clarified(final),
        )
    )


def assess_readiness(d: Decision, cmd: c.AssessReadiness) -> None:
    """The talent (or a coordinator on their behalf) answers the open stage; the same answer again
    changes nothing, a different one records the change."""
    s = d.s
    require_sender(s, cmd, "only the talent, or a coordinator on their behalf, can assess readiness")
    _require_clarity_rules(s, "assess readiness")
    if s.state in TERMINAL_STATES or s.readiness_stage != cmd.stage:
        open_stage = s.readiness_stage if s.state not in TERMINAL_STATES else None
        raise InvalidState(
            f"the {cmd.stage} stage of the readiness assessment is not open (open: {open_stage or 'none'})",
            code="stage_not_open",
        )
    before = s.readiness_at(cmd.stage)
    if before is not None and before.answer == cmd.answer:
        return
    d.emit(
        e.ReadinessAssessed(
            stage=cmd.stage,
            answer=cmd.answer,
            reason_ref=cmd.reason_ref,
            assessed_by=cmd.actor_id,
            previous_answer=before.answer if before is not None else None,
        )
    )


def debrief_lab(d: Decision, cmd: c.DebriefLab) -> None:
    """The talent debriefs a dilemma lab session once it has been held; the same debrief again
    changes nothing, a changed scale (or notes added) records the change."""
    s = d.s
    require_sender(s, cmd, "only the talent can debrief a lab session")
    _require_clarity_rules(s, "debrief a lab")
    if s.state == "nominated":
        raise InvalidState("cannot debrief a lab before the talent is enrolled", code="invalid_state")
    session = next((x for x in s.programme.sessions if x.key == cmd.session_key), None)
    if session is None:
        raise InvalidCommand("unknown_session", f"the programme has no session {cmd.session_key!r}")
    if session.kind != "dilemma_lab":
        raise InvalidCommand("not_a_lab", f"session {cmd.session_key!r} is not a dilemma lab")
    held = next((x.starts_at for x in s.cohort.sessions if x.key == cmd.session_key), None)
    if held is None or held > d.now:
        raise InvalidState(f"session {cmd.session_key!r} has not been held yet", code="session_not_held")
    if s.readiness_stage != "evaluation":
        # Until the evaluation a debrief is part of the programme; afterwards the evaluation stage is open.
        require_running(s, "debrief a lab on")
    elif s.state in TERMINAL_STATES:  # pragma: no cover - a terminal journey has no open stage
        raise InvalidState("the journey is over", code="invalid_state")
    before = s.debrief_of(cmd.session_key)
    if before is not None and before.clarity == cmd.clarity and (cmd.notes_ref is None) == (before.notes_ref is None):
        return
    d.emit(
        e.LabDebriefed(
            session_key=cmd.session_key, clarity=cmd.clarity, notes_ref=cmd.notes_ref, debriefed_by=cmd.actor_id
        )
    )
