"""A whole journey on a real Temporal dev server, with real e-mail and webhook delivery from the outbox."""

from __future__ import annotations

import asyncio
import base64
import os
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.events import RecordedEvent, stream_id_for
from domain.programme import Role
from domain.status import JourneyStatus
from domain.values import Language
from domain.wording import milestone_title
from infra.present import when
from infra.settings import Settings
from service.bootstrap import worker_components
from store.eventstore import EventStore
from store.vault import PeopleVault, PersonData
from tests.integration.conftest import Mail, MailServer, WebhookReceiver
from tests.support import CPH, fast_cohort, fast_programme, nominate
from workers.worker import build_worker
from workflows.client import start_journey
from workflows.journey import CommandResult
from workflows.journey import TalentJourneyWorkflow as wf

#: The one track the talent hands in late, after the third rung and before the fourth.
LATE_TRACK = "observe-leader"
#: Seconds from nomination to the cohort's start: time to approve and do the early work.
LEAD = 3.0
ROLES: tuple[Role, ...] = ("talent", "nearest_leader", "leaders_leader", "coordinator")

Handle = WorkflowHandle[wf, JourneyStatus]


async def _wait_for(
    store: EventStore, stream: str, what: str, found: Callable[[RecordedEvent], bool], *, within: float = 30.0
) -> None:
    """Poll the store until an event matches (the workflow appends it when its timer fires)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        events = await store.read_stream(stream)
        if any(found(ev) for ev in events):
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"no {what} within {within} s; the stream holds {[ev.event_type for ev in events]}")
        await asyncio.sleep(0.05)


async def _send(handle: Handle, update: Any, command: c.Command) -> CommandResult:
    """Issue a command as an update and return what it did."""
    result = await handle.execute_update(update, command)
    assert isinstance(result, CommandResult), result
    return result


def _notification_of(mail: Mail) -> str:
    """The outbox row a message was sent for, from its Message-ID `<notification_id@talent-journey>`."""
    return mail.message_id.removeprefix("<").removesuffix("@talent-journey>")


def _due(text: str, language: Language) -> str:
    """A deadline as the e-mails write it: as people do, in the recipient's language (never ISO)."""
    return when(text, language)


async def test_a_whole_journey_on_the_dev_server_stores_every_event_and_delivers_each_notification_once(
    dev_server: WorkflowEnvironment,
    pool: asyncpg.Pool[asyncpg.Record],
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    tmp_path: Path,
    unique: str,
) -> None:
    key = os.urandom(32)
    vault = PeopleVault(pool, key)
    ids: dict[Role, str] = {role: f"{role}-{unique}" for role in ROLES}
    people = {
        role: PersonData(
            name=f"{role.replace('_', ' ').title()} {unique}",
            email=f"{role}-{unique}@example.org",
            language="en" if role == "talent" else "da",
        )
        for role in ROLES
    }
    for role in ROLES:
        await vault.put_person(ids[role], people[role])
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "TALENT_VAULT_KEY": base64.b64encode(key).decode(),
            "TALENT_TASK_QUEUE": f"tq-{unique}",
            "TALENT_SMTP_HOST": mailbox.host,
            "TALENT_SMTP_PORT": mailbox.port,
            "TALENT_WEBHOOK_URL": webhooks.url,
            "TALENT_WEBHOOK_SECRET": webhooks.secret,
        }
    )
    programme = fast_programme()
    cohort = fast_cohort(
        programme,
        datetime.now(CPH) + timedelta(seconds=LEAD),
        cohort_id=f"fast-{unique}",
        coordinator_id=ids["coordinator"],
    )
    talent: c.Actor = {"actor_id": ids["talent"], "actor_role": "talent"}
    leader: c.Actor = {"actor_id": ids["nearest_leader"], "actor_role": "leader"}
    coordinator: c.Actor = {"actor_id": ids["coordinator"], "actor_role": "coordinator"}
    hr: c.Actor = {"actor_id": "hr-system", "actor_role": "hr_system"}
    store = EventStore(pool)
    stream = stream_id_for(unique)
    late = f"track:{LATE_TRACK}"
    tq = settings.task_queue
    # The HR system's first answer is "try again later": Temporal retries the delivery.
    webhooks.answer(503)

    async with worker_components(settings, pool) as parts, build_worker(dev_server.client, parts, task_queue=tq):
        handle = await start_journey(
            dev_server.client,
            nominate(
                programme,
                cohort,
                journey_id=unique,
                actor_id=ids["nearest_leader"],
                talent_id=ids["talent"],
                nearest_leader_id=ids["nearest_leader"],
                leaders_leader_id=ids["leaders_leader"],
            ),
            task_queue=tq,
        )
        approved = await _send(handle, wf.decide_nomination, c.DecideNomination(**coordinator, decision="approve"))
        assert "TalentEnrolled" in approved.events
        # A punctual talent: everything done ahead of its deadline...
        today = datetime.now(CPH).date()
        for session in programme.sessions:
            attended = c.RecordAttendance(**coordinator, session_key=session.key, status="attended")
            assert "SessionAttendanceRecorded" in (await _send(handle, wf.record_attendance, attended)).events
        for track in programme.tracks:
            if track.key != LATE_TRACK:
                await _send(handle, wf.submit_track, c.SubmitTrack(**talent, track_key=track.key))
                signed = c.SignOffTrack(**leader, track_key=track.key, decision="approve")
                assert "MilestoneMet" in (await _send(handle, wf.sign_off_track, signed)).events
        for _ in range(programme.mentor_meetings.count):
            met = await _send(handle, wf.log_mentor_meeting, c.LogMentorMeeting(**leader, held_on=today))
            assert "MilestoneMet" in met.events
        assert "MilestoneSlipped" not in [ev.event_type for ev in await store.read_stream(stream)]
        # ...but for one track, handed in once the ladder has reached the leader's leader.
        await _wait_for(
            store, stream, "third rung", lambda ev: ev.event_type == "EscalationRaised" and ev.data["rung"] == 3
        )
        await _send(handle, wf.submit_track, c.SubmitTrack(**talent, track_key=LATE_TRACK))
        signed = c.SignOffTrack(**leader, track_key=LATE_TRACK, decision="approve")
        assert "EscalationResolved" in (await _send(handle, wf.sign_off_track, signed)).events
        await _wait_for(store, stream, "follow-up", lambda ev: ev.event_type == "FollowUpRequested")
        outcome = c.RecordOutcome(**hr, applied_for_leader_post=True, appointed=False, on=today)
        assert (await _send(handle, wf.record_outcome, outcome)).events == ["OutcomeRecorded"]
        final = await asyncio.wait_for(handle.result(), timeout=60)

    # The events: contiguous, complete, one ladder raised three rungs high and stopped.
    events = await store.read_stream(stream)
    types = [ev.event_type for ev in events]
    assert [ev.stream_version for ev in events] == list(range(1, len(events) + 1))
    assert (types[0], types[-1]) == ("TalentNominated", "JourneyClosed")
    mandatory = len(programme.mandatory_sessions())
    assert Counter(types) == {
        "TalentNominated": 1,
        "NominationApproved": 1,
        "TalentEnrolled": 1,
        "JourneyStarted": 1,
        "SessionAttendanceRecorded": len(programme.sessions),
        "TrackSubmitted": len(programme.tracks),
        "TrackSignedOff": len(programme.tracks),
        "MentorMeetingLogged": programme.mentor_meetings.count,
        # The approval, the mandatory sessions, the tracks and the meetings.
        "MilestoneMet": 1 + mandatory + len(programme.tracks) + programme.mentor_meetings.count,
        "MilestoneSlipped": 1,
        "EscalationRaised": 3,
        "EscalationResolved": 1,
        "ProgrammeCompleted": 1,
        "FollowUpRequested": 3,
        "OutcomeRecorded": 1,
        "JourneyClosed": 1,
    }
    raised = [ev for ev in events if ev.event_type == "EscalationRaised"]
    resolved = next(ev for ev in events if ev.event_type == "EscalationResolved")
    slipped = next(ev for ev in events if ev.event_type == "MilestoneSlipped")
    met_late = next(ev for ev in events if ev.event_type == "MilestoneMet" and ev.data["milestone"] == late)
    assert slipped.data["milestone"] == late
    assert [(ev.data["milestone"], ev.data["rung"], ev.data["recipient_id"]) for ev in raised] == [
        (late, 1, ids["talent"]),
        (late, 2, ids["nearest_leader"]),
        (late, 3, ids["leaders_leader"]),
    ]
    assert (resolved.data["milestone"], resolved.data["resolution"]) == (late, "met")
    assert met_late.data["late"] is True
    assert max(ev.stream_version for ev in raised) < resolved.stream_version
    assert (final.state, final.completion, final.at_risk) == ("closed", "completed", False)

    # The outbox: every notification delivered.
    rows = await pool.fetch(
        """SELECT notification_id::text AS id, channel, template, recipient_role, recipient_id, status, attempts
             FROM outbox WHERE journey_id = $1""",
        unique,
    )
    assert Counter(r["status"] for r in rows) == {"delivered": len(rows)}
    emails = {r["id"]: r for r in rows if r["channel"] == "email"}
    hooks = {r["id"]: r for r in rows if r["channel"] == "webhook"}
    assert Counter((r["template"], r["recipient_role"]) for r in emails.values()) == {
        ("nomination_received", "coordinator"): 1,
        ("welcome", "talent"): 1,
        ("welcome_leader", "nearest_leader"): 1,
        ("track_submitted", "nearest_leader"): len(programme.tracks),
        ("reminder", "talent"): 1,
        ("escalation_nearest_leader", "nearest_leader"): 1,
        ("escalation_leaders_leader", "leaders_leader"): 1,
        ("completion", "talent"): 1,
        ("completion", "nearest_leader"): 1,
        ("follow_up_question", "talent"): 3,
    }
    assert Counter(r["template"] for r in hooks.values()) == {
        "TalentNominated": 1,
        "NominationApproved": 1,
        "TalentEnrolled": 1,
        "JourneyStarted": 1,
        # HR hears that the risk cleared (§8.4).
        "EscalationResolved": 1,
        "ProgrammeCompleted": 1,
        "FollowUpRequested": 3,
        "OutcomeRecorded": 1,
        "JourneyClosed": 1,
    }

    # The e-mails: each delivered row's message arrived exactly once, to its recipient.
    mail_ids = Counter(_notification_of(m) for m in mailbox.mails())
    assert {i: mail_ids[i] for i in emails} == dict.fromkeys(emails, 1)
    by_notification = {_notification_of(m): m for m in mailbox.mails()}
    for notification_id, row in emails.items():
        mail = by_notification[notification_id]
        assert row["recipient_id"] == ids[row["recipient_role"]]
        assert mail.envelope_to == (people[row["recipient_role"]].email,)
        assert mail.to == people[row["recipient_role"]].email
    # The escalation ladder reached the talent, their leader and the leader's leader, in their languages,
    # each naming the deadline that slipped.
    name = people["talent"].name
    title = {lang: milestone_title(late, programme, lang) for lang in ("da", "en")}
    ladder = {
        r["template"]: by_notification[i]
        for i, r in emails.items()
        if r["template"] == "reminder" or r["template"].startswith("escalation")
    }
    assert {t: (m.to, m.subject) for t, m in ladder.items()} == {
        "reminder": (people["talent"].email, f"Reminder: {title['en']}"),
        "escalation_nearest_leader": (people["nearest_leader"].email, f"{name} er bagud: {title['da']}"),
        "escalation_leaders_leader": (people["leaders_leader"].email, f"Eskalering: {name}, {title['da']}"),
    }
    for template, mail in ladder.items():
        language: Language = "en" if template == "reminder" else "da"
        assert _due(slipped.data["due_at"], language) in mail.body, (template, mail.body)
        assert late not in mail.body  # the milestone by its title, never its key

    # The webhooks: each delivered row accepted exactly once, signed; the first one after a retry.
    received = [h for h in webhooks.hooks() if h.key in hooks]
    accepted = Counter(h.key for h in received if 200 <= h.status < 300)
    assert len(accepted) == len(hooks)
    assert set(accepted.values()) == {1}
    first = received[0]
    assert hooks[first.key]["template"] == "TalentNominated"
    assert [h.status for h in received if h.key == first.key] == [503, 200]
    assert hooks[first.key]["attempts"] == 2
    for hook in received:
        # Verified by the receiver with `standardwebhooks` and the secret the worker was given.
        assert hook.verified
        assert hook.json()["event"]["journey_id"] == unique
