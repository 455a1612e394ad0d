"""The simulation's script: its pace, the four scripted talents, and what each of their people does when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import holidays

from domain import commands as c
from domain.calendar import Delay, WorkingCalendar
from domain.events import AttendanceStatus
from domain.journey import JourneyState
from domain.programme import Cohort, CohortSession, Programme
from domain.values import MilestoneKey

#: Working days the paused talent is away: leave over Easter.
PAUSE_WORKING_DAYS = 20
COORDINATOR: c.Actor = {"actor_id": "sim-coordinator", "actor_role": "coordinator"}
HR_SYSTEM: c.Actor = {"actor_id": "sim-hr", "actor_role": "hr_system"}


@dataclass(frozen=True)
class Pace:
    """How fast the scripted people act.

    A real programme runs in days: sessions every four weeks, work handed in days ahead. A
    programme compressed into minutes (ISO durations, the whole programme under a day) runs the
    same script with a day shrunk to two seconds and a session every minute.
    """

    compressed: bool
    day: timedelta
    session_gap: timedelta

    @classmethod
    def of(cls, programme: Programme) -> Pace:
        """The pace that fits the programme's length."""
        end = programme.completion.evaluate_after
        if end.clock == "calendar" and end.nominal_days() < 1:
            return cls(compressed=True, day=timedelta(seconds=2), session_gap=timedelta(minutes=1))
        return cls(compressed=False, day=timedelta(days=1), session_gap=timedelta(weeks=4))

    @property
    def soon(self) -> timedelta:
        """The smallest step: 'right away' (15 minutes in days)."""
        return self.day / 96

    @property
    def time_format(self) -> str:
        """How timeline instants are printed."""
        return "%a %Y-%m-%d %H:%M:%S" if self.compressed else "%a %Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Scenario:
    """One scripted talent, their nearest leader and the leader's leader (synthetic ids only)."""

    name: str
    summary: str
    absent_from: str | None = None
    holds_meetings: bool = True
    #: The talent logs each mentor meeting and the nearest leader confirms it (else the leader logs it).
    talent_logs_meetings: bool = False
    pause: tuple[datetime, datetime] | None = None
    records_outcome: bool = False

    @property
    def journey_id(self) -> str:
        """The journey's id, also the file name of its recorded history."""
        return f"sim-{self.name}"

    def person(self, role: str) -> str:
        """A synthetic person id for a role on this journey."""
        return f"sim-{self.name}-{role}"

    @property
    def talent(self) -> c.Actor:
        """The talent as an actor."""
        return {"actor_id": self.person("talent"), "actor_role": "talent"}

    @property
    def leader(self) -> c.Actor:
        """The nearest leader as an actor."""
        return {"actor_id": self.person("leader"), "actor_role": "leader"}


def next_monday(now: datetime, programme: Programme) -> date:
    """The first Monday after `now` in the programme's time zone."""
    today = now.astimezone(programme.working_calendar.tz).date()
    return today + timedelta(days=7 - today.weekday())


def simulation_cohort(programme: Programme, pace: Pace, monday: date) -> Cohort:
    """A cohort starting on `monday`: sessions every four weeks at 09:00 (every minute when compressed)."""
    tz = programme.working_calendar.tz
    first = datetime.combine(monday, datetime.min.time(), tzinfo=tz) + timedelta(hours=9)
    sessions = tuple(
        CohortSession(key=s.key, starts_at=first + i * pace.session_gap, location="Simulation")
        for i, s in enumerate(programme.sessions)
    )
    iso_programme = programme.completion.evaluate_after.clock == "calendar"
    return Cohort(
        cohort_id=f"sim-{programme.id}"[:64],
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=monday,
        # ISO durations count from an instant: the cohort starts with its first session.
        starts_at=first if iso_programme else None,
        capacity=24,
        coordinator_id=COORDINATOR["actor_id"],
        sessions=sessions,
    )


def maundy_thursday(year: int) -> date:
    """Maundy Thursday of `year`, from the Danish holiday table of the `holidays` package."""
    (day,) = holidays.country_holidays("DK", years=year, language="en_US").get_named("Maundy Thursday", lookup="exact")
    return day


def pause_window(programme: Programme, pace: Pace, start: datetime, end: datetime) -> tuple[datetime, datetime, str]:
    """When the paused talent leaves and comes back, and how that was chosen.

    A real programme: from the Tuesday before Maundy Thursday (10:00; sessions fall on Mondays)
    of the first Easter inside the programme, back 20 working days later by the programme's
    calendar. A compressed programme has no Easter: it pauses 40 % into the programme for as
    long as 20 working days last at its pace.
    """
    cal = programme.working_calendar
    if pace.compressed:
        paused = start + (end - start) * 2 / 5
        resumed = paused + pace.day * PAUSE_WORKING_DAYS * 7 / 5
        return paused, resumed, "40 % into the programme, at its compressed pace"
    for year in range(start.year, end.year + 1):
        paused = datetime.combine(maundy_thursday(year) - timedelta(days=2), datetime.min.time(), tzinfo=cal.tz)
        paused += timedelta(hours=10)
        if start < paused < end:
            return paused, cal.shift_working_days(paused, PAUSE_WORKING_DAYS), f"over Easter {year}"
    middle = _working_day_before(cal, start + (end - start) * 2 / 5).replace(hour=10, minute=0)
    return middle, cal.shift_working_days(middle, PAUSE_WORKING_DAYS), "mid-programme (no Easter falls inside it)"


def scenarios(programme: Programme, pause: tuple[datetime, datetime], why: str) -> tuple[Scenario, ...]:
    """The four scripted journeys; `why` says how the pause was placed."""
    mandatory = programme.mandatory_sessions()
    skipped = mandatory[len(mandatory) // 2].key
    return (
        Scenario(
            "punctual",
            "every session attended, tracks and mentor meetings ahead of their deadlines (the talent logs each "
            "meeting, the nearest leader confirms it)",
            records_outcome=True,
            talent_logs_meetings=True,
        ),
        Scenario("absent", f"absent from the mandatory session {skipped!r}, otherwise punctual", absent_from=skipped),
        Scenario("no-meetings", "punctual, but the nearest leader never holds a mentor meeting", holds_meetings=False),
        Scenario("paused", f"punctual, paused for {PAUSE_WORKING_DAYS} working days {why}", pause=pause),
    )


def _working_day_before(cal: WorkingCalendar, at: datetime) -> datetime:
    """`at`, moved back to the nearest working day (people hand in work on working days)."""
    local = cal.local(at)
    while not cal.is_working_day(local.date()):
        local -= timedelta(days=1)
    return local


def _working_day_after(cal: WorkingCalendar, at: datetime) -> datetime:
    """`at`, moved on to the nearest working day."""
    local = cal.local(at)
    while not cal.is_working_day(local.date()):
        local += timedelta(days=1)
    return local


def first_follow_up(programme: Programme, evaluate_at: datetime) -> datetime | None:
    """When the first outcome follow-up is asked, for a journey evaluated at `evaluate_at`."""
    fu, cal = programme.follow_up, programme.working_calendar
    if fu.after is not None:
        return cal.add(evaluate_at, fu.after[0]) if fu.after else None
    return cal.add(evaluate_at, Delay(iso=f"P{fu.months[0]}M")) if fu.months else None


def plan(scenario: Scenario, state: JourneyState, pace: Pace, now: datetime) -> list[tuple[datetime, c.Command]]:
    """What the scenario's people do from `now` on, given the journey as it stands.

    Planned at enrolment and again after a pause, since resuming moves the open deadlines.
    Anything falling inside a pause still to come is left for the plan made after it.
    """
    cal = state.calendar
    pausing = scenario.pause is not None and now < scenario.pause[0]

    def at(when: datetime) -> datetime:
        return max(when, now + pace.soon)

    def on_working_day(when: datetime) -> datetime:
        return when if pace.compressed else _working_day_before(cal, when)

    steps: list[tuple[datetime, c.Command]] = []
    for session in state.cohort.sessions:
        if state.attendance_of(session.key) is not None:
            continue
        status: AttendanceStatus = "absent" if session.key == scenario.absent_from else "attended"
        if scenario.pause is not None and scenario.pause[0] <= session.starts_at < scenario.pause[1]:
            status = "excused"  # on leave: recorded when the journey resumes
        record = c.RecordAttendance(**COORDINATOR, session_key=session.key, status=status)
        steps.append((at(session.starts_at + pace.day / 6), record))
    for track in state.programme.tracks:
        progress, milestone = state.track(track.key), state.milestone(MilestoneKey.track(track.key))
        if progress is None or milestone is None or progress.done_at is not None:
            continue
        submitted = now
        if progress.status in ("open", "returned"):
            submitted = at(on_working_day(milestone.due_at - 4 * pace.day))
            steps.append((submitted, c.SubmitTrack(**scenario.talent, track_key=track.key)))
        if track.leader_signoff:
            signed = submitted + pace.day
            if not pace.compressed and (later := _working_day_after(cal, signed)) < milestone.due_at:
                signed = later
            steps.append((at(signed), c.SignOffTrack(**scenario.leader, track_key=track.key, decision="approve")))
    if scenario.holds_meetings:
        # Meetings the talent logged before a pause are confirmed once it is over.
        for pending in state.pending_meetings():
            steps.append((at(now), c.ConfirmMentorMeeting(**scenario.leader, held_on=pending.held_on)))
        previous: datetime | None = None
        for number in range(len(state.meetings) + 1, state.programme.mentor_meetings.count + 1):
            milestone = state.milestone(MilestoneKey.mentor_meeting(number))
            if milestone is None:
                continue
            held = at(on_working_day(milestone.due_at - 3 * pace.day))
            if previous is not None and held < previous + pace.day:
                held = previous + pace.day  # one meeting a day: a meeting is known by its date
            previous = held
            held_on = cal.local(held).date()
            if scenario.talent_logs_meetings:
                steps.append((held, c.LogMentorMeeting(**scenario.talent, held_on=held_on)))
                steps.append((held + pace.soon, c.ConfirmMentorMeeting(**scenario.leader, held_on=held_on)))
            else:
                steps.append((held, c.LogMentorMeeting(**scenario.leader, held_on=held_on)))
    if scenario.records_outcome and state.evaluate_at is not None:
        asked = first_follow_up(state.programme, state.evaluate_at)
        if asked is not None:
            answered = asked + 2 * pace.day
            steps.append(
                (
                    answered,
                    c.RecordOutcome(
                        **HR_SYSTEM, applied_for_leader_post=True, appointed=True, on=cal.local(answered).date()
                    ),
                )
            )
    if pausing and scenario.pause is not None:
        paused, resumed = scenario.pause
        steps = [s for s in steps if s[0] < paused]
        steps += [(paused, c.PauseJourney(**COORDINATOR)), (resumed, c.ResumeJourney(**COORDINATOR))]
    return steps


def nomination(scenario: Scenario, programme: Programme, cohort: Cohort) -> c.NominateTalent:
    """The scenario's nomination, by the talent's nearest leader."""
    return c.NominateTalent(
        **scenario.leader,
        journey_id=scenario.journey_id,
        talent_id=scenario.person("talent"),
        nearest_leader_id=scenario.person("leader"),
        leaders_leader_id=scenario.person("boss"),
        programme=programme,
        cohort=cohort,
        rules_version=c.CURRENT_RULES_VERSION,
    )
