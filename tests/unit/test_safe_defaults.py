"""Safe defaults: no silent super-user, misspelt variables reported, secrets from files,
one clear line and a distinct exit code for TLS and authentication failures, --version,
-o json on list commands and help texts without reST markup."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from broker.cli import EXIT_AUTHENTICATION, EXIT_ERROR, EXIT_TLS, build_parser, exit_code, main
from broker.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnavailableError,
    ConfigError,
    KeyFileError,
    MshtError,
    PrincipalNotConfiguredError,
    TlsError,
)
from broker.kafka.clients import tls_context
from broker.settings import Settings, load_settings, unknown_variables


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with neither a principal nor the development flag."""
    for name in ("MSHT_DEV", "MSHT_USERNAME", "MSHT_PASSWORD", "MSHT_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_a_principal_a_process_refuses_to_start(
    production_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(PrincipalNotConfiguredError, match="MSHT_USERNAME is not set"):
        load_settings()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_a_development_run_logs_in_as_the_local_admin(
    production_env: pytest.MonkeyPatch, value: str
) -> None:
    production_env.setenv("MSHT_DEV", value)
    assert load_settings().username == "admin"


@pytest.mark.parametrize("value", ["0", "false", "no"])
def test_msht_dev_off_still_refuses(production_env: pytest.MonkeyPatch, value: str) -> None:
    production_env.setenv("MSHT_DEV", value)
    with pytest.raises(PrincipalNotConfiguredError):
        load_settings()


@pytest.mark.parametrize("servers", ["kafka.example:9094", "127.0.0.1:9092,10.0.0.5:9092"])
def test_a_development_run_against_a_remote_broker_is_refused(
    production_env: pytest.MonkeyPatch, servers: str
) -> None:
    production_env.setenv("MSHT_DEV", "1")
    production_env.setenv("MSHT_BOOTSTRAP_SERVERS", servers)
    with pytest.raises(PrincipalNotConfiguredError, match="not the local broker"):
        load_settings()


@pytest.mark.parametrize("servers", ["127.0.0.1:9092", "localhost:9092", "[::1]:9092"])
def test_a_development_run_against_loopback_is_allowed(
    production_env: pytest.MonkeyPatch, servers: str
) -> None:
    production_env.setenv("MSHT_DEV", "1")
    production_env.setenv("MSHT_BOOTSTRAP_SERVERS", servers)
    assert load_settings().username == "admin"


def test_a_configured_principal_starts_without_the_development_flag(
    production_env: pytest.MonkeyPatch,
) -> None:
    production_env.setenv("MSHT_USERNAME", "router")
    assert load_settings().username == "router"


def test_the_demo_is_a_development_run_by_itself(production_env: pytest.MonkeyPatch) -> None:
    assert load_settings(dev_run=True).username == "admin"


def test_commands_that_never_connect_need_no_principal(
    production_env: pytest.MonkeyPatch,
) -> None:
    assert load_settings(principal=False).username == "admin"


def test_the_cli_refuses_with_one_line_and_exit_code_2(
    production_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["router"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("msht: error: MSHT_USERNAME is not set")
    assert "Traceback" not in err


def test_audit_verify_of_a_file_needs_no_principal(
    production_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "audit.jsonl"
    empty.write_text("")
    production_env.setenv("MSHT_STATE_DIR", str(tmp_path))
    assert main(["audit", "verify", "--from-file", str(empty)]) in (0, 1)


def test_password_is_read_from_its_file(production_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\nignored second line\n")
    production_env.setenv("MSHT_USERNAME", "router")
    production_env.setenv("MSHT_PASSWORD_FILE", str(secret))
    assert load_settings().password.get_secret_value() == "s3cret"


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_password_file_is_a_config_error(
    production_env: pytest.MonkeyPatch, tmp_path: Path, content: str | None
) -> None:
    secret = tmp_path / "password"
    if content is not None:
        secret.write_text(content)
    production_env.setenv("MSHT_USERNAME", "router")
    production_env.setenv("MSHT_PASSWORD_FILE", str(secret))
    with pytest.raises(ConfigError, match="MSHT_PASSWORD_FILE"):
        load_settings()


def test_password_and_password_file_together_are_refused(
    production_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("a\n")
    production_env.setenv("MSHT_USERNAME", "router")
    production_env.setenv("MSHT_PASSWORD", "b")
    production_env.setenv("MSHT_PASSWORD_FILE", str(secret))
    with pytest.raises(ConfigError, match="both set"):
        load_settings()


def test_key_passphrase_is_read_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("phrase\n")
    assert Settings(key_passphrase_file=secret).key_passphrase_bytes() == b"phrase"


def test_a_missing_key_passphrase_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="MSHT_KEY_PASSPHRASE_FILE"):
        Settings(key_passphrase_file=tmp_path / "nope").key_passphrase_bytes()


@pytest.mark.parametrize(
    ("variable", "closest"),
    [
        ("MSHT_USERNAM", "MSHT_USERNAME"),
        ("MSHT_BOOTSTRAP_SERVER", "MSHT_BOOTSTRAP_SERVERS"),
        ("MSHT_PASWORD_FILE", "MSHT_PASSWORD_FILE"),
        ("MSHT_METRIC_PORT", "MSHT_METRICS_PORT"),
        ("MSHT_ZZZZZZZZZZZZZZZZ", None),
    ],
)
def test_an_unknown_variable_is_reported_with_the_closest_known_one(
    variable: str, closest: str | None
) -> None:
    assert unknown_variables({variable: "x"}) == [(variable, closest)]


def test_every_settings_variable_is_known() -> None:
    env = {f"MSHT_{name.upper()}": "x" for name in Settings.model_fields}
    assert unknown_variables(env) == []


def test_the_local_broker_scripts_variables_are_not_reported() -> None:
    assert unknown_variables({"MSHT_KAFKA_PORT": "1", "PATH": "/bin"}) == []


def test_the_cli_warns_about_an_unknown_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSHT_USERNAM", "router")
    assert main(["schemas", "list"]) == 0
    err = capsys.readouterr().err
    assert "MSHT_USERNAM" in err
    assert "MSHT_USERNAME" in err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AuthenticationError("refused"), EXIT_AUTHENTICATION),
        (AuthorizationError("denied"), EXIT_AUTHENTICATION),
        (TlsError("bad certificate"), EXIT_TLS),
        (BrokerUnavailableError("no broker"), EXIT_ERROR),
        (ConfigError("bad"), EXIT_ERROR),
        (MshtError("other"), EXIT_ERROR),
    ],
)
def test_each_failure_kind_has_its_exit_code(error: MshtError, code: int) -> None:
    assert exit_code(error) == code


def test_exit_codes_are_distinct() -> None:
    assert len({EXIT_ERROR, EXIT_AUTHENTICATION, EXIT_TLS, 0, 1}) == 5


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_an_unusable_ca_file_is_one_tls_error_naming_it(
    tmp_path: Path, content: str | None
) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    settings = Settings(security_protocol="SASL_SSL", ssl_cafile=ca)
    with pytest.raises(TlsError, match=f"MSHT_SSL_CAFILE {re.escape(str(ca))}"):
        tls_context(settings)


def test_a_wrong_ca_file_ends_the_cli_with_the_tls_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSHT_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MSHT_SSL_CAFILE", str(tmp_path / "missing.pem"))
    assert main(["audit", "query", "--timeout", "1"]) == EXIT_TLS
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "msht: error: MSHT_SSL_CAFILE" in err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"msht \S+\n", capsys.readouterr().out)


def test_schemas_list_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "list", "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows
    assert set(rows[0]) == {"name", "version", "fingerprint"}


def test_audit_query_prints_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "audit.jsonl"
    empty.write_text("")
    assert main(["audit", "query", "--from-file", str(empty), "-o", "json"]) == 0
    assert capsys.readouterr().out == ""


def _every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child_name, child in action.choices.items():
                    walk(f"{name} {child_name}", child)

    walk("msht", build_parser())
    return found


def _list_commands() -> list[tuple[str, argparse.ArgumentParser]]:
    return [(n, p) for n, p in _every_parser() if n.endswith((" list", " query"))]


@pytest.mark.parametrize(("name", "parser"), _every_parser(), ids=lambda v: str(v)[:40])
def test_help_has_no_rest_markup(name: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "``" not in text, name
    assert not re.search(r":[a-z]+:`", text), name


@pytest.mark.parametrize(("name", "parser"), _list_commands(), ids=lambda v: str(v)[:40])
def test_every_list_command_offers_json_output(name: str, parser: argparse.ArgumentParser) -> None:
    [output] = [a for a in parser._actions if "-o" in a.option_strings]
    assert output.choices is not None
    assert "json" in output.choices, name
