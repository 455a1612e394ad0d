"""Which notifications an event causes: e-mails to people by role, webhooks to HR systems."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain import events as e
from domain.journey import JourneyState
from domain.programme import Role
from domain.values import MilestoneKey

Channel = Literal["email", "webhook"]

#: Events an HR system hears about: every change of state, escalation to at-risk, an escalation taken
#: in hand or cleared, and outcomes.
WEBHOOK_EVENTS: frozenset[str] = frozenset(
    {
        "TalentNominated",
        "NominationApproved",
        "NominationRejected",
        "NominationExpired",
        "TalentEnrolled",
        "JourneyStarted",
        "JourneyPaused",
        "JourneyResumed",
        "TalentWithdrawn",
        "ProgrammeCompleted",
        "ProgrammeNotCompleted",
        "FollowUpRequested",
        "OutcomeRecorded",
        "JourneyClosed",
        "NearestLeaderChanged",
        # PRODUCT §8.4: HR also hears that a risk was taken in hand or cleared.
        "EscalationAcknowledged",
        "EscalationResolved",
    }
)


class Notification(BaseModel):
    """A message to deliver; it names people by id, resolved from the vault at send time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Channel
    template: str
    recipient_role: Role | Literal["hr_system"]
    recipient_id: str | None


def _mail(template: str, role: Role, state: JourneyState) -> Notification:
    return Notification(channel="email", template=template, recipient_role=role, recipient_id=state.person_for(role))


def _rung_template(state: JourneyState, event: e.EscalationRaised) -> str:
    """The e-mail a rung sends: rules 3 tell an approval or an unrecorded attendance for what it is."""
    if state.rules_version >= 3:
        m = state.milestone(event.milestone)
        if m is not None and m.kind == "approval":
            return "approval_overdue" if event.recipient_role == "coordinator" else "approval_pending_leader"
        if m is not None and m.kind == "session" and event.recipient_role == "coordinator":
            return "attendance_unrecorded"
    return "reminder" if event.recipient_role == "talent" else f"escalation_{event.recipient_role}"


def notifications_for(state: JourneyState, event: e.Event) -> list[Notification]:
    """The notifications `event` causes, given the state just after it."""
    out: list[Notification] = []
    match event:
        case e.TalentNominated():
            out.append(_mail("nomination_received", "coordinator", state))
        case e.NominationRejected():
            out.append(_mail("nomination_rejected", "nearest_leader", state))
        case e.NominationExpired():
            # Rules 3 (PRODUCT §8.4): the nominating leader hears it expired (HR by its webhook).
            out.append(_mail("nomination_expired", "nearest_leader", state))
        case e.TalentEnrolled():
            out.append(_mail("welcome", "talent", state))
            out.append(_mail("welcome_leader", "nearest_leader", state))
        case e.EscalationRaised():
            template = _rung_template(state, event)
            out.append(
                Notification(
                    channel="email",
                    template=template,
                    recipient_role=event.recipient_role,
                    recipient_id=event.recipient_id,
                )
            )
        case e.EscalationResolved(resolution="resolved_by_coordinator"):
            # Whoever the ladder reached (the coordinator aside, who closed it) hears it is closed.
            reached = {x.recipient_role for x in state.escalations if x.milestone == event.milestone}
            for role in ("talent", "nearest_leader", "leaders_leader"):
                if role in reached:
                    out.append(_mail("escalation_resolved", role, state))
        case e.SessionAttendanceRecorded(status="absent") if state.rules_version >= 3:
            # Rules 3 (PRODUCT §8.4): an absence from a mandatory session tells the talent and
            # the nearest leader (whether the journey is at risk follows from the criterion).
            if MilestoneKey.session(event.session_key) in {m.key for m in state.milestones}:
                out.append(_mail("absence", "talent", state))
                out.append(_mail("absence_leader", "nearest_leader", state))
        case e.SessionRescheduled() if state.state in ("enrolled", "active", "paused"):
            # PRODUCT §8.5: the participants hear that a session moved (a talent only nominated is
            # not in the programme yet; their welcome comes with the calendar as it then is).
            out.append(_mail("session_rescheduled", "talent", state))
        case e.TrackSubmitted():
            out.append(_mail("track_submitted", "nearest_leader", state))
        case e.TrackReturned():
            out.append(_mail("track_returned", "talent", state))
        case e.NearestLeaderChanged():
            out.append(_mail("welcome_leader", "nearest_leader", state))
            if state.rules_version >= 3 and event.previous_leader_id != event.nearest_leader_id:
                # Rules 3 (PRODUCT §8.4): the talent and the former leader are told too.
                out.append(_mail("leader_changed", "talent", state))
                out.append(
                    Notification(
                        channel="email",
                        template="leader_changed_former",
                        recipient_role="nearest_leader",
                        recipient_id=event.previous_leader_id,
                    )
                )
        case e.ProgrammeCompleted() | e.ProgrammeNotCompleted():
            out.append(_mail("completion", "talent", state))
            out.append(_mail("completion", "nearest_leader", state))
        case e.FollowUpRequested():
            out.append(_mail("follow_up_question", "talent", state))
        case e.EvaluationDeferred():
            out.append(_mail("signoff_awaited", "nearest_leader", state))
        case e.MentorMeetingProposed():
            # Rules 4: both get the appointment (with an iCalendar invitation attached).
            out.append(_mail("mentor_meeting_proposed", "talent", state))
            out.append(_mail("mentor_meeting_proposed", "nearest_leader", state))
        case e.MentorMeetingReminded():
            out.append(_mail("mentor_meeting_reminder", "nearest_leader", state))
        case e.ReadinessAsked():
            # Rules 4 (issue 14): the talent is asked whether they want to lead when a stage opens.
            out.append(_mail("readiness_question", "talent", state))
        case _:
            pass
    # A role nobody holds (no leader's leader, no coordinator on the cohort) gets nothing.
    out = [n for n in out if n.recipient_id is not None]
    at_risk = isinstance(event, e.EscalationRaised) and event.at_risk
    if event.type in WEBHOOK_EVENTS or at_risk:
        out.append(Notification(channel="webhook", template=event.type, recipient_role="hr_system", recipient_id=None))
    return out
