"""iCalendar feeds (RFC 5545): the sessions, track deadlines and mentor meetings due of a person's journeys.

Every entry has a UID made of its journey and what it is (`<journey_id>.session.kickoff@talent-journey`),
never of its time, so a rescheduled session or a deadline moved by a pause updates the entry a
subscriber already has instead of adding a second one. Its SEQUENCE counts the changes a subscriber
would see (time, place, progress), and DTSTAMP and LAST-MODIFIED are when the last one happened:
both come from the journey's history (`journey_history`), so the same history always renders the
same feed, byte for byte, whenever it is fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from icalendar import CLASS, STATUS, TRANSP, Calendar, Event

from domain import events as e
from domain.journey import JourneyState, MilestoneState, evolve
from domain.policy import IN_PROGRAMME_STATES
from domain.values import Language

__all__ = ["FEED_STATES", "FeedJourney", "FeedRole", "JourneyHistory", "Language", "journey_history", "render_feed"]

#: How the feed's owner follows a journey.
FeedRole = Literal["talent", "nearest_leader"]
EntryKind = Literal["session", "track", "mentor_meeting", "appointment"]

#: Journeys in a feed: those with sessions and deadlines ahead. A journey that ends (rejected,
#: withdrawn, evaluated) leaves the feed, and a subscribed calendar drops its entries.
FEED_STATES: frozenset[str] = IN_PROGRAMME_STATES
#: How long a session lasts: the programme model gives no length, so a teaching half-day, cut
#: short if the cohort's next session starts sooner (compressed demo programmes).
SESSION_LENGTH = timedelta(hours=3)
UID_DOMAIN = "talent-journey"
PRODID = "-//talent-journey//calendar feed//EN"
#: How often a subscribing client should fetch the feed again.
REFRESH_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class Entry:
    """One calendar entry of a journey, independent of language and reader.

    Two entries with the same key compare equal exactly when a subscriber would see no change.
    """

    key: str
    kind: EntryKind
    ref: str
    start: datetime
    end: datetime | None
    location: str
    #: Sessions: "tentative" (nomination not yet decided) or "confirmed"; milestones: their
    #: status ("open", "met", "slipped", "missed"), or the track's "submitted" / "returned".
    progress: str
    #: The journey is paused: a deadline moves when it resumes.
    paused: bool = False


@dataclass(frozen=True)
class Revision:
    """How often an entry changed (its SEQUENCE) and when it appeared and last changed."""

    sequence: int
    created_at: datetime
    modified_at: datetime


@dataclass(frozen=True)
class JourneyHistory:
    """A journey's state and the revisions of its calendar entries, folded from its events."""

    state: JourneyState
    revisions: Mapping[str, Revision]


@dataclass(frozen=True)
class FeedJourney:
    """A journey in someone's feed: as its talent, or as its nearest leader.

    A leader's feed names the talent (`talent_name`, from the vault) so that several talents'
    meetings can be told apart; an erased talent shows as erased, and a talent's own feed names
    nobody.
    """

    history: JourneyHistory
    role: FeedRole
    talent_name: str | None = None
    talent_erased: bool = False


def uid(journey_id: str, entry_key: str) -> str:
    """The entry's UID: stable for the journey's life, whatever happens to the entry's time."""
    return f"{journey_id}.{entry_key}@{UID_DOMAIN}"


def entries(state: JourneyState) -> list[Entry]:
    """The journey's calendar entries: its cohort's sessions, track deadlines, mentor meetings due."""
    out: list[Entry] = []
    sessions = sorted(state.cohort.sessions, key=lambda s: (s.starts_at, s.key))
    starts = sorted({s.starts_at for s in sessions})
    progress = "tentative" if state.state == "nominated" else "confirmed"
    for session in sessions:
        later = [t for t in starts if t > session.starts_at]
        length = min(SESSION_LENGTH, later[0] - session.starts_at) if later else SESSION_LENGTH
        out.append(
            Entry(
                key=f"session.{session.key}",
                kind="session",
                ref=session.key,
                start=session.starts_at,
                end=session.starts_at + length,
                location=session.location,
                progress=progress,
            )
        )
    paused = state.state == "paused"
    for m in state.milestones:
        if m.kind not in ("track", "mentor_meeting"):
            continue  # the approval is the coordinator's; a session's attendance deadline is its session
        kind: EntryKind = "track" if m.kind == "track" else "mentor_meeting"
        out.append(
            Entry(
                key=m.key.replace(":", "."),
                kind=kind,
                ref=m.ref,
                start=m.due_at,
                end=None,
                location="",
                progress=_progress(state, m),
                paused=paused and m.status == "open",
            )
        )
    appointment = state.appointment
    if appointment is not None:
        # Rules 4 (issue 14): the mentor meeting the nearest leader proposed, in both feeds; its UID
        # is the e-mailed invitation's (activities/invitation.py), so either updates the other.
        out.append(
            Entry(
                key=f"mentor_meeting_appointment.{appointment.number}",
                kind="appointment",
                ref=str(appointment.number),
                start=appointment.starts_at,
                end=appointment.ends_at,
                location="",
                progress="confirmed",
            )
        )
    return out


def _progress(state: JourneyState, m: MilestoneState) -> str:
    if m.kind == "track" and m.status != "met":
        track = state.track(m.ref)
        if track is not None and track.status in ("submitted", "returned"):
            return track.status
    return m.status


def journey_history(events: Iterable[tuple[datetime, e.Event]]) -> JourneyHistory | None:
    """Fold a journey's events (with when each occurred), counting each entry's visible changes.

    The events of one decision share their `occurred_at`, and only the state after all of them was
    ever visible: entries are compared once per decision, not after every event.
    """
    state: JourneyState | None = None
    revisions: dict[str, Revision] = {}
    seen: dict[str, Entry] = {}
    decided_at: datetime | None = None
    for occurred_at, event in events:
        if state is not None and decided_at is not None and occurred_at != decided_at:
            _revise(state, decided_at, seen, revisions)
        state = evolve(state, event)
        decided_at = occurred_at
    if state is None or decided_at is None:
        return None
    _revise(state, decided_at, seen, revisions)
    return JourneyHistory(state, revisions)


def _revise(state: JourneyState, at: datetime, seen: dict[str, Entry], revisions: dict[str, Revision]) -> None:
    """Note, at `at`, every entry that is new or differs from how it was last seen."""
    for entry in entries(state):
        if seen.get(entry.key) == entry:
            continue
        seen[entry.key] = entry
        revision = revisions.get(entry.key)
        revisions[entry.key] = (
            Revision(0, at, at) if revision is None else Revision(revision.sequence + 1, revision.created_at, at)
        )


# -- rendering -----------------------------------------------------------------------------------

_TEXTS: dict[Language, dict[str, str]] = {
    "da": {
        "calendar": "Talentforløb",
        "track": "Frist: {title}",
        "mentor_meeting": "Frist: mentormøde {n} af {count}",
        "mentor_meeting_about": "Mentormøde {n} af {count} mellem talentet og den nærmeste leder skal være holdt.",
        "teaching": "Undervisning",
        "dilemma_lab": "Dilemmalab",
        "network": "Netværk",
        "tentative": "Indstillingen venter på en beslutning.",
        "paused": "Forløbet er sat på pause: fristen flyttes, når det genoptages.",
        "met": "klaret",
        "slipped": "overskredet",
        "missed": "ikke nået",
        "submitted": "afleveret, venter på godkendelse",
        "returned": "sendt retur",
        "erased": "slettet person",
        "appointment": "Mentormøde {n}",
        "appointment_about": "Mentormødet mellem talentet og den nærmeste leder, som lederen har foreslået.",
    },
    "en": {
        "calendar": "Talent journeys",
        "track": "Due: {title}",
        "mentor_meeting": "Due: mentor meeting {n} of {count}",
        "mentor_meeting_about": "Mentor meeting {n} of {count} between the talent and the nearest leader is due.",
        "teaching": "Teaching",
        "dilemma_lab": "Dilemma lab",
        "network": "Network",
        "tentative": "The nomination awaits a decision.",
        "paused": "The journey is paused: the deadline moves when it resumes.",
        "met": "done",
        "slipped": "overdue",
        "missed": "missed",
        "submitted": "submitted, awaiting sign-off",
        "returned": "returned",
        "erased": "erased person",
        "appointment": "Mentor meeting {n}",
        "appointment_about": "The mentor meeting between the talent and the nearest leader, as the leader proposed it.",
    },
}


def render_feed(journeys: Sequence[FeedJourney], *, language: Language = "da") -> bytes:
    """The feed as iCalendar text: one VEVENT per entry of every journey in an open state.

    Times carry the programme's time zone (TZID, with its VTIMEZONE); stamps are UTC. Deadlines
    are instants (DTSTART without DTEND) and transparent, so they never block free/busy time.
    """
    texts = _TEXTS[language]
    calendar = Calendar()
    calendar.prodid = PRODID
    calendar.version = "2.0"
    calendar.calendar_name = texts["calendar"]
    calendar.refresh_interval = REFRESH_INTERVAL
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("X-PUBLISHED-TTL", "PT1H")  # REFRESH-INTERVAL for clients that predate RFC 7986
    instants: list[datetime] = []
    for journey in sorted(journeys, key=lambda j: j.history.state.journey_id):
        state = journey.history.state
        if state.state not in FEED_STATES:
            continue
        for entry in sorted(entries(state), key=lambda x: (x.start, x.key)):
            event = _event(journey, entry, texts)
            calendar.add_component(event)
            instants.append(entry.start)
    if instants:
        # A VTIMEZONE covering the feed's years only: the zone's whole table would be kilobytes.
        first, last = min(instants), max(instants)
        calendar.add_missing_timezones(first_date=date(first.year - 1, 1, 1), last_date=date(last.year + 2, 1, 1))
    text: bytes = calendar.to_ical()
    return text


def _event(journey: FeedJourney, entry: Entry, texts: Mapping[str, str]) -> Event:
    state = journey.history.state
    zone = state.calendar.tz
    revision = journey.history.revisions.get(entry.key) or Revision(0, state.nominated_at, state.nominated_at)
    programme = state.programme
    lines = [programme.title]
    if entry.kind == "session":
        definition = next((s for s in programme.sessions if s.key == entry.ref), None)
        summary = definition.title if definition is not None else entry.ref
        if definition is not None:
            lines.append(texts[definition.kind])
        if entry.progress == "tentative":
            lines.append(texts["tentative"])
        status = STATUS.TENTATIVE if entry.progress == "tentative" else STATUS.CONFIRMED
        # The talent takes part; the leader's entry is for information and leaves them free.
        transparency = TRANSP.OPAQUE if journey.role == "talent" else TRANSP.TRANSPARENT
    elif entry.kind == "appointment":
        summary = texts["appointment"].format(n=entry.ref)
        lines.append(texts["appointment_about"])
        status = STATUS.CONFIRMED
        transparency = TRANSP.OPAQUE  # both take part
    else:
        if entry.kind == "track":
            track = next((t for t in programme.tracks if t.key == entry.ref), None)
            summary = texts["track"].format(title=track.title if track is not None else entry.ref)
            if track is not None and track.description:
                lines.append(track.description)
        else:
            count = programme.mentor_meetings.count
            summary = texts["mentor_meeting"].format(n=entry.ref, count=count)
            lines.append(texts["mentor_meeting_about"].format(n=entry.ref, count=count))
        if entry.progress in texts:
            summary += f" ({texts[entry.progress]})"
        if entry.paused:
            lines.append(texts["paused"])
        status = STATUS.CONFIRMED
        transparency = TRANSP.TRANSPARENT
    if journey.role == "nearest_leader":
        talent = _talent_label(journey, texts)
        if talent:
            summary += f" – {talent}"
    return Event.new(
        uid=uid(state.journey_id, entry.key),
        sequence=revision.sequence,
        stamp=revision.modified_at.astimezone(UTC),
        created=revision.created_at.astimezone(UTC),
        last_modified=revision.modified_at.astimezone(UTC),
        start=entry.start.astimezone(zone),
        end=entry.end.astimezone(zone) if entry.end is not None else None,
        summary=summary,
        description="\n".join(lines),
        location=entry.location or None,
        status=status,
        transparency=transparency,
        classification=CLASS.PRIVATE,
    )


def _talent_label(journey: FeedJourney, texts: Mapping[str, str]) -> str | None:
    """The talent as a leader's feed names them: erased shows as erased, whatever else is known."""
    if journey.talent_erased or journey.history.state.talent_id in journey.history.state.erased:
        return texts["erased"]
    return journey.talent_name
