"""Rules 3 on the time-skipping server: an undecided nomination expires on its own timer; a late
approval waives what was already due instead of setting off a storm of escalations."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.calendar import Delay
from domain.programme import Programme
from tests.support import reference_cohort, reference_programme
from tests.workflows.journeys import (
    Journeys,
    Pool,
    about,
    advance_to,
    approve,
    eventually,
    local,
    milestone,
    of_type,
    parse_time,
    status,
    stored_events,
)

V3 = {"rules_version": 3}
APPROVAL = "approval"


def patient(programme: Programme) -> Programme:
    """The programme with nominations kept open for 80 working days after their deadline."""
    approval = programme.approval.model_dump() | {"expires_after": {"working_days": 80}}
    return Programme.model_validate(programme.model_dump() | {"approval": approval})


async def test_an_undecided_nomination_expires_on_its_own_timer_after_its_ladder_told_coordinator_and_leader(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme().model_copy(update={"id": f"exp-{unique}"})
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=120)).date())
    handle = await journeys.start(unique, programme, cohort, **V3)
    due = milestone(await status(handle), APPROVAL).due_at
    expires = programme.working_calendar.add(due, programme.approval.expires_after)

    await advance_to(time_env, expires + timedelta(minutes=1))
    final = await eventually(lambda: status(handle), lambda s: s.state == "rejected")

    assert final.state == "rejected"
    events = await stored_events(pool, unique)
    expired = of_type(events, "NominationExpired")
    assert len(expired) == 1 and parse_time(expired[0].data["expired_at"]) == expires
    rungs = about(events, APPROVAL, "EscalationRaised")
    assert [(r.data["rung"], r.data["recipient_role"]) for r in rungs] == [
        (1, "coordinator"),
        (2, "nearest_leader"),
        (3, "coordinator"),
    ]
    assert not any(r.data["at_risk"] for r in rungs) and not final.at_risk
    assert about(events, APPROVAL, "EscalationResolved")


async def test_a_late_approval_waives_what_was_due_and_raises_no_rung_for_it(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = patient(reference_programme().model_copy(update={"id": f"late-{unique}"}))
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=2)).date())
    handle = await journeys.start(unique, programme, cohort, **V3)
    start = cohort.start_instant(programme)
    late = programme.working_calendar.add(start, Delay(working_days=45))

    await advance_to(time_env, late)
    await approve(handle)

    events = await stored_events(pool, unique)
    waived = {ev.data["milestone"] for ev in of_type(events, "MilestoneWaived")}
    assert len(waived) >= 3  # kickoff, the second session, the first mentor meeting, ...
    storm = [ev for ev in of_type(events, "EscalationRaised", "MilestoneSlipped") if ev.data["milestone"] != APPROVAL]
    assert storm == []
    shown = await status(handle)
    assert {m.key for m in shown.milestones if m.status == "waived"} == waived
    assert shown.state == "active" and not shown.at_risk
