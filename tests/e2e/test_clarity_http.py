"""Clarity through HTTP (issue 14, rules 4): the readiness self-assessment and lab debriefs, with
roles, vault texts, idempotency and the journey status document."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from icalendar import Calendar
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.invitation import appointment_uid
from activities.notify import DeliverInput, Notifier, SmtpConfig, SmtpMailer
from domain import commands as c
from domain.events import EventMetadata, stream_id_for
from store.eventstore import EventStore
from store.vault import PeopleVault, PersonData
from tests.e2e.conftest import auth
from tests.integration.conftest import MailServer, mailbox, smtp_server  # noqa: F401 - fixtures used here
from tests.support import (
    CPH,
    Journey,
    compressed_cohort,
    compressed_programme,
    nominate,
    reference_cohort,
    reference_programme_v1,
)
from tests.workflows.journeys import advance_to


async def _enrolled(api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str) -> tuple[str, Any]:
    programme = compressed_programme().model_copy(update={"id": f"cl-{unique}"})
    start = await time_env.get_current_time() + timedelta(minutes=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"cl-{unique}")
    cohort = cohort.model_copy(update={"coordinator_id": "p-coord"})
    for path, body in (("/v1/programmes", programme), ("/v1/cohorts", cohort)):
        created = await api.post(path, json=body.model_dump(mode="json"), headers=auth("coordinator"))
        assert created.status_code == 201, created.text
    nomination = {
        "cohort_id": cohort.cohort_id,
        "motivation": "Tager ansvar.",
        "talent": {"person_id": "p-talent", "name": "Mette", "email": "mette@example.org"},
        "nearest_leader": {"person_id": "p-leader", "name": "Lars", "email": "lars@example.org"},
    }
    nominated = await api.post("/v1/journeys", json=nomination, headers=auth("hr"))
    assert nominated.status_code == 201, nominated.text
    journey_id = nominated.json()["journey_id"]
    approved = await api.post(
        f"/v1/journeys/{journey_id}/decision", json={"decision": "approve"}, headers=auth("coordinator")
    )
    assert approved.status_code == 200, approved.text
    return journey_id, cohort


async def test_the_talent_assesses_readiness_once_per_answer_and_a_coordinator_may_on_their_behalf(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, pool: asyncpg.Pool[asyncpg.Record], unique: str
) -> None:
    journey_id, _ = await _enrolled(api, time_env, unique)
    url = f"/v1/journeys/{journey_id}/readiness"
    body = {"stage": "enrolment", "answer": "not_now", "reason": "Jeg vil først lære mere."}
    enrolled = (await api.get(f"/v1/journeys/{journey_id}", headers=auth("talent"))).json()
    assert (enrolled["rules_version"], enrolled["readiness"]["open_stage"]) == (4, "enrolment")

    first = await api.post(url, json=body, headers={**auth("talent"), "Idempotency-Key": f"r1-{unique}"})
    replay = await api.post(url, json=body, headers={**auth("talent"), "Idempotency-Key": f"r1-{unique}"})
    same = await api.post(url, json={**body, "reason": "Igen."}, headers=auth("talent"))
    changed = await api.post(url, json={"stage": "enrolment", "answer": "yes"}, headers=auth("coordinator"))

    assert first.status_code == 200 and first.json()["events"] == ["ReadinessAssessed"], first.text
    assert replay.status_code == 200 and replay.json() == first.json()
    assert same.status_code == 200 and same.json()["events"] == [], same.text
    assert changed.status_code == 200 and changed.json()["events"] == ["ReadinessAssessed"], changed.text
    assert changed.json()["readiness"]["enrolment"] == "yes"
    # The reason is in the vault; the event carries only its reference.
    events = (await api.get(f"/v1/journeys/{journey_id}/events", headers=auth("coordinator"))).json()["items"]
    assessed = [ev["data"] for ev in events if ev["event_type"] == "ReadinessAssessed"]
    assert [(a["answer"], a["previous_answer"]) for a in assessed] == [("not_now", None), ("yes", "not_now")]
    assert assessed[0]["reason_ref"].startswith("t-") and "lære" not in str(events)
    assert assessed[1]["reason_ref"] is None
    # The repeated answer stored no text.
    texts = await pool.fetchval(
        "SELECT count(*) FROM person_texts WHERE person_id = 'p-talent' AND text_id = $1", assessed[0]["reason_ref"]
    )
    assert texts == 1

    for who in ("leader", "hr"):
        refused = await api.post(url, json=body, headers=auth(who))
        assert refused.status_code == 403, (who, refused.text)
    not_open = await api.post(url, json={"stage": "evaluation", "answer": "yes"}, headers=auth("talent"))
    assert (not_open.status_code, not_open.json()["code"]) == (409, "stage_not_open"), not_open.text
    invalid = await api.post(url, json={"stage": "enrolment", "answer": "maybe"}, headers=auth("talent"))
    assert invalid.status_code == 422
    await api.post(f"/v1/journeys/{journey_id}/withdraw", json={"reason": "slut"}, headers=auth("coordinator"))


async def test_the_talent_debriefs_a_dilemma_lab_once_it_was_held(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    journey_id, cohort = await _enrolled(api, time_env, unique)
    lab = next(s for s in cohort.sessions if s.key == "dilemma-lab-1")
    url = f"/v1/journeys/{journey_id}/sessions/{lab.key}/debrief"
    body = {"clarity": 4, "notes": "Den svære samtale gjorde det tydeligt."}

    early = await api.post(url, json=body, headers=auth("talent"))
    assert (early.status_code, early.json()["code"]) == (409, "session_not_held"), early.text
    await advance_to(time_env, lab.starts_at + timedelta(seconds=5))

    debriefed = await api.post(url, json=body, headers=auth("talent"))
    again = await api.post(url, json=body, headers=auth("talent"))
    assert debriefed.status_code == 200 and debriefed.json()["events"] == ["LabDebriefed"], debriefed.text
    assert again.status_code == 200 and again.json()["events"] == []
    assert debriefed.json()["debriefs"] == [{"session_key": "dilemma-lab-1", "clarity": 4}]

    not_lab = await api.post(f"/v1/journeys/{journey_id}/sessions/kickoff/debrief", json=body, headers=auth("talent"))
    assert (not_lab.status_code, not_lab.json()["code"]) == (422, "not_a_lab"), not_lab.text
    coordinator = await api.post(url, json=body, headers=auth("coordinator"))
    assert coordinator.status_code == 403
    out_of_scale = await api.post(url, json={"clarity": 6}, headers=auth("talent"))
    assert out_of_scale.status_code == 422
    await api.post(f"/v1/journeys/{journey_id}/withdraw", json={"reason": "slut"}, headers=auth("coordinator"))


async def _feed(api: httpx.AsyncClient, person_id: str, who: str, journey_id: str) -> dict[str, Any]:
    issued = await api.post(f"/v1/people/{person_id}/calendar-feed", headers=auth(who))
    assert issued.status_code == 201, issued.text
    response = await api.get(issued.json()["url"])
    assert response.status_code == 200, response.text
    calendar = Calendar.from_ical(response.content)
    return {str(ev.uid): ev for ev in calendar.events if str(ev.uid).startswith(f"{journey_id}.")}


async def test_the_leader_proposes_a_mentor_meeting_and_it_is_in_both_calendar_feeds(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, unique: str
) -> None:
    journey_id, _ = await _enrolled(api, time_env, unique)
    url = f"/v1/journeys/{journey_id}/mentor-meetings/proposal"
    starts_at = (await time_env.get_current_time() + timedelta(minutes=5)).replace(microsecond=0)
    body = {"starts_at": starts_at.isoformat()}

    assert (await api.post(url, json=body, headers=auth("talent"))).status_code == 403
    proposed = await api.post(url, json=body, headers={**auth("leader"), "Idempotency-Key": f"p-{unique}"})
    again = await api.post(url, json=body, headers=auth("leader"))

    assert proposed.status_code == 200 and proposed.json()["events"] == ["MentorMeetingProposed"], proposed.text
    assert again.status_code == 200 and again.json()["events"] == []
    appointment = proposed.json()["appointment"]
    assert (appointment["number"], datetime.fromisoformat(appointment["starts_at"])) == (1, starts_at)
    uid = appointment_uid(journey_id, 1)
    for person, who in (("p-talent", "talent"), ("p-leader", "leader")):
        entries = await _feed(api, person, who, journey_id)
        assert uid in entries, (who, sorted(entries))
        assert entries[uid].decoded("DTSTART") == starts_at
    past = await api.post(url, json={"starts_at": "2020-01-01T10:00:00+01:00"}, headers=auth("leader"))
    assert (past.status_code, past.json()["code"]) == (422, "invalid_date"), past.text
    await api.post(f"/v1/journeys/{journey_id}/withdraw", json={"reason": "slut"}, headers=auth("coordinator"))


async def test_the_proposal_e_mail_carries_the_invitation_the_feed_has(
    pool: asyncpg.Pool[asyncpg.Record],
    mailbox: MailServer,  # noqa: F811 - the imported fixture
    unique: str,
) -> None:
    # A rules-4 journey in the store (decided by the domain as the workflow would), delivered by
    # the notification activity to an SMTP server.
    vault = PeopleVault(pool, os.urandom(32))
    ids = {role: f"{role}-{unique}" for role in ("talent", "leader", "coord")}
    for role, person in ids.items():
        await vault.put_person(person, PersonData(name=role.title(), email=f"{role}-{unique}@example.org"))
    programme = reference_programme_v1()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", coordinator_id=ids["coord"])
    leader: c.Actor = {"actor_id": ids["leader"], "actor_role": "leader"}
    j = Journey()
    nominated = nominate(
        programme, cohort, journey_id=unique, actor_id=ids["leader"], talent_id=ids["talent"],
        nearest_leader_id=ids["leader"], leaders_leader_id=None, rules_version=4,
    )  # fmt: skip
    t0 = datetime(2027, 1, 12, 10, tzinfo=CPH)
    batches = [
        j.send_new(nominated, t0 - timedelta(days=40)),
        j.send_new(c.DecideNomination(actor_id=ids["coord"], actor_role="coordinator", decision="approve"), t0),
        j.send_new(c.ProposeMentorMeeting(**leader, starts_at=datetime(2027, 1, 20, 14, tzinfo=CPH)), t0),
    ]
    store = EventStore(pool)
    version = 0
    for batch in batches:
        appended = await store.append(stream_id_for(unique), version, batch, metadata=EventMetadata(actor="test"))
        version = appended.last_version
    mailer = SmtpMailer(SmtpConfig(host=mailbox.host, port=mailbox.port, sender="talent@example.org", timeout=5.0))
    notifier = Notifier(pool, vault, mailer=mailer, webhook=None)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        ActivityEnvironment.default_info(), activity_type="deliver_notifications", workflow_id=f"journey-{unique}"
    )

    await env.run(notifier.deliver, DeliverInput(journey_id=unique, max_attempts=3))

    invited = [m for m in mailbox.mails() if "Mentor" in m.subject]
    assert sorted(m.to for m in invited) == sorted(f"{r}-{unique}@example.org" for r in ("talent", "leader"))
    for mail in invited:
        [attachment] = list(mail.message.iter_attachments())
        assert attachment.get_content_type() == "text/calendar"
        assert attachment.get_param("method") == "REQUEST"
        invite = Calendar.from_ical(attachment.get_content())
        [event] = invite.walk("VEVENT")
        assert str(event["UID"]) == appointment_uid(unique, 1)
        assert event.decoded("DTSTART") == datetime(2027, 1, 20, 14, tzinfo=CPH)
