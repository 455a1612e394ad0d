"""A deliberately non-deterministic change to the journey workflow, under its name: what replay must catch."""

from __future__ import annotations

from temporalio import workflow

from domain.status import JourneyStatus
from workflows.journey import JourneyInput, TalentJourneyWorkflow


@workflow.defn(name="TalentJourneyWorkflow")
class JourneyWithoutDelivery(TalentJourneyWorkflow):
    """The journey workflow as someone might carelessly change it: it no longer delivers notifications.

    Every recorded history schedules `deliver_notifications` after an append that left
    notifications; this version schedules the next append or timer instead.
    """

    @workflow.run
    async def run(self, start: JourneyInput) -> JourneyStatus:
        """The same run (the SDK wants @workflow.run on the class itself)."""
        return await super().run(start)

    def _deliver(self) -> None:
        """The change: schedule no delivery activity."""
