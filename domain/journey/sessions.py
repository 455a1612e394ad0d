"""Sessions: attendance and rescheduling."""

from __future__ import annotations

from datetime import datetime

from domain import commands as c
from domain import events as e
from domain.errors import InvalidCommand, InvalidState
from domain.journey.decision import Decision, require_role, require_running, require_state, resolve
from domain.journey.state import JourneyState, MilestoneState
from domain.policy import IN_PROGRAMME_STATES
from domain.values import MilestoneKey


def _session_milestone(s: JourneyState, session_key: str) -> MilestoneState | None:
    return s.milestone(MilestoneKey.session(session_key))


def _known_session(s: JourneyState, key: str) -> None:
    if key not in {x.key for x in s.programme.sessions}:
        raise InvalidCommand("unknown_session", f"the programme has no session {key!r}")


def record_attendance(d: Decision, cmd: c.RecordAttendance) -> None:
    """A coordinator records a talent's attendance at a session; absent misses its milestone."""
    require_role(cmd, "record attendance on")
    _known_session(d.s, cmd.session_key)
    require_running(d.s, "record attendance on")
    if d.s.rules_version >= 3 and cmd.status != "excused":
        _require_started(d, cmd.session_key, cmd.status)
    if d.s.attendance_of(cmd.session_key) == cmd.status:
        return
    d.emit(e.SessionAttendanceRecorded(session_key=cmd.session_key, status=cmd.status, recorded_by=cmd.actor_id))
    m = _session_milestone(d.s, cmd.session_key)
    if m is None:
        return
    if m.status == "waived":
        # Held before the talent's enrolment: what is recorded counts (sessions_counts), the
        # milestone neither slips nor is missed.
        return
    if cmd.status == "absent":
        if m.status != "missed":
            resolve(d, m.key, "missed")
    elif m.status != "met":
        resolve(d, m.key, "met")


def _require_started(d: Decision, session_key: str, status: str) -> None:
    """Rules 3: attendance (or absence) is known once the session has started; excused may come ahead."""
    scheduled = next((x for x in d.s.cohort.sessions if x.key == session_key), None)
    if scheduled is not None and d.now < scheduled.starts_at:
        raise InvalidState(
            f"{status} cannot be recorded before the session starts ({scheduled.starts_at.isoformat()})",
            code="session_not_started",
        )


def change_cohort_details(d: Decision, cmd: c.ChangeCohortDetails) -> None:
    """The cohort's coordinator or places changed: recorded once, only what differs."""
    require_role(cmd, "change the cohort of")
    s = d.s
    require_state(s, IN_PROGRAMME_STATES, "change the cohort of")
    known = {x.key: x.location for x in s.cohort.sessions}
    unknown = set(cmd.locations) - set(known)
    if unknown:
        raise InvalidCommand("unknown_session", f"the cohort has no session {sorted(unknown)[0]!r}")
    places = {k: v for k, v in cmd.locations.items() if known[k] != v}
    coordinator = cmd.coordinator_id if cmd.coordinator_id not in (None, s.cohort.coordinator_id) else None
    if coordinator is None and not places:
        return
    d.emit(e.CohortDetailsChanged(coordinator_id=coordinator, locations=places))


def reschedule(d: Decision, cmd: c.RescheduleSession) -> None:
    """A session moves for the cohort: its attendance milestone moves with it unless its slip stands."""
    require_role(cmd, "reschedule a session of")
    s = d.s
    _known_session(s, cmd.session_key)
    require_state(s, IN_PROGRAMME_STATES, "reschedule a session of")
    current = next((x for x in s.cohort.sessions if x.key == cmd.session_key), None)
    if current is None:
        raise InvalidCommand("unknown_session", f"the cohort has no session {cmd.session_key!r}")
    if current.starts_at == cmd.starts_at:
        return
    m = _session_milestone(s, cmd.session_key)
    new_due: datetime | None = None
    if m is not None and m.status in ("open", "slipped"):
        new_due = s.calendar.add(cmd.starts_at, s.programme.attendance_grace)
        if m.status == "slipped" and new_due <= d.now:
            new_due = None  # moved into the past: the slip stands and its ladder runs on
    if m is not None and m.ladder_running and new_due is not None:
        d.emit(e.EscalationResolved(milestone=m.key, resolved_at=d.now, resolution="rescheduled"))
    d.emit(
        e.SessionRescheduled(
            session_key=cmd.session_key,
            starts_at=cmd.starts_at,
            previous_starts_at=current.starts_at,
            milestone_due_at=new_due,
        )
    )
