"""The application's errors: what the service refuses besides the domain's rules (each entry point maps them once)."""

from __future__ import annotations

from store.catalog import UnknownProgramme
from store.vault import PersonErased

__all__ = [
    "CohortFull",
    "JourneyEnded",
    "JourneyExists",
    "LeaderIsTalent",
    "NotFound",
    "NotInCohort",
    "PersonErased",
    "ServiceError",
    "UnknownCohort",
    "UnknownProgramme",
    "UnknownSession",
]


class ServiceError(Exception):
    """A request the service refuses; `code` is stable and safe to show to a client."""

    code = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """Unknown, or not the caller's to see (never tell which)."""

    code = "not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class JourneyEnded(ServiceError):
    """The journey's workflow has ended: it takes no commands."""

    code = "journey_ended"

    def __init__(self) -> None:
        super().__init__("the journey has ended and takes no commands")


class JourneyExists(ServiceError):
    """The talent has an open journey in the programme that the caller may not see (§8.1)."""

    code = "journey_exists"

    def __init__(self) -> None:
        super().__init__("the talent already has an open journey in this programme")


class UnknownCohort(ServiceError):
    """A nomination names a cohort that was never created."""

    code = "unknown_cohort"

    def __init__(self, cohort_id: str) -> None:
        super().__init__(f"unknown cohort {cohort_id!r}")


class CohortFull(ServiceError):
    """Approving the nomination would seat more talents than the cohort's capacity (rules 3)."""

    code = "cohort_full"

    def __init__(self, capacity: int) -> None:
        super().__init__(f"the cohort is full: all {capacity} places are taken")
        self.capacity = capacity


class LeaderIsTalent(ServiceError):
    """A nomination names the talent as their own nearest leader."""

    code = "leader_is_talent"

    def __init__(self) -> None:
        super().__init__("the talent cannot be their own nearest leader")


class UnknownSession(ServiceError):
    """A cohort operation names a session the cohort does not schedule."""

    code = "unknown_session"

    def __init__(self, session_key: str) -> None:
        super().__init__(f"the cohort has no session {session_key!r}")


class NotInCohort(ServiceError):
    """A roll call names a journey that is not in the cohort (or not the caller's to see)."""

    code = "not_in_cohort"

    def __init__(self) -> None:
        super().__init__("the journey is not in this cohort")
