"""The notification delivery activity on real PostgreSQL, a real SMTP server and a webhook receiver."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import notify
from activities.notify import (
    DELIVERY_PENDING,
    STARTTLS_NOT_OFFERED,
    DeliverInput,
    DeliverOutput,
    Notifier,
    SmtpConfig,
    SmtpMailer,
    WebhookConfig,
    WebhookSender,
)
from activities.templates import one_line, unsafe_char
from api.app import create_app
from api.auth import Authenticator, TokenEntry
from domain import commands as c
from domain.events import EventMetadata, NewEvent, stream_id_for
from domain.programme import Role
from infra.settings import Settings, SmtpTls, webhook_keys
from service import bootstrap
from service.bootstrap import worker_components
from store.catalog import Catalog
from store.eventstore import EventStore
from store.vault import PeopleVault, PersonData
from tests.conftest import SESSION_VAULT_KEY, session_settings
from tests.integration.conftest import HOST, WEBHOOK_SECRET, MailServer, TlsPair, WebhookReceiver
from tests.support import CPH, SYSTEM, Journey, nominate, reference_cohort, reference_programme_v1

SENDER = "talent-journey@example.org"
#: Where the e-mails' links point (TALENT_PUBLIC_URL).
PUBLIC_URL = "https://talent.example.dk"
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
    people: dict[Role, PersonData] | None = None,
) -> Scene:
    """Nominate and approve a talent (and, if `slipped`, let a session slip up the ladder) in the store.

    People in `stored` are put in the vault; the others are unknown to it. `people` replaces the
    default people of some roles.
    """
    ids: dict[Role, str] = {role: f"{role}-{unique}" for role in ROLES}
    people = {role: _person(role, unique) for role in ROLES} | (people or {})
    for role in stored:
        await vault.put_person(ids[role], people[role])
    motivation = f"Ambitious and kind, says the leader ({unique})"
    motivation_ref = await vault.put_text(ids["nearest_leader"], motivation)

    programme = reference_programme_v1()
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


def _mailer(
    server: MailServer, tls: SmtpTls = "starttls-if-offered", context: ssl.SSLContext | None = None
) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(host=server.host, port=server.port, sender=SENDER, timeout=5.0, tls=tls, tls_context=context)
    )


def _webhook(receiver: WebhookReceiver, http: httpx.AsyncClient, secrets: str | None = None) -> WebhookSender:
    """A sender to `receiver`, signing with `secrets` (a TALENT_WEBHOOK_SECRET value; default: the receiver's)."""
    if secrets is None:
        assert isinstance(receiver.secret, str)
        secrets = receiver.secret
    return WebhookSender(WebhookConfig(url=receiver.url, keys=webhook_keys(secrets), timeout=5.0), http)


@pytest.fixture
def notifier(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
) -> Notifier:
    """The activity with both channels configured."""
    return Notifier(pool, vault, mailer=_mailer(mailbox), webhook=_webhook(webhooks, http), public_url=PUBLIC_URL)


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

    talent = scene.people["talent"].name
    expected_subjects = {  # the programme by its title, never its id
        "nomination_received": f"New nomination for Talent Ny Leder: {talent}",  # the coordinator reads English
        "welcome": "Welcome to Talent Ny Leder",  # so does the talent
        "welcome_leader": "Din medarbejder er med i Talent Ny Leder",  # the leader Danish
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
        # Each ends with what to do next and where: the journey's page at TALENT_PUBLIC_URL.
        assert mail.body.endswith(f"here:\n{PUBLIC_URL}/dashboard/journeys/{scene.journey_id}\n") or mail.body.endswith(
            f"her:\n{PUBLIC_URL}/dashboard/journeys/{scene.journey_id}\n"
        )
        assert "talent-ny-leder" not in mail.subject + mail.body
    leader_mail = by_id[_message_id(_of(emails, channel="email", template="welcome_leader")["id"])]
    assert f"{talent} er med i Talent Ny Leder" in leader_mail.body


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
    # The session by its title in the programme, the date as the reader's language writes it.
    assert reminder.subject == "Reminder: At lede sig selv"
    assert "“At lede sig selv” was due by Wednesday 10 February at 16:00." in reminder.body
    # The nearest leader hears three working days later (15 Feb); the deadline is still 10 Feb.
    assert escalation.to == scene.email_of("nearest_leader")
    assert escalation.subject == f"{scene.people['talent'].name} er bagud: At lede sig selv"
    assert "skulle have været klaret senest onsdag den 10. februar kl. 16.00." in escalation.body
    for mail in (reminder, escalation):
        assert f"{PUBLIC_URL}/dashboard/journeys/{scene.journey_id}\n" in mail.body
        assert "session:" not in mail.subject + mail.body and "2027-02-10" not in mail.body


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

    async with worker_components(Settings.model_validate({"data_dir": tmp_path}), pool) as parts:
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
        async with worker_components(settings, pool):
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


async def test_webhooks_carry_no_personal_data_and_a_standard_webhooks_signature_that_verifies(
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
    personal = [p.name for p in scene.people.values()] + [p.email for p in scene.people.values()]
    for hook in received:
        # The receiver verified it with `standardwebhooks` and its secret, as an HR integrator would.
        assert hook.verified and hook.status == 200
        assert hook.headers["webhook-id"] == hook.key
        assert abs(int(hook.headers["webhook-timestamp"]) - time.time()) < 60
        assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", hook.headers["webhook-signature"])
        assert Webhook(WEBHOOK_SECRET).verify(hook.body, hook.headers) == hook.json()
        with pytest.raises(WebhookVerificationError):
            Webhook(b"not-the-secret").verify(hook.body, hook.headers)
        assert not [name for name in hook.headers if name.startswith("x-talent")]
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


# -- poisoned rows --------------------------------------------------------------------------------

#: A few examples each: every one builds a journey and runs a delivery on real PostgreSQL and SMTP.
POISON = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Line breaks and other characters no header may hold: CR, LF, NUL, ESC, NEL, U+2028, bidi overrides.
_controls = st.one_of(
    st.characters(categories=["Cc", "Zl", "Zp"]),
    st.sampled_from(["\r\n", "\n", "\r", "\x00", "\x1b", "\x85", "\u2028", "\u202e"]),
)
_plain = st.text(st.characters(categories=["L", "Nd", "Zs"]), max_size=8)
#: A name an HR import could have stored before such names were refused: at least one control in it.
poisoned_names = (
    st.tuples(_plain, _controls, _plain, st.text(max_size=4)).map("".join).filter(lambda n: bool(one_line(n)))
)
#: Controls the vault's address pattern lets through (it refuses white space only): NUL, ESC, DEL, ...
header_breaking_controls = st.characters(categories=["Cc"]).filter(lambda ch: not ch.isspace())


def _captured_logs(monkeypatch: pytest.MonkeyPatch) -> structlog.testing.LogCapture:
    """What the notifier logs from now on (its own logger, whatever structlog's global set-up)."""
    capture = structlog.testing.LogCapture()
    monkeypatch.setattr(
        notify, "log", structlog.wrap_logger(None, processors=[structlog.contextvars.merge_contextvars, capture])
    )
    return capture


def _named(role: Role, unique: str, **changes: str) -> PersonData:
    return PersonData.model_validate(_person(role, unique).model_dump() | changes)


@POISON
@given(talent_name=poisoned_names, leader_name=poisoned_names)
async def test_names_with_line_breaks_or_control_characters_are_put_on_one_line_and_every_email_is_delivered(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    mailbox: MailServer,
    talent_name: str,
    leader_name: str,
) -> None:
    unique = os.urandom(6).hex()
    people: dict[Role, PersonData] = {
        "talent": _named("talent", unique, name=talent_name),
        "nearest_leader": _named("nearest_leader", unique, name=leader_name),
    }
    scene = await _scene(pool, vault, unique, slipped=True, people=people)

    result = await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    assert result == DeliverOutput(delivered=len(rows))
    by_id = {m.message_id: m for m in mailbox.mails()}
    # The talent's name in the leader's subject, the leader's in the greeting: one line each, no control left.
    escalation = by_id[_message_id(_of(rows, channel="email", template="escalation_nearest_leader")["id"])]
    assert escalation.subject == f"{one_line(talent_name)} er bagud: At lede sig selv"
    assert not any(unsafe_char(ch) for ch in escalation.subject)
    greeting, rest = escalation.body.split("\n", 1)
    assert greeting == f"Kære {one_line(leader_name)}" and not any(unsafe_char(ch) for ch in greeting)
    assert rest.startswith(f"\n»At lede sig selv« for {one_line(talent_name)} skulle")


@POISON
@given(control=header_breaking_controls)
async def test_an_address_that_cannot_be_put_in_a_header_is_dead_lettered_at_once_and_the_rows_after_it_delivered(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    control: str,
) -> None:
    unique = os.urandom(6).hex()
    address = f"coordinator{control}{unique}@example.org"
    # The coordinator's mail is the journey's first e-mail (the nomination): every other row comes after it.
    scene = await _scene(pool, vault, unique, people={"coordinator": _named("coordinator", unique, email=address)})
    logs = _captured_logs(monkeypatch)

    result = await _deliver(notifier, scene.journey_id, attempt=1, max_attempts=5)

    rows = await _outbox(pool, scene.journey_id)
    poisoned = _of(rows, channel="email", template="nomination_received")
    assert (poisoned["status"], poisoned["attempts"], poisoned["last_error"]) == (
        "dead",
        1,
        "ValueError: message could not be built",
    )
    others = [r for r in rows if r["id"] != poisoned["id"]]
    assert {r["channel"] for r in others} == {"email", "webhook"}
    assert {r["status"] for r in others} == {"delivered"}
    assert result == DeliverOutput(delivered=len(others), dead=1)
    assert _mails_of(mailbox, [poisoned]) == []
    assert sorted(_mails_of(mailbox, others)) == sorted(_message_id(r["id"]) for r in others if r["channel"] == "email")
    assert sorted(_hooks_of(webhooks, others)) == sorted(r["id"] for r in others if r["channel"] == "webhook")
    dead = [e for e in logs.entries if e["event"] == "notification_dead_lettered"]
    assert dead == [
        {
            "event": "notification_dead_lettered",
            "log_level": "warning",
            "journey_id": scene.journey_id,
            "workflow_id": f"journey-{scene.journey_id}",
            "activity": "deliver_notifications",
            "notification_id": poisoned["id"],
            "channel": "email",
            "template": "nomination_received",
            "reason": "ValueError: message could not be built",
        }
    ]


async def test_a_person_the_vault_cannot_decrypt_is_dead_lettered_and_the_rows_after_it_delivered(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    notifier: Notifier,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique, stored=("talent", "nearest_leader", "leaders_leader"))
    # Written under another instance's key: this vault cannot unwrap the coordinator's data key.
    await PeopleVault(pool, os.urandom(32)).put_person(scene.ids["coordinator"], scene.people["coordinator"])
    logs = _captured_logs(monkeypatch)

    result = await _deliver(notifier, scene.journey_id)

    rows = await _outbox(pool, scene.journey_id)
    unreadable = _of(rows, channel="email", template="nomination_received")
    assert (unreadable["status"], unreadable["attempts"], unreadable["last_error"]) == (
        "dead",
        1,
        "VaultError: person unreadable",
    )
    assert result == DeliverOutput(delivered=len(rows) - 1, dead=1)
    assert {r["status"] for r in rows if r["id"] != unreadable["id"]} == {"delivered"}
    assert _mails_of(mailbox, [unreadable]) == []
    assert [e["notification_id"] for e in logs.entries if e["event"] == "notification_dead_lettered"] == [
        unreadable["id"]
    ]
    # The reason names the type and the stage; the vault's own message (with the person id) stays out.
    assert scene.ids["coordinator"] not in str(logs.entries)


async def test_a_template_that_cannot_be_rendered_is_dead_lettered_and_not_retried(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, notifier: Notifier, mailbox: MailServer, unique: str
) -> None:
    scene = await _scene(pool, vault, unique)
    welcome = _of(await _outbox(pool, scene.journey_id), channel="email", template="welcome")
    await pool.execute(
        "UPDATE outbox SET template = 'no-such-template' WHERE notification_id = $1::uuid", welcome["id"]
    )

    result = await _deliver(notifier, scene.journey_id, attempt=1)
    again = await _deliver(notifier, scene.journey_id, attempt=2)

    rows = await _outbox(pool, scene.journey_id)
    broken = next(r for r in rows if r["id"] == welcome["id"])
    assert (broken["status"], broken["attempts"], broken["last_error"]) == (
        "dead",
        1,
        "KeyError: message could not be rendered",
    )
    assert result == DeliverOutput(delivered=len(rows) - 1, dead=1)
    assert again == DeliverOutput()
    assert _mails_of(mailbox, [broken]) == []


# -- SMTP transport security ----------------------------------------------------------------------


async def test_by_default_a_server_without_starttls_still_receives_the_mail(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, mailbox: MailServer, unique: str
) -> None:
    scene = await _scene(pool, vault, unique)
    notifier = Notifier(pool, vault, mailer=_mailer(mailbox), webhook=None)

    await _deliver(notifier, scene.journey_id)

    emails = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "email"]
    assert {r["status"] for r in emails} == {"delivered"}
    ours = {_message_id(r["id"]) for r in emails}
    assert [m.tls for m in mailbox.mails() if m.message_id in ours] == [False] * len(emails)


@pytest.mark.parametrize("tls", ["starttls-if-offered", "starttls-required"])
async def test_a_server_offering_starttls_receives_the_mail_over_tls(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    starttls_mailbox: MailServer,
    tls_pair: TlsPair,
    unique: str,
    tls: SmtpTls,
) -> None:
    scene = await _scene(pool, vault, unique)
    notifier = Notifier(pool, vault, mailer=_mailer(starttls_mailbox, tls, tls_pair.client), webhook=None)

    await _deliver(notifier, scene.journey_id)

    emails = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "email"]
    assert {r["status"] for r in emails} == {"delivered"}
    ours = {_message_id(r["id"]) for r in emails}
    assert [m.tls for m in starttls_mailbox.mails() if m.message_id in ours] == [True] * len(emails)


async def test_a_worker_checks_the_smtp_servers_certificate_against_talent_smtp_ca_file(
    pool: asyncpg.Pool[asyncpg.Record], starttls_mailbox: MailServer, tls_pair: TlsPair, tmp_path: Path
) -> None:
    key = os.urandom(32)
    vault = PeopleVault(pool, key)  # the worker's own vault, under the key its settings name
    worker = {
        "data_dir": tmp_path,
        "TALENT_VAULT_KEY": base64.b64encode(key).decode(),
        "TALENT_SMTP_HOST": starttls_mailbox.host,
        "TALENT_SMTP_PORT": starttls_mailbox.port,
    }
    trusting = Settings.model_validate({**worker, "TALENT_SMTP_CA_FILE": tls_pair.ca_file})
    unaware = Settings.model_validate(worker)
    trusted_scene = await _scene(pool, vault, os.urandom(6).hex())
    unknown_scene = await _scene(pool, vault, os.urandom(6).hex())

    async with worker_components(trusting, pool) as parts:
        delivered = await _deliver(parts.notifier, trusted_scene.journey_id)
    async with worker_components(unaware, pool) as parts:
        failure = await _pending_failure(parts.notifier, unknown_scene.journey_id, attempt=1)

    trusted = [r for r in await _outbox(pool, trusted_scene.journey_id) if r["channel"] == "email"]
    assert delivered.delivered == len(trusted) and {r["status"] for r in trusted} == {"delivered"}
    assert {m.tls for m in starttls_mailbox.mails()} == {True}
    # Offered, but with a certificate the system does not trust: nothing goes in clear, it is retried.
    unknown = [r for r in await _outbox(pool, unknown_scene.journey_id) if r["channel"] == "email"]
    assert failure.type == DELIVERY_PENDING
    assert {(r["status"], r["last_error"]) for r in unknown} == {
        ("pending", "smtp unavailable: SSLCertVerificationError")
    }
    assert _mails_of(starttls_mailbox, unknown) == []


async def test_the_starttls_server_really_refuses_mail_in_clear(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, starttls_mailbox: MailServer, unique: str
) -> None:
    """What makes the test above prove an upgrade: without STARTTLS this server takes nothing (530)."""
    scene = await _scene(pool, vault, unique)
    notifier = Notifier(pool, vault, mailer=_mailer(starttls_mailbox, "none"), webhook=None)

    result = await _deliver(notifier, scene.journey_id)

    emails = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "email"]
    assert result.dead == len(emails)
    assert {(r["status"], r["last_error"]) for r in emails} == {("dead", "smtp 530")}
    assert _mails_of(starttls_mailbox, emails) == []


async def test_required_starttls_against_a_server_without_it_sends_nothing_and_retries_until_the_last_attempt(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    mailbox: MailServer,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    notifier = Notifier(pool, vault, mailer=_mailer(mailbox, "starttls-required"), webhook=_webhook(webhooks, http))

    failure = await _pending_failure(notifier, scene.journey_id, attempt=1, max_attempts=2)

    rows = await _outbox(pool, scene.journey_id)
    emails = [r for r in rows if r["channel"] == "email"]
    assert failure.type == DELIVERY_PENDING and not failure.non_retryable
    assert {(r["status"], r["attempts"], r["last_error"]) for r in emails} == {("pending", 1, STARTTLS_NOT_OFFERED)}
    assert {r["status"] for r in rows if r["channel"] == "webhook"} == {"delivered"}

    result = await _deliver(notifier, scene.journey_id, attempt=2, max_attempts=2)

    assert result == DeliverOutput(dead=len(emails))
    emails = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "email"]
    assert {(r["status"], r["attempts"], r["last_error"]) for r in emails} == {("dead", 2, STARTTLS_NOT_OFFERED)}
    # Not one transaction was begun: no MAIL FROM, so no address or content went out in clear.
    assert mailbox.senders() == [] and mailbox.mails() == []


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "starttls-if-offered"),
        ({"TALENT_SMTP_TLS": "none"}, "none"),
        ({"TALENT_SMTP_TLS": "tls"}, "tls"),
        ({"TALENT_SMTP_STARTTLS": "true"}, "starttls-required"),
        ({"TALENT_SMTP_STARTTLS": "false"}, "starttls-if-offered"),
        ({"TALENT_SMTP_STARTTLS": "true", "TALENT_SMTP_TLS": "starttls-required"}, "starttls-required"),
    ],
)
def test_the_smtp_tls_mode_comes_from_talent_smtp_tls_or_the_old_starttls_flag(
    env: dict[str, str], mode: SmtpTls, tmp_path: Path
) -> None:
    assert Settings.model_validate({"data_dir": tmp_path, **env}).smtp_tls_mode() == mode


def test_contradicting_or_unknown_smtp_tls_settings_are_refused(tmp_path: Path) -> None:
    contradiction = Settings.model_validate(
        {"data_dir": tmp_path, "TALENT_SMTP_STARTTLS": "true", "TALENT_SMTP_TLS": "none"}
    )
    with pytest.raises(ValueError, match="contradicts TALENT_SMTP_TLS"):
        contradiction.smtp_tls_mode()
    with pytest.raises(ValueError, match="TALENT_SMTP_TLS"):
        Settings.model_validate({"data_dir": tmp_path, "TALENT_SMTP_TLS": "starttls-please"})


# -- webhook signing (Standard Webhooks) ----------------------------------------------------------

OLD_SECRET = "whsec_" + base64.b64encode(b"the-secret-being-rotated-out-!!!").decode()


async def test_during_a_rotation_each_delivery_is_signed_with_every_secret_and_verifies_with_either_alone(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    # The receiver holds only the new secret; the service signs with the old and the new.
    sender = _webhook(webhooks, http, secrets=f"{OLD_SECRET}, {WEBHOOK_SECRET}")
    notifier = Notifier(pool, vault, mailer=None, webhook=sender)

    await _deliver(notifier, scene.journey_id)

    hooks = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "webhook"]
    assert {r["status"] for r in hooks} == {"delivered"}
    received = [h for h in webhooks.hooks() if h.key in {r["id"] for r in hooks}]
    assert len(received) == len(hooks) and all(h.verified for h in received)
    for hook in received:
        assert len(hook.headers["webhook-signature"].split(" ")) == 2
        for secret in (OLD_SECRET, WEBHOOK_SECRET):
            assert Webhook(secret).verify(hook.body, hook.headers) == hook.json()
            tampered = hook.body.replace(scene.journey_id.encode(), b"another-journey")
            assert tampered != hook.body
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(tampered, hook.headers)
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(hook.body, {**hook.headers, "webhook-id": "another-id"})


async def test_a_delivery_the_receiver_cannot_verify_is_refused_and_dead_lettered(
    pool: asyncpg.Pool[asyncpg.Record],
    vault: PeopleVault,
    webhooks: WebhookReceiver,
    http: httpx.AsyncClient,
    unique: str,
) -> None:
    scene = await _scene(pool, vault, unique)
    notifier = Notifier(pool, vault, mailer=None, webhook=_webhook(webhooks, http, secrets=OLD_SECRET))

    result = await _deliver(notifier, scene.journey_id)

    hooks = [r for r in await _outbox(pool, scene.journey_id) if r["channel"] == "webhook"]
    assert result.dead == len(hooks)
    assert {(r["status"], r["last_error"]) for r in hooks} == {("dead", "webhook answered 400")}
    assert [(h.verified, h.status) for h in webhooks.hooks() if h.key in {r["id"] for r in hooks}] == [
        (False, 400)
    ] * len(hooks)


async def test_a_plain_string_secret_signs_with_its_utf8_bytes(
    pool: asyncpg.Pool[asyncpg.Record], vault: PeopleVault, http: httpx.AsyncClient, unique: str
) -> None:
    """Compatibility: a secret set before the whsec_ form verifies with `Webhook(secret.encode())`."""
    plain = "integration-webhook-secret"
    receiver = WebhookReceiver(plain.encode())
    receiver.start()
    try:
        scene = await _scene(pool, vault, unique)
        notifier = Notifier(pool, vault, mailer=None, webhook=_webhook(receiver, http, secrets=plain))

        result = await _deliver(notifier, scene.journey_id)
    finally:
        receiver.stop()

    assert result.delivered == len(receiver.hooks()) > 0
    assert all(h.verified for h in receiver.hooks())


def test_webhook_secrets_are_whsec_base64_or_plain_strings_separated_by_spaces_or_commas() -> None:
    new = "whsec_" + base64.b64encode(b"0123456789abcdef").decode().rstrip("=")
    assert webhook_keys(f" {OLD_SECRET},{new}  legacy-secret ") == (
        b"the-secret-being-rotated-out-!!!",
        b"0123456789abcdef",
        b"legacy-secret",
    )
    for bad, message in [
        ("whsec_not*base64", "must be followed by base64"),
        ("whsec_", "must not be empty"),
        (" , ", "holds no secret"),
    ]:
        with pytest.raises(ValueError, match=message) as raised:
            webhook_keys(bad)
        assert "not*base64" not in str(raised.value)
    with pytest.raises(ValueError, match="signing key"):
        WebhookConfig(url="http://hr.example.org/hooks", keys=())


# -- the link in the e-mail -----------------------------------------------------------------------


async def test_the_link_in_an_email_leads_its_reader_through_sign_in_to_the_page_of_the_journey(
    pool: asyncpg.Pool[asyncpg.Record], mailbox: MailServer, unique: str, tmp_path: Path
) -> None:
    # The app's vault reads what the scene stored: the session's key.
    vault = PeopleVault(pool, SESSION_VAULT_KEY)
    scene = await _scene(pool, vault, unique)
    await Catalog(pool).publish(reference_programme_v1())
    notifier = Notifier(pool, vault, mailer=_mailer(mailbox), webhook=None, public_url=PUBLIC_URL)
    await _deliver(notifier, scene.journey_id)
    rows = await _outbox(pool, scene.journey_id)
    welcome = {m.message_id: m for m in mailbox.mails()}[
        _message_id(_of(rows, channel="email", template="welcome")["id"])
    ]
    links = re.findall(r"https?://\S+", welcome.body)
    assert links == [f"{PUBLIC_URL}/dashboard/journeys/{scene.journey_id}"]

    token = TokenEntry(token=f"tok-{unique}", role="talent", person_id=scene.ids["talent"])
    other = TokenEntry(token=f"tok-other-{unique}", role="talent", person_id=f"someone-else-{unique}")
    resources = bootstrap.resources(
        session_settings(tmp_path, TALENT_PUBLIC_URL=PUBLIC_URL),
        pool=pool,
        temporal=cast(Client, None),  # a page is only read: Temporal is never reached
        authenticator=Authenticator([token, other]),
    )
    app = httpx.ASGITransport(app=create_app(resources))
    async with httpx.AsyncClient(transport=app, base_url=PUBLIC_URL) as reader:
        # Not signed in: the link sends its reader to sign in, and back to where it pointed.
        first = await reader.get(links[0])
        assert first.status_code == 303
        back_to = urlsplit(links[0]).path
        assert first.headers["location"] == f"/dashboard/login?{urlencode({'next': back_to})}"
        signed_in = await reader.post("/dashboard/login", data={"token": token.token, "next": back_to})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == back_to
        page = await reader.get(links[0])
        assert page.status_code == 200
        # The page names the journey as the e-mail did: the talent and the programme's title.
        assert re.search(rf"data-talent-name>{re.escape(scene.people['talent'].name)}<", page.text)
        assert "Talent Ny Leder" in page.text and "Talent Ny Leder" in welcome.subject

        # Someone else's link is no way in: another talent gets the same 404 as an unknown journey.
        reader.cookies.clear()
        await reader.post("/dashboard/login", data={"token": other.token, "next": back_to})
        assert (await reader.get(links[0])).status_code == 404
