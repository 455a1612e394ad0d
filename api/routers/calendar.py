"""iCalendar feeds: a per-person secret URL, issued and revoked by its owner or a coordinator.

The feed URL is the credential: calendar clients cannot send a bearer token, so the URL carries a
random secret that only its digest in the database can match. Issuing a new one revokes the old;
revoking leaves the person without a feed. Erased people have none.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from api.access import identify_as, touched
from api.deps import Caller, Deps, Resources, require
from api.ical import FEED_STATES, FeedJourney, FeedRole, Language, journey_history, render_feed
from api.models import PersonId
from api.problems import RESPONSES, Problem, not_found
from api.ratelimit import Budget, count_failure, guard_failures
from domain.events import stream_id_for
from store.calendar_feeds import CalendarFeeds, well_formed
from store.vault import Erased, PersonData
from store.views import journeys as journeys_view

router = APIRouter(tags=["calendar"])
log = structlog.get_logger("talent.api")

#: At most this many journeys in one feed (a leader's talents over the years stay far below).
MAX_JOURNEYS = 500
#: Clients poll: a feed may be served from a private cache for five minutes.
CACHE_CONTROL = "private, max-age=300"


class ICalendarResponse(Response):
    """An iCalendar document (Starlette adds `; charset=utf-8` to a text type)."""

    media_type = "text/calendar"


class CalendarFeedOut(BaseModel):
    """A person's feed URL: shown once, it is the only copy of its secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: str
    url: str


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: RESPONSES[status] for status in statuses}


async def _authorise(resources: Resources, caller: Caller, person_id: str) -> None:
    """The person themself (leader or talent) or a coordinator; never for an erased or unknown person."""
    require(caller, "coordinator", "leader", "talent")
    if caller.role != "coordinator" and caller.person_id != person_id:
        raise Problem(403, "Forbidden", "only the person or a coordinator manages a calendar feed", code="forbidden")
    person = await resources.vault.get_person(person_id)
    if isinstance(person, Erased):
        raise not_found("person")
    if (
        person is None
        and caller.role == "coordinator"
        and not await journeys_view.person_known(resources.pool, person_id)
    ):
        raise not_found("person")


@router.post(
    "/v1/people/{person_id}/calendar-feed",
    status_code=201,
    responses=_problems(401, 403, 404, 413, 422, 429, 503),
)
async def issue_calendar_feed(
    request: Request, person_id: PersonId, resources: Deps, caller: Caller
) -> CalendarFeedOut:
    """Issue the person's iCalendar feed URL (the person, or a coordinator); any earlier URL stops working.

    No Idempotency-Key: a replayed response would have to store the secret, and a retry that
    issues another URL is harmless (the last one works).
    """
    await _authorise(resources, caller, person_id)
    secret = await CalendarFeeds(resources.pool).issue(person_id)
    log.info("calendar_feed_issued", person_id=person_id, by=caller.token_id)
    return CalendarFeedOut(person_id=person_id, url=str(request.url_for("calendar_feed", secret=secret)))


@router.delete(
    "/v1/people/{person_id}/calendar-feed",
    status_code=204,
    response_class=Response,
    responses=_problems(401, 403, 404, 422, 429, 503),
)
async def revoke_calendar_feed(person_id: PersonId, resources: Deps, caller: Caller) -> Response:
    """Revoke the person's feed URL (the person, or a coordinator); revoking none is no error."""
    await _authorise(resources, caller, person_id)
    revoked = await CalendarFeeds(resources.pool).revoke(person_id)
    log.info("calendar_feed_revoked", person_id=person_id, by=caller.token_id, had_feed=revoked)
    return Response(status_code=204)


@router.get(
    "/calendar/{secret}.ics",
    name="calendar_feed",
    response_class=ICalendarResponse,
    responses={
        200: {
            "description": "the person's sessions, track deadlines and mentor meetings due (RFC 5545)",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        **_problems(404, 422, 429, 503),
    },
)
async def calendar_feed(request: Request, secret: str, resources: Deps) -> ICalendarResponse:
    """A person's iCalendar feed, by the secret in its URL (no bearer token: calendar clients send
    none). Their journeys in open states, as talent and as current nearest leader; 404 for an
    unknown or revoked secret."""
    await guard_failures(request, Budget.CALENDAR_GUESSES)
    person_id = await CalendarFeeds(resources.pool).person_for(secret) if well_formed(secret) else None
    if person_id is None:
        await count_failure(request, Budget.CALENDAR_GUESSES)
        raise not_found("calendar feed")
    # The URL's holder reads as its owner: the access log's actor (§8.7).
    identify_as(f"calendar:{person_id}", "calendar_feed")
    # A degraded read: an owner whose record will not decrypt still gets their feed, in Danish.
    owner = (await resources.vault.read_people([person_id])).get(person_id)
    if isinstance(owner, Erased):
        raise not_found("calendar feed")
    language: Language = owner.language if isinstance(owner, PersonData) else "da"
    journeys = await _journeys(resources, person_id)
    log.info("calendar_feed_read", person_id=person_id, journeys=len(journeys))
    return ICalendarResponse(
        render_feed(journeys, language=language),
        headers={
            "Cache-Control": CACHE_CONTROL,
            "Content-Disposition": 'inline; filename="talent-journey.ics"',
            # The URL is the credential: never send it on as a referrer.
            "Referrer-Policy": "no-referrer",
        },
    )


async def _journeys(resources: Resources, person_id: str) -> list[FeedJourney]:
    """The person's open journeys as talent and as current nearest leader, each with its history.

    A former nearest leader's sight of the journey ended with the change (§8.1): only the current
    one gets its entries.
    """
    rows = await journeys_view.feed_journeys(resources.pool, person_id, FEED_STATES, limit=MAX_JOURNEYS)
    touched(journeys=[r.journey_id for r in rows], people=[person_id])
    led = {r.talent_id for r in rows if r.talent_id != person_id}
    people = await resources.vault.read_people(led)  # an unreadable talent: an entry without a name
    out: list[FeedJourney] = []
    for row in rows:
        events = await resources.store.read_stream(stream_id_for(row.journey_id))
        history = journey_history((ev.occurred_at, ev.to_event()) for ev in events)
        if history is None:
            continue
        role: FeedRole = "talent" if row.talent_id == person_id else "nearest_leader"
        talent = people.get(row.talent_id) if role == "nearest_leader" else None
        out.append(
            FeedJourney(
                history=history,
                role=role,
                talent_name=talent.name if isinstance(talent, PersonData) else None,
                talent_erased=isinstance(talent, Erased),
            )
        )
    return out
