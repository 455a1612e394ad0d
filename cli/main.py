"""The `talent` command line: parse, dispatch to a subcommand, map its refusals to an exit code in one place."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import structlog
from temporalio.service import RPCError

from cli import audit, dev, importer, operate, ops, retention, simulate
from cli import vault as vault_cli
from domain.errors import DomainError
from infra.postgres import InstanceMismatch
from infra.settings import Settings
from service import bootstrap
from service.errors import PersonErased, ServiceError, UnknownProgramme
from store.catalog import CatalogConflict
from store.eventstore import EventStore
from workers.worker import run_worker

log = structlog.get_logger("talent.cli")


async def run_migrate(settings: Settings) -> int:
    """Apply pending migrations."""
    async with bootstrap.database(settings):  # opening it migrates it
        pass
    print("database schema is up to date")
    return 0


async def run_rebuild(settings: Settings) -> int:
    """Rebuild every read model from the events."""
    async with bootstrap.database(settings) as pool:
        report = await EventStore(pool).rebuild_read_models()
    print(f"rebuilt {report.streams} journeys from {report.events} events in {report.seconds:.2f} s")
    return 0


async def run_worker_command(settings: Settings) -> int:
    """Run a journey worker until SIGTERM/SIGINT."""
    await run_worker(settings)
    return 0


async def run_dead_letters(settings: Settings) -> int:
    """List the notifications that could not be delivered (the dead-letter state), newest first."""
    async with bootstrap.database(settings) as pool:
        rows = await pool.fetch(
            """SELECT notification_id, journey_id, channel, template, recipient_role, recipient_id, attempts,
                      last_error, created_at
                 FROM outbox WHERE status = 'dead' ORDER BY created_at DESC LIMIT 500"""
        )
    if not rows:
        print("no dead-lettered notifications")
        return 0
    for r in rows:
        print(
            f"{r['created_at']:%Y-%m-%d %H:%M}  {r['journey_id']:<24} {r['channel']:<8} {r['template']:<28} "
            f"{r['recipient_role']:<15} {r['recipient_id'] or '-':<16} attempts={r['attempts']}  {r['last_error']}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `talent` command line."""
    parser = argparse.ArgumentParser(prog="talent", description="talent-journey: the Talent Ny Leder journey service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    dev = sub.add_parser(
        "dev",
        help="run the whole service with embedded defaults: Temporal dev server, PostgreSQL, worker, API, demo",
    )
    dev.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    dev.add_argument("--no-demo", action="store_true", help="do not load the demo cohort and journeys")
    api = sub.add_parser("api", help="serve the HTTP API (TALENT_API_HOST, TALENT_API_PORT, TALENT_TOKENS_FILE, ...)")
    api.add_argument("--host", help="interface to listen on (default TALENT_API_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default TALENT_API_PORT or 8000)")
    sub.add_parser("worker", help="run a journey worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DATABASE_URL)")
    projections = sub.add_parser("projections", help="read models")
    projections.add_argument("action", choices=["rebuild"])
    notifications = sub.add_parser("notifications", help="the notification outbox")
    notifications.add_argument("action", choices=["dead"], help="dead: list dead-lettered notifications")
    programme = sub.add_parser("programme", help="programme definitions")
    programme_actions = programme.add_subparsers(dest="action", required=True)
    publish = programme_actions.add_parser("publish", help="publish a programme version from a YAML/JSON file")
    publish.add_argument("programme_file", type=Path, metavar="PROGRAMME.yaml")
    simulate_parser = programme_actions.add_parser(
        "simulate",
        help="run six scripted journeys of a programme on a throw-away database and time-skipping Temporal",
    )
    simulate_parser.add_argument("programme_file", type=Path, metavar="PROGRAMME.yaml")
    simulate_parser.add_argument(
        "--record-histories", type=Path, metavar="DIR", help="write each workflow's history to DIR/<scenario>.json"
    )
    cohort = sub.add_parser("cohort", help="cohorts")
    cohort_actions = cohort.add_subparsers(dest="action", required=True)
    create = cohort_actions.add_parser("create", help="create a cohort from a YAML/JSON file (as POST /v1/cohorts)")
    create.add_argument("cohort_file", type=Path, metavar="COHORT.yaml")
    _cohort_operations(cohort_actions)
    journey = sub.add_parser("journey", aliases=["journeys"], help="journeys")
    journey.set_defaults(command="journey")  # `talent journeys ...` is the same command
    journey_actions = journey.add_subparsers(dest="action", required=True)
    bulk = journey_actions.add_parser(
        "import",
        help="nominate every row of an HR system's CSV export (POST /v1/journeys/batch); see the README",
    )
    bulk.add_argument("csv_file", type=Path, metavar="FILE.csv")
    bulk.add_argument("--url", default=os.environ.get("TALENT_API_URL"), help="the API (TALENT_API_URL); unset: direct")
    bulk.add_argument("--token", default=os.environ.get("TALENT_API_TOKEN"), help="bearer token (TALENT_API_TOKEN)")
    bulk.add_argument("--batch-size", type=int, default=1000, help="rows per batch (at most 1,000)")
    bulk.add_argument(
        "--as", dest="role", choices=["coordinator", "hr_system"], default="hr_system", help="the role, when direct"
    )
    nominate = journey_actions.add_parser(
        "nominate", help="nominate a talent from a YAML/JSON file (as POST /v1/journeys); needs Temporal"
    )
    nominate.add_argument("nomination_file", type=Path, metavar="NOMINATION.yaml")
    nominate.add_argument(
        "--as", dest="role", choices=["coordinator", "hr_system"], default="coordinator", help="the nominating role"
    )
    status = journey_actions.add_parser("status", help="a journey's status as JSON")
    status.add_argument("journey_id")
    status.add_argument(
        "--as-of", type=datetime.fromisoformat, metavar="DATETIME", help="as it stood then (ISO 8601 with offset)"
    )
    history = journey_actions.add_parser("history", help="a journey's events, oldest first")
    history.add_argument("journey_id")
    history.add_argument("--json", action="store_true", help="one JSON object per event")
    _journey_operations(journey_actions)
    person = sub.add_parser("person", help="people and their personal data")
    person_actions = person.add_subparsers(dest="action", required=True)
    erase = person_actions.add_parser("erase", help="erase a person's personal data (cannot be undone); needs Temporal")
    erase.add_argument("person_id")
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    audit.add_parser(sub)
    vault_cli.add_parser(sub)
    retention_parser = sub.add_parser("retention", help="retention per data category (docs/retention.md)")
    retention_actions = retention_parser.add_subparsers(dest="action", required=True)
    retention_plan = retention_actions.add_parser("plan", help="what a retention run would delete, and why")
    retention_plan.add_argument("--at", metavar="DATETIME", help="as of this instant (ISO 8601 with offset)")
    retention_plan.add_argument("--json", action="store_true", help="the plan as JSON")
    retention_actions.add_parser("run", help="trigger the retention schedule now; needs Temporal and a worker")
    return parser


def _journey_operations(actions: Any) -> None:
    """`talent journey decide|attend|pause|resume|withdraw|change-leader|override`: as the API's commands."""
    decide = actions.add_parser("decide", help="approve or reject a nomination (coordinator)")
    decide.add_argument("journey_id")
    decide.add_argument("decision", choices=["approve", "reject"])
    decide.add_argument("--reason", help="why (required to reject)")
    attend = actions.add_parser("attend", help="record attendance at a session (coordinator)")
    attend.add_argument("journey_id")
    attend.add_argument("session_key")
    attend.add_argument("status", choices=["attended", "absent", "excused"])
    for name, text in (("pause", "pause a journey (its clock stops)"), ("withdraw", "withdraw the talent")):
        command = actions.add_parser(name, help=text)
        command.add_argument("journey_id")
        command.add_argument("--reason", required=True)
    resume = actions.add_parser("resume", help="resume a paused journey")
    resume.add_argument("journey_id")
    leader = actions.add_parser(
        "change-leader", help="hand the talent to a new nearest leader (the body of POST .../nearest-leader)"
    )
    leader.add_argument("journey_id")
    leader.add_argument("leader_file", type=Path, metavar="LEADER.yaml")
    leader.add_argument("--as", dest="role", choices=["coordinator", "hr_system"], default="coordinator")
    override = actions.add_parser("override", help="override the completion evaluation (coordinator)")
    override.add_argument("journey_id")
    override.add_argument("result", choices=["completed", "not_completed"])
    override.add_argument("--reason", required=True)
    ready = actions.add_parser("readiness", help="answer the readiness question on the talent's behalf (coordinator)")
    ready.add_argument("journey_id")
    ready.add_argument("stage", choices=["enrolment", "evaluation"])
    ready.add_argument("answer", choices=["yes", "not_now", "no"])
    ready.add_argument("--reason", help="why (kept in the people vault)")
    debrief = actions.add_parser("debrief", help="enter a talent's debrief of a held dilemma lab")
    debrief.add_argument("journey_id")
    debrief.add_argument("session_key")
    debrief.add_argument("--clarity", type=int, help="clearer about leadership: 1 (not) to 5 (much)")
    debrief.add_argument("--notes", help="the debrief (kept in the people vault)")
    propose = actions.add_parser("propose-meeting", help="propose the next mentor meeting (coordinator)")
    propose.add_argument("journey_id")
    propose.add_argument("starts_at", metavar="STARTS_AT", help="ISO 8601 with its offset, e.g. 2027-02-03T09:00+01:00")


def _cohort_operations(actions: Any) -> None:
    """`talent cohort reschedule|roll-call|edit`: as the API's cohort routes."""
    reschedule = actions.add_parser("reschedule", help="move a session for every open journey of the cohort")
    reschedule.add_argument("cohort_id")
    reschedule.add_argument("session_key")
    reschedule.add_argument(
        "starts_at", metavar="STARTS_AT", help="ISO 8601 with its offset, e.g. 2027-02-03T09:00+01:00"
    )
    reschedule.add_argument("--reason", required=True)
    reschedule.add_argument("--location", help="the session's new place")
    roll_call = actions.add_parser("roll-call", help="record a session's attendance, one JOURNEY=STATUS per journey")
    roll_call.add_argument("cohort_id")
    roll_call.add_argument("session_key")
    roll_call.add_argument("records", nargs="+", metavar="JOURNEY=attended|absent|excused")
    edit = actions.add_parser("edit", help="change a cohort's capacity, coordinator or session places")
    edit.add_argument("cohort_id")
    edit.add_argument("--capacity", type=int)
    edit.add_argument("--coordinator", help="the coordinator's person id")
    edit.add_argument("--no-coordinator", action="store_true", help="remove the coordinator")
    edit.add_argument("--place", action="append", default=[], metavar="SESSION=PLACE", help="a session's place")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `talent` console script (`argv` None: the program's own arguments).

    Run as the program, it leaves with `os._exit` once the command is done and its output is
    flushed (`_leave`); a caller giving `argv` (a test, in-process) gets the exit code back.
    """
    code = _run(argv)
    if argv is None:
        _leave(code)
    return code


def _leave(code: int) -> NoReturn:
    """End the process now, skipping the interpreter's teardown.

    A process that used the Temporal client can abort in that teardown after its work is done
    (`Fatal Python error: PyGILState_Release`, temporalio/sdk-python#300), turning a success into
    a crash. What the teardown would still do for us is done here first: the `atexit` callbacks
    (which CPython runs before it starts finalising: log handlers flushed, traces exported, an
    embedded PostgreSQL stopped), then the standard streams flushed.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can be written anyway.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _run(argv: Sequence[str] | None) -> int:
    """Parse, run the command, and map its refusals to an exit code."""
    args = build_parser().parse_args(argv)
    settings = Settings()
    level = settings.log_level
    if args.command == "programme" and "log_level" not in settings.model_fields_set:
        level = "WARNING"  # the simulation's output is its report: no worker chatter unless asked for
    bootstrap.configure(settings, level=level)
    runners = {
        "migrate": run_migrate,
        "projections": run_rebuild,
        "worker": run_worker_command,
        "notifications": run_dead_letters,
    }
    try:
        # Commands that read or change someone's data leave an access-log row first (§8.7).
        return asyncio.run(audit.logged(args, settings, lambda: _dispatch(args, settings, runners)))
    except ops.Refused as exc:
        print(f"talent: {exc}", file=sys.stderr)
        return ops.REFUSED
    except (DomainError, ServiceError, PersonErased, CatalogConflict, UnknownProgramme) as exc:
        # A refusal by the journey's rules or the service: its message and stable code, exit 1.
        print(f"talent: {exc} ({exc.code})", file=sys.stderr)
        return ops.REFUSED
    except InstanceMismatch as exc:
        print(f"talent: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"talent: database error: {exc}", file=sys.stderr)
        return 2
    except RPCError as exc:
        print(f"talent: Temporal error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if "connect" not in str(exc).lower():
            raise
        print(f"talent: cannot reach Temporal at {settings.temporal_address}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(
    args: argparse.Namespace, settings: Settings, runners: Mapping[str, Callable[[Settings], Awaitable[int]]]
) -> int:
    """Run the chosen subcommand."""
    match (args.command, getattr(args, "action", None)):
        case ("programme", "simulate"):
            return await simulate.main(args.programme_file, settings, record_histories=args.record_histories)
        case ("programme", "publish"):
            return await ops.publish_programme(settings, args.programme_file)
        case ("cohort", "create"):
            return await ops.create_cohort(settings, args.cohort_file)
        case ("journey", "import"):
            return await importer.run(
                settings, args.csv_file, url=args.url, token=args.token, role=args.role, batch_size=args.batch_size
            )
        case ("journey", "nominate"):
            return await ops.nominate(settings, args.nomination_file, args.role)
        case ("journey", "status"):
            return await ops.journey_status(settings, args.journey_id, args.as_of)
        case ("journey", "history"):
            return await ops.journey_history(settings, args.journey_id, as_json=args.json)
        case ("journey", "decide"):
            return await operate.decide(settings, args.journey_id, args.decision, args.reason)
        case ("journey", "attend"):
            return await operate.attend(settings, args.journey_id, args.session_key, args.status)
        case ("journey", "pause"):
            return await operate.pause(settings, args.journey_id, args.reason)
        case ("journey", "resume"):
            return await operate.resume(settings, args.journey_id)
        case ("journey", "withdraw"):
            return await operate.withdraw(settings, args.journey_id, args.reason)
        case ("journey", "change-leader"):
            return await operate.change_leader(settings, args.journey_id, args.leader_file, args.role)
        case ("journey", "override"):
            return await operate.override(settings, args.journey_id, args.result, args.reason)
        case ("journey", "readiness"):
            return await operate.readiness(settings, args.journey_id, args.stage, args.answer, args.reason)
        case ("journey", "debrief"):
            return await operate.debrief(settings, args.journey_id, args.session_key, args.clarity, args.notes)
        case ("journey", "propose-meeting"):
            return await operate.propose_meeting(settings, args.journey_id, args.starts_at)
        case ("cohort", "reschedule"):
            return await operate.reschedule(
                settings, args.cohort_id, args.session_key, args.starts_at, args.reason, args.location
            )
        case ("cohort", "roll-call"):
            return await operate.roll_call(settings, args.cohort_id, args.session_key, args.records)
        case ("cohort", "edit"):
            return await operate.edit(
                settings,
                args.cohort_id,
                capacity=args.capacity,
                coordinator=args.coordinator,
                no_coordinator=args.no_coordinator,
                places=args.place,
            )
        case ("person", "erase"):
            return await ops.erase_person(settings, args.person_id, confirmed=args.yes)
        case ("audit", "export"):
            return await audit.export(settings, args.person, args.output)
        case ("retention", "plan"):
            return await retention.plan(settings, args.at, as_json=args.json)
        case ("retention", "run"):
            return await retention.run(settings)
        case ("vault", _):
            return await vault_cli.run(settings, args)
        case ("api", _):
            return await dev.run_api(settings, host=args.host, port=args.port)
        case ("dev", _):
            return await dev.run_dev(settings, port=args.port, demo=not args.no_demo)
    return await runners[args.command](settings)


if __name__ == "__main__":
    sys.exit(main())
