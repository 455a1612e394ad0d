"""Starting and reaching journey workflows from a client (the API, the CLI, tests)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from domain.commands import NominateTalent
from domain.status import JourneyStatus
from workflows.journey import JourneyInput, TalentJourneyWorkflow
from workflows.names import AT_RISK, COHORT_ID, JOURNEY_STATE, TASK_QUEUE, journey_workflow_id


async def start_journey(
    client: Client,
    nomination: NominateTalent,
    *,
    task_queue: str = TASK_QUEUE,
    correlation_id: str | None = None,
    continue_as_new_after: int | None = None,
) -> WorkflowHandle[TalentJourneyWorkflow, JourneyStatus]:
    """Start a journey's workflow, idempotently: a second start returns the running one.

    A journey id is never reused once its workflow has run (its history is the talent's).
    """
    return await client.start_workflow(
        TalentJourneyWorkflow.run,
        JourneyInput(
            journey_id=nomination.journey_id,
            nomination=nomination,
            correlation_id=correlation_id,
            continue_as_new_after=continue_as_new_after,
        ),
        id=journey_workflow_id(nomination.journey_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(COHORT_ID, nomination.cohort.cohort_id),
                SearchAttributePair(JOURNEY_STATE, "nominated"),
                SearchAttributePair(AT_RISK, False),
            ]
        ),
    )


def journey_handle(client: Client, journey_id: str) -> WorkflowHandle[TalentJourneyWorkflow, JourneyStatus]:
    """A handle on a journey's workflow (its latest run)."""
    return client.get_workflow_handle_for(TalentJourneyWorkflow.run, journey_workflow_id(journey_id))
