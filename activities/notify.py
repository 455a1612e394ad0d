"""Notification delivery from the outbox: e-mail over SMTP, signed webhooks to HR systems.

At least once, with a narrow window for a second copy. Every message carries its outbox row's id
as its idempotency key (the e-mail's Message-ID, the webhook's `webhook-id` and Idempotency-Key
headers). Each row is marked `attempting` (in `last_error`) just before it is handed over and
marked delivered in its own statement just after the receiver accepts it, so a crash can leave in
doubt only the one message being sent at that moment. What such an unknown outcome means is
decided per channel, and both re-send with the same id:

- webhook: re-sent; the receiver deduplicates by `webhook-id` (Standard Webhooks), so a retry is
  exactly once in effect;
- e-mail: re-sent with the same Message-ID. A mailbox does not deduplicate, so the person may get
  the message twice (a mail client may thread or hide the copy); a lost invitation or escalation is
  worse than a duplicate, so at-least-once it is. Each such re-send is logged
  (`notification_resent_after_unknown_outcome`) and recorded on the delivered row (`last_error` =
  RESENT_AFTER_UNKNOWN_OUTCOME), so the duplicate rate can be measured.

Recipients are resolved from the people vault at send time; an erased person gets
nothing. A permanent failure dead-letters the row at once; so does any error a retry cannot cure
(a message that cannot be rendered or built, a vault record that cannot be read), so that one
poisoned row never holds back the rows after it. A transient failure is retried by Temporal with
backoff until the last attempt, which dead-letters what is still failing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import structlog
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.invitation import invitation
from activities.templates import compose, unsafe_char
from domain.events import public_event_data, stream_id_for
from domain.programme import Programme
from domain.values import Language
from infra.present import Links
from infra.settings import DEFAULT_PUBLIC_URL, SmtpTls
from store.vault import Erased, PeopleVault, PersonData

log = structlog.get_logger("talent.notify")

#: Failure type while transient failures remain: Temporal retries the activity with backoff.
DELIVERY_PENDING = "DeliveryPending"


class DeliveryFailed(Exception):
    """Sending failed; `permanent` failures are dead-lettered, the others retried."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Skipped(Exception):
    """Nothing to send, on purpose (an erased recipient, no webhook configured)."""


class Undeliverable(Exception):
    """A row no retry can deliver (it cannot be rendered, built or read): dead-lettered at once.

    `reason` names the exception type and the stage only: an exception's own message may quote a
    name or an address, and `last_error` and the logs must never hold one.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Failures of the infrastructure, not of a row: the activity fails and Temporal retries it whole.
_INFRASTRUCTURE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


#: Exceptions that already say what to do with the row (or with the activity).
_CLASSIFIED: tuple[type[BaseException], ...] = (Skipped, DeliveryFailed, Undeliverable, *_INFRASTRUCTURE)


@contextlib.contextmanager
def _stage(stage: str) -> Iterator[None]:
    """Turn any error in `stage` that a retry cannot cure into `Undeliverable`."""
    try:
        yield
    except _CLASSIFIED:
        raise
    except Exception as exc:
        raise Undeliverable(f"{type(exc).__name__}: {stage}") from exc


class DeliverInput(BaseModel):
    """Deliver a journey's pending notifications; `max_attempts` tells the last try."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journey_id: str
    max_attempts: int = 12


class DeliverOutput(BaseModel):
    """What one delivery run did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivered: int = 0
    skipped: int = 0
    dead: int = 0
    retrying: int = 0


#: `last_error` of a row while it is being handed to its receiver; seen by a later run, the outcome
#: of that hand-over is unknown (the worker died between sending and marking).
ATTEMPTING = "attempting: outcome unknown until marked"
#: `last_error` of a row delivered by a re-send after an unknown outcome: maybe received twice.
RESENT_AFTER_UNKNOWN_OUTCOME = "delivered by a re-send after an unknown outcome"

#: `last_error` of a message held back because the server would not speak TLS.
STARTTLS_NOT_OFFERED = "smtp STARTTLS required but not offered"


@dataclass(frozen=True)
class SmtpConfig:
    """Where and as whom to send e-mail, and how the connection is protected."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    tls: SmtpTls = "starttls-if-offered"
    timeout: float = 10.0
    #: Whom to trust for the server's certificate; None: the system's trust store.
    tls_context: ssl.SSLContext | None = None


class SmtpMailer:
    """Sends one message over SMTP (aiosmtplib), classifying failures."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, message: EmailMessage) -> None:
        """Send; 5xx answers are permanent, connection trouble, 4xx and a missing STARTTLS transient.

        A server that does not offer STARTTLS when it is required is a transient failure: the
        message is retried (and dead-lettered on the last attempt), never sent in clear. It may be
        a relay being reconfigured or an attacker stripping the offer, and the operator can fix
        either without losing the mail.
        """
        cfg = self._config
        message["From"] = cfg.sender
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout,
            use_tls=cfg.tls == "tls",
            # aiosmtplib (>= 2): None upgrades with STARTTLS when the EHLO answer offers it, False
            # never does. "Required" is checked by hand below, so that it fails with a clear reason.
            start_tls=None if cfg.tls == "starttls-if-offered" else False,
            tls_context=cfg.tls_context,
        )
        try:
            # No credentials to the constructor: aiosmtplib would log in on connect, and the login
            # must come after a required STARTTLS, never before it.
            async with client:
                if cfg.tls == "starttls-required":
                    await client.ehlo()
                    if not client.supports_extension("starttls"):
                        raise DeliveryFailed(STARTTLS_NOT_OFFERED, permanent=False)
                    await client.starttls()
                if cfg.username is not None:
                    await client.login(cfg.username, cfg.password or "")
                await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [err.code for err in exc.recipients]
            raise DeliveryFailed(f"recipient refused ({codes})", permanent=all(c >= 500 for c in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"smtp {exc.code}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"smtp unavailable: {type(exc).__name__}", permanent=False) from exc


@dataclass(frozen=True)
class WebhookConfig:
    """An HR system's endpoint and the keys its deliveries are signed with (several while rotating)."""

    url: str
    keys: tuple[bytes, ...]
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.keys or not all(self.keys):
            raise ValueError("a webhook needs at least one non-empty signing key")


def sign(keys: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value: `v1,<base64 HMAC-SHA256>` per key, space-separated.

    Each signs `{msg_id}.{timestamp}.{body}`; a receiver accepts the delivery if any one verifies,
    so during a rotation it may hold the old secret or the new one.
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode() for key in keys)


class WebhookSender:
    """POSTs JSON signed per the Standard Webhooks convention, with the notification id as message id."""

    def __init__(self, config: WebhookConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client

    async def send(self, notification_id: str, payload: dict[str, Any]) -> None:
        """POST; 2xx delivered, 4xx (but 408/429) permanent, the rest transient."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            # The same id twice: `webhook-id` for Standard Webhooks receivers, Idempotency-Key as before.
            "webhook-id": notification_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._config.keys, notification_id, timestamp, body),
            "Idempotency-Key": notification_id,
        }
        try:
            response = await self._client.post(
                self._config.url, content=body, headers=headers, timeout=self._config.timeout
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook unavailable: {type(exc).__name__}", permanent=False) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        permanent = 400 <= status < 500 and status not in (408, 425, 429)
        raise DeliveryFailed(f"webhook answered {status}", permanent=permanent)


#: The programme a journey keeps: the one its nomination carries.
_PROGRAMME = """
SELECT (data->'programme')::text FROM events
 WHERE stream_id = $1 AND event_type = 'TalentNominated'
 ORDER BY stream_version LIMIT 1
"""

_PENDING = """
SELECT o.notification_id, o.channel, o.template, o.recipient_role, o.recipient_id, o.attempts, o.last_error,
       e.event_id, e.event_type, e.schema_version, e.data::text AS data, e.stream_id, e.stream_version,
       e.global_position, e.occurred_at, s.talent_id, slip.due_at AS slipped_due
  FROM outbox o
  JOIN events e ON e.event_id = o.event_id
  LEFT JOIN journey_status s ON s.journey_id = o.journey_id
  -- An escalation tells the deadline that slipped (its MilestoneSlipped), not when the rung fired.
  LEFT JOIN LATERAL (
      SELECT m.data->>'due_at' AS due_at FROM events m
       WHERE m.stream_id = e.stream_id AND m.stream_version < e.stream_version
         AND m.event_type = 'MilestoneSlipped' AND m.data->>'milestone' = e.data->>'milestone'
       ORDER BY m.stream_version DESC LIMIT 1
  ) slip ON e.event_type = 'EscalationRaised'
 WHERE o.journey_id = $1 AND o.status = 'pending'
 ORDER BY e.global_position, o.notification_id
"""


class Notifier:
    """The delivery activity, built with the pool, the vault and the configured channels."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        vault: PeopleVault,
        *,
        mailer: SmtpMailer | None,
        webhook: WebhookSender | None,
        public_url: str = DEFAULT_PUBLIC_URL,
    ) -> None:
        self._pool = pool
        self._vault = vault
        self._mailer = mailer
        self._webhook = webhook
        self._links = Links(public_url)

    @activity.defn(name="deliver_notifications")
    async def deliver(self, request: DeliverInput) -> DeliverOutput:
        """Deliver every pending notification of a journey; raise to be retried while some fail."""
        info = activity.info()
        final = info.attempt >= request.max_attempts
        bound = structlog.contextvars.bound_contextvars(
            journey_id=request.journey_id, workflow_id=info.workflow_id, activity=info.activity_type
        )
        with bound:
            return await self._deliver(request.journey_id, final=final)

    async def _deliver(self, journey_id: str, *, final: bool) -> DeliverOutput:
        rows = await self._pool.fetch(_PENDING, journey_id)
        counts = {"delivered": 0, "skipped": 0, "dead": 0, "retrying": 0}
        programme: Programme | None = None
        if any(row["channel"] == "email" for row in rows):
            programme = await self._programme(journey_id)
        for row in rows:
            notification_id = str(row["notification_id"])
            in_doubt = row["last_error"] == ATTEMPTING
            try:
                if row["channel"] == "email":
                    await self._email(row, programme)
                else:
                    await self._post(row)
            except Skipped as exc:
                await self._mark(notification_id, "skipped", str(exc))
                counts["skipped"] += 1
            except Undeliverable as exc:
                await self._dead(row, exc.reason)
                counts["dead"] += 1
            except DeliveryFailed as exc:
                if exc.permanent or final:
                    await self._dead(row, exc.reason)
                    counts["dead"] += 1
                else:
                    await self._pool.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE notification_id = $1",
                        row["notification_id"],
                        exc.reason,
                    )
                    counts["retrying"] += 1
            except _INFRASTRUCTURE:
                # The database (or the network under it) failed, not this row: fail the activity.
                raise
            except Exception as exc:
                # Not classified, so not curable by a retry either: it must not block the rows after it.
                await self._dead(row, f"{type(exc).__name__}: {row['channel']} could not be delivered")
                counts["dead"] += 1
            else:
                # At once, one statement per message: a crash can leave in doubt only the next one.
                await self._mark(notification_id, "delivered", RESENT_AFTER_UNKNOWN_OUTCOME if in_doubt else None)
                counts["delivered"] += 1
                if in_doubt:
                    log.warning(
                        "notification_resent_after_unknown_outcome",
                        notification_id=notification_id,
                        channel=row["channel"],
                        template=row["template"],
                    )
            activity.heartbeat(notification_id)
        if counts["retrying"]:
            raise ApplicationError(
                f"{counts['retrying']} notifications not yet delivered", counts, type=DELIVERY_PENDING
            )
        log.info("notifications_delivered", **counts)
        return DeliverOutput(**counts)

    async def _dead(self, row: asyncpg.Record, reason: str) -> None:
        notification_id = str(row["notification_id"])
        await self._mark(notification_id, "dead", reason)
        log.warning(
            "notification_dead_lettered",
            notification_id=notification_id,
            channel=row["channel"],
            template=row["template"],
            reason=reason,
        )

    async def _attempting(self, row: asyncpg.Record) -> None:
        """Mark the row as being handed over now, and heartbeat: the last step before sending."""
        await self._pool.execute(
            "UPDATE outbox SET last_error = $2 WHERE notification_id = $1 AND status = 'pending'",
            row["notification_id"],
            ATTEMPTING,
        )
        activity.heartbeat(str(row["notification_id"]))

    async def _mark(self, notification_id: str, status: str, error: str | None) -> None:
        # The attempting mark goes once the outcome is known.
        await self._pool.execute(
            """UPDATE outbox SET status = $2, attempts = attempts + 1,
                      last_error = coalesce($3, nullif(last_error, $4)),
                      delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
                WHERE notification_id = $1::uuid""",
            notification_id,
            status,
            error,
            ATTEMPTING,
        )

    async def _programme(self, journey_id: str) -> Programme | None:
        """The programme version the journey keeps (its nomination's): the titles its e-mails use.

        One that cannot be read (an old shape) gives words instead of titles, never a held-back mail.
        """
        raw = await self._pool.fetchval(_PROGRAMME, stream_id_for(journey_id))
        if raw is None:
            return None
        try:
            return Programme.model_validate_json(raw)
        except ValueError:
            log.error("notification_programme_unreadable", journey_id=journey_id)
            return None

    async def _email(self, row: asyncpg.Record, programme: Programme | None) -> None:
        if self._mailer is None:
            raise Skipped("no SMTP server configured")
        recipient_id = row["recipient_id"]
        with _stage("person unreadable"):
            people = await self._vault.get_people([p for p in (recipient_id, row["talent_id"]) if p])
        recipient = people.get(recipient_id)
        if isinstance(recipient, Erased):
            raise Skipped("recipient erased")
        if recipient is None:
            raise DeliveryFailed("recipient unknown to the vault", permanent=True)
        talent = people.get(row["talent_id"])
        with _stage("message could not be rendered"):
            data = json.loads(row["data"])
            language: Language = recipient.language
            rendered = compose(
                row["template"],
                language,
                recipient=recipient.name,
                talent=talent.name if isinstance(talent, PersonData) else "",
                journey_id=row["stream_id"].removeprefix("journey-"),
                data=data,
                programme=programme,
                due=_due(data, row["slipped_due"]),
                links=self._links,
                sign=self._vault.keyed_id,
            )
        with _stage("message could not be built"):
            message = EmailMessage()
            message["To"] = _header_value(recipient.email)
            message["Subject"] = _header_value(rendered.subject)
            message["Message-ID"] = f"<{row['notification_id']}@talent-journey>"
            message["X-Talent-Notification"] = str(row["notification_id"])
            message.set_content(rendered.body)
            if row["event_type"] == "MentorMeetingProposed":
                # Rules 4 (issue 14): the appointment as an invitation for the reader's calendar.
                ics = invitation(
                    row["stream_id"].removeprefix("journey-"), data, row["occurred_at"], programme, language
                )
                message.add_attachment(
                    ics, maintype="text", subtype="calendar", filename="invitation.ics", params={"method": "REQUEST"}
                )
            # Serialise once here, so that a header the wire would refuse fails now, not mid-send.
            message.as_bytes()
        await self._attempting(row)
        await self._mailer.send(message)

    async def _post(self, row: asyncpg.Record) -> None:
        if self._webhook is None:
            raise Skipped("no webhook configured")
        ref = json.loads(row["data"]).get("external_ref_ref") if row["event_type"] == "TalentNominated" else None
        texts = await self._vault.read_texts([ref]) if ref else {}
        with _stage("payload could not be built"):
            payload = _payload(row, texts.get(ref or ""))
        await self._attempting(row)
        await self._webhook.send(str(row["notification_id"]), payload)


def _payload(row: asyncpg.Record, external_ref: str | None = None) -> dict[str, Any]:
    """A webhook's body: the event with its public data (ids, no personal data)."""
    return {
        "notification_id": str(row["notification_id"]),
        "event": {
            "event_id": str(row["event_id"]),
            "event_type": row["event_type"],
            "schema_version": row["schema_version"],
            "journey_id": row["stream_id"].removeprefix("journey-"),
            "stream_version": row["stream_version"],
            "global_position": row["global_position"],
            "occurred_at": row["occurred_at"].isoformat(),
            "data": public_event_data(row["event_type"], json.loads(row["data"]), external_ref=external_ref),
        },
    }


def _header_value(value: str) -> str:
    """`value` if it can stand in a header as it is; a ValueError (quoting nothing) if not.

    The e-mail package refuses line breaks itself but lets NUL, ESC and other controls through
    to the wire. An address is never repaired: a changed address is someone else's mailbox.
    """
    if any(unsafe_char(ch) for ch in value):
        raise ValueError("a header value holds a control character")
    return value


def _due(data: dict[str, Any], slipped_due: str | None) -> datetime | None:
    """When the notification's item is (or was) due: an escalation's is its milestone's slipped deadline."""
    for value in (slipped_due, data.get("due_at"), data.get("respond_by")):
        if isinstance(value, str):
            return datetime.fromisoformat(value)
    return None
