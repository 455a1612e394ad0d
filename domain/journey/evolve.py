"""`evolve`: a journey's state plus one event is its next state; `fold` for many."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from domain import events as e
from domain.journey.state import (
    AppointmentRecord,
    DebriefRecord,
    EscalationRecord,
    FollowUpState,
    JourneyState,
    MeetingRecord,
    MilestoneState,
    OutcomeRecord,
    ReadinessRecord,
    TrackState,
)
from domain.programme import Programme
from domain.values import MilestoneKey

_M = TypeVar("_M", bound=BaseModel)


def _evolved(model: _M, changes: dict[str, Any]) -> _M:
    """`model.model_copy(update=changes)` without its generic copying machinery.

    Folding is the hot path of every append and rebuild; pydantic's `model_copy` costs twice as
    much. Like `model_copy`, it does not validate: the values come from validated events. The
    attributes set are those `model_construct` sets (pinned pydantic; a unit test compares).
    """
    new = model.__class__.__new__(model.__class__)
    values = model.__dict__.copy()
    values.update(changes)
    object.__setattr__(new, "__dict__", values)
    object.__setattr__(new, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", None)
    return new


def _replace_milestone(state: JourneyState, key: str, **changes: Any) -> tuple[MilestoneState, ...]:
    return tuple(_evolved(m, changes) if m.key == key else m for m in state.milestones)


def _replace_track(state: JourneyState, key: str, **changes: Any) -> tuple[TrackState, ...]:
    return tuple(_evolved(t, changes) if t.key == key else t for t in state.tracks)


def _nominated(event: e.TalentNominated) -> JourneyState:
    approval = MilestoneState(
        key=MilestoneKey.approval(),
        kind="approval",
        ref="nomination",
        due_at=event.approval_due,
        clock=event.approval_clock,
    )
    return JourneyState(
        journey_id=event.journey_id,
        version=1,
        state="nominated",
        talent_id=event.talent_id,
        nearest_leader_id=event.nearest_leader_id,
        leaders_leader_id=event.leaders_leader_id,
        leader_history=(event.nearest_leader_id,),
        programme=event.programme,
        cohort=event.cohort,
        external_ref=event.external_ref,
        external_ref_ref=event.external_ref_ref,
        rules_version=event.rules_version,
        nominated_at=event.nominated_at,
        approval_due=event.approval_due,
        milestones=(approval,),
    )


def evolve(state: JourneyState | None, event: e.Event) -> JourneyState:
    """Fold one event into the state. Total: it never raises for an event `decide` produced."""
    if state is None:
        if isinstance(event, e.TalentNominated):
            return _nominated(event)
        raise ValueError(f"a journey starts with TalentNominated, not {event.type}")
    changes = _apply(state, event)
    changes["version"] = state.version + 1
    return _evolved(state, changes)


def _apply(s: JourneyState, ev: e.Event) -> dict[str, Any]:
    match ev:
        case e.TalentNominated():
            return {}
        case e.NominationApproved():
            return {"enrolled_at": ev.decided_at}
        case e.NominationRejected():
            return {"state": "rejected"}
        case e.NominationExpired():
            return {"state": "rejected", "expired_at": ev.expired_at}
        case e.TalentEnrolled():
            planned = tuple(
                MilestoneState(key=p.key, kind=p.kind, ref=p.ref, due_at=p.due_at, clock=p.clock) for p in ev.milestones
            )
            return {
                "state": "enrolled",
                "starts_at": ev.starts_at,
                "evaluate_at": ev.evaluate_at,
                "evaluate_clock": ev.evaluate_clock,
                "milestones": s.milestones + planned,
                "tracks": tuple(TrackState(key=t.key) for t in s.programme.tracks),
            }
        case e.JourneyStarted():
            return {"state": "active"}
        case e.SessionAttendanceRecorded():
            others = tuple((k, v) for k, v in s.attendance if k != ev.session_key)
            return {"attendance": (*others, (ev.session_key, ev.status))}
        case e.CohortDetailsChanged():
            placed = tuple(
                _evolved(x, {"location": ev.locations[x.key]}) if x.key in ev.locations else x
                for x in s.cohort.sessions
            )
            cohort_update: dict[str, Any] = {"sessions": placed}
            if ev.coordinator_id is not None:
                cohort_update["coordinator_id"] = ev.coordinator_id
            return {"cohort": _evolved(s.cohort, cohort_update)}
        case e.SessionRescheduled():
            sessions = tuple(
                _evolved(x, {"starts_at": ev.starts_at}) if x.key == ev.session_key else x for x in s.cohort.sessions
            )
            update: dict[str, Any] = {"cohort": _evolved(s.cohort, {"sessions": sessions})}
            key = MilestoneKey.session(ev.session_key)
            m = s.milestone(key)
            if ev.milestone_due_at is not None and m is not None:
                update["milestones"] = _replace_milestone(
                    s,
                    key,
                    due_at=ev.milestone_due_at,
                    status="open",
                    slipped_at=None,
                    ladder=(),
                    raised=(),
                    resolved_at=None,
                    acknowledged_at=None,
                    acknowledged_by=None,
                )
            return update
        case e.TrackSubmitted():
            return {"tracks": _replace_track(s, ev.track_key, status="submitted", submissions=ev.submission)}
        case e.TrackSignedOff():
            return {"tracks": _replace_track(s, ev.track_key, status="signed_off")}
        case e.TrackReturned():
            return {"tracks": _replace_track(s, ev.track_key, status="returned")}
        case e.MentorMeetingLogged():
            meeting = MeetingRecord(
                number=ev.number,
                held_on=ev.held_on,
                leader_id=ev.leader_id,
                notes_ref=ev.notes_ref,
                confirmed=ev.confirmed,
            )
            update = {"meetings": (*s.meetings, meeting)}
            if s.appointment is not None and s.calendar.local(s.appointment.starts_at).date() == ev.held_on:
                update["appointment"] = None  # rules 4: the proposed meeting was held
            return update
        case e.MentorMeetingConfirmed():
            return {
                "meetings": tuple(_evolved(m, {"confirmed": True}) if m.number == ev.number else m for m in s.meetings)
            }
        case e.MilestoneMet():
            m = s.milestone(ev.milestone)
            update = {"milestones": _replace_milestone(s, ev.milestone, status="met", met_at=ev.met_at)}
            if m is not None and m.kind == "track":
                update["tracks"] = _replace_track(s, m.ref, done_at=ev.met_at)
            return update
        case e.MilestoneMissed():
            return {"milestones": _replace_milestone(s, ev.milestone, status="missed")}
        case e.MilestoneWaived():
            return {"milestones": _replace_milestone(s, ev.milestone, status="waived")}
        case e.MilestoneSlipped():
            return {
                "milestones": _replace_milestone(
                    s, ev.milestone, status="slipped", slipped_at=ev.slipped_at, ladder=ev.ladder
                )
            }
        case e.EscalationRaised():
            m = s.milestone(ev.milestone)
            raised = (*(m.raised if m else ()), ev.rung)
            record = EscalationRecord(
                milestone=ev.milestone,
                rung=ev.rung,
                recipient_role=ev.recipient_role,
                recipient_id=ev.recipient_id,
                raised_at=ev.raised_at,
                at_risk=ev.at_risk,
            )
            return {
                "milestones": _replace_milestone(s, ev.milestone, raised=raised),
                "escalations": (*s.escalations, record),
            }
        case e.EscalationAcknowledged():
            acknowledged = {"acknowledged_at": ev.acknowledged_at, "acknowledged_by": ev.acknowledged_by}
            escalations = tuple(
                _evolved(x, acknowledged) if x.milestone == ev.milestone and x.resolved_at is None else x
                for x in s.escalations
            )
            return {
                "milestones": _replace_milestone(s, ev.milestone, **acknowledged),
                "escalations": escalations,
            }
        case e.EscalationResolved():
            escalations = tuple(
                _evolved(x, {"resolved_at": ev.resolved_at})
                if x.milestone == ev.milestone and x.resolved_at is None
                else x
                for x in s.escalations
            )
            return {
                "milestones": _replace_milestone(s, ev.milestone, resolved_at=ev.resolved_at),
                "escalations": escalations,
            }
        case e.JourneyPaused():
            return {"state": "paused", "paused_at": ev.paused_at, "paused_from": ev.previous_state}
        case e.JourneyResumed():
            shifts = {x.milestone: x for x in ev.shifts}
            milestones = tuple(
                _evolved(m, {"due_at": shifts[m.key].due_at, "ladder": shifts[m.key].ladder}) if m.key in shifts else m
                for m in s.milestones
            )
            update = {
                "state": ev.resumed_state,
                "paused_at": None,
                "paused_from": None,
                "milestones": milestones,
            }
            if ev.evaluate_at is not None:
                update["evaluate_at"] = ev.evaluate_at
            if ev.approval_due is not None:
                update["approval_due"] = ev.approval_due
            return update
        case e.NearestLeaderChanged():
            history = s.leader_history
            if ev.nearest_leader_id not in history:
                history = (*history, ev.nearest_leader_id)
            return {
                "nearest_leader_id": ev.nearest_leader_id,
                "leaders_leader_id": ev.leaders_leader_id,
                "leader_history": history,
            }
        case e.TalentWithdrawn():
            return {"state": "withdrawn", "paused_at": None, "paused_from": None}
        case e.ProgrammeCompleted() | e.ProgrammeNotCompleted():
            outcome: Literal["completed", "not_completed"] = (
                "completed" if isinstance(ev, e.ProgrammeCompleted) else "not_completed"
            )
            reasons = ev.reasons if isinstance(ev, e.ProgrammeNotCompleted) else ()
            follow_ups = s.follow_ups or _plan_follow_ups(s.programme, ev.follow_ups)
            state = s.state if s.state == "following_up" else outcome
            return {
                "state": state,
                "completion": outcome,
                "completion_reasons": reasons,
                "completion_override": ev.override,
                "evaluated_at": s.evaluated_at or ev.evaluated_at,
                "follow_ups": follow_ups,
            }
        case e.EvaluationDeferred():
            return {"evaluate_at": ev.due_at, "awaiting_signoff": ev.awaiting, "evaluation_deferred_at": ev.ended_at}
        case e.FollowUpRequested():
            follow_ups = tuple(
                _evolved(f, {"requested_at": ev.requested_at, "respond_by": ev.respond_by})
                if f.point == ev.point
                else f
                for f in s.follow_ups
            )
            return {"state": "following_up", "follow_ups": follow_ups}
        case e.OutcomeRecorded():
            outcome_record = OutcomeRecord(
                applied_for_leader_post=ev.applied_for_leader_post,
                appointed=ev.appointed,
                on=ev.on,
                months=ev.months,
                recorded_by=ev.recorded_by,
            )
            return {"outcomes": (*s.outcomes, outcome_record)}
        case e.JourneyClosed():
            return {"state": "closed", "closed_at": ev.closed_at}
        case e.PersonalDataErased():
            return {"erased": (*s.erased, ev.person_id)}
        case e.ReadinessAsked():
            return {"readiness_stage": ev.stage, "readiness_respond_by": ev.respond_by}
        case e.ReadinessAssessed():
            before = s.readiness_at(ev.stage)
            answered = ReadinessRecord(
                stage=ev.stage,
                answer=ev.answer,
                reason_ref=ev.reason_ref,
                changes=0 if before is None else before.changes + 1,
            )
            return {"readiness": (*(r for r in s.readiness if r.stage != ev.stage), answered)}
        case e.LabDebriefed():
            debrief = DebriefRecord(session_key=ev.session_key, clarity=ev.clarity, notes_ref=ev.notes_ref)
            kept = tuple(x for x in s.debriefs if x.session_key != ev.session_key)
            return {"debriefs": (*kept, debrief)}
        case e.MentorMeetingProposed():
            appointment = AppointmentRecord(
                number=ev.number,
                starts_at=ev.due_at,
                ends_at=ev.ends_at,
                remind_at=ev.remind_at,
                proposals=ev.proposal,
            )
            return {"appointment": appointment}
        case e.MentorMeetingReminded():
            if s.appointment is None:  # pragma: no cover - a reminder follows its proposal
                return {}
            return {"appointment": _evolved(s.appointment, {"reminded": True})}
        case e.ClarityConcluded():
            return {
                "readiness_stage": None,
                "readiness_respond_by": None,
                "clarity_concluded_at": ev.concluded_at,
                "clarified": ev.clarified,
            }
    raise ValueError(f"unknown event {ev!r}")  # pragma: no cover - the union is exhaustive


def _plan_follow_ups(programme: Programme, dues: Sequence[datetime]) -> tuple[FollowUpState, ...]:
    fu = programme.follow_up
    labels: Sequence[int | None] = fu.months if fu.after is None else [None] * len(fu.after)
    return tuple(
        FollowUpState(point=i + 1, months=label, due_at=due)
        for i, (label, due) in enumerate(zip(labels, dues, strict=True))
    )


def fold(events: Iterable[e.Event], state: JourneyState | None = None) -> JourneyState | None:
    """Fold a sequence of events, from `state` (None: from nothing)."""
    for event in events:
        state = evolve(state, event)
    return state
