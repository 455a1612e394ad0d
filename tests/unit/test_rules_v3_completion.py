"""Rules 3 (PRODUCT §8.4) at the journey's end: the sign-off grace, leader changes, outcomes after the close,
the KPIs' unknown outcome and the HR webhooks of escalations; journeys on rules 1 and 2 keep their rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.journey import JourneyState, next_wakeup
from domain.journey.clock import INCLUSIVE_WAKE
from domain.kpis import JourneyFacts, OutcomeFact, compute_kpis, facts_from_events
from domain.notifications import notifications_for
from domain.status import status_of
from tests.support import COORD, LEADER, TALENT, Journey
from tests.unit.journeys import HR, active, advance, at, enrolled, history

V3: dict[str, Any] = {"rules_version": 3}
V2: dict[str, Any] = {"rules_version": 2}
LAST = "hard-conversation"


def all_but_the_last_sign_off(j: Journey, *, skip_meeting: str | None = None) -> None:
    """Attend, hold every meeting (but `skip_meeting`) and pass every track on time, but leave the
    last track submitted by the talent and never signed off."""
    agenda: list[tuple[datetime, c.Command]] = []
    for session in j.s.cohort.sessions:
        agenda.append(
            (
                session.starts_at + timedelta(hours=3),
                c.RecordAttendance(**COORD, session_key=session.key, status="attended"),
            )
        )
    for m in j.s.milestones:
        if m.kind == "mentor_meeting" and m.key != skip_meeting:
            day = m.due_at - timedelta(days=1)
            agenda.append((day, c.LogMentorMeeting(**COORD, held_on=day.date())))
        elif m.kind == "track":
            day = m.due_at - timedelta(days=2)
            agenda.append((day, c.SubmitTrack(**TALENT, track_key=m.ref)))
            if m.ref != LAST:
                agenda.append((day + timedelta(hours=1), c.SignOffTrack(**LEADER, track_key=m.ref, decision="approve")))
    for when, command in sorted(agenda, key=lambda x: x[0]):
        j.send(command, when)


def at_the_end(**overrides: Any) -> tuple[Journey, datetime]:
    """A journey at its programme's end, its last track awaiting the leader's sign-off."""
    j = enrolled(**overrides)
    all_but_the_last_sign_off(j)
    end = j.s.evaluate_at
    assert end is not None and j.s.track(LAST) is not None and j.s.track(LAST).status == "submitted"  # type: ignore[union-attr]
    advance(j, end)
    return j, end


def sign_off(j: Journey, now: datetime, decision: str = "approve") -> list[e.Event]:
    return j.send(c.SignOffTrack.model_validate({**LEADER, "track_key": LAST, "decision": decision}), now)


def refused(j: Journey, command: c.Command, now: datetime) -> DomainError:
    before, count = j.s, len(j.history)
    with pytest.raises(DomainError) as caught:
        j.send(command, now)
    assert j.s is before and len(j.history) == count
    return caught.value


# -- 8. the sign-off grace ---------------------------------------------------------------------------


def test_evaluation_waits_for_a_track_awaiting_sign_off_and_a_late_sign_off_in_the_grace_counts() -> None:
    j, end = at_the_end(**V3)

    deferred = [ev for ev in history(j) if isinstance(ev, e.EvaluationDeferred)]
    grace_end = j.s.calendar.add(end, j.s.programme.completion.signoff_grace)
    assert deferred == [e.EvaluationDeferred(ended_at=end, due_at=grace_end, awaiting=(LAST,))]
    assert (j.s.state, j.s.completion, next_wakeup(j.s)) == ("active", None, grace_end + INCLUSIVE_WAKE)

    later = end + timedelta(days=1)
    events = sign_off(j, later)

    completed = [ev for ev in events if isinstance(ev, e.ProgrammeCompleted)]
    assert len(completed) == 1 and completed[0].evaluated_at == later and completed[0].tracks_done == 4
    assert (j.s.state, j.s.completion) == ("completed", "completed")
    assert j.s.milestone(f"track:{LAST}").status == "met"  # type: ignore[union-attr]


def test_under_rules_2_a_track_awaiting_sign_off_at_evaluation_fails_the_talent_and_the_sign_off_is_refused() -> None:
    j, end = at_the_end(**V2)

    evaluated = [ev for ev in history(j) if isinstance(ev, e.ProgrammeNotCompleted)]
    assert len(evaluated) == 1 and evaluated[0].evaluated_at == end and evaluated[0].reasons == ("tracks_missing",)
    assert not any(isinstance(ev, e.EvaluationDeferred) for ev in history(j))
    assert refused(j, c.SignOffTrack(**LEADER, track_key=LAST, decision="approve"), end + timedelta(days=1)).code == (
        "invalid_state"
    )


def test_without_the_sign_off_the_evaluation_happens_when_the_grace_ends() -> None:
    j, end = at_the_end(**V3)
    grace_end = j.s.evaluate_at  # the clock wakes just after it (rules 3: inclusive deadlines)
    assert grace_end is not None and grace_end > end

    assert advance(j, grace_end - timedelta(seconds=1)) == []
    events = advance(j, grace_end)

    evaluated = [ev for ev in events if isinstance(ev, e.ProgrammeNotCompleted)]
    assert len(evaluated) == 1 and evaluated[0].evaluated_at == grace_end
    assert evaluated[0].reasons == ("tracks_missing",)
    assert refused(j, c.SignOffTrack(**LEADER, track_key=LAST, decision="approve"), grace_end + timedelta(hours=1))


def test_a_track_returned_in_the_grace_ends_the_wait_and_is_not_done() -> None:
    j, end = at_the_end(**V3)

    events = sign_off(j, end + timedelta(days=2), decision="return")

    evaluated = [ev for ev in events if isinstance(ev, e.ProgrammeNotCompleted)]
    assert len(evaluated) == 1 and evaluated[0].reasons == ("tracks_missing",)


def test_in_the_grace_nothing_but_the_awaited_sign_offs_is_recorded() -> None:
    j, end = at_the_end(**V3)
    now = end + timedelta(hours=20)

    assert refused(j, c.LogMentorMeeting(**LEADER, held_on=now.date()), now).code == "evaluation_pending"
    held = j.s.meetings[0].held_on
    assert refused(j, c.ConfirmMentorMeeting(**LEADER, held_on=held), now).code == "evaluation_pending"


def test_the_grace_stops_every_ladder_but_the_awaited_tracks() -> None:
    j = enrolled(**V3)
    all_but_the_last_sign_off(j, skip_meeting="mentor_meeting:5")
    end = j.s.evaluate_at
    assert end is not None
    advance(j, end - timedelta(seconds=1))
    # The meeting never held and the track never signed off: both slipped and climbing.
    assert {m.key for m in j.s.milestones if m.ladder_running} == {"mentor_meeting:5", f"track:{LAST}"}

    events = advance(j, end)

    stopped = [(ev.milestone, ev.resolved_at, ev.resolution) for ev in events if isinstance(ev, e.EscalationResolved)]
    assert stopped == [("mentor_meeting:5", end, "journey_ended")]
    assert {m.key for m in j.s.milestones if m.ladder_running} == {f"track:{LAST}"}


def test_the_leader_is_mailed_that_the_evaluation_waits_for_their_sign_off() -> None:
    j, _ = at_the_end(**V3)
    deferred = next(ev for ev in history(j) if isinstance(ev, e.EvaluationDeferred))

    notes = [(n.channel, n.template, n.recipient_role, n.recipient_id) for n in notifications_for(j.s, deferred)]

    assert notes == [("email", "signoff_awaited", "nearest_leader", "p-leader")]


# -- 10. a leader change keeps the leader's leader ----------------------------------------------------


def change(leaders_leader: str | None = None) -> c.ChangeNearestLeader:
    return c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2", leaders_leader_id=leaders_leader)


@pytest.mark.parametrize(("rules", "kept"), [(V3, "p-boss"), (V2, None), ({}, None)])
def test_a_leader_change_without_a_leaders_leader_keeps_it_from_rules_3(
    rules: dict[str, Any], kept: str | None
) -> None:
    j = active(**rules)

    events = j.send(change(), at(2027, 2, 1))

    assert [ev.leaders_leader_id for ev in events if isinstance(ev, e.NearestLeaderChanged)] == [kept]
    assert (j.s.nearest_leader_id, j.s.leaders_leader_id) == ("p-leader-2", kept)


def test_a_leader_change_naming_a_new_leaders_leader_sets_it() -> None:
    j = active(**V3)

    j.send(change("p-boss-2"), at(2027, 2, 1))

    assert (j.s.nearest_leader_id, j.s.leaders_leader_id) == ("p-leader-2", "p-boss-2")


def test_a_leader_change_to_the_same_people_changes_nothing() -> None:
    j = active(**V3)

    same = c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader", leaders_leader_id=None)
    assert not [ev for ev in j.send(same, at(2027, 2, 1)) if isinstance(ev, e.NearestLeaderChanged)]
    assert (j.s.nearest_leader_id, j.s.leaders_leader_id) == ("p-leader", "p-boss")


def notes_of_change(rules: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    j = active(**rules)
    events = j.send(change(), at(2027, 2, 1))
    changed = next(ev for ev in events if isinstance(ev, e.NearestLeaderChanged))
    return [(n.channel, n.template, n.recipient_role, n.recipient_id) for n in notifications_for(j.s, changed)]


def test_a_leader_change_tells_the_talent_the_former_and_the_new_leader() -> None:
    assert notes_of_change(V3) == [
        ("email", "welcome_leader", "nearest_leader", "p-leader-2"),
        ("email", "leader_changed", "talent", "p-talent"),
        ("email", "leader_changed_former", "nearest_leader", "p-leader"),
        ("webhook", "NearestLeaderChanged", "hr_system", None),
    ]


def test_under_rules_2_a_leader_change_tells_only_the_new_leader() -> None:
    assert notes_of_change(V2) == [
        ("email", "welcome_leader", "nearest_leader", "p-leader-2"),
        ("webhook", "NearestLeaderChanged", "hr_system", None),
    ]


# -- 11. outcomes after the close -------------------------------------------------------------------


def closed(**rules: Any) -> Journey:
    j = enrolled(**rules)
    all_but_the_last_sign_off(j)
    end = j.s.evaluate_at
    assert end is not None
    advance(j, end)
    if j.s.state == "active":  # rules 3: the evaluation waits for the sign-off
        sign_off(j, end + timedelta(hours=1))
    for _ in range(10):
        wake = next_wakeup(j.s)
        if wake is None:
            break
        advance(j, wake)
    assert j.s.state == "closed"
    return j


def outcome(on: date, *, applied: bool = True, appointed: bool = True) -> c.RecordOutcome:
    return c.RecordOutcome(**HR, applied_for_leader_post=applied, appointed=appointed, on=on)


def test_an_outcome_after_the_journey_closed_is_appended_without_reopening_it() -> None:
    j = closed(**V3)
    closed_at = j.s.closed_at
    assert closed_at is not None
    now = closed_at + timedelta(days=60)

    events = j.send(outcome(now.date() - timedelta(days=3)), now)

    assert [ev.type for ev in events] == ["OutcomeRecorded"]
    assert (j.s.state, j.s.closed_at, next_wakeup(j.s)) == ("closed", closed_at, None)
    assert j.s.outcomes[-1].appointed and j.s.outcomes[-1].months == 24
    assert j.send(outcome(now.date() - timedelta(days=3)), now + timedelta(hours=1)) == []  # the same answer once


def test_under_rules_2_an_outcome_after_the_close_is_refused() -> None:
    j = closed(**V2)
    closed_at = j.s.closed_at
    assert closed_at is not None

    assert refused(j, outcome(closed_at.date()), closed_at + timedelta(days=60)).code == "invalid_state"


def test_an_outcome_is_still_checked_after_the_close() -> None:
    j = closed(**V3)
    assert j.s.closed_at is not None
    now = j.s.closed_at + timedelta(days=1)

    assert refused(j, outcome(now.date() + timedelta(days=1)), now).code == "invalid_date"
    assert refused(j, outcome(now.date(), applied=False), now).code == "invalid_outcome"
    talent = c.RecordOutcome(**LEADER, applied_for_leader_post=True, appointed=False, on=now.date())
    assert refused(j, talent, now).kind == "forbidden"


def test_a_withdrawn_journey_takes_no_outcome() -> None:
    j = active(**V3)
    j.send(c.WithdrawTalent(**COORD), at(2027, 2, 1))

    assert refused(j, outcome(date(2027, 2, 1)), at(2027, 2, 2)).code == "invalid_state"


# -- 11. the KPIs tell unknown from no ----------------------------------------------------------------


def completed_facts(state: JourneyState, *outcomes: OutcomeFact) -> JourneyFacts:
    status = status_of(state)
    return JourneyFacts(status=status, enrolled=True, started=True, evaluated_at=state.evaluated_at, outcomes=outcomes)


def test_the_kpis_tell_no_answer_from_did_not_apply() -> None:
    j = closed(**V3)
    evaluated = j.s.evaluated_at
    assert evaluated is not None and j.s.completion == "completed"
    six = evaluated.date() + timedelta(days=150)
    silent = completed_facts(j.s)
    said_no = completed_facts(j.s, OutcomeFact(applied_for_leader_post=False, appointed=False, on=six, months=6))
    applied = completed_facts(j.s, OutcomeFact(applied_for_leader_post=True, appointed=False, on=six, months=6))

    kpis = compute_kpis([silent, said_no, applied], as_of=evaluated + timedelta(days=800))

    by_months = {h.months: (h.eligible, h.applied, h.not_applied, h.unknown) for h in kpis.outcomes}
    # At 6 months one said no and one applied; at 12 and 24 the "no" given at 6 months says nothing.
    assert by_months == {6: (3, 1, 1, 1), 12: (3, 1, 0, 2), 24: (3, 1, 0, 2)}


def test_a_no_given_at_a_later_follow_up_answers_the_earlier_horizons() -> None:
    j = closed(**V3)
    evaluated = j.s.evaluated_at
    assert evaluated is not None
    late_no = OutcomeFact(
        applied_for_leader_post=False, appointed=False, on=evaluated.date() + timedelta(days=740), months=24
    )

    kpis = compute_kpis([completed_facts(j.s, late_no)], as_of=evaluated + timedelta(days=800))

    assert [(h.months, h.not_applied, h.unknown) for h in kpis.outcomes] == [(6, 1, 0), (12, 1, 0), (24, 1, 0)]


# -- 12. HR hears that a risk was taken in hand or cleared --------------------------------------------


@pytest.mark.parametrize("rules", [V3, V2, {}])
def test_hr_hears_an_escalation_acknowledged_and_resolved_under_every_rules_version(rules: dict[str, Any]) -> None:
    j = active(at(2027, 3, 23), **rules)
    key = next(m.key for m in j.s.milestones if m.ladder_running)
    ack = j.send(c.AcknowledgeEscalation(**COORD, milestone=key), at(2027, 3, 23, 11))
    res = j.send(c.ResolveEscalation(**COORD, milestone=key), at(2027, 3, 23, 12))

    for event in (*ack, *res):
        notes = notifications_for(j.s, event)
        assert ("webhook", event.type) in [(n.channel, n.template) for n in notes]


# -- the refined states in the KPIs -----------------------------------------------------------------


def test_waived_milestones_and_expired_nominations_are_counted_apart_and_left_out_of_the_rates() -> None:
    from tests.unit.test_kpis import AS_OF, _journey, _kind

    waived = _journey(
        "j-w",
        milestones=(("session:kickoff", "session", "waived"), ("session:lab", "session", "met")),
    )
    expired = _journey("j-x", "rejected").model_copy(update={"expired": True})
    rejected = _journey("j-r", "rejected")

    kpis = compute_kpis([waived, expired, rejected], as_of=AS_OF)

    session = _kind(kpis, "session")
    assert (session["waived"], session["on_time"], session["due"], session["on_time_rate"]) == (1, 1, 1, 1.0)
    assert (kpis.rejected, kpis.expired) == (2, 1)
    assert facts_from_events(rejected.status, [e.NominationExpired(expired_at=AS_OF, due_at=AS_OF)]).expired
    decided = e.NominationRejected(decided_by="p-coord", decided_at=AS_OF)
    assert not facts_from_events(rejected.status, [decided]).expired
