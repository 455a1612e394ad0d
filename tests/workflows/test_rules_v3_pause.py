"""Rules 3 on the time-skipping server: a pause across a closure stops the clock, not the people; resuming
moves the journey's own deadlines by the working days outside the closure and never a cohort session."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.programme import CalendarDef, Programme
from tests.support import COORD, CPH, LEADER, TALENT, reference_cohort, reference_programme
from tests.workflows.journeys import (
    Journeys,
    Pool,
    about,
    advance_to,
    approve,
    assert_contiguous,
    is_working_day,
    local,
    milestone,
    of_type,
    parse_time,
    send,
    status,
    stored_events,
)

MINUTE = timedelta(minutes=1)
#: What dk-municipal takes off besides the public holidays: Grundlovsdag, Christmas Eve, New Year's Eve.
MUNICIPAL_DAYS_OFF = {(6, 5), (12, 24), (12, 31)}


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    """A Copenhagen wall-clock instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=CPH)


def with_closure(unique: str, first: date, last: date) -> Programme:
    """The reference programme on dk-municipal with one closure (the reference's own closures are
    dated 2026-2029; the test server's clock may be anywhere by the time this test runs)."""
    calendar = CalendarDef.model_validate(
        {"name": "dk-municipal", "closures": [{"from": first, "to": last, "reason": "Vinterferie"}]}
    )
    return reference_programme().model_copy(update={"id": f"tnl-{unique}", "calendar": calendar})


async def test_rules3_a_pause_across_a_closure_takes_work_excuses_the_session_held_and_keeps_session_dates(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = local(await time_env.get_current_time())
    start = now.date() + timedelta(days=14 + (7 - now.weekday()) % 7)  # a Monday two weeks ahead or more
    closure = (start + timedelta(days=35), start + timedelta(days=41))  # the sixth week: a winter break
    programme = with_closure(unique, *closure)
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=start)

    def counts(day: date) -> bool:
        """A working day of this programme's calendar, counted by hand."""
        closed = closure[0] <= day <= closure[1]
        return is_working_day(day) and (day.month, day.day) not in MUNICIPAL_DAYS_OFF and not closed

    def moved(due: datetime, n: int) -> datetime:
        day = local(due).date()
        while n > 0:
            day += timedelta(days=1)
            n -= counts(day)
        return at_local(day, local(due).hour, local(due).minute)

    handle = await journeys.start(unique, programme, cohort, rules_version=3)
    await approve(handle)
    await advance_to(time_env, at_local(start, 12))
    await send(handle, c.RecordAttendance(**COORD, session_key="kickoff", status="attended"))
    paused_at, resumed_at = at_local(start + timedelta(days=21), 10), at_local(start + timedelta(days=42), 10)
    await advance_to(time_env, paused_at)
    await send(handle, c.PauseJourney(**COORD, reason_ref="t-leave"))
    before = await status(handle)

    # The people go on: the talent hands in a track and the leader signs it off, during the pause.
    await advance_to(time_env, at_local(start + timedelta(days=30), 10))  # leading-self was held two days ago
    submitted = await send(handle, c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="t-r"))
    signed = await send(handle, c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"))
    await advance_to(time_env, resumed_at)
    during = await status(handle)
    resumed = await send(handle, c.ResumeJourney(**COORD))
    after = await status(handle)

    assert submitted.events == ["TrackSubmitted"]
    assert signed.events == ["TrackSignedOff", "MilestoneMet"]
    assert (during.state, during.escalations) == ("paused", before.escalations)  # no timer fired
    assert resumed.events[:3] == ["SessionAttendanceRecorded", "MilestoneMet", "JourneyResumed"]
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    excused = [ev.data for ev in of_type(events, "SessionAttendanceRecorded") if ev.data["status"] == "excused"]
    assert excused == [{"session_key": "leading-self", "status": "excused", "recorded_by": "system"}]
    assert [ev.data["late"] for ev in about(events, "track:observe-leader", "MilestoneMet")] == [False]
    assert milestone(after, "session:leading-self").status == "met"

    # Paused from the sixth-week Monday to the ninth: the working days of two weeks, none of the closure.
    taken = sum(counts(paused_at.date() + timedelta(days=d)) for d in range(21))
    [resumed_event] = of_type(events, "JourneyResumed")
    assert resumed_event.data["paused_working_days"] == taken
    assert 8 <= taken <= 10  # a public holiday may fall in the pause
    for key in ("track:lead-meeting", "track:change-project", "mentor_meeting:1", "mentor_meeting:2"):
        assert milestone(after, key).due_at == moved(milestone(before, key).due_at, taken), key
    for key in ("session:dilemma-lab-1", "session:leading-others", "session:closing"):
        assert milestone(after, key).due_at == milestone(before, key).due_at, key
    for m in after.milestones:
        assert not closure[0] <= local(m.due_at).date() <= closure[1], m.key

    # The session keeps the cohort's date: unrecorded, its attendance slips at the unmoved deadline.
    lab_due = milestone(after, "session:dilemma-lab-1").due_at
    await advance_to(time_env, lab_due + MINUTE)
    events = await stored_events(pool, unique)
    [slipped] = about(events, "session:dilemma-lab-1", "MilestoneSlipped")
    assert parse_time(slipped.data["slipped_at"]) == lab_due
