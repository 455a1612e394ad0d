"""The talent's work: tracks submitted and signed off, mentor meetings logged and confirmed."""

from __future__ import annotations

from domain import commands as c
from domain import events as e
from domain.errors import InvalidCommand, InvalidState, NotFound
from domain.journey.course import evaluate_if_nothing_awaited, evaluation_pending
from domain.journey.decision import Decision, leader_side, require_running, require_sender, resolve
from domain.journey.state import JourneyState, MeetingRecord, TrackState
from domain.values import MilestoneKey


def _known_track(s: JourneyState, key: str) -> None:
    if key not in {t.key for t in s.programme.tracks}:
        raise InvalidCommand("unknown_track", f"the programme has no track {key!r}")


def _require_not_ended(s: JourneyState, action: str) -> None:
    """Rules 3: once the programme has ended and only awaited sign-offs are waited for, nothing
    else is recorded (the evaluation counts the sign-offs of the window, nothing more)."""
    if evaluation_pending(s):
        raise InvalidState(
            f"cannot {action} a journey whose evaluation waits only for sign-offs", code="evaluation_pending"
        )


def _track_state(s: JourneyState, key: str) -> TrackState:
    track = s.track(key)
    if track is None:  # pragma: no cover - tracks exist from enrolment, which RUNNING_STATES imply
        raise InvalidState("the journey has no tracks before enrolment")
    return track


def submit_track(d: Decision, cmd: c.SubmitTrack) -> None:
    """The talent submits a track's reflection; a track needing no sign-off is done at once."""
    s = d.s
    require_sender(s, cmd, "only the talent can submit a track")
    _known_track(s, cmd.track_key)
    require_running(s, "submit a track on")
    _require_not_ended(s, "submit a track on")
    track = _track_state(s, cmd.track_key)
    if track.status in ("submitted", "signed_off"):
        raise InvalidState(f"track {cmd.track_key!r} is already {track.status}", code="already_submitted")
    d.emit(
        e.TrackSubmitted(
            track_key=cmd.track_key,
            submission=track.submissions + 1,
            reflection_ref=cmd.reflection_ref,
            submitted_by=cmd.actor_id,
        )
    )
    definition = next(t for t in s.programme.tracks if t.key == cmd.track_key)
    if not definition.leader_signoff:
        d.emit(e.TrackSignedOff(track_key=cmd.track_key, signed_off_by="system", comment_ref=None))
        resolve(d, MilestoneKey.track(cmd.track_key), "met")


def sign_off(d: Decision, cmd: c.SignOffTrack) -> None:
    """The nearest leader approves a submitted track (it is done) or returns it."""
    s = d.s
    require_sender(s, cmd, "only the talent's nearest leader can sign off a track")
    _known_track(s, cmd.track_key)
    require_running(s, "sign off a track on")
    track = _track_state(s, cmd.track_key)
    if track.status != "submitted":
        code = "already_signed_off" if track.status == "signed_off" else "not_submitted"
        raise InvalidState(f"track {cmd.track_key!r} is {track.status}, not submitted", code=code)
    if cmd.decision == "return":
        d.emit(e.TrackReturned(track_key=cmd.track_key, returned_by=cmd.actor_id, comment_ref=cmd.comment_ref))
    else:
        d.emit(e.TrackSignedOff(track_key=cmd.track_key, signed_off_by=cmd.actor_id, comment_ref=cmd.comment_ref))
        resolve(d, MilestoneKey.track(cmd.track_key), "met")
    # Rules 3: the evaluation waited for this sign-off (a late one counts); the last one ends the wait.
    evaluate_if_nothing_awaited(d)


def log_meeting(d: Decision, cmd: c.LogMentorMeeting) -> None:
    """Rules 1: any past date; every meeting logged counts; a logged date again is refused."""
    s = d.s
    require_sender(s, cmd, "only the talent or their nearest leader can log a mentor meeting")
    require_running(s, "log a mentor meeting on")
    if cmd.held_on > s.calendar.local(d.now).date():
        raise InvalidCommand("invalid_date", "a mentor meeting cannot be logged before it is held")
    # A meeting is known by its date, so logging it twice (talent and leader) counts it once; a
    # programme compressed into minutes (cadence under a day) holds several meetings a day.
    by_date = s.programme.mentor_meetings.cadence.nominal_days() >= 1
    if by_date and any(m.held_on == cmd.held_on for m in s.meetings):
        raise InvalidState(f"a mentor meeting on {cmd.held_on} is already logged", code="already_logged")
    number = len(s.meetings) + 1
    d.emit(
        e.MentorMeetingLogged(
            number=number,
            held_on=cmd.held_on,
            leader_id=s.nearest_leader_id,
            logged_by=cmd.actor_id,
            notes_ref=cmd.notes_ref,
            confirmed=True,
        )
    )
    key = MilestoneKey.mentor_meeting(number)
    m = d.s.milestone(key)
    if m is not None and m.status in ("open", "slipped"):
        resolve(d, key, "met")


def log_meeting_confirmed(d: Decision, cmd: c.LogMentorMeeting) -> None:
    """Rules 2 (PRODUCT §8.4): dated between enrolment and today; the talent's log counts once
    the nearest leader confirms it, and the leader logging the same date confirms it; logging a
    date already logged changes nothing."""
    s = d.s
    require_sender(s, cmd, "only the talent or their nearest leader can log a mentor meeting")
    by_leader = leader_side(s, cmd)
    require_running(s, "log a mentor meeting on")
    _require_not_ended(s, "log a mentor meeting on")
    today = s.calendar.local(d.now).date()
    if cmd.held_on > today:
        raise InvalidCommand("invalid_date", "a mentor meeting cannot be logged before it is held")
    enrolled = s.calendar.local(s.enrolled_at or s.nominated_at).date()
    if cmd.held_on < enrolled:
        raise InvalidCommand("invalid_date", "a mentor meeting cannot be dated before the talent's enrolment")
    pending = next((m for m in s.meetings if m.held_on == cmd.held_on and not m.confirmed), None)
    if by_leader and pending is not None:
        _count_meeting(d, pending, cmd.actor_id)
        return
    # A meeting is known by its date (see _log_meeting): the same date again, by the same side or
    # by the talent after the leader, is the meeting already logged. A programme compressed into
    # minutes holds several meetings a day, so there each log is a meeting of its own.
    by_date = s.programme.mentor_meetings.cadence.nominal_days() >= 1
    if by_date and any(m.held_on == cmd.held_on for m in s.meetings):
        return
    d.emit(
        e.MentorMeetingLogged(
            number=len(s.meetings) + 1,
            held_on=cmd.held_on,
            leader_id=s.nearest_leader_id,
            logged_by=cmd.actor_id,
            notes_ref=cmd.notes_ref,
            confirmed=by_leader,
        )
    )
    if by_leader:
        _meet_meeting_milestone(d)


def confirm_meeting(d: Decision, cmd: c.ConfirmMentorMeeting) -> None:
    """The nearest leader confirms a meeting the talent logged; a confirmed one again changes nothing."""
    s = d.s
    require_sender(s, cmd, "only the talent's nearest leader can confirm a mentor meeting")
    require_running(s, "confirm a mentor meeting on")
    _require_not_ended(s, "confirm a mentor meeting on")
    logged = [m for m in s.meetings if m.held_on == cmd.held_on]
    if not logged:
        raise NotFound("unknown_meeting", f"no mentor meeting on {cmd.held_on} is logged")
    pending = next((m for m in logged if not m.confirmed), None)
    if pending is not None:
        _count_meeting(d, pending, cmd.actor_id)


def _count_meeting(d: Decision, meeting: MeetingRecord, confirmed_by: str) -> None:
    d.emit(e.MentorMeetingConfirmed(number=meeting.number, held_on=meeting.held_on, confirmed_by=confirmed_by))
    _meet_meeting_milestone(d)


def _meet_meeting_milestone(d: Decision) -> None:
    """A meeting just started to count: the milestone of its number (among those that count) is met."""
    key = MilestoneKey.mentor_meeting(d.s.meetings_held())
    m = d.s.milestone(key)
    if m is not None and m.status in ("open", "slipped"):
        resolve(d, key, "met")
