"""The simulation's script: its pace, the scripted talents, and what each of their people does when."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import holidays

from domain import commands as c
from domain.calendar import Delay, WorkingCalendar
from domain.events import AttendanceStatus
from domain.journey import JourneyState
from domain.programme import Cohort, CohortSession, Programme
from domain.values import MilestoneKey

#: Working days the paused talent is away: leave over Easter.
PAUSE_WORKING_DAYS = 20
#: Working days of the paused talent's second leave, around the July closure (which the clock skips).
SUMMER_PAUSE_WORKING_DAYS = 10
#: Working days into the sign-off grace the late leader signs off the last track.
LATE_SIGNOFF_WORKING_DAYS = 3
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
    #: The coordinator pauses the journey over each window (work done meanwhile is recorded).
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    records_outcome: bool = False
    #: When the coordinator approves the nomination (None: an hour after it came in).
    approves_at: datetime | None = None
    #: A track the nearest leader signs off only after the programme ended, inside the sign-off grace.
    late_signoff: str | None = None

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


def summer_pause_window(
    programme: Programme, pace: Pace, start: datetime, end: datetime, after: datetime
) -> tuple[datetime, datetime, str] | None:
    """The paused talent's second leave, after `after`: around the programme's July closure.

    A real programme: from 10:00 three working days before the first July closure inside the
    programme, back 10 working days later by its calendar, which skips the closure. A compressed
    programme pauses 70 % into the programme for as long as 10 working days last at its pace. None
    when no July closure falls inside a real programme.
    """
    cal = programme.working_calendar
    if pace.compressed:
        paused = start + (end - start) * 7 / 10
        return paused, paused + pace.day * SUMMER_PAUSE_WORKING_DAYS * 7 / 5, "70 % into the programme"
    for first, _, reason in programme.calendar.periods():
        begins = datetime.combine(first, datetime.min.time(), tzinfo=cal.tz)
        if first.month != 7 or not after < begins < end:
            continue
        paused = cal.local(begins)
        for _ in range(3):
            paused = _working_day_before(cal, paused - timedelta(days=1))
        paused = paused.replace(hour=10, minute=0)
        return paused, cal.shift_working_days(paused, SUMMER_PAUSE_WORKING_DAYS), f"over the closure {reason!r}"
    return None


def late_approval_at(programme: Programme, cohort: Cohort, pace: Pace) -> datetime:
    """When the late coordinator approves: a day after the second session's attendance was due, so
    two sessions were held before the talent joined (their milestones are waived, PRODUCT §8.4)."""
    cal = programme.working_calendar
    second = sorted(cohort.sessions, key=lambda x: x.starts_at)[1]
    wanted = cal.add(second.starts_at, programme.attendance_grace) + pace.day
    return wanted if pace.compressed else _working_day_after(cal, wanted)


def scenarios(
    programme: Programme,
    pauses: tuple[tuple[datetime, datetime], ...],
    why: str,
    late_approval: datetime,
) -> tuple[Scenario, ...]:
    """The scripted journeys; `why` says how the pauses were placed."""
    mandatory = programme.mandatory_sessions()
    skipped = mandatory[len(mandatory) // 2].key
    last_track = max(programme.tracks, key=lambda t: t.due.nominal_days()).key
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
        Scenario("paused", f"punctual, paused {why}; works on during the pauses", pauses=pauses),
        Scenario(
            "late-approval",
            "the coordinator approves after two sessions were held; punctual from then on",
            approves_at=late_approval,
        ),
        Scenario(
            "late-signoff",
            f"punctual, but the nearest leader signs off {last_track!r} only after the programme ended, "
            f"{LATE_SIGNOFF_WORKING_DAYS} working days into the sign-off grace",
            late_signoff=last_track,
        ),
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

    Planned at enrolment and again after each pause, since resuming moves the open deadlines.
    A pause stops the clock, not the people (rules 3): work falling inside the next pause is done
    then; what falls after it is left for the plan made when it is over. Sessions held during a
    pause are excused by the journey itself, and sessions held before the talent joined are waived.
    """
    cal = state.calendar
    upcoming = next((p for p in scenario.pauses if now < p[0]), None)

    def at(when: datetime) -> datetime:
        return max(when, now + pace.soon)

    def on_working_day(when: datetime) -> datetime:
        return when if pace.compressed else _working_day_before(cal, when)

    steps: list[tuple[datetime, c.Command]] = []
    for session in state.cohort.sessions:
        if state.attendance_of(session.key) is not None:
            continue
        if any(paused <= session.starts_at < resumed for paused, resumed in scenario.pauses):
            continue  # on leave: excused when the journey resumes
        session_milestone = state.milestone(MilestoneKey.session(session.key))
        if session_milestone is not None and session_milestone.status == "waived":
            continue  # held before the talent joined
        status: AttendanceStatus = "absent" if session.key == scenario.absent_from else "attended"
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
            if track.key == scenario.late_signoff and state.evaluate_at is not None:
                # After the programme's end, inside the sign-off grace: the evaluation waits for it.
                signed = state.evaluate_at + LATE_SIGNOFF_WORKING_DAYS * pace.day
                if not pace.compressed:
                    signed = cal.shift_working_days(state.evaluate_at, LATE_SIGNOFF_WORKING_DAYS).replace(hour=10)
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
            if state.rules_version >= 4:
                # Rules 4: the nearest leader proposes the meeting ahead (once the one before is held).
                starts_at = held - pace.day / 24
                proposed_at = at(max(held - 7 * pace.day, (previous or now) + 2 * pace.soon))
                if proposed_at < starts_at:
                    steps.append((proposed_at, c.ProposeMentorMeeting(**scenario.leader, starts_at=starts_at)))
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
    steps += _clarity(scenario, state, pace, now, at)
    if upcoming is not None:
        paused, resumed = upcoming
        steps = [s for s in steps if s[0] < resumed]
        steps += [(paused, c.PauseJourney(**COORDINATOR)), (resumed, c.ResumeJourney(**COORDINATOR))]
    return steps


def _clarity(
    scenario: Scenario, state: JourneyState, pace: Pace, now: datetime, at: Callable[[datetime], datetime]
) -> list[tuple[datetime, c.Command]]:
    """Rules 4 (issue 14): the talent answers the readiness question at enrolment (not now) and at
    evaluation (yes, or no when the programme was not for them), and debriefs each dilemma lab."""
    if state.rules_version < 4:
        return []
    steps: list[tuple[datetime, c.Command]] = []
    if state.readiness_stage == "enrolment" and state.readiness_at("enrolment") is None:
        steps.append((at(now), c.AssessReadiness(**scenario.talent, stage="enrolment", answer="not_now")))
    labs = {x.key for x in state.programme.sessions if x.kind == "dilemma_lab"}
    for session in state.cohort.sessions:
        away = session.key == scenario.absent_from or any(p <= session.starts_at < r for p, r in scenario.pauses)
        if session.key in labs and not away and state.debrief_of(session.key) is None:
            debrief = c.DebriefLab(**scenario.talent, session_key=session.key, clarity=4)
            steps.append((at(max(session.starts_at, now) + pace.day / 3), debrief))
    if state.evaluate_at is not None and scenario.late_signoff is None:
        answer: Literal["yes", "no"] = "yes" if scenario.holds_meetings else "no"
        final = c.AssessReadiness(**scenario.talent, stage="evaluation", answer=answer)
        steps.append((at(state.evaluate_at + pace.day), final))
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
