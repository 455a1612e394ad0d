"""The `talent` command: run a demo journey through the store, migrate, rebuild read models."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.problems import Problem, from_update_failure
from cli import dev, ops, simulate
from domain import commands as c
from domain.errors import DomainError
from domain.events import AttendanceStatus, EventMetadata, stream_id_for
from domain.journey import JourneyState, decide, evolve, next_wakeup
from domain.programme import Cohort, CohortSession, Programme, load_programme
from infra.logging import configure_logging
from infra.postgres import InstanceMismatch, open_pool
from infra.settings import Settings
from store.eventstore import EventStore
from store.vault import Erased, PeopleVault, PersonData
from workers.worker import run_worker

log = structlog.get_logger("talent.cli")


def demo_cohort(programme: Programme, starts_on: date) -> Cohort:
    """A cohort of the reference programme: a session every four weeks at 09:00 at UCN Aalborg."""
    tz = ZoneInfo(programme.timezone)
    sessions = tuple(
        CohortSession(
            key=s.key,
            starts_at=datetime.combine(starts_on + timedelta(weeks=4 * i), datetime.min.time(), tzinfo=tz)
            + timedelta(hours=9),
            location="UCN Aalborg",
        )
        for i, s in enumerate(programme.sessions)
    )
    return Cohort(
        cohort_id=f"tnl-{starts_on.year}-demo",
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=starts_on,
        capacity=24,
        coordinator_id="p-coordinator",
        sessions=sessions,
    )


class _Driver:
    """Decides and appends, as the journey workflow will (ids minted here, state folded here)."""

    def __init__(self, store: EventStore, journey_id: str) -> None:
        self.store = store
        self.journey_id = journey_id
        self.state: JourneyState | None = None

    async def send(self, command: c.Command, now: datetime) -> None:
        new = decide(self.state, command, now=now, new_ids=uuid.uuid4)
        if not new:
            return
        version = self.state.version if self.state else 0
        await self.store.append(
            stream_id_for(self.journey_id),
            version,
            new,
            metadata=EventMetadata(actor=command.actor_id, correlation_id=f"demo-{self.journey_id}"),
        )
        for n in new:
            self.state = evolve(self.state, n.event)

    async def until(self, when: datetime) -> None:
        """Let time pass up to `when`, waking at every deadline on the way (as timers would)."""
        while True:
            wake = next_wakeup(self.state)
            if wake is None or wake > when:
                break
            await self.send(c.AdvanceClock(actor_id="system", actor_role="system"), wake)
        await self.send(c.AdvanceClock(actor_id="system", actor_role="system"), when)


async def run_demo(settings: Settings) -> int:
    """Drive one talent's whole journey on the reference programme and print its status and history."""
    pool = await open_pool(settings)
    try:
        store = EventStore(pool)
        vault = PeopleVault(pool, settings.master_key())
        programme = load_programme((settings.examples_dir / "talent-ny-leder.yaml").read_text())
        cohort = demo_cohort(programme, date(2027, 1, 11))
        tz = ZoneInfo(programme.timezone)
        journey_id = f"demo-{uuid.uuid4().hex[:8]}"
        talent, leader, boss = (f"p-{journey_id}-{r}" for r in ("talent", "leader", "boss"))
        await vault.put_person(
            talent, PersonData(name="Mette Sørensen", email="mette@example.org", workplace="Skolen ved Fjorden")
        )
        await vault.put_person(
            leader, PersonData(name="Lars Nielsen", email="lars@example.org", workplace="Skolen ved Fjorden")
        )
        await vault.put_person(
            boss, PersonData(name="Hanne Krogh", email="hanne@example.org", workplace="Børn og Unge")
        )
        motivation = await vault.put_text(talent, "Mette har vist lederpotentiale i teamsamarbejdet.")

        def at(y: int, m: int, d: int, h: int = 10) -> datetime:
            return datetime(y, m, d, h, tzinfo=tz)

        coordinator: c.Actor = {"actor_id": "p-coordinator", "actor_role": "coordinator"}
        as_talent: c.Actor = {"actor_id": talent, "actor_role": "talent"}
        as_leader: c.Actor = {"actor_id": leader, "actor_role": "leader"}
        j = _Driver(store, journey_id)
        await j.send(
            c.NominateTalent(
                actor_id=leader,
                actor_role="leader",
                journey_id=journey_id,
                talent_id=talent,
                nearest_leader_id=leader,
                leaders_leader_id=boss,
                programme=programme,
                cohort=cohort,
                motivation_ref=motivation,
                external_ref="HR-4711",
            ),
            at(2026, 12, 1),
        )
        await j.send(c.DecideNomination(**coordinator, decision="approve"), at(2026, 12, 3))
        assert j.state is not None
        plan: list[tuple[datetime, c.Command]] = []
        for session in cohort.sessions:
            attendance: AttendanceStatus = "excused" if session.key == "organisation" else "attended"
            plan.append(
                (
                    session.starts_at + timedelta(hours=4),
                    c.RecordAttendance(**coordinator, session_key=session.key, status=attendance),
                )
            )
        for i, track in enumerate(programme.tracks):
            due = j.state.milestone(f"track:{track.key}")
            assert due is not None
            # The third track comes in two weeks late: its escalation ladder runs, then stops.
            submitted = due.due_at + (timedelta(days=14) if i == 2 else -timedelta(days=6))
            plan.append((submitted, c.SubmitTrack(**as_talent, track_key=track.key)))
            plan.append(
                (submitted + timedelta(days=1), c.SignOffTrack(**as_leader, track_key=track.key, decision="approve"))
            )
        for n in range(1, programme.mentor_meetings.count + 1):
            due = j.state.milestone(f"mentor_meeting:{n}")
            assert due is not None
            held = (due.due_at - timedelta(days=3)).replace(hour=15, minute=0)
            plan.append((held, c.LogMentorMeeting(**as_leader, held_on=held.date())))
        # Ill over Easter: paused; resuming moves every open deadline by the paused working days.
        plan.append((at(2027, 3, 15), c.PauseJourney(**coordinator)))
        plan.append((at(2027, 4, 12), c.ResumeJourney(**coordinator)))
        plan.sort(key=lambda item: item[0])
        for when, command in plan:
            await j.until(when)
            try:
                await j.send(command, when)
            except DomainError as exc:  # e.g. a meeting planned before the pause moved its deadline
                print(f"  refused at {when:%Y-%m-%d}: {command.type} ({exc.code})")
        await j.until(at(2028, 5, 1))
        await j.send(
            c.RecordOutcome(
                actor_id="hr-system",
                actor_role="hr_system",
                applied_for_leader_post=True,
                appointed=True,
                on=date(2028, 3, 1),
            ),
            at(2028, 5, 1),
        )
        await j.until(at(2030, 6, 1))

        status = await store.status(journey_id)
        history = await store.read_stream(stream_id_for(journey_id))
        people = await vault.get_people([talent, leader])
        names = {
            p: (v.name if isinstance(v, PersonData) else "(erased)" if isinstance(v, Erased) else "?")
            for p, v in people.items()
        }
        assert status is not None
        print(f"Journey {journey_id}: talent {names[talent]}, nearest leader {names[leader]}")
        print(
            f"  state {status.state}, completion {status.completion}, at risk {status.at_risk}, "
            f"version {status.version}"
        )
        p = status.progress
        print(
            f"  sessions {p.sessions_attended}/{p.sessions_required}, tracks {p.tracks_done}/{p.tracks_required}, "
            f"mentor meetings {p.meetings_held}/{p.meetings_required}"
        )
        print(f"  escalations raised: {len(status.escalations)}")
        print("\nHistory:")
        for ev in history:
            detail = {
                k: v
                for k, v in ev.data.items()
                if k
                in (
                    "session_key",
                    "status",
                    "track_key",
                    "milestone",
                    "rung",
                    "recipient_role",
                    "months",
                    "number",
                    "paused_working_days",
                )
            }
            print(
                f"  {ev.stream_version:>3}  {ev.occurred_at.astimezone(tz):%Y-%m-%d %H:%M}  "
                f"{ev.event_type:<26} {detail or ''}"
            )
        return 0
    finally:
        await pool.close()


async def run_migrate(settings: Settings) -> int:
    """Apply pending migrations."""
    pool = await open_pool(settings)
    await pool.close()
    print("database schema is up to date")
    return 0


async def run_rebuild(settings: Settings) -> int:
    """Rebuild every read model from the events."""
    pool = await open_pool(settings)
    try:
        report = await EventStore(pool).rebuild_read_models()
    finally:
        await pool.close()
    print(f"rebuilt {report.streams} journeys from {report.events} events in {report.seconds:.2f} s")
    return 0


async def run_worker_command(settings: Settings) -> int:
    """Run a journey worker until SIGTERM/SIGINT."""
    pool = await open_pool(settings)
    try:
        await run_worker(settings, pool)
    finally:
        await pool.close()
    return 0


async def run_dead_letters(settings: Settings) -> int:
    """List the notifications that could not be delivered (the dead-letter state), newest first."""
    pool = await open_pool(settings)
    try:
        rows = await pool.fetch(
            """SELECT notification_id, journey_id, channel, template, recipient_role, recipient_id, attempts,
                      last_error, created_at
                 FROM outbox WHERE status = 'dead' ORDER BY created_at DESC LIMIT 500"""
        )
    finally:
        await pool.close()
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
    sub.add_parser("demo", help="run a whole demo journey through the event store and print it")
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
        help="run four scripted journeys of a programme on a throw-away database and time-skipping Temporal",
    )
    simulate_parser.add_argument("programme_file", type=Path, metavar="PROGRAMME.yaml")
    simulate_parser.add_argument(
        "--record-histories", type=Path, metavar="DIR", help="write each workflow's history to DIR/<scenario>.json"
    )
    cohort = sub.add_parser("cohort", help="cohorts")
    cohort_actions = cohort.add_subparsers(dest="action", required=True)
    create = cohort_actions.add_parser("create", help="create a cohort from a YAML/JSON file (as POST /v1/cohorts)")
    create.add_argument("cohort_file", type=Path, metavar="COHORT.yaml")
    journey = sub.add_parser("journey", help="journeys")
    journey_actions = journey.add_subparsers(dest="action", required=True)
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
    person = sub.add_parser("person", help="people and their personal data")
    person_actions = person.add_subparsers(dest="action", required=True)
    erase = person_actions.add_parser("erase", help="erase a person's personal data (cannot be undone); needs Temporal")
    erase.add_argument("person_id")
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `talent` console script."""
    args = build_parser().parse_args(argv)
    settings = Settings()
    level = settings.log_level
    if args.command == "programme" and "log_level" not in settings.model_fields_set:
        level = "WARNING"  # the simulation's output is its report: no worker chatter unless asked for
    configure_logging(fmt=settings.log_format, level=level)
    runners = {
        "demo": run_demo,
        "migrate": run_migrate,
        "projections": run_rebuild,
        "worker": run_worker_command,
        "notifications": run_dead_letters,
    }
    try:
        return asyncio.run(_dispatch(args, settings, runners))
    except ops.Refused as exc:
        print(f"talent: {exc}", file=sys.stderr)
        return ops.REFUSED
    except Problem as exc:
        print(f"talent: {ops.problem_message(exc)}", file=sys.stderr)
        return ops.REFUSED
    except DomainError as exc:
        print(f"talent: {exc.message} ({exc.code})", file=sys.stderr)
        return ops.REFUSED
    except WorkflowUpdateFailedError as exc:
        print(f"talent: {ops.problem_message(from_update_failure(exc))}", file=sys.stderr)
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
        case ("journey", "nominate"):
            return await ops.nominate(settings, args.nomination_file, args.role)
        case ("journey", "status"):
            return await ops.journey_status(settings, args.journey_id, args.as_of)
        case ("journey", "history"):
            return await ops.journey_history(settings, args.journey_id, as_json=args.json)
        case ("person", "erase"):
            return await ops.erase_person(settings, args.person_id, confirmed=args.yes)
        case ("api", _):
            return await dev.run_api(settings, host=args.host, port=args.port)
        case ("dev", _):
            return await dev.run_dev(settings, port=args.port, demo=not args.no_demo)
    return await runners[args.command](settings)


if __name__ == "__main__":
    sys.exit(main())
