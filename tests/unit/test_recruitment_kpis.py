"""The recruitment-base KPIs (issue 14), computed by hand: applicants per leader post (all, and from
alumni), the share of appointments that went to alumni, time to application and appointment, the
spread; "unknown" apart from "no"; small and empty sets. And the one-click answer link's signature."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from activities.templates import compose
from domain.kpis import OutcomeFact
from domain.recruitment import (
    DEFINITIONS,
    DEFINITIONS_DA,
    Alumnus,
    Application,
    Post,
    RecruitmentKpis,
    compute_recruitment,
    csv_rows,
)
from infra import answer_links
from infra.present import Links
from store.vault import PeopleVault

AS_OF = datetime(2027, 6, 1, tzinfo=UTC)
POSTS = [
    Post(post_id="P1", unit="A", profession="school", level="first-line", opened_on=date(2026, 1, 1)),
    Post(
        post_id="P2",
        unit="A",
        profession="daycare",
        level="first-line",
        opened_on=date(2026, 11, 1),
        closed_on=date(2026, 12, 15),
    ),
    Post(post_id="P3", unit="B", profession="school", level="middle", opened_on=date(2027, 1, 1)),
]
DONE_2025 = date(2026, 1, 10)
DONE_2026 = date(2027, 1, 5)
ALUMNI = [
    # HR reported alice applying (30 days after completion) and appointed (60 days).
    Alumnus(person_id="alice", cohort_year=2025, completed_on=DONE_2025),
    # bob answered a follow-up: he did not apply.
    Alumnus(
        person_id="bob",
        cohort_year=2025,
        completed_on=DONE_2025,
        outcomes=(OutcomeFact(applied_for_leader_post=False, appointed=False, on=date(2026, 7, 10), months=6),),
    ),
    # carol never answered and no HR system reported her: unknown, not "did not apply".
    Alumnus(person_id="carol", cohort_year=2025, completed_on=DONE_2025),
    # dan answered yes (20 days) before HR reported his application (30 days): the first counts.
    Alumnus(
        person_id="dan",
        cohort_year=2026,
        completed_on=DONE_2026,
        outcomes=(OutcomeFact(applied_for_leader_post=True, appointed=False, on=date(2027, 1, 25)),),
    ),
    # erin applied before she completed: an applicant, not an alumni applicant; unknown since.
    Alumnus(person_id="erin", cohort_year=2026, completed_on=DONE_2026),
]
APPLICATIONS = [
    Application(post_id="P1", person_id="alice", on=date(2026, 2, 9)),
    Application(post_id="P1", person_id="x", on=date(2026, 2, 1)),
    Application(post_id="P1", person_id="y", on=date(2026, 2, 2)),
    Application(post_id="P2", person_id="erin", on=date(2026, 12, 1)),
    Application(post_id="P3", person_id="dan", on=date(2027, 2, 4)),
    # A post nobody reported: ignored.
    Application(post_id="P9", person_id="x", on=date(2026, 2, 1)),
]
APPOINTMENTS = [
    Application(post_id="P1", person_id="alice", on=date(2026, 3, 11)),
    # z was appointed without a reported application: an appointment implies one.
    Application(post_id="P3", person_id="z", on=date(2027, 3, 1)),
]


def kpis() -> RecruitmentKpis:
    return compute_recruitment("tnl", POSTS, APPLICATIONS, APPOINTMENTS, ALUMNI, as_of=AS_OF)


def test_applicants_per_post_all_and_from_alumni_and_the_alumni_share_of_appointments() -> None:
    found = kpis()
    assert found.all_posts.model_dump() == {
        "unit": None,
        "posts": 3,
        "applicants": 6,  # P1: alice, x, y; P2: erin; P3: dan, z
        "alumni_applicants": 2,  # alice and dan (erin applied before she completed)
        "applicants_per_post": 2.0,
        "alumni_applicants_per_post": pytest.approx(2 / 3),
        "appointments": 2,
        "alumni_appointments": 1,
        "alumni_appointment_share": 0.5,
    }
    a, b = found.by_unit
    assert (a.unit, a.posts, a.applicants, a.alumni_applicants, a.applicants_per_post) == ("A", 2, 4, 1, 2.0)
    assert (a.alumni_applicants_per_post, a.appointments, a.alumni_appointment_share) == (0.5, 1, 1.0)
    assert (b.unit, b.posts, b.applicants, b.alumni_applicants, b.alumni_applicants_per_post) == ("B", 1, 2, 1, 1.0)
    assert (b.appointments, b.alumni_appointments, b.alumni_appointment_share) == (1, 0, 0.0)


def test_cohort_years_keep_unknown_apart_from_no_and_give_median_days() -> None:
    y2025, y2026 = kpis().by_cohort_year
    assert y2025.model_dump() == {
        "cohort_year": 2025,
        "alumni": 3,
        "applied": 1,  # alice, from HR
        "not_applied": 1,  # bob said no
        "unknown": 1,  # carol: no answer is not a no
        "appointed": 1,
        "alumni_applicants": 1,  # alice on P1
        "alumni_applicants_per_post": 1 / 3,
        "median_days_to_application": 30.0,
        "median_days_to_appointment": 60.0,
    }
    assert y2026.model_dump() == {
        "cohort_year": 2026,
        "alumni": 2,
        "applied": 1,  # dan
        "not_applied": 0,
        "unknown": 1,  # erin: her application predates her completion
        "appointed": 0,
        "alumni_applicants": 1,  # dan on P3 (erin's predates her completion)
        "alumni_applicants_per_post": 1 / 3,
        "median_days_to_application": 20.0,  # dan's answer (20) before HR's report (30)
        "median_days_to_appointment": None,
    }
    for y in (y2025, y2026):
        assert y.applied + y.not_applied + y.unknown == y.alumni


def test_the_spread_of_alumni_applicants_across_units_and_professions() -> None:
    spread = kpis().spread
    assert (spread.by_unit, spread.by_profession) == ({"A": 1, "B": 1}, {"school": 2})
    assert (spread.units, spread.professions) == (2, 1)


def test_an_hr_report_outweighs_an_earlier_no_and_a_median_of_two_is_their_mean() -> None:
    alumni = [
        ALUMNI[1],  # bob said no in July 2026 ...
        Alumnus(person_id="fay", cohort_year=2025, completed_on=DONE_2025),
    ]
    applications = [
        Application(post_id="P1", person_id="bob", on=date(2026, 8, 1)),  # ... and applied in August: 203 days
        Application(post_id="P1", person_id="fay", on=date(2026, 1, 20)),  # 10 days
    ]
    [year] = compute_recruitment("tnl", POSTS, applications, [], alumni, as_of=AS_OF).by_cohort_year
    assert (year.applied, year.not_applied, year.unknown) == (2, 0, 0)
    assert year.median_days_to_application == (203 + 10) / 2


def test_a_small_or_empty_programme_gives_nulls_not_zeros_or_errors() -> None:
    empty = compute_recruitment("tnl", [], [], [], [], as_of=AS_OF)
    assert empty.all_posts.posts == 0
    assert (empty.all_posts.applicants_per_post, empty.all_posts.alumni_appointment_share) == (None, None)
    assert (empty.by_unit, empty.by_cohort_year, empty.spread.units) == ((), (), 0)
    one = compute_recruitment("tnl", POSTS[:1], [], [], [ALUMNI[2]], as_of=AS_OF)
    assert one.all_posts.applicants_per_post == 0.0
    [year] = one.by_cohort_year
    assert (year.alumni, year.unknown, year.median_days_to_application) == (1, 1, None)
    with pytest.raises(ValueError, match="timezone"):
        compute_recruitment("tnl", [], [], [], [], as_of=datetime(2027, 1, 1))


def test_every_kpi_has_one_definition_in_both_languages_and_the_openapi_uses_it() -> None:
    assert set(DEFINITIONS) == set(DEFINITIONS_DA)
    schema = RecruitmentKpis.model_json_schema()
    posts = schema["$defs"]["PostKpis"]["properties"]
    assert posts["applicants_per_post"]["description"] == DEFINITIONS["applicants_per_post"]
    years = schema["$defs"]["CohortYearKpis"]["properties"]
    assert years["unknown"]["description"] == DEFINITIONS["unknown"]


def test_the_csv_has_a_row_per_group_and_kpi() -> None:
    rows = csv_rows(kpis())
    assert rows[0] == ["section", "group", "kpi", "value"]
    assert ["posts", "all", "alumni_appointment_share", "0.5"] in rows
    assert ["posts", "all", "alumni_applicants_per_post", "0.6667"] in rows
    assert ["cohort_year", "2025", "unknown", "1"] in rows
    assert ["cohort_year", "2026", "median_days_to_appointment", ""] in rows
    assert ["spread_profession", "school", "alumni_applicants", "2"] in rows


def test_the_answer_link_is_signed_by_the_vaults_keyed_ids_and_expires() -> None:
    # Keyed ids need no database.
    vault = PeopleVault(None, b"k" * 32)  # type: ignore[arg-type]
    other = PeopleVault(None, b"o" * 32)  # type: ignore[arg-type]
    respond_by = datetime.now(UTC) + timedelta(days=14)
    path = answer_links.answer_path(vault.keyed_id, "j-1", 2, respond_by)
    assert path.startswith("/dashboard/answer/j-1?point=2&expires=")
    query = dict(part.split("=") for part in path.split("?")[1].split("&"))
    expires, sig = int(query["expires"]), query["sig"]
    assert answer_links.valid(vault.keyed_id, "j-1", 2, expires, sig)
    assert not answer_links.valid(vault.keyed_id, "j-2", 2, expires, sig)  # another journey
    assert not answer_links.valid(vault.keyed_id, "j-1", 3, expires, sig)  # another point
    assert not answer_links.valid(vault.keyed_id, "j-1", 2, expires + 1, sig)  # a longer life
    assert not answer_links.valid(other.keyed_id, "j-1", 2, expires, sig)  # another instance's key
    late = datetime.fromtimestamp(expires + 1, UTC)
    assert not answer_links.valid(vault.keyed_id, "j-1", 2, expires, sig, now=late)


def test_the_follow_up_e_mail_links_to_the_signed_answer_page() -> None:
    vault = PeopleVault(None, b"k" * 32)  # type: ignore[arg-type]
    respond_by = datetime.now(UTC) + timedelta(days=14)
    common = {
        "recipient": "Mette",
        "talent": "Mette",
        "journey_id": "j-1",
        "programme": None,
        "due": respond_by,
        "links": Links("https://talent.example"),
    }
    data = {"point": 1, "respond_by": respond_by.isoformat()}
    mail = compose("follow_up_question", "da", data=data, sign=vault.keyed_id, **common)  # type: ignore[arg-type]
    link = mail.body.strip().splitlines()[-1]
    assert link == "https://talent.example" + answer_links.answer_path(vault.keyed_id, "j-1", 1, respond_by)
    # Other e-mails keep linking to the journey's page.
    other = compose("signoff_awaited", "da", data={}, sign=vault.keyed_id, **common)  # type: ignore[arg-type]
    assert other.body.strip().splitlines()[-1] == "https://talent.example/dashboard/journeys/j-1"
