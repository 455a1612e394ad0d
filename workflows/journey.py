"""TalentJourneyWorkflow: one talent's months-long journey, durable on Temporal.

The workflow orchestrates; the domain decides. Every command (an update), every signal and every
timer goes through `decide`, the resulting events are appended to the event store by an activity
with ids minted here by `workflow.uuid4()` (deterministic, so a retried append is recognised), and
only then folded into the workflow's state: the state is always the fold of the stored events.
It carries ids only: names, e-mail addresses and free text live in the people vault.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.journey import CONCURRENCY_CONFLICT, AppendInput, JourneyActivities
    from activities.notify import DeliverInput, Notifier
    from domain import commands as c
    from domain.errors import DomainError
    from domain.events import EventMetadata, NewEvent, stream_id_for
    from domain.journey import TERMINAL_STATES, JourneyState, decide, evolve, next_wakeup
    from domain.status import JourneyStatus, status_of
    from workflows.names import AT_RISK, COHORT_ID, JOURNEY_STATE, journey_workflow_id

# An append takes milliseconds; a short timeout lets a crashed worker's append be retried soon,
# which is safe because appends are idempotent.
APPEND_TIMEOUT = timedelta(seconds=10)
APPEND_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[CONCURRENCY_CONFLICT],
)
DELIVERY_ATTEMPTS = 12
DELIVERY_TIMEOUT = timedelta(minutes=2)
# Delivery heartbeats before and after each message: a crashed worker's delivery is retried within
# this. Longer than one send may take (SMTP and webhook timeouts: 10 s), so a slow send is never
# retried while it still runs.
DELIVERY_HEARTBEAT = timedelta(seconds=12)
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=DELIVERY_ATTEMPTS,
)
SYSTEM: c.Actor = {"actor_id": "system", "actor_role": "system"}


def _placeholder_id() -> uuid.UUID:
    return uuid.UUID(int=0)


class JourneyInput(BaseModel):
    """How a journey run starts: a nomination, or a snapshot carried over by continue-as-new."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journey_id: str
    nomination: c.NominateTalent | None = None
    snapshot: JourneyState | None = None
    pending_signals: list[c.RescheduleSession | c.ChangeCohortDetails] = []
    correlation_id: str | None = None
    #: Continue as new once the history is this long, besides when Temporal suggests it.
    continue_as_new_after: int | None = None


class CommandResult(BaseModel):
    """What an accepted command did: the events it caused and the journey's version after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journey_id: str
    version: int
    state: str
    events: list[str]


class AwaitNomination(BaseModel):
    """The input of the `await_nomination` update: the journey the caller nominated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journey_id: str


class CommandCheck(BaseModel):
    """The answer of the `check_command` query: accepted, or the domain's refusal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accepted: bool
    #: Whether taking it would record anything (False: a repeat that changes nothing).
    changes: bool = True
    code: str | None = None
    kind: str | None = None
    message: str | None = None


def domain_failure(error: DomainError) -> ApplicationError:
    """A refused command as a Temporal failure: its type is the domain's stable code."""
    return ApplicationError(
        error.message, {"code": error.code, "kind": error.kind}, type=error.code, non_retryable=True
    )


@workflow.defn(name="TalentJourneyWorkflow")
class TalentJourneyWorkflow:
    """A talent's journey from nomination to closing (§4)."""

    def __init__(self) -> None:
        self._journey_id = ""
        self._state: JourneyState | None = None
        self._refused: DomainError | None = None
        self._lock = asyncio.Lock()
        self._signals: list[c.RescheduleSession | c.ChangeCohortDetails] = []
        self._changed = False
        self._delivery_wanted = False
        self._delivering = False
        self._published: tuple[str, str, bool] | None = None
        self._delivery_task: asyncio.Task[None] | None = None
        self._nominated: list[str] = []

    # -- the run -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: JourneyInput) -> JourneyStatus:
        """Nominate (or resume from a snapshot), then let commands, signals and time drive it."""
        self._journey_id = start.journey_id
        self._signals.extend(start.pending_signals)
        if start.snapshot is not None:
            self._state = start.snapshot
            self._publish()
        elif start.nomination is not None:
            async with self._lock:
                try:
                    new = await self._apply(start.nomination, correlation_id=start.correlation_id)
                except DomainError as exc:
                    # The rules refuse the nomination (the cohort closed meanwhile, say): nothing was
                    # stored. The run ends failed with the domain's code, and a waiting
                    # `await_nomination` answers with the same refusal, instead of a workflow task
                    # that fails for ever.
                    self._refused = exc
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    raise domain_failure(exc) from exc
            self._nominated = [n.event.type for n in new]
        else:
            raise ApplicationError("a journey starts with a nomination or a snapshot", non_retryable=True)

        while True:
            async with self._lock:
                await self._drain_signals()
                await self._apply(c.AdvanceClock(**SYSTEM))
            state = self._current
            if state.state in TERMINAL_STATES:
                break
            if self._history_is_long(start):
                await self._quiesce()
                workflow.continue_as_new(
                    JourneyInput(
                        journey_id=self._journey_id,
                        snapshot=self._current,
                        pending_signals=self._signals,
                        continue_as_new_after=start.continue_as_new_after,
                    )
                )
            wake = next_wakeup(state)
            self._changed = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._changed or bool(self._signals),
                    timeout=_until(wake, workflow.now()),
                    timeout_summary="next-deadline",
                )
        await self._quiesce()
        return status_of(self._current)

    @staticmethod
    def _history_is_long(start: JourneyInput) -> bool:
        info = workflow.info()
        limit = start.continue_as_new_after
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)

    async def _quiesce(self) -> None:
        """Let running update handlers and notification deliveries finish."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._delivering)

    @property
    def _current(self) -> JourneyState:
        if self._state is None:  # pragma: no cover - the run nominates before anything else
            raise ApplicationError("journey not started", non_retryable=True)
        return self._state

    # -- deciding and persisting ---------------------------------------------------------------

    async def _apply(self, command: c.Command, *, correlation_id: str | None = None) -> list[NewEvent]:
        """Decide, append, fold. Callers hold the lock, so decisions never interleave."""
        new = decide(self._state, command, now=workflow.now(), new_ids=workflow.uuid4)
        if not new:
            return []
        update = workflow.current_update_info()
        metadata = EventMetadata(
            actor=command.actor_id,
            correlation_id=correlation_id or (update.id if update else None),
            causation_id=update.name if update else command.type,
        )
        version = self._state.version if self._state is not None else 0
        try:
            result = await workflow.execute_activity_method(
                JourneyActivities.append_events,
                AppendInput(
                    stream_id=stream_id_for(self._journey_id), expected_version=version, events=new, metadata=metadata
                ),
                start_to_close_timeout=APPEND_TIMEOUT,
                retry_policy=APPEND_RETRY,
            )
        except ActivityError as exc:
            # Only this workflow writes its stream: a conflict means a bug or a duplicate run.
            # Failing the task (not the workflow) keeps the journey waiting for a fix.
            raise RuntimeError(f"append to {self._journey_id} failed: {exc.cause}") from exc
        for item in new:
            self._state = evolve(self._state, item.event)
        self._changed = True
        self._publish()
        if result.notifications or result.replayed:
            self._deliver()
        return new

    def _publish(self) -> None:
        """Keep the search attributes (cohort, state, at risk) in step with the state."""
        state = self._current
        at_risk = bool(state.at_risk_reasons())
        values = (state.cohort.cohort_id, state.state, at_risk)
        if values != self._published:
            workflow.upsert_search_attributes(
                [COHORT_ID.value_set(values[0]), JOURNEY_STATE.value_set(values[1]), AT_RISK.value_set(values[2])]
            )
            self._published = values

    def _deliver(self) -> None:
        """Deliver the outbox in the background; one delivery at a time, again if more arrived."""
        self._delivery_wanted = True
        if not self._delivering:
            self._delivering = True
            # The workflow's event loop is deterministic: asyncio tasks are safe here.
            self._delivery_task = asyncio.create_task(self._delivery_loop(), name="deliver-notifications")

    async def _delivery_loop(self) -> None:
        try:
            while self._delivery_wanted:
                self._delivery_wanted = False
                try:
                    await workflow.execute_activity_method(
                        Notifier.deliver,
                        DeliverInput(journey_id=self._journey_id, max_attempts=DELIVERY_ATTEMPTS),
                        start_to_close_timeout=DELIVERY_TIMEOUT,
                        heartbeat_timeout=DELIVERY_HEARTBEAT,
                        retry_policy=DELIVERY_RETRY,
                    )
                except ActivityError:
                    # Out of attempts: the activity dead-lettered what it could not deliver.
                    workflow.logger.warning("notification delivery gave up", extra={"journey_id": self._journey_id})
        finally:
            self._delivering = False

    async def _drain_signals(self) -> None:
        while self._signals:
            command = self._signals.pop(0)
            try:
                await self._apply(command)
            except DomainError as exc:
                workflow.logger.info("signal refused", extra={"journey_id": self._journey_id, "code": exc.code})

    def _check(self, command: c.Command) -> bool:
        """Run the domain's rules without writing anything: the validators' refusal, else whether
        the command would change the journey (a repeat, e.g. a meeting logged twice, would not)."""
        if self._state is None:
            return True  # the nomination is still being stored: the handler waits for it, then decides
        try:
            # Validators run read-only (workflow.uuid4 would raise); the events are discarded anyway.
            return bool(decide(self._state, command, now=workflow.now(), new_ids=_placeholder_id))
        except DomainError as exc:
            raise domain_failure(exc) from exc

    async def _command(self, command: c.Command) -> CommandResult:
        await workflow.wait_condition(lambda: self._state is not None or self._refused is not None)
        if self._refused is not None:
            raise domain_failure(self._refused)
        async with self._lock:
            try:
                new = await self._apply(command)
            except DomainError as exc:  # the journey moved on between validation and now
                raise domain_failure(exc) from exc
        state = self._current
        return CommandResult(
            journey_id=self._journey_id, version=state.version, state=state.state, events=[n.event.type for n in new]
        )

    # -- updates (commands), signals, queries --------------------------------------------------

    @workflow.update(name="await_nomination")
    async def await_nomination(self, request: AwaitNomination) -> CommandResult:
        """Answer once the nomination the run started with is stored (sent with the start).

        A caller that starts a journey with this update (update-with-start) learns that its events
        and read model are written without polling; on a journey already running it answers at once.
        """
        await workflow.wait_condition(lambda: self._state is not None or self._refused is not None)
        if self._refused is not None:
            raise domain_failure(self._refused)
        state = self._current
        return CommandResult(
            journey_id=self._journey_id, version=state.version, state=state.state, events=self._nominated
        )

    @await_nomination.validator
    def _validate_await_nomination(self, request: AwaitNomination) -> None:
        # Sent with the start, it is validated before the run begins: compare with the workflow's id.
        if journey_workflow_id(request.journey_id) != workflow.info().workflow_id:
            raise ApplicationError("another journey's nomination", type="wrong_journey", non_retryable=True)

    @workflow.update(name="decide_nomination")
    async def decide_nomination(self, command: c.DecideNomination) -> CommandResult:
        """Approve or reject the nomination."""
        return await self._command(command)

    @decide_nomination.validator
    def _validate_decide_nomination(self, command: c.DecideNomination) -> None:
        self._check(command)

    @workflow.update(name="record_attendance")
    async def record_attendance(self, command: c.RecordAttendance) -> CommandResult:
        """Record attendance at a session."""
        return await self._command(command)

    @record_attendance.validator
    def _validate_record_attendance(self, command: c.RecordAttendance) -> None:
        self._check(command)

    @workflow.update(name="submit_track")
    async def submit_track(self, command: c.SubmitTrack) -> CommandResult:
        """Submit a track's reflection."""
        return await self._command(command)

    @submit_track.validator
    def _validate_submit_track(self, command: c.SubmitTrack) -> None:
        self._check(command)

    @workflow.update(name="sign_off_track")
    async def sign_off_track(self, command: c.SignOffTrack) -> CommandResult:
        """Approve or return a submitted track."""
        return await self._command(command)

    @sign_off_track.validator
    def _validate_sign_off_track(self, command: c.SignOffTrack) -> None:
        self._check(command)

    @workflow.update(name="log_mentor_meeting")
    async def log_mentor_meeting(self, command: c.LogMentorMeeting) -> CommandResult:
        """Record a mentor meeting."""
        return await self._command(command)

    @log_mentor_meeting.validator
    def _validate_log_mentor_meeting(self, command: c.LogMentorMeeting) -> None:
        self._check(command)

    @workflow.update(name="confirm_mentor_meeting")
    async def confirm_mentor_meeting(self, command: c.ConfirmMentorMeeting) -> CommandResult:
        """Confirm a mentor meeting the talent logged."""
        return await self._command(command)

    @confirm_mentor_meeting.validator
    def _validate_confirm_mentor_meeting(self, command: c.ConfirmMentorMeeting) -> None:
        self._check(command)

    @workflow.update(name="pause")
    async def pause(self, command: c.PauseJourney) -> CommandResult:
        """Pause the journey's clock."""
        return await self._command(command)

    @pause.validator
    def _validate_pause(self, command: c.PauseJourney) -> None:
        self._check(command)

    @workflow.update(name="resume")
    async def resume(self, command: c.ResumeJourney) -> CommandResult:
        """Resume the journey; open deadlines move by the paused time."""
        return await self._command(command)

    @resume.validator
    def _validate_resume(self, command: c.ResumeJourney) -> None:
        self._check(command)

    @workflow.update(name="change_nearest_leader")
    async def change_nearest_leader(self, command: c.ChangeNearestLeader) -> CommandResult:
        """Hand the talent to a new nearest leader."""
        return await self._command(command)

    @change_nearest_leader.validator
    def _validate_change_nearest_leader(self, command: c.ChangeNearestLeader) -> None:
        self._check(command)

    @workflow.update(name="withdraw")
    async def withdraw(self, command: c.WithdrawTalent) -> CommandResult:
        """Withdraw the talent."""
        return await self._command(command)

    @withdraw.validator
    def _validate_withdraw(self, command: c.WithdrawTalent) -> None:
        self._check(command)

    @workflow.update(name="override_completion")
    async def override_completion(self, command: c.OverrideCompletion) -> CommandResult:
        """Override the completion evaluation."""
        return await self._command(command)

    @override_completion.validator
    def _validate_override_completion(self, command: c.OverrideCompletion) -> None:
        self._check(command)

    @workflow.update(name="record_outcome")
    async def record_outcome(self, command: c.RecordOutcome) -> CommandResult:
        """Record a leader-post outcome."""
        return await self._command(command)

    @record_outcome.validator
    def _validate_record_outcome(self, command: c.RecordOutcome) -> None:
        self._check(command)

    @workflow.update(name="record_erasure")
    async def record_erasure(self, command: c.RecordErasure) -> CommandResult:
        """Note a person's erasure in the history."""
        return await self._command(command)

    @record_erasure.validator
    def _validate_record_erasure(self, command: c.RecordErasure) -> None:
        self._check(command)

    @workflow.update(name="acknowledge_escalation")
    async def acknowledge_escalation(self, command: c.AcknowledgeEscalation) -> CommandResult:
        """Take a milestone's open escalation in hand: its ladder stops climbing."""
        return await self._command(command)

    @acknowledge_escalation.validator
    def _validate_acknowledge_escalation(self, command: c.AcknowledgeEscalation) -> None:
        self._check(command)

    @workflow.update(name="resolve_escalation")
    async def resolve_escalation(self, command: c.ResolveEscalation) -> CommandResult:
        """Close a milestone's open escalation."""
        return await self._command(command)

    @resolve_escalation.validator
    def _validate_resolve_escalation(self, command: c.ResolveEscalation) -> None:
        self._check(command)

    @workflow.update(name="assess_readiness")
    async def assess_readiness(self, command: c.AssessReadiness) -> CommandResult:
        """Rules 4: answer a stage of the readiness self-assessment."""
        return await self._command(command)

    @assess_readiness.validator
    def _validate_assess_readiness(self, command: c.AssessReadiness) -> None:
        self._check(command)

    @workflow.update(name="debrief_lab")
    async def debrief_lab(self, command: c.DebriefLab) -> CommandResult:
        """Rules 4: debrief a dilemma lab session."""
        return await self._command(command)

    @debrief_lab.validator
    def _validate_debrief_lab(self, command: c.DebriefLab) -> None:
        self._check(command)

    @workflow.update(name="propose_mentor_meeting")
    async def propose_mentor_meeting(self, command: c.ProposeMentorMeeting) -> CommandResult:
        """Rules 4: propose when the next mentor meeting is held."""
        return await self._command(command)

    @propose_mentor_meeting.validator
    def _validate_propose_mentor_meeting(self, command: c.ProposeMentorMeeting) -> None:
        self._check(command)

    @workflow.signal(name="session_rescheduled")
    def session_rescheduled(self, command: c.RescheduleSession) -> None:
        """A cohort session moved: queue it; the run loop applies it (a refusal is only logged)."""
        self._signals.append(command)

    @workflow.signal(name="cohort_changed")
    def cohort_changed(self, command: c.ChangeCohortDetails) -> None:
        """The cohort's coordinator or places changed: queued and applied like a reschedule."""
        self._signals.append(command)

    @workflow.query(name="check_command")
    def check_command(self, command: c.Command) -> CommandCheck:
        """Whether the journey would take `command` now, as its update's validator judges it.

        Callers ask before they store anything a command refers to (a free text in the vault), so
        a refused command writes nothing anywhere. Nothing changes: a query cannot write.
        """
        try:
            changes = self._check(command)
        except ApplicationError as exc:
            details = exc.details[0] if exc.details and isinstance(exc.details[0], dict) else {}
            return CommandCheck(
                accepted=False, code=exc.type, kind=str(details.get("kind", "conflict")), message=exc.message
            )
        return CommandCheck(accepted=True, changes=changes)

    @workflow.query(name="status")
    def status(self) -> JourneyStatus:
        """The journey's status as the workflow holds it."""
        return status_of(self._current)


def _until(wake: datetime | None, now: datetime) -> timedelta | None:
    """The timer to the next deadline (None: no timer); never zero, which Temporal refuses."""
    if wake is None:
        return None
    return max(wake - now, timedelta(milliseconds=1))
