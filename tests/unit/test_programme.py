"""Programme definitions and cohorts: the examples load, bad ones are refused naming the field."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import yaml

from domain.calendar import Delay
from domain.errors import ProgrammeInvalid
from domain.programme import (
    Cohort,
    CohortSession,
    Programme,
    parse_cohort,
    parse_programme,
    programme_json,
)
from infra.programmes import load_programme
from tests.support import (
    CPH,
    ROOT,
    compressed_cohort,
    compressed_programme,
    reference_cohort,
    reference_programme,
)

REFERENCE_YAML = (ROOT / "examples" / "talent-ny-leder.yaml").read_text()
REFERENCE = yaml.safe_load(REFERENCE_YAML)


def data(**changes: Any) -> dict[str, Any]:
    """A deep copy of the reference programme's data with top-level changes."""
    out: dict[str, Any] = copy.deepcopy(REFERENCE)
    out.update(changes)
    return out


def errors_of(value: Any) -> list[str]:
    with pytest.raises(ProgrammeInvalid) as info:
        if isinstance(value, str):
            load_programme(value)
        else:
            parse_programme(value)
    return info.value.errors


# -- the examples --------------------------------------------------------------------------------


def test_the_reference_programme_loads_with_its_shape() -> None:
    p = reference_programme()

    assert (p.id, p.version, p.calendar.name, p.timezone) == ("talent-ny-leder", 2, "dk-municipal", "Europe/Copenhagen")
    assert len(p.sessions) == 8
    assert [s.key for s in p.sessions if s.kind == "dilemma_lab"] == ["dilemma-lab-1", "dilemma-lab-2"]
    assert [s.key for s in p.sessions if not s.mandatory] == ["network"]
    assert len(p.tracks) == 4
    assert p.mentor_meetings.count == 5
    assert p.approval.deadline == Delay(working_days=10)
    assert [(r.after.working_days, r.recipient) for r in p.escalation.rungs] == [
        (0, "talent"),
        (3, "nearest_leader"),
        (6, "leaders_leader"),
        (10, "coordinator"),
    ]
    assert p.follow_up.months == (6, 12, 24)
    assert p.deadline_time == time(16, 0)


def test_the_reference_programme_requires_six_of_its_seven_mandatory_sessions() -> None:
    p = reference_programme()
    assert len(p.mandatory_sessions()) == 7
    assert p.sessions_required() == 6  # ceil(0.8 x 7)


def test_the_compressed_programme_loads_with_calendar_time_delays() -> None:
    p = compressed_programme()

    assert p.calendar.name == "weekdays"
    assert p.attendance_grace.clock == "calendar"
    assert all(t.due.clock == "calendar" for t in p.tracks)
    assert all(r.after.clock == "calendar" for r in p.escalation.rungs)
    assert p.follow_up.after == (Delay(iso="PT40S"), Delay(iso="PT80S"), Delay(iso="PT120S"))


def test_a_programme_survives_its_canonical_json() -> None:
    p = reference_programme()
    text = programme_json(p)

    assert parse_programme(json.loads(text)) == p
    assert load_programme(text) == p  # JSON is YAML
    assert programme_json(load_programme(text)) == text


def test_defaults_fill_what_a_programme_leaves_out() -> None:
    minimal = data()
    for key in ("calendar", "timezone", "deadline_time", "attendance_grace", "follow_up", "description"):
        minimal.pop(key, None)

    p = parse_programme(minimal)

    assert (p.calendar.name, p.calendar.closures, p.timezone, p.deadline_time) == (
        "dk",
        (),
        "Europe/Copenhagen",
        time(16, 0),
    )
    assert p.attendance_grace == Delay(working_days=2)
    assert p.follow_up.months == (6, 12, 24)


def test_a_programme_timed_in_months_validates() -> None:
    p = parse_programme(
        data(
            calendar="weekdays",
            completion={**REFERENCE["completion"], "evaluate_after": "P9M"},
            mentor_meetings={"count": 5, "cadence": "P1M"},
        )
    )
    assert p.completion.evaluate_after.nominal_days() > p.tracks[-1].due.nominal_days()


# -- refusals that name the field ----------------------------------------------------------------


def test_an_unknown_top_level_key_is_refused_by_name() -> None:
    assert errors_of(data(colour="red")) == ["colour: Extra inputs are not permitted"]


def test_an_unknown_nested_key_is_refused_with_its_path() -> None:
    bad = data()
    bad["sessions"][2]["room"] = "A1"
    assert errors_of(bad) == ["sessions.2.room: Extra inputs are not permitted"]


def test_a_duplicate_session_key_is_refused_naming_both_places() -> None:
    bad = data()
    bad["sessions"][7]["key"] = "kickoff"
    assert errors_of(bad) == ["sessions[7].key: duplicate key 'kickoff' (also in sessions[0])"]


def test_a_duplicate_track_key_is_refused_naming_both_places() -> None:
    bad = data()
    bad["tracks"][1]["key"] = "observe-leader"
    assert errors_of(bad) == ["tracks[1].key: duplicate key 'observe-leader' (also in tracks[0])"]


def test_a_track_may_not_share_a_key_with_a_session() -> None:
    bad = data()
    bad["tracks"][0]["key"] = "kickoff"
    assert errors_of(bad) == ["tracks[0].key: duplicate key 'kickoff' (also in sessions[0])"]


def test_a_duplicate_yaml_mapping_key_is_refused_instead_of_silently_kept() -> None:
    text = REFERENCE_YAML.replace("title: Talent Ny Leder\n", "title: Talent Ny Leder\ntitle: Again\n", 1)

    (message,) = errors_of(text)

    assert message.startswith("programme: not valid YAML or JSON: duplicate key 'title'")
    assert "line 6" in message


def test_a_duplicate_key_in_a_nested_yaml_mapping_is_refused() -> None:
    text = REFERENCE_YAML.replace("  count: 5\n", "  count: 5\n  count: 6\n", 1)
    assert "duplicate key 'count'" in errors_of(text)[0]


def test_text_that_is_not_yaml_or_not_a_mapping_is_refused() -> None:
    assert errors_of("sessions: [1")[0].startswith("programme: not valid YAML or JSON")
    assert errors_of("- just\n- a list\n") == ["programme: expected a mapping at the top level"]


def test_missing_required_fields_are_each_named() -> None:
    assert errors_of("{}") == [
        "id: Field required",
        "version: Field required",
        "title: Field required",
        "sessions: Field required",
        "mentor_meetings: Field required",
        "approval: Field required",
        "completion: Field required",
        "escalation: Field required",
    ]


def test_a_track_due_after_the_programme_ends_is_refused() -> None:
    bad = data()
    bad["tracks"][3]["due"] = 200
    assert errors_of(bad) == [
        "tracks[3].due: 'hard-conversation' is due (200 working days) after the programme ends "
        "(completion.evaluate_after = 190 working days)"
    ]


def test_mentor_meetings_that_run_past_the_end_are_refused() -> None:
    (message,) = errors_of(data(mentor_meetings={"count": 5, "cadence": 40}))
    assert message.startswith("mentor_meetings: the last of 5 meetings every 40 working days falls after")


def test_an_escalation_rung_without_a_recipient_is_refused() -> None:
    bad = data()
    del bad["escalation"]["rungs"][2]["recipient"]
    assert errors_of(bad) == ["escalation.rungs.2.recipient: Field required"]


def test_an_escalation_rung_with_an_unknown_role_is_refused() -> None:
    bad = data()
    bad["escalation"]["rungs"][0]["recipient"] = "mentor"
    assert errors_of(bad)[0].startswith("escalation.rungs.0.recipient: Input should be 'talent'")


def test_escalation_rungs_that_go_back_in_time_are_refused() -> None:
    bad = data()
    bad["escalation"]["rungs"][2]["after"] = 2
    assert errors_of(bad) == ["escalation.rungs: rung 2 comes before rung 1: rungs must not go back in time"]


def test_an_empty_escalation_ladder_is_refused() -> None:
    assert errors_of(data(escalation={"rungs": []}))[0].startswith("escalation.rungs: ")


@pytest.mark.parametrize(
    ("delay", "message"),
    [
        ("forty", "approval.deadline: 'forty' is not an ISO 8601 duration such as PT30M or P2W"),
        ("10:00", "approval.deadline: '10:00' is not an ISO 8601 duration such as PT30M or P2W"),
        (1.5, "approval.deadline: 1.5 is not a delay: give working days (an integer) or an ISO 8601 duration"),
        (True, "approval.deadline: a delay is a number of working days or an ISO 8601 duration"),
        (-3, "approval.deadline: working days must not be negative"),
        ("P0D", "approval.deadline: 'P0D' must be a positive duration"),
    ],
)
def test_a_delay_that_is_neither_working_days_nor_iso_8601_is_refused_naming_the_field(
    delay: Any, message: str
) -> None:
    (error,) = errors_of(data(approval={"deadline": delay}))
    assert error.startswith(message)


def test_tracks_required_beyond_the_tracks_defined_is_refused() -> None:
    bad = data(completion={**REFERENCE["completion"], "tracks_required": 5})
    assert errors_of(bad) == ["completion.tracks_required: 5 exceeds the 4 tracks defined"]


def test_more_required_mentor_meetings_than_planned_is_refused() -> None:
    bad = data(completion={**REFERENCE["completion"], "min_mentor_meetings": 6})
    assert errors_of(bad) == ["completion.min_mentor_meetings: 6 exceeds the 5 meetings planned"]


def test_several_consistency_errors_are_reported_together() -> None:
    bad = data(completion={**REFERENCE["completion"], "tracks_required": 5, "min_mentor_meetings": 6})
    assert len(errors_of(bad)) == 2


def test_an_unknown_time_zone_is_refused() -> None:
    assert errors_of(data(timezone="Mars/Olympus")) == ["timezone: unknown time zone 'Mars/Olympus'"]


def test_an_unknown_calendar_is_refused() -> None:
    assert errors_of(data(calendar="us")) == ["calendar.name: Input should be 'dk', 'dk-municipal' or 'weekdays'"]


def test_an_attendance_share_above_one_is_refused() -> None:
    bad = data(completion={**REFERENCE["completion"], "min_attendance_share": 1.2})
    assert errors_of(bad)[0].startswith("completion.min_attendance_share: ")


def test_follow_up_months_must_increase() -> None:
    bad = data(follow_up={"months": [12, 6]})
    assert errors_of(bad) == ["follow_up.months: follow-up months must be strictly increasing"]


def test_a_session_key_must_be_a_slug() -> None:
    bad = data()
    bad["sessions"][0]["key"] = "Kick off"
    assert errors_of(bad)[0].startswith("sessions.0.key: String should match pattern")


def test_programmes_are_immutable() -> None:
    p = reference_programme()
    with pytest.raises(ValueError, match="frozen"):
        p.title = "changed"  # type: ignore[misc]


# -- cohorts -------------------------------------------------------------------------------------


def cohort_errors(cohort: Cohort, programme: Programme) -> list[str]:
    with pytest.raises(ProgrammeInvalid) as info:
        cohort.check_against(programme)
    return info.value.errors


def test_the_reference_cohort_schedules_every_session_of_its_programme() -> None:
    p = reference_programme()
    reference_cohort(p).check_against(p)
    p2 = compressed_programme()
    compressed_cohort(p2, datetime(2027, 3, 1, 9, tzinfo=CPH)).check_against(p2)


def test_a_cohort_with_an_unknown_session_key_is_refused() -> None:
    p = reference_programme()
    good = reference_cohort(p)
    extra = CohortSession(key="party", starts_at=good.sessions[-1].starts_at)
    bad = good.model_copy(update={"sessions": (*good.sessions, extra)})

    assert cohort_errors(bad, p) == ["sessions[8].key: unknown session 'party'"]


def test_a_cohort_that_does_not_schedule_a_session_is_refused() -> None:
    p = reference_programme()
    good = reference_cohort(p)
    bad = good.model_copy(update={"sessions": good.sessions[:-2]})

    assert cohort_errors(bad, p) == ["sessions: not scheduled: closing, dilemma-lab-2"]


def test_a_cohort_that_schedules_a_session_twice_is_refused() -> None:
    p = reference_programme()
    good = reference_cohort(p)
    bad = good.model_copy(update={"sessions": (*good.sessions, good.sessions[0])})

    assert cohort_errors(bad, p) == ["sessions[8].key: session 'kickoff' scheduled twice"]


def test_a_cohort_for_another_programme_is_refused() -> None:
    p = reference_programme()
    bad = reference_cohort(p).model_copy(update={"programme_version": 3})

    assert cohort_errors(bad, p) == ["programme_id: cohort is for talent-ny-leder v3, not talent-ny-leder v2"]


def test_a_session_before_the_cohort_starts_is_refused() -> None:
    p = reference_programme()
    good = reference_cohort(p)
    early = good.sessions[0].model_copy(update={"starts_at": datetime(2027, 1, 10, 9, tzinfo=CPH)})
    bad = good.model_copy(update={"sessions": (early, *good.sessions[1:])})

    assert cohort_errors(bad, p) == ["sessions[0].starts_at: before the cohort starts"]


def test_a_cohort_starts_at_local_midnight_unless_given_an_exact_instant() -> None:
    p = reference_programme()
    cohort = reference_cohort(p)
    assert cohort.start_instant(p) == datetime(2027, 1, 11, 0, 0, tzinfo=CPH)

    start = datetime(2027, 1, 11, 9, 30, tzinfo=CPH)
    assert cohort.model_copy(update={"starts_at": start}).start_instant(p) == start


def test_parse_cohort_names_bad_fields() -> None:
    with pytest.raises(ProgrammeInvalid) as info:
        parse_cohort(
            {
                "cohort_id": "c-1",
                "programme_id": "talent-ny-leder",
                "programme_version": 1,
                "starts_on": "not a date",
                "capacity": 0,
                "sessions": [{"key": "kickoff", "starts_at": "2027-01-11T09:00:00"}],
            }
        )
    fields = [error.split(":", 1)[0] for error in info.value.errors]
    assert fields == ["starts_on", "capacity", "sessions.0.starts_at"]


def test_parse_cohort_accepts_the_api_body() -> None:
    cohort = parse_cohort(
        {
            "cohort_id": "tnl-2027-1",
            "programme_id": "talent-ny-leder",
            "programme_version": 1,
            "starts_on": "2027-01-11",
            "capacity": 24,
            "sessions": [{"key": "kickoff", "starts_at": "2027-01-11T09:00:00+01:00", "location": "UCN Aalborg"}],
        }
    )
    assert cohort.starts_on == date(2027, 1, 11)
    assert cohort.sessions[0].starts_at.utcoffset() == timedelta(hours=1)


def test_an_approval_climbs_only_the_coordinators_rungs_and_every_other_milestone_all_of_them() -> None:
    programme = reference_programme()
    rungs = programme.escalation.rungs
    everyone = programme.rungs_for("track")
    assert [n for n, _ in everyone] == list(range(1, len(rungs) + 1))
    approval = programme.rungs_for("approval")
    assert approval and all(r.recipient == "coordinator" for _, r in approval)
    assert [n for n, _ in approval] == [i for i, r in enumerate(rungs, start=1) if r.recipient == "coordinator"]
    data = programme.model_dump(mode="json")
    data["escalation"] = {
        "rungs": [{"after": 0, "recipient": "nearest_leader"}, {"after": 2, "recipient": "leaders_leader"}]
    }
    no_coordinator = Programme.model_validate(data)
    assert [(n, r.recipient) for n, r in no_coordinator.rungs_for("approval")] == [(2, "leaders_leader")]
