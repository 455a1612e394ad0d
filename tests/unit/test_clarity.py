"""Rules 4 (issue 14): the readiness self-assessment, lab debriefs, the clarified outcome, and the
clarity KPIs with hand-computed expectations."""

from __future__ import annotations

from typing import Any

import pytest
from icalendar import Calendar

from activities.invitation import appointment_uid, invitation
from api.ical import FeedJourney, journey_history, render_feed
from domain import commands as c
from domain.clarity import (
    ANSWERS,
    DEFINITIONS,
    MIN_BASE_FOR_SHARES,
    ClarityFacts,
    clarity_by_cohort,
    cohort_clarity,
    facts_of_state,
    facts_of_status,
)
from domain.errors import DomainError, InvalidCommand, InvalidState, NotAllowed
from domain.journey import fold
from domain.notifications import notifications_for
from domain.status import status_of
from tests.support import COORD, LEADER, SYSTEM, TALENT
from tests.unit.journeys import (
    APPROVED_AT,
    EVALUATE_AT,
    PROGRAMME,
    advance,
    at,
    enrolled,
    history,
    on_track,
)

V4: dict[str, Any] = {"rules_version": 4}


def _only(events: list[Any], kind: str) -> list[Any]:
    return [ev for ev in events if ev.type == kind]


def _assess(stage: str, answer: str, actor: c.Actor = TALENT, reason_ref: str | None = "t-why") -> c.AssessReadiness:
    return c.AssessReadiness.model_validate({**actor, "stage": stage, "answer": answer, "reason_ref": reason_ref})


# -- the readiness self-assessment -------------------------------------------------------------


def test_the_enrolment_stage_opens_when_the_talent_is_enrolled_and_the_talent_is_asked_by_mail() -> None:
    j = enrolled(**V4)

    asked = [ev for ev in history(j) if ev.type == "ReadinessAsked"]
    assert [(ev.stage, ev.asked_at, ev.respond_by) for ev in asked] == [("enrolment", APPROVED_AT, None)]
    mails = notifications_for(j.s, asked[0])
    assert [(n.template, n.recipient_id) for n in mails] == [("readiness_question", "p-talent")]
    assert status_of(j.s).readiness is not None
    assert status_of(j.s).readiness.open_stage == "enrolment"  # type: ignore[union-attr]


def test_journeys_of_earlier_rules_are_not_asked_and_refuse_an_assessment() -> None:
    for rules in (1, 2, 3):
        j = enrolled(rules_version=rules)
        assert "ReadinessAsked" not in [ev.type for ev in history(j)]
        assert status_of(j.s).readiness is None
        with pytest.raises(InvalidState) as refused:
            j.send(_assess("enrolment", "yes"), at(2027, 1, 12))
        assert refused.value.code == "not_in_rules"


def test_an_answer_is_recorded_once_the_same_answer_again_changes_nothing_a_changed_one_records_the_change() -> None:
    j = enrolled(**V4)

    advance(j, at(2027, 1, 12))
    first = j.send(_assess("enrolment", "not_now"), at(2027, 1, 12))
    again = j.send(_assess("enrolment", "not_now", reason_ref="t-other"), at(2027, 1, 12))
    changed = j.send(_assess("enrolment", "yes"), at(2027, 1, 12))

    assert [(ev.type, ev.stage, ev.answer, ev.previous_answer) for ev in first] == [  # type: ignore[union-attr]
        ("ReadinessAssessed", "enrolment", "not_now", None)
    ]
    assert again == []
    assert [(ev.answer, ev.previous_answer) for ev in changed] == [("yes", "not_now")]  # type: ignore[union-attr]
    assert j.s.readiness_at("enrolment") is not None
    assert j.s.readiness_at("enrolment").changes == 1  # type: ignore[union-attr]


def test_a_coordinator_may_answer_on_the_talents_behalf_but_not_a_leader_or_another_talent() -> None:
    j = enrolled(**V4)
    with pytest.raises(NotAllowed):
        j.send(_assess("enrolment", "yes", LEADER), at(2027, 1, 12))
    with pytest.raises(NotAllowed):
        j.send(_assess("enrolment", "yes", {"actor_id": "p-other", "actor_role": "talent"}), at(2027, 1, 12))

    events = _only(j.send(_assess("enrolment", "no", COORD, reason_ref=None), at(2027, 1, 12)), "ReadinessAssessed")

    assert [(ev.type, ev.assessed_by) for ev in events] == [("ReadinessAssessed", "p-coord")]


def test_only_the_open_stage_takes_answers() -> None:
    j = enrolled(**V4)
    with pytest.raises(InvalidState) as refused:
        j.send(_assess("evaluation", "yes"), at(2027, 1, 12))
    assert refused.value.code == "stage_not_open"
    j.send(c.WithdrawTalent(**COORD, reason_ref="t-r"), at(2027, 1, 13))
    with pytest.raises(InvalidState):
        j.send(_assess("enrolment", "yes"), at(2027, 1, 14))


def _evaluated(answer_at_enrolment: str | None = "not_now") -> Any:
    j = enrolled(**V4)
    if answer_at_enrolment:
        j.send(_assess("enrolment", answer_at_enrolment), at(2027, 1, 12))
    on_track(j)
    advance(j, EVALUATE_AT)
    return j


def test_the_evaluation_stage_opens_with_the_evaluation_and_closes_with_the_clarified_outcome() -> None:
    j = _evaluated()
    respond_by = PROGRAMME.working_calendar.add(EVALUATE_AT, PROGRAMME.follow_up.response_window)
    types = [ev.type for ev in history(j)]
    assert types[-2:] == ["ProgrammeCompleted", "ReadinessAsked"]
    assert (j.s.readiness_stage, j.s.readiness_respond_by) == ("evaluation", respond_by)
    with pytest.raises(InvalidState):
        j.send(_assess("enrolment", "yes"), at(2027, 10, 12))

    j.send(_assess("evaluation", "no"), at(2027, 10, 12))
    concluded = advance(j, respond_by)

    assert [ev.type for ev in concluded] == ["ClarityConcluded"]
    assert concluded[0].model_dump(exclude={"type", "schema_version"}) == {
        "concluded_at": respond_by,
        "enrolment_answer": "not_now",
        "evaluation_answer": "no",
        "clarified": True,
    }
    readiness = status_of(j.s).readiness
    assert readiness is not None
    assert (readiness.open_stage, readiness.concluded, readiness.clarified) == (None, True, True)
    with pytest.raises(InvalidState):
        j.send(_assess("evaluation", "yes"), respond_by)
    # The fold of the recorded events is the state.
    assert fold(history(j)) == j.s


@pytest.mark.parametrize(("answer", "outcome"), [("yes", True), ("no", True), ("not_now", False), (None, None)])
def test_clarified_is_a_well_founded_answer_at_the_end(answer: str | None, outcome: bool | None) -> None:
    j = _evaluated(None)
    if answer is not None:
        j.send(_assess("evaluation", answer), at(2027, 10, 12))
    advance(j, at(2027, 12, 1))
    assert (j.s.clarity_concluded_at is not None, j.s.clarified) == (True, outcome)


def test_a_journey_closing_before_its_evaluation_stage_concludes_it_first() -> None:
    j = _evaluated()
    # Run to the end of the follow-ups: the stage concluded long before; nothing twice.
    advance(j, at(2030, 1, 1))
    types = [ev.type for ev in history(j)]
    assert types.count("ClarityConcluded") == 1
    assert types.index("ClarityConcluded") < types.index("JourneyClosed")


# -- lab debriefs -------------------------------------------------------------------------------


def _debrief(key: str, clarity: int | None = 4, notes_ref: str | None = "t-notes", actor: c.Actor = TALENT) -> Any:
    return c.DebriefLab.model_validate({**actor, "session_key": key, "clarity": clarity, "notes_ref": notes_ref})


def test_a_lab_is_debriefed_once_held_and_a_changed_debrief_records_the_change() -> None:
    j = enrolled(**V4)
    advance(j, at(2027, 3, 7))
    with pytest.raises(InvalidState) as early:
        j.send(_debrief("dilemma-lab-1"), at(2027, 3, 7))
    assert early.value.code == "session_not_held"

    advance(j, at(2027, 3, 8, 15))
    first = j.send(_debrief("dilemma-lab-1"), at(2027, 3, 8, 15))
    same = j.send(_debrief("dilemma-lab-1", notes_ref="t-again"), at(2027, 3, 8, 15))
    changed = j.send(_debrief("dilemma-lab-1", clarity=5), at(2027, 3, 8, 15))

    assert [(ev.type, ev.session_key, ev.clarity) for ev in first] == [("LabDebriefed", "dilemma-lab-1", 4)]  # type: ignore[union-attr]
    assert same == []
    assert [ev.clarity for ev in changed] == [5]  # type: ignore[union-attr]
    assert [(d.session_key, d.clarity) for d in status_of(j.s).debriefs] == [("dilemma-lab-1", 5)]


def test_only_a_lab_session_is_debriefed_and_only_by_the_talent() -> None:
    j = enrolled(**V4)
    advance(j, at(2027, 3, 9))
    with pytest.raises(InvalidCommand) as not_lab:
        j.send(_debrief("kickoff"), at(2027, 3, 9))
    assert not_lab.value.code == "not_a_lab"
    with pytest.raises(InvalidCommand):
        j.send(_debrief("no-such-session"), at(2027, 3, 9))
    for actor in (COORD, LEADER):
        with pytest.raises(DomainError):
            j.send(_debrief("dilemma-lab-1", actor=actor), at(2027, 3, 9))
    with pytest.raises(ValueError, match="less than or equal to 5"):
        _debrief("dilemma-lab-1", clarity=6)


# -- KPIs ---------------------------------------------------------------------------------------


def _f(cohort: str, completed: bool, start: str | None, end: str | None) -> ClarityFacts:
    return ClarityFacts.model_validate(
        {"cohort_id": cohort, "completed": completed, "enrolment_answer": start, "evaluation_answer": end}
    )


def test_the_kpis_count_clarified_next_to_completed_with_unknowns_apart_hand_computed() -> None:
    facts = [
        _f("c-1", True, "yes", "yes"),  # clarified
        _f("c-1", True, "not_now", "no"),  # clarified: a well-founded no
        _f("c-1", True, "not_now", "not_now"),  # not clarified
        _f("c-1", False, None, "yes"),  # clarified though not completed
        _f("c-1", True, "yes", None),  # unknown
        _f("c-1", False, None, None),  # unknown (withdrawn, never answered)
        _f("c-2", True, "no", "yes"),
    ]

    c1, c2, every = clarity_by_cohort(facts)

    assert (c1.cohort_id, c1.talents, c1.completed, c1.clarified, c1.not_clarified, c1.unknown) == (
        "c-1",
        6,
        4,
        3,
        1,
        2,
    )
    assert (c1.clarified_share, c1.completed_share) == (0.5, 0.6667)
    assert c1.movement["yes"] == {"yes": 1, "not_now": 0, "no": 0, "unknown": 1}
    assert c1.movement["not_now"] == {"yes": 0, "not_now": 1, "no": 1, "unknown": 0}
    assert c1.movement["unknown"] == {"yes": 1, "not_now": 0, "no": 0, "unknown": 1}
    assert c1.movement["no"] == dict.fromkeys(ANSWERS, 0)
    assert sum(sum(row.values()) for row in c1.movement.values()) == 6
    # A small cohort: counts only, no shares.
    assert (c2.talents, c2.clarified, c2.clarified_share, c2.completed_share) == (1, 1, None, None)
    assert c2.movement["no"]["yes"] == 1
    assert (every.cohort_id, every.talents, every.clarified, every.unknown) == ("all", 7, 4, 2)
    assert every.clarified_share == round(4 / 7, 4)


def test_an_empty_cohort_has_zero_counts_and_no_shares_and_every_kpi_has_a_definition() -> None:
    empty = cohort_clarity("c-0", [])
    assert (empty.talents, empty.clarified, empty.unknown, empty.clarified_share) == (0, 0, 0, None)
    assert clarity_by_cohort([])[0].cohort_id == "all"
    fields = set(type(empty).model_fields) - {"cohort_id"}
    assert fields == set(DEFINITIONS)
    assert all(text.strip() for text in DEFINITIONS.values())
    assert MIN_BASE_FOR_SHARES == 5


def test_facts_come_from_a_journeys_state_and_its_status_document_alike() -> None:
    j = _evaluated("yes")
    j.send(_assess("evaluation", "no"), at(2027, 10, 12))
    expected = _f(j.s.cohort.cohort_id, True, "yes", "no")
    assert facts_of_state(j.s) == facts_of_status(status_of(j.s)) == expected
    # Earlier rules and journeys never enrolled do not count.
    assert facts_of_state(enrolled(rules_version=3).s) is None
    assert facts_of_status(status_of(enrolled(rules_version=3).s)) is None
    nominee = enrolled(**V4)
    assert facts_of_state(nominee.s) is not None
    j2 = enrolled(**V4)
    j2.send(c.WithdrawTalent(**SYSTEM, reason_ref=None), at(2027, 1, 12))
    assert facts_of_status(status_of(j2.s)) == _f(j2.s.cohort.cohort_id, False, None, None)


# -- mentor meetings as appointments ------------------------------------------------------------


def _propose(starts_at: Any, actor: c.Actor = LEADER) -> c.ProposeMentorMeeting:
    return c.ProposeMentorMeeting.model_validate({**actor, "starts_at": starts_at})


def test_the_leader_proposes_a_meeting_both_are_invited_and_the_leader_is_reminded_a_day_before() -> None:
    j = enrolled(**V4)
    advance(j, at(2027, 1, 12))

    proposed = _only(j.send(_propose(at(2027, 1, 20, 14)), at(2027, 1, 12)), "MentorMeetingProposed")
    same = j.send(_propose(at(2027, 1, 20, 14)), at(2027, 1, 13))

    assert [(ev.number, ev.due_at, ev.ends_at, ev.remind_at, ev.proposal) for ev in proposed] == [
        (1, at(2027, 1, 20, 14), at(2027, 1, 20, 15), at(2027, 1, 19, 14), 1)
    ]
    assert same == []
    mails = notifications_for(j.s, proposed[0])
    assert [(n.template, n.recipient_id) for n in mails] == [
        ("mentor_meeting_proposed", "p-talent"),
        ("mentor_meeting_proposed", "p-leader"),
    ]
    reminded = _only(advance(j, at(2027, 1, 19, 15)), "MentorMeetingReminded")
    assert [(ev.number, ev.reminded_at) for ev in reminded] == [(1, at(2027, 1, 19, 14))]
    assert [(n.template, n.recipient_id) for n in notifications_for(j.s, reminded[0])] == [
        ("mentor_meeting_reminder", "p-leader")
    ]
    assert status_of(j.s).appointment is not None
    # Logged as held on its day: the appointment is over, and the meeting counts.
    j.send(c.LogMentorMeeting(**LEADER, held_on=at(2027, 1, 20).date()), at(2027, 1, 20, 16))
    assert (j.s.appointment, j.s.meetings_held()) == (None, 1)
    assert fold(history(j)) == j.s


def test_proposing_another_time_moves_the_meeting_and_its_reminder() -> None:
    j = enrolled(**V4)
    advance(j, at(2027, 1, 12))
    j.send(_propose(at(2027, 1, 20, 14)), at(2027, 1, 12))
    moved = _only(j.send(_propose(at(2027, 1, 22, 9), COORD), at(2027, 1, 13)), "MentorMeetingProposed")

    assert [(ev.number, ev.due_at, ev.remind_at, ev.proposal) for ev in moved] == [
        (1, at(2027, 1, 22, 9), at(2027, 1, 21, 9), 2)
    ]
    assert _only(advance(j, at(2027, 1, 20, 15)), "MentorMeetingReminded") == []
    # A meeting proposed within the day is reminded half-way to it.
    j.send(_propose(at(2027, 1, 21, 12)), at(2027, 1, 21, 8))
    assert j.s.appointment is not None
    assert j.s.appointment.remind_at == at(2027, 1, 21, 10)


def test_only_the_nearest_leader_proposes_for_a_time_to_come_under_rules_4() -> None:
    j = enrolled(**V4)
    advance(j, at(2027, 1, 12))
    with pytest.raises(NotAllowed):
        j.send(_propose(at(2027, 1, 20), TALENT), at(2027, 1, 12))
    with pytest.raises(InvalidCommand):
        j.send(_propose(at(2027, 1, 11)), at(2027, 1, 12))
    with pytest.raises(InvalidCommand):
        j.send(_propose(at(2028, 1, 11)), at(2027, 1, 12))
    old = enrolled(rules_version=3)
    with pytest.raises(InvalidState) as refused:
        old.send(_propose(at(2027, 1, 20)), at(2027, 1, 12))
    assert refused.value.code == "not_in_rules"


def test_the_appointment_is_in_both_feeds_and_its_invitation_has_the_same_uid_and_sequence() -> None:
    j = enrolled(**V4)
    advance(j, at(2027, 1, 12))
    j.send(_propose(at(2027, 1, 20, 14)), at(2027, 1, 12))
    moved = _only(j.send(_propose(at(2027, 1, 21, 14)), at(2027, 1, 13)), "MentorMeetingProposed")[0]

    timeline = journey_history((n.occurred_at, n.event) for n in j.history)
    assert timeline is not None
    for role in ("talent", "nearest_leader"):
        feed = Calendar.from_ical(render_feed([FeedJourney(timeline, role)], language="en"))
        [entry] = [ev for ev in feed.walk("VEVENT") if "mentor_meeting_appointment" in str(ev["UID"])]
        assert str(entry["UID"]) == appointment_uid("j-1", 1)
        assert (entry.decoded("DTSTART"), entry.decoded("DTEND")) == (at(2027, 1, 21, 14), at(2027, 1, 21, 15))
        assert entry.decoded("SEQUENCE") == 1
    ics = invitation("j-1", moved.model_dump(mode="json"), at(2027, 1, 13), PROGRAMME, "da")
    sent = Calendar.from_ical(ics)
    assert str(sent["METHOD"]) == "REQUEST"
    [invite] = sent.walk("VEVENT")
    assert (str(invite["UID"]), invite.decoded("SEQUENCE")) == (appointment_uid("j-1", 1), 1)
    assert str(invite["SUMMARY"]) == "Mentormøde 1"
