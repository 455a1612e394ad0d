"""The notification delivery activity on real PostgreSQL, a real SMTP server and a webhook receiver."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import asyncpg
import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import (
    DELIVERY_PENDING,
    DeliverInput,
    DeliverOutput,
    Notifier,
    SmtpConfig,
    SmtpMailer,
    WebhookConfig,
    WebhookSender,
)
from activities.store.eventstore import EventStore
from activities.store.vault import PeopleVault, PersonData
from domain import commands as c
from domain.events import EventMetadata, NewEvent, stream_id_for
from domain.programme import Role
from tests.integration.conftest import HOST, MailServer, WebhookReceiver
from tests.support import CPH, SYSTEM, Journey, nominate, reference_cohort, reference_programme
from workers.settings import Settings
from workers.worker import components

SENDER = "talent-journey@example.org"
META = EventMetadata(actor="p-coord", correlation_id="corr-notify")
T0 = datetime(2027, 1, 4, 10, 0, tzinfo=CPH)
ROLES: tuple[Role, ...] = ("talent", "nearest_leader", "leaders_leader", "coordinator")
#: Who reads English; everyone else gets Danish, the default.
ENGLISH: frozenset[Role] = frozenset({"talent", "coordinator"})


@dataclasses.dataclass(frozen=True)
class Scene:
    """A journey whose events are stored, and the people on it."""

    journey_id: str
    ids: dict[Role, str]
    people: dict[Role, PersonData]
    motivation: str

    def email_of(self, role: Role) -> str:
        """A person's address."""
        return self.people[role].email


# -- building journeys and running the activity ---------------------------------------------------


def _person(role: Role, unique: str) -> PersonData:
    return PersonData(
        name=f"{role.replace('_', ' ').title()} {unique}",
        email=f"{role}-{unique}@example.org",
        workplace="Aalborg Kommune",
        language="en" if role in ENGLISH else "da",
    )


async def _scene(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    unique: str,
    *,
    stored: tuple[Role, ...] = ROLES,
    slipped: bool = False,
) -> Scene:
    """Nominate and approve a talent (and, if `slipped`, let a session slip up the ladder) in the store.

    People in `stored` are put in the vault; the others are unknown to it.
    """
    ids: dict[Role, str] = {role: f"{role}-{unique}" for role in ROLES}
    people = {role: _person(role, unique) for role in ROLES}
    for role in stored:
        await vault.put_person(ids[role], people[role])
    motivation = f"Ambitious and kind, says the leader ({unique})"
    motivation_ref = await vault.put_text(ids["nearest_leader"], motivation)

    programme = reference_programme()
    cohort = reference_cohort(programme, cohort_id=f"c-{unique}", coordinator_id=ids["coordinator"])
    coordinator: c.Actor = {"actor_id": ids["coordinator"], "actor_role": "coordinator"}
    j = Journey()
    batches: list[list[NewEvent]] = [
        j.send_new(
            nominate(
                programme,
                cohort,
                journey_id=unique,
                actor_id=ids["nearest_leader"],
                talent_id=ids["talent"],
                nearest_leader_id=ids["nearest_leader"],
                leaders_leader_id=ids["leaders_leader"],
                motivation_ref=motivation_ref,
            ),
            T0,
        ),
        j.send_new(c.DecideNomination(**coordinator, decision="approve"), T0 + timedelta(days=1)),
    ]
    if slipped:
        # Kickoff attended; "leading-self" (8 Feb, two working days' grace) is never recorded: it
        # slips on 10 Feb 16:00, the talent is reminded at once, the nearest leader three working
        # days later, on 15 Feb.
        batches.append(
            j.send_new(
                c.RecordAttendance(**coordinator, session_key="kickoff", status="attended"),
                datetime(2027, 1, 11, 12, tzinfo=CPH),
            )
        )
        batches.append(j.send_new(c.AdvanceClock(**SYSTEM), datetime(2027, 2, 16, 12, tzinfo=CPH)))
    store = EventStore(pool)
    version = 0
    for batch in batches:
        version = (await store.append(stream_id_for(unique), version, batch, metadata=META)).last_version
    return Scene(journey_id=unique, ids=ids, people=people, motivation=motivation)


async def _deliver(notifier: Notifier, journey_id: str, *, attempt: int = 1, max_attempts: int = 5) -> DeliverOutput:
    """Run the activity as Temporal would on its `attempt`-th try."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        ActivityEnvironment.default_info(),
        attempt=attempt,
        activity_type="deliver_notifications",
        workflow_id=f"journey-{journey_id}",
    )
    return await env.run(notifier.deliver, DeliverInput(journey_id=journey_id, max_attempts=max_attempts))


async def _pending_failure(
    notifier: Notifier, journey_id: str, *, attempt: int, max_attempts: int = 5
) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await _deliver(notifier, journey_id, attempt=attempt, max_attempts=max_attempts)
    return raised.value


async def _outbox(pool: asyncpg.Pool[asyncpg.Record], journey_id: str) -> list[asyncpg.Record]:
    """The journey's outbox rows, notification ids as text."""
    return await pool.fetch(
        """SELECT notification_id::text AS id, channel, template, recipient_role, recipient_id, status, attempts,
                  last_error, delivered_at
             FROM outbox WHERE journey_id = $1 ORDER BY channel, template, recipient_role""",
        journey_id,
    )


def _of(rows: list[asyncpg.Record], *, channel: str, template: str) -> asyncpg.Record:
    matching = [r for r in rows if r["channel"] == channel and r["template"] == template]
    assert len(matching) == 1, (channel, template, matching)
    return matching[0]


def _message_id(notification_id: str) -> str:
    return f"<{notification_id}@talent-journey>"


def _mails_of(mailbox: MailServer, rows: list[asyncpg.Record]) -> list[str]:
    """Message-IDs received for these outbox rows, one per message (repeats included)."""
    ours = {_message_id(r["id"]) for r in rows}
    return [m.message_id for m in mailbox.mails() if m.message_id in ours]


def _hooks_of(webhooks: WebhookReceiver, rows: list[asyncpg.Record]) -> list[str]:
    """Idempotency-Keys received for these outbox rows, one per request (repeats included)."""
    ours = {r["id"] for r in rows}
    return [h.key for h in webhooks.hooks() if h.key in ours]


@pytest.fixture
def vault(pool: asyncpg.Pool[asyncpg.Record]) -> PeopleVault:
    """The people vault on the test database, under a key of this test's own."""
    return PeopleVault(pool, os.urandom(32))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client webhooks go out on."""
    async with httpx.AsyncClient() as client:
        yield client


def _mailer(server: MailServer) -> SmtpMailer:
    return SmtpMailer(SmtpConfig(host=server.host, port=server.port, sender=SENDER, timeout=5.0))


def _webhook(receiver: WebhookReceiver, http: httpx.AsyncClient) -> WebhookSender:
    return WebhookSender(WebhookConfig(url=receiver.url, secret=receiver.secret.encode(), timeout=5.0), http)


@pytest.fixture
def notifier(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
) -> Notifier:
    """The activity with both channels configured."""
    return Notifier(pool, vault, mailer=_mailer(mailbox), webhook=_webhook(webhooks, http))


# -- e-mail ---------------------------------------------------------------------------------------


async def test_emails_reach_each_recipient_with_the_notification_id_as_message_id_in_their_language(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, notifier: Notifier, mailbox: MailServer, unique: str
) -> None:
    scene = await _scene(pool, vault, unique)

    result = await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    emails = [r for r in rows if r["channel"] == "email"]
    assert result == DeliverOutput(delivered=len(rows))
    assert {(r["template"], r["recipient_role"]) for r in emails} == {
        ("nomination_received", "coordinator"),
        ("welcome", "talent"),
        ("welcome_leader", "nearest_leader"),
    }
    assert all(r["status"] == "delivered" and r["attempts"] == 1 and r["delivered_at"] is not None for r in rows)
    by_id = {m.message_id: m for m in mailbox.mails()}
    assert sorted(_mails_of(mailbox, emails)) == sorted(_message_id(r["id"]) for r in emails)

    expected_subjects = {
        "nomination_received": "New nomination for talent-ny-leder",  # the coordinator reads English
        "welcome": "Welcome to talent-ny-leder",  # so does the talent
        "welcome_leader": "Din medarbejder er med i talent-ny-leder",  # the leader Danish
    }
    for row in emails:
        role: Role = row["recipient_role"]
        mail = by_id[_message_id(row["id"])]
        assert mail.to == scene.email_of(role)
        assert mail.envelope_to == (scene.email_of(role),)
        assert mail.envelope_from == SENDER
        assert mail.message["X-Talent-Notification"] == row["id"]
        assert mail.subject == expected_subjects[row["template"]]
        greeting = "Dear" if role in ENGLISH else "Kære"
        assert mail.body.startswith(f"{greeting} {scene.people[role].name}\n")
    leader_mail = by_id[_message_id(_of(emails, channel="email", template="welcome_leader")["id"])]
    assert f"{scene.people['talent'].name} er med i talent-ny-leder" in leader_mail.body


async def test_an_escalation_names_the_deadline_that_slipped_not_the_moment_it_was_raised(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, notifier: Notifier, mailbox: MailServer, unique: str
) -> None:
    scene = await _scene(pool, vault, unique, slipped=True)

    await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    by_id = {m.message_id: m for m in mailbox.mails()}
    reminder = by_id[_message_id(_of(rows, channel="email", template="reminder")["id"])]
    escalation = by_id[_message_id(_of(rows, channel="email", template="escalation_nearest_leader")["id"])]
    assert reminder.to == scene.email_of("talent")
    assert reminder.subject == "Reminder: session:leading-self"
    assert "was due by 2027-02-10 16:00." in reminder.body
    # The nearest leader hears three working days later (15 Feb); the deadline is still 10 Feb.
    assert escalation.to == scene.email_of("nearest_leader")
    assert escalation.subject == f"{scene.people['talent'].name} er bagud: session:leading-self"
    assert "skulle have været klaret senest 2027-02-10 16:00." in escalation.body


async def test_without_an_smtp_server_configured_emails_are_skipped_and_webhooks_still_delivered(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    notifier = Notifier(pool, vault, mailer=None, webhook=_webhook(webhooks, http))

    result = await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    emails = [r for r in rows if r["channel"] == "email"]
    hooks = [r for r in rows if r["channel"] == "webhook"]
    assert result == DeliverOutput(delivered=len(hooks), skipped=len(emails))
    assert {(r["status"], r["last_error"]) for r in emails} == {("skipped", "no SMTP server configured")}
    assert {r["status"] for r in hooks} == {"delivered"}
    assert _mails_of(mailbox, emails) == []
    assert sorted(_hooks_of(webhooks, hooks)) == sorted(r["id"] for r in hooks)


async def test_a_worker_configured_with_neither_smtp_nor_webhook_skips_every_notification(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    tmp_path: Path,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)

    async with components(Settings.model_validate({"data_dir": tmp_path}), pool) as parts:
        result = await _deliver(parts.notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    assert result == DeliverOutput(skipped=len(rows))
    assert {(r["channel"], r["status"], r["last_error"]) for r in rows} == {
        ("email", "skipped", "no SMTP server configured"),
        ("webhook", "skipped", "no webhook configured"),
    }
    assert _mails_of(mailbox, rows) == [] and _hooks_of(webhooks, rows) == []


async def test_a_worker_refuses_a_webhook_url_without_a_secret_to_sign_with(
    pool: asyncpg.Pool[asyncpg.Record], webhooks: WebhookReceiver, tmp_path: Path
) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "TALENT_WEBHOOK_URL": webhooks.url})

    with pytest.raises(ValueError, match="TALENT_WEBHOOK_SECRET"):
        async with components(settings, pool):
            pytest.fail("a worker must not start without the webhook secret")


async def test_an_erased_recipient_is_skipped_and_sent_nothing(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, notifier: Notifier, mailbox: MailServer, unique: str
) -> None:
    scene = await _scene(pool, vault, unique)
    assert await vault.erase(scene.ids["talent"])

    result = await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    welcome = _of(rows, channel="email", template="welcome")
    assert (welcome["status"], welcome["last_error"], welcome["delivered_at"]) == ("skipped", "recipient erased", None)
    assert result == DeliverOutput(delivered=len(rows) - 1, skipped=1)
    assert {r["status"] for r in rows if r["id"] != welcome["id"]} == {"delivered"}
    assert _mails_of(mailbox, [welcome]) == []
    assert scene.email_of("talent") not in [m.to for m in mailbox.mails()]
    # The leader is still told, without the erased talent's name.
    leader_mail = {m.message_id: m for m in mailbox.mails()}[
        _message_id(_of(rows, channel="email", template="welcome_leader")["id"])
    ]
    assert scene.people["talent"].name not in leader_mail.body


async def test_a_recipient_unknown_to_the_vault_is_dead_lettered_and_the_rest_delivered(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, notifier: Notifier, mailbox: MailServer, unique: str
) -> None:
    scene = await _scene(pool, vault, unique, stored=("talent", "leaders_leader", "coordinator"))

    result = await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    leader = _of(rows, channel="email", template="welcome_leader")
    assert (leader["status"], leader["attempts"], leader["last_error"]) == (
        "dead",
        1,
        "recipient unknown to the vault",
    )
    assert result == DeliverOutput(delivered=len(rows) - 1, dead=1)
    assert _mails_of(mailbox, [leader]) == []


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        ("550 5.1.1 Mailbox unavailable", "dead", "recipient refused ([550])"),
        ("451 4.3.0 Try again later", "pending", "recipient refused ([451])"),
    ],
    ids=["permanent-550", "transient-451"],
)
async def test_a_refused_recipient_is_dead_lettered_on_5xx_and_retried_on_4xx(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    mailbox: MailServer,
    unique: str,
    reply: str,
    status: Literal["dead", "pending"],
    error: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    mailbox.refuse(scene.email_of("talent"), reply)

    if status == "pending":
        failure = await _pending_failure(notifier, scene.journey_id, attempt=1)
        assert failure.type == DELIVERY_PENDING and not failure.non_retryable
    else:
        assert (await _deliver(notifier, scene.journey_id)).dead == 1

    welcome = _of(await _outbox(pool, scene.journey_id), channel="email", template="welcome")
    assert (welcome["status"], welcome["attempts"], welcome["last_error"]) == (status, 1, error)
    assert _mails_of(mailbox, [welcome]) == []


async def test_an_unreachable_smtp_server_is_a_transient_failure(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    closed = MailServer()  # never started: nothing listens on its port
    closed.port = _free_port()
    notifier = Notifier(pool, vault, mailer=_mailer(closed), webhook=_webhook(webhooks, http))

    failure = await _pending_failure(notifier, scene.journey_id, attempt=1)

    rows = await _outbox(pool, scene.journey_id)
    emails = [r for r in rows if r["channel"] == "email"]
    assert failure.type == DELIVERY_PENDING and not failure.non_retryable
    assert {(r["status"], r["attempts"]) for r in emails} == {("pending", 1)}
    assert all(str(r["last_error"]).startswith("smtp unavailable") for r in emails)
    assert {r["status"] for r in rows if r["channel"] == "webhook"} == {"delivered"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
    return port


# -- webhooks -------------------------------------------------------------------------------------


async def test_webhooks_carry_no_personal_data_and_a_signature_that_verifies_with_the_secret(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    webhooks: WebhookReceiver,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)

    await _deliver(notifier, scene.journey_id)

    rows = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "webhook"]
    received = [h for h in webhooks.hooks() if h.key in {r["id"] for r in rows}]
    assert sorted(h.key for h in received) == sorted(r["id"] for r in rows)
    assert {h.json()["event"]["event_type"] for h in received} == {
        "TalentNominated",
        "NominationApproved",
        "TalentEnrolled",
    }
    secret = webhooks.secret.encode()
    personal = [p.name for p in scene.people.values()] + [p.email for p in scene.people.values()]
    for hook in received:
        timestamp = hook.headers["x-talent-timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        expected = hmac.new(secret, timestamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(hook.headers["x-talent-signature"], f"sha256={expected}")
        forged = hmac.new(b"not-the-secret", timestamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
        assert hook.headers["x-talent-signature"] != f"sha256={forged}"
        assert hook.headers["content-type"] == "application/json"
        assert hook.path == "/hooks/talent"
        payload = hook.json()
        assert payload["notification_id"] == hook.key
        assert payload["event"]["journey_id"] == scene.journey_id
        text = hook.body.decode()
        for value in [*personal, scene.motivation]:
            assert value not in text
    nominated = next(h.json()["event"] for h in received if h.json()["event"]["event_type"] == "TalentNominated")
    # People by id only; the bulky programme and cohort definitions are left out.
    assert nominated["data"]["talent_id"] == scene.ids["talent"]
    assert "programme" not in nominated["data"] and "cohort" not in nominated["data"]


async def test_a_webhook_answering_503_stays_pending_with_one_more_attempt_until_a_later_try_delivers_it(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    webhooks: WebhookReceiver,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    webhooks.answer(503)

    failure = await _pending_failure(notifier, scene.journey_id, attempt=1)

    assert failure.type == DELIVERY_PENDING and not failure.non_retryable
    rows = await _outbox(pool, scene.journey_id)
    first = webhooks.hooks()[0]
    failed = next(r for r in rows if r["id"] == first.key)
    assert first.status == 503
    assert (failed["status"], failed["attempts"], failed["last_error"], failed["delivered_at"]) == (
        "pending",
        1,
        "webhook answered 503",
        None,
    )
    assert {r["status"] for r in rows if r["id"] != failed["id"]} == {"delivered"}

    result = await _deliver(notifier, scene.journey_id, attempt=2)

    assert result == DeliverOutput(delivered=1)
    again = next(r for r in await _outbox(pool, scene.journey_id) if r["id"] == failed["id"])
    assert (again["status"], again["attempts"]) == ("delivered", 2)
    assert [h.status for h in webhooks.hooks() if h.key == failed["id"]] == [503, 200]


async def test_a_webhook_answering_400_is_dead_lettered_at_once_and_never_retried(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    webhooks: WebhookReceiver,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    webhooks.answer(400)

    result = await _deliver(notifier, scene.journey_id, attempt=1)
    again = await _deliver(notifier, scene.journey_id, attempt=1)

    rows = await _outbox(pool, scene.journey_id)
    refused = next(r for r in rows if r["id"] == webhooks.hooks()[0].key)
    assert (refused["status"], refused["attempts"], refused["last_error"]) == ("dead", 1, "webhook answered 400")
    assert result == DeliverOutput(delivered=len(rows) - 1, dead=1)
    assert again == DeliverOutput()
    assert [h.status for h in webhooks.hooks() if h.key == refused["id"]] == [400]


async def test_the_final_attempt_dead_letters_what_is_still_failing(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    webhooks: WebhookReceiver,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    webhooks.answer(then=503)

    failure = await _pending_failure(notifier, scene.journey_id, attempt=2, max_attempts=3)
    result = await _deliver(notifier, scene.journey_id, attempt=3, max_attempts=3)

    rows = await _outbox(pool, scene.journey_id)
    hooks = [r for r in rows if r["channel"] == "webhook"]
    assert failure.type == DELIVERY_PENDING
    assert failure.details == ({"delivered": len(rows) - len(hooks), "skipped": 0, "dead": 0, "retrying": len(hooks)},)
    assert result == DeliverOutput(dead=len(hooks))
    assert {(r["status"], r["attempts"], r["last_error"]) for r in hooks} == {("dead", 2, "webhook answered 503")}
    assert Counter(_hooks_of(webhooks, hooks)) == dict.fromkeys((r["id"] for r in hooks), 2)


# -- exactly once in effect -----------------------------------------------------------------------


async def test_a_delivery_repeated_after_a_crash_between_send_and_mark_reuses_its_idempotency_keys(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    first = await _deliver(notifier, scene.journey_id)
    rows = await _outbox(pool, scene.journey_id)
    emails = [r for r in rows if r["channel"] == "email"]
    hooks = [r for r in rows if r["channel"] == "webhook"]

    # Delivered twice over: the second run finds nothing pending and sends nothing.
    assert await _deliver(notifier, scene.journey_id, attempt=2) == DeliverOutput()
    # A crash after sending but before marking: the rows are pending again although their messages went out.
    crashed = [emails[0]["id"], hooks[0]["id"]]
    await pool.execute(
        "UPDATE outbox SET status = 'pending', delivered_at = NULL WHERE notification_id = ANY($1::uuid[])", crashed
    )
    retried = await _deliver(notifier, scene.journey_id, attempt=3)

    assert first == DeliverOutput(delivered=len(rows))
    assert retried == DeliverOutput(delivered=2)
    mail_ids = Counter(_mails_of(mailbox, emails))
    hook_keys = Counter(_hooks_of(webhooks, hooks))
    # At least once on the wire, exactly once in effect: the repeats carry the keys of the originals.
    assert mail_ids == {_message_id(r["id"]): 2 if r["id"] in crashed else 1 for r in emails}
    assert hook_keys == {r["id"]: 2 if r["id"] in crashed else 1 for r in hooks}
    assert len(mail_ids) == len(emails) and len(hook_keys) == len(hooks)
    repeated = [h for h in webhooks.hooks() if h.key == hooks[0]["id"]]
    assert repeated[0].json() == repeated[1].json()
    assert {r["status"] for r in await _outbox(pool, scene.journey_id)} == {"delivered"}
