"""The CLI's side of the access log (PRODUCT §8.7): every command that reads or changes a journey's or
a person's data leaves a row, and `talent audit export --person <id>` answers a data subject access
request with every row concerning the person.

The operator is `cli:<OS user>` with the role `operator`. A command's standard output is held
back until its row is written, so a read whose row cannot be written shows nothing (exit 2,
`cli.main` maps the database error); what a command writes to standard error (its refusal) is
not data.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from cli.ops import Refused
from domain.errors import DomainError
from infra.settings import Settings
from service import bootstrap
from service.errors import PersonErased, ServiceError, UnknownProgramme
from store.access_log import AccessLog
from store.catalog import CatalogConflict

#: The commands that read or change a journey's or a person's data, as (command, action).
LOGGED = frozenset(
    {
        ("journey", "nominate"),
        ("journey", "status"),
        ("journey", "history"),
        ("journey", "decide"),
        ("journey", "attend"),
        ("journey", "pause"),
        ("journey", "resume"),
        ("journey", "withdraw"),
        ("journey", "change-leader"),
        ("journey", "override"),
        ("cohort", "reschedule"),
        ("cohort", "roll-call"),
        ("cohort", "edit"),
        ("person", "erase"),
        ("audit", "export"),
    }
)

#: The errors `cli.main` reports as a refusal (exit 1).
REFUSALS = (Refused, DomainError, ServiceError, PersonErased, CatalogConflict, UnknownProgramme)


def operator() -> str:
    """The operator's stable actor id: `cli:` and the OS user."""
    return f"cli:{getpass.getuser()}"


def _ids(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    journeys = [j for j in [getattr(args, "journey_id", None)] if j]
    journeys += [r.partition("=")[0] for r in getattr(args, "records", None) or []]
    people = [p for p in (getattr(args, "person_id", None), getattr(args, "person", None)) if p]
    return journeys, people


async def logged(args: argparse.Namespace, settings: Settings, run: Callable[[], Awaitable[int]]) -> int:
    """Run a command; if it is one of `LOGGED`, write its access row before its output is shown."""
    verb = (args.command, getattr(args, "action", None))
    if verb not in LOGGED:
        return await run()
    held = io.StringIO()
    outcome = "error"  # a dependency failed, or the command was interrupted
    try:
        with contextlib.redirect_stdout(held):
            code = await run()
        outcome = "ok" if code == 0 else "refused"
        return code
    except REFUSALS:
        outcome = "refused"
        raise
    finally:
        journeys, people = _ids(args)
        async with bootstrap.database(settings, max_size=1) as pool:
            await AccessLog(pool).record(
                actor_id=operator(),
                role="operator",
                channel="cli",
                action=" ".join(v for v in verb if v),
                journey_ids=journeys,
                person_ids=people,
                outcome=outcome,
            )
        sys.stdout.write(held.getvalue())


async def export(settings: Settings, person_id: str, output: Path | None) -> int:
    """Every access row concerning the person, oldest first, as JSON lines (to `output` or stdout)."""
    async with bootstrap.database(settings, max_size=1) as pool:
        rows = await AccessLog(pool).export_person(person_id)
    lines = "".join(row.model_dump_json() + "\n" for row in rows)
    if output is None:
        sys.stdout.write(lines)
        return 0
    # Owner-readable only from its first byte: the rows say who looked at the person's data.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(lines)
    print(f"{len(rows)} access rows for {person_id} written to {output}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`talent audit export --person <id> [--output FILE]`."""
    audit = sub.add_parser("audit", help="the access log (who read or changed whose data)")
    actions = audit.add_subparsers(dest="action", required=True)
    export_parser = actions.add_parser(
        "export", help="every access row concerning a person, as JSON lines (a data subject access request)"
    )
    export_parser.add_argument("--person", required=True, help="the person's id")
    export_parser.add_argument("--output", type=Path, help="write to this file instead of standard output")
