"""Rules 3 in server time: the evaluation waits for a track awaiting sign-off, and a late sign-off counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.programme import Programme
from tests.support import LEADER, TALENT, compressed_cohort, compressed_programme
from tests.workflows.journeys import (
    COMPRESSED_PACE,
    Handle,
    Journeys,
    Pool,
    approve,
    drive,
    of_type,
    on_track,
    parse_time,
    status,
    stored_events,
)


def with_grace(programme: Programme, grace: str) -> Programme:
    """The compressed programme with a sign-off grace in its own (minutes) time."""
    data = programme.model_dump(mode="json")
    return Programme.model_validate({**data, "completion": {**data["completion"], "signoff_grace": grace}})


async def run_with_the_last_track_awaiting_sign_off(
    journeys: Journeys, time_env: WorkflowEnvironment, unique: str, *, rules_version: int, sign_off_after: timedelta
) -> tuple[Handle, list[tuple[datetime, c.Command]]]:
    now = await time_env.get_current_time()
    programme = with_grace(compressed_programme(), "PT1M")
    start = now + timedelta(minutes=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"c-{unique}")
    handle = await journeys.start(unique, programme, cohort, rules_version=rules_version)
    await approve(handle)
    plan = await status(handle)
    agenda = [
        item
        for item in on_track(cohort, plan, COMPRESSED_PACE)
        if getattr(item[1], "track_key", None) != "hard-conversation"
    ]
    end = start + timedelta(minutes=8)  # completion.evaluate_after
    agenda += [
        (end - timedelta(seconds=30), c.SubmitTrack(**TALENT, track_key="hard-conversation")),
        (end + sign_off_after, c.SignOffTrack(**LEADER, track_key="hard-conversation", decision="approve")),
    ]
    return handle, agenda


async def test_under_rules_3_a_sign_off_after_the_programmes_end_but_in_the_grace_completes_the_journey(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    handle, agenda = await run_with_the_last_track_awaiting_sign_off(
        journeys, time_env, unique, rules_version=3, sign_off_after=timedelta(seconds=20)
    )
    await drive(time_env, handle, agenda)

    result = await handle.result()

    assert (result.state, result.completion) == ("closed", "completed")
    events = await stored_events(pool, unique)
    [deferred] = of_type(events, "EvaluationDeferred")
    [completed] = of_type(events, "ProgrammeCompleted")
    ended, grace_end = parse_time(deferred.data["ended_at"]), parse_time(deferred.data["due_at"])
    assert deferred.data["awaiting"] == ["hard-conversation"]
    assert grace_end == ended + timedelta(minutes=1)
    evaluated = parse_time(completed.data["evaluated_at"])
    assert ended + timedelta(seconds=20) <= evaluated < grace_end
    assert completed.data["tracks_done"] == 4
    assert not of_type(events, "ProgrammeNotCompleted")


async def test_under_rules_2_the_same_journey_fails_at_the_programmes_end(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    handle, agenda = await run_with_the_last_track_awaiting_sign_off(
        journeys, time_env, unique, rules_version=2, sign_off_after=timedelta(seconds=20)
    )
    # The sign-off after the end is refused (the journey is evaluated): drive only up to the end.
    await drive(time_env, handle, agenda[:-1])

    result = await handle.result()

    assert (result.state, result.completion) == ("closed", "not_completed")
    events = await stored_events(pool, unique)
    assert not of_type(events, "EvaluationDeferred")
    [failed] = of_type(events, "ProgrammeNotCompleted")
    assert failed.data["reasons"] == ["tracks_missing"]
