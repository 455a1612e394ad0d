"""Mentor meetings under rules version 2 on the time-skipping server: the talent logs, the leader confirms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.status import status_of
from store.eventstore import EventStore
from tests.support import COORD, LEADER, TALENT, reference_cohort, reference_programme_v1
from tests.workflows.journeys import (
    Handle,
    Journeys,
    Pool,
    accepted_update_ids,
    advance_to,
    approve,
    assert_contiguous,
    local,
    milestone,
    of_type,
    send,
    status,
    stored_events,
)


async def refused(handle: Handle, command: c.Command, update_id: str) -> ApplicationError:
    """Send a command that must be refused; return the refusal."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send(handle, command, update_id=update_id)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_the_leader_confirms_through_the_update_what_the_talent_logged_and_only_then_it_counts(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    starts_on = local(now + timedelta(days=14)).date()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=starts_on)
    handle = await journeys.start(unique, programme, cohort, rules_version=c.CURRENT_RULES_VERSION)
    await approve(handle)
    enrolled_on = local(now).date()
    await advance_to(time_env, now + timedelta(days=20))
    held_on = local(await time_env.get_current_time()).date() - timedelta(days=1)

    logged = await send(handle, c.LogMentorMeeting(**TALENT, held_on=held_on, notes_ref="n-1"))
    pending = await status(handle)
    again = await send(handle, c.LogMentorMeeting(**TALENT, held_on=held_on), update_id=f"{unique}-again")
    before = await stored_events(pool, unique)
    refusals: list[tuple[c.Command, str, str]] = [
        (c.ConfirmMentorMeeting(**LEADER, held_on=held_on - timedelta(days=1)), "unknown_meeting", "not_found"),
        (c.ConfirmMentorMeeting(**TALENT, held_on=held_on), "not_allowed", "forbidden"),
        (c.LogMentorMeeting(**LEADER, held_on=enrolled_on - timedelta(days=1)), "invalid_date", "invalid"),
    ]
    for number, (command, code, kind) in enumerate(refusals):
        refusal = await refused(handle, command, f"{unique}-refused-{number}")
        assert (refusal.type, refusal.details) == (code, ({"code": code, "kind": kind},)), command
    assert await stored_events(pool, unique) == before
    confirmed = await send(handle, c.ConfirmMentorMeeting(**LEADER, held_on=held_on), update_id=f"{unique}-confirm")
    twice = await send(handle, c.ConfirmMentorMeeting(**COORD, held_on=held_on))
    counted = await status(handle)

    assert logged.events == ["MentorMeetingLogged"]
    assert (pending.progress.meetings_held, pending.pending_meetings) == (0, (held_on,))
    assert milestone(pending, "mentor_meeting:1").status == "open"
    assert (again.events, again.version) == ([], pending.version)
    assert confirmed.events == ["MentorMeetingConfirmed", "MilestoneMet"]
    assert (twice.events, twice.version) == ([], confirmed.version)
    assert (counted.progress.meetings_held, counted.pending_meetings) == (1, ())
    assert milestone(counted, "mentor_meeting:1").status == "met"
    assert {f"{unique}-confirm", f"{unique}-again"} <= await accepted_update_ids(handle)
    assert not any("refused" in update for update in await accepted_update_ids(handle))
    events = await stored_events(pool, unique)
    assert_contiguous(events)
    [nominated] = of_type(events, "TalentNominated")
    assert nominated.data["rules_version"] == c.CURRENT_RULES_VERSION
    [meeting] = of_type(events, "MentorMeetingLogged")
    assert (meeting.data["logged_by"], meeting.data["confirmed"], meeting.data["held_on"]) == (
        "p-talent",
        False,
        held_on.isoformat(),
    )
    [confirmation] = of_type(events, "MentorMeetingConfirmed")
    assert (confirmation.data["number"], confirmation.data["confirmed_by"]) == (1, "p-leader")
    # The workflow's state is the fold of its stored events, and the read model says the same.
    folded = await EventStore(pool).load(unique)
    assert folded is not None
    assert status_of(folded) == counted == await EventStore(pool).status(unique)
