"""Commands and signals on the time-skipping server: refusals, pause over Easter, rescheduling, a new leader."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from tests.support import COORD, CPH, LEADER, TALENT, reference_cohort, reference_programme_v1
from tests.workflows.journeys import (
    Handle,
    Journeys,
    Pool,
    about,
    accepted_update_ids,
    advance_to,
    approve,
    assert_contiguous,
    easter_sunday,
    eventually,
    is_working_day,
    local,
    milestone,
    nth_working_day,
    of_type,
    parse_time,
    rungs_raised,
    send,
    status,
    stored_events,
    working_days_later,
)
from workflows.journey import TalentJourneyWorkflow

NEW_LEADER: c.Actor = {"actor_id": "p-leader-2", "actor_role": "leader"}
MINUTE = timedelta(minutes=1)


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    """A Copenhagen wall-clock instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=CPH)


async def refused(handle: Handle, command: c.Command, update_id: str) -> ApplicationError:
    """Send a command that must be refused; return the refusal."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send(handle, command, update_id=update_id)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_validators_refuse_bad_commands_with_their_codes_and_write_nothing(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)
    await status(handle)  # the nomination is stored: validators now see the journey

    kickoff = c.RecordAttendance(**COORD, session_key="kickoff", status="attended")
    stranger: c.Actor = {"actor_id": "p-stranger", "actor_role": "leader"}
    sign_off = c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve")
    steps: list[tuple[c.Command, str | None, str | None]] = [
        (kickoff, "invalid_state", "conflict"),
        (c.DecideNomination(**COORD, decision="reject"), "reason_required", "invalid"),
        (c.DecideNomination(**COORD, decision="approve"), None, None),
        (c.RecordAttendance(**COORD, session_key="no-such-session", status="attended"), "unknown_session", "invalid"),
        (c.SubmitTrack(**TALENT, track_key="no-such-track"), "unknown_track", "invalid"),
        (sign_off, "not_submitted", "conflict"),
        (c.RecordAttendance(**TALENT, session_key="kickoff", status="attended"), "not_allowed", "forbidden"),
        (c.SignOffTrack(**stranger, track_key="observe-leader", decision="approve"), "not_allowed", "forbidden"),
        (c.DecideNomination(**COORD, decision="approve"), "already_decided", "conflict"),
        (c.PauseJourney(**COORD, reason_ref="t-leave"), None, None),
        (kickoff, "journey_paused", "conflict"),
        (c.ResumeJourney(**TALENT), "not_allowed", "forbidden"),
    ]
    accepted: list[str] = []
    for number, (command, code, kind) in enumerate(steps):
        update_id = f"{unique}-{number}"
        if code is None:
            await send(handle, command, update_id=update_id)
            accepted.append(update_id)
            continue
        before_events = await stored_events(pool, unique)
        before = await status(handle)
        refusal = await refused(handle, command, update_id)
        assert (refusal.type, refusal.non_retryable) == (code, True), command
        assert refusal.details == ({"code": code, "kind": kind},)
        assert await stored_events(pool, unique) == before_events, command
        assert (await status(handle)).version == before.version

    history_accepted = await accepted_update_ids(handle)
    assert history_accepted == set(accepted)
    assert (await status(handle)).state == "paused"
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert [ev.type for ev in events][-1] == "JourneyPaused"


async def test_a_pause_over_easter_shifts_open_deadlines_and_pending_rungs_by_the_paused_working_days(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    easter = easter_sunday(local(now).year)
    if easter - timedelta(days=14) < local(now).date():
        easter = easter_sunday(local(now).year + 1)
    # Kickoff on the Thursday ten days before Easter: due the Monday after, the ladder then runs into Easter.
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=easter - timedelta(days=10))
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)
    paused_at = at_local(easter - timedelta(days=4), 10)  # Wednesday before Easter
    resumed_at = at_local(easter + timedelta(days=2), 10)  # Tuesday after Easter
    # Maundy Thursday, Good Friday and Easter Monday are holidays: Tuesday is the only working day.
    assert [is_working_day(easter + timedelta(days=d)) for d in (-3, -2, 1, 2)] == [False, False, False, True]

    await advance_to(time_env, paused_at)
    await send(handle, c.PauseJourney(**COORD, reason_ref="t-illness"))
    before = await status(handle)
    await advance_to(time_env, resumed_at)
    assert (await status(handle)).escalations == before.escalations  # no rung fires while paused
    resumed = await send(handle, c.ResumeJourney(**COORD))
    after = await status(handle)

    assert (before.state, resumed.state, after.state) == ("paused", "active", "active")
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    [paused_event] = of_type(events, "JourneyPaused")
    [resumed_event] = of_type(events, "JourneyResumed")
    assert paused_event.data["previous_state"] == "active"
    assert (resumed_event.data["paused_working_days"], resumed_event.data["resumed_state"]) == (1, "active")
    real_pause = resumed_at.astimezone(UTC) - paused_at.astimezone(UTC)  # Easter week may cross into summer time
    assert resumed_event.data["paused_seconds"] == pytest.approx(real_pause.total_seconds(), abs=5)
    open_before = {m.key: m.due_at for m in before.milestones if m.status == "open"}
    assert len(open_before) > 10
    for key, due in open_before.items():
        moved = milestone(after, key).due_at
        assert local(moved).time() == local(due).time(), key
        assert local(moved).date() == nth_working_day(local(due).date(), 1), key
    assert milestone(after, "session:kickoff").due_at == milestone(before, "session:kickoff").due_at
    assert [x.rung for x in after.escalations] == [1]  # raised before the pause: not moved, not repeated

    [slipped] = about(events, "session:kickoff", "MilestoneSlipped")
    [shift] = [s for s in resumed_event.data["shifts"] if s["milestone"] == "session:kickoff"]
    planned = {r["rung"]: parse_time(r["due_at"]) for r in slipped.data["ladder"]}
    shifted = {r["rung"]: parse_time(r["due_at"]) for r in shift["ladder"]}
    assert shifted[1] == planned[1]
    for rung in (2, 3, 4):
        assert local(shifted[rung]).date() == nth_working_day(local(planned[rung]).date(), 1)
    await advance_to(time_env, planned[2] + MINUTE)
    assert [x.rung for x in (await status(handle)).escalations] == [1]
    await advance_to(time_env, shifted[2] + MINUTE)
    raised = (await status(handle)).escalations
    assert [(x.rung, x.raised_at) for x in raised] == [(1, planned[1]), (2, shifted[2])]


async def test_a_rescheduled_session_moves_its_attendance_deadline_and_bad_signals_are_dropped(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)
    session = next(s for s in cohort.sessions if s.key == "leading-self")
    old_due = milestone(await status(handle), "session:leading-self").due_at
    moved_to = session.starts_at + timedelta(days=9)

    await handle.signal(
        TalentJourneyWorkflow.session_rescheduled,
        c.RescheduleSession(**COORD, session_key="no-such-session", starts_at=moved_to),
    )
    await handle.signal(
        TalentJourneyWorkflow.session_rescheduled,
        c.RescheduleSession(**TALENT, session_key="leading-self", starts_at=moved_to),
    )
    await handle.signal(
        TalentJourneyWorkflow.session_rescheduled,
        c.RescheduleSession(**COORD, session_key="leading-self", starts_at=moved_to),
    )
    after = await eventually(lambda: status(handle), lambda s: milestone(s, "session:leading-self").due_at != old_due)

    new_due = milestone(after, "session:leading-self").due_at
    assert new_due == working_days_later(moved_to, 2)
    assert new_due > old_due
    assert milestone(after, "session:leading-self").status == "open"
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    [rescheduled] = of_type(events, "SessionRescheduled")
    assert rescheduled.data["session_key"] == "leading-self"
    assert parse_time(rescheduled.data["starts_at"]) == moved_to
    assert parse_time(rescheduled.data["previous_starts_at"]) == session.starts_at
    assert parse_time(rescheduled.data["milestone_due_at"]) == new_due
    assert rescheduled.metadata["actor"] == "p-coord"


async def test_rescheduling_a_slipped_session_into_the_future_stops_its_ladder_and_reopens_it(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)
    slip = milestone(await status(handle), "session:kickoff").due_at
    await advance_to(time_env, slip + MINUTE)
    moved_to = at_local(local(slip + timedelta(days=7)).date(), 9)

    await handle.signal(
        TalentJourneyWorkflow.session_rescheduled,
        c.RescheduleSession(**COORD, session_key="kickoff", starts_at=moved_to),
    )
    after = await eventually(lambda: status(handle), lambda s: milestone(s, "session:kickoff").status == "open")
    await advance_to(time_env, moved_to + timedelta(hours=3))
    met = await send(handle, c.RecordAttendance(**COORD, session_key="kickoff", status="attended"))

    assert milestone(after, "session:kickoff").due_at == working_days_later(moved_to, 2)
    assert [(x.rung, x.resolved_at is not None) for x in after.escalations] == [(1, True)]
    assert met.events == ["SessionAttendanceRecorded", "MilestoneMet"]
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert rungs_raised(events, "session:kickoff") == [1]
    [resolution] = about(events, "session:kickoff", "EscalationResolved")
    assert resolution.data["resolution"] == "rescheduled"
    [late] = about(events, "session:kickoff", "MilestoneMet")
    assert late.data["late"] is False


async def test_a_new_nearest_leader_takes_over_sign_offs_meetings_and_escalations_from_the_old_one(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)
    kickoff_due = milestone(await status(handle), "session:kickoff").due_at
    await advance_to(time_env, kickoff_due - timedelta(hours=2))
    await send(handle, c.SubmitTrack(**TALENT, track_key="observe-leader", reflection_ref="r-1"))

    changed = await send(
        handle, c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2", leaders_leader_id="p-boss-2")
    )
    old_sign_off = await refused(
        handle, c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), f"{unique}-old-sign-off"
    )
    signed = await send(handle, c.SignOffTrack(**NEW_LEADER, track_key="observe-leader", decision="approve"))
    old_meeting = await refused(
        handle, c.LogMentorMeeting(**LEADER, held_on=local(kickoff_due).date()), f"{unique}-old-meeting"
    )
    meeting = await send(handle, c.LogMentorMeeting(**NEW_LEADER, held_on=local(kickoff_due).date()))
    await advance_to(time_env, working_days_later(kickoff_due, 6) + MINUTE)

    assert changed.events == ["NearestLeaderChanged"]
    assert (old_sign_off.type, old_meeting.type) == ("not_allowed", "not_allowed")
    assert signed.events == ["TrackSignedOff", "MilestoneMet"]
    assert meeting.events == ["MentorMeetingLogged", "MilestoneMet"]
    now_status = await status(handle)
    assert now_status.nearest_leader_id == "p-leader-2"
    assert milestone(now_status, "track:observe-leader").status == "met"
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    [change] = of_type(events, "NearestLeaderChanged")
    assert (change.data["previous_leader_id"], change.data["nearest_leader_id"], change.data["leaders_leader_id"]) == (
        "p-leader",
        "p-leader-2",
        "p-boss-2",
    )
    [logged] = of_type(events, "MentorMeetingLogged")
    assert (logged.data["leader_id"], logged.data["logged_by"]) == ("p-leader-2", "p-leader-2")
    assert [ev.data["signed_off_by"] for ev in of_type(events, "TrackSignedOff")] == ["p-leader-2"]
    recipients = [
        (ev.data["recipient_role"], ev.data["recipient_id"])
        for ev in about(events, "session:kickoff", "EscalationRaised")
    ]
    assert recipients == [("talent", "p-talent"), ("nearest_leader", "p-leader-2"), ("leaders_leader", "p-boss-2")]
