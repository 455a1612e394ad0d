"""Which events cause which e-mails and webhooks, and who receives them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.templates import render
from domain import commands as c
from domain.events import Event
from domain.journey import JourneyState, evolve
from domain.notifications import notifications_for
from domain.values import Language
from tests.support import COORD, LEADER, TALENT, Journey, reference_cohort
from tests.unit.journeys import (
    EVALUATE_AT,
    PROGRAMME,
    active,
    advance,
    at,
    enrolled,
    nominated,
    on_track,
)

Note = tuple[str, str, str, str | None]


def notes_by_event(j: Journey) -> list[tuple[Event, list[Note]]]:
    """Replay the history, asking for each event's notifications with the state just after it."""
    state: JourneyState | None = None
    out: list[tuple[Event, list[Note]]] = []
    for new in j.history:
        state = evolve(state, new.event)
        out.append(
            (
                new.event,
                [
                    (n.channel, n.template, n.recipient_role, n.recipient_id)
                    for n in notifications_for(state, new.event)
                ],
            )
        )
    return out


def notes_for(j: Journey, event_type: str) -> list[list[Note]]:
    return [notes for event, notes in notes_by_event(j) if event.type == event_type]


def webhook(event_type: str) -> Note:
    return ("webhook", event_type, "hr_system", None)


def test_a_nomination_mails_the_coordinator_and_tells_the_hr_system() -> None:
    assert notes_for(nominated(), "TalentNominated") == [
        [("email", "nomination_received", "coordinator", "p-coord"), webhook("TalentNominated")]
    ]


def test_a_cohort_without_a_coordinator_mails_no_one_about_a_nomination() -> None:
    j = nominated(cohort=reference_cohort(PROGRAMME, coordinator_id=None))
    assert notes_for(j, "TalentNominated") == [[webhook("TalentNominated")]]


def test_enrolment_welcomes_the_talent_and_the_leader() -> None:
    j = enrolled()
    assert notes_for(j, "NominationApproved") == [[webhook("NominationApproved")]]
    assert notes_for(j, "TalentEnrolled") == [
        [
            ("email", "welcome", "talent", "p-talent"),
            ("email", "welcome_leader", "nearest_leader", "p-leader"),
            webhook("TalentEnrolled"),
        ]
    ]
    assert notes_for(j, "MilestoneMet") == [[]]


def test_a_rejection_is_mailed_to_the_nominating_leader() -> None:
    j = nominated()
    j.send(c.DecideNomination(**COORD, decision="reject", reason_ref="t-1"), at(2026, 12, 2))
    assert notes_for(j, "NominationRejected") == [
        [("email", "nomination_rejected", "nearest_leader", "p-leader"), webhook("NominationRejected")]
    ]


def test_each_rung_mails_its_role_and_only_the_at_risk_rung_tells_the_hr_system() -> None:
    j = active(at(2027, 1, 28))

    kickoff = [
        notes
        for event, notes in notes_by_event(j)
        if event.type == "EscalationRaised" and event.milestone == "session:kickoff"
    ]

    assert kickoff == [
        [("email", "reminder", "talent", "p-talent")],
        [("email", "escalation_nearest_leader", "nearest_leader", "p-leader")],
        [("email", "escalation_leaders_leader", "leaders_leader", "p-boss")],
        [("email", "escalation_coordinator", "coordinator", "p-coord"), webhook("EscalationRaised")],
    ]
    assert notes_for(j, "MilestoneSlipped") == [[]]


def test_no_leaders_leader_means_no_email_for_that_rung() -> None:
    j = enrolled(leaders_leader_id=None)
    advance(j, at(2027, 1, 28))

    rung3 = [notes for event, notes in notes_by_event(j) if event.type == "EscalationRaised" and event.rung == 3]

    assert rung3 == [[]]


def test_track_submissions_go_to_the_leader_and_returns_to_the_talent() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 1, 11))
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="return"), at(2027, 2, 1, 12))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 2, 1, 13))
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 2, 1, 14))

    assert notes_for(j, "TrackSubmitted") == [[("email", "track_submitted", "nearest_leader", "p-leader")]] * 2
    assert notes_for(j, "TrackReturned") == [[("email", "track_returned", "talent", "p-talent")]]
    assert notes_for(j, "TrackSignedOff") == [[]]


def test_a_new_leader_is_welcomed_and_the_hr_system_told() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2"), at(2027, 2, 2))

    assert notes_for(j, "NearestLeaderChanged") == [
        [("email", "welcome_leader", "nearest_leader", "p-leader-2"), webhook("NearestLeaderChanged")]
    ]


def test_state_changes_are_webhooks_only() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.PauseJourney(**COORD), at(2027, 2, 2))
    j.send(c.ResumeJourney(**COORD), at(2027, 2, 3))
    j.send(c.WithdrawTalent(**COORD), at(2027, 2, 4))

    for event_type in ("JourneyStarted", "JourneyPaused", "JourneyResumed", "TalentWithdrawn"):
        assert notes_for(j, event_type) == [[webhook(event_type)]]


def test_completion_follow_ups_and_closing_are_announced() -> None:
    j = enrolled()
    on_track(j)
    advance(j, EVALUATE_AT + timedelta(days=200))
    j.send(
        c.RecordOutcome(**TALENT, applied_for_leader_post=True, appointed=False, on=EVALUATE_AT.date()),
        EVALUATE_AT + timedelta(days=201),
    )
    j.send(c.RecordErasure(**COORD, person_id="p-talent"), EVALUATE_AT + timedelta(days=202))
    advance(j, at(2030, 1, 1))

    assert notes_for(j, "ProgrammeCompleted") == [
        [
            ("email", "completion", "talent", "p-talent"),
            ("email", "completion", "nearest_leader", "p-leader"),
            webhook("ProgrammeCompleted"),
        ]
    ]
    assert (
        notes_for(j, "FollowUpRequested")
        == [[("email", "follow_up_question", "talent", "p-talent"), webhook("FollowUpRequested")]] * 3
    )
    assert notes_for(j, "OutcomeRecorded") == [[webhook("OutcomeRecorded")]]
    assert notes_for(j, "JourneyClosed") == [[webhook("JourneyClosed")]]
    assert notes_for(j, "PersonalDataErased") == [[]]
    assert notes_for(j, "SessionAttendanceRecorded") == [[]] * 8


def test_a_non_completion_is_announced_like_a_completion() -> None:
    j = active(at(2027, 1, 11, 12))
    advance(j, EVALUATE_AT)
    assert notes_for(j, "ProgrammeNotCompleted") == [
        [
            ("email", "completion", "talent", "p-talent"),
            ("email", "completion", "nearest_leader", "p-leader"),
            webhook("ProgrammeNotCompleted"),
        ]
    ]


def test_an_acknowledgement_mails_no_one_and_the_hr_system_hears_it() -> None:
    j = active(at(2027, 3, 12))
    j.send(c.AcknowledgeEscalation(**COORD, milestone="track:observe-leader"), at(2027, 3, 12, 11))

    assert notes_for(j, "EscalationAcknowledged") == [[("webhook", "EscalationAcknowledged", "hr_system", None)]]


def test_a_coordinators_resolution_tells_those_the_ladder_reached_and_the_hr_system() -> None:
    early, late = active(at(2027, 3, 12)), active(at(2027, 3, 23))  # rungs 1-2, and all four, raised
    for j, now in ((early, at(2027, 3, 12, 11)), (late, at(2027, 3, 23, 11))):
        j.send(c.ResolveEscalation(**COORD, milestone="track:observe-leader"), now)

    assert notes_for(early, "EscalationResolved")[-1] == [
        ("email", "escalation_resolved", "talent", "p-talent"),
        ("email", "escalation_resolved", "nearest_leader", "p-leader"),
        ("webhook", "EscalationResolved", "hr_system", None),
    ]
    assert notes_for(late, "EscalationResolved")[-1] == [
        ("email", "escalation_resolved", "talent", "p-talent"),
        ("email", "escalation_resolved", "nearest_leader", "p-leader"),
        ("email", "escalation_resolved", "leaders_leader", "p-boss"),
        ("webhook", "EscalationResolved", "hr_system", None),
    ]


def test_a_resolved_approval_escalation_mails_no_one_its_ladder_never_reached() -> None:
    j = nominated()
    advance(j, at(2026, 12, 30, 17))  # only the coordinator's rung: a nomination is theirs to decide
    j.send(c.ResolveEscalation(**COORD, milestone="approval"), at(2026, 12, 30, 18))

    assert notes_for(j, "EscalationResolved") == [[("webhook", "EscalationResolved", "hr_system", None)]]


def test_a_late_milestone_resolving_its_ladder_mails_no_one_as_before() -> None:
    j = active(at(2027, 3, 12))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 3, 12, 11))
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 12, 12))

    assert notes_for(j, "EscalationResolved") == [[("webhook", "EscalationResolved", "hr_system", None)]]


@pytest.mark.parametrize("language", ["da", "en"])
def test_the_resolution_mail_names_the_milestone_and_the_talent(language: Language) -> None:
    rendered = render("escalation_resolved", language, recipient="Lars", talent="Mette", milestone="track:x")

    assert "track:x" in rendered.subject
    assert "Lars" in rendered.body and "Mette" in rendered.body and "track:x" in rendered.body
    assert "$" not in rendered.subject + rendered.body
