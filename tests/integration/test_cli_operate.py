"""The operator's `talent journey ...` and `talent cohort ...` commands (CLI parity, PRODUCT §8.6):
run in process on the test database, the time-skipping server and a real worker, through the same
service as the API; exit 0 done, 1 refused (nothing changed), 2 a dependency unreachable."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli import main as cli
from domain.programme import Cohort
from store.catalog import Catalog
from store.vault import PeopleVault, PersonData
from store.views import journeys as journeys_view
from tests.conftest import SESSION_VAULT_KEY
from tests.support import reference_cohort, reference_programme
from tests.workflows.conftest import journey_worker, time_env  # noqa: F401 - fixtures used here

#: A log line of the in-process worker (structlog's console renderer, or the SDK core's, in colour).
_LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}|\x1b\[)")


@pytest.fixture
def talent(
    time_env: WorkflowEnvironment,  # noqa: F811 - the imported fixture
    journey_worker: Worker,  # noqa: F811 - the imported fixture
    database_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """`talent ARGS...` in process (in a thread: it runs its own event loop) against the test stack:
    its exit code, stdout and stderr."""
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

    async def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        # The in-process worker's log lines share this process's stdout: keep the command's own.
        return code, "".join(line for line in out.splitlines(keepends=True) if not _LOG_LINE.match(line)), err

    return run


async def _setup(time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str) -> Cohort:  # noqa: F811
    programme = reference_programme().model_copy(update={"id": f"cli-{unique}"})
    now = await time_env.get_current_time()
    cohort = reference_cohort(programme, cohort_id=f"c-cli-{unique}", starts_on=(now + timedelta(days=21)).date())
    catalog = Catalog(pool)
    await catalog.publish(programme)
    await catalog.create_cohort(cohort)
    return cohort


async def _nominate(talent: Any, capsys: Any, tmp_path: Path, cohort_id: str, person: str) -> str:
    nomination = {
        "cohort_id": cohort_id,
        "motivation": "Stærk.",
        "talent": {"person_id": person, "name": "Tove", "email": "tove@example.org"},
        "nearest_leader": {"person_id": "p-cli-leader", "name": "Lise", "email": "lise@example.org"},
    }
    path = tmp_path / f"{person}.json"
    path.write_text(json.dumps(nomination))
    code, out, err = await talent("journey", "nominate", str(path), capsys=capsys)
    assert code == 0, err
    journey_id: str = json.loads(out)["journey_id"]
    return journey_id


async def _state(pool: asyncpg.Pool[asyncpg.Record], journey_id: str) -> tuple[str, str, int]:
    status = await journeys_view.status(pool, journey_id)
    assert status is not None
    return status.state, status.nearest_leader_id, status.version


async def test_journey_commands_act_through_the_service_and_a_refusal_exits_1_changing_nothing(
    talent: Any,
    time_env: WorkflowEnvironment,  # noqa: F811
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cohort = await _setup(time_env, pool, unique)
    journey_id = await _nominate(talent, capsys, tmp_path, cohort.cohort_id, f"p-cli-{unique}")

    async def refused(*args: str, code: str) -> None:
        before = await _state(pool, journey_id)
        exit_code, _, err = await talent(*args, capsys=capsys)
        assert exit_code == 1 and err.startswith("talent: ") and f"({code})" in err, (args, err)
        assert await _state(pool, journey_id) == before, args

    async def done(*args: str) -> dict[str, Any]:
        exit_code, out, err = await talent(*args, capsys=capsys)
        assert exit_code == 0, (args, err)
        result: dict[str, Any] = json.loads(out)
        return result

    await refused("journey", "decide", journey_id, "reject", code="reason_required")
    await refused("journey", "decide", f"j-none-{unique}", "approve", code="not_found")
    assert (await done("journey", "decide", journey_id, "approve"))["state"] == "enrolled"
    await refused("journey", "attend", journey_id, "nope", "excused", code="unknown_session")
    attended = await done("journey", "attend", journey_id, "kickoff", "excused")
    assert attended["events"][0] == "SessionAttendanceRecorded"
    assert (await done("journey", "pause", journey_id, "--reason", "Orlov."))["state"] == "paused"
    assert (await done("journey", "resume", journey_id))["state"] == "enrolled"
    await refused("journey", "override", journey_id, "completed", "--reason", "Fint.", code="invalid_state")

    leader = tmp_path / "leader.yaml"
    leader.write_text(f"nearest_leader: {{person_id: p-cli-new-{unique}, name: Nora, email: nora@example.org}}\n")
    changed = await done("journey", "change-leader", journey_id, str(leader), "--as", "hr_system")
    assert changed["nearest_leader_id"] == f"p-cli-new-{unique}" and changed["events"] == ["NearestLeaderChanged"]
    vault = PeopleVault(pool, SESSION_VAULT_KEY)
    assert await vault.get_person(f"p-cli-new-{unique}") == PersonData(name="Nora", email="nora@example.org")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nearest_leader: {person_id: x}\n")
    exit_code, _, err = await talent("journey", "change-leader", journey_id, str(bad), capsys=capsys)
    assert exit_code == 1 and "nearest_leader.name" in err

    assert (await done("journey", "withdraw", journey_id, "--reason", "Flyttet."))["state"] == "withdrawn"
    await refused("journey", "resume", journey_id, code="journey_ended")


async def test_cohort_commands_reschedule_roll_call_and_edit(
    talent: Any,
    time_env: WorkflowEnvironment,  # noqa: F811
    pool: asyncpg.Pool[asyncpg.Record],
    tmp_path: Path,
    unique: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cohort = await _setup(time_env, pool, unique)
    journey_id = await _nominate(talent, capsys, tmp_path, cohort.cohort_id, f"p-cli-a-{unique}")
    undecided = await _nominate(talent, capsys, tmp_path, cohort.cohort_id, f"p-cli-b-{unique}")
    assert (await talent("journey", "decide", journey_id, "approve", capsys=capsys))[0] == 0
    catalog = Catalog(pool)

    # Reschedule: a date before the cohort starts is refused, and the calendar stays.
    early = (cohort.sessions[0].starts_at - timedelta(days=90)).isoformat()
    code, _, err = await talent(
        "cohort", "reschedule", cohort.cohort_id, "kickoff", early, "--reason", "x", capsys=capsys
    )
    assert code == 1 and "before the cohort starts" in err
    assert await catalog.cohort(cohort.cohort_id) == cohort
    moved_to = cohort.sessions[0].starts_at + timedelta(days=1)
    code, out, err = await talent(
        "cohort", "reschedule", cohort.cohort_id, "kickoff", moved_to.isoformat(), "--reason", "Syg.", capsys=capsys
    )
    assert code == 0, err
    assert sorted(json.loads(out)["journeys"]) == sorted([journey_id, undecided])
    stored = await catalog.cohort(cohort.cohort_id)
    assert stored is not None and stored.sessions[0].starts_at == moved_to

    # Roll call: one line per journey; any refused line makes it exit 1, the others are recorded.
    code, out, err = await talent(
        "cohort",
        "roll-call",
        cohort.cohort_id,
        "kickoff",
        f"{journey_id}=excused",
        f"{undecided}=excused",
        capsys=capsys,
    )
    assert code == 1 and "1 of 2 line(s) refused" in err
    lines = out.splitlines()
    assert lines[0] == f"{journey_id}  recorded" and lines[1].startswith(f"{undecided}  refused: ")
    assert (await _state(pool, journey_id))[2] > 0
    code, _, err = await talent("cohort", "roll-call", cohort.cohort_id, "kickoff", "no-equals-sign", capsys=capsys)
    assert code == 1 and "JOURNEY_ID=" in err

    # Edit: capacity and a place; nothing to change, or losing the coordinator the ladders need, is refused.
    code, out, err = await talent(
        "cohort", "edit", cohort.cohort_id, "--capacity", "7", "--place", "kickoff=Rådhuset", capsys=capsys
    )
    assert code == 0, err
    edited = await catalog.cohort(cohort.cohort_id)
    assert edited is not None and (edited.capacity, edited.sessions[0].location) == (7, "Rådhuset")
    for args in ((), ("--no-coordinator",), ("--capacity", "0")):
        code, _, err = await talent("cohort", "edit", cohort.cohort_id, *args, capsys=capsys)
        assert code == 1 and err.startswith("talent: "), (args, err)
    assert await catalog.cohort(cohort.cohort_id) == edited


async def test_an_unreachable_temporal_exits_2(
    talent: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    code, _, err = await talent("journey", "resume", "j-any", capsys=capsys)
    assert code == 2 and err.startswith("talent: "), err
