"""What the programme is for (issue 14): its purpose page (the clarity KPIs per cohort and the
recruitment base as charts, with their definitions and a CSV export) and the talent's one-click answer to a
follow-up, reached by a signed, expiring link from the follow-up e-mail (`infra.answer_links`)."""

from __future__ import annotations

import csv
import io
from typing import Final

import structlog
from fastapi import APIRouter, Request, Response

from api.dashboard import charts
from api.dashboard.charts import Series
from api.dashboard.present import Presenter
from api.dashboard.render import error_page, page, render, viewer_name
from api.dashboard.session import Viewer, language
from api.deps import Deps
from api.routers.programme_clarity import ProgrammeClarity, programme_clarity
from api.routers.programme_clarity import csv_rows as clarity_csv_rows
from domain.clarity import ANSWERS, MIN_BASE_FOR_SHARES
from domain.clarity import DEFINITIONS as CLARITY_DEFINITIONS
from domain.errors import DomainError
from domain.recruitment import DEFINITIONS, DEFINITIONS_DA, RecruitmentKpis, csv_rows
from infra.answer_links import valid
from service import vacancies
from service.errors import NotFound, ServiceError

log = structlog.get_logger("talent.dashboard")

router = APIRouter(prefix="/dashboard", include_in_schema=False)

#: Who sees a programme's purpose page: coordinators and HR (aggregates that name no one).
ROLES = ("coordinator", "hr_system")

#: This page's texts, Danish and English (kept here: one module per reason to change).
TEXTS: Final[dict[str, dict[str, str]]] = {
    "da": {
        "purpose_title": "Programmets formål: {programme}",
        "purpose_lead": "Hvad programmet er til for: afklarede talenter, og flere og bedre ansøgere til "
        "lederstillingerne, målt på data som tjenesten selv har indsamlet.",
        "clarity": "Afklaring",
        "clarity_lead": "Afklaret er et ja eller et nej til at ville være leder ved evalueringen; et klart nej er "
        "også et godt resultat. Intet svar tæller som ukendt.",
        "chart_clarity": "Gennemført og afklaret pr. hold",
        "s_completed": "gennemført",
        "s_clarified": "afklaret",
        "clarity_table": "Afklaring pr. hold",
        "col_cohort": "Hold",
        "movement_caption": "Svarenes bevægelse fra optagelse (rækker) til evaluering (kolonner): {cohort}",
        "movement_from": "Ved optagelse",
        "all_cohorts": "Alle hold",
        "a_yes": "Ja",
        "a_not_now": "Ikke nu",
        "a_no": "Nej",
        "a_unknown": "Ukendt",
        "k_talents": "talenter",
        "k_completed": "gennemført",
        "k_clarified": "afklaret",
        "k_not_clarified": "ikke afklaret",
        "k_unknown": "ukendt",
        "k_clarified_share": "andel afklaret",
        "k_completed_share": "andel gennemført",
        "k_movement": "bevægelse",
        "no_clarity": "Ingen talenter er endnu blevet spurgt om afklaring (regler 4).",
        "clarity_definitions": "Definitioner: afklaring",
        "clarity_slot": "Afklaringstallene (talenternes egen vurdering af om ledelse er noget for dem) vises her.",
        "recruitment": "Rekrutteringsgrundlag",
        "chart_posts": "Ansøgere pr. lederstilling",
        "chart_cohorts": "Alumner efter årgang: søgt, ikke søgt, ukendt",
        "chart_spread_units": "Alumne-ansøgere pr. enhed",
        "chart_spread_professions": "Alumne-ansøgere pr. fag",
        "all_posts": "Alle stillinger",
        "s_alumni": "fra alumner",
        "s_others": "fra andre",
        "s_applied": "søgt",
        "s_not_applied": "ikke søgt",
        "s_unknown": "ukendt",
        "s_n": "ansøgere",
        "tile_posts": "lederstillinger",
        "tile_per_post": "ansøgere pr. stilling",
        "tile_alumni_per_post": "alumne-ansøgere pr. stilling",
        "tile_share": "af ansættelserne gik til alumner",
        "col_year": "Årgang",
        "col_kpi": "Nøgletal",
        "col_definition": "Definition",
        "timing": "Årgangene: alumne-ansøgere pr. stilling og tid fra gennemførelse (median, dage)",
        "to_application": "til første ansøgning",
        "to_appointment": "til ansættelse",
        "definitions": "Definitioner",
        "csv": "Hent som CSV",
        "no_posts": "Ingen lederstillinger er meldt endnu.",
        "no_alumni": "Programmet har ingen alumner endnu.",
        "answer_title": "Har du søgt en lederstilling?",
        "answer_lead": "Svar med to klik. Intet svar tæller som ukendt, ikke som nej.",
        "answer_applied": "Har du søgt en lederstilling siden forløbet?",
        "answer_appointed": "Er du blevet ansat som leder?",
        "yes": "Ja",
        "no": "Nej",
        "answer_send": "Send svar",
        "answer_thanks": "Tak for dit svar",
        "answer_thanks_text": "Dit svar er registreret.",
        "answer_invalid": "Linket er ikke gyldigt",
        "answer_invalid_text": "Linket er udløbet eller ændret. Svar i stedet på forløbets side.",
        "answer_refused": "Svaret kunne ikke registreres",
        "answer_refused_text": "Forløbet tager ikke imod et svar lige nu.",
    },
    "en": {
        "purpose_title": "What the programme is for: {programme}",
        "purpose_lead": "What the programme is for: talents who are clear about leadership, and more and better "
        "applicants for leader posts, measured on data the service collected itself.",
        "clarity": "Clarity",
        "clarity_lead": "Clarified is a yes or a no to wanting to lead at evaluation; a clear no is a good result "
        "too. No answer counts as unknown.",
        "chart_clarity": "Completed and clarified per cohort",
        "s_completed": "completed",
        "s_clarified": "clarified",
        "clarity_table": "Clarity per cohort",
        "col_cohort": "Cohort",
        "movement_caption": "How answers moved from enrolment (rows) to evaluation (columns): {cohort}",
        "movement_from": "At enrolment",
        "all_cohorts": "All cohorts",
        "a_yes": "Yes",
        "a_not_now": "Not now",
        "a_no": "No",
        "a_unknown": "Unknown",
        "k_talents": "talents",
        "k_completed": "completed",
        "k_clarified": "clarified",
        "k_not_clarified": "not clarified",
        "k_unknown": "unknown",
        "k_clarified_share": "clarified share",
        "k_completed_share": "completed share",
        "k_movement": "movement",
        "no_clarity": "No talents have been asked about clarity yet (rules 4).",
        "clarity_definitions": "Definitions: clarity",
        "clarity_slot": "The clarity KPIs (the talents' own view of whether leadership is for them) appear here.",
        "recruitment": "Recruitment base",
        "chart_posts": "Applicants per leader post",
        "chart_cohorts": "Alumni by cohort year: applied, did not apply, unknown",
        "chart_spread_units": "Alumni applicants per unit",
        "chart_spread_professions": "Alumni applicants per profession",
        "all_posts": "All posts",
        "s_alumni": "from alumni",
        "s_others": "from others",
        "s_applied": "applied",
        "s_not_applied": "did not apply",
        "s_unknown": "unknown",
        "s_n": "applicants",
        "tile_posts": "leader posts",
        "tile_per_post": "applicants per post",
        "tile_alumni_per_post": "alumni applicants per post",
        "tile_share": "of the appointments went to alumni",
        "col_year": "Cohort year",
        "col_kpi": "KPI",
        "col_definition": "Definition",
        "timing": "Cohort years: alumni applicants per post and time from completion (median, days)",
        "to_application": "to first application",
        "to_appointment": "to appointment",
        "definitions": "Definitions",
        "csv": "Download as CSV",
        "no_posts": "No leader posts reported yet.",
        "no_alumni": "The programme has no alumni yet.",
        "answer_title": "Have you applied for a leader post?",
        "answer_lead": "Answer in two clicks. No answer counts as unknown, not as no.",
        "answer_applied": "Have you applied for a leader post since the programme?",
        "answer_appointed": "Have you been appointed to a leader post?",
        "yes": "Yes",
        "no": "No",
        "answer_send": "Send answer",
        "answer_thanks": "Thank you for your answer",
        "answer_thanks_text": "Your answer is recorded.",
        "answer_invalid": "The link is not valid",
        "answer_invalid_text": "The link has expired or was changed. Answer on your journey's page instead.",
        "answer_refused": "The answer could not be recorded",
        "answer_refused_text": "The journey takes no answer right now.",
    },
}


#: The clarity KPIs' definitions in Danish: the same keys and meaning as `domain.clarity.DEFINITIONS`.
CLARITY_DEFINITIONS_DA: Final[dict[str, str]] = {
    "talents": "Talenter optaget på holdet under afklaringsreglerne (regler 4): de blev spurgt, om de vil være ledere.",
    "completed": "Talenter hvis gennemførelse blev vurderet (eller tilsidesat) som gennemført.",
    "clarified": "Talenter med et velbegrundet svar til sidst: 'ja' eller 'nej' til 'vil du være leder?' ved "
    "evalueringen. Et klart 'nej' er også et godt resultat.",
    "not_clarified": "Talenter der svarede 'ikke nu' ved evalueringen.",
    "unknown": "Talenter uden svar ved evalueringen (ikke spurgt endnu, udtrådt eller tavse): hverken afklaret "
    "eller ikke afklaret.",
    "clarified_share": f"afklaret / talenter; vises ikke for færre end {MIN_BASE_FOR_SHARES} talenter.",
    "completed_share": f"gennemført / talenter; vises ikke for færre end {MIN_BASE_FOR_SHARES} talenter.",
    "movement": "Hvordan svarene bevægede sig: talenter efter deres svar ved optagelsen (rækker) og ved "
    "evalueringen (kolonner), hver ja / ikke nu / nej / ukendt (intet svar).",
}


class PageTexts:
    """This page's texts in the viewer's language; `definition(kpi)` is the KPI's one definition."""

    def __init__(self, lang: str) -> None:
        self.lang = "en" if lang == "en" else "da"
        self._texts = TEXTS[self.lang]
        self._definitions = DEFINITIONS if self.lang == "en" else DEFINITIONS_DA

    def __call__(self, key: str, **values: str) -> str:
        text = self._texts.get(key, key)
        return text.format(**values) if values else text

    def definition(self, kpi: str) -> str:
        return self._definitions[kpi]

    @property
    def definitions(self) -> dict[str, str]:
        return dict(self._definitions)

    @property
    def clarity_definitions(self) -> dict[str, str]:
        """The clarity KPIs' definitions (`domain.clarity.DEFINITIONS`, or its Danish wording)."""
        return dict(CLARITY_DEFINITIONS if self.lang == "en" else CLARITY_DEFINITIONS_DA)

    def cohort(self, cohort_id: str) -> str:
        """A cohort's name in a table or chart: its id, or "all cohorts"."""
        return self("all_cohorts") if cohort_id == "all" else cohort_id


def _number(value: float | None) -> str:
    return "—" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:.1f}")


def recruitment_charts(pt: PageTexts, kpis: RecruitmentKpis) -> list[charts.Chart]:
    """The recruitment KPIs as bar charts: applicants per post (alumni and others) per unit, the
    cohort years' alumni (applied, said no, unknown: no answer is not a no), the spread."""
    alumni, others = Series(pt("s_alumni"), "c-good"), Series(pt("s_others"), "c-main")
    posts = charts.bar_chart(
        pt("chart_posts"),
        [
            (
                group.unit or pt("all_posts"),
                [
                    (alumni, group.alumni_applicants_per_post or 0.0),
                    (others, (group.applicants_per_post or 0.0) - (group.alumni_applicants_per_post or 0.0)),
                ],
                _number(group.applicants_per_post),
            )
            for group in (kpis.all_posts, *kpis.by_unit)
        ],
    )
    applied, said_no, unknown = (
        Series(pt("s_applied"), "c-good"),
        Series(pt("s_not_applied"), "c-bad"),
        Series(pt("s_unknown"), "c-muted"),
    )
    cohorts = charts.bar_chart(
        pt("chart_cohorts"),
        [
            (
                str(y.cohort_year),
                [(applied, y.applied), (said_no, y.not_applied), (unknown, y.unknown)],
                f"{y.applied}/{y.alumni}",
            )
            for y in kpis.by_cohort_year
        ],
    )
    n = Series(pt("s_n"), "c-main")
    units = charts.bar_chart(pt("chart_spread_units"), [(u, [(n, k)], None) for u, k in kpis.spread.by_unit.items()])
    professions = charts.bar_chart(
        pt("chart_spread_professions"), [(p, [(n, k)], None) for p, k in kpis.spread.by_profession.items()]
    )
    return [posts, cohorts, units, professions]


def clarity_chart(pt: PageTexts, clarity: ProgrammeClarity) -> charts.Chart:
    """Completed next to clarified, per cohort (and all cohorts), against the cohort's talents: two
    bars a cohort, each saying "n / talents" (a clear "no" counts as clarified)."""
    completed, clear = Series(pt("s_completed"), "c-main"), Series(pt("s_clarified"), "c-good")
    rows: list[tuple[str, list[tuple[Series, float]], str | None]] = []
    for cohort in clarity.cohorts:
        name = pt.cohort(cohort.cohort_id)
        for series, n in ((completed, cohort.completed), (clear, cohort.clarified)):
            rows.append((f"{name}: {series.label}", [(series, float(n))], f"{n}/{cohort.talents}"))
    most = max((c.talents for c in clarity.cohorts), default=0)
    return charts.bar_chart(pt("chart_clarity"), rows, scale=most or None)


@router.get("/programmes/{programme_id}/purpose")
async def purpose_page(request: Request, resources: Deps, programme_id: str) -> Response:
    """A programme's purpose: the clarity KPIs per cohort and the recruitment base, with definitions."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        t = viewer.texts
        try:
            kpis = await vacancies.recruitment(resources, programme_id, as_of=p.now)
        except NotFound:
            return error_page(request, t, viewer, 404, "not_found", "not_found_text")
        pt = PageTexts(t.lang)
        clarity = await programme_clarity(resources.pool, programme_id)
        if clarity is None:
            return error_page(request, t, viewer, 404, "not_found", "not_found_text")
        return render(
            request,
            "purpose.html",
            t,
            viewer=viewer,
            viewer_name=await viewer_name(viewer, p),
            pt=pt,
            programme_id=programme_id,
            kpis=kpis,
            charts=recruitment_charts(pt, kpis),
            share=charts.percent(kpis.all_posts.alumni_appointment_share),
            number=_number,
            clarity=clarity,
            clarity_chart=clarity_chart(pt, clarity),
            answers=ANSWERS,
            percent=charts.percent,
        )

    return await page(request, resources, build, roles=ROLES)


@router.get("/programmes/{programme_id}/purpose.csv")
async def purpose_csv(request: Request, resources: Deps, programme_id: str) -> Response:
    """The purpose page's KPIs as CSV (section, group, kpi, value): the recruitment base, then clarity."""

    async def build(viewer: Viewer, p: Presenter) -> Response:
        try:
            kpis = await vacancies.recruitment(resources, programme_id, as_of=p.now)
        except NotFound:
            return error_page(request, viewer.texts, viewer, 404, "not_found", "not_found_text")
        clarity = await programme_clarity(resources.pool, programme_id)
        if clarity is None:
            return error_page(request, viewer.texts, viewer, 404, "not_found", "not_found_text")
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([*csv_rows(kpis), *clarity_csv_rows(clarity)])
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="recruitment-{_safe(programme_id)}.csv"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return await page(request, resources, build, roles=ROLES)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:64]


# -- the one-click answer -------------------------------------------------------------------------


def _link_parts(values: dict[str, str]) -> tuple[int, int, str] | None:
    try:
        return int(values.get("point", "")), int(values.get("expires", "")), str(values.get("sig", ""))
    except ValueError:
        return None


@router.get("/answer/{journey_id}")
async def answer_page(request: Request, resources: Deps, journey_id: str) -> Response:
    """The follow-up's answer page, reached by the signed link in the e-mail: no sign-in; the link is the key."""
    t = language(request)
    pt = PageTexts(t.lang)
    parts = _link_parts(dict(request.query_params))
    if parts is None or not valid(resources.vault.keyed_id, journey_id, *parts):
        return _message(request, pt, 403, "answer_invalid", "answer_invalid_text")
    point, expires, sig = parts
    return render(
        request, "answer.html", t, pt=pt, journey_id=journey_id, point=point, expires=expires, sig=sig, done=False
    )


@router.post("/answer/{journey_id}")
async def answer(request: Request, resources: Deps, journey_id: str) -> Response:
    """The talent's answer: the same RecordOutcome as every answer, by the talent."""
    t = language(request)
    pt = PageTexts(t.lang)
    form = {k: str(v) for k, v in (await request.form()).items()}
    parts = _link_parts(form)
    if parts is None or not valid(resources.vault.keyed_id, journey_id, *parts):
        return _message(request, pt, 403, "answer_invalid", "answer_invalid_text")
    if form.get("applied") not in ("yes", "no") or form.get("appointed") not in ("yes", "no"):
        point, expires, sig = parts
        return render(
            request,
            "answer.html",
            t,
            status_code=422,
            pt=pt,
            journey_id=journey_id,
            point=point,
            expires=expires,
            sig=sig,
            done=False,
        )
    try:
        await vacancies.answer_follow_up(
            resources, journey_id, parts[0], applied=form["applied"] == "yes", appointed=form["appointed"] == "yes"
        )
    except (DomainError, ServiceError) as refused:
        log.info("follow_up_answer_refused", journey_id=journey_id, code=refused.code)
        return _message(request, pt, 409, "answer_refused", "answer_refused_text")
    return _message(request, pt, 200, "answer_thanks", "answer_thanks_text")


def _message(request: Request, pt: PageTexts, status: int, title: str, text: str) -> Response:
    t = language(request)
    return render(request, "answer.html", t, status_code=status, pt=pt, done=True, title=pt(title), text=pt(text))
