"""``msht keys``: generate, rotate, revoke, list, export, import — each change all or nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.cli import main
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.key_lifecycle import KeyState, import_keys, key_state, parse_duration
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import TrustedKey, load_trust_store
from broker.errors import ConfigError, KeyFileError, TrustStoreError
from broker.types import AgencyId, KeyId


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder the settings point at, with no passphrase or operator key set."""
    for var in ("MSHT_KEY_PASSPHRASE", "MSHT_KEY_PASSPHRASE_FILE", "MSHT_OPERATOR_KEY",
                "MSHT_TRUST_STORE", "MSHT_KEY_DIR"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path))
    return tmp_path


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def test_generate_makes_a_signing_and_an_encryption_key_and_trusts_both(state: Path) -> None:
    assert main(["keys", "generate", "--agency", "router", "--router"]) == 0
    trust = load_trust_store(state / "trust.yaml")
    assert [k.use for k in trust.agencies[AgencyId("router")].keys] == ["sign", "encrypt"]
    assert trust.is_router("router")
    private = [p for p in (state / "keys").iterdir() if not p.name.endswith(".pub.pem")]
    assert sorted(p.name.split(".")[-2] for p in private) == ["ed25519", "x25519"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in private)


@pytest.mark.parametrize(("use", "suffix"), [("sign", "ed25519"), ("encrypt", "x25519")])
def test_generate_with_use_makes_only_that_key(state: Path, use: str, suffix: str) -> None:
    assert main(["keys", "generate", "--agency", "wyp", "--use", use]) == 0
    keys = load_trust_store(state / "trust.yaml").agencies[AgencyId("wyp")].keys
    assert [k.use for k in keys] == [use]
    assert all(name.split(".")[2] == suffix for name in _files(state / "keys"))


@pytest.mark.parametrize("failing_call", ["link", "replace"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, BrokenPipeError, OSError])
def test_an_interrupted_generate_leaves_nothing_behind(
    state: Path, monkeypatch: pytest.MonkeyPatch, failing_call: str, error: type[BaseException]
) -> None:
    generate_agency_keys(state / "keys", state / "trust.yaml", "cps")
    before_files = _files(state / "keys")
    before_store = (state / "trust.yaml").read_bytes()
    real = getattr(os, failing_call)
    calls = {"n": 0}

    def fail_on_second(*args: object) -> None:
        calls["n"] += 1
        if failing_call == "replace" or calls["n"] == 2:
            raise error()
        real(*args)

    monkeypatch.setattr(os, failing_call, fail_on_second)
    with pytest.raises((error, ConfigError)):
        generate_agency_keys(state / "keys", state / "trust.yaml", "wyp")
    monkeypatch.undo()
    assert _files(state / "keys") == before_files
    assert (state / "trust.yaml").read_bytes() == before_store
    assert _files(state) == ["keys", "trust.yaml"]  # no temporary file left


@pytest.mark.parametrize("reader", ["head -c1", "true"])  # true: closes before any output
def test_generate_piped_into_a_reader_that_stops_writes_everything_and_exits_cleanly(
    state: Path, reader: str
) -> None:
    env = {**os.environ, "MSHT_STATE_DIR": str(state)}
    msht = Path(sys.executable).parent / "msht"
    shell = f"{msht} keys generate --agency wyp | {reader}"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.returncode == 0, done.stderr
    keys = load_trust_store(state / "trust.yaml").agencies[AgencyId("wyp")].keys
    on_disk = {n.split(".")[1] for n in _files(state / "keys")}
    assert {k.key_id.split(":")[1][:8] for k in keys} == on_disk
    assert len(keys) == 2


def test_passphrase_from_the_environment_encrypts_the_private_keys(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSHT_KEY_PASSPHRASE", "correct horse")
    main(["keys", "generate", "--agency", "wyp"])
    signing = next((state / "keys").glob("wyp.*.ed25519.pem"))
    with pytest.raises(KeyFileError):
        load_signing_key(signing, "wyp")
    assert load_signing_key(signing, "wyp", passphrase=b"correct horse").agency == "wyp"


def test_passphrase_from_a_file_encrypts_the_private_keys(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = state / "passphrase"
    secret.write_text("from a file\n")
    monkeypatch.setenv("MSHT_KEY_PASSPHRASE_FILE", str(secret))
    main(["keys", "generate", "--agency", "wyp", "--use", "encrypt"])
    enc = next((state / "keys").glob("wyp.*.x25519.pem"))
    with pytest.raises(KeyFileError):
        load_private_key(enc)
    load_private_key(enc, passphrase=b"from a file")


def test_rotate_trusts_a_new_key_from_now_and_ends_the_old_after_the_overlap(state: Path) -> None:
    main(["keys", "generate", "--agency", "wyp"])
    before = datetime.now(UTC).replace(microsecond=0)
    assert main(["keys", "rotate", "--agency", "wyp", "--use", "sign", "--overlap", "2d"]) == 0
    old, new = load_trust_store(state / "trust.yaml").signing_keys("wyp")
    assert old.not_after is not None
    assert new.not_after is not None
    assert before + timedelta(days=2) <= old.not_after <= before + timedelta(days=2, seconds=2)
    assert before <= new.not_before <= before + timedelta(seconds=2)
    enc = load_trust_store(state / "trust.yaml").encryption_keys("wyp")
    assert len(enc) == 1
    assert enc[0].not_after is not None
    assert enc[0].not_after > before + timedelta(days=300)  # the other use is untouched
    assert len(list((state / "keys").glob("wyp.*.ed25519.pem"))) == 2


def test_revoke_records_the_time_and_the_reason(state: Path) -> None:
    main(["keys", "generate", "--agency", "wyp", "--use", "sign"])
    (key,) = load_trust_store(state / "trust.yaml").signing_keys("wyp")
    at = "2026-03-01T12:00:00Z"
    assert main(["keys", "revoke", key.key_id, "--at", at, "--reason", "laptop stolen"]) == 0
    (revoked,) = load_trust_store(state / "trust.yaml").signing_keys("wyp")
    assert revoked.revoked_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert revoked.revocation_reason == "laptop stolen"


def test_revoking_a_key_already_revoked_earlier_is_refused(state: Path) -> None:
    main(["keys", "generate", "--agency", "wyp", "--use", "sign"])
    (key,) = load_trust_store(state / "trust.yaml").signing_keys("wyp")
    main(["keys", "revoke", key.key_id, "--at", "2026-03-01T00:00:00Z", "--reason", "leak"])
    assert main(["keys", "revoke", key.key_id, "--reason", "again"]) == 2


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _key(**window: datetime | None) -> TrustedKey:
    return TrustedKey(KeyId("ed25519:" + "0" * 32), AgencyId("wyp"), "sign", "ed25519",
                      b"\0" * 32, **window)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("window", "state"),
    [
        ({"not_before": NOW - timedelta(days=1), "not_after": None}, KeyState.VALID),
        ({"not_before": NOW - timedelta(days=1), "not_after": NOW + timedelta(days=31)},
         KeyState.VALID),
        ({"not_before": NOW - timedelta(days=1), "not_after": NOW + timedelta(days=30)},
         KeyState.EXPIRING),
        ({"not_before": NOW - timedelta(days=1), "revoked_at": NOW + timedelta(days=3)},
         KeyState.EXPIRING),
        ({"not_before": NOW + timedelta(seconds=1)}, KeyState.NOT_YET_VALID),
        ({"not_before": NOW - timedelta(days=9), "not_after": NOW}, KeyState.EXPIRED),
        ({"not_before": NOW - timedelta(days=9), "not_after": NOW - timedelta(days=1),
          "revoked_at": NOW - timedelta(days=2)}, KeyState.REVOKED),
        ({"not_before": NOW - timedelta(days=9), "revoked_at": NOW}, KeyState.REVOKED),
    ],
)  # fmt: skip
def test_key_state_at_every_edge(window: dict[str, datetime], state: KeyState) -> None:
    assert key_state(_key(**window), NOW, timedelta(days=30)) is state


def test_list_as_json_gives_every_key_with_its_state(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["keys", "generate", "--agency", "wyp"])
    capsys.readouterr()
    assert main(["keys", "list", "-o", "json", "--expiring-days", "400"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["agency"], r["use"], r["state"]) for r in rows] == [
        ("wyp", "sign", "expiring"),
        ("wyp", "encrypt", "expiring"),
    ]


def test_exported_keys_import_into_another_operators_store(state: Path) -> None:
    main(["keys", "generate", "--agency", "wyp"])
    out = state / "wyp.keys.yaml"
    assert main(["keys", "export", "--agency", "wyp", "--out", str(out)]) == 0
    other = state / "other-trust.yaml"
    assert main(["keys", "import", str(out), "--trust-store", str(other)]) == 0
    assert load_trust_store(other).agencies == load_trust_store(state / "trust.yaml").agencies


def test_an_import_that_conflicts_with_a_held_key_is_refused_and_changes_nothing(
    state: Path,
) -> None:
    main(["keys", "generate", "--agency", "wyp", "--use", "sign"])
    out = state / "wyp.keys.yaml"
    main(["keys", "export", "--agency", "wyp", "--out", str(out)])
    (key,) = load_trust_store(state / "trust.yaml").signing_keys("wyp")
    main(["keys", "revoke", key.key_id, "--reason", "leak"])
    before = (state / "trust.yaml").read_bytes()
    assert main(["keys", "import", str(out)]) == 2
    assert (state / "trust.yaml").read_bytes() == before


def test_an_import_that_changes_an_agencys_router_flag_is_refused(state: Path) -> None:
    main(["keys", "generate", "--agency", "router", "--router", "--use", "sign"])
    fake = state / "fake.yaml"
    fake.write_text("version: 1\nagencies:\n  router:\n    router: false\n    keys: []\n")
    with pytest.raises(TrustStoreError, match="router=True here"):
        import_keys(state / "trust.yaml", fake)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0s", timedelta()), ("7d", timedelta(days=7)), ("1w2d", timedelta(days=9)),
     ("1d12h", timedelta(days=1, hours=12)), ("90m", timedelta(minutes=90))],
)  # fmt: skip
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "-1d", "7 days", "1.5h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(TrustStoreError, match="duration"):
        parse_duration(text)


def test_a_malformed_overlap_is_a_usage_error_not_a_traceback(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "rotate", "--agency", "wyp", "--use", "sign", "--overlap", "7 days"])
    assert exit_info.value.code == 2
    assert "use a number and a unit" in capsys.readouterr().err
