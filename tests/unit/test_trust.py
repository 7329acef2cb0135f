"""Trust store file and key files."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.cli import main
from broker.crypto.signing_keys import (
    load_signing_key,
    public_key_to_text,
    save_signing_key,
    signing_key_id,
)
from broker.crypto.trust import (
    KeyStatus,
    add_key,
    dump_trust_store,
    key_id_for,
    load_trust_store,
    parse_trust_store,
)
from broker.errors import KeyFileError, TrustStoreError, UnknownKeyError
from tests.unit.event_keys import agency_key, store, trusted
from tests.unit.event_samples import PUBLISHED


def test_trust_store_round_trips_through_yaml() -> None:
    key = agency_key("wyp")
    original = store(trusted(key, revoked_at=PUBLISHED), routers=("wyp",))
    loaded = parse_trust_store(dump_trust_store(original))
    assert loaded == original
    assert loaded.is_router("wyp")


def test_key_id_that_does_not_match_the_public_key_is_refused() -> None:
    wyp, cps = agency_key("wyp"), agency_key("cps")
    text = f"""
agencies:
  wyp:
    keys:
      - key_id: {cps.key_id}
        public_key: {public_key_to_text(wyp.public_key)}
        not_before: 2026-01-01T00:00:00Z
"""
    with pytest.raises(TrustStoreError, match=r"agencies\.wyp\.keys\[0\]\.key_id"):
        parse_trust_store(text)


def test_same_key_under_two_agencies_is_refused() -> None:
    key = agency_key("wyp")
    entry = f"""
      - key_id: {key.key_id}
        public_key: {public_key_to_text(key.public_key)}
        not_before: 2026-01-01T00:00:00Z"""
    text = f"agencies:\n  wyp:\n    keys:{entry}\n  cps:\n    keys:{entry}\n"
    with pytest.raises(TrustStoreError, match="listed twice"):
        parse_trust_store(text)


def test_expiry_before_start_is_refused() -> None:
    key = agency_key("wyp")
    text = f"""
agencies:
  wyp:
    keys:
      - key_id: {key.key_id}
        public_key: {public_key_to_text(key.public_key)}
        not_before: 2026-02-01T00:00:00Z
        not_after: 2026-01-01T00:00:00Z
"""
    with pytest.raises(TrustStoreError, match="not_after"):
        parse_trust_store(text)


def test_unknown_use_is_refused() -> None:
    key = agency_key("wyp")
    text = f"""
agencies:
  wyp:
    keys:
      - key_id: {key.key_id}
        use: decorate
        public_key: {public_key_to_text(key.public_key)}
        not_before: 2026-01-01T00:00:00Z
"""
    with pytest.raises(TrustStoreError, match="use"):
        parse_trust_store(text)


def test_malformed_yaml_is_a_trust_store_error() -> None:
    with pytest.raises(TrustStoreError, match="YAML"):
        parse_trust_store("agencies: [unclosed")


def test_unknown_key_lookup_names_the_key() -> None:
    with pytest.raises(UnknownKeyError, match="ed25519:00"):
        store().key("ed25519:00")


def test_status_follows_the_validity_window_and_revocation() -> None:
    entry = trusted(agency_key("wyp"), revoked_at=PUBLISHED + timedelta(days=1))
    assert entry.status_at(PUBLISHED) is KeyStatus.VALID
    assert entry.status_at(entry.not_before - timedelta(seconds=1)) is KeyStatus.NOT_YET_VALID
    assert entry.status_at(PUBLISHED + timedelta(days=2)) is KeyStatus.REVOKED


def test_add_key_creates_the_file(tmp_path: Path) -> None:
    key = agency_key("wyp")
    path = tmp_path / "trust.yaml"
    add_key(path, trusted(key))
    assert load_trust_store(path).key(key.key_id).agency == "wyp"


def test_key_id_is_the_documented_fingerprint() -> None:
    key = agency_key("wyp")
    raw = key.public_key.public_bytes_raw()
    assert key.key_id == "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]
    assert signing_key_id(raw) == key.key_id


def test_private_key_file_is_owner_only_and_loads(tmp_path: Path) -> None:
    key = agency_key("wyp")
    path = save_signing_key(key, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path, "wyp").key_id == key.key_id


def test_group_readable_private_key_is_refused(tmp_path: Path) -> None:
    path = save_signing_key(agency_key("wyp"), tmp_path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="readable by group"):
        load_signing_key(path, "wyp")


def test_passphrase_protected_key_needs_the_right_passphrase(tmp_path: Path) -> None:
    key = agency_key("wyp")
    path = save_signing_key(key, tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in path.read_bytes()
    assert load_signing_key(path, "wyp", passphrase=b"correct horse").key_id == key.key_id
    with pytest.raises(KeyFileError):
        load_signing_key(path, "wyp", passphrase=b"wrong")
    with pytest.raises(KeyFileError):
        load_signing_key(path, "wyp")


def test_existing_key_file_is_not_overwritten(tmp_path: Path) -> None:
    key = agency_key("wyp")
    save_signing_key(key, tmp_path)
    with pytest.raises(KeyFileError, match="already there"):
        save_signing_key(key, tmp_path)


def test_keys_generate_command_writes_key_and_trust_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PASSPHRASE", "s3cret-phrase")
    trust = tmp_path / "trust.yaml"
    code = main(
        [
            "keys",
            "generate",
            "--agency",
            "wyp",
            "--out",
            str(tmp_path / "keys"),
            "--passphrase-env",
            "TEST_PASSPHRASE",
            "--trust-store",
            str(trust),
            "--valid-days",
            "30",
        ]
    )
    assert code == 0
    (private,) = (tmp_path / "keys").glob("*.ed25519.pem")
    key = load_signing_key(private, "wyp", passphrase=b"s3cret-phrase")
    entry = load_trust_store(trust).key(key.key_id)
    assert entry.not_after is not None
    assert entry.not_after - entry.not_before == timedelta(days=30)


def _x25519_entry(not_before: str) -> str:
    """A trust-store YAML list item for a fresh X25519 encryption key."""
    raw = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"""
      - key_id: {key_id_for("x25519", raw)}
        use: encrypt
        algorithm: x25519
        public_key: {text}
        not_before: {not_before}"""


def test_encryption_keys_sit_beside_signing_keys_with_the_same_validity_fields() -> None:
    sign_key = agency_key("cps")
    text = (
        "agencies:\n  cps:\n    keys:"
        + f"""
      - key_id: {sign_key.key_id}
        public_key: {public_key_to_text(sign_key.public_key)}
        not_before: 2026-01-01T00:00:00Z"""
        + _x25519_entry("2026-01-01T00:00:00Z")
        + _x25519_entry("2026-02-01T00:00:00Z")
    )
    trust = parse_trust_store(text)
    assert [k.use for k in trust.signing_keys("cps")] == ["sign"]
    newest = trust.encryption_keys("cps")[1]
    assert trust.current_encryption_key("cps", PUBLISHED) == newest
    assert newest.key_id.startswith("x25519:")


def test_encryption_key_declared_as_ed25519_is_refused() -> None:
    entry = _x25519_entry("2026-01-01T00:00:00Z").replace("algorithm: x25519", "algorithm: ed25519")
    with pytest.raises(TrustStoreError, match="algorithm"):
        parse_trust_store("agencies:\n  cps:\n    keys:" + entry)


def test_keys_list_command_shows_each_key_and_its_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = agency_key("wyp")
    path = tmp_path / "trust.yaml"
    add_key(path, trusted(key, not_after=None))
    assert main(["keys", "list", "--trust-store", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split("\t")[:4] == ["wyp", "sign", key.key_id, "valid"]
