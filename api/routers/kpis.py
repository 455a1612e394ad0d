"""Programme KPIs per cohort and per programme, as JSON for charts and reports."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller, Deps, require
from api.problems import not_found
from domain.kpis import Kpis
from store.views import kpis

router = APIRouter(tags=["kpis"])


@router.get("/v1/programmes/{programme_id}/kpis", response_model=Kpis)
async def programme_kpis(programme_id: str, resources: Deps, caller: Caller) -> Kpis:
    """The KPIs of every journey of a programme, over all its versions and cohorts.

    Coordinators and HR systems: aggregates over a whole programme name no one, and they are what
    an HR system reports on (did the programme broaden the recruitment base?).
    """
    require(caller, "coordinator", "hr_system")
    found = await kpis.programme_kpis(resources.pool, programme_id)
    if found is None:
        raise not_found("programme")
    return found


@router.get("/v1/cohorts/{cohort_id}/kpis", response_model=Kpis)
async def cohort_kpis(cohort_id: str, resources: Deps, caller: Caller) -> Kpis:
    """The KPIs of a cohort's journeys.

    Coordinators only, like the cohort's status: a cohort holds a couple of dozen talents, so its
    outcome shares (one appointed of two) come close to naming a person.
    """
    require(caller, "coordinator")
    found = await kpis.cohort_kpis(resources.pool, cohort_id)
    if found is None:
        raise not_found("cohort")
    return found
