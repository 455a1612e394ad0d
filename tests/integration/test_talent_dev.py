"""`talent dev`: the whole service from one command, its demo journeys, a clean stop, and a restart
that finds the same journeys (the Temporal state file and the database both outlive the process)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.postgres import create_database, drop_database, server_dsn

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 60.0
STOP_WITHIN = 20.0


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` and their command lines, from /proc."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: the fields after it start past the last ")".
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie is not)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


@dataclass
class Dev:
    """A running `talent dev`: its process, where it listens, and what it wrote."""

    process: subprocess.Popen[bytes]
    port: int
    out: Path
    err: Path

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        """What it printed (the banner)."""
        return self.out.read_text()

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Send `sig` and wait for the exit code."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=STOP_WITHIN)


def start_dev(data_dir: Path, dsn: str, port: int, name: str, *args: str) -> Dev:
    """`talent dev --port <port> [args]` on `data_dir` and `dsn`, in its own session."""
    env = {k: v for k, v in os.environ.items() if k not in ("TALENT_TOKENS_FILE", "TEMPORAL_ADDRESS")}
    env.update(TALENT_DATA_DIR=str(data_dir), DATABASE_URL=dsn, TALENT_LOG_FORMAT="json")
    out, err = data_dir.parent / f"{name}.out", data_dir.parent / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return Dev(process, port, out, err)


async def wait_ready(dev: Dev) -> float:
    """Poll /readyz until 200; the seconds it took."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=dev.url, timeout=2) as http:
        while time.monotonic() - started < READY_WITHIN:
            assert dev.process.poll() is None, f"talent dev exited ({dev.process.returncode}):\n{dev.err.read_text()}"
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"talent dev was not ready within {READY_WITHIN:.0f} s:\n{dev.err.read_text()}")


async def printed(dev: Dev, last_line: str, within: float = 20.0) -> str:
    """The banner once it is whole: it is printed just after the API starts answering."""
    deadline = time.monotonic() + within
    while last_line not in (out := dev.stdout()):
        assert time.monotonic() < deadline, f"no banner within {within:.0f} s:\n{out}\n{dev.err.read_text()}"
        await asyncio.sleep(0.1)
    return out


async def journeys(dev: Dev, token: str) -> list[dict[str, Any]]:
    """GET /v1/journeys as the bearer of `token`."""
    async with httpx.AsyncClient(base_url=dev.url, timeout=5) as http:
        response = await http.get("/v1/journeys", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def tokens(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The tokens file, by role."""
    return {e["role"]: e for e in json.loads((data_dir / "tokens.json").read_text())}


def stop_and_check(dev: Dev) -> None:
    """SIGINT: exit 0 in time, and no Temporal dev server left behind."""
    servers = [pid for pid, cmd in children(dev.process.pid).items() if "start-dev" in cmd]
    assert len(servers) == 1, children(dev.process.pid)
    assert dev.stop() == 0, dev.err.read_text()
    deadline = time.monotonic() + 5
    while alive(servers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(servers[0]), "the Temporal dev server outlived talent dev"


@pytest.fixture
async def dev_database() -> AsyncIterator[str]:
    """A fresh, empty database on the local PostgreSQL (so `talent dev` never falls back to pgserver)."""
    server = await server_dsn(ROOT / ".data" / "test")
    name = f"talent_dev_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(server, name)
    yield dsn
    await drop_database(server, name)


@pytest.fixture
def started() -> Iterator[list[Dev]]:
    """Every `talent dev` a test starts, killed at the end if the test did not stop it."""
    devs: list[Dev] = []
    yield devs
    for dev in devs:
        if dev.process.poll() is None:
            dev.process.kill()  # its Temporal server gets SIGTERM from the kernel (parent-death signal)
            dev.process.wait(timeout=10)


async def test_talent_dev_serves_the_demo_stops_cleanly_and_keeps_the_journeys_across_a_restart(
    tmp_path: Path, dev_database: str, started: list[Dev]
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    first = start_dev(data_dir, dev_database, port, "first")
    started.append(first)
    ready_in = await wait_ready(first)

    by_role = tokens(data_dir)
    assert set(by_role) == {"coordinator", "hr_system", "leader", "talent"}
    coordinator, leader, talent = (by_role[r] for r in ("coordinator", "leader", "talent"))
    banner = await printed(first, "Ctrl-C stops everything.")
    for line in (
        f"{first.url}/dashboard/",
        f"{first.url}/docs",
        f"{first.url}/openapi.json",
        "Temporal UI   http://127.0.0.1:",
    ):
        assert line in banner
    assert f'curl -H "Authorization: Bearer {coordinator["token"]}" {first.url}/v1/journeys' in banner

    demo = await journeys(first, coordinator["token"])
    assert len(demo) == 5
    assert len({j["cohort_id"] for j in demo}) == 1
    assert sorted(j["state"] for j in demo) == ["enrolled"] * 4 + ["nominated"]
    assert {j["talent_id"].rsplit("-", 1)[1] for j in demo} == {"mette", "frederik", "sofie", "mads", "ida"}
    led = await journeys(first, leader["token"])
    assert {j["talent_id"].rsplit("-", 1)[1] for j in led} == {"mette", "frederik"}
    assert all(j["nearest_leader_id"] == leader["person_id"] for j in led)
    assert [j["talent_id"] for j in await journeys(first, talent["token"])] == [talent["person_id"]]

    # The port is taken: a clear message and a non-zero exit, and the running one is untouched.
    clash = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli.main", "dev", "--port", str(port)],
        check=False,
        cwd=ROOT,
        env={**os.environ, "TALENT_DATA_DIR": str(tmp_path / "other"), "DATABASE_URL": dev_database},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert clash.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in clash.stderr

    stop_and_check(first)

    second = start_dev(data_dir, dev_database, port, "second")
    started.append(second)
    await wait_ready(second)
    assert tokens(data_dir) == by_role
    again = await journeys(second, coordinator["token"])
    assert sorted(j["journey_id"] for j in again) == sorted(j["journey_id"] for j in demo)
    assert '"event": "journey_started"' not in second.err.read_text()
    stop_and_check(second)
    print(f"\ntalent dev was ready in {ready_in:.1f} s")
