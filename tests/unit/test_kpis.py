"""Programme KPIs: the arithmetic and the denominators, against hand-computed expectations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from domain import commands as c
from domain import events as e
from domain.kpis import Funnel, JourneyFacts, Kpis, OutcomeFact, compute_funnel, compute_kpis, facts_from_events
from domain.status import JourneyStatus, status_of
from tests.support import COORD, CPH, LEADER, SYSTEM, TALENT, Journey, nominate, reference_cohort, reference_programme

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))


def _status(
    journey_id: str,
    state: e.JourneyStateName = "active",
    *,
    completion: str | None = None,
    milestones: tuple[tuple[str, e.MilestoneKind, str], ...] = (),
    escalations: tuple[tuple[str, int, bool], ...] = (),
) -> JourneyStatus:
    """A status view: milestones as (key, kind, status), escalations as (milestone, rung, resolved)."""
    due = datetime(2025, 6, 2, 16, tzinfo=CEST)
    data: dict[str, Any] = {
        "journey_id": journey_id,
        "cohort_id": "c-1",
        "programme_id": "tnl",
        "programme_version": 1,
        "state": state,
        "at_risk": False,
        "at_risk_reasons": [],
        "talent_id": f"p-{journey_id}",
        "nearest_leader_id": "p-leader",
        "external_ref": None,
        "progress": {
            "sessions_attended": 0,
            "sessions_required": 0,
            "tracks_done": 0,
            "tracks_required": 0,
            "meetings_held": 0,
            "meetings_required": 0,
        },
        "milestones": [{"key": k, "kind": kind, "due_at": due, "status": s} for k, kind, s in milestones],
        "escalations": [
            {
                "milestone": m,
                "rung": rung,
                "recipient_role": "talent",
                "raised_at": due + timedelta(days=rung),
                "resolved_at": due + timedelta(days=10) if resolved else None,
            }
            for m, rung, resolved in escalations
        ],
        "next_deadline": None,
        "completion": completion,
        "completion_reasons": [],
        "version": 1,
    }
    return JourneyStatus.model_validate(data)


def _journey(
    journey_id: str,
    state: e.JourneyStateName = "active",
    *,
    completion: str | None = None,
    evaluated_at: datetime | None = None,
    outcomes: tuple[tuple[bool, bool, date], ...] = (),
    **status: Any,
) -> JourneyFacts:
    """Facts of a journey; outcomes as (applied, appointed, on)."""
    return JourneyFacts(
        status=_status(journey_id, state, completion=completion, **status),
        evaluated_at=evaluated_at,
        outcomes=tuple(OutcomeFact(applied_for_leader_post=a, appointed=b, on=on) for a, b, on in outcomes),
    )


def _completed(journey_id: str, evaluated_at: datetime, *outcomes: tuple[bool, bool, date]) -> JourneyFacts:
    return _journey(journey_id, "following_up", completion="completed", evaluated_at=evaluated_at, outcomes=outcomes)


def _kind(kpis: Kpis, kind: str) -> dict[str, Any]:
    return next(m for m in kpis.milestones if m.kind == kind).model_dump(exclude={"kind"})


def _horizons(kpis: Kpis) -> dict[int, tuple[int, int, int, float | None, float | None]]:
    return {h.months: (h.eligible, h.applied, h.appointed, h.applied_rate, h.appointed_rate) for h in kpis.outcomes}


def test_no_journeys_give_zero_counts_and_no_rates() -> None:
    kpis = compute_kpis([], as_of=AS_OF)

    assert (kpis.journeys, kpis.evaluated, kpis.completed, kpis.in_progress) == (0, 0, 0, 0)
    assert kpis.completion_rate is None
    assert set(kpis.by_state.values()) == {0} and len(kpis.by_state) == 10
    assert [m.kind for m in kpis.milestones] == ["approval", "session", "track", "mentor_meeting"]
    assert all(m.due == 0 and m.on_time_rate is None for m in kpis.milestones)
    assert kpis.escalations == ()
    assert _horizons(kpis) == {6: (0, 0, 0, None, None), 12: (0, 0, 0, None, None), 24: (0, 0, 0, None, None)}
    assert (kpis.appointed, kpis.median_days_to_appointment) == (0, None)
    assert kpis.as_of == AS_OF


def test_withdrawn_journeys_alone_leave_the_completion_rate_undefined() -> None:
    kpis = compute_kpis([_journey(f"j{i}", "withdrawn") for i in range(3)], as_of=AS_OF)

    assert (kpis.journeys, kpis.withdrawn, kpis.evaluated, kpis.in_progress) == (3, 3, 0, 0)
    assert kpis.by_state["withdrawn"] == 3
    assert kpis.completion_rate is None


def test_the_completion_rate_counts_evaluated_journeys_only_whatever_their_state_now() -> None:
    at = datetime(2025, 6, 1, 16, tzinfo=CEST)
    journeys = [
        _journey("done-closed", "closed", completion="completed", evaluated_at=at),
        _journey("done-following", "following_up", completion="completed", evaluated_at=at),
        _journey("failed", "not_completed", completion="not_completed", evaluated_at=at),
        _journey("left", "withdrawn"),
        _journey("no", "rejected"),
        _journey("running", "active"),
        _journey("on-leave", "paused"),
    ]

    kpis = compute_kpis(journeys, as_of=AS_OF)

    assert (kpis.journeys, kpis.evaluated, kpis.completed, kpis.not_completed) == (7, 3, 2, 1)
    assert (kpis.withdrawn, kpis.rejected, kpis.in_progress) == (1, 1, 2)
    assert kpis.journeys == kpis.evaluated + kpis.withdrawn + kpis.rejected + kpis.in_progress
    assert kpis.completion_rate == 2 / 3
    assert (kpis.by_state["closed"], kpis.by_state["following_up"], kpis.by_state["paused"]) == (1, 1, 1)


def test_on_time_rates_per_kind_count_late_meets_misses_and_slips_but_not_open_milestones() -> None:
    a = JourneyFacts(
        status=_status(
            "a",
            milestones=(
                ("approval", "approval", "met"),
                ("session:kickoff", "session", "met"),
                ("session:lab", "session", "met"),
                ("session:closing", "session", "missed"),
                ("track:observe", "track", "met"),
                ("track:meeting", "track", "slipped"),
                ("mentor_meeting:1", "mentor_meeting", "open"),
            ),
        ),
        late_milestones=frozenset({"session:lab", "track:observe"}),
    )
    b = JourneyFacts(
        status=_status(
            "b",
            "withdrawn",
            milestones=(
                ("approval", "approval", "met"),
                ("session:kickoff", "session", "slipped"),
                ("track:observe", "track", "open"),
            ),
        ),
        late_milestones=frozenset({"approval"}),
    )

    kpis = compute_kpis([a, b], as_of=AS_OF)

    # approval: a on time, b late.
    assert _kind(kpis, "approval") == {
        "on_time": 1,
        "late": 1,
        "missed": 0,
        "slipped": 0,
        "open": 0,
        "waived": 0,
        "due": 2,
        "on_time_rate": 0.5,
    }
    # session: kickoff on time (a), lab late (a), closing missed (a), kickoff slipped (b): 1 of 4.
    assert _kind(kpis, "session") == {
        "on_time": 1,
        "late": 1,
        "missed": 1,
        "slipped": 1,
        "open": 0,
        "waived": 0,
        "due": 4,
        "on_time_rate": 0.25,
    }
    # track: observe late (a), meeting slipped (a), observe open (b, left out): 0 of 2.
    assert _kind(kpis, "track") == {
        "on_time": 0,
        "late": 1,
        "missed": 0,
        "slipped": 1,
        "open": 1,
        "waived": 0,
        "due": 2,
        "on_time_rate": 0.0,
    }
    assert _kind(kpis, "mentor_meeting") == {
        "on_time": 0,
        "late": 0,
        "missed": 0,
        "slipped": 0,
        "open": 1,
        "waived": 0,
        "due": 0,
        "on_time_rate": None,
    }


def test_escalations_are_counted_per_kind_and_rung_with_the_open_ones() -> None:
    milestones = (("session:kickoff", "session", "slipped"), ("track:observe", "track", "met"))
    a = _journey(
        "a",
        milestones=milestones,
        escalations=(
            ("track:observe", 1, True),
            ("track:observe", 2, True),
            ("session:kickoff", 1, False),
            ("session:kickoff", 2, False),
            ("session:kickoff", 3, False),
        ),
    )
    b = _journey("b", milestones=milestones, escalations=(("session:kickoff", 1, True),))

    kpis = compute_kpis([a, b], as_of=AS_OF)

    assert [(x.kind, x.rung, x.raised, x.open) for x in kpis.escalations] == [
        ("session", 1, 2, 1),
        ("session", 2, 1, 1),
        ("session", 3, 1, 1),
        ("track", 1, 1, 0),
        ("track", 2, 1, 0),
    ]


def _outcome_cohort() -> list[JourneyFacts]:
    return [
        # 6 months end 2025-07-15, 12 months 2026-01-15, 24 months 2027-01-15 (not yet at AS_OF).
        _completed(
            "t1",
            datetime(2025, 1, 15, 16, tzinfo=CET),
            (True, False, date(2025, 9, 1)),
            (True, True, date(2026, 1, 10)),
        ),
        # Evaluated on 31 August: 6 months end on 28 February (clamped), passed; 12 months not yet.
        _completed("t2", datetime(2025, 8, 31, 16, tzinfo=CEST), (True, True, date(2026, 2, 28))),
        # Still inside its first horizon: in no denominator, though already appointed.
        _completed("t3", datetime(2025, 12, 1, 16, tzinfo=CET), (True, True, date(2026, 1, 5))),
        # Completed with nothing to report: eligible at 6 and 12 months.
        _completed("t4", datetime(2025, 2, 1, 16, tzinfo=CET)),
        # Not completed: never in the outcome KPIs, appointed or not.
        _journey(
            "t5",
            "following_up",
            completion="not_completed",
            evaluated_at=datetime(2024, 1, 15, 16, tzinfo=CET),
            outcomes=((True, True, date(2024, 3, 1)),),
        ),
    ]


def test_outcome_shares_count_only_completed_talents_whose_horizon_has_passed() -> None:
    kpis = compute_kpis(_outcome_cohort(), as_of=AS_OF)

    assert _horizons(kpis) == {
        # t1 (applied only after its 6 months), t2 (appointed on the horizon's last day), t4.
        6: (3, 1, 1, 1 / 3, 1 / 3),
        # t1 (applied and appointed within 12 months), t4.
        12: (2, 1, 1, 0.5, 0.5),
        24: (0, 0, 0, None, None),
    }


def test_a_horizon_passes_at_the_instant_it_ends() -> None:
    t = [_completed("t", datetime(2025, 9, 1, 14, tzinfo=UTC), (True, False, date(2026, 3, 1)))]

    just_before = compute_kpis(t, as_of=datetime(2026, 3, 1, 13, 59, 59, tzinfo=UTC))
    at_the_end = compute_kpis(t, as_of=datetime(2026, 3, 1, 14, 0, tzinfo=UTC))

    assert _horizons(just_before)[6] == (0, 0, 0, None, None)
    assert _horizons(at_the_end)[6] == (1, 1, 0, 1.0, 0.0)


def test_the_median_days_to_appointment_with_an_odd_and_an_even_count() -> None:
    cohort = _outcome_cohort()

    odd = compute_kpis(cohort, as_of=AS_OF)
    even = compute_kpis([j for j in cohort if j.status.journey_id != "t3"], as_of=AS_OF)

    # t1: 2025-01-15 -> 2026-01-10 = 360 days; t2: 2025-08-31 -> 2026-02-28 = 181; t3: 2025-12-01 -> 2026-01-05 = 35.
    assert (odd.appointed, odd.median_days_to_appointment) == (3, 181.0)
    assert (even.appointed, even.median_days_to_appointment) == (2, (181 + 360) / 2)


def test_days_to_appointment_count_from_the_local_evaluation_date_and_never_below_zero() -> None:
    journeys = [
        # 00:30 in Copenhagen is still the day before in UTC: the local date counts.
        _completed("midnight", datetime(2025, 3, 3, 0, 30, tzinfo=CET), (True, True, date(2025, 3, 13))),
        # Appointed while still on the programme: 0 days, not negative.
        _completed("early", datetime(2025, 3, 3, 16, tzinfo=CET), (True, True, date(2025, 2, 1))),
        # The first appointment counts, not a later report of it.
        _completed(
            "twice",
            datetime(2025, 3, 3, 16, tzinfo=CET),
            (True, True, date(2025, 3, 23)),
            (True, True, date(2025, 6, 1)),
        ),
    ]

    kpis = compute_kpis(journeys, as_of=AS_OF)

    assert (kpis.appointed, kpis.median_days_to_appointment) == (3, 10.0)


def test_the_first_evaluation_late_meets_and_outcomes_come_from_the_events() -> None:
    first = datetime(2025, 6, 2, 16, tzinfo=CEST)
    status = _status("j", "following_up", completion="completed")
    events: list[e.Event] = [
        e.MilestoneMet(milestone="session:kickoff", met_at=first, late=True),
        e.MilestoneMet(milestone="track:observe", met_at=first, late=True),
        # A corrected attendance meets the milestone again, on time: the latest record wins.
        e.MilestoneMet(milestone="session:kickoff", met_at=first, late=False),
        e.ProgrammeNotCompleted(
            evaluated_at=first,
            reasons=("tracks_missing",),
            sessions_attended=5,
            tracks_done=3,
            meetings_held=5,
            follow_ups=(),
        ),
        e.ProgrammeCompleted(
            evaluated_at=first + timedelta(days=3),
            override=True,
            decided_by="p-coord",
            sessions_attended=5,
            tracks_done=3,
            meetings_held=5,
            follow_ups=(),
        ),
        e.OutcomeRecorded(applied_for_leader_post=True, appointed=False, on=date(2025, 9, 1), recorded_by="hr"),
        e.JourneyClosed(closed_at=first, reason="follow_up_finished"),
    ]

    facts = facts_from_events(status, events)

    assert facts.evaluated_at == first, "follow-ups count from the first evaluation, as the journey plans them"
    assert facts.late_milestones == {"track:observe"}
    assert facts.outcomes == (OutcomeFact(applied_for_leader_post=True, appointed=False, on=date(2025, 9, 1)),)


def test_a_journey_decided_by_the_domain_yields_its_late_track_and_its_escalations() -> None:
    programme = reference_programme()
    cohort = reference_cohort(programme, cohort_id="c-kpi")
    j = Journey()
    j.send(nominate(programme, cohort, journey_id="kpi"), datetime(2027, 1, 4, 10, tzinfo=CPH))
    j.send(c.DecideNomination(**COORD, decision="approve"), datetime(2027, 1, 5, 10, tzinfo=CPH))
    j.send(c.AdvanceClock(**SYSTEM), datetime(2027, 3, 20, 12, tzinfo=CPH))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), datetime(2027, 3, 22, 9, tzinfo=CPH))
    j.send(
        c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), datetime(2027, 3, 23, 9, tzinfo=CPH)
    )
    status = status_of(j.s)

    kpis = compute_kpis([facts_from_events(status, [n.event for n in j.history])], as_of=AS_OF)

    assert "track:observe-leader" in {m.key for m in status.milestones if m.status == "met"}
    track = next(m for m in kpis.milestones if m.kind == "track")
    assert (track.on_time, track.late) == (0, 1)
    assert next(m for m in kpis.milestones if m.kind == "approval").on_time == 1
    raised = sum(x.raised for x in kpis.escalations)
    assert raised == len(status.escalations) > 0
    assert sum(x.open for x in kpis.escalations) == sum(1 for x in status.escalations if x.resolved_at is None)
    assert kpis.in_progress == 1 and kpis.completion_rate is None


def test_a_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        compute_kpis([], as_of=datetime(2026, 3, 1))


def test_an_appointment_counts_as_an_application_in_the_kpis_and_the_funnel_alike() -> None:
    appointed_only = OutcomeFact(applied_for_leader_post=False, appointed=True, on=date(2025, 3, 1))
    journeys = [
        _completed("a", datetime(2025, 1, 15, 16, tzinfo=CET), (False, True, date(2025, 3, 1))),
        _completed("b", datetime(2025, 1, 15, 16, tzinfo=CET), (False, False, date(2025, 3, 1))),
    ]

    kpis = compute_kpis(journeys, as_of=AS_OF)
    funnel = compute_funnel(journeys)

    assert appointed_only.applied
    assert not OutcomeFact(applied_for_leader_post=False, appointed=False, on=date(2025, 3, 1)).applied
    assert next(h for h in kpis.outcomes if h.months == 6).applied == funnel.applied == 1


def test_the_funnel_counts_a_journey_at_every_stage_up_to_the_furthest_it_reached() -> None:
    first = datetime(2025, 6, 2, 16, tzinfo=CEST)
    enrolled = e.TalentEnrolled(
        cohort_id="c-1", starts_at=first, milestones=(), evaluate_at=first, evaluate_clock="working_days"
    )
    started = e.JourneyStarted(started_at=first)
    applied = e.OutcomeRecorded(applied_for_leader_post=True, appointed=False, on=date(2025, 9, 1), recorded_by="hr")
    journeys = [
        facts_from_events(_status("nominated", "nominated"), []),
        facts_from_events(_status("enrolled", "enrolled"), [enrolled]),
        facts_from_events(_status("active"), [enrolled, started, applied]),
        # Completed by a coordinator's override without its start on record: still active before.
        facts_from_events(_status("done", "closed", completion="completed"), []),
    ]

    assert compute_funnel(journeys) == Funnel(nominated=4, enrolled=3, active=2, completed=1, applied=1, appointed=0)
    assert (journeys[1].enrolled, journeys[1].started, journeys[2].started) == (True, False, True)
