"""A journey's lifecycle: nomination, approval, enrolment, start, withdrawal, and every refusal."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.journey import decide, next_wakeup
from domain.programme import Cohort
from tests.support import COORD, LEADER, SYSTEM, TALENT, Journey, nominate
from tests.unit.journeys import (
    APPROVAL_DUE,
    APPROVED_AT,
    COHORT,
    COHORT_START,
    EVALUATE_AT,
    HARD_CONVERSATION_DUE,
    HR,
    KICKOFF_DUE,
    MEETING_1_DUE,
    NEW_LEADER,
    NOMINATED_AT,
    OBSERVE_DUE,
    OTHER_TALENT,
    PROGRAMME,
    active,
    advance,
    at,
    enrolled,
    history,
    nominated,
    of,
    on_track,
    raised,
)


def ids() -> Callable[[], uuid.UUID]:
    counter = iter(range(1, 1000))
    return lambda: uuid.UUID(int=next(counter))


# -- nomination ----------------------------------------------------------------------------------


def test_a_nomination_starts_the_journey_with_an_approval_deadline_ten_working_days_out() -> None:
    j = Journey()

    events = j.send(nominate(PROGRAMME, COHORT), NOMINATED_AT)

    (ev,) = events
    assert isinstance(ev, e.TalentNominated)
    assert (ev.journey_id, ev.talent_id, ev.nearest_leader_id, ev.leaders_leader_id) == (
        "j-1",
        "p-talent",
        "p-leader",
        "p-boss",
    )
    assert ev.nominated_by == "p-leader"
    assert ev.approval_due == APPROVAL_DUE
    assert ev.approval_clock == "working_days"
    assert j.s.state == "nominated"
    assert j.s.version == 1
    assert j.s.leader_history == ("p-leader",)
    assert [(m.key, m.status, m.due_at) for m in j.s.milestones] == [("approval", "open", APPROVAL_DUE)]


def test_the_next_wakeup_of_a_nomination_is_its_approval_deadline() -> None:
    assert next_wakeup(nominated().s) == APPROVAL_DUE
    assert next_wakeup(None) is None


def test_an_hr_system_can_nominate_on_the_leaders_behalf() -> None:
    j = Journey()
    (ev,) = j.send(nominate(PROGRAMME, COHORT, actor_id="hr-1", actor_role="hr_system"), NOMINATED_AT)
    assert isinstance(ev, e.TalentNominated)
    assert ev.nominated_by == "hr-1"
    assert ev.nearest_leader_id == "p-leader"


def test_decide_mints_one_id_per_event_and_stamps_them_with_now() -> None:
    new = decide(None, nominate(PROGRAMME, COHORT), now=NOMINATED_AT, new_ids=ids())
    assert [(n.event_id, n.occurred_at) for n in new] == [(uuid.UUID(int=1), NOMINATED_AT)]


def test_decide_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(None, nominate(PROGRAMME, COHORT), now=datetime(2026, 12, 1, 10), new_ids=ids())


# -- approval and enrolment ----------------------------------------------------------------------


def test_approval_enrols_the_talent_with_a_milestone_plan_from_the_cohort_calendar() -> None:
    j = nominated()

    events = j.send(c.DecideNomination(**COORD, decision="approve", reason_ref="t-9"), APPROVED_AT)

    assert j.types(events) == ["NominationApproved", "MilestoneMet", "TalentEnrolled"]
    approved, met, enrolment = events
    assert isinstance(approved, e.NominationApproved)
    assert (approved.decided_by, approved.reason_ref) == ("p-coord", "t-9")
    assert isinstance(met, e.MilestoneMet)
    assert (met.milestone, met.late) == ("approval", False)
    assert isinstance(enrolment, e.TalentEnrolled)
    assert enrolment.starts_at == COHORT_START
    assert enrolment.evaluate_at == EVALUATE_AT
    plan = {m.key: m.due_at for m in enrolment.milestones}
    assert len(plan) == 7 + 4 + 5  # mandatory sessions (not the network day), tracks, meetings
    assert "session:network" not in plan
    assert plan["session:kickoff"] == KICKOFF_DUE
    assert plan["mentor_meeting:1"] == MEETING_1_DUE
    assert plan["track:observe-leader"] == OBSERVE_DUE
    assert plan["track:hard-conversation"] == HARD_CONVERSATION_DUE
    assert [m.due_at for m in enrolment.milestones] == sorted(plan.values())
    assert all(m.clock == "working_days" for m in enrolment.milestones)
    assert j.s.state == "enrolled"
    assert [t.status for t in j.s.tracks] == ["open"] * 4


def test_the_journey_starts_when_its_cohort_starts() -> None:
    j = enrolled()
    assert next_wakeup(j.s) == COHORT_START
    assert advance(j, at(2027, 1, 10, 23)) == []

    events = advance(j, at(2027, 1, 11, 8))

    assert events == [e.JourneyStarted(started_at=COHORT_START)]
    assert j.s.state == "active"
    assert next_wakeup(j.s) == KICKOFF_DUE


def test_an_approval_after_the_cohort_started_enrols_starts_and_slips_what_is_already_due() -> None:
    j = nominated()
    advance(j, APPROVAL_DUE - timedelta(hours=1))

    events = j.send(c.DecideNomination(**COORD, decision="approve"), at(2027, 1, 14))

    types = j.types(events)
    assert types[:2] == ["MilestoneSlipped", "EscalationRaised"]  # the approval deadline passed first
    assert types.index("TalentEnrolled") < types.index("JourneyStarted")
    assert of(events, "session:kickoff", "MilestoneSlipped")[0].slipped_at == KICKOFF_DUE  # type: ignore[union-attr]
    assert j.s.state == "active"


def test_a_rejection_needs_a_reason() -> None:
    j = nominated()
    with pytest.raises(DomainError) as info:
        j.send(c.DecideNomination(**COORD, decision="reject"), APPROVED_AT)
    assert info.value.code == "reason_required"
    assert info.value.kind == "invalid"
    assert j.s.state == "nominated"


def test_a_rejected_nomination_ends_the_journey_with_no_more_timers() -> None:
    j = nominated()

    events = j.send(c.DecideNomination(**COORD, decision="reject", reason_ref="t-2"), APPROVED_AT)

    assert j.types(events) == ["MilestoneMet", "NominationRejected"]
    assert j.s.state == "rejected"
    assert next_wakeup(j.s) is None
    assert advance(j, at(2028, 1, 1)) == []


def test_a_missed_approval_deadline_escalates_only_to_the_coordinator() -> None:
    j = nominated()

    events = advance(j, at(2027, 1, 5))

    slipped = of(events, "approval", "MilestoneSlipped")[0]
    assert isinstance(slipped, e.MilestoneSlipped)
    assert [(r.rung, r.recipient_role) for r in slipped.ladder] == [(4, "coordinator")]
    # Ten working days after Tue 15 Dec 2026: Christmas Eve counts, Christmas Day (Fri 25) does not.
    assert raised(events, "approval") == [(4, "coordinator", at(2026, 12, 30, 16))]
    (esc,) = of(events, "approval", "EscalationRaised")
    assert isinstance(esc, e.EscalationRaised)
    assert (esc.recipient_id, esc.at_risk) == ("p-coord", True)


def test_an_approval_ladder_without_a_coordinator_rung_uses_the_last_rung() -> None:
    rungs = ({"after": 0, "recipient": "talent"}, {"after": 2, "recipient": "leaders_leader"})
    programme = PROGRAMME.model_validate({**PROGRAMME.model_dump(), "escalation": {"rungs": rungs}})
    j = nominated(programme)

    events = advance(j, at(2027, 1, 5))

    assert [(rung, role) for rung, role, _ in raised(events, "approval")] == [(2, "leaders_leader")]


def test_a_late_approval_is_met_late_and_stops_the_approval_ladder() -> None:
    j = nominated()
    advance(j, APPROVAL_DUE + timedelta(hours=1))

    events = j.send(c.DecideNomination(**COORD, decision="approve"), at(2026, 12, 16))

    assert j.types(events) == ["NominationApproved", "MilestoneMet", "EscalationResolved", "TalentEnrolled"]
    assert of(events, "approval", "MilestoneMet")[0].late is True  # type: ignore[union-attr]
    assert of(events, "approval", "EscalationResolved")[0].resolution == "met"  # type: ignore[union-attr]
    assert raised(advance(j, at(2027, 1, 5)), "approval") == []


# -- withdrawal and erasure ----------------------------------------------------------------------


def test_withdrawal_stops_every_running_ladder_and_every_timer() -> None:
    j = active(at(2027, 1, 19))  # kickoff slipped on 13 Jan; its ladder is running
    assert j.s.milestone("session:kickoff").ladder_running  # type: ignore[union-attr]

    events = j.send(c.WithdrawTalent(**COORD, reason_ref="t-5"), at(2027, 1, 19, 11))

    assert j.types(events) == ["EscalationResolved", "TalentWithdrawn"]
    assert events[0] == e.EscalationResolved(
        milestone="session:kickoff", resolved_at=at(2027, 1, 19, 11), resolution="journey_ended"
    )
    assert j.s.state == "withdrawn"
    assert next_wakeup(j.s) is None
    assert advance(j, at(2027, 12, 1)) == []


def test_a_paused_journey_can_be_withdrawn() -> None:
    j = active()
    j.send(c.PauseJourney(**COORD), at(2027, 1, 12))

    events = j.send(c.WithdrawTalent(**HR), at(2027, 1, 20))

    assert j.types(events) == ["TalentWithdrawn"]
    assert (j.s.state, j.s.paused_at) == ("withdrawn", None)


def test_an_erasure_is_noted_once_even_on_a_closed_journey() -> None:
    j = nominated()
    j.send(c.DecideNomination(**COORD, decision="reject", reason_ref="t-1"), APPROVED_AT)

    first = j.send(c.RecordErasure(**COORD, person_id="p-talent"), at(2027, 2, 1))
    again = j.send(c.RecordErasure(**COORD, person_id="p-talent"), at(2027, 2, 2))

    assert first == [e.PersonalDataErased(person_id="p-talent", erased_by="p-coord")]
    assert again == []
    assert j.s.erased == ("p-talent",)


def test_commands_that_change_nothing_record_nothing() -> None:
    j = active(at(2027, 1, 11, 12))
    j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), at(2027, 1, 11, 13))
    version = j.s.version
    now = at(2027, 1, 11, 14)
    kickoff = j.s.cohort.sessions[0].starts_at

    assert j.send(c.RecordAttendance(**COORD, session_key="kickoff", status="attended"), now) == []
    assert j.send(c.RescheduleSession(**COORD, session_key="kickoff", starts_at=kickoff), now) == []
    assert j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader", leaders_leader_id="p-boss"), now) == []
    assert j.send(c.AdvanceClock(**SYSTEM), now) == []
    assert j.s.version == version


# -- refusals ------------------------------------------------------------------------------------

Setup = Callable[[], tuple[Journey, datetime]]


def _nominated() -> tuple[Journey, datetime]:
    return nominated(), APPROVED_AT


def _enrolled() -> tuple[Journey, datetime]:
    return enrolled(), at(2026, 12, 10)


def _active() -> tuple[Journey, datetime]:
    return active(at(2027, 1, 11, 12)), at(2027, 1, 11, 13)


def _paused() -> tuple[Journey, datetime]:
    j = active(at(2027, 1, 11, 12))
    j.send(c.PauseJourney(**COORD), at(2027, 1, 11, 13))
    return j, at(2027, 1, 11, 14)


def _paused_nomination() -> tuple[Journey, datetime]:
    j = nominated()
    j.send(c.PauseJourney(**COORD), APPROVED_AT)
    return j, at(2026, 12, 3)


def _withdrawn() -> tuple[Journey, datetime]:
    j = active(at(2027, 1, 11, 12))
    j.send(c.WithdrawTalent(**COORD), at(2027, 1, 11, 13))
    return j, at(2027, 1, 11, 14)


def _rejected() -> tuple[Journey, datetime]:
    j = nominated()
    j.send(c.DecideNomination(**COORD, decision="reject", reason_ref="t-1"), APPROVED_AT)
    return j, at(2026, 12, 3)


def _submitted() -> tuple[Journey, datetime]:
    j, now = _active()
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), now)
    return j, now


def _signed_off() -> tuple[Journey, datetime]:
    j, now = _submitted()
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), now)
    return j, now


def _returned() -> tuple[Journey, datetime]:
    j, now = _submitted()
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="return"), now)
    return j, now


def _met() -> tuple[Journey, datetime]:
    j, now = _active()
    j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 1, 11)), now)
    return j, now


def _completed() -> tuple[Journey, datetime]:
    j = enrolled()
    on_track(j)
    advance(j, EVALUATE_AT + timedelta(hours=1))
    assert j.s.state == "completed"
    return j, EVALUATE_AT + timedelta(days=1)


def _closed() -> tuple[Journey, datetime]:
    j, _ = _completed()
    advance(j, at(2030, 1, 1))
    assert j.s.state == "closed"
    return j, at(2030, 1, 2)


def _approve(actor: c.Actor) -> c.DecideNomination:
    return c.DecideNomination(**actor, decision="approve")


def _attend(key: str = "kickoff", actor: c.Actor = COORD) -> c.RecordAttendance:
    return c.RecordAttendance(**actor, session_key=key, status="attended")


def _submit(key: str = "observe-leader", actor: c.Actor = TALENT) -> c.SubmitTrack:
    return c.SubmitTrack(**actor, track_key=key)


def _sign(key: str = "observe-leader", actor: c.Actor = LEADER) -> c.SignOffTrack:
    return c.SignOffTrack(**actor, track_key=key, decision="approve")


def _meeting(held_on: date = date(2027, 1, 11), actor: c.Actor = LEADER) -> c.LogMentorMeeting:
    return c.LogMentorMeeting(**actor, held_on=held_on)


def _outcome(
    applied: bool = True, appointed: bool = False, on: date = date(2027, 10, 12), actor: c.Actor = HR
) -> c.RecordOutcome:
    return c.RecordOutcome(**actor, applied_for_leader_post=applied, appointed=appointed, on=on)


REFUSALS: list[tuple[str, Setup, Callable[[], c.Command], str]] = [
    # journey existence
    ("nominating twice", _nominated, lambda: nominate(PROGRAMME, COHORT), "journey_exists"),
    # state
    ("attendance before approval", _nominated, _attend, "invalid_state"),
    ("attendance on a withdrawn journey", _withdrawn, _attend, "invalid_state"),
    ("a track on a rejected journey", _rejected, _submit, "invalid_state"),
    ("a meeting on a completed journey", _completed, _meeting, "invalid_state"),
    ("withdrawing a completed journey", _completed, lambda: c.WithdrawTalent(**COORD), "invalid_state"),
    ("pausing a withdrawn journey", _withdrawn, lambda: c.PauseJourney(**COORD), "invalid_state"),
    ("pausing a completed journey", _completed, lambda: c.PauseJourney(**COORD), "invalid_state"),
    (
        "an override while active",
        _active,
        lambda: c.OverrideCompletion(**COORD, outcome="completed", reason_ref="t"),
        "invalid_state",
    ),
    ("an outcome while active", _active, _outcome, "invalid_state"),
    ("an outcome on a closed journey", _closed, _outcome, "invalid_state"),
    (
        "rescheduling on a completed journey",
        _completed,
        lambda: c.RescheduleSession(**COORD, session_key="kickoff", starts_at=at(2028, 1, 1)),
        "invalid_state",
    ),
    (
        "changing the leader of a closed journey",
        _closed,
        lambda: c.ChangeNearestLeader(**COORD, nearest_leader_id="p-x"),
        "invalid_state",
    ),
    ("deciding a withdrawn journey", _withdrawn, lambda: _approve(COORD), "invalid_state"),
    # paused
    ("attendance while paused", _paused, _attend, "journey_paused"),
    ("a track while paused", _paused, _submit, "journey_paused"),
    ("a meeting while paused", _paused, _meeting, "journey_paused"),
    ("pausing twice", _paused, lambda: c.PauseJourney(**COORD), "journey_paused"),
    ("deciding a paused nomination", _paused_nomination, lambda: _approve(COORD), "journey_paused"),
    ("resuming an active journey", _active, lambda: c.ResumeJourney(**COORD), "not_paused"),
    ("resuming a nomination", _nominated, lambda: c.ResumeJourney(**COORD), "not_paused"),
    # decisions
    ("approving twice", _enrolled, lambda: _approve(COORD), "already_decided"),
    ("approving a rejected nomination", _rejected, lambda: _approve(COORD), "already_decided"),
    (
        "rejecting without a reason",
        _nominated,
        lambda: c.DecideNomination(**COORD, decision="reject"),
        "reason_required",
    ),
    (
        "an override without a reason",
        _completed,
        lambda: c.OverrideCompletion(**COORD, outcome="not_completed"),
        "reason_required",
    ),
    # unknown things
    ("attendance at an unknown session", _active, lambda: _attend("party"), "unknown_session"),
    (
        "rescheduling an unknown session",
        _active,
        lambda: c.RescheduleSession(**COORD, session_key="party", starts_at=at(2027, 2, 1)),
        "unknown_session",
    ),
    ("submitting an unknown track", _active, lambda: _submit("juggling"), "unknown_track"),
    ("signing off an unknown track", _active, lambda: _sign("juggling"), "unknown_track"),
    # tracks
    ("submitting twice", _submitted, _submit, "already_submitted"),
    ("submitting a signed-off track", _signed_off, _submit, "already_submitted"),
    ("signing off an open track", _active, _sign, "not_submitted"),
    ("signing off a returned track", _returned, _sign, "not_submitted"),
    ("signing off twice", _signed_off, _sign, "already_signed_off"),
    # meetings and dates
    ("a meeting in the future", _active, lambda: _meeting(date(2027, 1, 12)), "invalid_date"),
    ("a meeting on a logged date", _met, lambda: _meeting(date(2027, 1, 11), actor=TALENT), "already_logged"),
    ("an outcome in the future", _completed, lambda: _outcome(on=date(2027, 12, 1)), "invalid_date"),
    (
        "an appointment without an application",
        _completed,
        lambda: _outcome(applied=False, appointed=True),
        "invalid_outcome",
    ),
    # people
    (
        "a talent as their own leader",
        _active,
        lambda: c.ChangeNearestLeader(**COORD, nearest_leader_id="p-talent"),
        "leader_is_talent",
    ),
    # roles
    ("a talent approving", _nominated, lambda: _approve(TALENT), "not_allowed"),
    ("a leader approving", _nominated, lambda: _approve(LEADER), "not_allowed"),
    ("a leader recording attendance", _active, lambda: _attend(actor=LEADER), "not_allowed"),
    ("another talent submitting", _active, lambda: _submit(actor=OTHER_TALENT), "not_allowed"),
    ("a leader submitting", _active, lambda: _submit(actor=LEADER), "not_allowed"),
    ("another leader signing off", _submitted, lambda: _sign(actor=NEW_LEADER), "not_allowed"),
    ("the talent signing off", _submitted, lambda: _sign(actor=TALENT), "not_allowed"),
    ("an hr system logging a meeting", _active, lambda: _meeting(actor=HR), "not_allowed"),
    ("another leader logging a meeting", _active, lambda: _meeting(actor=NEW_LEADER), "not_allowed"),
    ("an hr system pausing", _active, lambda: c.PauseJourney(**HR), "not_allowed"),
    ("a leader resuming", _paused, lambda: c.ResumeJourney(**LEADER), "not_allowed"),
    ("a leader withdrawing", _active, lambda: c.WithdrawTalent(**LEADER), "not_allowed"),
    (
        "a leader changing the leader",
        _active,
        lambda: c.ChangeNearestLeader(**LEADER, nearest_leader_id="p-x"),
        "not_allowed",
    ),
    (
        "an hr system rescheduling",
        _active,
        lambda: c.RescheduleSession(**HR, session_key="kickoff", starts_at=at(2027, 2, 1)),
        "not_allowed",
    ),
    (
        "a leader overriding",
        _completed,
        lambda: c.OverrideCompletion(**LEADER, outcome="not_completed", reason_ref="t"),
        "not_allowed",
    ),
    ("a leader recording an outcome", _completed, lambda: _outcome(actor=LEADER), "not_allowed"),
    ("another talent recording an outcome", _completed, lambda: _outcome(actor=OTHER_TALENT), "not_allowed"),
]

KINDS = {
    "journey_exists": "conflict",
    "invalid_state": "conflict",
    "journey_paused": "conflict",
    "not_paused": "conflict",
    "already_decided": "conflict",
    "already_submitted": "conflict",
    "not_submitted": "conflict",
    "already_signed_off": "conflict",
    "already_logged": "conflict",
    "reason_required": "invalid",
    "unknown_session": "invalid",
    "unknown_track": "invalid",
    "invalid_date": "invalid",
    "invalid_outcome": "invalid",
    "leader_is_talent": "invalid",
    "not_allowed": "forbidden",
}


@pytest.mark.parametrize(("setup", "command", "code"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_refused_command_records_nothing_and_says_why(
    setup: Setup, command: Callable[[], c.Command], code: str
) -> None:
    j, now = setup()
    before = j.s
    count = len(j.history)

    with pytest.raises(DomainError) as info:
        j.send(command(), now)

    assert info.value.code == code
    assert info.value.kind == KINDS[code]
    assert j.s == before
    assert len(j.history) == count


def test_a_command_for_a_journey_that_does_not_exist_is_refused() -> None:
    with pytest.raises(DomainError) as info:
        decide(None, c.DecideNomination(**COORD, decision="approve"), now=APPROVED_AT, new_ids=ids())
    assert info.value.code == "journey_not_found"


def test_a_talent_cannot_nominate() -> None:
    with pytest.raises(DomainError) as info:
        Journey().send(nominate(PROGRAMME, COHORT, actor_id="p-talent", actor_role="talent"), NOMINATED_AT)
    assert info.value.code == "not_allowed"


def test_a_talent_cannot_be_nominated_as_their_own_leader() -> None:
    with pytest.raises(DomainError) as info:
        Journey().send(nominate(PROGRAMME, COHORT, nearest_leader_id="p-talent"), NOMINATED_AT)
    assert info.value.code == "leader_is_talent"


@pytest.mark.parametrize(
    ("cohort", "message"),
    [
        (COHORT.model_copy(update={"sessions": COHORT.sessions[:-1]}), "sessions: not scheduled: closing"),
        (COHORT.model_copy(update={"programme_id": "other"}), "programme_id: cohort is for other v1"),
    ],
)
def test_a_nomination_to_a_cohort_that_does_not_fit_the_programme_is_refused(cohort: Cohort, message: str) -> None:
    with pytest.raises(DomainError) as info:
        Journey().send(nominate(PROGRAMME, cohort), NOMINATED_AT)
    assert info.value.code == "invalid_cohort"
    assert message in info.value.message


def test_a_refused_command_does_not_let_time_pass_either() -> None:
    j = nominated()

    with pytest.raises(DomainError):
        j.send(c.DecideNomination(**TALENT, decision="approve"), at(2027, 1, 5))

    assert j.s.milestone("approval").status == "open"  # type: ignore[union-attr]
    assert j.types(advance(j, at(2027, 1, 5)))[0] == "MilestoneSlipped"


def test_the_history_version_counts_every_event() -> None:
    j = active(at(2027, 2, 1))
    assert j.s.version == len(history(j))
