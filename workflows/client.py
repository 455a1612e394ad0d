"""The one way to reach journey workflows from outside (the service, the CLI, tests): a typed client.

Commands reach a journey as the workflow's updates, called by method reference through one table
(`UPDATES`), as temporalio's samples do: adding a command touches the domain, the workflow's
update and this table. A refusal comes back as the domain's own `DomainError`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeAlias

from pydantic import BaseModel
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from domain import commands as c
from domain.errors import DomainError
from domain.status import JourneyStatus
from workflows.journey import AwaitNomination, CommandCheck, CommandResult, JourneyInput, TalentJourneyWorkflow
from workflows.names import AT_RISK, COHORT_ID, JOURNEY_STATE, TASK_QUEUE, journey_workflow_id

JourneyHandle: TypeAlias = WorkflowHandle[TalentJourneyWorkflow, JourneyStatus]
#: An update handler of the workflow that takes a command. (The SDK types an async handler's result
#: as its coroutine; at run time the update answers the `CommandResult` itself.)
UpdateMethod: TypeAlias = UpdateMethodMultiParam[[TalentJourneyWorkflow, Any], Coroutine[Any, Any, CommandResult]]

_wf = TalentJourneyWorkflow

#: Every command a journey takes as an update, and the workflow's update method for it.
UPDATES: Mapping[type[BaseModel], UpdateMethod] = {
    c.DecideNomination: _wf.decide_nomination,
    c.RecordAttendance: _wf.record_attendance,
    c.SubmitTrack: _wf.submit_track,
    c.SignOffTrack: _wf.sign_off_track,
    c.LogMentorMeeting: _wf.log_mentor_meeting,
    c.ConfirmMentorMeeting: _wf.confirm_mentor_meeting,
    c.PauseJourney: _wf.pause,
    c.ResumeJourney: _wf.resume,
    c.ChangeNearestLeader: _wf.change_nearest_leader,
    c.WithdrawTalent: _wf.withdraw,
    c.OverrideCompletion: _wf.override_completion,
    c.RecordOutcome: _wf.record_outcome,
    c.RecordErasure: _wf.record_erasure,
    c.AcknowledgeEscalation: _wf.acknowledge_escalation,
    c.ResolveEscalation: _wf.resolve_escalation,
    c.AssessReadiness: _wf.assess_readiness,
    c.DebriefLab: _wf.debrief_lab,
    c.ProposeMentorMeeting: _wf.propose_mentor_meeting,
}


class JourneyNotRunning(Exception):
    """The journey's workflow is not running (it has ended, or never started): it takes no command."""

    def __init__(self, journey_id: str) -> None:
        super().__init__(journey_id)
        self.journey_id = journey_id


def refusal(error: WorkflowUpdateFailedError) -> DomainError:
    """The domain's refusal carried by a failed update (the workflow raises it with the code as type)."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type:
        kind = "conflict"
        if cause.details and isinstance(cause.details[0], dict):
            kind = str(cause.details[0].get("kind", "conflict"))
        return DomainError(cause.type, cause.message, kind=kind)
    return DomainError("refused", "the journey refused the command", kind="conflict")


def update_for_type(command_type: type[BaseModel]) -> UpdateMethod:
    """The workflow's update method for commands of `command_type` (ValueError if it takes none)."""
    try:
        return UPDATES[command_type]
    except KeyError:
        raise ValueError(f"{command_type.__name__} is not a journey update") from None


def update_name(command_type: type[BaseModel]) -> str:
    """The public name of the update for commands of `command_type` (as the workflow declares it)."""
    # The decorator keeps the update's definition on the method; the SDK's protocol types it.
    return update_for_type(command_type)._defn.name or ""


def update_for(command: c.Command) -> UpdateMethod:
    """The workflow's update method that takes `command`."""
    return update_for_type(type(command))


async def execute(handle: JourneyHandle, command: c.Command, *, update_id: str | None = None) -> CommandResult:
    """Send `command` on a handle as its update; the update's result.

    Raises `DomainError` when the journey refuses it and `JourneyNotRunning` when its workflow
    has ended. The same `update_id` twice is one update (Temporal deduplicates it while the
    workflow runs).
    """
    try:
        result: object = await handle.execute_update(update_for(command), command, id=update_id)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise JourneyNotRunning(handle.id.removeprefix("journey-")) from exc
        raise
    return _result(result)


def _result(result: object) -> CommandResult:
    if not isinstance(result, CommandResult):  # pragma: no cover - every update answers a CommandResult
        raise TypeError(f"an update answered {type(result).__name__}")
    return result


def _start(
    nomination: c.NominateTalent, correlation_id: str | None, continue_as_new_after: int | None
) -> tuple[JourneyInput, dict[str, Any]]:
    """The workflow's input and start options for a nomination (one definition for both ways of starting)."""
    start = JourneyInput(
        journey_id=nomination.journey_id,
        nomination=nomination,
        correlation_id=correlation_id,
        continue_as_new_after=continue_as_new_after,
    )
    options: dict[str, Any] = {
        "id": journey_workflow_id(nomination.journey_id),
        # A second start of a running journey finds it; a journey id is never reused once its
        # workflow has run (its history is the talent's).
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(COHORT_ID, nomination.cohort.cohort_id),
                SearchAttributePair(JOURNEY_STATE, "nominated"),
                SearchAttributePair(AT_RISK, False),
            ]
        ),
    }
    return start, options


async def start_journey(
    client: Client,
    nomination: c.NominateTalent,
    *,
    task_queue: str = TASK_QUEUE,
    correlation_id: str | None = None,
    continue_as_new_after: int | None = None,
) -> JourneyHandle:
    """Start a journey's workflow, idempotently: a second start returns the running one."""
    start, options = _start(nomination, correlation_id, continue_as_new_after)
    return await client.start_workflow(TalentJourneyWorkflow.run, start, task_queue=task_queue, **options)


def journey_handle(client: Client, journey_id: str) -> JourneyHandle:
    """A handle on a journey's workflow (its latest run)."""
    return client.get_workflow_handle_for(TalentJourneyWorkflow.run, journey_workflow_id(journey_id))


class JourneyClient:
    """Journeys on Temporal, typed: start one, send it a command, ask it whether it would take one."""

    def __init__(self, client: Client, task_queue: str = TASK_QUEUE) -> None:
        self.temporal = client
        self.task_queue = task_queue

    def handle(self, journey_id: str) -> JourneyHandle:
        """A handle on the journey's workflow (its latest run)."""
        return journey_handle(self.temporal, journey_id)

    async def start(
        self,
        nomination: c.NominateTalent,
        *,
        correlation_id: str | None = None,
        continue_as_new_after: int | None = None,
    ) -> CommandResult:
        """Start the journey and return once its nomination is stored (update-with-start, no polling).

        Idempotent: the update's id is the journey's, so starting the same journey again while it
        runs answers the first start's result and stores nothing.
        """
        start, options = _start(nomination, correlation_id, continue_as_new_after)
        operation = WithStartWorkflowOperation(TalentJourneyWorkflow.run, start, task_queue=self.task_queue, **options)
        try:
            result: object = await self.temporal.execute_update_with_start_workflow(
                TalentJourneyWorkflow.await_nomination,
                AwaitNomination(journey_id=nomination.journey_id),
                start_workflow_operation=operation,
                id=f"nominate:{nomination.journey_id}",
            )
        except WorkflowUpdateFailedError as exc:
            raise refusal(exc) from exc
        return _result(result)

    async def send(self, journey_id: str, command: c.Command, *, update_id: str | None = None) -> CommandResult:
        """Send a command to the journey as its update (see `execute`)."""
        return await execute(self.handle(journey_id), command, update_id=update_id)

    async def signal_cohort_changed(self, journey_id: str, command: c.ChangeCohortDetails) -> None:
        """Tell the journey its cohort's coordinator or places changed (the `cohort_changed`
        signal). Raises `JourneyNotRunning` when its workflow has ended."""
        try:
            await self.handle(journey_id).signal(TalentJourneyWorkflow.cohort_changed, command)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JourneyNotRunning(journey_id) from exc
            raise

    async def signal_rescheduled(self, journey_id: str, command: c.RescheduleSession) -> None:
        """Tell the journey a session of its cohort moved: the workflow's `session_rescheduled`
        signal, applied on the journey's own clock (a refusal there is only logged).

        Raises `JourneyNotRunning` when its workflow has ended.
        """
        try:
            await self.handle(journey_id).signal(TalentJourneyWorkflow.session_rescheduled, command)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JourneyNotRunning(journey_id) from exc
            raise

    async def check(self, journey_id: str, command: c.Command) -> CommandCheck:
        """Whether the journey would take `command` now, as its update's validator judges (writes nothing)."""
        try:
            return await self.handle(journey_id).query(TalentJourneyWorkflow.check_command, command)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JourneyNotRunning(journey_id) from exc
            raise

    async def status(self, journey_id: str) -> JourneyStatus:
        """The journey's status as its workflow holds it."""
        return await self.handle(journey_id).query(TalentJourneyWorkflow.status)
