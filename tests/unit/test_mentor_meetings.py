"""Mentor meetings under rules version 2 (PRODUCT §8.4), and journeys that keep the first rules."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.journey import JourneyState
from domain.status import JourneyStatus, dump_status, status_data, status_of
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
    COHORT,
    EVALUATE_AT,
    HR,
    MEETING_1_DUE,
    NEW_LEADER,
    PROGRAMME,
    active,
    advance,
    at,
    enrolled,
    nominated,
    on_track,
)

#: A nomination as the API made it under rules 2 (meetings confirmed by the leader), the HR
#: reference in the vault. Rules 3 (a pause stops the clock, not the people) is tested in
#: test_rules_v3_time.py.
V2: dict[str, Any] = {"rules_version": 2, "external_ref": None, "external_ref_ref": "t-hr"}
#: Monday 1 February 2027, a month into the cohort; the talent was enrolled on 2 December 2026.
NOW = at(2027, 2, 1, 11)
LATER = at(2027, 2, 1, 12)
DAY = date(2027, 1, 29)


def v2(now: datetime = NOW) -> Journey:
    """An active journey under rules 2."""
    return active(now, **V2)


def log(actor: c.Actor, held_on: date = DAY) -> c.LogMentorMeeting:
    return c.LogMentorMeeting(**actor, held_on=held_on)


def confirm(actor: c.Actor = LEADER, held_on: date = DAY) -> c.ConfirmMentorMeeting:
    return c.ConfirmMentorMeeting(**actor, held_on=held_on)


def refusal(j: Journey, command: c.Command, now: datetime = LATER) -> DomainError:
    """Send a command that must be refused; the journey must be exactly as before."""
    before, count = j.s, len(j.history)
    with pytest.raises(DomainError) as caught:
        j.send(command, now)
    assert j.s is before and len(j.history) == count
    return caught.value


# -- the rules version and the HR reference -------------------------------------------------------


def test_a_new_nomination_records_its_rules_version_and_its_hr_reference_as_a_vault_id() -> None:
    j = nominated(**V2)

    nomination = j.history[0].event
    assert isinstance(nomination, e.TalentNominated)
    assert (nomination.schema_version, nomination.rules_version) == (2, 2)
    assert (nomination.external_ref, nomination.external_ref_ref) == (None, "t-hr")
    assert (j.s.rules_version, j.s.external_ref, j.s.external_ref_ref) == (2, None, "t-hr")
    status = status_of(j.s)
    assert (status.external_ref, status.external_ref_ref) == (None, "t-hr")


def test_a_nomination_that_names_no_rules_version_gets_the_first_rules() -> None:
    j = nominated()

    nomination = j.history[0].event
    assert isinstance(nomination, e.TalentNominated)
    assert (nomination.rules_version, j.s.rules_version) == (1, 1)
    assert (j.s.external_ref, j.s.external_ref_ref) == ("HR-4711", None)


@pytest.mark.parametrize("version", [0, c.CURRENT_RULES_VERSION + 1])
def test_a_rules_version_the_domain_does_not_have_is_refused(version: int) -> None:
    with pytest.raises(ValidationError, match="rules_version"):
        nominate(PROGRAMME, COHORT, rules_version=version)


# -- the talent logs, the nearest leader confirms ------------------------------------------------


def test_a_meeting_the_talent_logs_waits_for_the_leader_and_does_not_count() -> None:
    j = v2()

    events = j.send(c.LogMentorMeeting(**TALENT, held_on=DAY, notes_ref="t-3"), NOW)

    assert events == [
        e.MentorMeetingLogged(
            number=1, held_on=DAY, leader_id="p-leader", logged_by="p-talent", notes_ref="t-3", confirmed=False
        )
    ]
    status = status_of(j.s)
    assert (status.progress.meetings_held, status.pending_meetings) == (0, (DAY,))
    assert j.s.milestone("mentor_meeting:1").status == "open"  # type: ignore[union-attr]


def test_the_leader_confirming_the_talents_meeting_makes_it_count() -> None:
    j = v2()
    j.send(log(TALENT), NOW)

    events = j.send(confirm(LEADER), LATER)

    assert events == [
        e.MentorMeetingConfirmed(number=1, held_on=DAY, confirmed_by="p-leader"),
        e.MilestoneMet(milestone="mentor_meeting:1", met_at=LATER, late=False),
    ]
    status = status_of(j.s)
    assert (status.progress.meetings_held, status.pending_meetings) == (1, ())


def test_the_leader_logging_the_date_the_talent_logged_confirms_that_meeting() -> None:
    j = v2()
    j.send(log(TALENT), NOW)

    events = j.send(log(LEADER), LATER)

    assert events == [
        e.MentorMeetingConfirmed(number=1, held_on=DAY, confirmed_by="p-leader"),
        e.MilestoneMet(milestone="mentor_meeting:1", met_at=LATER, late=False),
    ]
    assert len(j.s.meetings) == 1 and j.s.meetings_held() == 1


def test_a_meeting_the_leader_logs_counts_at_once() -> None:
    j = v2()

    events = j.send(log(LEADER), NOW)

    assert events == [
        e.MentorMeetingLogged(number=1, held_on=DAY, leader_id="p-leader", logged_by="p-leader", confirmed=True),
        e.MilestoneMet(milestone="mentor_meeting:1", met_at=NOW, late=False),
    ]
    assert status_of(j.s).progress.meetings_held == 1


def test_a_coordinator_logs_and_confirms_on_the_leaders_behalf() -> None:
    j = v2()
    j.send(log(TALENT), NOW)

    confirmed = j.send(confirm(COORD), LATER)
    logged = j.send(log(COORD, date(2027, 1, 30)), LATER)

    assert j.types(confirmed) == ["MentorMeetingConfirmed", "MilestoneMet"]
    assert logged[0] == e.MentorMeetingLogged(
        number=2, held_on=date(2027, 1, 30), leader_id="p-leader", logged_by="p-coord", confirmed=True
    )
    assert j.s.meetings_held() == 2


def test_meetings_count_in_the_order_they_are_confirmed() -> None:
    j = v2()
    j.send(log(TALENT, date(2027, 1, 20)), NOW)  # meeting 1 logged, not counted
    first = j.send(log(LEADER, date(2027, 1, 25)), NOW)  # meeting 2 logged: the first that counts

    second = j.send(confirm(LEADER, date(2027, 1, 20)), LATER)

    assert [ev.milestone for ev in first + second if isinstance(ev, e.MilestoneMet)] == [
        "mentor_meeting:1",
        "mentor_meeting:2",
    ]


# -- the same date again -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "again"),
    [
        pytest.param([TALENT], TALENT, id="the talent logging their date again"),
        pytest.param([LEADER], LEADER, id="the leader logging their date again"),
        pytest.param([LEADER], TALENT, id="the talent logging the leader's date"),
        pytest.param([TALENT, LEADER], TALENT, id="the talent logging a date the leader confirmed"),
        pytest.param([TALENT, LEADER], LEADER, id="the leader logging a date they confirmed"),
        pytest.param([LEADER], COORD, id="a coordinator logging a counted date"),
    ],
)
def test_logging_a_date_already_logged_changes_nothing(first: list[c.Actor], again: c.Actor) -> None:
    j = v2()
    for actor in first:
        j.send(log(actor), NOW)
    before = j.s

    assert j.send(log(again), LATER) == []
    assert j.s is before


@pytest.mark.parametrize("logged_by", [[LEADER], [TALENT, LEADER]], ids=["logged by the leader", "confirmed"])
def test_confirming_a_meeting_that_counts_already_changes_nothing(logged_by: list[c.Actor]) -> None:
    j = v2()
    for actor in logged_by:
        j.send(log(actor), NOW)
    before = j.s

    assert j.send(confirm(LEADER), LATER) == []
    assert j.s is before


def test_confirming_a_date_nobody_logged_is_an_unknown_meeting() -> None:
    j = v2()
    j.send(log(TALENT), NOW)

    error = refusal(j, confirm(LEADER, date(2027, 1, 28)))

    assert (error.code, error.kind) == ("unknown_meeting", "not_found")


# -- dates, people and states --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held_on", "actor"),
    [
        pytest.param(date(2026, 12, 1), LEADER, id="the day before enrolment"),
        pytest.param(date(2026, 6, 1), TALENT, id="months before enrolment"),
        pytest.param(date(2027, 2, 2), TALENT, id="tomorrow"),
        pytest.param(date(2027, 2, 2), LEADER, id="tomorrow, by the leader"),
    ],
)
def test_a_meeting_dated_outside_enrolment_to_today_is_refused(held_on: date, actor: c.Actor) -> None:
    j = v2()

    error = refusal(j, log(actor, held_on))

    assert (error.code, error.kind) == ("invalid_date", "invalid")


def test_a_meeting_on_the_day_of_enrolment_or_today_is_logged() -> None:
    j = v2()

    enrolment_day = j.send(log(LEADER, date(2026, 12, 2)), NOW)
    today = j.send(log(LEADER, date(2027, 2, 1)), NOW)

    assert j.types(enrolment_day + today) == ["MentorMeetingLogged", "MilestoneMet"] * 2


@pytest.mark.parametrize("actor", [TALENT, NEW_LEADER, HR], ids=["the talent", "another leader", "an hr system"])
def test_only_the_nearest_leader_or_a_coordinator_confirms_a_meeting(actor: c.Actor) -> None:
    j = v2()
    j.send(log(TALENT), NOW)

    assert refusal(j, confirm(actor)).code == "not_allowed"


def test_after_a_leader_change_the_new_leader_confirms_and_the_former_cannot() -> None:
    j = v2()
    j.send(log(TALENT), NOW)
    j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2"), NOW)

    assert refusal(j, confirm(LEADER)).code == "not_allowed"
    assert refusal(j, log(LEADER)).code == "not_allowed"
    events = j.send(confirm(NEW_LEADER), LATER)

    assert events[0] == e.MentorMeetingConfirmed(number=1, held_on=DAY, confirmed_by="p-leader-2")


def test_a_meeting_cannot_be_confirmed_while_paused_or_after_evaluation() -> None:
    paused = v2()
    paused.send(log(TALENT), NOW)
    paused.send(c.PauseJourney(**COORD, reason_ref="t-leave"), NOW)
    evaluated = v2()
    evaluated.send(log(TALENT), NOW)
    advance(evaluated, EVALUATE_AT)

    assert refusal(paused, confirm(LEADER)).code == "journey_paused"
    assert refusal(evaluated, confirm(LEADER), EVALUATE_AT + timedelta(hours=1)).code == "invalid_state"


# -- milestones and completion -------------------------------------------------------------------


def test_an_unconfirmed_meeting_lets_its_milestone_slip_and_a_late_confirmation_stops_the_ladder() -> None:
    j = v2(at(2027, 2, 1))
    j.send(log(TALENT, date(2027, 2, 1)), NOW)
    advance(j, MEETING_1_DUE + timedelta(days=1))
    assert j.s.milestone("mentor_meeting:1").ladder_running  # type: ignore[union-attr]

    events = j.send(confirm(LEADER, date(2027, 2, 1)), at(2027, 3, 3, 11))

    assert j.types(events) == ["MentorMeetingConfirmed", "MilestoneMet", "EscalationResolved"]
    assert events[1] == e.MilestoneMet(milestone="mentor_meeting:1", met_at=at(2027, 3, 3, 11), late=True)


def test_a_journey_whose_leader_never_confirms_the_talents_meetings_is_not_completed() -> None:
    j = enrolled(**V2)
    on_track(j, meetings_by=TALENT)

    advance(j, EVALUATE_AT)

    outcome = next(n.event for n in j.history if isinstance(n.event, e.ProgrammeNotCompleted))
    assert isinstance(outcome, e.ProgrammeNotCompleted)
    assert (outcome.reasons, outcome.meetings_held) == (("mentor_meetings_missing",), 0)
    assert len(j.s.meetings) == 5 and status_of(j.s).progress.meetings_held == 0


def test_a_journey_whose_leader_holds_the_meetings_is_completed() -> None:
    j = enrolled(**V2)
    on_track(j, meetings_by=LEADER)

    advance(j, EVALUATE_AT)

    assert (j.s.completion, status_of(j.s).progress.meetings_held) == ("completed", 5)


def test_a_programme_compressed_into_minutes_holds_several_meetings_a_day_and_confirms_by_date() -> None:
    start = datetime(2027, 3, 1, 9, 0, tzinfo=CPH)
    programme = compressed_programme()
    j = Journey()
    j.send(nominate(programme, compressed_cohort(programme, start), **V2), start - timedelta(minutes=5))
    j.send(c.DecideNomination(**COORD, decision="approve"), start - timedelta(minutes=4))
    today = start.date()

    j.send(log(LEADER, today), start + timedelta(seconds=10))
    j.send(log(LEADER, today), start + timedelta(seconds=20))  # minutes apart: another meeting
    j.send(log(TALENT, today), start + timedelta(seconds=30))
    confirmed = j.send(log(LEADER, today), start + timedelta(seconds=40))  # confirms the talent's

    assert [
        ev for ev in confirmed if ev.type.startswith("Mentor") or getattr(ev, "milestone", "") == "mentor_meeting:3"
    ] == [
        e.MentorMeetingConfirmed(number=3, held_on=today, confirmed_by="p-leader"),
        e.MilestoneMet(milestone="mentor_meeting:3", met_at=start + timedelta(seconds=40), late=False),
    ]
    assert (len(j.s.meetings), j.s.meetings_held()) == (3, 3)


# -- journeys nominated under the first rules keep them -----------------------------------------


def test_a_journey_under_the_first_rules_counts_the_talents_own_meeting_on_any_past_date() -> None:
    j = active(NOW)

    events = j.send(log(TALENT, date(2026, 6, 1)), NOW)  # before the nomination, even

    assert j.types(events) == ["MentorMeetingLogged", "MilestoneMet"]
    assert isinstance(events[0], e.MentorMeetingLogged) and events[0].confirmed
    assert refusal(j, log(LEADER, date(2026, 6, 1))).code == "already_logged"
    assert j.send(confirm(LEADER, date(2026, 6, 1)), LATER) == []  # it counts already
    assert refusal(j, confirm(LEADER, date(2026, 6, 2))).code == "unknown_meeting"


def test_a_journey_under_the_first_rules_is_completed_on_the_talents_own_meetings() -> None:
    j = enrolled()
    on_track(j, meetings_by=TALENT)

    advance(j, EVALUATE_AT)

    assert (j.s.completion, status_of(j.s).progress.meetings_held) == ("completed", 5)


# -- stored shapes: schema versions and upcasting ------------------------------------------------


def _stored_v1_nomination() -> dict[str, Any]:
    """A TalentNominated as schema 1 stored it: no rules version, the HR reference in clear."""
    data = e.event_data(nominated().history[0].event)
    del data["rules_version"], data["external_ref_ref"]
    return data


def test_a_nomination_stored_in_schema_1_reads_as_the_first_rules() -> None:
    data = _stored_v1_nomination()

    for event in (
        e.parse_event("TalentNominated", 1, data),
        e.parse_event_json("TalentNominated", 1, json.dumps(data)),
    ):
        assert isinstance(event, e.TalentNominated)
        assert (event.schema_version, event.rules_version, event.external_ref, event.external_ref_ref) == (
            2,
            1,
            "HR-4711",
            None,
        )


def test_a_meeting_stored_in_schema_1_counted_when_it_was_logged() -> None:
    data = {"number": 1, "held_on": "2027-01-29", "leader_id": "p-leader", "logged_by": "p-talent"}

    event = e.parse_event_json("MentorMeetingLogged", 1, json.dumps(data))

    assert isinstance(event, e.MentorMeetingLogged)
    assert (event.schema_version, event.confirmed) == (2, True)


def test_an_event_in_an_older_schema_validated_directly_is_upcast_too() -> None:
    # An activity input a worker of the previous release scheduled carries a schema 1 nomination.
    payload = {**_stored_v1_nomination(), "type": "TalentNominated", "schema_version": 1}

    event = e.EVENT_ADAPTER.validate_python(payload)

    assert isinstance(event, e.TalentNominated) and (event.schema_version, event.rules_version) == (2, 1)


def test_new_events_are_stored_in_their_current_schema_and_read_back_equal() -> None:
    j = v2()
    j.send(log(TALENT), NOW)
    j.send(confirm(LEADER), LATER)

    for new in j.history:
        ev = new.event
        assert e.parse_event_json(ev.type, ev.schema_version, e.event_json(ev)) == ev
    versions = {n.event.type: n.event.schema_version for n in j.history}
    assert (versions["TalentNominated"], versions["MentorMeetingLogged"], versions["MentorMeetingConfirmed"]) == (
        2,
        2,
        1,
    )


def test_a_snapshot_and_a_status_stored_before_rules_versions_still_parse() -> None:
    state = active(NOW).s
    old_snapshot = state.model_dump(mode="json", exclude={"rules_version", "external_ref_ref", "enrolled_at"})
    old_status = status_data(state)
    del old_status["external_ref_ref"], old_status["pending_meetings"]

    snapshot = JourneyState.model_validate(old_snapshot)
    status = JourneyStatus.model_validate_json(dump_status(old_status))

    assert (snapshot.rules_version, snapshot.external_ref_ref) == (1, None)
    assert (status.external_ref_ref, status.pending_meetings) == (None, ())
    # A snapshot of the first rules decides as before: the talent's meeting counts.
    events = Journey()
    events.state = snapshot
    assert events.types(events.send(log(TALENT), NOW)) == ["MentorMeetingLogged", "MilestoneMet"]


def test_the_system_actor_may_confirm_like_a_coordinator() -> None:
    j = v2()
    j.send(log(TALENT), NOW)

    assert j.types(j.send(confirm(SYSTEM), LATER)) == ["MentorMeetingConfirmed", "MilestoneMet"]
