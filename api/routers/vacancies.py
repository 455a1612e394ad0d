"""Leader posts and the recruitment base (issue 14): HR systems report posts, applications and
appointments; the programme's recruitment KPIs say how its alumni changed the applicant pool."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints, model_validator

from api.deps import Caller, Deps, require
from api.models import Name, PersonId, _In
from domain.recruitment import Post, RecruitmentKpis
from infra.present import CPH
from service import vacancies
from service.journeys import actor

router = APIRouter(tags=["vacancies"])

#: A post's id as the HR system has it: the HR reference's alphabet.
VacancyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


def _today() -> date:
    return datetime.now(UTC).astimezone(CPH).date()


class VacancyIn(_In):
    """POST /v1/vacancies: a leader post, as the HR system reports it."""

    post_id: VacancyId = Field(description="The post's id in the HR system; a post is reported once by it.")
    unit: Name = Field(description="The organisational unit the post is in (e.g. 'Børn og Unge').")
    profession: Name = Field(description="The post's profession (e.g. 'skole', 'dagtilbud', 'ældrepleje').")
    level: Name = Field(description="The leader level (e.g. 'first-line', 'middle', 'executive').")
    opened_on: date = Field(description="The day the post was advertised.")
    closed_on: date | None = Field(default=None, description="The day it closed; absent while open.")

    @model_validator(mode="after")
    def _dates(self) -> VacancyIn:
        if self.closed_on is not None and self.closed_on < self.opened_on:
            raise ValueError("closed_on must not be before opened_on")
        return self


class ApplicationIn(_In):
    """POST /v1/vacancies/{id}/applications: a person applied for the post."""

    person_id: PersonId = Field(description="The applicant's person id (the same ids as nominations use).")
    applied_on: date = Field(description="The day they applied; not in the future.")

    @model_validator(mode="after")
    def _past(self) -> ApplicationIn:
        if self.applied_on > _today():
            raise ValueError("applied_on must not be in the future")
        return self


class AppointmentIn(_In):
    """POST /v1/vacancies/{id}/appointments: a person was appointed to the post."""

    person_id: PersonId = Field(description="The appointed person's id.")
    on: date = Field(description="The day of the appointment; not in the future.")

    @model_validator(mode="after")
    def _past(self) -> AppointmentIn:
        if self.on > _today():
            raise ValueError("on must not be in the future")
        return self


@router.post("/v1/vacancies", status_code=201, responses={200: {"description": "the same post, reported before"}})
async def report_vacancy(body: VacancyIn, resources: Deps, caller: Caller) -> JSONResponse:
    """Report a leader post (HR systems, coordinators). Idempotent by `post_id`: the same post
    again answers 200 with the stored one, a different one under the same id 409 `report_conflict`."""
    require(caller, "hr_system", "coordinator")
    post = Post(
        post_id=body.post_id,
        unit=body.unit,
        profession=body.profession,
        level=body.level,
        opened_on=body.opened_on,
        closed_on=body.closed_on,
    )
    created, stored = await vacancies.report_vacancy(resources, post)
    return JSONResponse(stored.model_dump(mode="json"), status_code=201 if created else 200)


@router.post(
    "/v1/vacancies/{vacancy_id}/applications",
    status_code=201,
    responses={200: {"description": "the same application, reported before"}},
)
async def report_application(
    vacancy_id: VacancyId, body: ApplicationIn, resources: Deps, caller: Caller
) -> JSONResponse:
    """Report that a person applied for a post (HR systems, coordinators); 404 for an unknown post.
    Once per post and person: the same again answers 200, another date 409 `report_conflict`.

    An application by a programme alumnus answers their follow-up: no e-mail answer is needed.

    The answer: `follow_ups_answered`, the person's journeys (evaluated as completed, now following
    up) whose follow-up it answered; `kpis_only`, their closed journeys, left untouched: the report
    counts in the recruitment KPIs only."""
    require(caller, "hr_system", "coordinator")
    created, result = await vacancies.report_entry(
        resources, "applied", vacancy_id, body.person_id, body.applied_on, actor(caller)
    )
    return JSONResponse(result, status_code=201 if created else 200)


@router.post(
    "/v1/vacancies/{vacancy_id}/appointments",
    status_code=201,
    responses={200: {"description": "the same appointment, reported before"}},
)
async def report_appointment(
    vacancy_id: VacancyId, body: AppointmentIn, resources: Deps, caller: Caller
) -> JSONResponse:
    """Report that a person was appointed to a post (HR systems, coordinators); 404 for an unknown
    post. Once per post and person: the same again answers 200, another date 409 `report_conflict`.

    An appointment implies an application; by a programme alumnus it answers their follow-up.

    The answer: `follow_ups_answered`, the person's journeys (evaluated as completed, now following
    up) whose follow-up it answered; `kpis_only`, their closed journeys, left untouched: the report
    counts in the recruitment KPIs only."""
    require(caller, "hr_system", "coordinator")
    created, result = await vacancies.report_entry(
        resources, "appointed", vacancy_id, body.person_id, body.on, actor(caller)
    )
    return JSONResponse(result, status_code=201 if created else 200)


@router.get("/v1/programmes/{programme_id}/recruitment", response_model=RecruitmentKpis)
async def programme_recruitment(programme_id: str, resources: Deps, caller: Caller) -> Any:
    """The programme's recruitment base (coordinators, HR systems): applicants per leader post (all,
    and from its alumni), the share of appointments that went to alumni, per unit; per cohort year
    the alumni who applied, said no, or are unknown (no answer is not a no), and the median days
    from completion to the first application and appointment; where alumni applied. Every field's
    description is its definition, the same the dashboard's purpose page shows."""
    require(caller, "coordinator", "hr_system")
    return await vacancies.recruitment(resources, programme_id)
