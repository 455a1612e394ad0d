"""A programme's clarity KPIs (issue 14): per cohort, how many talents completed, how many became
clear about leadership, and how their readiness answers moved from enrolment to evaluation.

Read from the read model (the journeys' status documents) and counted by `domain.clarity`: no rule
is recomputed here. Coordinators and HR systems, as the recruitment KPIs (`api.routers.vacancies`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Deps, require
from api.problems import not_found
from domain.clarity import ANSWERS, DEFINITIONS, CohortClarity, clarity_by_cohort, facts_of_status
from store.views import Pool
from store.views import clarity as clarity_view

router = APIRouter(tags=["clarity"])


class ProgrammeClarity(BaseModel):
    """The clarity KPIs of a programme: one entry per cohort, then all cohorts together (`all`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    programme_id: str
    cohorts: list[CohortClarity] = Field(
        description="Per cohort (by id), then `all`. " + " ".join(f"{k}: {v}" for k, v in DEFINITIONS.items())
    )
    definitions: dict[str, str] = Field(description="Each KPI's definition, as the dashboard shows it.")


async def programme_clarity(pool: Pool, programme_id: str) -> ProgrammeClarity | None:
    """The programme's clarity KPIs from its journeys' status documents; None for an unknown programme."""
    statuses = await clarity_view.programme_statuses(pool, programme_id)
    if statuses is None:
        return None
    facts = [f for f in (facts_of_status(s) for s in statuses) if f is not None]
    return ProgrammeClarity(programme_id=programme_id, cohorts=clarity_by_cohort(facts), definitions=dict(DEFINITIONS))


#: The KPIs of a cohort, in the CSV's order (the movement matrix follows, cell by cell).
_KPIS = ("talents", "completed", "clarified", "not_clarified", "unknown", "completed_share", "clarified_share")


def csv_rows(clarity: ProgrammeClarity) -> list[list[str]]:
    """The clarity KPIs as CSV rows (section `clarity`, the cohort, the KPI, its value; no header):
    a share not given is empty; the movement's cells are `movement:<enrolment>><evaluation>`."""
    rows: list[list[str]] = []
    for cohort in clarity.cohorts:
        for kpi in _KPIS:
            value = getattr(cohort, kpi)
            rows.append(["clarity", cohort.cohort_id, kpi, "" if value is None else _cell(value)])
        for start in ANSWERS:
            for end in ANSWERS:
                rows.append(["clarity", cohort.cohort_id, f"movement:{start}>{end}", str(cohort.movement[start][end])])
    return rows


def _cell(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}".rstrip("0").rstrip(".")


@router.get("/v1/programmes/{programme_id}/clarity", response_model=ProgrammeClarity)
async def get_programme_clarity(programme_id: str, resources: Deps, caller: Caller) -> Any:
    """The programme's clarity KPIs per cohort (coordinators, HR systems): talents asked, completed,
    clarified (a 'yes' or a 'no' at evaluation: a clear 'no' is a good result), not clarified
    ('not now'), unknown (no answer, kept apart), the shares (not given under five talents), and
    the movement from the answer at enrolment to the answer at evaluation."""
    require(caller, "coordinator", "hr_system")
    found = await programme_clarity(resources.pool, programme_id)
    if found is None:
        raise not_found("programme")
    return found
