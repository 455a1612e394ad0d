"""Attendance, tracks, mentor meetings, a new nearest leader and rescheduled sessions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.journey import next_wakeup
from tests.support import COORD, LEADER, TALENT
from tests.unit.journeys import (
    KICKOFF_DUE,
    LEADING_OTHERS_DUE,
    MEETING_1_DUE,
    NEW_LEADER,
    OBSERVE_DUE,
    PROGRAMME,
    active,
    advance,
    at,
    attend,
    enrolled,
    history,
    nominated,
    of,
    raised,
)

# -- attendance ----------------------------------------------------------------------------------


def test_attending_a_session_meets_its_milestone() -> None:
    j = active(at(2027, 1, 11, 12))

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), at(2027, 1, 11, 13))

    assert events == [
        e.SessionAttendanceRecorded(session_key="kickoff", status="attended", recorded_by="p-coord"),
        e.MilestoneMet(milestone="session:kickoff", met_at=at(2027, 1, 11, 13), late=False),
    ]
    assert j.s.attendance_of("kickoff") == "attended"
    assert j.s.sessions_counts() == (1, 6)


def test_an_absence_misses_the_session_milestone_for_good() -> None:
    j = active(at(2027, 1, 11, 12))

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), at(2027, 1, 11, 13))

    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMissed"]
    assert of(events, "session:kickoff", "MilestoneMissed")[0].reason == "absent"  # type: ignore[union-attr]
    assert j.s.milestone("session:kickoff").status == "missed"  # type: ignore[union-attr]
    assert of(advance(j, at(2027, 1, 20)), "session:kickoff") == []  # a missed milestone never slips


def test_an_excused_absence_meets_the_milestone_and_lowers_the_sessions_required() -> None:
    j = active(at(2027, 1, 11, 12))

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="excused"), at(2027, 1, 11, 13))

    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMet"]
    assert j.s.sessions_counts() == (0, 5)  # ceil(0.8 x 6)


def test_a_corrected_absence_meets_the_milestone() -> None:
    j = active(at(2027, 1, 11, 12))
    attend(j, at(2027, 1, 11, 13), "kickoff", status="absent")

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), at(2027, 1, 12))

    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMet"]
    assert j.s.milestone("session:kickoff").status == "met"  # type: ignore[union-attr]
    assert j.s.attendance == (("kickoff", "attended"),)


def test_a_corrected_attendance_misses_the_milestone() -> None:
    j = active(at(2027, 1, 11, 12))
    attend(j, at(2027, 1, 11, 13), "kickoff")

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), at(2027, 1, 12))

    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMissed"]
    assert j.s.sessions_counts() == (0, 6)


def test_recording_the_same_attendance_again_records_nothing() -> None:
    j = active(at(2027, 1, 11, 12))
    attend(j, at(2027, 1, 11, 13), "kickoff", status="excused")

    assert j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="excused"), at(2027, 1, 12)) == []


def test_attendance_at_an_optional_session_has_no_milestone() -> None:
    j = active(at(2027, 5, 31, 12))

    events = j.send(c.RecordAttendance(**COORD, session_key="network", status="absent"), at(2027, 5, 31, 13))

    assert j.types(events) == ["SessionAttendanceRecorded"]


def test_attendance_recorded_after_the_slip_is_met_late_and_stops_the_ladder() -> None:
    j = active(at(2027, 1, 19))  # kickoff slipped 13 Jan, rungs 1 and 2 raised

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), at(2027, 1, 19, 11))

    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMet", "EscalationResolved"]
    assert of(events, "session:kickoff", "MilestoneMet")[0].late is True  # type: ignore[union-attr]
    assert of(events, "session:kickoff", "EscalationResolved")[0].resolution == "met"  # type: ignore[union-attr]
    assert raised(advance(j, at(2027, 2, 5)), "session:kickoff") == []


def test_an_absence_recorded_after_the_slip_resolves_the_ladder_as_missed() -> None:
    j = active(at(2027, 1, 19))

    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), at(2027, 1, 19, 11))

    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMissed", "EscalationResolved"]
    assert of(events, "session:kickoff", "EscalationResolved")[0].resolution == "missed"  # type: ignore[union-attr]


def test_attendance_can_be_recorded_before_the_cohort_starts() -> None:
    j = enrolled()
    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="excused"), at(2026, 12, 20))
    assert j.types(events) == ["SessionAttendanceRecorded", "MilestoneMet"]


# -- tracks --------------------------------------------------------------------------------------


def test_a_submitted_track_waits_for_the_leaders_sign_off() -> None:
    j = active(at(2027, 2, 1))

    events = j.send(c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-7"), at(2027, 2, 1, 11))

    assert events == [
        e.TrackSubmitted(track_key="observe-leader", submission=1, reflection_ref="t-7", submitted_by="p-talent")
    ]
    assert j.s.track("observe-leader").status == "submitted"  # type: ignore[union-attr]
    assert j.s.milestone("track:observe-leader").status == "open"  # type: ignore[union-attr]
    assert j.s.tracks_done() == 0


def test_the_leaders_sign_off_meets_the_track_milestone() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 1, 11))

    events = j.send(
        c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve", comment_ref="t-8"), at(2027, 2, 2)
    )

    assert events == [
        e.TrackSignedOff(track_key="observe-leader", signed_off_by="p-leader", comment_ref="t-8"),
        e.MilestoneMet(milestone="track:observe-leader", met_at=at(2027, 2, 2), late=False),
    ]
    assert j.s.track("observe-leader").done_at == at(2027, 2, 2)  # type: ignore[union-attr]
    assert j.s.tracks_done() == 1


def test_a_returned_track_can_be_resubmitted_and_then_signed_off() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 1, 11))

    returned = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="return"), at(2027, 2, 2))
    resubmitted = j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 3))
    signed = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 2, 4))

    assert returned == [e.TrackReturned(track_key="observe-leader", returned_by="p-leader")]
    assert resubmitted[0].submission == 2  # type: ignore[union-attr]
    assert j.types(signed) == ["TrackSignedOff", "MilestoneMet"]
    assert j.s.track("observe-leader").submissions == 2  # type: ignore[union-attr]


def test_a_track_signed_off_late_stops_its_escalation_ladder() -> None:
    j = active(at(2027, 3, 12))  # slipped Mon 8 Mar; rungs 1 (talent) and 2 (nearest leader) raised
    assert [r for r, _, _ in raised(history(j), "track:observe-leader")] == [1, 2]
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 3, 12, 11))

    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 12, 12))

    assert j.types(events) == ["TrackSignedOff", "MilestoneMet", "EscalationResolved"]
    assert of(events, "track:observe-leader", "MilestoneMet")[0].late is True  # type: ignore[union-attr]
    assert raised(advance(j, at(2027, 4, 1)), "track:observe-leader") == []


def test_a_track_without_leader_sign_off_is_done_when_submitted() -> None:
    data = PROGRAMME.model_dump()
    data["tracks"][0]["leader_signoff"] = False
    j = enrolled(PROGRAMME.model_validate(data))
    advance(j, at(2027, 2, 1))

    events = j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 1, 11))

    assert j.types(events) == ["TrackSubmitted", "TrackSignedOff", "MilestoneMet"]
    assert events[1].signed_off_by == "system"  # type: ignore[union-attr]
    assert j.s.tracks_done() == 1


def test_a_coordinator_can_submit_and_sign_off_on_behalf() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.SubmitTrack(**COORD, track_key="lead-meeting"), at(2027, 2, 1, 11))
    events = j.send(c.SignOffTrack(**COORD, track_key="lead-meeting", decision="approve"), at(2027, 2, 1, 12))
    assert j.types(events) == ["TrackSignedOff", "MilestoneMet"]


# -- mentor meetings -----------------------------------------------------------------------------


def test_a_mentor_meeting_meets_the_next_meeting_milestone_and_names_the_leader() -> None:
    j = active(at(2027, 2, 1))

    events = j.send(c.LogMentorMeeting(**TALENT, held_on=date(2027, 1, 29), notes_ref="t-3"), at(2027, 2, 1, 11))

    assert events == [
        e.MentorMeetingLogged(
            number=1,
            held_on=date(2027, 1, 29),
            leader_id="p-leader",
            logged_by="p-talent",
            notes_ref="t-3",
            confirmed=True,  # rules 1: the talent's own log counts
        ),
        e.MilestoneMet(milestone="mentor_meeting:1", met_at=at(2027, 2, 1, 11), late=False),
    ]


def test_mentor_meetings_are_numbered_in_order() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 1, 20)), at(2027, 2, 1, 11))

    events = j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 2, 1)), at(2027, 2, 1, 12))

    assert [ev.number for ev in events if isinstance(ev, e.MentorMeetingLogged)] == [2]
    assert of(events, "mentor_meeting:2", "MilestoneMet") != []
    assert len(j.s.meetings) == 2


def test_a_late_mentor_meeting_stops_its_ladder() -> None:
    j = active(MEETING_1_DUE + timedelta(days=1))
    assert j.s.milestone("mentor_meeting:1").ladder_running  # type: ignore[union-attr]

    events = j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 3, 3)), at(2027, 3, 3, 11))

    assert j.types(events) == ["MentorMeetingLogged", "MilestoneMet", "EscalationResolved"]


def test_a_meeting_beyond_the_plan_is_logged_without_a_milestone() -> None:
    j = active(at(2027, 2, 1))
    for n in range(5):
        j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 1, 11) + timedelta(days=n)), at(2027, 2, 1, 11))

    events = j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 1, 30)), at(2027, 2, 1, 12))

    assert j.types(events) == ["MentorMeetingLogged"]
    assert len(j.s.meetings) == 6


# -- a new nearest leader ------------------------------------------------------------------------


def test_a_new_nearest_leader_takes_over_sign_offs_and_the_old_one_cannot() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 1, 11))

    events = j.send(
        c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2", leaders_leader_id="p-boss-2"), at(2027, 2, 2)
    )

    assert events == [
        e.NearestLeaderChanged(
            previous_leader_id="p-leader",
            nearest_leader_id="p-leader-2",
            leaders_leader_id="p-boss-2",
            changed_by="p-coord",
        )
    ]
    assert j.s.leader_history == ("p-leader", "p-leader-2")
    with pytest.raises(DomainError) as info:
        j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 2, 3))
    assert info.value.code == "not_allowed"
    signed = j.send(c.SignOffTrack(**NEW_LEADER, track_key="observe-leader", decision="approve"), at(2027, 2, 3))
    assert signed[0] == e.TrackSignedOff(track_key="observe-leader", signed_off_by="p-leader-2")


def test_meetings_after_a_leader_change_are_held_with_the_new_leader() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2"), at(2027, 2, 2))

    events = j.send(c.LogMentorMeeting(**NEW_LEADER, held_on=date(2027, 2, 2)), at(2027, 2, 2, 11))

    assert events[0].leader_id == "p-leader-2"  # type: ignore[union-attr]
    assert j.s.leaders_leader_id is None


def test_pending_escalation_rungs_go_to_the_new_leaders() -> None:
    j = active(OBSERVE_DUE + timedelta(hours=1))  # rung 1 (talent) raised on 8 Mar
    j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2", leaders_leader_id="p-boss-2"), at(2027, 3, 9))

    events = advance(j, at(2027, 3, 17))

    recipients = [
        (ev.rung, ev.recipient_id)
        for ev in of(events, "track:observe-leader", "EscalationRaised")
        if isinstance(ev, e.EscalationRaised)
    ]
    assert recipients == [(2, "p-leader-2"), (3, "p-boss-2")]


def test_a_leader_who_returns_keeps_one_place_in_the_history() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2"), at(2027, 2, 2))
    j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader"), at(2027, 2, 3))
    assert j.s.leader_history == ("p-leader", "p-leader-2")
    assert j.s.nearest_leader_id == "p-leader"


def test_the_leader_of_a_nomination_can_change_before_the_decision() -> None:
    j = nominated()
    events = j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2"), at(2026, 12, 2))
    assert j.types(events) == ["NearestLeaderChanged"]


# -- rescheduled sessions ------------------------------------------------------------------------


def test_a_rescheduled_session_moves_its_attendance_deadline() -> None:
    j = active(at(2027, 3, 30))
    new_start = at(2027, 4, 12, 9)

    events = j.send(
        c.RescheduleSession(**COORD, session_key="leading-others", starts_at=new_start), at(2027, 3, 30, 11)
    )

    assert events == [
        e.SessionRescheduled(
            session_key="leading-others",
            starts_at=new_start,
            previous_starts_at=at(2027, 4, 5, 9),
            milestone_due_at=at(2027, 4, 14, 16),
        )
    ]
    assert j.s.milestone("session:leading-others").due_at == at(2027, 4, 14, 16)  # type: ignore[union-attr]
    assert next(x for x in j.s.cohort.sessions if x.key == "leading-others").starts_at == new_start
    assert of(advance(j, LEADING_OTHERS_DUE + timedelta(hours=1)), "session:leading-others") == []


def test_a_session_rescheduled_into_the_future_after_it_slipped_resolves_its_ladder() -> None:
    j = active(at(2027, 1, 19))  # kickoff slipped on 13 Jan
    new_start = at(2027, 1, 25, 9)

    events = j.send(c.RescheduleSession(**COORD, session_key="kickoff", starts_at=new_start), at(2027, 1, 19, 11))

    assert j.types(events) == ["EscalationResolved", "SessionRescheduled"]
    assert events[0].resolution == "rescheduled"  # type: ignore[union-attr]
    m = j.s.milestone("session:kickoff")
    assert m is not None
    assert (m.status, m.due_at, m.ladder, m.raised) == ("open", at(2027, 1, 27, 16), (), ())
    # The old ladder's rungs 3 and 4 (21 and 27 Jan) never fire; the new deadline slips on its own.
    later = advance(j, at(2027, 1, 27, 17))
    assert j.types(later) == ["MilestoneSlipped", "EscalationRaised"]
    assert later[0].slipped_at == at(2027, 1, 27, 16)  # type: ignore[union-attr]


def test_a_slipped_session_rescheduled_into_the_past_keeps_its_ladder_running() -> None:
    j = active(at(2027, 1, 19))

    events = j.send(
        c.RescheduleSession(**COORD, session_key="kickoff", starts_at=at(2027, 1, 12, 9)), at(2027, 1, 19, 11)
    )

    assert j.types(events) == ["SessionRescheduled"]
    assert events[0].milestone_due_at is None  # type: ignore[union-attr]
    assert j.s.milestone("session:kickoff").ladder_running  # type: ignore[union-attr]
    assert [r for r, _, _ in raised(advance(j, at(2027, 1, 28)), "session:kickoff")] == [3, 4]


def test_rescheduling_an_attended_session_leaves_its_milestone_met() -> None:
    j = active(at(2027, 1, 11, 12))
    attend(j, at(2027, 1, 11, 13), "kickoff")

    events = j.send(
        c.RescheduleSession(**COORD, session_key="kickoff", starts_at=at(2027, 1, 12, 9)), at(2027, 1, 11, 14)
    )

    assert events[0].milestone_due_at is None  # type: ignore[union-attr]
    assert j.s.milestone("session:kickoff").status == "met"  # type: ignore[union-attr]


def test_an_open_session_rescheduled_into_the_past_slips_at_once() -> None:
    j = active(at(2027, 3, 30))

    events = j.send(
        c.RescheduleSession(**COORD, session_key="leading-others", starts_at=at(2027, 3, 22, 9)), at(2027, 3, 30, 11)
    )

    assert j.types(events)[:2] == ["SessionRescheduled", "MilestoneSlipped"]
    assert events[1].due_at == at(2027, 3, 24, 16)  # type: ignore[union-attr]


def test_a_session_rescheduled_before_approval_moves_the_plan_made_at_enrolment() -> None:
    j = nominated()
    j.send(c.RescheduleSession(**COORD, session_key="kickoff", starts_at=at(2027, 1, 12, 9)), at(2026, 12, 1, 11))

    enrolment = j.send(c.DecideNomination(**COORD, decision="approve"), at(2026, 12, 2))[-1]

    assert isinstance(enrolment, e.TalentEnrolled)
    plan = {m.key: m.due_at for m in enrolment.milestones}
    assert plan["session:kickoff"] == KICKOFF_DUE + timedelta(days=1)


def test_the_next_wakeup_follows_the_earliest_open_deadline() -> None:
    j = active(at(2027, 1, 11, 12))
    assert next_wakeup(j.s) == KICKOFF_DUE
    attend(j, at(2027, 1, 11, 13), "kickoff")
    assert next_wakeup(j.s) == at(2027, 2, 10, 16)  # leading-self, 8 Feb + 2
