"""`talent programme simulate`: four scripted journeys on a throw-away database and the time-skipping server."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from cli import simulate
from cli.main import build_parser
from cli.simulate import script
from domain.calendar import danish_holidays
from infra.settings import Settings
from tests.support import ROOT, compressed_programme, reference_programme


async def simulation_databases(dsn: str) -> set[str]:
    """The simulation's throw-away databases on the server of `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'talent_sim_%'")
    finally:
        await conn.close()
    return {r["datname"] for r in rows}


def section(out: str, scenario: str) -> str:
    """One journey's part of the report: its heading up to its final line."""
    start = out.index(f"== {scenario} (journey sim-{scenario})")
    return out[start : out.index("final:", start)]


async def test_simulating_the_compressed_programme_reports_four_journeys_and_their_notifications(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_dsn)  # the session's server: the simulation makes its own database
    settings = Settings.model_validate({"data_dir": tmp_path})
    before = await simulation_databases(database_dsn)

    code = await simulate.main(
        ROOT / "examples" / "demo-compressed.yaml", settings, record_histories=tmp_path / "histories"
    )

    out = capsys.readouterr().out
    assert code == 0
    finals = re.findall(r"^== (\S+) .*?^  final: state (\w+), completion (\w+)", out, flags=re.M | re.S)
    assert finals == [
        ("punctual", "closed", "completed"),
        ("absent", "closed", "completed"),  # one absence: still above the minimum attendance share
        ("no-meetings", "closed", "not_completed"),
        ("paused", "closed", "completed"),
    ]
    assert "OutcomeRecorded" in section(out, "punctual")
    assert "MilestoneMissed            milestone=session:leading-others  reason=absent" in section(out, "absent")
    no_meetings = section(out, "no-meetings")
    assert "rung=4  to=coordinator  at_risk=True" in no_meetings
    assert "reasons=mentor_meetings_missing" in no_meetings
    paused = section(out, "paused")
    assert paused.index("JourneyPaused") < paused.index("JourneyResumed")
    assert "status=excused" in paused
    for scenario in ("punctual", "absent", "paused"):
        assert "EscalationRaised" not in section(out, scenario)

    assert "Notifications (outbox rows) by recipient role and template" in out
    table = out[out.index("Notifications (outbox rows)") :]
    header = re.search(r"recipient_role\s+template\s+punctual\s+absent\s+no-meetings\s+paused\s+total", table)
    assert header is not None
    reminders = re.search(r"^  talent\s+reminder\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", table, flags=re.M)
    assert reminders is not None and reminders.groups() == ("0", "0", "5", "0", "5")
    coordinator = re.search(r"^  coordinator\s+nomination_received\s+1\s+1\s+1\s+1\s+4$", table, flags=re.M)
    assert coordinator is not None
    total = re.search(r"^  total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", table, flags=re.M)
    delivery = re.search(r"delivery: (\d+) skipped \(", table)
    assert total is not None and delivery is not None
    assert int(total.group(5)) == int(delivery.group(1)) == sum(int(n) for n in total.groups()[:4])

    assert "@" not in out  # synthetic ids only
    assert sorted(p.name for p in (tmp_path / "histories").iterdir()) == [
        "absent.json",
        "no-meetings.json",
        "paused.json",
        "punctual.json",
    ]
    assert await simulation_databases(database_dsn) == before  # the throw-away database is gone


async def test_an_invalid_programme_file_is_refused_with_its_field_errors_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "examples" / "talent-ny-leder.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("tracks_required: 4", "tracks_required: 9").replace("kind: dilemma_lab", "kind: lab"))

    code = await simulate.main(bad, Settings.model_validate({"data_dir": tmp_path}))

    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad} is not a valid programme" in err
    assert "sessions.2.kind" in err
    missing = await simulate.main(tmp_path / "missing.yaml", Settings.model_validate({"data_dir": tmp_path}))
    assert missing == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_talent_command_parses_programme_simulate_with_a_history_folder() -> None:
    args = build_parser().parse_args(
        ["programme", "simulate", "examples/demo-compressed.yaml", "--record-histories", "out"]
    )

    assert (args.command, args.action) == ("programme", "simulate")
    assert (args.programme_file, args.record_histories) == (Path("examples/demo-compressed.yaml"), Path("out"))
    assert build_parser().parse_args(["programme", "simulate", "p.yaml"]).record_histories is None


def test_the_pause_leaves_on_the_tuesday_before_maundy_thursday_of_the_holiday_table() -> None:
    table = danish_holidays()
    # Easter moves between 22 March and 25 April: Maundy Thursday, Good Friday and Easter Monday
    # are Danish public holidays, and the pause starts two days before the first of them.
    for year, expected in ((2027, date(2027, 3, 25)), (2028, date(2028, 4, 13)), (2030, date(2030, 4, 18))):
        thursday = script.maundy_thursday(year)
        assert thursday == expected
        assert {thursday, thursday + timedelta(days=1), thursday + timedelta(days=4)} <= set(table.keys()), year
    for year in range(2000, 2061):
        assert script.maundy_thursday(year).weekday() == 3, year


def test_the_pause_falls_over_easter_when_easter_is_inside_the_programme_and_mid_programme_otherwise() -> None:
    programme = reference_programme()
    pace = script.Pace.of(programme)
    cal = programme.working_calendar
    start = datetime(2027, 1, 11, tzinfo=cal.tz)
    paused, resumed, why = script.pause_window(programme, pace, start, start + timedelta(days=270))
    assert why == "over Easter 2027"
    assert paused == datetime(2027, 3, 23, 10, tzinfo=cal.tz)  # Tuesday before Maundy Thursday (25 March)
    assert cal.working_days_between(paused, resumed) == script.PAUSE_WORKING_DAYS

    summer = datetime(2027, 5, 3, tzinfo=cal.tz)  # the next Easter comes after this cohort ends
    paused, resumed, why = script.pause_window(programme, pace, summer, summer + timedelta(days=200))
    assert why.startswith("mid-programme")
    assert summer < paused < resumed < summer + timedelta(days=200)
    assert cal.working_days_between(paused, resumed) == script.PAUSE_WORKING_DAYS


def test_a_programme_compressed_into_minutes_runs_at_a_compressed_pace_with_sessions_every_minute() -> None:
    compressed, reference = compressed_programme(), reference_programme()
    now = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)

    assert script.Pace.of(compressed).compressed and not script.Pace.of(reference).compressed
    cohort = script.simulation_cohort(compressed, script.Pace.of(compressed), script.next_monday(now, compressed))
    assert cohort.starts_at == datetime(2026, 11, 30, 9, tzinfo=compressed.working_calendar.tz)
    gaps = {b.starts_at - a.starts_at for a, b in itertools.pairwise(cohort.sessions)}
    assert gaps == {timedelta(minutes=1)}
    assert script.simulation_cohort(reference, script.Pace.of(reference), cohort.starts_on).starts_at is None
