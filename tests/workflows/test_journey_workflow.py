"""Whole journeys on the time-skipping server: the reference and compressed programmes, start, continue-as-new."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta
from typing import Any

import pydantic
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.events import parse_event
from domain.journey import fold
from domain.status import JourneyStatus, status_of
from tests.support import (
    LEADER,
    TALENT,
    compressed_cohort,
    compressed_programme,
    nominate,
    reference_cohort,
    reference_programme_v1,
)
from tests.workflows.journeys import (
    COMPRESSED_PACE,
    REFERENCE_PACE,
    Journeys,
    Pool,
    Stored,
    about,
    approve,
    assert_contiguous,
    drive,
    local,
    of_type,
    on_track,
    parse_time,
    status,
    stored_events,
    types,
    working_days_later,
)
from workflows.client import journey_handle, start_journey
from workflows.journey import JourneyInput, TalentJourneyWorkflow
from workflows.names import AT_RISK, COHORT_ID, JOURNEY_STATE


def folded_status(events: list[Stored]) -> JourneyStatus:
    """The status the stored events fold to: what the workflow must agree with."""
    state = fold(parse_event(ev.type, 1, ev.data) for ev in events)
    assert state is not None
    return status_of(state)


def personal_keys(value: Any) -> set[str]:
    """Keys anywhere in `value` that would hold a person's name or e-mail address."""
    found: set[str] = set()
    if isinstance(value, dict):
        found |= {k for k in value if k in ("name", "email", "e_mail", "full_name")}
        for v in value.values():
            found |= personal_keys(v)
    elif isinstance(value, list):
        for v in value:
            found |= personal_keys(v)
    return found


async def test_the_reference_programme_runs_nine_months_and_two_years_of_follow_up_in_seconds(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    began = time.monotonic()
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)

    approved = await approve(handle)
    assert (approved.state, approved.events) == ("enrolled", ["NominationApproved", "MilestoneMet", "TalentEnrolled"])
    plan = await status(handle)
    assert len(plan.milestones) == 1 + 7 + 4 + 5  # approval, mandatory sessions, tracks, meetings
    await drive(time_env, handle, on_track(cohort, plan, REFERENCE_PACE))

    result = await handle.result()
    elapsed = time.monotonic() - began

    assert (result.state, result.completion, result.completion_reasons) == ("closed", "completed", ())
    assert result.progress.model_dump() == {
        "sessions_attended": 7,
        "sessions_required": 6,
        "tracks_done": 4,
        "tracks_required": 4,
        "meetings_held": 5,
        "meetings_required": 4,
    }
    assert {m.status for m in result.milestones} == {"met"}
    assert result.escalations == ()
    assert await time_env.get_current_time() - now > timedelta(days=2 * 365)
    assert elapsed < 30, f"the journey took {elapsed:.1f} s of real time"

    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert (events[0].type, events[-1].type) == ("TalentNominated", "JourneyClosed")
    assert not of_type(events, "MilestoneSlipped", "EscalationRaised", "ProgrammeNotCompleted")
    assert all(ev.data["late"] is False for ev in of_type(events, "MilestoneMet"))
    start = parse_time(of_type(events, "TalentEnrolled")[0].data["starts_at"])
    [completed] = of_type(events, "ProgrammeCompleted")
    evaluated = parse_time(completed.data["evaluated_at"])
    assert evaluated == working_days_later(start, 190)
    assert (completed.data["sessions_attended"], completed.data["tracks_done"], completed.data["meetings_held"]) == (
        7,
        4,
        5,
    )
    follow_ups = of_type(events, "FollowUpRequested")
    assert [ev.data["months"] for ev in follow_ups] == [6, 12, 24]
    assert [parse_time(ev.data["requested_at"]) for ev in follow_ups] == [
        parse_time(due) for due in completed.data["follow_ups"]
    ]
    months_later = [local(parse_time(ev.data["requested_at"])) for ev in follow_ups]
    assert [(d.year * 12 + d.month) - (local(evaluated).year * 12 + local(evaluated).month) for d in months_later] == [
        6,
        12,
        24,
    ]
    closed = of_type(events, "JourneyClosed")[0]
    assert parse_time(closed.data["closed_at"]) == parse_time(follow_ups[-1].data["respond_by"])
    assert folded_status(events) == result

    assert (await handle.describe()).typed_search_attributes.get(JOURNEY_STATE) == "closed"
    row = await pool.fetchrow("SELECT status::text AS status FROM journey_status WHERE journey_id = $1", unique)
    assert row is not None
    assert JourneyStatus.model_validate_json(row["status"]) == result


async def test_starting_a_journey_twice_returns_the_first_run_and_nominates_once(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    first = await journeys.start(unique, programme, cohort)
    again = await start_journey(
        time_env.client,
        nominate(programme, cohort, journey_id=unique, motivation_ref="t-other"),
        task_queue=journeys.worker.task_queue,
    )

    assert first.result_run_id is not None
    assert again.result_run_id == first.result_run_id
    assert (await journey_handle(time_env.client, unique).describe()).run_id == first.result_run_id
    await approve(again)
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert types(events).count("TalentNominated") == 1
    assert events[0].data["motivation_ref"] == "t-1"


async def test_a_journey_carries_person_ids_only_in_its_input_events_and_search_attributes(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)

    with pytest.raises(pydantic.ValidationError):
        nominate(programme, cohort, journey_id=unique, email="talent@example.org")
    events = await stored_events(pool, unique)
    nominated = events[0]
    assert nominated.type == "TalentNominated"
    assert personal_keys(nominated.data) == set()
    assert (nominated.data["talent_id"], nominated.data["nearest_leader_id"]) == ("p-talent", "p-leader")
    assert all("@" not in ev.text for ev in events)

    history = await handle.fetch_history()
    started = history.events[0]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    [payload] = started.workflow_execution_started_event_attributes.input.payloads
    text = payload.data.decode()
    assert "@" not in text
    assert personal_keys(json.loads(text)) == set()
    assert JourneyInput.model_validate_json(text).nomination is not None

    attributes = (await handle.describe()).typed_search_attributes
    assert (attributes.get(COHORT_ID), attributes.get(JOURNEY_STATE), attributes.get(AT_RISK)) == (
        f"c-{unique}",
        "enrolled",
        False,
    )


async def test_the_compressed_programme_runs_end_to_end_with_a_late_track_escalated_and_resolved(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = compressed_programme()
    start = now + timedelta(minutes=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"c-{unique}")
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)
    plan = await status(handle)
    agenda = [
        item
        for item in on_track(cohort, plan, COMPRESSED_PACE)
        if getattr(item[1], "track_key", None) != "hard-conversation"
    ]
    due = start + timedelta(minutes=7)
    agenda += [
        (due + timedelta(seconds=15), c.SubmitTrack(**TALENT, track_key="hard-conversation")),
        (
            due + timedelta(seconds=25),
            c.SignOffTrack(**LEADER, track_key="hard-conversation", decision="approve"),
        ),
    ]
    await drive(time_env, handle, agenda)

    result = await handle.result()

    assert (result.state, result.completion) == ("closed", "completed")
    assert [(x.milestone, x.rung) for x in result.escalations] == [
        ("track:hard-conversation", 1),
        ("track:hard-conversation", 2),
    ]
    signed_off = due + timedelta(seconds=25)
    assert all(
        x.resolved_at and signed_off <= x.resolved_at < signed_off + timedelta(seconds=5) for x in result.escalations
    )
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    late = about(events, "track:hard-conversation")
    assert types(late) == [
        "MilestoneSlipped",
        "EscalationRaised",
        "EscalationRaised",
        "MilestoneMet",
        "EscalationResolved",
    ]
    assert [parse_time(ev.data["raised_at"]) for ev in of_type(late, "EscalationRaised")] == [
        due + timedelta(seconds=10),
        due + timedelta(seconds=20),
    ]
    assert (late[3].data["late"], late[4].data["resolution"]) == (True, "met")
    [completed] = of_type(events, "ProgrammeCompleted")
    evaluated = parse_time(completed.data["evaluated_at"])
    assert evaluated == start + timedelta(minutes=8)
    requested = [parse_time(ev.data["requested_at"]) for ev in of_type(events, "FollowUpRequested")]
    assert requested == [evaluated + timedelta(seconds=s) for s in (40, 80, 120)]
    assert parse_time(events[-1].data["closed_at"]) == evaluated + timedelta(seconds=140)
    assert folded_status(events) == result


async def run_ids(client: Client, workflow_id: str, first: str) -> list[str]:
    """The runs of a workflow, from its first, following each continue-as-new."""
    runs = [first]
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=runs[-1]).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return runs
        runs.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def test_continue_as_new_carries_the_journey_over_unchanged_and_it_still_finishes(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort, continue_as_new_after=40)
    first = handle.first_execution_run_id
    assert first is not None
    await approve(handle)
    plan = await status(handle)
    agenda = on_track(cohort, plan, REFERENCE_PACE)

    await drive(time_env, handle, agenda[:6])
    latest = journey_handle(time_env.client, unique)
    assert (await latest.describe()).run_id != first
    midway = await status(latest)
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert midway == folded_status(events)

    await drive(time_env, handle, agenda[6:])
    result = await handle.result()

    assert (result.state, result.completion) == ("closed", "completed")
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert types(events).count("TalentNominated") == 1
    assert folded_status(events) == result
    runs = await run_ids(time_env.client, handle.id, first)
    assert len(runs) >= 3
    for old, new in itertools.pairwise(runs):
        ended = time_env.client.get_workflow_handle(handle.id, run_id=old)
        before = await ended.query(TalentJourneyWorkflow.status)
        history = await time_env.client.get_workflow_handle(handle.id, run_id=new).fetch_history()
        [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
        carried = JourneyInput.model_validate_json(payload.data)
        assert carried.snapshot is not None
        assert carried.continue_as_new_after == 40
        assert status_of(carried.snapshot) == before
        assert before == folded_status(events[: before.version])
    final = await time_env.client.get_workflow_handle(handle.id, run_id=runs[-1]).describe()
    assert final.status == WorkflowExecutionStatus.COMPLETED
