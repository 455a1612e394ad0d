"""Completion, coordinator overrides, outcome follow-ups, closing, and whole compressed journeys."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.journey import next_wakeup
from tests.support import (
    COORD,
    CPH,
    LEADER,
    SYSTEM,
    TALENT,
    Journey,
    compressed_cohort,
    compressed_programme,
    nominate,
)
from tests.unit.journeys import (
    EVALUATE_AT,
    HR,
    active,
    advance,
    at,
    enrolled,
    history,
    of,
    on_track,
    raised,
)

FOLLOW_UPS = (at(2028, 4, 11, 16), at(2028, 10, 11, 16), at(2029, 10, 11, 16))


def completed() -> Journey:
    j = enrolled()
    on_track(j)
    advance(j, EVALUATE_AT)
    return j


def test_a_journey_on_track_is_completed_when_evaluated_at_the_programmes_end() -> None:
    j = enrolled()
    on_track(j)
    assert next_wakeup(j.s) == EVALUATE_AT
    assert advance(j, EVALUATE_AT - timedelta(seconds=1)) == []

    events = advance(j, EVALUATE_AT)

    assert events == [
        e.ProgrammeCompleted(
            evaluated_at=EVALUATE_AT, sessions_attended=7, tracks_done=4, meetings_held=5, follow_ups=FOLLOW_UPS
        )
    ]
    assert (j.s.state, j.s.completion, j.s.completion_reasons) == ("completed", "completed", ())
    assert [f.due_at for f in j.s.follow_ups] == list(FOLLOW_UPS)
    assert [f.months for f in j.s.follow_ups] == [6, 12, 24]


def test_a_journey_with_nothing_done_is_not_completed_with_every_reason() -> None:
    j = active(at(2027, 1, 11, 12))

    events = advance(j, EVALUATE_AT)

    outcome = events[-1]
    assert isinstance(outcome, e.ProgrammeNotCompleted)
    assert outcome.reasons == ("attendance_below_minimum", "tracks_missing", "mentor_meetings_missing")
    assert (outcome.sessions_attended, outcome.tracks_done, outcome.meetings_held) == (0, 0, 0)
    assert j.s.state == "not_completed"
    assert j.s.completion_reasons == outcome.reasons


def test_a_single_missing_track_is_the_only_reason_given() -> None:
    j = enrolled()
    on_track(j, until=at(2027, 9, 1))  # the last track (due 13 Sep) is never done

    outcome = advance(j, EVALUATE_AT)[-1]

    assert isinstance(outcome, e.ProgrammeNotCompleted)
    assert outcome.reasons == ("tracks_missing",)
    assert outcome.tracks_done == 3


def test_two_absences_are_one_too_many() -> None:
    j = enrolled()
    on_track(j)
    j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), at(2027, 10, 1))
    one_absence = j.s.at_risk_reasons()
    j.send(c.RecordAttendance(**COORD, session_key="leading-self", status="absent"), at(2027, 10, 1, 11))

    outcome = advance(j, EVALUATE_AT)[-1]

    assert one_absence == ()
    assert isinstance(outcome, e.ProgrammeNotCompleted)
    assert outcome.reasons == ("attendance_below_minimum",)
    assert outcome.sessions_attended == 5


def test_evaluation_stops_running_ladders_at_the_evaluation_instant() -> None:
    j = enrolled()
    on_track(j, until=at(2027, 9, 1))
    advance(j, at(2027, 9, 20))  # the last track slipped on 13 Sep; its ladder is running

    events = advance(j, EVALUATE_AT + timedelta(days=3))

    resolved = [ev for ev in events if isinstance(ev, e.EscalationResolved)]
    assert {(x.milestone, x.resolved_at, x.resolution) for x in resolved} == {
        ("track:hard-conversation", EVALUATE_AT, "journey_ended"),
        ("mentor_meeting:5", EVALUATE_AT, "journey_ended"),
    }
    assert j.types(events)[-1] == "ProgrammeNotCompleted"
    assert all(x.resolved_at is not None for x in j.s.escalations)


def test_letting_time_pass_in_one_jump_records_the_same_history_as_waking_at_every_deadline() -> None:
    jumped, stepped = active(at(2027, 1, 11, 12)), active(at(2027, 1, 11, 12))
    end = at(2030, 1, 1)

    advance(jumped, end)
    steps = 0
    while (wake := next_wakeup(stepped.s)) is not None and wake <= end:
        assert advance(stepped, wake) != []
        steps += 1

    assert steps > 50
    assert history(jumped) == history(stepped)
    assert jumped.s == stepped.s
    assert jumped.s.state == "closed"


# -- follow-ups and closing ----------------------------------------------------------------------


def test_follow_ups_are_asked_at_6_12_and_24_months_and_then_the_journey_closes() -> None:
    j = completed()

    events = advance(j, at(2030, 1, 1))

    assert events == [
        e.FollowUpRequested(point=1, months=6, requested_at=FOLLOW_UPS[0], respond_by=at(2028, 5, 12, 16)),
        e.FollowUpRequested(point=2, months=12, requested_at=FOLLOW_UPS[1], respond_by=at(2028, 11, 8, 16)),
        e.FollowUpRequested(point=3, months=24, requested_at=FOLLOW_UPS[2], respond_by=at(2029, 11, 8, 16)),
        e.JourneyClosed(closed_at=at(2029, 11, 8, 16), reason="follow_up_finished"),
    ]
    assert j.s.state == "closed"
    assert j.s.closed_at == at(2029, 11, 8, 16)
    assert next_wakeup(j.s) is None


def test_the_first_follow_up_moves_the_journey_to_following_up() -> None:
    j = completed()
    assert next_wakeup(j.s) == FOLLOW_UPS[0]

    advance(j, FOLLOW_UPS[0])

    assert j.s.state == "following_up"
    assert next_wakeup(j.s) == FOLLOW_UPS[1]


def test_a_not_completed_journey_is_followed_up_too() -> None:
    j = active(at(2027, 1, 11, 12))
    advance(j, EVALUATE_AT)

    events = advance(j, at(2030, 1, 1))

    assert j.types(events) == ["FollowUpRequested"] * 3 + ["JourneyClosed"]


# -- overrides -----------------------------------------------------------------------------------


def test_a_coordinator_can_override_a_completion_with_a_reason() -> None:
    j = completed()

    events = j.send(c.OverrideCompletion(**COORD, outcome="not_completed", reason_ref="t-6"), at(2027, 10, 12))

    assert events == [
        e.ProgrammeNotCompleted(
            evaluated_at=at(2027, 10, 12),
            reasons=("coordinator_override",),
            override=True,
            decided_by="p-coord",
            reason_ref="t-6",
            sessions_attended=7,
            tracks_done=4,
            meetings_held=5,
            follow_ups=FOLLOW_UPS,
        )
    ]
    assert (j.s.state, j.s.completion, j.s.completion_override) == ("not_completed", "not_completed", True)
    assert j.s.evaluated_at == EVALUATE_AT
    assert [f.due_at for f in j.s.follow_ups] == list(FOLLOW_UPS)


def test_a_coordinator_can_override_a_non_completion() -> None:
    j = active(at(2027, 1, 11, 12))
    advance(j, EVALUATE_AT)

    events = j.send(c.OverrideCompletion(**COORD, outcome="completed", reason_ref="t-6"), at(2027, 10, 12))

    assert j.types(events) == ["ProgrammeCompleted"]
    assert events[0].override is True  # type: ignore[union-attr]
    assert (j.s.state, j.s.completion, j.s.completion_reasons) == ("completed", "completed", ())


def test_an_override_to_the_outcome_already_recorded_changes_nothing() -> None:
    j = completed()
    assert j.send(c.OverrideCompletion(**COORD, outcome="completed", reason_ref="t-6"), at(2027, 10, 12)) == []


def test_an_override_while_following_up_keeps_the_journey_following_up() -> None:
    j = completed()
    advance(j, FOLLOW_UPS[0])

    j.send(c.OverrideCompletion(**COORD, outcome="not_completed", reason_ref="t-6"), FOLLOW_UPS[0] + timedelta(days=1))

    assert (j.s.state, j.s.completion) == ("following_up", "not_completed")
    assert next_wakeup(j.s) == FOLLOW_UPS[1]


# -- outcomes ------------------------------------------------------------------------------------


def test_an_outcome_answers_the_latest_follow_up() -> None:
    j = completed()
    advance(j, FOLLOW_UPS[0])

    events = j.send(
        c.RecordOutcome(**HR, applied_for_leader_post=True, appointed=False, on=date(2028, 3, 1)), at(2028, 4, 12)
    )

    assert events == [
        e.OutcomeRecorded(
            applied_for_leader_post=True, appointed=False, on=date(2028, 3, 1), recorded_by="hr-1", months=6
        )
    ]
    assert j.s.outcomes[-1].months == 6


def test_an_outcome_before_any_follow_up_has_no_month() -> None:
    j = completed()
    events = j.send(
        c.RecordOutcome(**TALENT, applied_for_leader_post=True, appointed=True, on=date(2027, 10, 11)), at(2027, 10, 12)
    )
    assert events[0].months is None  # type: ignore[union-attr]
    assert events[0].appointed is True  # type: ignore[union-attr]


def test_the_same_outcome_twice_is_recorded_once_but_a_new_one_is_recorded() -> None:
    j = completed()
    first = c.RecordOutcome(**HR, applied_for_leader_post=True, appointed=False, on=date(2027, 10, 11))
    j.send(first, at(2027, 10, 12))

    assert j.send(first, at(2027, 10, 13)) == []
    later = j.send(
        c.RecordOutcome(**HR, applied_for_leader_post=True, appointed=True, on=date(2027, 10, 13)), at(2027, 10, 14)
    )
    assert j.types(later) == ["OutcomeRecorded"]
    assert len(j.s.outcomes) == 2


def test_the_nearest_leader_can_change_while_following_up() -> None:
    j = completed()
    events = j.send(c.ChangeNearestLeader(**HR, nearest_leader_id="p-leader-2"), at(2027, 11, 1))
    assert j.types(events) == ["NearestLeaderChanged"]


# -- a compressed programme, end to end ----------------------------------------------------------

START = datetime(2027, 3, 1, 9, 0, tzinfo=CPH)


def compressed_journey() -> Journey:
    programme = compressed_programme()
    j = Journey()
    j.send(nominate(programme, compressed_cohort(programme, START)), START - timedelta(minutes=5))
    j.send(c.DecideNomination(**COORD, decision="approve"), START - timedelta(minutes=4, seconds=30))
    return j


def run(j: Journey, agenda: list[tuple[timedelta, c.Command]], until: timedelta) -> None:
    for offset, command in sorted(agenda, key=lambda x: x[0]):
        j.send(command, START + offset)
    j.send(c.AdvanceClock(**SYSTEM), START + until)


def on_time_agenda(j: Journey) -> list[tuple[timedelta, c.Command]]:
    agenda: list[tuple[timedelta, c.Command]] = []
    for i, session in enumerate(j.s.cohort.sessions):
        assert session.starts_at == START + timedelta(minutes=i)
        agenda.append(
            (timedelta(minutes=i, seconds=10), c.RecordAttendance(**COORD, session_key=session.key, status="attended"))
        )
    for m in j.s.milestones:
        offset = m.due_at - START
        if m.kind == "track":
            agenda.append((offset - timedelta(seconds=40), c.SubmitTrack(**TALENT, track_key=m.ref)))
            agenda.append(
                (offset - timedelta(seconds=30), c.SignOffTrack(**LEADER, track_key=m.ref, decision="approve"))
            )
        elif m.kind == "mentor_meeting":
            agenda.append((offset - timedelta(seconds=20), c.LogMentorMeeting(**LEADER, held_on=START.date())))
    return agenda


def test_a_compressed_journey_runs_from_nomination_to_closing_in_about_ten_minutes() -> None:
    j = compressed_journey()
    assert j.s.evaluate_at == START + timedelta(minutes=8)

    run(j, on_time_agenda(j), until=timedelta(minutes=15))

    types = j.types()
    assert "MilestoneSlipped" not in types
    assert types.count("MentorMeetingLogged") == 5  # all on the same day: minutes apart
    completion = next(n.event for n in j.history if n.event.type == "ProgrammeCompleted")
    assert isinstance(completion, e.ProgrammeCompleted)
    assert completion.follow_ups == tuple(START + timedelta(minutes=8, seconds=s) for s in (40, 80, 120))
    assert types[-4:] == ["FollowUpRequested"] * 3 + ["JourneyClosed"]
    assert j.s.state == "closed"
    assert j.s.closed_at == START + timedelta(minutes=10, seconds=20)


def test_a_compressed_journey_escalates_in_seconds_and_a_late_sign_off_stops_the_ladder() -> None:
    j = compressed_journey()
    agenda = [
        (offset, command)
        for offset, command in on_time_agenda(j)
        if not (isinstance(command, c.SignOffTrack) and command.track_key == "observe-leader")
    ]
    due = timedelta(minutes=2)
    agenda.append(
        (due + timedelta(seconds=35), c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"))
    )

    run(j, agenda, until=timedelta(minutes=15))

    track = "track:observe-leader"
    assert raised(history(j), track) == [
        (1, "talent", START + due + timedelta(seconds=10)),
        (2, "nearest_leader", START + due + timedelta(seconds=20)),
        (3, "leaders_leader", START + due + timedelta(seconds=30)),
    ]
    assert of(history(j), track, "EscalationResolved")[0].resolution == "met"  # type: ignore[union-attr]
    assert j.s.completion == "completed"
    assert j.s.state == "closed"


def test_a_compressed_journey_left_alone_is_not_completed_and_still_closes() -> None:
    j = compressed_journey()

    run(j, [], until=timedelta(minutes=15))

    assert j.s.completion == "not_completed"
    assert j.s.state == "closed"
    assert all(x.resolved_at is not None for x in j.s.escalations)


def test_a_programme_in_working_days_counts_two_meetings_logged_for_one_day_once() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 2, 1)), at(2027, 2, 1, 11))
    with pytest.raises(DomainError) as info:
        j.send(c.LogMentorMeeting(**TALENT, held_on=date(2027, 2, 1)), at(2027, 2, 1, 12))
    assert info.value.code == "already_logged"
