"""Rules 3, time (PRODUCT §8.4, issue 11 points 1, 2, 3, 7, 13a, 13b): a pause stops the clock, not the
people; resuming moves the journey's own deadlines, never a cohort session; deadlines are inclusive;
the municipal calendar and its closures; weekend pauses; follow-ups on working days."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain import events as e
from domain.calendar import Delay, get_calendar
from domain.errors import DomainError, ProgrammeInvalid
from domain.journey import JourneyState, next_wakeup
from domain.journey.planning import follow_up_dues
from domain.kpis import facts_from_events
from domain.programme import CalendarDef, Programme, parse_programme, programme_json
from domain.status import status_of
from tests.support import COORD, LEADER, SYSTEM, TALENT, Journey, nominate, reference_cohort, reference_programme
from tests.unit.journeys import (
    EVALUATE_AT,
    LEAD_MEETING_DUE,
    LEADING_OTHERS_DUE,
    OBSERVE_DUE,
    PROGRAMME,
    active,
    at,
    attend,
    enrolled,
    history,
    nominated,
)

V3: dict[str, Any] = {"rules_version": 3}
V1: dict[str, Any] = {}
PROPERTIES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
#: Counted by hand below, not by domain.calendar: the `holidays` package's Danish public holidays.
DK_PUBLIC = holidays.country_holidays("DK", categories=("public",), years=range(2026, 2031))
SESSION_KINDS = ("session",)


def dk_working(day: date) -> bool:
    """Monday to Friday and not a Danish public holiday."""
    return day.weekday() < 5 and day not in DK_PUBLIC


def plus_working_days(at_: datetime, n: int) -> datetime:
    """`at_` moved n plain-dk working days forward, same wall-clock time (counted by hand)."""
    day = at_.date()
    while n > 0:
        day += timedelta(days=1)
        n -= dk_working(day)
    return at_.replace(year=day.year, month=day.month, day=day.day)


def refused(j: Journey, command: c.Command, now: datetime) -> DomainError:
    """Send a command that must be refused; the journey must be exactly as before."""
    before, count = j.s, len(j.history)
    with pytest.raises(DomainError) as caught:
        j.send(command, now)
    assert (j.s, len(j.history)) == (before, count)
    return caught.value


def milestone_dues(s: JourneyState) -> dict[str, datetime]:
    return {m.key: m.due_at for m in s.milestones}


def excused_by_system(events: list[e.Event]) -> list[str]:
    return [
        ev.session_key
        for ev in events
        if isinstance(ev, e.SessionAttendanceRecorded) and ev.status == "excused" and ev.recorded_by == "system"
    ]


# -- (1) a pause stops the clock, not the people ---------------------------------------------------


def test_rules3_attendance_a_submission_a_sign_off_and_a_meeting_are_recorded_while_paused() -> None:
    j = active(at(2027, 1, 11, 12), **V3)
    attend(j, at(2027, 1, 11, 12), "kickoff")
    j.send(c.PauseJourney(**COORD, reason_ref="t-leave"), at(2027, 2, 1, 10))

    recorded = [
        *j.send(c.RecordAttendance(**COORD, session_key="leading-self", status="attended"), at(2027, 2, 8, 12)),
        *j.send(c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r"), at(2027, 2, 9, 10)),
        *j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 2, 10, 10)),
        *j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 2, 10)), at(2027, 2, 10, 11)),
    ]

    assert [ev.type for ev in recorded if ev.type != "MilestoneMet"] == [
        "SessionAttendanceRecorded",
        "TrackSubmitted",
        "TrackSignedOff",
        "MentorMeetingLogged",
    ]
    met = {ev.milestone: ev.late for ev in recorded if isinstance(ev, e.MilestoneMet)}
    assert met == {"session:leading-self": False, "track:observe-leader": False, "mentor_meeting:1": False}
    assert j.s.state == "paused"
    assert (j.s.attendance_of("leading-self"), j.s.tracks_done(), j.s.meetings_held()) == ("attended", 1, 1)


def test_rules3_work_done_while_paused_after_its_old_deadline_is_on_time_because_the_clock_stood_still() -> None:
    j = active(at(2027, 1, 11, 12), **V3)
    j.send(c.PauseJourney(**COORD), at(2027, 3, 1, 10))  # observe-leader is due 8 March, 16:00
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r"), at(2027, 3, 10, 10))
    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 10, 11))

    assert [(ev.milestone, ev.late) for ev in events if isinstance(ev, e.MilestoneMet)] == [
        ("track:observe-leader", False)
    ]


def test_rules3_what_had_slipped_before_the_pause_is_late_when_met_during_it() -> None:
    j = active(at(2027, 1, 11, 12), **V3)
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r"), at(2027, 3, 1, 10))
    j.send(c.PauseJourney(**COORD), at(2027, 3, 9, 10))  # after the 8 March deadline: slipped
    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 10, 10))

    assert [(ev.milestone, ev.late) for ev in events if isinstance(ev, e.MilestoneMet)] == [
        ("track:observe-leader", True)
    ]


@pytest.mark.parametrize(
    ("when", "command"),
    [
        ("paused twice", lambda: c.PauseJourney(**COORD)),
        ("a nomination decided while paused", lambda: c.DecideNomination(**COORD, decision="approve")),
    ],
)
def test_rules3_still_refuses_what_only_the_clock_may_do_while_paused(when: str, command: Any) -> None:
    j = nominated(**V3)
    j.send(c.PauseJourney(**COORD), at(2026, 12, 2))

    assert refused(j, command(), at(2026, 12, 3)).code == "journey_paused", when


def test_rules3_a_paused_nomination_takes_no_work_it_has_no_sessions_or_tracks_yet() -> None:
    j = nominated(**V3)
    j.send(c.PauseJourney(**COORD), at(2026, 12, 2))

    submit = c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r")
    assert refused(j, submit, at(2026, 12, 3)).code == "journey_paused"


def test_rules1_still_refuses_attendance_and_work_while_paused() -> None:
    j = active(at(2027, 1, 11, 12), **V1)
    j.send(c.PauseJourney(**COORD), at(2027, 2, 1, 10))

    attendance = c.RecordAttendance(**COORD, session_key="kickoff", status="attended")
    submit = c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r")
    assert refused(j, attendance, at(2027, 2, 2)).code == "journey_paused"
    assert refused(j, submit, at(2027, 2, 2)).code == "journey_paused"


# -- (2) resuming moves the journey's own deadlines, never a cohort session --------------------------


def _slipped_then_paused(rules: dict[str, Any]) -> Journey:
    """Kickoff to dilemma-lab-1 attended, observe-leader slipped on 8 March (its ladder climbing),
    paused Tuesday 9 March 10:00."""
    j = active(at(2027, 1, 11, 12), **rules)
    attend(j, at(2027, 3, 8, 12), "kickoff", "leading-self", "dilemma-lab-1")
    j.send(c.PauseJourney(**COORD), at(2027, 3, 9, 10))
    return j


def test_rules3_resume_moves_tracks_meetings_evaluation_and_pending_rungs_by_the_paused_working_days() -> None:
    j = _slipped_then_paused(V3)
    before = j.s
    observe = before.milestone("track:observe-leader")
    assert observe is not None and observe.status == "slipped"
    pending_before = {r.rung: r.due_at for r in observe.ladder if r.rung not in observe.raised}

    # Tuesday 9 March 10:00 to Tuesday 16 March 10:00: five working-day deadlines (9-12, 15 March).
    [resumed] = [ev for ev in j.send(c.ResumeJourney(**COORD), at(2027, 3, 16, 10)) if ev.type == "JourneyResumed"]

    assert isinstance(resumed, e.JourneyResumed) and resumed.paused_working_days == 5
    after = milestone_dues(j.s)
    assert after["track:lead-meeting"] == plus_working_days(LEAD_MEETING_DUE, 5) == at(2027, 5, 14, 16)
    assert after["mentor_meeting:2"] == plus_working_days(milestone_dues(before)["mentor_meeting:2"], 5)
    assert j.s.evaluate_at == plus_working_days(EVALUATE_AT, 5) == at(2027, 10, 18, 16)
    moved = j.s.milestone("track:observe-leader")
    assert moved is not None and moved.due_at == OBSERVE_DUE  # slipped: its deadline is history
    pending_after = {r.rung: r.due_at for r in moved.ladder if r.rung not in moved.raised}
    assert pending_after == {rung: plus_working_days(due, 5) for rung, due in pending_before.items()}
    assert pending_after  # the ladder had rungs still to climb


def test_rules3_resume_never_moves_a_cohort_session() -> None:
    j = _slipped_then_paused(V3)
    sessions_before = j.s.cohort.sessions

    j.send(c.ResumeJourney(**COORD), at(2027, 3, 16, 10))

    assert j.s.cohort.sessions == sessions_before
    assert milestone_dues(j.s)["session:leading-others"] == LEADING_OTHERS_DUE  # 5 April + 2 working days


def test_rules1_resume_still_moves_session_deadlines_as_it_always_did() -> None:
    j = _slipped_then_paused(V1)

    j.send(c.ResumeJourney(**COORD), at(2027, 3, 16, 10))

    assert milestone_dues(j.s)["session:leading-others"] == plus_working_days(LEADING_OTHERS_DUE, 5)


def test_rules3_a_session_rescheduled_during_the_pause_keeps_its_new_date_and_is_not_moved_twice() -> None:
    j = _slipped_then_paused(V3)
    moved_to = at(2027, 4, 12, 9)
    j.send(c.RescheduleSession(**COORD, session_key="leading-others", starts_at=moved_to), at(2027, 3, 10, 10))
    assert milestone_dues(j.s)["session:leading-others"] == at(2027, 4, 14, 16)

    j.send(c.ResumeJourney(**COORD), at(2027, 3, 16, 10))

    assert milestone_dues(j.s)["session:leading-others"] == at(2027, 4, 14, 16)
    assert next(x for x in j.s.cohort.sessions if x.key == "leading-others").starts_at == moved_to


def test_rules3_a_mandatory_session_held_during_the_pause_is_excused_by_the_system() -> None:
    j = active(at(2027, 1, 11, 12), **V3)
    attend(j, at(2027, 1, 11, 12), "kickoff")
    j.send(c.PauseJourney(**COORD, reason_ref="t-illness"), at(2027, 2, 1, 10))

    events = j.send(c.ResumeJourney(**COORD), at(2027, 2, 15, 10))  # leading-self was held on 8 February

    assert excused_by_system(events) == ["leading-self"]
    met = [ev for ev in events if isinstance(ev, e.MilestoneMet)]
    assert [(ev.milestone, ev.late) for ev in met] == [("session:leading-self", False)]
    types = [ev.type for ev in events]
    assert types.index("SessionAttendanceRecorded") < types.index("JourneyResumed")  # held while paused
    assert j.s.attendance_of("leading-self") == "excused"
    assert j.s.sessions_counts() == (1, 5)  # the excused session leaves the base: ceil(0.8 x 6)
    assert not [ev for ev in events if ev.type in ("MilestoneSlipped", "EscalationRaised")]


def test_rules3_a_session_whose_attendance_was_recorded_during_the_pause_is_not_excused() -> None:
    j = active(at(2027, 1, 11, 12), **V3)
    attend(j, at(2027, 1, 11, 12), "kickoff")
    j.send(c.PauseJourney(**COORD), at(2027, 2, 1, 10))
    attend(j, at(2027, 2, 8, 12), "leading-self")  # the talent came in spite of the leave

    events = j.send(c.ResumeJourney(**COORD), at(2027, 2, 15, 10))

    assert excused_by_system(events) == []
    assert j.s.attendance_of("leading-self") == "attended"


def test_rules1_a_session_held_during_the_pause_is_not_excused() -> None:
    j = active(at(2027, 1, 11, 12), **V1)
    attend(j, at(2027, 1, 11, 12), "kickoff")
    j.send(c.PauseJourney(**COORD), at(2027, 2, 1, 10))

    events = j.send(c.ResumeJourney(**COORD), at(2027, 2, 15, 10))

    assert excused_by_system(events) == []
    assert j.s.attendance_of("leading-self") is None


# -- (3) a deadline is inclusive --------------------------------------------------------------------


def _submitted(rules: dict[str, Any]) -> Journey:
    j = active(at(2027, 1, 11, 12), **rules)
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r"), at(2027, 3, 1, 10))
    return j


def test_rules3_a_sign_off_at_exactly_the_due_instant_is_on_time_no_slip_no_escalation() -> None:
    j = _submitted(V3)

    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), OBSERVE_DUE)

    about = [ev for ev in events if getattr(ev, "milestone", None) == "track:observe-leader"]
    assert [(ev.type, getattr(ev, "late", None)) for ev in about] == [("MilestoneMet", False)]
    assert not [
        ev
        for ev in history(j)
        if ev.type in ("MilestoneSlipped", "EscalationRaised") and ev.milestone == "track:observe-leader"
    ]
    facts = facts_from_events(status_of(j.s), history(j))
    assert "track:observe-leader" not in facts.late_milestones  # the on-time KPI counts it on time


def test_rules3_the_clock_wakes_just_after_the_due_instant_and_slips_the_milestone_stamped_at_it() -> None:
    j = _submitted(V3)
    j.send(c.AdvanceClock(**SYSTEM), OBSERVE_DUE - timedelta(minutes=1))

    wake = next_wakeup(j.s)
    events = j.send(c.AdvanceClock(**SYSTEM), OBSERVE_DUE + timedelta(milliseconds=1))

    assert wake == OBSERVE_DUE + timedelta(milliseconds=1)  # a command at the instant itself comes first
    slipped = [ev for ev in events if isinstance(ev, e.MilestoneSlipped) and ev.milestone == "track:observe-leader"]
    assert [ev.slipped_at for ev in slipped] == [OBSERVE_DUE]


def test_rules3_time_alone_at_exactly_the_due_instant_slips_the_milestone_after_any_command() -> None:
    j = _submitted(V3)

    events = j.send(c.AdvanceClock(**SYSTEM), OBSERVE_DUE)

    assert "track:observe-leader" in [ev.milestone for ev in events if isinstance(ev, e.MilestoneSlipped)]


def test_rules1_the_clock_still_wakes_at_the_due_instant_itself() -> None:
    j = _submitted(V1)
    j.send(c.AdvanceClock(**SYSTEM), OBSERVE_DUE - timedelta(minutes=1))

    assert next_wakeup(j.s) == OBSERVE_DUE
    events = j.send(c.AdvanceClock(**SYSTEM), OBSERVE_DUE)
    assert "track:observe-leader" in [ev.milestone for ev in events if isinstance(ev, e.MilestoneSlipped)]


def test_rules1_a_sign_off_at_exactly_the_due_instant_still_comes_after_the_slip() -> None:
    j = _submitted(V1)

    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), OBSERVE_DUE)

    assert "MilestoneSlipped" in [ev.type for ev in events]
    assert [ev.late for ev in events if isinstance(ev, e.MilestoneMet)] == [True]


# -- (7) the municipal calendar and closures ------------------------------------------------------------

MUNICIPAL = get_calendar("dk-municipal", "Europe/Copenhagen", time(16, 0))
DK = get_calendar("dk", "Europe/Copenhagen", time(16, 0))


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2027, 12, 24), "Christmas Eve"),  # a Friday
        (date(2027, 12, 31), "New Year's Eve"),  # a Friday
        (date(2026, 6, 5), "Constitution Day"),  # Grundlovsdag, a Friday
        (date(2029, 6, 5), "Constitution Day"),  # a Tuesday
    ],
)
def test_dk_municipal_is_dk_plus_christmas_eve_new_years_eve_and_constitution_day(day: date, name: str) -> None:
    assert not MUNICIPAL.is_working_day(day)
    assert MUNICIPAL.holiday_name(day) == name
    assert DK.is_working_day(day)  # the plain dk calendar is unchanged


def test_dk_municipal_keeps_the_public_holidays_and_ordinary_working_days() -> None:
    assert not MUNICIPAL.is_working_day(date(2027, 3, 26))  # Good Friday
    assert MUNICIPAL.holiday_name(date(2027, 3, 26)) == "Good Friday"
    assert MUNICIPAL.is_working_day(date(2027, 12, 23))
    assert MUNICIPAL.add_working_day_steps(date(2027, 12, 23), 1) == date(2027, 12, 27)


def test_no_working_day_deadline_falls_in_a_closure_and_the_clock_skips_it() -> None:
    winter = (date(2027, 2, 15), date(2027, 2, 21), "Vinterferie (uge 7)")
    cal = get_calendar("dk-municipal", "Europe/Copenhagen", time(16, 0), (winter,))

    assert [cal.is_working_day(date(2027, 2, d)) for d in (12, 15, 19, 22)] == [True, False, False, True]
    assert cal.closure_reason(date(2027, 2, 17)) == "Vinterferie (uge 7)"
    assert cal.add_working_days(at(2027, 2, 12, 10), 1) == at(2027, 2, 22, 16)
    assert cal.add(at(2027, 2, 15, 10), Delay(working_days=0)) == at(2027, 2, 22, 16)
    # A pause across the closure took the working days before and after it only.
    assert cal.working_days_elapsed(at(2027, 2, 11, 10), at(2027, 2, 23, 10)) == 3  # 11, 12 and 22 February


def test_a_pause_over_july_counts_only_the_working_days_outside_the_closure() -> None:
    cal = reference_programme().working_calendar

    # Monday 28 June to Monday 9 August 2027: 28-30 June and 2-6 August; July is closed.
    assert cal.working_days_elapsed(at(2027, 6, 28, 10), at(2027, 8, 9, 10)) == 8
    assert cal.shift_working_days(at(2027, 6, 30, 16), 1) == at(2027, 8, 2, 16)


def test_the_reference_programme_uses_dk_municipal_with_aalborgs_winter_autumn_and_july_closures() -> None:
    p = reference_programme()

    assert p.calendar.name == "dk-municipal"
    periods = {(x.from_, x.to) for x in p.calendar.closures}
    for year in (2026, 2027, 2028, 2029):
        week7, week42 = date.fromisocalendar(year, 7, 1), date.fromisocalendar(year, 42, 1)
        assert (week7, week7 + timedelta(days=6)) in periods
        assert (week42, week42 + timedelta(days=6)) in periods
        assert (date(year, 7, 1), date(year, 7, 31)) in periods
    assert len(periods) == 12


def test_the_reference_cohorts_first_track_falls_a_week_later_for_the_winter_break() -> None:
    j = enrolled(reference_programme(), **V3)

    # 40 working days from Monday 11 January 2027: 8 March on plain dk, week 7 closed adds five.
    assert milestone_dues(j.s)["track:observe-leader"] == plus_working_days(OBSERVE_DUE, 5) == at(2027, 3, 15, 16)
    assert all(MUNICIPAL.is_working_day(due.date()) for due in milestone_dues(j.s).values())


def _programme_data(calendar: Any) -> dict[str, Any]:
    return {**PROGRAMME.model_dump(mode="json"), "calendar": calendar}


def _errors(calendar: Any) -> list[str]:
    with pytest.raises(ProgrammeInvalid) as caught:
        parse_programme(_programme_data(calendar))
    return caught.value.errors


def test_a_closure_that_ends_before_it_starts_is_refused_naming_the_field() -> None:
    bad = {"name": "dk-municipal", "closures": [{"from": "2027-02-21", "to": "2027-02-15", "reason": "uge 7"}]}

    assert _errors(bad) == ["calendar.closures.0: from (2027-02-21) is after to (2027-02-15)"]


def test_overlapping_closures_are_refused() -> None:
    bad = {
        "name": "dk-municipal",
        "closures": [
            {"from": "2027-07-01", "to": "2027-07-31", "reason": "juli"},
            {"from": "2027-02-15", "to": "2027-02-21", "reason": "uge 7"},
            {"from": "2027-07-31", "to": "2027-08-06", "reason": "uge 31"},
        ],
    }

    assert _errors(bad) == [
        "calendar.closures: closures 0 (2027-07-01 to 2027-07-31) and 2 (2027-07-31 to 2027-08-06) overlap"
    ]


@pytest.mark.parametrize(
    ("closure", "message"),
    [
        ({"from": "2027-01-01", "to": "2027-12-31", "reason": "a year"}, "longer than 92 days"),
        ({"from": "2027-07-01", "to": "2027-07-31", "reason": ""}, "at least 1 character"),
        ({"from": "2027-07-01", "to": "2027-07-31"}, "reason: Field required"),
        ({"from": "someday", "to": "2027-07-31", "reason": "x"}, "valid date"),
    ],
)
def test_a_bad_closure_is_refused(closure: dict[str, str], message: str) -> None:
    (error,) = _errors({"name": "dk", "closures": [closure]})

    assert error.startswith("calendar.closures.0") and message in error


def test_a_calendar_without_closures_is_stored_as_its_bare_name_so_stored_programmes_compare_unchanged() -> None:
    stored_before = json.loads(programme_json(PROGRAMME))

    assert stored_before["calendar"] == "dk"
    assert parse_programme(stored_before) == PROGRAMME
    assert parse_programme({**stored_before, "calendar": {"name": "dk"}}).calendar == CalendarDef(name="dk")


def test_a_calendar_with_closures_survives_its_canonical_json() -> None:
    p = reference_programme()
    text = programme_json(p)

    assert json.loads(text)["calendar"]["closures"][0] == {
        "from": "2026-02-09",
        "to": "2026-02-15",
        "reason": "Vinterferie (uge 7)",
    }
    assert parse_programme(json.loads(text)) == p


# -- (13a) a weekend pause ----------------------------------------------------------------------


def test_working_days_elapsed_counts_the_working_day_deadlines_a_pause_took() -> None:
    assert DK.working_days_elapsed(at(2027, 1, 29, 18), at(2027, 2, 1, 8)) == 0  # Friday evening to Monday
    assert DK.working_days_elapsed(at(2027, 2, 1, 10), at(2027, 2, 1, 15, 59)) == 0
    assert DK.working_days_elapsed(at(2027, 2, 1, 10), at(2027, 2, 1, 16)) == 1  # the deadline instant counts
    assert DK.working_days_elapsed(at(2027, 2, 1, 10), at(2027, 2, 2, 10)) == 1
    assert DK.working_days_elapsed(at(2027, 2, 2, 10), at(2027, 2, 1, 10)) == 0


def test_rules3_a_pause_from_friday_evening_to_monday_morning_moves_no_deadline() -> None:
    j = active(at(2027, 1, 11, 12), **V3)
    attend(j, at(2027, 1, 11, 12), "kickoff")
    j.send(c.PauseJourney(**COORD), at(2027, 1, 29, 18))
    before = milestone_dues(j.s)

    [resumed] = [ev for ev in j.send(c.ResumeJourney(**COORD), at(2027, 2, 1, 8)) if ev.type == "JourneyResumed"]

    assert isinstance(resumed, e.JourneyResumed) and resumed.paused_working_days == 0
    assert milestone_dues(j.s) == before
    assert j.s.evaluate_at == EVALUATE_AT


def test_rules1_the_same_weekend_pause_still_moves_deadlines_by_a_working_day() -> None:
    j = active(at(2027, 1, 11, 12), **V1)
    attend(j, at(2027, 1, 11, 12), "kickoff")
    j.send(c.PauseJourney(**COORD), at(2027, 1, 29, 18))

    [resumed] = [ev for ev in j.send(c.ResumeJourney(**COORD), at(2027, 2, 1, 8)) if ev.type == "JourneyResumed"]

    assert isinstance(resumed, e.JourneyResumed) and resumed.paused_working_days == 1
    assert j.s.evaluate_at == plus_working_days(EVALUATE_AT, 1)


# -- (13b) follow-ups on working days -----------------------------------------------------------------


def test_rules3_follow_ups_fall_on_a_working_day_of_the_calendar_never_a_saturday() -> None:
    evaluated = at(2027, 3, 4, 16)  # a Thursday; six months later is Saturday 4 September
    j = enrolled(reference_programme(), **V3)

    dues = follow_up_dues(j.s, evaluated)

    assert dues[0] == at(2027, 9, 6, 16)  # the Monday after
    assert all(j.s.calendar.is_working_day(due.date()) for due in dues)


def test_rules3_a_follow_up_in_a_closure_moves_past_it() -> None:
    evaluated = at(2027, 1, 12, 16)  # twelve months later is 12 January 2028; six months is 12 July
    j = enrolled(reference_programme(), **V3)

    dues = follow_up_dues(j.s, evaluated)

    assert dues[0] == at(2027, 8, 2, 16)  # July is closed: the first working day after it


def test_rules1_follow_ups_keep_their_calendar_date_even_on_a_saturday() -> None:
    j = enrolled(**V1)

    assert follow_up_dues(j.s, at(2027, 3, 4, 16))[0] == at(2027, 9, 4, 16)


# -- properties ---------------------------------------------------------------------------------


@st.composite
def calendars(draw: st.DrawFn) -> CalendarDef:
    """A programme calendar: any name, and up to six closures apart from each other in 2026-2029."""
    name = draw(st.sampled_from(["dk", "dk-municipal", "weekdays"]))
    closures = []
    day = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 60)))
    for _ in range(draw(st.integers(0, 6))):
        length = draw(st.integers(0, 40))
        closures.append({"from": day.isoformat(), "to": (day + timedelta(days=length)).isoformat(), "reason": "x"})
        day += timedelta(days=length + 1 + draw(st.integers(0, 200)))
    return CalendarDef.model_validate({"name": name, "closures": closures})


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 6, 30)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=at(2026, 1, 1).tzinfo)
)


@PROPERTIES
@given(calendar=calendars(), start=instants, n=st.integers(0, 260), paused_for=st.integers(0, 400))
def test_a_working_day_deadline_never_falls_on_a_non_working_day_of_the_programmes_calendar(
    calendar: CalendarDef, start: datetime, n: int, paused_for: int
) -> None:
    cal = PROGRAMME.model_copy(update={"calendar": calendar}).working_calendar

    due = cal.add(start, Delay(working_days=n))
    resumed_at = start + timedelta(hours=paused_for * 7)
    moved = cal.shift_by(due, "working_days", cal.working_days_elapsed(start, resumed_at), resumed_at - start)

    assert due >= start and moved >= due
    for instant in (due, moved):
        local = cal.local(instant).date()
        assert cal.is_working_day(local)
        assert cal.closure_reason(local) is None
        assert local.weekday() < 5


def _v3_journey(programme: Programme) -> Journey:
    j = Journey()
    j.send(nominate(programme, reference_cohort(programme), **V3), at(2026, 12, 1))
    j.send(c.DecideNomination(**COORD, decision="approve"), at(2026, 12, 2))
    return j


_REFERENCE_V3 = _v3_journey(reference_programme())


@PROPERTIES
@given(
    pause_hours=st.integers(24 * 30, 24 * 300),
    paused_hours=st.integers(1, 24 * 90),
    attended=st.lists(st.sampled_from([s.key for s in PROGRAMME.sessions]), unique=True),
)
def test_resuming_never_moves_a_cohort_session_and_leaves_every_deadline_on_a_working_day(
    pause_hours: int, paused_hours: int, attended: list[str]
) -> None:
    j = Journey()
    j.state, j.history = _REFERENCE_V3.state, list(_REFERENCE_V3.history)
    paused_at = at(2026, 12, 2) + timedelta(hours=pause_hours)
    for key in attended:
        held = next(x.starts_at for x in j.s.cohort.sessions if x.key == key)
        if held + timedelta(hours=1) < paused_at:
            attend(j, held + timedelta(hours=1), key)
    j.send(c.PauseJourney(**COORD), paused_at)
    before = j.s
    assert before.state == "paused"
    j.send(c.ResumeJourney(**COORD), paused_at + timedelta(hours=paused_hours))
    after = j.s

    assert after.cohort.sessions == before.cohort.sessions
    for m in before.milestones:
        if m.kind in SESSION_KINDS:
            moved = after.milestone(m.key)
            assert moved is not None and moved.due_at == m.due_at, m.key
    cal = after.calendar
    for m in after.milestones:
        if m.status == "open" and m.clock == "working_days":
            assert cal.is_working_day(cal.local(m.due_at).date()), m.key
        for r in m.ladder:
            if r.rung not in m.raised and r.clock == "working_days":
                assert cal.is_working_day(cal.local(r.due_at).date()), (m.key, r.rung)
    if after.evaluate_at is not None and after.completion is None:
        assert cal.is_working_day(cal.local(after.evaluate_at).date())
