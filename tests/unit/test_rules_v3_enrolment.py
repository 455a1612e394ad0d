"""Rules 3 (PRODUCT §8.4) from nomination to attendance: the approval's own ladder and expiry, late
nominations, waived milestones, attendance bookkeeping and absences, a staffed cohort; journeys on
rules 1 and 2 keep their rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.templates import TEMPLATES, render
from domain import commands as c
from domain import events as e
from domain.calendar import Delay
from domain.errors import DomainError, ProgrammeInvalid
from domain.journey import JourneyState, next_wakeup
from domain.journey.clock import INCLUSIVE_WAKE
from domain.notifications import notifications_for
from domain.programme import Cohort, Programme
from domain.values import AtRiskReason, MilestoneKey
from tests.support import COORD, Journey, nominate, reference_cohort, reference_programme
from tests.unit.journeys import NOMINATED_AT, advance, at, enrolled, history, nominated, raised

V3: dict[str, Any] = {"rules_version": 3}
PROGRAMME = reference_programme()
COHORT = reference_cohort(PROGRAMME)
KICKOFF = next(s.starts_at for s in COHORT.sessions if s.key == "kickoff")
APPROVAL = MilestoneKey.approval()


def mails(state: JourneyState, event: e.Event) -> list[tuple[str, str, str, str | None]]:
    """(channel, template, role, recipient) of the notifications an event causes."""
    return [(n.channel, n.template, n.recipient_role, n.recipient_id) for n in notifications_for(state, event)]


def after(j: Journey, events: list[e.Event], event_type: str) -> list[tuple[JourneyState, e.Event]]:
    """The events of one type among `events` (the last batch), each with the state folded just after it."""
    from domain.journey import fold

    state = fold(history(j)[: len(history(j)) - len(events)])
    found = []
    for ev in events:
        state = fold([ev], state)
        if ev.type == event_type:
            assert state is not None
            found.append((state, ev))
    return found


def refused(j: Journey, command: c.Command, now: datetime) -> DomainError:
    """Send a command that must be refused; the journey must be exactly as before."""
    before, count = j.s, len(j.history)
    with pytest.raises(DomainError) as caught:
        j.send(command, now)
    assert j.s is before and len(j.history) == count
    return caught.value


# -- 4. the approval's own ladder, and expiry ---------------------------------------------------------


def test_an_overdue_approval_tells_the_coordinator_at_0_and_2_working_days_and_the_nominating_leader_at_0() -> None:
    j = nominated(**V3)
    due = j.s.approval_due
    cal = j.s.calendar

    events = advance(j, cal.add(due, Delay(working_days=3)))

    assert raised(events, APPROVAL) == [
        (1, "coordinator", due),
        (2, "nearest_leader", due),
        (3, "coordinator", cal.add(due, Delay(working_days=2))),
    ]
    assert not any(ev.at_risk for ev in events if isinstance(ev, e.EscalationRaised))
    assert j.s.at_risk() == () and j.s.state == "nominated"
    templates = [mails(s, ev)[0][:3] for s, ev in after(j, events, "EscalationRaised")]
    assert templates == [
        ("email", "approval_overdue", "coordinator"),
        ("email", "approval_pending_leader", "nearest_leader"),
        ("email", "approval_overdue", "coordinator"),
    ]


def test_an_undecided_nomination_expires_after_its_window_rejected_as_expired_and_the_leader_and_hr_are_told() -> None:
    j = nominated(**V3)
    expires = j.s.calendar.add(j.s.approval_due, PROGRAMME.approval.expires_after)
    assert next_wakeup(j.s) == j.s.approval_due + INCLUSIVE_WAKE  # rules 3: just after the deadline

    advance(j, expires - timedelta(seconds=1))
    assert j.s.state == "nominated" and next_wakeup(j.s) == expires + INCLUSIVE_WAKE
    events = advance(j, expires + timedelta(days=30))

    assert [ev.type for ev in events] == ["EscalationResolved", "NominationExpired"]
    expired = events[-1]
    assert isinstance(expired, e.NominationExpired)
    assert (expired.expired_at, expired.due_at) == (expires, j.s.approval_due)
    assert (j.s.state, j.s.expired_at) == ("rejected", expires)
    assert j.s.milestone(APPROVAL).resolved_at == expires  # type: ignore[union-attr]
    assert next_wakeup(j.s) is None
    assert mails(j.s, expired) == [
        ("email", "nomination_expired", "nearest_leader", "p-leader"),
        ("webhook", "NominationExpired", "hr_system", None),
    ]
    refused(j, c.DecideNomination(**COORD, decision="approve"), expires + timedelta(days=31))


def test_a_nomination_decided_before_it_expires_never_expires() -> None:
    j = nominated(**V3)
    late = j.s.calendar.add(j.s.approval_due, Delay(working_days=5))
    j.send(c.DecideNomination(**COORD, decision="approve"), late)
    events = advance(j, j.s.calendar.add(j.s.approval_due, Delay(working_days=40)))
    assert "NominationExpired" not in [ev.type for ev in history(j)]
    assert j.s.state == "active" and not [ev for ev in events if getattr(ev, "milestone", None) == APPROVAL]


def test_nominations_on_the_first_rules_never_expire_and_climb_their_old_ladder_to_at_risk() -> None:
    j = nominated()
    events = advance(j, j.s.calendar.add(j.s.approval_due, Delay(working_days=60)))
    assert j.s.state == "nominated" and "NominationExpired" not in [ev.type for ev in events]
    rungs = [ev for ev in events if isinstance(ev, e.EscalationRaised)]
    assert {ev.recipient_role for ev in rungs} == {"coordinator"} and rungs[-1].at_risk
    assert j.s.at_risk() == (AtRiskReason.escalated(APPROVAL),)


# -- 6. late nominations, waived milestones -----------------------------------------------------------


def test_a_nomination_after_the_first_mandatory_session_started_is_refused_as_cohort_closed() -> None:
    with pytest.raises(DomainError) as caught:
        Journey().send(nominate(PROGRAMME, COHORT, **V3), KICKOFF + timedelta(minutes=1))
    assert (caught.value.code, caught.value.kind) == ("cohort_closed", "conflict")
    # At the first session's start it is still open; under the first rules it never closes.
    assert Journey().send(nominate(PROGRAMME, COHORT, **V3), KICKOFF)[0].type == "TalentNominated"
    assert Journey().send(nominate(PROGRAMME, COHORT), at(2027, 6, 1))[0].type == "TalentNominated"


def test_enrolment_closes_counts_from_the_cohort_start_when_the_programme_says_so() -> None:
    programme = Programme.model_validate(PROGRAMME.model_dump() | {"enrolment": {"closes": 5}})
    cohort = reference_cohort(programme)
    closes = programme.working_calendar.add(cohort.start_instant(programme), Delay(working_days=5))
    assert cohort.enrolment_closes(programme) == closes
    assert Journey().send(nominate(programme, cohort, **V3), closes)[0].type == "TalentNominated"
    with pytest.raises(DomainError, match="closed"):
        Journey().send(nominate(programme, cohort, **V3), closes + timedelta(seconds=1))


#: The reference programme with nominations kept open for four months after their deadline.
PATIENT = Programme.model_validate(
    PROGRAMME.model_dump() | {"approval": PROGRAMME.approval.model_dump() | {"expires_after": {"working_days": 80}}}
)


def late_approval(approved_at: datetime, **overrides: Any) -> tuple[Journey, list[e.Event]]:
    """Nominated the day before the cohort starts, approved (late) `approved_at`."""
    j = Journey()
    j.send(nominate(PATIENT, reference_cohort(PATIENT), **overrides), KICKOFF - timedelta(days=1))
    return j, j.send(c.DecideNomination(**COORD, decision="approve"), approved_at)


def test_a_late_approval_waives_what_was_already_due_and_sets_off_no_storm() -> None:
    approved_at = at(2027, 3, 15)
    j, events = late_approval(approved_at, **V3)

    waived = {ev.milestone for ev in events if isinstance(ev, e.MilestoneWaived)}
    due_before = {m.key for m in j.s.milestones if m.kind != "approval" and m.due_at <= approved_at}
    assert waived == due_before and len(waived) >= 3
    assert all(j.s.milestone(k).status == "waived" for k in waived)  # type: ignore[union-attr]
    # The approval itself was late: its own ladder only (the coordinator, the leader); nothing else.
    rungs = [ev for ev in events if isinstance(ev, e.EscalationRaised)]
    assert {ev.milestone for ev in rungs} <= {APPROVAL}
    assert not [ev for ev in events if isinstance(ev, e.MilestoneSlipped) and ev.milestone != APPROVAL]
    # Later, the waived never slip; what falls due after the approval does.
    later = advance(j, at(2027, 6, 1))
    slipped = {ev.milestone for ev in later if isinstance(ev, e.MilestoneSlipped)}
    assert slipped and not slipped & waived


def test_a_late_approval_on_the_first_rules_still_slips_what_was_due_as_before() -> None:
    _, events = late_approval(at(2027, 3, 15))
    assert not [ev for ev in events if isinstance(ev, e.MilestoneWaived)]
    assert len({ev.milestone for ev in events if isinstance(ev, e.MilestoneSlipped)}) >= 4


def test_a_waived_session_leaves_the_attendance_base_unless_the_talent_attended_it_after_all() -> None:
    j, _ = late_approval(at(2027, 3, 15), **V3)
    mandatory = len(PATIENT.mandatory_sessions())
    waived = [m.ref for m in j.s.milestones if m.kind == "session" and m.status == "waived"]
    share = PATIENT.completion.min_attendance_share
    _, required = j.s.sessions_counts()
    assert required == -int(-(share * (mandatory - len(waived)) - 1e-9) // 1)
    events = j.send(c.RecordAttendance(**COORD, session_key=waived[0], status="attended"), at(2027, 3, 15, 10, 1))
    assert [ev.type for ev in events] == ["SessionAttendanceRecorded"]
    assert j.s.milestone(MilestoneKey.session(waived[0])).status == "waived"  # type: ignore[union-attr]
    assert j.s.sessions_counts()[0] == 1
    absent = j.send(c.RecordAttendance(**COORD, session_key=waived[1], status="absent"), at(2027, 3, 15, 10, 1))
    assert [ev.type for ev in absent] == ["SessionAttendanceRecorded"]


# -- 5. attendance bookkeeping is the coordinator's ---------------------------------------------------


def test_an_unrecorded_attendance_escalates_to_the_coordinator_only_and_never_marks_the_journey_at_risk() -> None:
    j = enrolled(**V3)
    kickoff = MilestoneKey.session("kickoff")
    events = advance(j, at(2027, 2, 5))
    rungs = raised(events, kickoff)
    assert rungs and {role for _, role, _ in rungs} == {"coordinator"}
    assert AtRiskReason.escalated(kickoff) not in j.s.at_risk()
    state, rung = after(j, events, "EscalationRaised")[0]
    assert mails(state, rung) == [("email", "attendance_unrecorded", "coordinator", "p-coord")]


def test_an_unrecorded_attendance_on_the_first_rules_climbs_the_whole_ladder_as_before() -> None:
    j = enrolled()
    events = advance(j, at(2027, 2, 5))
    roles = {role for _, role, _ in raised(events, MilestoneKey.session("kickoff"))}
    assert {"talent", "nearest_leader"} <= roles


def test_an_absence_from_a_mandatory_session_tells_the_talent_and_the_nearest_leader() -> None:
    j = enrolled(**V3)
    events = j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), at(2027, 1, 11, 15))
    state, recorded = after(j, events, "SessionAttendanceRecorded")[0]
    assert mails(state, recorded) == [
        ("email", "absence", "talent", "p-talent"),
        ("email", "absence_leader", "nearest_leader", "p-leader"),
    ]
    old = enrolled()
    events = old.send(c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), at(2027, 1, 11, 15))
    state, recorded = after(old, events, "SessionAttendanceRecorded")[0]
    assert mails(state, recorded) == []


def test_absences_mark_the_journey_at_risk_once_the_attendance_criterion_can_no_longer_be_met() -> None:
    j = enrolled(**V3)
    sessions = [s for s in j.s.cohort.sessions if s.key in {x.key for x in PROGRAMME.mandatory_sessions()}]
    _, required = j.s.sessions_counts()
    allowed = len(sessions) - required
    for s in sessions[:allowed]:
        j.send(c.RecordAttendance(**COORD, session_key=s.key, status="absent"), s.starts_at + timedelta(hours=3))
        assert AtRiskReason.attendance_below_minimum() not in j.s.at_risk()
    s = sessions[allowed]
    j.send(c.RecordAttendance(**COORD, session_key=s.key, status="absent"), s.starts_at + timedelta(hours=3))
    assert AtRiskReason.attendance_below_minimum() in j.s.at_risk()


# -- 13c. attendance is known once a session started --------------------------------------------------


def test_attended_cannot_be_recorded_for_a_session_that_has_not_started() -> None:
    j = enrolled(**V3)
    error = refused(j, c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), KICKOFF - timedelta(1))
    assert (error.code, error.kind) == ("session_not_started", "conflict")
    refused(j, c.RecordAttendance(**COORD, session_key="kickoff", status="absent"), KICKOFF - timedelta(minutes=1))
    # Leave known ahead is recorded ahead; once the session started, attendance is recorded.
    assert j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="excused"), KICKOFF - timedelta(1))
    assert j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), KICKOFF)
    old = enrolled()
    assert old.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), KICKOFF - timedelta(1))


# -- 13d. a coordinator rung always reaches a coordinator ---------------------------------------------


def test_a_cohort_without_a_coordinator_is_refused_when_a_ladder_reaches_the_coordinator() -> None:
    cohort = reference_cohort(PROGRAMME, coordinator_id=None)
    with pytest.raises(ProgrammeInvalid) as caught:
        cohort.check_staffed(PROGRAMME, 3)
    assert [x.split(":")[0] for x in caught.value.errors] == ["coordinator_id"]
    reference_cohort(PROGRAMME).check_staffed(PROGRAMME, 3)
    with pytest.raises(DomainError) as refusal:
        Journey().send(nominate(PROGRAMME, cohort, **V3), NOMINATED_AT)
    assert refusal.value.code == "invalid_cohort" and "coordinator_id" in refusal.value.message
    assert Journey().send(nominate(PROGRAMME, cohort), NOMINATED_AT)[0].type == "TalentNominated"


def test_a_programme_whose_ladders_never_reach_a_coordinator_needs_none() -> None:
    programme = no_coordinator_programme()
    cohort = reference_cohort(programme, coordinator_id=None)
    cohort.check_staffed(programme, 3)
    assert Journey().send(nominate(programme, cohort, **V3), NOMINATED_AT)[0].type == "TalentNominated"


def no_coordinator_programme() -> Programme:
    data = PROGRAMME.model_dump(mode="json")
    data["sessions"] = [{**s, "mandatory": False} for s in data["sessions"]]
    data["escalation"] = {"rungs": [{"after": 0, "recipient": "talent"}, {"after": 2, "recipient": "nearest_leader"}]}
    data["approval"] = {**data["approval"], "escalation": {"rungs": [{"after": 0, "recipient": "nearest_leader"}]}}
    data["completion"] = {**data["completion"], "min_attendance_share": 0}
    return Programme.model_validate(data)


def test_the_approval_fields_are_validated_naming_the_field() -> None:
    data = PROGRAMME.model_dump(mode="json")
    data["approval"] = {
        **data["approval"],
        "expires_after": 1,
        "escalation": {"rungs": [{"after": 3, "recipient": "coordinator"}]},
    }
    with pytest.raises(ValueError, match=r"approval\.expires_after"):
        Programme.model_validate(data)


def test_every_new_template_has_a_danish_and_an_english_text() -> None:
    for name in (
        "nomination_expired",
        "approval_overdue",
        "approval_pending_leader",
        "attendance_unrecorded",
        "absence",
        "absence_leader",
    ):
        for language in ("da", "en"):
            assert (name, language) in TEMPLATES
            rendered = render(
                name, language, recipient="R", talent="T", programme="P", milestone="M", due="D", link="L"
            )
            assert "$" not in rendered.subject + rendered.body


# -- properties -----------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    approve_after=st.integers(min_value=0, max_value=24 * 120),
    then=st.integers(min_value=0, max_value=24 * 200),
)
def test_property_no_rung_fires_for_a_milestone_due_before_enrolment(approve_after: int, then: int) -> None:
    j = Journey()
    start = KICKOFF - timedelta(days=1)
    j.send(nominate(PROGRAMME, COHORT, **V3), start)
    approved_at = start + timedelta(hours=approve_after)
    advance(j, approved_at)
    if j.s.state == "rejected":  # expired before the approval came
        assert j.s.expired_at is not None and j.s.expired_at <= approved_at
        return
    j.send(c.DecideNomination(**COORD, decision="approve"), approved_at)
    advance(j, approved_at + timedelta(hours=then))
    due = {m.key: m.due_at for m in j.s.milestones}
    for ev in history(j):
        if isinstance(ev, e.EscalationRaised | e.MilestoneSlipped) and ev.milestone != APPROVAL:
            assert due[ev.milestone] > approved_at, ev


roles = st.sampled_from(["talent", "nearest_leader", "leaders_leader", "coordinator"])


@PROPERTY
@given(
    ladder=st.lists(roles, min_size=1, max_size=4),
    approval=st.lists(roles, min_size=1, max_size=3),
    mandatory=st.booleans(),
    coordinator=st.sampled_from([None, "p-coord"]),
)
def test_property_every_rung_reaches_someone_or_the_cohort_is_refused(
    ladder: list[str], approval: list[str], mandatory: bool, coordinator: str | None
) -> None:
    data = PROGRAMME.model_dump(mode="json")
    data["escalation"] = {"rungs": [{"after": i, "recipient": r} for i, r in enumerate(ladder)]}
    data["approval"] = {
        **data["approval"],
        "escalation": {"rungs": [{"after": i, "recipient": r} for i, r in enumerate(approval)]},
    }
    data["sessions"] = [{**s, "mandatory": mandatory} for s in data["sessions"]]
    if not mandatory:
        data["completion"] = {**data["completion"], "min_attendance_share": 0}
    programme = Programme.model_validate(data)
    cohort: Cohort = reference_cohort(programme, coordinator_id=coordinator)
    try:
        cohort.check_staffed(programme, 3)
    except ProgrammeInvalid:
        assert coordinator is None
        return
    # Nothing is ever done: every milestone slips and climbs its whole ladder.
    j = Journey()
    j.send(nominate(programme, cohort, **V3), NOMINATED_AT)
    advance(j, j.s.calendar.add(j.s.approval_due, Delay(working_days=5)))
    j.send(c.DecideNomination(**COORD, decision="approve"), at(2026, 12, 30))
    advance(j, at(2027, 12, 31))
    rungs = [ev for ev in history(j) if isinstance(ev, e.EscalationRaised)]
    assert rungs
    assert all(ev.recipient_id is not None for ev in rungs), [(ev.milestone, ev.recipient_role) for ev in rungs]
