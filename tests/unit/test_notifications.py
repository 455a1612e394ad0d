"""Which events cause which e-mails and webhooks, and who receives them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.templates import PAGES, TEMPLATES, Rendered, compose, render
from api.dashboard.i18n import Texts
from api.dashboard.present import Presenter
from domain import commands as c
from domain import wording
from domain.events import Event
from domain.journey import JourneyState, evolve
from domain.notifications import notifications_for
from domain.values import Language
from infra.present import Links
from infra.settings import Settings
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


PUBLIC_URL = "https://talent.example.dk"
LINKS = Links(PUBLIC_URL)
#: Every placeholder's fact, so that each template names what it names: a slipped session, a track,
#: a session missed, tracks awaiting sign-off.
DATA_BY_TEMPLATE: dict[str, dict[str, object]] = {
    "attendance_unrecorded": {"milestone": "session:leading-self"},
    "absence": {"session_key": "leading-self"},
    "absence_leader": {"session_key": "leading-self"},
    "session_rescheduled": {"session_key": "leading-self", "starts_at": "2027-02-10T15:00:00+00:00"},
    "reminder": {"milestone": "session:leading-self"},
    "escalation_nearest_leader": {"milestone": "session:leading-self"},
    "escalation_leaders_leader": {"milestone": "session:leading-self"},
    "escalation_coordinator": {"milestone": "session:leading-self"},
    "escalation_resolved": {"milestone": "session:leading-self"},
    "track_submitted": {"track_key": "observe-leader"},
    "track_returned": {"track_key": "observe-leader"},
    "signoff_awaited": {"awaiting": ["observe-leader"]},
}
DUE = datetime(2027, 2, 10, 15, tzinfo=UTC)  # 16:00 in Copenhagen
DATES: dict[Language, str] = {"da": "onsdag den 10. februar kl. 16.00", "en": "Wednesday 10 February at 16:00"}
MILESTONE_KEY = re.compile(r"\b(session|track|mentor_meeting):|\bapproval\b|talent-ny-leder|\$")


def _compose(template: str, language: Language, data: dict[str, object] | None = None) -> Rendered:
    return compose(
        template,
        language,
        recipient="Lars",
        talent="Mette",
        journey_id="j-42",
        data=data if data is not None else DATA_BY_TEMPLATE.get(template, {}),
        programme=PROGRAMME,
        due=DUE,
        links=LINKS,
    )


@pytest.mark.parametrize(("template", "language"), sorted(TEMPLATES))
def test_every_email_links_to_its_page_names_things_by_their_titles_and_dates_as_its_reader_writes(
    template: str, language: Language
) -> None:
    mail = TEMPLATES[(template, language)]
    rendered = _compose(template, language)
    text = rendered.subject + "\n" + rendered.body

    page = PAGES.get(template, "journey")
    expected_link = f"{PUBLIC_URL}/dashboard/journeys/j-42" if page == "journey" else f"{PUBLIC_URL}/dashboard/{page}"
    assert rendered.body.endswith(f"\n{expected_link}\n")
    assert rendered.body.startswith(("Kære Lars\n\n", "Dear Lars\n\n"))
    # No key, no programme id, no unfilled placeholder; the programme's and milestones' titles instead.
    assert not MILESTONE_KEY.search(text), text
    if "$programme" in mail.subject + mail.text:
        assert PROGRAMME.title in text
    if "$milestone" in mail.subject + mail.text:
        data = DATA_BY_TEMPLATE[template]
        session = "session" in str(data.get("milestone", "")) or "session_key" in data
        title = (
            wording.session_title("leading-self", PROGRAMME, language)
            if session
            else wording.track_title("observe-leader", PROGRAMME, language)
        )
        assert title in {"At lede sig selv", "Øvebane 1: følg din leder"}
        assert title in rendered.subject or title in rendered.body, text
    if "$due" in mail.subject + mail.text + mail.next_step:
        assert DATES[language] in text
        assert "2027-02-10" not in text
    # A step to take, then the link: the line before the link says what to do there.
    step = rendered.body.rstrip("\n").split("\n")[-2]
    assert step.endswith(":") and len(step) > 10


@pytest.mark.parametrize("language", ["da", "en"])
def test_the_resolution_mail_names_the_milestone_and_the_talent(language: Language) -> None:
    rendered = _compose("escalation_resolved", language, {"milestone": "track:observe-leader"})

    title = wording.track_title("observe-leader", PROGRAMME, language)
    assert title in rendered.subject
    assert "Lars" in rendered.body and "Mette" in rendered.body and title in rendered.body
    assert "$" not in rendered.subject + rendered.body


@pytest.mark.parametrize(
    ("milestone", "da", "en"),
    [
        ("mentor_meeting:3", "Påmindelse: Mentormøde 3", "Reminder: Mentor meeting 3"),
        ("approval", "Påmindelse: Beslutning om indstillingen", "Reminder: Decision on the nomination"),
        ("track:unknown-track", "Påmindelse: En øvebane", "Reminder: A practice track"),
        ("not a key", "Påmindelse: En milepæl", "Reminder: A milestone"),
    ],
)
def test_a_milestone_without_a_title_of_its_own_is_named_in_words_never_by_its_key(
    milestone: str, da: str, en: str
) -> None:
    assert _compose("reminder", "da", {"milestone": milestone}).subject == da
    assert _compose("reminder", "en", {"milestone": milestone}).subject == en


def test_a_reminder_says_what_to_do_for_the_kind_of_milestone_that_slipped() -> None:
    track = _compose("reminder", "da", {"milestone": "track:observe-leader"}).body
    meeting = _compose("reminder", "en", {"milestone": "mentor_meeting:2"}).body
    leader = _compose("escalation_nearest_leader", "da", {"milestone": "track:observe-leader"}).body

    assert "Aflevér din refleksion over øvebanen her:\n" in track
    assert "Hold the meeting with your nearest leader and log it here:\n" in meeting
    assert "Tal med Mette om øvebanen, og godkend den her, når den er afleveret:\n" in leader


def test_without_the_programme_the_mail_still_names_no_key_or_id() -> None:
    rendered = compose(
        "reminder",
        "da",
        recipient="Lars",
        talent="Mette",
        journey_id="j/42 ?",
        data={"milestone": "session:leading-self"},
        programme=None,
        due=None,
        links=Links(PUBLIC_URL),
    )

    assert rendered.subject == "Påmindelse: En undervisningsgang"
    assert "session:" not in rendered.body and "leading-self" not in rendered.body
    # The journey id is one path segment, whatever it holds.
    assert rendered.body.endswith(f"{PUBLIC_URL}/dashboard/journeys/j%2F42%20%3F\n")


def test_a_missing_value_is_an_error_not_a_placeholder_in_the_mail() -> None:
    with pytest.raises(KeyError):
        render("reminder", "da", recipient="Lars", talent="Mette", milestone="x", due="y", programme="z")


@pytest.mark.parametrize("language", ["da", "en"])
def test_the_dashboard_names_milestones_and_dates_as_the_emails_do(language: Language) -> None:
    p = Presenter(Texts(language), None, None, DUE)  # type: ignore[arg-type]  # titles and times need neither
    zone = ZoneInfo("Europe/Copenhagen")

    for key in ("session:leading-self", "track:observe-leader", "mentor_meeting:3", "approval"):
        assert p.milestone_title(key, PROGRAMME) == wording.milestone_title(key, PROGRAMME, language)
    assert p.when_long(DUE, zone) == DATES[language]
    assert p.when(DUE, zone) == {"da": "10. feb. 2027 16.00", "en": "10 Feb 2027 16:00"}[language]
    assert p.when(DUE, zone, seconds=True).endswith({"da": "16.00.00", "en": "16:00:00"}[language])


@pytest.mark.parametrize("url", ["talent.example.dk", "ftp://talent.example.dk", "https://", "https://x/?a=1"])
def test_a_public_url_that_is_not_an_http_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="TALENT_PUBLIC_URL"):
        Settings.model_validate({"TALENT_PUBLIC_URL": url})


def test_the_public_url_defaults_to_the_local_api_and_loses_a_trailing_slash() -> None:
    assert Settings().public_url == "http://127.0.0.1:8000"
    assert (
        Settings.model_validate({"TALENT_PUBLIC_URL": "https://talent.example.dk/"}).public_url
        == "https://talent.example.dk"
    )
