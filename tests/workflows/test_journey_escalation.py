"""Escalation ladders on the time-skipping server: rung by rung, at risk, resolved, stopped by withdrawal."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.programme import Cohort
from tests.support import COORD, LEADER, reference_cohort, reference_programme_v1
from tests.workflows.journeys import (
    Handle,
    Journeys,
    Pool,
    about,
    accepted_update_ids,
    advance_to,
    approve,
    assert_contiguous,
    eventually,
    local,
    milestone,
    of_type,
    parse_time,
    rungs_raised,
    send,
    status,
    stored_events,
    types,
    working_days_later,
)
from workflows.names import AT_RISK, JOURNEY_STATE

KICKOFF = "session:kickoff"
#: The reference ladder: working days after the slip, and who is told.
LADDER = ((0, "talent"), (3, "nearest_leader"), (6, "leaders_leader"), (10, "coordinator"))
HOLDERS = {"talent": "p-talent", "nearest_leader": "p-leader", "leaders_leader": "p-boss", "coordinator": "p-coord"}
MINUTE = timedelta(minutes=1)


async def enrolled_journey(journeys: Journeys, unique: str) -> tuple[Handle, Cohort, datetime]:
    """A reference journey, approved, whose cohort starts in two weeks; and its kickoff deadline."""
    now = await journeys.env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    handle = await journeys.start(unique, programme, cohort)
    await approve(handle)
    kickoff = next(s for s in cohort.sessions if s.key == "kickoff")
    due = milestone(await status(handle), KICKOFF).due_at
    assert due == working_days_later(kickoff.starts_at, 2)  # the attendance grace: two working days
    return handle, cohort, due


def attend(session_key: str) -> c.RecordAttendance:
    """The coordinator records the talent as attended."""
    return c.RecordAttendance(**COORD, session_key=session_key, status="attended")


async def refused_update(handle: Handle, command: c.Command, update_id: str) -> ApplicationError:
    """Send a command that must be refused; return the refusal (its type is the domain's code)."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send(handle, command, update_id=update_id)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def at_risk_attribute(handle: Handle) -> bool | None:
    """The journey's `AtRisk` search attribute."""
    return (await handle.describe()).typed_search_attributes.get(AT_RISK)


async def test_a_slipped_session_escalates_rung_by_rung_at_its_working_day_offsets_until_at_risk(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    handle, _, slip = await enrolled_journey(journeys, unique)
    expected = [working_days_later(slip, days) for days, _ in LADDER]

    for rung, (when, (_, role)) in enumerate(zip(expected, LADDER, strict=True), start=1):
        await advance_to(time_env, when - MINUTE)
        before = await status(handle)
        assert [x.rung for x in before.escalations if x.milestone == KICKOFF] == list(range(1, rung))
        assert milestone(before, KICKOFF).status == ("open" if rung == 1 else "slipped")
        await advance_to(time_env, when + MINUTE)
        after = await status(handle)
        raised = [x for x in after.escalations if x.milestone == KICKOFF]
        assert [x.rung for x in raised] == list(range(1, rung + 1))
        assert (raised[-1].recipient_role, raised[-1].raised_at, raised[-1].resolved_at) == (role, when, None)
        assert after.at_risk is (rung == len(LADDER))

    assert "escalated:session:kickoff" in after.at_risk_reasons
    assert await at_risk_attribute(handle) is True
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    [slipped] = about(events, KICKOFF, "MilestoneSlipped")
    assert parse_time(slipped.data["slipped_at"]) == slip
    assert [parse_time(r["due_at"]) for r in slipped.data["ladder"]] == expected
    raised_events = about(events, KICKOFF, "EscalationRaised")
    assert [
        (ev.data["rung"], ev.data["recipient_role"], ev.data["recipient_id"], ev.data["at_risk"])
        for ev in raised_events
    ] == [(i, role, HOLDERS[role], i == 4) for i, (_, role) in enumerate(LADDER, start=1)]
    assert [parse_time(ev.data["raised_at"]) for ev in raised_events] == expected

    met = await send(handle, attend("kickoff"))

    assert met.events == ["SessionAttendanceRecorded", "MilestoneMet", "EscalationResolved"]
    resolved = await status(handle)
    assert resolved.at_risk is False
    assert all(x.resolved_at is not None for x in resolved.escalations if x.milestone == KICKOFF)
    assert await eventually(lambda: at_risk_attribute(handle), lambda v: v is False) is False
    await advance_to(time_env, working_days_later(expected[-1], 15))
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert rungs_raised(events, KICKOFF) == [1, 2, 3, 4]
    kickoff_events = about(events, KICKOFF)
    assert types(kickoff_events)[-2:] == ["MilestoneMet", "EscalationResolved"]
    assert (kickoff_events[-2].data["late"], kickoff_events[-1].data["resolution"]) == (True, "met")
    raised_per_rung = Counter((ev.data["milestone"], ev.data["rung"]) for ev in of_type(events, "EscalationRaised"))
    assert set(raised_per_rung.values()) == {1}
    assert len({m for m, _ in raised_per_rung}) > 1  # later sessions slipped meanwhile, each ladder once


async def test_meeting_a_slipped_milestone_late_stops_its_ladder_before_the_later_rungs(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    handle, _, slip = await enrolled_journey(journeys, unique)
    await advance_to(time_env, working_days_later(slip, 3) + MINUTE)
    assert [x.rung for x in (await status(handle)).escalations] == [1, 2]

    met = await send(handle, attend("kickoff"))
    await advance_to(time_env, working_days_later(slip, 10) + timedelta(days=1))

    assert met.events[-1] == "EscalationResolved"
    after = await status(handle)
    assert [(x.rung, x.resolved_at is not None) for x in after.escalations if x.milestone == KICKOFF] == [
        (1, True),
        (2, True),
    ]
    assert after.at_risk is False
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert rungs_raised(events, KICKOFF) == [1, 2]
    [resolution] = about(events, KICKOFF, "EscalationResolved")
    assert resolution.data["resolution"] == "met"
    assert resolution.version == max(ev.version for ev in about(events, KICKOFF))


async def test_an_undecided_nomination_escalates_to_the_coordinator_only_and_a_late_approval_resolves_it(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(weeks=8)).date())
    handle = await journeys.start(unique, programme, cohort)
    due = milestone(await status(handle), "approval").due_at
    assert due == working_days_later(now, 10)

    await advance_to(time_env, working_days_later(due, 10) + MINUTE)
    waiting = await status(handle)
    approved = await approve(handle)

    assert [(x.rung, x.recipient_role) for x in waiting.escalations] == [(4, "coordinator")]
    assert waiting.at_risk is True
    assert approved.events[:3] == ["NominationApproved", "MilestoneMet", "EscalationResolved"]
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    [raised] = of_type(events, "EscalationRaised")
    assert (raised.data["recipient_id"], parse_time(raised.data["raised_at"])) == (
        "p-coord",
        working_days_later(due, 10),
    )
    assert (await status(handle)).at_risk is False


async def test_withdrawing_a_talent_ends_the_workflow_and_closes_its_running_ladders(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    handle, _, slip = await enrolled_journey(journeys, unique)
    await advance_to(time_env, working_days_later(slip, 3) + MINUTE)

    withdrawn = await send(handle, c.WithdrawTalent(**COORD, reason_ref="t-reason"))
    result = await handle.result()

    assert (withdrawn.state, withdrawn.events) == ("withdrawn", ["EscalationResolved", "TalentWithdrawn"])
    assert result.state == "withdrawn"
    assert all(x.resolved_at is not None for x in result.escalations)
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.typed_search_attributes.get(JOURNEY_STATE) == "withdrawn"
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert events[-1].type == "TalentWithdrawn"
    assert (events[-1].metadata["actor"], events[-1].metadata["causation_id"]) == ("p-coord", "withdraw")
    [resolution] = of_type(events, "EscalationResolved")
    assert (resolution.data["milestone"], resolution.data["resolution"]) == (KICKOFF, "journey_ended")
    assert rungs_raised(events, KICKOFF) == [1, 2]


async def test_an_escalation_acknowledged_through_its_update_stops_climbing_and_a_resolved_one_closes(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    handle, _, slip = await enrolled_journey(journeys, unique)
    await advance_to(time_env, working_days_later(slip, 3) + MINUTE)
    assert [x.rung for x in (await status(handle)).escalations if x.milestone == KICKOFF] == [1, 2]

    acknowledged = await send(handle, c.AcknowledgeEscalation(**COORD, milestone=KICKOFF, note_ref="t-note"))
    again = await send(handle, c.AcknowledgeEscalation(**COORD, milestone=KICKOFF))
    # Past where rungs 3 and 4 were due: the acknowledged ladder stays where it was, open.
    await advance_to(time_env, working_days_later(slip, 10) + timedelta(hours=1))
    held = await status(handle)

    assert (acknowledged.events, again.events, again.version) == (["EscalationAcknowledged"], [], acknowledged.version)
    kickoff = [x for x in held.escalations if x.milestone == KICKOFF]
    assert [(x.rung, x.acknowledged_by, x.resolved_at) for x in kickoff] == [(1, "p-coord", None), (2, "p-coord", None)]
    assert "escalated:session:kickoff" not in held.at_risk_reasons  # the last rung never fired
    refused = await refused_update(handle, c.AcknowledgeEscalation(**LEADER, milestone=KICKOFF), f"leader-{unique}")
    assert (refused.type, refused.details[0]["kind"]) == ("not_allowed", "forbidden")
    unknown = await refused_update(handle, c.ResolveEscalation(**COORD, milestone="session:nope"), f"nope-{unique}")
    assert (unknown.type, unknown.details[0]["kind"]) == ("unknown_milestone", "invalid")

    resolved = await send(handle, c.ResolveEscalation(**COORD, milestone=KICKOFF, reason_ref="t-why"))
    closed = await status(handle)
    twice = await refused_update(handle, c.ResolveEscalation(**COORD, milestone=KICKOFF), f"twice-{unique}")

    assert resolved.events == ["EscalationResolved"]
    assert all(x.resolved_at is not None for x in closed.escalations if x.milestone == KICKOFF)
    assert milestone(closed, KICKOFF).status == "slipped"  # closed by the coordinator, not met
    assert (twice.type, twice.details[0]["kind"]) == ("no_open_escalation", "conflict")
    # Validators refuse before anything is written: the refused updates were never accepted.
    assert not {f"leader-{unique}", f"nope-{unique}", f"twice-{unique}"} & await accepted_update_ids(handle)
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    assert rungs_raised(events, KICKOFF) == [1, 2]
    [ack] = about(events, KICKOFF, "EscalationAcknowledged")
    [resolution] = about(events, KICKOFF, "EscalationResolved")
    assert (ack.data["acknowledged_by"], ack.data["note_ref"]) == ("p-coord", "t-note")
    assert (ack.metadata["actor"], ack.metadata["causation_id"]) == ("p-coord", "acknowledge_escalation")
    assert (resolution.data["resolution"], resolution.data["resolved_by"], resolution.data["reason_ref"]) == (
        "resolved_by_coordinator",
        "p-coord",
        "t-why",
    )
    assert resolution.metadata["causation_id"] == "resolve_escalation"
