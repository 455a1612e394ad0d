"""Typed settings from the environment (pydantic-settings); built in entry points, passed down."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import limits
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.calendar import parse_iso_duration

#: How the SMTP connection is protected: STARTTLS when the server offers it (the default), STARTTLS
#: or nothing sent, TLS from the first byte (port 465), or plain text.
SmtpTls = Literal["starttls-if-offered", "starttls-required", "tls", "none"]

#: Where the dashboard is reached unless TALENT_PUBLIC_URL says otherwise (`talent api`'s default).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"

#: The prefix of a Standard Webhooks secret.
_WHSEC = "whsec_"


def webhook_keys(value: str) -> tuple[bytes, ...]:
    """The signing keys in a TALENT_WEBHOOK_SECRET value: secrets separated by spaces or commas.

    A `whsec_<base64>` secret (the Standard Webhooks form) signs with the bytes its base64 holds;
    any other string, as before that convention was adopted, with its UTF-8 bytes (an integrator
    verifies it with `Webhook(secret.encode())`). Errors never quote the secret.
    """
    keys: list[bytes] = []
    for secret in re.split(r"[\s,]+", value.strip()):
        if not secret:
            continue
        if secret.startswith(_WHSEC):
            encoded = secret.removeprefix(_WHSEC)
            try:
                key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            except binascii.Error:
                raise ValueError("TALENT_WEBHOOK_SECRET: a whsec_ secret must be followed by base64") from None
        else:
            key = secret.encode()
        if not key:
            raise ValueError("TALENT_WEBHOOK_SECRET: a whsec_ secret must not be empty")
        keys.append(key)
    if not keys:
        raise ValueError("TALENT_WEBHOOK_SECRET holds no secret")
    return tuple(keys)


class Settings(BaseSettings):
    """Service configuration. Every field can be set by an environment variable of its name."""

    # An empty variable counts as unset (compose's `${VAR:-}`), never as an empty path or issuer.
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, populate_by_name=True, env_ignore_empty=True
    )

    database_url: str | None = Field(default=None, description="PostgreSQL DSN; unset: local or embedded")
    data_dir: Path = Field(default=Path(".data"), alias="TALENT_DATA_DIR")
    examples_dir: Path = Field(
        default=Path(__file__).resolve().parents[1] / "examples",
        alias="TALENT_EXAMPLES_DIR",
        description="the reference and demo programmes (the image sets /app/examples)",
    )
    vault_key: SecretStr | None = Field(
        default=None, alias="TALENT_VAULT_KEY", description="base64 of the vault's 32-byte key-encryption key"
    )
    vault_old_keys: SecretStr | None = Field(
        default=None,
        alias="TALENT_VAULT_OLD_KEYS",
        description="during a key rotation: the previous key-encryption keys (base64, space- or comma-separated), "
        "still read, never written with",
    )
    erasure_ledger: Path | None = Field(
        default=None,
        alias="TALENT_ERASURE_LEDGER",
        description="the append-only erasure ledger (JSON lines), kept outside the database and its backups; "
        "unset: erasure-ledger.jsonl in the data dir",
    )
    log_format: str = Field(default="auto", alias="TALENT_LOG_FORMAT", description="json | console | auto")
    log_level: str = Field(default="INFO", alias="TALENT_LOG_LEVEL")

    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default="talent-journey", alias="TALENT_TASK_QUEUE")
    # Transport to Temporal (PRODUCT §8.7): TLS with the system's CAs or TEMPORAL_TLS_CA_FILE's, a
    # client certificate for mTLS, an API key (Temporal Cloud; it implies TLS). See infra.temporal.
    temporal_tls: bool = Field(default=False, alias="TEMPORAL_TLS", description="TLS with the system's CAs")
    temporal_tls_ca_file: Path | None = Field(default=None, alias="TEMPORAL_TLS_CA_FILE")
    temporal_tls_cert_file: Path | None = Field(default=None, alias="TEMPORAL_TLS_CERT_FILE")
    temporal_tls_key_file: Path | None = Field(default=None, alias="TEMPORAL_TLS_KEY_FILE")
    temporal_tls_server_name: str | None = Field(default=None, alias="TEMPORAL_TLS_SERVER_NAME")
    temporal_api_key: SecretStr | None = Field(default=None, alias="TEMPORAL_API_KEY")

    # Seeing it (issue 15): Prometheus metrics and OpenTelemetry traces (see infra.telemetry).
    metrics_enabled: bool = Field(
        default=True, alias="TALENT_METRICS_ENABLED", description="GET /metrics on the API (unauthenticated)"
    )
    worker_metrics_port: int | None = Field(
        default=None, alias="TALENT_WORKER_METRICS_PORT", description="the worker's /metrics port; unset: none"
    )
    worker_metrics_host: str = Field(default="127.0.0.1", alias="TALENT_WORKER_METRICS_HOST")
    # The worker at scale (issue 15): open journeys beyond the cache are evicted and replayed from
    # their history when they next wake, so the worker's memory stays flat however many are open.
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0, alias="TALENT_WORKER_MAX_CACHED_WORKFLOWS", description="workflows kept in memory"
    )
    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, alias="TALENT_WORKER_MAX_CONCURRENT_ACTIVITIES", description="appends and deliveries at once"
    )
    otel_endpoint: str | None = Field(
        default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT", description="OTLP/HTTP collector; unset: no tracing"
    )

    smtp_host: str | None = Field(default=None, alias="TALENT_SMTP_HOST", description="unset: e-mails are skipped")
    smtp_port: int = Field(default=25, alias="TALENT_SMTP_PORT")
    smtp_sender: str = Field(default="talent-journey@localhost", alias="TALENT_SMTP_SENDER")
    smtp_username: str | None = Field(default=None, alias="TALENT_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, alias="TALENT_SMTP_PASSWORD")
    smtp_tls: SmtpTls | None = Field(
        default=None,
        alias="TALENT_SMTP_TLS",
        description="starttls-if-offered (unset) | starttls-required | tls (implicit, port 465) | none",
    )
    smtp_starttls: bool | None = Field(
        default=None,
        alias="TALENT_SMTP_STARTTLS",
        description="deprecated: true means TALENT_SMTP_TLS=starttls-required",
    )
    smtp_ca_file: Path | None = Field(
        default=None,
        alias="TALENT_SMTP_CA_FILE",
        description="PEM file of the CAs the SMTP server's certificate is checked against; unset: the system's",
    )

    tokens_file: Path | None = Field(default=None, alias="TALENT_TOKENS_FILE", description="JSON list of tokens")
    jwt_secret: SecretStr | None = Field(default=None, alias="TALENT_JWT_SECRET", description="HS256 secret")
    jwt_jwks_url: str | None = Field(default=None, alias="TALENT_JWT_JWKS_URL", description="JWKS of the issuer")
    jwt_algorithms: str = Field(
        default="RS256,ES256", alias="TALENT_JWT_ALGORITHMS", description="allow-list for JWKS-signed tokens"
    )
    jwt_issuer: str | None = Field(default=None, alias="TALENT_JWT_ISSUER")
    jwt_audience: str | None = Field(default=None, alias="TALENT_JWT_AUDIENCE")
    max_body_bytes: int = Field(default=256 * 1024, alias="TALENT_MAX_BODY_BYTES")
    max_batch_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        alias="TALENT_MAX_BATCH_BODY_BYTES",
        description="the body cap of POST /v1/journeys/batch (up to 1,000 nominations)",
    )
    accessibility_contact: str = Field(
        default="",
        alias="TALENT_ACCESSIBILITY_CONTACT",
        description="where to report an accessibility problem (e-mail or URL); unset: a placeholder",
    )
    rate_limit_storage: str = Field(
        default="async+memory://",
        alias="TALENT_RATE_LIMIT_STORAGE",
        description="a `limits` storage URI; async+redis://host:6379 shares the budgets between API processes",
    )
    rate_limit_auth_failures: str = Field(
        default="20/minute", alias="TALENT_RATE_LIMIT_AUTH_FAILURES", description="per client address"
    )
    rate_limit_calendar_guesses: str = Field(
        default="20/minute", alias="TALENT_RATE_LIMIT_CALENDAR_GUESSES", description="per client address"
    )
    rate_limit_nominations: str = Field(
        default="50/day", alias="TALENT_RATE_LIMIT_NOMINATIONS", description="per nominating leader"
    )
    rate_limit_requests: str = Field(
        default="600/minute", alias="TALENT_RATE_LIMIT_REQUESTS", description="per authenticated caller"
    )
    api_host: str = Field(default="127.0.0.1", alias="TALENT_API_HOST")
    api_port: int = Field(default=8000, alias="TALENT_API_PORT")
    public_url: str = Field(
        default=DEFAULT_PUBLIC_URL,
        alias="TALENT_PUBLIC_URL",
        description="where people reach the dashboard; the e-mails link to its pages",
    )

    webhook_url: str | None = Field(default=None, alias="TALENT_WEBHOOK_URL", description="unset: webhooks skipped")
    webhook_secret: SecretStr | None = Field(
        default=None,
        alias="TALENT_WEBHOOK_SECRET",
        description="whsec_<base64> (Standard Webhooks) or a plain string; during a rotation several, "
        "space- or comma-separated, each signing every delivery",
    )

    # Dashboard sign-in with OpenID Connect (authorization code + PKCE); unset issuer: token sign-in only.
    oidc_issuer: str | None = Field(
        default=None,
        alias="TALENT_OIDC_ISSUER",
        description="the identity provider's issuer URL (its /.well-known/openid-configuration is read)",
    )
    oidc_client_id: str | None = Field(default=None, alias="TALENT_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(
        default=None, alias="TALENT_OIDC_CLIENT_SECRET", description="unset: a public client (PKCE only)"
    )
    oidc_scopes: str = Field(default="openid profile", alias="TALENT_OIDC_SCOPES", description="space-separated")
    oidc_role_claim: str = Field(
        default="role",
        alias="TALENT_OIDC_ROLE_CLAIM",
        description="the ID token claim with the role (a string or a list; a dotted path reaches into objects)",
    )
    oidc_person_claim: str = Field(
        default="person_id", alias="TALENT_OIDC_PERSON_CLAIM", description="the ID token claim with the person id"
    )
    oidc_role_map: str | None = Field(
        default=None,
        alias="TALENT_OIDC_ROLE_MAP",
        description="provider value=service role, comma-separated (e.g. 'TJ-Koordinator=coordinator,"
        "Leder=leader'); unset: the claim's values are the service's roles",
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        alias="TALENT_OIDC_REDIRECT_URL",
        description="the callback URL registered with the provider; unset: <this host>/dashboard/oidc/callback",
    )

    # Retention per data category (PRODUCT §8.7, docs/retention.md): ISO 8601 periods.
    retention_free_texts: str = Field(default="P6M", alias="TALENT_RETENTION_FREE_TEXTS")
    retention_contact_data: str = Field(default="P1Y", alias="TALENT_RETENTION_CONTACT_DATA")
    retention_idempotency_keys: str = Field(default="P7D", alias="TALENT_RETENTION_IDEMPOTENCY_KEYS")
    retention_outbox_delivered: str = Field(default="P30D", alias="TALENT_RETENTION_OUTBOX_DELIVERED")
    retention_dashboard_sessions: str = Field(default="P1D", alias="TALENT_RETENTION_DASHBOARD_SESSIONS")
    retention_access_log: str = Field(default="P3Y", alias="TALENT_RETENTION_ACCESS_LOG")
    retention_cron: str = Field(
        default="0 3 * * *", alias="TALENT_RETENTION_CRON", description="when the retention schedule runs"
    )
    retention_time_zone: str = Field(default="Europe/Copenhagen", alias="TALENT_RETENTION_TIME_ZONE")

    @field_validator(
        "retention_free_texts",
        "retention_contact_data",
        "retention_idempotency_keys",
        "retention_outbox_delivered",
        "retention_dashboard_sessions",
        "retention_access_log",
    )
    @classmethod
    def _retention_period(cls, value: str) -> str:
        """An ISO 8601 period such as P6M, refused at start-up when it is not one."""
        parse_iso_duration(value)
        return value

    def smtp_tls_mode(self) -> SmtpTls:
        """How SMTP is protected: TALENT_SMTP_TLS; else the old TALENT_SMTP_STARTTLS=true as required.

        The old `false` was the default and meant "never STARTTLS", which is what this setting
        replaces: it now means the default, STARTTLS whenever the server offers it. Both set and
        disagreeing is a ValueError (checked when a worker starts, not when settings load, so that
        the error never carries the other settings' values).
        """
        if self.smtp_starttls and self.smtp_tls not in (None, "starttls-required"):
            raise ValueError("TALENT_SMTP_STARTTLS=true contradicts TALENT_SMTP_TLS; set TALENT_SMTP_TLS only")
        if self.smtp_tls is not None:
            return self.smtp_tls
        return "starttls-required" if self.smtp_starttls else "starttls-if-offered"

    def smtp_tls_context(self) -> ssl.SSLContext | None:
        """The context the SMTP server's certificate is checked in: TALENT_SMTP_CA_FILE's CAs, else the system's."""
        if self.smtp_ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.smtp_ca_file))

    def webhook_keys(self) -> tuple[bytes, ...]:
        """The webhook signing keys; a ValueError if TALENT_WEBHOOK_SECRET is unset."""
        if self.webhook_secret is None:
            raise ValueError("TALENT_WEBHOOK_SECRET must be set with TALENT_WEBHOOK_URL")
        return webhook_keys(self.webhook_secret.get_secret_value())

    @field_validator(
        "rate_limit_auth_failures", "rate_limit_calendar_guesses", "rate_limit_nominations", "rate_limit_requests"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A limits string such as `20/minute` or `50 per day`, refused at start-up when it is not one."""
        try:
            limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '20/minute': {value!r}") from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        """An http(s) URL with a host and no query or fragment, refused at start-up when it is not one."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"TALENT_PUBLIC_URL must be an http(s) URL such as https://talent.example.dk: {value!r}")
        return value.rstrip("/")

    def old_vault_keys(self) -> tuple[bytes, ...]:
        """The retired-but-still-readable key-encryption keys of a rotation in progress (TALENT_VAULT_OLD_KEYS)."""
        if self.vault_old_keys is None:
            return ()
        keys: list[bytes] = []
        for encoded in re.split(r"[\s,]+", self.vault_old_keys.get_secret_value().strip()):
            if not encoded:
                continue
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                key = b""
            if len(key) != 32:
                # Never quote the value: it is a key.
                raise ValueError("TALENT_VAULT_OLD_KEYS must hold base64 keys of exactly 32 bytes each")
            keys.append(key)
        return tuple(keys)

    def erasure_ledger_path(self) -> Path:
        """Where the erasure ledger is kept: TALENT_ERASURE_LEDGER, else erasure-ledger.jsonl in the data dir."""
        return self.erasure_ledger if self.erasure_ledger is not None else self.data_dir / "erasure-ledger.jsonl"

    def master_key(self) -> bytes:
        """The vault's key-encryption key: TALENT_VAULT_KEY, else a development key in the data dir.

        The development key is created once (mode 0600) so that a restart can still read the
        vault; production sets TALENT_VAULT_KEY from a secret store.
        """
        if self.vault_key is not None:
            key = base64.b64decode(self.vault_key.get_secret_value())
            if len(key) != 32:
                raise ValueError("TALENT_VAULT_KEY must be base64 of exactly 32 bytes")
            return key
        path = self.data_dir / "vault.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode())
        return base64.b64decode(path.read_text().strip())
