"""The recruitment base (issue 14): leader posts, who applied and who was appointed, and what the
programme's alumni did, as KPIs per programme, cohort year and unit.

Pure: the facts come in (the posts and the applications and appointments HR systems reported, the
alumni with their follow-up answers), the KPIs go out. "Unknown" is kept apart from "no": an
alumnus who never answered a follow-up and whom no HR system reported is unknown, not "did not
apply". Every KPI has one definition (`DEFINITIONS`), shown by the OpenAPI and the dashboard alike.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.kpis import OutcomeFact

# -- definitions -----------------------------------------------------------------------------------

#: Each KPI's definition in English: the OpenAPI's field descriptions and the English page.
DEFINITIONS: Final[dict[str, str]] = {
    "posts": "Leader posts HR systems reported (POST /v1/vacancies), open or closed.",
    "applicants": "People who applied for the posts: one per post and person with an application or an "
    "appointment (an appointment implies an application) reported by an HR system.",
    "alumni_applicants": "Of the applicants, alumni of the programme: people whose journey in it was evaluated as "
    "completed on or before the date they applied.",
    "applicants_per_post": "applicants / posts; null when there are no posts.",
    "alumni_applicants_per_post": "alumni_applicants / posts; null when there are no posts.",
    "appointments": "Posts filled: appointments an HR system reported.",
    "alumni_appointments": "Of the appointments, those that went to an alumnus (completed on or before the "
    "appointment).",
    "alumni_appointment_share": "alumni_appointments / appointments; null when there are no appointments.",
    "alumni": "Talents of the cohort year whose journey was evaluated as completed.",
    "applied": "Alumni known to have applied for a leader post since completion: reported by an HR system, or "
    "answered yes to a follow-up.",
    "not_applied": "Alumni who answered a follow-up that they had not applied, and whom no HR system reported "
    "applying.",
    "unknown": "Alumni with no follow-up answer and no HR report: no answer is not a no "
    "(applied + not_applied + unknown = alumni).",
    "appointed": "Alumni known to have been appointed to a leader post since completion (HR report or follow-up "
    "answer).",
    "median_days_to_application": "Median over the alumni who applied of the days from completion to their first "
    "application on or after it; null when none.",
    "median_days_to_appointment": "Median over the appointed alumni of the days from completion to their first "
    "appointment on or after it; null when none.",
    "cohort_alumni_applicants": "Applications (one per post and person) from the cohort year's alumni on or after "
    "their completion, over every reported post.",
    "cohort_alumni_applicants_per_post": "cohort_alumni_applicants / posts; null when there are no posts.",
    "spread": "Alumni applicants by the unit and by the profession of the posts they applied for (one per post "
    "and person); units and professions count the distinct ones.",
}

#: The same definitions in Danish, for the Danish page.
DEFINITIONS_DA: Final[dict[str, str]] = {
    "posts": "Lederstillinger som HR-systemer har meldt (POST /v1/vacancies), åbne eller lukkede.",
    "applicants": "Personer der har søgt stillingerne: én pr. stilling og person med en ansøgning eller en "
    "ansættelse (en ansættelse forudsætter en ansøgning) meldt af et HR-system.",
    "alumni_applicants": "Af ansøgerne: programmets alumner, dvs. personer hvis forløb blev vurderet gennemført "
    "senest den dag de søgte.",
    "applicants_per_post": "ansøgere / stillinger; tom når der ingen stillinger er.",
    "alumni_applicants_per_post": "alumne-ansøgere / stillinger; tom når der ingen stillinger er.",
    "appointments": "Besatte stillinger: ansættelser meldt af et HR-system.",
    "alumni_appointments": "Af ansættelserne: dem der gik til en alumne (gennemført senest ved ansættelsen).",
    "alumni_appointment_share": "alumne-ansættelser / ansættelser; tom når der ingen ansættelser er.",
    "alumni": "Årgangens talenter hvis forløb blev vurderet gennemført.",
    "applied": "Alumner der vides at have søgt en lederstilling efter forløbet: meldt af et HR-system eller "
    "svaret ja i en opfølgning.",
    "not_applied": "Alumner der har svaret i en opfølgning at de ikke har søgt, og som intet HR-system har meldt "
    "som ansøgere.",
    "unknown": "Alumner uden svar på opfølgningen og uden melding fra HR: intet svar er ikke et nej "
    "(søgt + ikke søgt + ukendt = alumner).",
    "appointed": "Alumner der vides at være ansat som leder efter forløbet (melding fra HR eller svar).",
    "median_days_to_application": "Median af dagene fra gennemførelse til første ansøgning derefter, blandt de "
    "alumner der har søgt; tom når ingen.",
    "median_days_to_appointment": "Median af dagene fra gennemførelse til første ansættelse derefter, blandt de "
    "ansatte alumner; tom når ingen.",
    "cohort_alumni_applicants": "Ansøgninger (én pr. stilling og person) fra årgangens alumner efter deres "
    "gennemførelse, på alle meldte stillinger.",
    "cohort_alumni_applicants_per_post": "årgangens alumne-ansøgninger / stillinger; tom når der ingen stillinger er.",
    "spread": "Alumne-ansøgere fordelt på enhed og fag for de stillinger de har søgt (én pr. stilling og "
    "person); enheder og fag tæller de forskellige.",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- inputs ----------------------------------------------------------------------------------------


class Post(_Frozen):
    """A leader post an HR system reported."""

    post_id: str
    unit: str
    profession: str
    level: str
    opened_on: date
    closed_on: date | None = None


class Application(_Frozen):
    """An application for a post, or an appointment to it (the list it is passed in says which)."""

    post_id: str
    person_id: str
    on: date


class Alumnus(_Frozen):
    """A talent whose journey in the programme was evaluated as completed, and their follow-up answers."""

    person_id: str
    cohort_year: int
    completed_on: date
    #: The outcomes recorded on the journey (OutcomeRecorded): follow-up answers and HR reports.
    outcomes: tuple[OutcomeFact, ...] = ()


# -- outputs ---------------------------------------------------------------------------------------


class PostKpis(_Frozen):
    """Applicants and appointments over a set of posts (all of them, or one unit's)."""

    unit: str | None = Field(description="The posts' unit; null for all posts.")
    posts: int = Field(description=DEFINITIONS["posts"])
    applicants: int = Field(description=DEFINITIONS["applicants"])
    alumni_applicants: int = Field(description=DEFINITIONS["alumni_applicants"])
    applicants_per_post: float | None = Field(description=DEFINITIONS["applicants_per_post"])
    alumni_applicants_per_post: float | None = Field(description=DEFINITIONS["alumni_applicants_per_post"])
    appointments: int = Field(description=DEFINITIONS["appointments"])
    alumni_appointments: int = Field(description=DEFINITIONS["alumni_appointments"])
    alumni_appointment_share: float | None = Field(description=DEFINITIONS["alumni_appointment_share"])


class CohortYearKpis(_Frozen):
    """What one cohort year's alumni did: applied, said no, or unknown; and how soon."""

    cohort_year: int = Field(description="The year the alumni's cohort started.")
    alumni: int = Field(description=DEFINITIONS["alumni"])
    applied: int = Field(description=DEFINITIONS["applied"])
    not_applied: int = Field(description=DEFINITIONS["not_applied"])
    unknown: int = Field(description=DEFINITIONS["unknown"])
    appointed: int = Field(description=DEFINITIONS["appointed"])
    alumni_applicants: int = Field(description=DEFINITIONS["cohort_alumni_applicants"])
    alumni_applicants_per_post: float | None = Field(description=DEFINITIONS["cohort_alumni_applicants_per_post"])
    median_days_to_application: float | None = Field(description=DEFINITIONS["median_days_to_application"])
    median_days_to_appointment: float | None = Field(description=DEFINITIONS["median_days_to_appointment"])


class Spread(_Frozen):
    """Where the alumni applied."""

    by_unit: dict[str, int] = Field(description=DEFINITIONS["spread"])
    by_profession: dict[str, int] = Field(description=DEFINITIONS["spread"])
    units: int = Field(description="Distinct units alumni applied in.")
    professions: int = Field(description="Distinct professions alumni applied in.")


class RecruitmentKpis(_Frozen):
    """The recruitment base of a programme: leader posts and its alumni among their applicants."""

    programme_id: str
    as_of: AwareDatetime = Field(description="When the KPIs were computed.")
    all_posts: PostKpis = Field(description="Every reported post.")
    by_unit: tuple[PostKpis, ...] = Field(description="Per unit of the posts, by unit.")
    by_cohort_year: tuple[CohortYearKpis, ...] = Field(description="Per cohort year of the alumni, by year.")
    spread: Spread


# -- the KPIs --------------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _median(days: list[int]) -> float | None:
    return float(statistics.median(days)) if days else None


def _per_post(entries: Iterable[Application]) -> dict[tuple[str, str], date]:
    """One entry per (post, person), at its earliest date."""
    found: dict[tuple[str, str], date] = {}
    for a in entries:
        key = (a.post_id, a.person_id)
        found[key] = min(found.get(key, a.on), a.on)
    return found


def _post_kpis(
    unit: str | None,
    posts: Sequence[Post],
    applicants: dict[tuple[str, str], date],
    appointments: dict[tuple[str, str], date],
    completed: dict[str, date],
) -> PostKpis:
    ids = {p.post_id for p in posts}

    def alumnus(person_id: str, on: date) -> bool:
        return person_id in completed and completed[person_id] <= on

    mine = {k: on for k, on in applicants.items() if k[0] in ids}
    filled = {k: on for k, on in appointments.items() if k[0] in ids}
    from_alumni = sum(alumnus(person, on) for (_, person), on in mine.items())
    to_alumni = sum(alumnus(person, on) for (_, person), on in filled.items())
    return PostKpis(
        unit=unit,
        posts=len(ids),
        applicants=len(mine),
        alumni_applicants=from_alumni,
        applicants_per_post=_rate(len(mine), len(ids)),
        alumni_applicants_per_post=_rate(from_alumni, len(ids)),
        appointments=len(filled),
        alumni_appointments=to_alumni,
        alumni_appointment_share=_rate(to_alumni, len(filled)),
    )


def compute_recruitment(
    programme_id: str,
    posts: Sequence[Post],
    applications: Sequence[Application],
    appointments: Sequence[Application],
    alumni: Sequence[Alumnus],
    *,
    as_of: datetime,
) -> RecruitmentKpis:
    """The recruitment KPIs (every definition is in `DEFINITIONS`).

    A person's completion is their earliest completed journey in the programme. An application
    or appointment to a post HR never reported is ignored (the store refuses them anyway).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    known = {p.post_id for p in posts}
    completed: dict[str, date] = {}
    for a in alumni:
        completed[a.person_id] = min(completed.get(a.person_id, a.completed_on), a.completed_on)
    applied_at = _per_post(a for a in applications if a.post_id in known)
    appointed_at = _per_post(a for a in appointments if a.post_id in known)
    # An appointment implies an application: an appointed person is an applicant of the post.
    applicants = dict(applied_at)
    for key, on in appointed_at.items():
        applicants[key] = min(applicants.get(key, on), on)

    units = sorted({p.unit for p in posts})
    all_posts = _post_kpis(None, posts, applicants, appointed_at, completed)
    by_unit = tuple(
        _post_kpis(u, [p for p in posts if p.unit == u], applicants, appointed_at, completed) for u in units
    )

    by_year: dict[int, list[Alumnus]] = {}
    for a in alumni:
        by_year.setdefault(a.cohort_year, []).append(a)
    years = []
    for year in sorted(by_year):
        applied = not_applied = unknown = appointed = from_alumni = 0
        to_application: list[int] = []
        to_appointment: list[int] = []
        for a in by_year[year]:
            reported = [on for (_, person), on in applicants.items() if person == a.person_id and on >= a.completed_on]
            from_alumni += len(reported)
            answered = [o.on for o in a.outcomes if o.applied and o.on >= a.completed_on]
            hired = [on for (_, person), on in appointed_at.items() if person == a.person_id and on >= a.completed_on]
            hired += [o.on for o in a.outcomes if o.appointed and o.on >= a.completed_on]
            if reported or answered:
                applied += 1
                to_application.append((min(reported + answered) - a.completed_on).days)
            elif a.outcomes:
                not_applied += 1
            else:
                unknown += 1
            if hired:
                appointed += 1
                to_appointment.append((min(hired) - a.completed_on).days)
        years.append(
            CohortYearKpis(
                cohort_year=year,
                alumni=len(by_year[year]),
                applied=applied,
                not_applied=not_applied,
                unknown=unknown,
                appointed=appointed,
                alumni_applicants=from_alumni,
                alumni_applicants_per_post=_rate(from_alumni, len(known)),
                median_days_to_application=_median(to_application),
                median_days_to_appointment=_median(to_appointment),
            )
        )

    post_of = {p.post_id: p for p in posts}
    alumni_applications = [
        post_of[post] for (post, person), on in applicants.items() if person in completed and completed[person] <= on
    ]
    by_unit_count = Counter(p.unit for p in alumni_applications)
    by_profession = Counter(p.profession for p in alumni_applications)
    return RecruitmentKpis(
        programme_id=programme_id,
        as_of=as_of,
        all_posts=all_posts,
        by_unit=by_unit,
        by_cohort_year=tuple(years),
        spread=Spread(
            by_unit=dict(sorted(by_unit_count.items())),
            by_profession=dict(sorted(by_profession.items())),
            units=len(by_unit_count),
            professions=len(by_profession),
        ),
    )


def csv_rows(kpis: RecruitmentKpis) -> list[list[str]]:
    """The KPIs as CSV rows (a header first): one row per (section, group, KPI)."""

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4f}".rstrip("0").rstrip(".")
        return str(value)

    rows = [["section", "group", "kpi", "value"]]
    for group in (kpis.all_posts, *kpis.by_unit):
        for name, value in group.model_dump(exclude={"unit"}).items():
            rows.append(["posts", group.unit or "all", name, cell(value)])
    for year in kpis.by_cohort_year:
        for name, value in year.model_dump(exclude={"cohort_year"}).items():
            rows.append(["cohort_year", str(year.cohort_year), name, cell(value)])
    for unit, n in kpis.spread.by_unit.items():
        rows.append(["spread_unit", unit, "alumni_applicants", str(n)])
    for profession, n in kpis.spread.by_profession.items():
        rows.append(["spread_profession", profession, "alumni_applicants", str(n)])
    return rows
