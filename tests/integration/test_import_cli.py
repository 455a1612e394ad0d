"""`talent journeys import FILE.csv`: an HR system's export, nominated row by row through the service
(and over HTTP); the same file twice answers every row `existing` and changes nothing."""

from __future__ import annotations

import asyncio
import base64
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Authenticator, TokenEntry
from cli import importer
from cli import main as cli
from service import bootstrap
from store.catalog import Catalog
from tests.conftest import SESSION_VAULT_KEY, session_settings
from tests.support import reference_cohort, reference_programme
from tests.workflows.conftest import journey_worker, time_env  # noqa: F401 - fixtures used here
from tests.workflows.journeys import end_journey
from workflows.client import journey_handle

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "cohort_id;external_ref;person_id;name;email;workplace;motivation;leader_id;leader_name;leader_email;"
    "leaders_leader_id;leaders_leader_name;leaders_leader_email\n"
)


def _csv(path: Path, cohort_id: str, unique: str, *, extra: str = "") -> Path:
    lines = [
        f"{cohort_id};HR-{i}-{unique};p-imp-{i}-{unique};Tove Ø {i};tove{i}@example.org;Skolen;"
        f'"Stærk; tager ansvar.";p-imp-leader;Lise Lund;lise@example.org;p-imp-boss;Bo Berg;bo@example.org\n'
        for i in range(3)
    ]
    path.write_text(HEADER + "".join(lines) + extra, encoding="utf-8")
    return path


@pytest.fixture
def talent(
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    journey_worker: Worker,  # noqa: F811 - the imported fixture
    database_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """`talent ARGS...` in process against the test stack: exit code, stdout, stderr."""
    env = {
        "DATABASE_URL": database_dsn,
        "TALENT_VAULT_KEY": base64.b64encode(SESSION_VAULT_KEY).decode(),
        "TALENT_DATA_DIR": str(tmp_path),
        "TEMPORAL_ADDRESS": time_env.client.service_client.config.target_host,
        "TALENT_TASK_QUEUE": journey_worker.task_queue,
        "TALENT_LOG_LEVEL": "WARNING",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TALENT_API_URL", raising=False)

    async def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def _cohort(time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str) -> str:  # noqa: F811
    programme = reference_programme().model_copy(update={"id": f"imp-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-imp-{unique}", starts_on=(now + timedelta(days=21)).date())
    await Catalog(pool).publish(programme)
    await Catalog(pool).create_cohort(cohort)
    return cohort.cohort_id


async def _journeys(pool: asyncpg.Pool[asyncpg.Record], cohort_id: str) -> dict[str, int]:
    rows = await pool.fetch("SELECT journey_id, version FROM journey_status WHERE cohort_id = $1", cohort_id)
    return {row["journey_id"]: row["version"] for row in rows}


async def test_importing_a_file_twice_creates_each_journey_once(
    talent: Any,
    capsys: pytest.CaptureFixture[str],
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
) -> None:
    cohort_id = await _cohort(time_env, pool, unique)
    path = _csv(tmp_path / "export.csv", cohort_id, unique)
    try:
        code, out, err = await talent("journeys", "import", str(path), capsys=capsys)
        assert code == 0, (out, err)
        assert "created 3, existing 0, refused 0, invalid 0 of 3" in out
        assert "3/3 rows" in err  # the progress bar
        first = await _journeys(pool, cohort_id)
        assert len(first) == 3

        code, out, err = await talent("journey", "import", str(path), capsys=capsys)
        assert code == 0, (out, err)
        assert "created 0, existing 3, refused 0, invalid 0 of 3" in out
        assert await _journeys(pool, cohort_id) == first

        # A refused and an invalid row: named by line, exit 1; the rest still existing.
        bad = f"c-none-{unique};;p-imp-x-{unique};X;x@example.org;;M;p-imp-leader;Lise;lise@example.org;;;\n"
        bad += f"{cohort_id};;p-imp-y-{unique};Y;not-an-address;;M;p-imp-leader;Lise;lise@example.org;;;\n"
        mixed = _csv(tmp_path / "mixed.csv", cohort_id, unique, extra=bad)
        code, out, err = await talent("journeys", "import", str(mixed), capsys=capsys)
        assert code == 1, (out, err)
        assert "line 5: refused (unknown_cohort)" in out
        assert "line 6: invalid: talent.email" in out
        assert "created 0, existing 3, refused 1, invalid 1 of 5" in out
        assert await _journeys(pool, cohort_id) == first
    finally:
        for journey_id in await _journeys(pool, cohort_id):
            await end_journey(journey_handle(time_env.client, journey_id))


async def test_a_file_with_a_missing_column_is_refused_whole(
    talent: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("cohort_id,person_id,name,email,shoe_size\nc,p,n,e@example.org,44\n")

    code, _, err = await talent("journeys", "import", str(path), capsys=capsys)

    assert code == 2
    assert "missing columns: motivation, leader_id" in err and "unknown columns: shoe_size" in err
    shifted = tmp_path / "shifted.csv"
    shifted.write_text(HEADER + "c;;p;n;n@example.org;;m;l;L;l@example.org;;;;extra\n")
    code, _, err = await talent("journeys", "import", str(shifted), capsys=capsys)
    assert code == 2 and "line 2 has more cells than the header's 13" in err


async def test_the_import_over_http_sends_batches_and_is_idempotent(
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    journey_worker: Worker,  # noqa: F811 - the imported fixture
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
) -> None:
    cohort_id = await _cohort(time_env, pool, unique)
    rows = importer.read_rows(_csv(tmp_path / "export.csv", cohort_id, unique))
    resources = bootstrap.resources(
        session_settings(tmp_path),
        pool=pool,
        temporal=time_env.client,
        authenticator=Authenticator([TokenEntry(token="tok-hr", role="hr_system")]),
        task_queue=journey_worker.task_queue,
    )
    transport = httpx.ASGITransport(app=create_app(resources))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=60) as client:
            send = importer.over_http(client, "tok-hr")
            first = await importer.import_rows(rows, send, batch_size=2)  # two batches
            again = await importer.import_rows(rows, send, batch_size=2)
        assert [r["outcome"] for r in first.results] == ["created"] * 3
        assert [r["line"] for r in first.results] == [2, 3, 4]
        assert [r["outcome"] for r in again.results] == ["existing"] * 3
        assert [r["journey_id"] for r in again.results] == [r["journey_id"] for r in first.results]
    finally:
        for journey_id in await _journeys(pool, cohort_id):
            await end_journey(journey_handle(time_env.client, journey_id))


async def test_the_batch_benchmark_runs_at_a_small_size() -> None:
    """CI runs the benchmark once, small, to prove it works (full size: see the README)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "batch_bench.py"),
        "--rows",
        "10",
        "--concurrency",
        "4",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = out.decode()
    assert process.returncode == 0, report
    assert "nominations: 10 in" in report and "'created': 10" in report
    assert "ratio nominations/bare starts:" in report
    assert "same rows again:" in report and "'existing': 10" in report
