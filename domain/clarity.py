"""Clarity KPIs (issue 14), pure: per cohort, how many talents completed, how many became clear
about leadership, and how their answers moved from enrolment to evaluation.

The programme's purpose for the talent is to become clear ("afklaret") about whether leadership
is for them: a well-founded "no" is as good a result as a "yes". So "clarified" counts a yes or a
no at evaluation (the rule is `domain.journey.clarity.clarified`); "not now" is not clarified,
and a talent who never answered is `unknown`, kept apart from both. Only journeys under rules 4
that were enrolled count: they were asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.events import ReadinessAnswer
from domain.journey.clarity import CLARITY_RULES, clarified
from domain.journey.state import JourneyState
from domain.status import JourneyStatus

AnswerOrUnknown = Literal["yes", "not_now", "no", "unknown"]
#: The rows and columns of the movement matrix, in order.
ANSWERS: tuple[AnswerOrUnknown, ...] = ("yes", "not_now", "no", "unknown")
#: Below this many talents a cohort's shares are not given (counts only): a share of two or three
#: people says more about persons than about the programme.
MIN_BASE_FOR_SHARES = 5

#: Each KPI's definition, as the OpenAPI and the dashboard show it.
DEFINITIONS: Mapping[str, str] = {
    "talents": "Talents enrolled in the cohort under the clarity rules (rules 4): they were asked whether they "
    "want to lead.",
    "completed": "Talents whose completion was evaluated (or overridden) as completed.",
    "clarified": "Talents with a well-founded answer at the end: 'yes' or 'no' to 'do you want to lead?' at "
    "evaluation. A clear 'no' is a good result too.",
    "not_clarified": "Talents who answered 'not now' at evaluation.",
    "unknown": "Talents with no answer at evaluation (not asked yet, withdrawn, or silent): neither clarified "
    "nor not clarified.",
    "clarified_share": f"clarified / talents; not given for fewer than {MIN_BASE_FOR_SHARES} talents.",
    "completed_share": f"completed / talents; not given for fewer than {MIN_BASE_FOR_SHARES} talents.",
    "movement": "How answers moved: talents by their answer at enrolment (rows) and at evaluation (columns), "
    "each yes / not_now / no / unknown (no answer).",
}


class ClarityFacts(BaseModel):
    """What the clarity KPIs need of one journey (from its state or its status document)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort_id: str
    completed: bool
    enrolment_answer: ReadinessAnswer | None = None
    evaluation_answer: ReadinessAnswer | None = None


class CohortClarity(BaseModel):
    """The clarity KPIs of one cohort (or of all, `cohort_id` "all")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort_id: str
    talents: int
    completed: int
    clarified: int
    not_clarified: int
    unknown: int
    clarified_share: float | None
    completed_share: float | None
    #: movement[from enrolment][to evaluation] = talents; every row and column present.
    movement: dict[AnswerOrUnknown, dict[AnswerOrUnknown, int]]


def _label(answer: ReadinessAnswer | None) -> AnswerOrUnknown:
    return "unknown" if answer is None else answer


def _share(part: int, base: int) -> float | None:
    return round(part / base, 4) if base >= MIN_BASE_FOR_SHARES else None


def facts_of_state(state: JourneyState) -> ClarityFacts | None:
    """A journey's clarity facts; None when it does not count (earlier rules, never enrolled)."""
    if state.rules_version < CLARITY_RULES or state.enrolled_at is None:
        return None
    start, end = state.readiness_at("enrolment"), state.readiness_at("evaluation")
    return ClarityFacts(
        cohort_id=state.cohort.cohort_id,
        completed=state.completion == "completed",
        enrolment_answer=start.answer if start is not None else None,
        evaluation_answer=end.answer if end is not None else None,
    )


def facts_of_status(status: JourneyStatus) -> ClarityFacts | None:
    """A journey's clarity facts from its status document (the read model); None when it does not
    count. An enrolled rules-4 journey always has a readiness stage asked, an answer or a conclusion."""
    r = status.readiness
    if r is None or not (r.open_stage or r.enrolment or r.evaluation or r.concluded):
        return None
    return ClarityFacts(
        cohort_id=status.cohort_id,
        completed=status.completion == "completed",
        enrolment_answer=_answer(r.enrolment),
        evaluation_answer=_answer(r.evaluation),
    )


_ANSWERS: dict[str, ReadinessAnswer] = {"yes": "yes", "not_now": "not_now", "no": "no"}


def _answer(value: str | None) -> ReadinessAnswer | None:
    return _ANSWERS.get(value) if value is not None else None


def cohort_clarity(cohort_id: str, facts: Iterable[ClarityFacts]) -> CohortClarity:
    """The clarity KPIs over `facts` (one cohort's, or all of them)."""
    movement: dict[AnswerOrUnknown, dict[AnswerOrUnknown, int]] = {a: dict.fromkeys(ANSWERS, 0) for a in ANSWERS}
    talents = completed = yes_or_no = not_now = 0
    for f in facts:
        talents += 1
        completed += f.completed
        outcome = clarified(f.evaluation_answer)
        yes_or_no += outcome is True
        not_now += outcome is False
        movement[_label(f.enrolment_answer)][_label(f.evaluation_answer)] += 1
    return CohortClarity(
        cohort_id=cohort_id,
        talents=talents,
        completed=completed,
        clarified=yes_or_no,
        not_clarified=not_now,
        unknown=talents - yes_or_no - not_now,
        clarified_share=_share(yes_or_no, talents),
        completed_share=_share(completed, talents),
        movement=movement,
    )


def clarity_by_cohort(facts: Iterable[ClarityFacts]) -> list[CohortClarity]:
    """The clarity KPIs per cohort (by cohort id), followed by all cohorts together (`all`)."""
    every = list(facts)
    cohorts = sorted({f.cohort_id for f in every})
    per = [cohort_clarity(cid, (f for f in every if f.cohort_id == cid)) for cid in cohorts]
    return [*per, cohort_clarity("all", every)]
