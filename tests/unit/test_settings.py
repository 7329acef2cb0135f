"""Settings come from MSHT_* variables and never show a secret."""

from __future__ import annotations

import pytest

from broker.settings import Settings


def test_defaults_point_at_the_local_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MSHT_BOOTSTRAP_SERVERS", "MSHT_SECURITY_PROTOCOL", "MSHT_SASL_MECHANISM"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.security_protocol == "SASL_PLAINTEXT"
    assert settings.sasl_mechanism == "SCRAM-SHA-512"


def test_msht_prefixed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSHT_BOOTSTRAP_SERVERS", "kafka.example:9094")
    monkeypatch.setenv("MSHT_USERNAME", "router")

    settings = Settings()

    assert settings.bootstrap_servers == "kafka.example:9094"
    assert settings.username == "router"


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOTSTRAP_SERVERS", "elsewhere:1")
    monkeypatch.delenv("MSHT_BOOTSTRAP_SERVERS", raising=False)

    assert Settings().bootstrap_servers == "127.0.0.1:9092"


def test_password_is_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSHT_PASSWORD", "s3cret-value")

    settings = Settings()

    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings)
    assert settings.password.get_secret_value() == "s3cret-value"
