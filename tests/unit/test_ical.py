"""iCalendar feeds: rendered from a journey's history, parsed back, stable across reschedules and pauses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from api.ical import FeedJourney, FeedRole, JourneyHistory, Language, journey_history, render_feed
from domain import commands as c
from tests.support import COORD, LEADER, TALENT, Journey
from tests.unit.journeys import (
    APPROVED_AT,
    COHORT,
    MEETING_1_DUE,
    NOMINATED_AT,
    OBSERVE_DUE,
    PROGRAMME,
    active,
    at,
    enrolled,
    nominated,
)


def history_of(j: Journey) -> JourneyHistory:
    found = journey_history((n.occurred_at, n.event) for n in j.history)
    assert found is not None
    return found


def feed(
    j: Journey, role: FeedRole = "talent", *, language: Language = "da", talent_name: str | None = None
) -> tuple[Calendar, dict[str, Event]]:
    """Render the journey's feed and parse it back: the calendar and its events by UID."""
    text = render_feed([FeedJourney(history_of(j), role, talent_name=talent_name)], language=language)
    calendar = Calendar.from_ical(text)
    assert isinstance(calendar, Calendar)
    events = {str(ev.uid): ev for ev in calendar.events}
    assert len(events) == len(calendar.events), "UIDs must be unique"
    return calendar, events


def when(ev: Event) -> datetime:
    """An entry's start, as a date-time (every entry has one)."""
    start = ev.start
    assert isinstance(start, datetime)
    return start


def uid(key: str) -> str:
    return f"j-1.{key}@talent-journey"


def test_an_enrolled_talents_feed_has_every_session_track_deadline_and_mentor_meeting_with_place_and_time() -> None:
    calendar, events = feed(enrolled())

    assert calendar["VERSION"] == "2.0" and "talent-journey" in str(calendar["PRODID"])
    assert calendar["X-WR-CALNAME"] == "Talentforløb"
    sessions = [s.key for s in PROGRAMME.sessions]
    tracks = [t.key for t in PROGRAMME.tracks]
    assert set(events) == {
        *(uid(f"session.{k}") for k in sessions),
        *(uid(f"track.{k}") for k in tracks),
        *(uid(f"mentor_meeting.{n}") for n in range(1, PROGRAMME.mentor_meetings.count + 1)),
    }
    kickoff = events[uid("session.kickoff")]
    assert when(kickoff) == COHORT.sessions[0].starts_at
    assert (when(kickoff).hour, when(kickoff).minute) == (9, 0)
    assert kickoff.end - kickoff.start == timedelta(hours=3)
    assert str(kickoff.location) == "UCN Aalborg"
    assert str(kickoff["SUMMARY"]) == "Opstart: hvad vil det sige at være leder?"
    assert kickoff["DTSTART"].params["TZID"] == "Europe/Copenhagen"
    assert kickoff["STATUS"] == "CONFIRMED" and kickoff["TRANSP"] == "OPAQUE"
    observe = events[uid("track.observe-leader")]
    assert observe.start == OBSERVE_DUE and "DTEND" not in observe
    assert str(observe["SUMMARY"]) == "Frist: Øvebane 1: følg din leder"
    assert observe["TRANSP"] == "TRANSPARENT"
    meeting = events[uid("mentor_meeting.1")]
    assert meeting.start == MEETING_1_DUE and str(meeting["SUMMARY"]) == "Frist: mentormøde 1 af 5"
    # Stamps are UTC and come from the history, not the clock: sessions appeared at the nomination
    # and changed (tentative -> confirmed) at the approval; deadlines appeared at the approval.
    assert kickoff.stamp == APPROVED_AT.astimezone(UTC) and kickoff.sequence == 1
    assert kickoff.created == NOMINATED_AT.astimezone(UTC)
    assert observe.stamp == APPROVED_AT.astimezone(UTC) and observe.sequence == 0
    # Every TZID used has its VTIMEZONE.
    assert calendar.get_missing_tzids() == set() and [tz.tz_name for tz in calendar.timezones] == ["Europe/Copenhagen"]


def test_the_same_history_renders_the_same_bytes() -> None:
    j = active()
    first = render_feed([FeedJourney(history_of(j), "talent")])
    assert render_feed([FeedJourney(history_of(j), "talent")]) == first


def test_a_rescheduled_session_keeps_its_uid_moves_its_time_and_raises_its_sequence() -> None:
    j = enrolled()
    _, before = feed(j)
    moved_to = at(2027, 1, 13, 13)
    rescheduled_at = at(2026, 12, 20, 12)
    j.send(c.RescheduleSession(**COORD, session_key="kickoff", starts_at=moved_to), rescheduled_at)
    _, after = feed(j)

    assert set(after) == set(before)
    old, new = before[uid("session.kickoff")], after[uid("session.kickoff")]
    assert new.start == moved_to > old.start and new.end == moved_to + timedelta(hours=3)
    assert new.sequence == old.sequence + 1
    assert new.stamp == rescheduled_at.astimezone(UTC) > old.stamp
    assert new.created == old.created
    # Nothing else changed, so nothing else is revised.
    for key in set(before) - {uid("session.kickoff")}:
        assert after[key].sequence == before[key].sequence and after[key].start == before[key].start, key
    # Moved back again: still the same entry, revised once more.
    j.send(c.RescheduleSession(**COORD, session_key="kickoff", starts_at=when(old)), at(2026, 12, 21, 12))
    _, again = feed(j)
    assert (
        again[uid("session.kickoff")].start == old.start and again[uid("session.kickoff")].sequence == new.sequence + 1
    )


def test_a_pause_and_resume_shift_deadlines_under_the_same_uids() -> None:
    j = active(at(2027, 2, 1))
    _, before = feed(j)
    j.send(c.PauseJourney(**COORD, reason_ref="t-9"), at(2027, 2, 1, 11))
    _, paused = feed(j)
    observe = uid("track.observe-leader")
    assert "pause" in str(paused[observe]["DESCRIPTION"]) and paused[observe].sequence == before[observe].sequence + 1
    assert paused[observe].start == before[observe].start  # the clock stopped; the shift comes on resuming
    j.send(c.ResumeJourney(**COORD), at(2027, 2, 15, 11))
    _, after = feed(j)

    assert set(after) == set(before)
    assert after[observe].start == before[observe].start + timedelta(days=14)  # ten working days later
    assert after[observe].sequence == before[observe].sequence + 2
    assert "pause" not in str(after[observe]["DESCRIPTION"])
    # Sessions are the cohort's: a pause does not move them.
    assert after[uid("session.leading-self")].start == before[uid("session.leading-self")].start


def test_progress_shows_in_the_summary_and_counts_as_a_revision() -> None:
    j = active(at(2027, 2, 1))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-5"), at(2027, 2, 2, 10))
    _, submitted = feed(j)
    key = uid("track.observe-leader")
    assert str(submitted[key]["SUMMARY"]).endswith("(afleveret, venter på godkendelse)")
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 2, 3, 10))
    _, done = feed(j, language="en")
    assert str(done[key]["SUMMARY"]) == "Due: Øvebane 1: følg din leder (done)"
    assert done[key].sequence == submitted[key].sequence + 1


def test_a_nominated_journey_shows_its_sessions_as_tentative_and_no_deadlines_yet() -> None:
    _, events = feed(nominated())
    assert set(events) == {uid(f"session.{s.key}") for s in PROGRAMME.sessions}
    assert all(ev["STATUS"] == "TENTATIVE" for ev in events.values())


def test_a_journey_that_ended_leaves_the_feed() -> None:
    j = enrolled()
    j.send(c.WithdrawTalent(**COORD, reason_ref="t-7"), at(2026, 12, 10))
    calendar, events = feed(j)
    assert events == {} and calendar["X-WR-CALNAME"] == "Talentforløb"


def test_a_leaders_feed_names_the_talent_and_an_erased_talent_only_as_erased() -> None:
    j = enrolled()
    _, named = feed(j, "nearest_leader", talent_name="Mette Hansen")
    kickoff = named[uid("session.kickoff")]
    assert str(kickoff["SUMMARY"]).endswith("– Mette Hansen")
    assert kickoff["TRANSP"] == "TRANSPARENT"  # the leader does not attend: not busy

    # Erased in the vault (the API passes the flag), or noted in the journey: no name, ever.
    erased_text = render_feed([FeedJourney(history_of(j), "nearest_leader", talent_erased=True)]).decode()
    j.send(c.RecordErasure(**COORD, person_id="p-talent"), at(2026, 12, 10))
    noted = render_feed([FeedJourney(history_of(j), "nearest_leader", talent_name="Mette Hansen")]).decode()
    for text in (erased_text, noted):
        assert "Mette" not in text
        parsed = Calendar.from_ical(text)
        assert isinstance(parsed, Calendar)
        assert "– slettet person" in str(parsed.events[0]["SUMMARY"])


def test_a_talents_own_feed_names_nobody() -> None:
    text = render_feed([FeedJourney(history_of(enrolled()), "talent", talent_name="Mette Hansen")]).decode()
    assert "Mette" not in text and "p-talent" not in text and "p-leader" not in text


def test_several_journeys_share_one_calendar_with_distinct_uids() -> None:
    mine = enrolled()
    other = enrolled(journey_id="j-2", talent_id="p-other")
    text = render_feed(
        [FeedJourney(history_of(mine), "nearest_leader"), FeedJourney(history_of(other), "nearest_leader")]
    )
    calendar = Calendar.from_ical(text)
    uids = [str(ev.uid) for ev in calendar.events]
    assert len(uids) == len(set(uids)) == 2 * (len(PROGRAMME.sessions) + len(PROGRAMME.tracks) + 5)
    assert {u.split(".", 1)[0] for u in uids} == {"j-1", "j-2"}
    assert len(calendar.timezones) == 1
