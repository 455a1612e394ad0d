"""`talent dev` on this machine: the ports it takes and the lock on its data dir."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import structlog

log = structlog.get_logger("talent.dev")


class DevError(Exception):
    """`talent dev` cannot start; the message says why and what to do about it."""


def port_free(host: str, port: int) -> bool:
    """Whether `port` can be bound on `host` now (with SO_REUSEADDR, as uvicorn and Go bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_or_free(port: int, host: str = "127.0.0.1") -> int:
    """`port` if it is free, else (or for 0) one the OS picks (a Temporal on 7233 already, e.g. a
    compose stack)."""
    if port and port_free(host, port):
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        free: int = sock.getsockname()[1]
    if port:
        log.warning("dev_port_taken", wanted=port, using=free)
    return free


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
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
