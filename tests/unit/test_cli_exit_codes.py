"""The `talent` command maps every refusal and every unreachable dependency to its exit code in one place."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from cli import main as cli
from domain.errors import DomainError
from service.errors import JourneyEnded, JourneyExists, NotFound, PersonErased, UnknownCohort


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (DomainError("reason_required", "a rejection needs a reason", kind="invalid"), 1, "(reason_required)"),
        (UnknownCohort("c-none"), 1, "unknown cohort 'c-none' (unknown_cohort)"),
        (JourneyEnded(), 1, "(journey_ended)"),
        (JourneyExists(), 1, "(journey_exists)"),
        (NotFound("journey"), 1, "journey not found (not_found)"),
        (PersonErased("p-gone"), 1, "(person_erased)"),
        (RPCError("unreachable", RPCStatusCode.UNAVAILABLE, b""), 2, "Temporal error"),
        (OSError("connection refused"), 2, "database error"),
    ],
)
def test_a_refusal_exits_1_and_an_unreachable_dependency_exits_2_with_the_reason_on_stderr(
    error: Exception, code: int, says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def dispatch(*_: Any) -> int:
        raise error

    monkeypatch.setattr(cli, "_dispatch", dispatch)

    assert cli.main(["migrate"]) == code
    err = capsys.readouterr().err
    assert err.startswith("talent: ") and says in err
