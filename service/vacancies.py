"""Leader posts (issue 14): HR systems report posts, applications and appointments; an alumnus's
application or appointment answers their follow-up on its own, and the talent answers what HR does
not know from a one-click page. The recruitment KPIs read what was collected."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any, Literal

import structlog

from domain import commands as c
from domain.errors import DomainError
from domain.recruitment import Post, RecruitmentKpis, compute_recruitment
from infra.present import CPH
from service.bootstrap import Resources
from service.errors import JourneyEnded, NotFound, ServiceError
from service.journeys import execute
from store import vacancies as store
from store.views import journeys as journeys_view

log = structlog.get_logger("talent.vacancies")

Kind = Literal["applied", "appointed"]


class ReportConflict(ServiceError):
    """The same id (a post, or a person's application to a post) was reported before with other facts."""

    code = "report_conflict"


async def report_vacancy(resources: Resources, post: Post) -> tuple[bool, Post]:
    """Store a post: (created, the post). The same post again is found; another under its id is `ReportConflict`."""
    stored, found = await store.put_vacancy(resources.pool, post)
    if stored == "conflict":
        raise ReportConflict("another post was reported under this id")
    return stored == "created", found


async def report_entry(
    resources: Resources, kind: Kind, vacancy_id: str, person_id: str, on: date, actor: c.Actor
) -> tuple[bool, dict[str, Any]]:
    """Store an application or appointment to a post, then answer the person's follow-ups: (created, result).

    A programme alumnus (a journey evaluated as completed, now following up) gets a RecordOutcome
    through the journey, as if they had answered the follow-up; its update id is derived from the
    report, so a retried report records it once. A closed journey is not touched: the report
    counts in the recruitment KPIs only. `NotFound` for an unknown post, `ReportConflict` for a
    different date reported before.
    """
    stored = await store.put_entry(resources.pool, kind, vacancy_id, person_id, on)
    if stored is None:
        raise NotFound("vacancy")
    what, on_stored = stored
    if what == "conflict":
        raise ReportConflict(
            f"this person's {'appointment' if kind == 'appointed' else 'application'} was "
            "reported before with another date"
        )
    answered: list[str] = []
    kpis_only: list[str] = []
    for journey_id, state in await store.alumnus_journeys(resources.pool, person_id):
        if state == "closed":
            kpis_only.append(journey_id)
            continue
        command = c.RecordOutcome(**actor, applied_for_leader_post=True, appointed=kind == "appointed", on=on_stored)
        update_id = "u-vacancy-" + _digest(journey_id, kind, vacancy_id, person_id, on_stored.isoformat())
        try:
            await execute(resources, journey_id, command, update_id=update_id)
        except JourneyEnded:
            kpis_only.append(journey_id)
            continue
        except DomainError as refused:
            # The journey moved on (closed in between) or refuses the date: the report stays for the KPIs.
            log.warning("follow_up_not_answered", journey_id=journey_id, code=refused.code)
            kpis_only.append(journey_id)
            continue
        answered.append(journey_id)
    log.info("vacancy_entry_reported", kind=kind, vacancy_id=vacancy_id, answered=len(answered))
    result = {
        "vacancy_id": vacancy_id,
        "person_id": person_id,
        "on": on_stored.isoformat(),
        "follow_ups_answered": answered,
        "kpis_only": kpis_only,
    }
    return what == "created", result


async def answer_follow_up(
    resources: Resources, journey_id: str, point: int, *, applied: bool, appointed: bool
) -> list[str]:
    """The talent's answer from the one-click page (a signed link names the journey and point): the
    same RecordOutcome as every answer, by the talent, dated today; the events it caused.

    The update id is derived from the journey, the point and the answer: a double click is one answer.
    """
    found = await journeys_view.status(resources.pool, journey_id)
    if found is None:
        raise NotFound("journey")
    command = c.RecordOutcome(
        actor_id=found.talent_id,
        actor_role="talent",
        applied_for_leader_post=applied or appointed,
        appointed=appointed,
        on=datetime.now(UTC).astimezone(CPH).date(),
    )
    update_id = "u-answer-" + _digest(journey_id, str(point), str(applied), str(appointed))
    body = await execute(resources, journey_id, command, update_id=update_id)
    events: list[str] = body.get("events", [])
    return events


async def recruitment(resources: Resources, programme_id: str, *, as_of: datetime | None = None) -> RecruitmentKpis:
    """The programme's recruitment KPIs; `NotFound` for an unknown programme."""
    facts = await store.recruitment_facts(resources.pool, programme_id)
    if facts is None:
        raise NotFound("programme")
    posts, applications, appointments, alumni = facts
    return compute_recruitment(
        programme_id, posts, applications, appointments, alumni, as_of=as_of or datetime.now(UTC)
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
