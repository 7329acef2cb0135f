"""The operator's signature on the trust store: only a store the configured operator key signed,
unaltered, is loaded; its version digest is logged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog
import structlog.testing

from adapters.exchange.signed import opener_from_settings, sealer_from_settings
from broker.cli import main
from broker.crypto.keyring import generate_agency_keys, save_operator_key, sign_trust_store
from broker.crypto.signing_keys import generate_signing_key, public_key_to_text
from broker.crypto.trust import load_trust_store
from broker.crypto.trust_signature import (
    OPERATOR,
    TRAILER,
    load_authentic_trust_store,
    parse_operator_key,
    sign_trust_text,
    split_signature,
    trust_digest,
    verify_trust_text,
)
from broker.errors import KeyFileError, TrustStoreSignatureError
from broker.policy import load_policy
from broker.router.service import run_router
from broker.settings import Settings
from broker.types import AgencyId, PartnerId

OPERATOR_KEY = generate_signing_key(OPERATOR)
OTHER_KEY = generate_signing_key(OPERATOR)


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    """A trust store with two agencies, signed by OPERATOR_KEY."""
    trust = tmp_path / "trust.yaml"
    generate_agency_keys(tmp_path / "keys", trust, "router", router=True)
    generate_agency_keys(tmp_path / "keys", trust, "wyp", operator=OPERATOR_KEY)
    return trust


def test_a_store_signed_by_the_operator_loads_with_its_digest_and_signer(signed: Path) -> None:
    loaded = load_authentic_trust_store(signed, OPERATOR_KEY.public_key)
    body, _ = split_signature(signed.read_text())
    assert loaded.digest == trust_digest(body)
    assert loaded.signer == OPERATOR_KEY.key_id
    assert loaded.store == load_trust_store(signed)


def test_an_unsigned_store_is_refused(tmp_path: Path) -> None:
    trust = tmp_path / "trust.yaml"
    generate_agency_keys(tmp_path / "keys", trust, "wyp")
    with pytest.raises(TrustStoreSignatureError, match="not signed"):
        load_authentic_trust_store(trust, OPERATOR_KEY.public_key)


def test_a_store_signed_by_another_key_is_refused(signed: Path) -> None:
    signed.write_text(sign_trust_text(signed.read_text(), OTHER_KEY))
    with pytest.raises(TrustStoreSignatureError, match=f"signed by {OTHER_KEY.key_id}"):
        load_authentic_trust_store(signed, OPERATOR_KEY.public_key)


def test_a_self_signed_store_proves_nothing(signed: Path) -> None:
    # An attacker who re-signs with their own key and claims the operator's key id still fails.
    text = sign_trust_text(signed.read_text(), OTHER_KEY).replace(
        OTHER_KEY.key_id, OPERATOR_KEY.key_id
    )
    with pytest.raises(TrustStoreSignatureError, match="altered after signing"):
        verify_trust_text(text, OPERATOR_KEY.public_key)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("router: true", "router: false"),
        lambda t: t.replace("revoked_at: null", "revoked_at: 2020-01-01T00:00:00Z", 1),
        lambda t: " " + t,
        lambda t: t.replace("\n", "\r\n", 1),
    ],
    ids=["router-flag", "revocation", "leading-space", "line-ending"],
)
def test_any_change_after_signing_is_refused(signed: Path, tamper: object) -> None:
    text = tamper(signed.read_text())  # type: ignore[operator]
    assert text != signed.read_text()
    with pytest.raises(TrustStoreSignatureError, match="altered after signing"):
        verify_trust_text(text, OPERATOR_KEY.public_key)


def test_text_added_after_the_signature_line_is_refused(signed: Path) -> None:
    text = signed.read_text() + "  evil:\n    keys: []\n"
    with pytest.raises(TrustStoreSignatureError, match="not the last line"):
        verify_trust_text(text, OPERATOR_KEY.public_key)


def test_a_malformed_signature_line_is_refused(signed: Path) -> None:
    body, _ = split_signature(signed.read_text())
    with pytest.raises(TrustStoreSignatureError, match="malformed"):
        verify_trust_text(body + TRAILER + "v1 signer=x signature=y\n", OPERATOR_KEY.public_key)


def test_without_an_operator_key_the_store_loads_and_a_warning_says_unchecked(
    tmp_path: Path,
) -> None:
    trust = tmp_path / "trust.yaml"
    generate_agency_keys(tmp_path / "keys", trust, "wyp")
    with structlog.testing.capture_logs() as logs:
        loaded = load_authentic_trust_store(trust, None)
    assert loaded.signer is None
    (entry,) = logs
    assert "MSHT_OPERATOR_KEY not set" in entry["event"]
    assert entry["digest"] == loaded.digest


def test_a_checked_load_logs_the_digest_and_the_signer(signed: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        loaded = load_authentic_trust_store(signed, OPERATOR_KEY.public_key, component="router")
    (entry,) = logs
    assert entry["event"] == "trust store loaded"
    assert (entry["digest"], entry["signer"], entry["component"]) == (
        loaded.digest, OPERATOR_KEY.key_id, "router"
    )  # fmt: skip


def test_a_change_made_with_the_operator_key_at_hand_stays_signed(signed: Path) -> None:
    generate_agency_keys(signed.parent / "keys", signed, "cps", operator=OPERATOR_KEY)
    assert load_authentic_trust_store(signed, OPERATOR_KEY.public_key).store.agencies.keys() == {
        "router", "wyp", "cps"
    }  # fmt: skip


def test_operator_key_is_read_as_text_pem_or_export_line(tmp_path: Path) -> None:
    text = public_key_to_text(OPERATOR_KEY.public_key)
    save_operator_key(tmp_path, OPERATOR_KEY)
    (pem,) = tmp_path.glob("*.pub.pem")
    export = tmp_path / "operator.txt"
    export.write_text(f"operator_public_key: {text}\n")
    for value in (text, str(pem), str(export)):
        assert parse_operator_key(value) == OPERATOR_KEY.public_key


def test_an_unusable_operator_key_setting_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="MSHT_OPERATOR_KEY"):
        parse_operator_key(str(tmp_path / "missing"))


def test_msht_trust_sign_then_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("MSHT_KEY_PASSPHRASE", "MSHT_KEY_PASSPHRASE_FILE", "MSHT_TRUST_STORE",
                "MSHT_KEY_DIR", "MSHT_OPERATOR_KEY"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path))
    assert main(["keys", "generate", "--agency", "wyp"]) == 0
    assert main(["keys", "generate", "--operator"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("MSHT_OPERATOR"))
    monkeypatch.setenv("MSHT_OPERATOR_KEY", line.split("=", 1)[1])
    assert main(["trust", "verify"]) == 2  # still unsigned
    assert main(["trust", "sign"]) == 0
    assert main(["trust", "verify"]) == 0
    assert "version sha256:" in capsys.readouterr().out


@pytest.fixture
def unsigned_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings holding the operator key, over a trust store nobody signed."""
    for var in ("MSHT_KEY_PASSPHRASE", "MSHT_KEY_PASSPHRASE_FILE", "MSHT_TRUST_STORE",
                "MSHT_KEY_DIR"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MSHT_OPERATOR_KEY", public_key_to_text(OPERATOR_KEY.public_key))
    monkeypatch.setenv("MSHT_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # refused before any Kafka
    generate_agency_keys(tmp_path / "keys", tmp_path / "trust.yaml", "router", router=True)
    generate_agency_keys(tmp_path / "keys", tmp_path / "trust.yaml", "wyp")
    return Settings()


def test_the_router_refuses_to_start_on_an_unsigned_store(unsigned_settings: Settings) -> None:
    policy = load_policy(Path(__file__).parents[2] / "deploy" / "policy.yaml")
    with pytest.raises(TrustStoreSignatureError, match="not signed"):
        asyncio.run(run_router(unsigned_settings, policy, instance="t", stop=asyncio.Event()))


def test_a_publisher_refuses_an_unsigned_store(unsigned_settings: Settings) -> None:
    with pytest.raises(TrustStoreSignatureError, match="not signed"):
        sealer_from_settings(unsigned_settings, AgencyId("wyp"))


def test_a_subscriber_refuses_an_unsigned_store(unsigned_settings: Settings) -> None:
    with pytest.raises(TrustStoreSignatureError, match="not signed"):
        opener_from_settings(unsigned_settings, PartnerId("wyp"))


def test_the_same_processes_accept_the_store_once_the_operator_signs_it(
    unsigned_settings: Settings,
) -> None:
    sign_trust_store(unsigned_settings.trust_store_path, OPERATOR_KEY)
    sealer_from_settings(unsigned_settings, AgencyId("wyp"))
    opener_from_settings(unsigned_settings, PartnerId("wyp"))
