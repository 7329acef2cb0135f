"""`msht publish` refuses, before publishing anything, a signing key its trust store does not
hold as valid now (the router would quarantine every event signed with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.exchange.signed import sealer_from_settings, trusted_signing_key
from broker.cli import main
from broker.crypto.key_lifecycle import revoke_key, rotate_key
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.signing_keys import generate_signing_key, save_signing_key
from broker.crypto.trust import load_trust_store
from broker.errors import SigningKeyNotTrustedError
from broker.settings import Settings
from broker.types import AgencyId

WYP = AgencyId("wyp")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var in ("MSHT_KEY_PASSPHRASE", "MSHT_KEY_PASSPHRASE_FILE", "MSHT_OPERATOR_KEY",
                "MSHT_TRUST_STORE", "MSHT_KEY_DIR"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path))
    # Nothing may reach Kafka: a publish refused for its key fails before connecting.
    monkeypatch.setenv("MSHT_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    generate_agency_keys(tmp_path / "keys", tmp_path / "trust.yaml", "router", router=True)
    generate_agency_keys(tmp_path / "keys", tmp_path / "trust.yaml", WYP)
    return Settings()


def test_a_key_the_trust_store_holds_as_valid_seals(settings: Settings) -> None:
    (held,) = load_trust_store(settings.trust_store_path).signing_keys(WYP)
    assert sealer_from_settings(settings, WYP)._key.key_id == held.key_id


def test_a_revoked_key_is_refused_naming_the_key_and_the_revocation(settings: Settings) -> None:
    (held,) = load_trust_store(settings.trust_store_path).signing_keys(WYP)
    revoke_key(settings.trust_store_path, held.key_id, datetime.now(UTC), "leaked")
    with pytest.raises(SigningKeyNotTrustedError, match=rf"{held.key_id} is revoked .*leaked"):
        sealer_from_settings(settings, WYP)


def test_an_expired_key_is_refused(settings: Settings) -> None:
    store = load_trust_store(settings.trust_store_path)
    later = datetime.now(UTC) + timedelta(days=400)
    with pytest.raises(SigningKeyNotTrustedError, match="is expired"):
        trusted_signing_key(settings.key_dir_path, WYP, store, later)


def test_a_key_not_in_the_trust_store_is_refused(settings: Settings) -> None:
    stray = generate_signing_key(WYP)
    save_signing_key(stray, settings.key_dir_path)
    store = load_trust_store(settings.trust_store_path)
    (held,) = store.signing_keys(WYP)
    revoke_key(settings.trust_store_path, held.key_id, datetime.now(UTC), "leaked")
    with pytest.raises(SigningKeyNotTrustedError, match=f"{stray.key_id} is not in the trust"):
        sealer_from_settings(settings, WYP)


def test_another_agencys_key_is_refused(settings: Settings) -> None:
    store = load_trust_store(settings.trust_store_path)
    (router_key,) = store.signing_keys("router")
    for path in settings.key_dir_path.glob("router.*.ed25519*"):
        path.rename(path.with_name(path.name.replace("router.", "wyp.", 1)))
    for path in settings.key_dir_path.glob("wyp.*.ed25519.pem"):
        if router_key.key_id.split(":")[1][:8] not in path.name:
            path.unlink()
    with pytest.raises(SigningKeyNotTrustedError, match="listed as a sign key of router"):
        sealer_from_settings(settings, WYP)


def test_after_a_rotation_the_new_key_signs_even_while_the_old_is_still_valid(
    settings: Settings,
) -> None:
    done = rotate_key(
        settings.key_dir_path, settings.trust_store_path, WYP, "sign", timedelta(days=7)
    )
    assert sealer_from_settings(settings, WYP)._key.key_id == done.new_key_id


def test_msht_publish_with_a_revoked_key_fails_with_a_clear_message_and_publishes_nothing(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (held,) = load_trust_store(settings.trust_store_path).signing_keys(WYP)
    revoke_key(settings.trust_store_path, held.key_id, datetime.now(UTC), "leaked")
    doc = tmp_path / "x.json"
    doc.write_text("{}")
    assert main(["publish", "--agency", WYP, str(doc)]) == 2
    err = capsys.readouterr().err
    assert "no signing key that the trust store holds as valid now" in err
    assert "nothing was published" in err
