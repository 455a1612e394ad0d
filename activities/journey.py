"""The journey workflow's persistence activity: append decided events to the event store."""

from __future__ import annotations

import structlog
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.events import EventMetadata, NewEvent
from store.eventstore import ConcurrencyError, EventStore

#: Failure type of an append that found the stream elsewhere: a bug or a second writer, never
#: cured by retrying the same events.
CONCURRENCY_CONFLICT = "ConcurrencyConflict"
log = structlog.get_logger("talent.activities")


class AppendInput(BaseModel):
    """Events a workflow decided, with the version they follow and who caused them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream_id: str
    expected_version: int
    events: list[NewEvent]
    metadata: EventMetadata


class AppendOutput(BaseModel):
    """Where the events landed, and whether they left notifications in the outbox."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    last_version: int
    positions: list[int]
    replayed: bool
    notifications: int


class JourneyActivities:
    """Activities that need the event store; built once per worker with its dependencies."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    @activity.defn(name="append_journey_events")
    async def append_events(self, request: AppendInput) -> AppendOutput:
        """Append idempotently: a retry of stored events returns the first result."""
        info = activity.info()
        bound = log.bind(
            journey_id=request.stream_id.removeprefix("journey-"),
            workflow_id=info.workflow_id,
            correlation_id=request.metadata.correlation_id,
        )
        try:
            result = await self._store.append(
                request.stream_id, request.expected_version, request.events, metadata=request.metadata
            )
        except ConcurrencyError as exc:
            bound.error("append_conflict", error=str(exc))
            raise ApplicationError(str(exc), type=CONCURRENCY_CONFLICT, non_retryable=True) from exc
        bound.info(
            "events_appended",
            events=[item.event.type for item in request.events],
            version=result.last_version,
            replayed=result.replayed,
        )
        return AppendOutput(
            last_version=result.last_version,
            positions=list(result.positions),
            replayed=result.replayed,
            notifications=result.notifications,
        )
