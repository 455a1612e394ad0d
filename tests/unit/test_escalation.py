"""Slipped milestones, their escalation ladders, and pausing a journey's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.journey import next_wakeup
from domain.programme import Role
from domain.status import status_of
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
    reference_cohort,
)
from tests.unit.journeys import (
    APPROVAL_DUE,
    EVALUATE_AT,
    HR,
    LEAD_MEETING_DUE,
    LEADING_OTHERS_DUE,
    OBSERVE_DUE,
    PROGRAMME,
    active,
    advance,
    at,
    enrolled,
    history,
    nominated,
    of,
    raised,
)

TRACK = "track:observe-leader"


def test_a_milestone_slips_at_its_deadline_and_not_a_moment_before() -> None:
    j = active(at(2027, 3, 1))

    assert of(advance(j, OBSERVE_DUE - timedelta(seconds=1)), TRACK) == []
    events = advance(j, OBSERVE_DUE)

    slipped = of(events, TRACK, "MilestoneSlipped")
    assert slipped == [
        e.MilestoneSlipped(
            milestone=TRACK,
            due_at=OBSERVE_DUE,
            slipped_at=OBSERVE_DUE,
            ladder=(
                e.RungPlan(rung=1, recipient_role="talent", due_at=OBSERVE_DUE, clock="working_days"),
                e.RungPlan(rung=2, recipient_role="nearest_leader", due_at=at(2027, 3, 11, 16), clock="working_days"),
                e.RungPlan(rung=3, recipient_role="leaders_leader", due_at=at(2027, 3, 16, 16), clock="working_days"),
                e.RungPlan(rung=4, recipient_role="coordinator", due_at=at(2027, 3, 22, 16), clock="working_days"),
            ),
        )
    ]


def test_the_ladder_climbs_rung_by_rung_after_0_3_6_and_10_working_days() -> None:
    j = active(at(2027, 3, 1))
    steps: list[tuple[datetime, int, Role, str]] = [
        (OBSERVE_DUE, 1, "talent", "p-talent"),
        (at(2027, 3, 11, 16), 2, "nearest_leader", "p-leader"),
        (at(2027, 3, 16, 16), 3, "leaders_leader", "p-boss"),
        (at(2027, 3, 22, 16), 4, "coordinator", "p-coord"),
    ]
    for due, rung, role, person in steps:
        assert raised(advance(j, due - timedelta(minutes=1)), TRACK) == []

        (ev,) = of(advance(j, due), TRACK, "EscalationRaised")

        assert ev == e.EscalationRaised(
            milestone=TRACK, rung=rung, recipient_role=role, recipient_id=person, raised_at=due, at_risk=rung == 4
        )


def test_the_last_rung_marks_the_journey_at_risk() -> None:
    j = active(at(2027, 3, 22, 15))
    assert f"escalated:{TRACK}" not in j.s.at_risk_reasons()

    advance(j, at(2027, 3, 22, 16))

    assert f"escalated:{TRACK}" in j.s.at_risk_reasons()


def test_no_rung_fires_twice_however_often_the_clock_is_advanced() -> None:
    j = active(at(2027, 3, 1))
    for day in range(8, 32):
        advance(j, at(2027, 3, day, 16))
        advance(j, at(2027, 3, day, 16))

    rungs = [r for r, _, _ in raised(history(j), TRACK)]
    assert rungs == [1, 2, 3, 4]
    assert j.s.milestone(TRACK).raised == (1, 2, 3, 4)  # type: ignore[union-attr]


def test_time_driven_events_carry_their_own_instants_not_the_time_of_the_advance() -> None:
    j = active(at(2027, 3, 1))

    events = advance(j, at(2027, 3, 31))

    assert raised(events, TRACK) == [
        (1, "talent", OBSERVE_DUE),
        (2, "nearest_leader", at(2027, 3, 11, 16)),
        (3, "leaders_leader", at(2027, 3, 16, 16)),
        (4, "coordinator", at(2027, 3, 22, 16)),
    ]


def test_meeting_a_slipped_milestone_late_resolves_the_ladder_and_no_rung_fires_afterwards() -> None:
    j = active(at(2027, 3, 12))  # rungs 1 and 2 raised
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 3, 12, 11))

    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 12, 12))

    assert of(events, TRACK) == [
        e.MilestoneMet(milestone=TRACK, met_at=at(2027, 3, 12, 12), late=True),
        e.EscalationResolved(milestone=TRACK, resolved_at=at(2027, 3, 12, 12), resolution="met"),
    ]
    assert raised(advance(j, at(2027, 4, 30)), TRACK) == []
    assert all(x.resolved_at == at(2027, 3, 12, 12) for x in j.s.escalations if x.milestone == TRACK)


def test_a_resolved_last_rung_no_longer_puts_the_journey_at_risk() -> None:
    j = active(at(2027, 3, 23))
    assert f"escalated:{TRACK}" in j.s.at_risk_reasons()
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 3, 23, 11))

    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 23, 12))

    assert f"escalated:{TRACK}" not in j.s.at_risk_reasons()


def test_a_ladder_counted_in_danish_working_days_skips_easter() -> None:
    j = active(at(2027, 3, 15))
    # The session moves to Mon 22 Mar, so its attendance deadline is Wed 24 Mar, the day before Easter.
    j.send(
        c.RescheduleSession(**COORD, session_key="leading-others", starts_at=at(2027, 3, 22, 9)), at(2027, 3, 15, 11)
    )

    events = advance(j, at(2027, 4, 20))

    assert raised(events, "session:leading-others") == [
        (1, "talent", at(2027, 3, 24, 16)),
        (2, "nearest_leader", at(2027, 4, 1, 16)),  # Tue 30, Wed 31, Thu 1
        (3, "leaders_leader", at(2027, 4, 6, 16)),  # Fri 2, Mon 5, Tue 6
        (4, "coordinator", at(2027, 4, 12, 16)),  # Wed 7, Thu 8, Fri 9, Mon 12
    ]


def test_a_missing_leaders_leader_is_still_escalated_to_with_no_one_named() -> None:
    j = enrolled(leaders_leader_id=None)

    events = advance(j, at(2027, 3, 17))

    (rung3,) = [ev for ev in of(events, TRACK, "EscalationRaised") if ev.rung == 3]  # type: ignore[union-attr]
    assert (rung3.recipient_role, rung3.recipient_id) == ("leaders_leader", None)  # type: ignore[union-attr]


def test_a_cohort_without_a_coordinator_escalates_the_last_rung_to_no_one_named() -> None:
    j = enrolled(cohort=reference_cohort(PROGRAMME, coordinator_id=None))

    events = advance(j, at(2027, 3, 23))

    (rung4,) = [ev for ev in of(events, TRACK, "EscalationRaised") if ev.rung == 4]  # type: ignore[union-attr]
    assert rung4.recipient_id is None  # type: ignore[union-attr]
    assert rung4.at_risk is True  # type: ignore[union-attr]


# -- pause and resume ----------------------------------------------------------------------------


def test_a_paused_journey_lets_no_deadline_slip() -> None:
    j = active(at(2027, 3, 1))
    paused = j.send(c.PauseJourney(**COORD, reason_ref="t-4"), at(2027, 3, 1, 11))

    assert paused == [
        e.JourneyPaused(paused_by="p-coord", reason_ref="t-4", paused_at=at(2027, 3, 1, 11), previous_state="active")
    ]
    assert next_wakeup(j.s) is None
    assert advance(j, at(2027, 12, 31)) == []
    assert j.s.milestone(TRACK).status == "open"  # type: ignore[union-attr]


def test_resuming_after_a_pause_over_easter_shifts_open_deadlines_and_pending_rungs_by_five_working_days() -> None:
    j = active(at(2027, 3, 22))
    # By now observe-leader (due 8 Mar) has raised rungs 1-3; rung 4 is due Mon 22 Mar 16:00.
    before = j.s.milestone(TRACK)
    assert before is not None and before.raised == (1, 2, 3)
    j.send(c.PauseJourney(**COORD), at(2027, 3, 22, 10))

    events = j.send(c.ResumeJourney(**COORD), at(2027, 4, 1, 10))

    resumed = events[0]
    assert isinstance(resumed, e.JourneyResumed)
    # Tue 23, Wed 24, (Easter: Thu 25, Fri 26, Mon 29 are holidays), Tue 30, Wed 31, Thu 1.
    assert resumed.paused_working_days == 5
    # Ten days of wall clock, one hour less in real time: the clocks went forward on 28 March.
    assert resumed.paused_seconds == 10 * 86400 - 3600
    assert resumed.resumed_state == "active"
    shifts = {x.milestone: x for x in resumed.shifts}
    assert shifts["session:leading-others"].due_at == at(2027, 4, 14, 16)  # from Wed 7 Apr
    assert shifts["track:lead-meeting"].due_at == at(2027, 5, 14, 16)  # from Fri 7 May
    assert resumed.evaluate_at == at(2027, 10, 18, 16)  # from Mon 11 Oct
    ladder = {r.rung: r.due_at for r in shifts[TRACK].ladder}
    assert ladder[4] == at(2027, 4, 1, 16)  # from Mon 22 Mar
    assert [ladder[r] for r in (1, 2, 3)] == [r.due_at for r in before.ladder[:3]]  # raised rungs stay put
    assert shifts[TRACK].due_at == OBSERVE_DUE
    assert j.s.state == "active"
    assert j.s.milestone("session:leading-others").due_at == at(2027, 4, 14, 16)  # type: ignore[union-attr]
    assert j.s.evaluate_at == at(2027, 10, 18, 16)


def test_after_resuming_the_pending_rung_fires_at_its_shifted_time() -> None:
    j = active(at(2027, 3, 22))
    j.send(c.PauseJourney(**COORD), at(2027, 3, 22, 10))
    j.send(c.ResumeJourney(**COORD), at(2027, 4, 1, 10))

    assert raised(advance(j, at(2027, 4, 1, 15)), TRACK) == []
    assert raised(advance(j, at(2027, 4, 1, 16)), TRACK) == [(4, "coordinator", at(2027, 4, 1, 16))]
    assert of(advance(j, LEADING_OTHERS_DUE + timedelta(hours=1)), "session:leading-others") == []


def test_a_fully_raised_ladder_is_not_shifted() -> None:
    j = active(at(2027, 3, 23))
    j.send(c.PauseJourney(**COORD), at(2027, 3, 23, 10))

    resumed = j.send(c.ResumeJourney(**COORD), at(2027, 4, 1, 10))[0]

    assert isinstance(resumed, e.JourneyResumed)
    ladder = next(x for x in resumed.shifts if x.milestone == TRACK).ladder
    assert [r.due_at for r in ladder] == [r.due_at for r in j.s.milestone(TRACK).ladder]  # type: ignore[union-attr]
    assert ladder[-1].due_at == at(2027, 3, 22, 16)


def test_a_paused_nomination_moves_its_approval_deadline_on_resume() -> None:
    j = nominated()
    j.send(c.PauseJourney(**COORD), at(2026, 12, 2))

    resumed = j.send(c.ResumeJourney(**COORD), at(2026, 12, 9))[0]

    assert isinstance(resumed, e.JourneyResumed)
    assert resumed.resumed_state == "nominated"
    assert resumed.paused_working_days == 5
    assert resumed.approval_due == at(2026, 12, 22, 16)  # from Tue 15 Dec
    assert j.s.approval_due == at(2026, 12, 22, 16)
    assert next_wakeup(j.s) == at(2026, 12, 22, 16)
    assert j.s.approval_due > APPROVAL_DUE


def test_a_journey_paused_before_its_cohort_started_starts_when_resumed() -> None:
    j = enrolled()
    j.send(c.PauseJourney(**COORD), at(2027, 1, 6))

    events = j.send(c.ResumeJourney(**COORD), at(2027, 1, 12))

    assert j.types(events)[:2] == ["JourneyResumed", "JourneyStarted"]
    assert j.s.state == "active"
    # The kickoff deadline (Wed 13 Jan) moved by the four working days paused (7, 8, 11, 12 Jan).
    assert j.s.milestone("session:kickoff").due_at == at(2027, 1, 19, 16)  # type: ignore[union-attr]


def test_a_pause_within_one_day_moves_no_working_day_deadline() -> None:
    j = active(at(2027, 3, 1))
    j.send(c.PauseJourney(**COORD), at(2027, 3, 1, 9))

    resumed = j.send(c.ResumeJourney(**COORD), at(2027, 3, 1, 15))[0]

    assert isinstance(resumed, e.JourneyResumed)
    assert resumed.paused_working_days == 0
    assert all(x.due_at == j.s.milestone(x.milestone).due_at for x in resumed.shifts)  # type: ignore[union-attr]
    assert j.s.milestone(TRACK).due_at == OBSERVE_DUE  # type: ignore[union-attr]
    assert j.s.milestone("track:lead-meeting").due_at == LEAD_MEETING_DUE  # type: ignore[union-attr]
    assert j.s.evaluate_at == EVALUATE_AT


def test_a_compressed_journey_shifts_its_deadlines_by_the_exact_paused_time() -> None:
    programme = compressed_programme()
    start = datetime(2027, 3, 1, 9, 0, tzinfo=CPH)
    j = Journey()
    j.send(nominate(programme, compressed_cohort(programme, start)), start - timedelta(minutes=5))
    j.send(c.DecideNomination(**COORD, decision="approve"), start - timedelta(minutes=4))
    track_due = j.s.milestone("track:observe-leader").due_at  # type: ignore[union-attr]
    assert track_due == start + timedelta(minutes=2)
    j.send(c.PauseJourney(**COORD), start + timedelta(seconds=10))

    events = j.send(c.ResumeJourney(**COORD), start + timedelta(minutes=1, seconds=40))

    resumed = events[0]
    assert isinstance(resumed, e.JourneyResumed)
    assert resumed.paused_seconds == 90
    assert j.s.milestone("track:observe-leader").due_at == track_due + timedelta(seconds=90)  # type: ignore[union-attr]
    assert j.s.evaluate_at == start + timedelta(minutes=8, seconds=90)


# -- a coordinator acknowledges or resolves ------------------------------------------------------

KICKOFF = "session:kickoff"


def refusal(j: Journey, command: c.Command, now: datetime) -> DomainError:
    """Send a command that must be refused; the journey must be left exactly as it was."""
    before = j.s
    with pytest.raises(DomainError) as caught:
        j.send(command, now)
    assert j.s is before
    return caught.value


def test_acknowledging_an_open_escalation_records_who_and_when_and_keeps_it_open() -> None:
    j = active(at(2027, 3, 12))  # observe-leader: rungs 1 and 2 raised

    events = j.send(c.AcknowledgeEscalation(**COORD, milestone=TRACK, note_ref="t-note"), at(2027, 3, 12, 11))

    assert events == [
        e.EscalationAcknowledged(
            milestone=TRACK, acknowledged_by="p-coord", acknowledged_at=at(2027, 3, 12, 11), note_ref="t-note"
        )
    ]
    views = [x for x in status_of(j.s).escalations if x.milestone == TRACK]
    assert [(x.rung, x.acknowledged_at, x.acknowledged_by, x.resolved_at) for x in views] == [
        (1, at(2027, 3, 12, 11), "p-coord", None),
        (2, at(2027, 3, 12, 11), "p-coord", None),
    ]
    assert j.s.milestone(TRACK).ladder_running  # type: ignore[union-attr]


def test_an_acknowledged_ladder_climbs_no_further_while_other_ladders_do() -> None:
    j = active(at(2027, 1, 13, 17))  # kickoff slipped at 16:00, rung 1 raised; nothing else has slipped
    assert raised(history(j), KICKOFF) == [(1, "talent", at(2027, 1, 13, 16))]
    assert next_wakeup(j.s) == at(2027, 1, 18, 16)  # rung 2, three working days on

    j.send(c.AcknowledgeEscalation(**COORD, milestone=KICKOFF), at(2027, 1, 14))

    assert next_wakeup(j.s) == min(m.due_at for m in j.s.milestones if m.status == "open")
    later = advance(j, at(2027, 3, 31))
    assert raised(later, KICKOFF) == []
    assert raised(later, TRACK) != []  # observe-leader slipped meanwhile and climbs as before
    assert j.s.milestone(KICKOFF).raised == (1,)  # type: ignore[union-attr]
    assert [x.resolved_at for x in j.s.escalations if x.milestone == KICKOFF] == [None]


def test_acknowledging_twice_changes_nothing_the_second_time() -> None:
    j = active(at(2027, 3, 12))
    j.send(c.AcknowledgeEscalation(**COORD, milestone=TRACK), at(2027, 3, 12, 11))
    before = j.s

    again = j.send(c.AcknowledgeEscalation(**COORD, milestone=TRACK, note_ref="t-other"), at(2027, 3, 12, 12))

    assert again == []
    assert j.s is before
    assert j.s.milestone(TRACK).acknowledged_at == at(2027, 3, 12, 11)  # type: ignore[union-attr]


def test_an_acknowledged_escalation_at_its_last_rung_keeps_the_journey_at_risk() -> None:
    j = active(at(2027, 3, 23))

    j.send(c.AcknowledgeEscalation(**COORD, milestone=TRACK), at(2027, 3, 23, 11))

    assert f"escalated:{TRACK}" in j.s.at_risk_reasons()
    assert status_of(j.s).at_risk is True


def test_resolving_an_escalation_closes_it_and_no_rung_fires_afterwards() -> None:
    j = active(at(2027, 3, 12))  # rungs 1 and 2 raised, 3 and 4 pending

    events = j.send(c.ResolveEscalation(**COORD, milestone=TRACK, reason_ref="t-why"), at(2027, 3, 12, 11))

    assert of(events, TRACK) == [
        e.EscalationResolved(
            milestone=TRACK,
            resolved_at=at(2027, 3, 12, 11),
            resolution="resolved_by_coordinator",
            resolved_by="p-coord",
            reason_ref="t-why",
        )
    ]
    assert [(x.rung, x.resolved_at) for x in j.s.escalations if x.milestone == TRACK] == [
        (1, at(2027, 3, 12, 11)),
        (2, at(2027, 3, 12, 11)),
    ]
    assert raised(advance(j, at(2027, 4, 30)), TRACK) == []
    milestone = j.s.milestone(TRACK)
    assert milestone is not None and (milestone.status, milestone.raised) == ("slipped", (1, 2))


def test_resolving_a_last_rung_lifts_that_milestones_risk_and_leaves_the_others() -> None:
    j = active(at(2027, 3, 23))
    reasons = j.s.at_risk_reasons()
    assert f"escalated:{TRACK}" in reasons and "escalated:mentor_meeting:1" in reasons

    j.send(c.ResolveEscalation(**COORD, milestone=TRACK), at(2027, 3, 23, 11))

    assert j.s.at_risk_reasons() == tuple(r for r in reasons if r != f"escalated:{TRACK}")
    assert status_of(j.s).at_risk is True


def test_resolving_the_only_escalation_at_risk_takes_the_journey_out_of_risk() -> None:
    j = nominated()
    advance(j, at(2026, 12, 30, 17))  # the approval slipped on 15 Dec; its coordinator rung fired on 29 Dec
    assert status_of(j.s).at_risk_reasons == ("escalated:approval",)

    j.send(c.ResolveEscalation(**COORD, milestone="approval"), at(2026, 12, 30, 18))

    assert (status_of(j.s).at_risk, status_of(j.s).at_risk_reasons) == (False, ())
    assert j.s.state == "nominated"  # the nomination itself still awaits a decision


def test_resolving_an_acknowledged_escalation_is_fine_acknowledging_a_resolved_one_is_refused() -> None:
    j = active(at(2027, 3, 12))
    j.send(c.AcknowledgeEscalation(**COORD, milestone=TRACK), at(2027, 3, 12, 11))

    resolved = j.send(c.ResolveEscalation(**COORD, milestone=TRACK), at(2027, 3, 12, 12))

    assert j.types(resolved) == ["EscalationResolved"]
    for command in (
        c.AcknowledgeEscalation(**COORD, milestone=TRACK),
        c.ResolveEscalation(**COORD, milestone=TRACK),
    ):
        refused = refusal(j, command, at(2027, 3, 12, 13))
        assert (refused.code, refused.kind) == ("no_open_escalation", "conflict")


def test_a_milestone_met_after_a_coordinator_resolved_its_escalation_is_still_met_and_counts() -> None:
    j = active(at(2027, 3, 12))
    j.send(c.ResolveEscalation(**COORD, milestone=TRACK), at(2027, 3, 12, 11))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 3, 15))

    events = j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 15, 11))

    assert j.types(of(events, TRACK)) == ["MilestoneMet"]  # the ladder was already closed: no second resolution
    assert j.s.milestone(TRACK).status == "met"  # type: ignore[union-attr]
    assert j.s.tracks_done() == 1


@pytest.mark.parametrize("who", [LEADER, TALENT, HR], ids=["leader", "talent", "hr_system"])
def test_only_a_coordinator_or_the_system_may_acknowledge_or_resolve(who: c.Actor) -> None:
    j = active(at(2027, 3, 12))

    for command in (
        c.AcknowledgeEscalation(**who, milestone=TRACK),
        c.ResolveEscalation(**who, milestone=TRACK),
    ):
        refused = refusal(j, command, at(2027, 3, 12, 11))
        assert (refused.code, refused.kind) == ("not_allowed", "forbidden")
    assert j.types(j.send(c.AcknowledgeEscalation(**SYSTEM, milestone=TRACK), at(2027, 3, 12, 11))) == [
        "EscalationAcknowledged"
    ]


@pytest.mark.parametrize(
    ("milestone", "code", "kind"),
    [
        ("track:juggling", "unknown_milestone", "invalid"),
        ("mentor_meeting:6", "unknown_milestone", "invalid"),  # the programme has five
        ("session:party", "unknown_milestone", "invalid"),
        ("observe-leader", "unknown_milestone", "invalid"),  # a track key is not a milestone key
        ("track:lead-meeting", "no_open_escalation", "conflict"),  # due in May: not slipped
        ("approval", "no_open_escalation", "conflict"),  # decided in time
    ],
)
def test_an_unknown_milestone_is_invalid_and_one_without_an_open_escalation_is_a_conflict(
    milestone: str, code: str, kind: str
) -> None:
    j = active(at(2027, 3, 12))

    refused = refusal(j, c.AcknowledgeEscalation(**COORD, milestone=milestone), at(2027, 3, 12, 11))

    assert (refused.code, refused.kind) == (code, kind)


def test_a_planned_milestone_of_a_journey_not_yet_enrolled_has_no_open_escalation() -> None:
    refused = refusal(nominated(), c.ResolveEscalation(**COORD, milestone=TRACK), at(2026, 12, 2))

    assert refused.code == "no_open_escalation"


def test_a_slipped_milestone_whose_first_rung_has_not_fired_has_no_open_escalation_yet() -> None:
    j = nominated()
    advance(j, APPROVAL_DUE + timedelta(hours=1))  # slipped; only the coordinator's rung, ten working days on
    assert j.s.milestone("approval").status == "slipped"  # type: ignore[union-attr]

    refused = refusal(j, c.AcknowledgeEscalation(**COORD, milestone="approval"), APPROVAL_DUE + timedelta(hours=2))

    assert refused.code == "no_open_escalation"


def test_a_rescheduled_session_forgets_its_acknowledgement_so_a_new_slip_climbs_again() -> None:
    j = active(at(2027, 1, 13, 17))
    j.send(c.AcknowledgeEscalation(**COORD, milestone=KICKOFF), at(2027, 1, 14))

    moved = j.send(
        c.RescheduleSession(**COORD, session_key="kickoff", starts_at=at(2027, 1, 18, 9)), at(2027, 1, 14, 11)
    )

    assert [ev.resolution for ev in of(moved, KICKOFF, "EscalationResolved")] == ["rescheduled"]  # type: ignore[union-attr]
    assert j.s.milestone(KICKOFF).acknowledged_at is None  # type: ignore[union-attr]
    # The new deadline is Wed 20 Jan 16:00; unmet, its fresh ladder climbs: rung 1 then, rung 2 on Mon 25 Jan.
    assert [r for r, _, _ in raised(advance(j, at(2027, 1, 25, 17)), KICKOFF)] == [1, 2]


def test_a_withdrawal_closes_an_acknowledged_escalation_as_the_journey_ends() -> None:
    j = active(at(2027, 1, 13, 17))
    j.send(c.AcknowledgeEscalation(**COORD, milestone=KICKOFF), at(2027, 1, 14))

    events = j.send(c.WithdrawTalent(**COORD), at(2027, 1, 15))

    assert [(ev.milestone, ev.resolution) for ev in events if isinstance(ev, e.EscalationResolved)] == [
        (KICKOFF, "journey_ended")
    ]
    assert all(x.resolved_at is not None for x in j.s.escalations)
