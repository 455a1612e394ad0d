"""The typed journey client: its command table covers the workflow, update-with-start, refusals as domain errors."""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.errors import DomainError
from store.eventstore import EventStore
from tests.support import COORD, TALENT, nominate, reference_cohort, reference_programme_v1
from tests.workflows.journeys import Journeys, Pool, local, stored_events, types
from workflows.client import UPDATES, JourneyClient, JourneyNotRunning, update_for, update_name
from workflows.journey import AwaitNomination, TalentJourneyWorkflow

#: Commands that reach a journey otherwise than as an update: the workflow's start input, a
#: signal, and the journey's own clock.
NOT_UPDATES = {c.NominateTalent, c.RescheduleSession, c.ChangeCohortDetails, c.AdvanceClock}


def _command_types() -> set[type]:
    union = typing.get_args(c.Command)[0]  # Annotated[Union[...], Field(discriminator=...)]
    return set(typing.get_args(union))


def test_every_command_of_the_domain_is_an_update_in_the_table_or_named_as_no_update() -> None:
    commands = _command_types()
    assert len(commands) > len(NOT_UPDATES)
    assert commands >= NOT_UPDATES
    assert set(UPDATES) == commands - NOT_UPDATES


def test_every_command_update_of_the_workflow_is_in_the_table_with_its_own_method() -> None:
    updates = workflow._Definition.must_from_class(TalentJourneyWorkflow).updates
    by_command = {
        defn.arg_types[0]: name
        for name, defn in updates.items()
        if defn.arg_types and defn.arg_types[0] is not AwaitNomination
    }
    assert by_command  # the workflow declares its updates with typed inputs
    assert {t: update_name(t) for t in UPDATES} == by_command
    for command_type, method in UPDATES.items():
        assert updates[update_name(command_type)].fn is method, command_type


def test_a_command_the_workflow_takes_otherwise_has_no_update() -> None:
    with pytest.raises(ValueError, match="AdvanceClock is not a journey update"):
        update_for(c.AdvanceClock(**COORD))


async def test_start_returns_once_the_nomination_and_its_read_model_are_stored_and_a_second_start_finds_it(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    client = JourneyClient(time_env.client, journeys.worker.task_queue)
    nomination = nominate(programme, cohort, journey_id=unique)

    result = await client.start(nomination)

    # No polling: the events and the read model row are there when start returns.
    stored = await stored_events(pool, unique)
    assert types(stored)[0] == "TalentNominated"
    assert result.events == types(stored) and result.version == len(stored)
    read = await EventStore(pool).status(unique)
    assert read is not None and read.state == result.state == "nominated"

    again = await client.start(nomination)
    assert again == result  # the same update (its id is the journey's): answered once, stored once
    assert await stored_events(pool, unique) == stored
    await client.send(unique, c.WithdrawTalent(**COORD, reason_ref="t-done"), update_id=f"{unique}-end")


async def test_send_answers_the_result_check_writes_nothing_and_a_refusal_is_the_domain_error(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now + timedelta(days=14)).date())
    client = JourneyClient(time_env.client, journeys.worker.task_queue)
    await client.start(nominate(programme, cohort, journey_id=unique))
    before = await stored_events(pool, unique)

    refused = c.DecideNomination(**COORD, decision="reject")  # a rejection needs a reason
    check = await client.check(unique, refused)
    assert (check.accepted, check.code, check.kind) == (False, "reason_required", "invalid")
    with pytest.raises(DomainError) as caught:
        await client.send(unique, refused, update_id=f"{unique}-1")
    assert (caught.value.code, caught.value.kind) == ("reason_required", "invalid")
    forbidden = c.DecideNomination(**TALENT, decision="approve")
    with pytest.raises(DomainError) as caught:
        await client.send(unique, forbidden, update_id=f"{unique}-2")
    assert (caught.value.code, caught.value.kind) == ("not_allowed", "forbidden")
    assert await stored_events(pool, unique) == before

    approve = c.DecideNomination(**COORD, decision="approve")
    assert (await client.check(unique, approve)).accepted
    assert await stored_events(pool, unique) == before
    result = await client.send(unique, approve, update_id=f"{unique}-3")
    assert "NominationApproved" in result.events
    assert result.version == len(await stored_events(pool, unique))
    assert (await client.status(unique)).state == result.state

    ended = await client.send(unique, c.WithdrawTalent(**COORD, reason_ref="t-done"), update_id=f"{unique}-4")
    assert ended.state == "withdrawn"
    await client.handle(unique).result()
    with pytest.raises(JourneyNotRunning):
        await client.send(unique, c.ResumeJourney(**COORD), update_id=f"{unique}-5")


async def test_a_nomination_the_rules_refuse_at_start_is_the_domain_error_and_stores_nothing(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    # Rules 3: the cohort's first mandatory session started a week ago, so enrolment has closed.
    now = await time_env.get_current_time()
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", starts_on=local(now - timedelta(days=7)).date())
    client = JourneyClient(time_env.client, journeys.worker.task_queue)
    nomination = nominate(programme, cohort, journey_id=unique, rules_version=c.CURRENT_RULES_VERSION)

    with pytest.raises(DomainError) as refused:
        await client.start(nomination)

    assert refused.value.code == "cohort_closed"
    assert await stored_events(pool, unique) == []
