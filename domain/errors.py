"""Domain errors with stable codes that callers map to their own transport."""

from __future__ import annotations


class DomainError(Exception):
    """A command the journey's rules refuse; `code` is stable and safe to show to a client."""

    code: str = "domain_error"
    #: Which broad kind of refusal this is: the API maps it to an HTTP status in one place.
    kind: str = "conflict"

    def __init__(self, code: str, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if kind is not None:
            self.kind = kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidState(DomainError):
    """The command is not allowed in the journey's current state."""

    def __init__(self, message: str, *, code: str = "invalid_state") -> None:
        super().__init__(code, message, kind="conflict")


class InvalidCommand(DomainError):
    """The command names something the journey does not know (a session, a track, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, kind="invalid")


class NotFound(DomainError):
    """The command names an item of the journey that does not exist (a mentor meeting never logged, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, kind="not_found")


class NotAllowed(DomainError):
    """The actor may not issue this command on this journey."""

    def __init__(self, message: str, *, code: str = "not_allowed") -> None:
        super().__init__(code, message, kind="forbidden")


class ProgrammeInvalid(ValueError):
    """A programme or cohort definition failed validation; `errors` name the offending fields."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
