"""The Temporal client's transport from settings (PRODUCT §8.7): TLS files, server name, API key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.service import TLSConfig

from infra import telemetry
from infra.settings import Settings
from infra.temporal import TransportSettingsError, connect_args, tls_config

API_KEY = "tcld-secret-api-key-never-in-a-log"


def settings(**values: Any) -> Settings:
    """Settings from these values only (by their environment names), whatever this process's environment holds."""
    return Settings.model_validate(values)


@pytest.fixture(autouse=True)
def _no_transport_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CA_FILE",
        "TEMPORAL_TLS_CERT_FILE",
        "TEMPORAL_TLS_KEY_FILE",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_plain_text_without_settings() -> None:
    args = connect_args(settings())
    assert args["tls"] is False and args["api_key"] is None
    assert args["namespace"] == "default"


def test_tls_with_the_systems_cas_when_asked() -> None:
    assert tls_config(settings(TEMPORAL_TLS="true")) is True


def test_an_api_key_implies_tls_as_temporal_cloud_needs() -> None:
    args = connect_args(settings(TEMPORAL_API_KEY=API_KEY, TEMPORAL_NAMESPACE="kommune.a1b2c"))
    assert args["api_key"] == API_KEY
    assert args["tls"] is True
    assert args["namespace"] == "kommune.a1b2c"


def test_the_files_are_read_into_the_tls_config(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nca\n")
    (tmp_path / "client.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nclient\n")
    (tmp_path / "client.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nkey\n")
    config = tls_config(
        settings(
            TEMPORAL_TLS_CA_FILE=str(tmp_path / "ca.pem"),
            TEMPORAL_TLS_CERT_FILE=str(tmp_path / "client.pem"),
            TEMPORAL_TLS_KEY_FILE=str(tmp_path / "client.key"),
            TEMPORAL_TLS_SERVER_NAME="temporal.internal",
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == b"-----BEGIN CERTIFICATE-----\nca\n"
    assert config.client_cert == b"-----BEGIN CERTIFICATE-----\nclient\n"
    assert config.client_private_key == b"-----BEGIN PRIVATE KEY-----\nkey\n"
    assert config.domain == "temporal.internal"


def test_a_server_name_alone_is_tls_with_the_systems_cas() -> None:
    config = tls_config(settings(TEMPORAL_TLS_SERVER_NAME="temporal.internal"))
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert is None and config.client_cert is None and config.domain == "temporal.internal"


def test_a_missing_file_is_a_clear_error_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(TransportSettingsError) as raised:
        connect_args(settings(TEMPORAL_TLS_CA_FILE=str(missing), TEMPORAL_API_KEY=API_KEY))
    message = str(raised.value)
    assert "TEMPORAL_TLS_CA_FILE" in message and str(missing) in message
    assert API_KEY not in message


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(b"cert")
    with pytest.raises(TransportSettingsError, match="TEMPORAL_TLS_KEY_FILE"):
        tls_config(settings(TEMPORAL_TLS_CERT_FILE=str(tmp_path / "client.pem")))


def test_a_key_path_that_is_no_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(b"cert")
    with pytest.raises(TransportSettingsError) as raised:
        tls_config(settings(TEMPORAL_TLS_CERT_FILE=str(tmp_path / "client.pem"), TEMPORAL_TLS_KEY_FILE=str(tmp_path)))
    assert "TEMPORAL_TLS_KEY_FILE" in str(raised.value)


def test_the_api_key_is_never_shown_in_clear() -> None:
    configured = settings(TEMPORAL_API_KEY=API_KEY)
    for shown in (repr(configured), str(configured), str(configured.model_dump()), configured.model_dump_json()):
        assert API_KEY not in shown


def test_without_tracing_the_client_gets_no_interceptor() -> None:
    if telemetry.tracing_enabled():  # pragma: no cover - a process that turned tracing on
        assert isinstance(connect_args(settings())["interceptors"][0], TracingInterceptor)
    else:
        assert connect_args(settings())["interceptors"] == []


def test_without_an_endpoint_tracing_stays_off() -> None:
    assert telemetry.configure_tracing(None, "talent-journey") is telemetry.tracing_enabled()
    if not telemetry.tracing_enabled():
        assert telemetry.temporal_interceptors() == []
        assert not telemetry.tracer().start_span("nothing").get_span_context().is_valid
