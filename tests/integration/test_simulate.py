"""`talent programme simulate`: six scripted journeys on a throw-away database and the time-skipping server."""

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


async def test_simulating_the_compressed_programme_reports_six_journeys_and_their_notifications(
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
        ("late-approval", "closed", "completed"),  # sessions held before it joined are waived
        ("late-signoff", "closed", "completed"),  # the evaluation waited for the sign-off
    ]
    assert "OutcomeRecorded" in section(out, "punctual")
    absent = section(out, "absent")
    assert "MilestoneMissed            milestone=session:leading-others  reason=absent" in absent
    assert "EscalationRaised" not in absent  # rules 3: an absence is told, not escalated
    no_meetings = section(out, "no-meetings")
    assert "rung=4  to=coordinator  at_risk=True" in no_meetings
    assert "reasons=mentor_meetings_missing" in no_meetings
    paused = section(out, "paused")
    assert paused.count("JourneyPaused") == paused.count("JourneyResumed") == 2
    during = paused[paused.index("JourneyPaused") : paused.index("JourneyResumed")]
    assert "TrackSubmitted" in during and "TrackSignedOff" in during  # rules 3: the people work on
    assert "status=excused" in paused
    for scenario in ("punctual", "absent", "paused"):
        assert "EscalationRaised" not in section(out, scenario)
    late_approval = section(out, "late-approval")
    waived = re.findall(r"MilestoneWaived\s+milestone=(\S+)", late_approval)
    assert {"session:kickoff", "session:leading-self"} <= set(waived)
    assert late_approval.index("NominationApproved") < late_approval.index("MilestoneWaived")
    # No storm: the only rungs are the approval's own ladder (the coordinator, the nominating leader).
    assert set(re.findall(r"EscalationRaised\s+milestone=(\S+)", late_approval)) == {"approval"}
    late_signoff = section(out, "late-signoff")
    assert "EvaluationDeferred         awaiting=hard-conversation" in late_signoff
    assert (
        late_signoff.index("EvaluationDeferred")
        < late_signoff.index("TrackSignedOff             track=hard-conversation")
        < late_signoff.index("ProgrammeCompleted")
    )

    assert "Notifications (outbox rows) by recipient role and template" in out
    table = out[out.index("Notifications (outbox rows)") :]
    header = re.search(
        r"recipient_role\s+template\s+punctual\s+absent\s+no-meetings\s+paused\s+late-approval\s+late-signoff\s+total",
        table,
    )
    assert header is not None

    def row(role: str, template: str) -> tuple[str, ...]:
        found = re.search(rf"^  {role}\s+{template}\s+((?:\d+\s+){{6}}\d+)$", table, flags=re.M)
        assert found is not None, (role, template)
        return tuple(found.group(1).split())

    assert row("talent", "reminder") == ("0", "0", "5", "0", "0", "1", "6")
    # The absence is told to the talent and the nearest leader (rules 3), nobody else.
    assert row("talent", "absence") == ("0", "1", "0", "0", "0", "0", "1")
    assert row("nearest_leader", "absence_leader") == ("0", "1", "0", "0", "0", "0", "1")
    assert row("coordinator", "nomination_received") == ("1", "1", "1", "1", "1", "1", "6")
    assert row("nearest_leader", "approval_pending_leader") == ("0", "0", "0", "0", "1", "0", "1")
    assert row("nearest_leader", "signoff_awaited") == ("0", "0", "0", "0", "0", "1", "1")
    total = re.search(r"^  total\s+((?:\d+\s+){6}\d+)$", table, flags=re.M)
    delivery = re.search(r"delivery: (\d+) skipped \(", table)
    assert total is not None and delivery is not None
    *columns, overall = (int(n) for n in total.group(1).split())
    assert overall == int(delivery.group(1)) == sum(columns)

    assert "@" not in out  # synthetic ids only
    assert sorted(p.name for p in (tmp_path / "histories").iterdir()) == [
        "absent.json",
        "late-approval.json",
        "late-signoff.json",
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


def test_the_second_pause_leaves_three_working_days_before_the_july_closure_and_skips_it() -> None:
    programme = reference_programme()
    pace = script.Pace.of(programme)
    cal = programme.working_calendar
    start = datetime(2027, 1, 11, tzinfo=cal.tz)
    end = start + timedelta(days=290)

    window = script.summer_pause_window(programme, pace, start, end, after=datetime(2027, 4, 23, tzinfo=cal.tz))

    assert window is not None
    paused, resumed, why = window
    assert "juli" in why
    assert paused == datetime(2027, 6, 28, 10, tzinfo=cal.tz)  # Mon; July 2027 begins on a Thursday
    assert resumed.date() > date(2027, 7, 31)  # the clock skips the closure
    assert cal.working_days_between(paused, resumed) == script.SUMMER_PAUSE_WORKING_DAYS
    # A cohort that ends before July has no summer pause.
    assert script.summer_pause_window(programme, pace, start, datetime(2027, 6, 1, tzinfo=cal.tz), after=start) is None


def test_the_late_approval_comes_after_the_second_sessions_attendance_was_due() -> None:
    programme = reference_programme()
    pace = script.Pace.of(programme)
    cohort = script.simulation_cohort(programme, pace, date(2027, 1, 11))
    cal = programme.working_calendar

    approved = script.late_approval_at(programme, cohort, pace)

    second = cohort.sessions[1].starts_at
    assert approved > cal.add(second, programme.attendance_grace)
    assert approved < cohort.sessions[2].starts_at
    assert cal.is_working_day(cal.local(approved).date())
