"""`talent journey import FILE.csv`: bulk enrolment from the CSV export of an HR system.

Each line of the file is one nomination (the body of POST /v1/journeys, flattened into columns,
see `COLUMNS`); the file goes in batches of at most 1,000 rows to `POST /v1/journeys/batch`
(`--url`, `--token`) or, without a URL, straight through the service (the same path the route
takes). Every row is answered created, existing, refused or invalid; running the same file again
answers every row `existing`. Exit 0 when every row was created or existing, 1 when a row was
refused or invalid, 2 when the file cannot be read or the API cannot be reached.
"""

from __future__ import annotations

import csv
import getpass
import io
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from api.auth import Principal, Role
from api.routers.batch import enrol
from infra.settings import Settings
from service import batch
from service.bootstrap import open_resources

#: The talent's columns, the nominee's own: required unless marked optional.
TALENT = ("person_id", "name", "email", "workplace", "language")
#: Every column the file may have; `person_id` ... `language` describe the talent, `leader_*` the
#: nearest leader, `leaders_leader_*` the leader's leader (all optional: leave them empty).
COLUMNS = (
    "cohort_id",
    "external_ref",
    *TALENT,
    "motivation",
    "leader_id",
    "leader_name",
    "leader_email",
    "leader_workplace",
    "leader_language",
    "leaders_leader_id",
    "leaders_leader_name",
    "leaders_leader_email",
    "leaders_leader_workplace",
    "leaders_leader_language",
)
REQUIRED = ("cohort_id", "person_id", "name", "email", "motivation", "leader_id", "leader_name", "leader_email")
#: Exit codes.
OK, REFUSED, FAILED = 0, 1, 2


class ImportFailed(Exception):
    """The file cannot be read, or the API cannot be reached: nothing more is sent."""


@dataclass
class Report:
    """Every row's result (with the file's line number) and the counts."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(("created", "existing", "refused", "invalid"), 0)
        for result in self.results:
            found[result["outcome"]] += 1
        return found


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The file's rows as nomination bodies, with their line numbers (the header is line 1).

    UTF-8 (with or without Excel's BOM), comma- or semicolon-separated. A missing required column,
    an unknown one or a line with more cells than columns refuses the whole file (nothing is sent);
    an empty optional cell is left out.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path}: cannot read the file as UTF-8: {exc}") from exc
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        problems = ([f"missing columns: {', '.join(missing)}"] if missing else []) + (
            [f"unknown columns: {', '.join(unknown)}"] if unknown else []
        )
        raise ImportFailed(f"{path}: {'; '.join(problems)} (the columns are {', '.join(COLUMNS)})")
    reader.fieldnames = header
    rows = []
    for record in reader:
        if None in record:  # more cells than columns: the line is misaligned, every value suspect
            raise ImportFailed(f"{path}: line {reader.line_num} has more cells than the header's {len(header)}")
        cells = {name: (value or "").strip() for name, value in record.items()}
        rows.append((reader.line_num, nomination(cells)))
    return rows


def nomination(cells: dict[str, str]) -> dict[str, Any]:
    """One CSV line as the body of POST /v1/journeys (the route validates it)."""

    def person(prefix: str, id_column: str) -> dict[str, str]:
        found = {"person_id": cells.get(id_column, "")}
        for part in ("name", "email", "workplace", "language"):
            value = cells.get(f"{prefix}{part}", "")
            if value or part in ("name", "email"):
                found[part] = value
        return found

    body: dict[str, Any] = {
        "cohort_id": cells.get("cohort_id", ""),
        "motivation": cells.get("motivation", ""),
        "talent": person("", "person_id"),
        "nearest_leader": person("leader_", "leader_id"),
    }
    if cells.get("external_ref"):
        body["external_ref"] = cells["external_ref"]
    if cells.get("leaders_leader_id"):
        body["leaders_leader"] = person("leaders_leader_", "leaders_leader_id")
    return body


def chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`rows` in consecutive batches of at most `size`."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Progress:
    """A progress bar on stderr (redrawn in place on a terminal, a line per batch otherwise)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr
        self.total, self.done, self.stream = total, 0, stream
        self.started = time.monotonic()
        self.live = stream.isatty()
        self._drawn = 0.0

    def advance(self, rows: int = 1, *, batch_done: bool = False) -> None:
        self.done += rows
        now = time.monotonic()
        if self.live and (now - self._drawn > 0.1 or self.done == self.total):
            self._drawn = now
            self.stream.write("\r" + self._line())
            self.stream.flush()
        elif not self.live and batch_done:
            self.stream.write(self._line() + "\n")

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
        self.stream.flush()

    def _line(self) -> str:
        width = 30
        filled = width * self.done // max(self.total, 1)
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        return f"import [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} rows, {rate:.0f}/s"


Send = Callable[[Sequence[dict[str, Any]], Progress], Awaitable[list[dict[str, Any]]]]


async def import_rows(rows: Sequence[tuple[int, dict[str, Any]]], send: Send, *, batch_size: int) -> Report:
    """Send the rows in batches; every row's result with its line number."""
    report = Report()
    progress = Progress(len(rows))
    try:
        for part in chunks(rows, batch_size):
            answered = await send([body for _, body in part], progress)
            for (line, _), result in zip(part, answered, strict=True):
                report.results.append({**result, "line": line})
            progress.advance(0, batch_done=True)
    finally:
        progress.close()
    return report


def over_http(client: httpx.AsyncClient, token: str | None) -> Send:
    """Send a batch to POST /v1/journeys/batch."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def send(rows: Sequence[dict[str, Any]], progress: Progress) -> list[dict[str, Any]]:
        try:
            response = await client.post("/v1/journeys/batch", json={"rows": list(rows)}, headers=headers)
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the API: {exc}") from exc
        if response.status_code != 200:
            raise ImportFailed(f"the API answered {response.status_code}: {response.text[:500]}")
        results: list[dict[str, Any]] = response.json()["results"]
        progress.advance(len(results))
        return results

    return send


@asynccontextmanager
async def direct(settings: Settings, caller: Principal) -> AsyncIterator[Send]:
    """Send batches straight through the service (the database and Temporal of `settings`)."""
    async with open_resources(settings) as resources:

        async def send(rows: Sequence[dict[str, Any]], progress: Progress) -> list[dict[str, Any]]:
            answered = await enrol(resources, rows, caller, on_done=lambda _: progress.advance())
            found: list[dict[str, Any]] = answered["results"]
            return found

        yield send


def print_report(report: Report, out: TextIO | None = None) -> None:
    """The rows that were not taken (line, outcome, reason), then the counts."""
    out = out or sys.stdout
    for result in report.results:
        if result["outcome"] == "refused":
            out.write(f"line {result['line']}: refused ({result['code']}): {result['problem']['detail']}\n")
        elif result["outcome"] == "invalid":
            errors = "; ".join(f"{e['field']}: {e['message']}" for e in result.get("errors", []))
            out.write(f"line {result['line']}: invalid: {errors}\n")
    counts = report.counts()
    out.write(", ".join(f"{outcome} {count}" for outcome, count in counts.items()) + f" of {len(report.results)}\n")


async def run(
    settings: Settings,
    path: Path,
    *,
    url: str | None,
    token: str | None,
    role: Role = "hr_system",
    batch_size: int = batch.MAX_ROWS,
) -> int:
    """`talent journey import`: the exit code."""
    if not 1 <= batch_size <= batch.MAX_ROWS:
        print(f"talent: --batch-size must be 1-{batch.MAX_ROWS}", file=sys.stderr)
        return FAILED
    try:
        rows = read_rows(path)
        if url:
            async with httpx.AsyncClient(base_url=url, timeout=300) as client:
                report = await import_rows(rows, over_http(client, token), batch_size=batch_size)
        else:
            caller = Principal(token_id=f"cli:{getpass.getuser()}", role=role)
            async with direct(settings, caller) as send:
                report = await import_rows(rows, send, batch_size=batch_size)
    except ImportFailed as exc:
        print(f"talent: {exc}", file=sys.stderr)
        return FAILED
    print_report(report)
    counts = report.counts()
    return REFUSED if counts["refused"] or counts["invalid"] else OK
