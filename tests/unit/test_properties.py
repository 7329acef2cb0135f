"""Properties: arbitrary bytes raise only project errors; every bit flip fails verification."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.crypto.signing import countersign, sign, verify_bytes
from broker.crypto.signing_keys import generate_signing_key
from broker.errors import CodecError, MshtError, VerificationError
from broker.events import codec
from broker.events.envelope import build_envelope, decode_envelope, decode_payload, encode_envelope
from broker.events.schemas import registry
from tests.unit.event_keys import store, trusted
from tests.unit.event_samples import OCCURRED, PUBLISHED, markings

WYP = generate_signing_key("wyp")
ROUTER = generate_signing_key("router")
TRUST = store(trusted(WYP), trusted(ROUTER))
NOW = PUBLISHED + timedelta(minutes=1)
ENVELOPE_FP = registry().current("Envelope").fingerprint
SMALL_ALERT = {
    "alert_id": "A1",
    "direction": "INBOUND",
    "channel": "SIENA",
    "countries": ["NL"],
    "persons": [{"status": "VICTIM", "person": {"forename": "X", "gender": "FEMALE"}}],
}


def _signed_event() -> bytes:
    env = build_envelope(
        event_type="alert.inbound",
        source="wyp",
        subject="A1",
        markings=markings(),
        payload=SMALL_ALERT,
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
        event_id="e1",
    )
    return encode_envelope(
        countersign(sign(env, WYP, signed_at=PUBLISHED), ROUTER, signed_at=PUBLISHED)
    )


SIGNED = _signed_event()


@given(st.binary(max_size=512))
def test_decoding_arbitrary_bytes_raises_only_codec_errors(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        codec.decode(data)


@given(st.binary(max_size=512))
def test_verifying_arbitrary_bytes_raises_only_project_errors(data: bytes) -> None:
    with contextlib.suppress(CodecError, VerificationError):
        verify_bytes(data, TRUST, now=NOW)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1024))
def test_arbitrary_envelope_bodies_raise_only_project_errors(body: bytes) -> None:
    data = b"\xc3\x01" + ENVELOPE_FP + body
    try:
        env = decode_envelope(data)
        decode_payload(env)
        verify_bytes(data, TRUST, now=NOW)
    except MshtError:
        pass


@given(st.data())
def test_mutated_signed_event_never_raises_a_foreign_error(data: st.DataObject) -> None:
    raw = bytearray(SIGNED)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MshtError):
        verify_bytes(bytes(raw), TRUST, now=NOW)


def test_the_unmodified_event_verifies() -> None:
    env, result = verify_bytes(SIGNED, TRUST, now=NOW)
    assert result.signers == ("wyp", "router")
    assert decode_payload(env)["alert_id"] == "A1"


def test_every_single_bit_flip_fails_verification() -> None:
    # Exhaustive: every bit of the frame, header, payload and both signatures.
    survivors = []
    for position in range(len(SIGNED) * 8):
        flipped = bytearray(SIGNED)
        flipped[position // 8] ^= 1 << (position % 8)
        try:
            verify_bytes(bytes(flipped), TRUST, now=NOW)
        except (CodecError, VerificationError):
            continue
        survivors.append(position)
    assert survivors == []


@pytest.mark.parametrize("region", ["header", "payload", "signature"])
def test_bit_flips_in_each_region_fail_with_a_verification_or_codec_error(region: str) -> None:
    env, _ = verify_bytes(SIGNED, TRUST, now=NOW)
    marker = {
        "header": b"e1",
        "payload": env.payload[:4],
        "signature": env.signatures[0].signature[:4],
    }[region]
    offset = SIGNED.index(marker)
    flipped = bytearray(SIGNED)
    flipped[offset] ^= 0x01
    with pytest.raises((CodecError, VerificationError)):
        verify_bytes(bytes(flipped), TRUST, now=NOW)
