"""What `talent dev` prints once the API answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from api.auth import TokenEntry
from cli.dev.temporal import TEMPORAL_PORT, DevTemporal
from cli.dev.tokens import ROLES


async def database_label(pool: asyncpg.Pool[asyncpg.Record], data_dir: Path) -> str:
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
