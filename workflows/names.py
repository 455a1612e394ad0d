"""Task-queue names, workflow ids and search attributes: one place, shared by workers and clients."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "talent-journey"

COHORT_ID = SearchAttributeKey.for_keyword("CohortId")
JOURNEY_STATE = SearchAttributeKey.for_keyword("JourneyState")
AT_RISK = SearchAttributeKey.for_bool("AtRisk")
SEARCH_ATTRIBUTES = (COHORT_ID, JOURNEY_STATE, AT_RISK)


def journey_workflow_id(journey_id: str) -> str:
    """The workflow id of a journey (§2): `journey-<journey_id>`."""
    return f"journey-{journey_id}"
