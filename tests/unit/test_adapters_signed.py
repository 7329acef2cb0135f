"""The real sealer and opener: what an agency signs, a subscriber verifies and renders unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.exchange.signed import EnvelopeOpener, EnvelopeSealer
from adapters.intake.identity import derive_event_id
from adapters.protocol import CanonicalEvent
from adapters.registry import parser_for
from broker.crypto.encryption_keys import generate_encryption_keypair
from broker.crypto.keyfiles import signing_key_file as find_key_file
from broker.crypto.sealing import SealScope, seal_fields
from broker.crypto.signing_keys import generate_signing_key, public_key_bytes, save_signing_key
from broker.crypto.trust import TrustedKey, TrustStore, add_key
from broker.errors import KeyFileError, SealingError, VerificationError
from broker.types import AgencyId, PartnerId
from tests.unit.adapter_roundtrip import canonical
from tests.unit.adapter_samples import sample


def _trust(tmp_path: Path, agency: str) -> tuple[EnvelopeSealer, TrustStore]:
    key = generate_signing_key(agency)
    now = datetime.now(UTC)
    store = add_key(
        tmp_path / "trust.yaml",
        TrustedKey(
            key_id=key.key_id, agency=AgencyId(agency), use="sign", algorithm="ed25519",
            public_key=public_key_bytes(key.public_key), not_before=now - timedelta(days=1),
        ),
    )  # fmt: skip
    return EnvelopeSealer(key), store


@pytest.mark.parametrize(
    ("name", "fmt", "agency"),
    [
        ("police/nrm-referral.json", "nrm-json", "met-police"),
        ("cps/charging-decision.xml", "cps-xml", "cps"),
        ("overseas/alert-inbound.xml", "alert-xml", "ilo-nl"),
    ],
)
def test_sealed_event_opens_verified_and_renders_the_original(
    tmp_path: Path, name: str, fmt: str, agency: str
) -> None:
    sealer, trust = _trust(tmp_path, agency)
    event = canonical(name, fmt)
    event_id = derive_event_id(sealer.agency, event)
    opened = EnvelopeOpener(trust).open(sealer.seal(event, event_id))
    assert (opened.event_id, opened.source, opened.subject) == (event_id, agency, event.subject)
    assert opened.markings == event.markings
    adapter = parser_for(fmt)
    original = adapter.parse(sample(name), fmt).accepted[0].document
    assert adapter.parse(adapter.render(opened, fmt), fmt).accepted[0].document == original


def test_a_tampered_envelope_is_refused(tmp_path: Path) -> None:
    sealer, trust = _trust(tmp_path, "met-police")
    event = canonical("police/case-charge.json", "case-json")
    data = bytearray(sealer.seal(event, derive_event_id(sealer.agency, event)))
    index = bytes(data).index(b"01MP1234526")
    data[index] ^= 0x01
    with pytest.raises(VerificationError):
        EnvelopeOpener(trust).open(bytes(data))


def test_an_event_signed_by_an_unlisted_agency_is_refused(tmp_path: Path) -> None:
    _, trust = _trust(tmp_path, "met-police")
    stranger = EnvelopeSealer(generate_signing_key("met-police"))
    event = canonical("police/case-arrest.json", "case-json")
    with pytest.raises(VerificationError):
        EnvelopeOpener(trust).open(stranger.seal(event, derive_event_id(stranger.agency, event)))


def test_the_newest_key_file_of_the_agency_is_used(tmp_path: Path) -> None:
    save_signing_key(generate_signing_key("cps"), tmp_path)
    path = save_signing_key(generate_signing_key("met-police"), tmp_path)
    assert find_key_file(tmp_path, AgencyId("met-police")) == path


def test_a_missing_key_is_a_key_file_error_naming_the_agency(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="gmp"):
        find_key_file(tmp_path, AgencyId("gmp"))


def test_sealing_an_event_whose_payload_breaks_the_schema_is_an_encode_error(
    tmp_path: Path,
) -> None:
    from broker.errors import CodecError

    sealer, _ = _trust(tmp_path, "met-police")
    event = canonical("police/case-arrest.json", "case-json")
    broken = replace(event, payload={**event.payload, "update_type": "PARADE"})
    with pytest.raises(CodecError):
        sealer.seal(broken, derive_event_id(sealer.agency, broken))


def _sealed_for_cps(tmp_path: Path) -> tuple[bytes, TrustStore, X25519PrivateKey, CanonicalEvent]:
    """A referral whose victim's names were sealed for partner ``cps`` (as the router would)."""
    sealer, trust = _trust(tmp_path, "met-police")
    keypair = generate_encryption_keypair()
    event = canonical("police/nrm-referral.json", "nrm-json")
    event_id = derive_event_id(sealer.agency, event)
    sealed_payload = seal_fields(
        event.payload, ["victim.forename", "victim.surname"],
        SealScope(sealer.agency, event_id, event.event_type), PartnerId("cps"), keypair.public_key,
    )  # fmt: skip
    data = sealer.seal(replace(event, payload=sealed_payload), event_id)
    return data, trust, keypair.private_key, event


def test_fields_sealed_for_the_partner_are_opened_with_its_key(tmp_path: Path) -> None:
    data, trust, private_key, event = _sealed_for_cps(tmp_path)
    opened = EnvelopeOpener(trust, partner=PartnerId("cps"), encryption_keys=[private_key]).open(
        data
    )
    assert opened.payload["victim"]["surname"] == "Alpha"
    assert opened.payload == event.payload


def test_a_sealed_field_without_a_key_is_a_sealing_error_naming_it(tmp_path: Path) -> None:
    data, trust, _, _ = _sealed_for_cps(tmp_path)
    with pytest.raises(SealingError, match=r"victim\.forename"):
        EnvelopeOpener(trust).open(data)
