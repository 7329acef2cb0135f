"""Signatures: what verifies, and each way verification fails with its own error."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from broker.crypto.signing import CHECKS, countersign, sign, verify, verify_bytes
from broker.crypto.signing_keys import SigningKey
from broker.errors import (
    BadSignatureError,
    ClockSkewError,
    KeyNotValidError,
    KeyRevokedError,
    NoSignatureError,
    SignerMismatchError,
    UnknownKeyError,
)
from broker.events.envelope import (
    Envelope,
    Provenance,
    build_envelope,
    encode_envelope,
    envelope_digest,
)
from tests.unit.event_keys import YEAR, agency_key, store, trusted
from tests.unit.event_samples import OCCURRED, PUBLISHED, markings, referral

NOW = PUBLISHED + timedelta(minutes=1)


def unsigned(source: str = "wyp", **overrides: object) -> Envelope:
    args: dict[str, object] = {
        "event_type": "referral.nrm",
        "source": source,
        "subject": "R-1",
        "markings": markings(),
        "payload": referral(),
        "occurred_at": OCCURRED,
        "published_at": PUBLISHED,
    }
    args.update(overrides)
    return build_envelope(**args)  # type: ignore[arg-type]


def signed(key: SigningKey, **overrides: object) -> Envelope:
    return sign(unsigned(key.agency, **overrides), key, signed_at=PUBLISHED)


def test_source_signature_verifies_with_every_check() -> None:
    key = agency_key("wyp")
    result = verify(signed(key), store(trusted(key)), now=NOW)
    assert result.signers == ("wyp",)
    assert result.checks[0].role == "origin"
    assert result.checks[0].passed == CHECKS


def test_empty_signature_list_is_refused() -> None:
    key = agency_key("wyp")
    with pytest.raises(NoSignatureError, match="empty"):
        verify(unsigned(), store(trusted(key)), now=NOW)


def test_unknown_key_is_refused() -> None:
    key = agency_key("wyp")
    with pytest.raises(UnknownKeyError, match=key.key_id):
        verify(signed(key), store(), now=NOW)


def test_key_expired_at_signing_time_is_refused() -> None:
    key = agency_key("wyp")
    entry = trusted(key, not_before=PUBLISHED - YEAR, not_after=PUBLISHED - timedelta(days=1))
    with pytest.raises(KeyNotValidError, match="expired"):
        verify(signed(key), store(entry), now=NOW)


def test_key_not_yet_valid_at_signing_time_is_refused() -> None:
    key = agency_key("wyp")
    entry = trusted(key, not_before=PUBLISHED + timedelta(days=1), not_after=None)
    with pytest.raises(KeyNotValidError, match="not yet valid"):
        verify(signed(key), store(entry), now=NOW)


def test_revoked_key_is_refused() -> None:
    key = agency_key("wyp")
    entry = trusted(key, revoked_at=PUBLISHED - timedelta(hours=1))
    with pytest.raises(KeyRevokedError, match="revoked"):
        verify(signed(key), store(entry), now=NOW)


def test_signature_made_before_revocation_still_verifies() -> None:
    key = agency_key("wyp")
    entry = trusted(key, revoked_at=PUBLISHED + timedelta(hours=1))
    assert verify(signed(key), store(entry), now=NOW + timedelta(days=2)).signers == ("wyp",)


def test_signing_for_another_source_is_refused() -> None:
    key = agency_key("wyp")
    with pytest.raises(SignerMismatchError, match="not the event's source"):
        sign(unsigned("met"), key)


def test_first_signer_other_than_source_is_refused() -> None:
    cps = agency_key("cps")
    # An envelope claiming to come from wyp but signed by cps (built by hand, as an attacker would).
    forged = sign(unsigned("cps"), cps, signed_at=PUBLISHED)
    forged = replace(forged, header=replace(forged.header, source="wyp"))  # type: ignore[arg-type]
    with pytest.raises((SignerMismatchError, BadSignatureError)):
        verify(forged, store(trusted(cps)), now=NOW)
    claimed = sign(unsigned("wyp"), agency_key("wyp"), signed_at=PUBLISHED)
    resigned = countersign(claimed, cps, signed_at=PUBLISHED)
    only_cps = replace(resigned, signatures=resigned.signatures[1:])
    with pytest.raises(SignerMismatchError, match="not the event's source"):
        verify(only_cps, store(trusted(cps)), now=NOW)


def test_key_id_naming_another_agencys_key_is_refused() -> None:
    wyp, cps = agency_key("wyp"), agency_key("cps")
    env = signed(wyp)
    sig = replace(env.signatures[0], key_id=cps.key_id)
    with pytest.raises(SignerMismatchError, match="belongs to cps"):
        verify(replace(env, signatures=(sig,)), store(trusted(wyp), trusted(cps)), now=NOW)


def test_tampered_payload_is_refused() -> None:
    key = agency_key("wyp")
    env = signed(key)
    other = unsigned(payload=referral(consent=False))
    with pytest.raises(BadSignatureError, match="does not match"):
        verify(replace(env, payload=other.payload), store(trusted(key)), now=NOW)


def test_tampered_markings_are_refused() -> None:
    key = agency_key("wyp")
    env = signed(key)
    header = replace(env.header, markings=replace(env.header.markings, tlp="CLEAR"))
    with pytest.raises(BadSignatureError):
        verify(replace(env, header=header), store(trusted(key)), now=NOW)


def test_event_from_beyond_the_clock_skew_is_refused() -> None:
    key = agency_key("wyp")
    env = signed(key)
    with pytest.raises(ClockSkewError, match="future"):
        verify(
            env,
            store(trusted(key)),
            now=PUBLISHED - timedelta(minutes=10),
            max_skew=timedelta(minutes=5),
        )


def test_event_within_the_clock_skew_verifies() -> None:
    key = agency_key("wyp")
    env = signed(key)
    result = verify(
        env,
        store(trusted(key)),
        now=PUBLISHED - timedelta(minutes=4),
        max_skew=timedelta(minutes=5),
    )
    assert result.signers == ("wyp",)


def test_rotation_old_events_verify_and_new_events_use_the_new_key() -> None:
    old, new = agency_key("wyp"), agency_key("wyp")
    switch = PUBLISHED + timedelta(days=30)
    trust = store(
        trusted(old, not_before=PUBLISHED - YEAR, not_after=switch),
        trusted(new, not_before=switch - timedelta(days=1), not_after=switch + YEAR),
    )
    before = sign(unsigned(), old, signed_at=PUBLISHED)
    later = switch + timedelta(days=5)
    after = sign(unsigned(published_at=later), new, signed_at=later)
    stale = sign(unsigned(published_at=later), old, signed_at=later)
    assert verify(before, trust, now=later).checks[0].key_id == old.key_id
    assert verify(after, trust, now=later).checks[0].key_id == new.key_id
    with pytest.raises(KeyNotValidError):
        verify(stale, trust, now=later)


def test_countersignature_covers_earlier_signatures() -> None:
    wyp, router = agency_key("wyp"), agency_key("router")
    base = unsigned()
    env = countersign(sign(base, wyp, signed_at=PUBLISHED), router, signed_at=PUBLISHED)
    trust = store(trusted(wyp), trusted(router))
    assert verify(env, trust, now=NOW).signers == ("wyp", "router")
    # Another valid origin signature over the same event, made a second later.
    other_origin = sign(base, wyp, signed_at=PUBLISHED + timedelta(seconds=1)).signatures[0]
    swapped = replace(env, signatures=(other_origin, env.signatures[1]))
    with pytest.raises(BadSignatureError, match="signature 1"):
        verify(swapped, trust, now=NOW)


def test_countersigning_an_unsigned_envelope_is_refused() -> None:
    with pytest.raises(NoSignatureError):
        countersign(unsigned(), agency_key("router"))


def test_recipient_view_is_signed_first_by_a_router() -> None:
    wyp, router, rogue = agency_key("wyp"), agency_key("router"), agency_key("met")
    original = signed(wyp)
    provenance = Provenance(
        original_digest=envelope_digest(encode_envelope(original)),
        original_signatures=original.signatures,
        recipient="cps",
        view="no-identity",
    )
    view = unsigned(provenance=provenance)
    trust = store(trusted(wyp), trusted(router), trusted(rogue), routers=("router",))
    result = verify(sign(view, router, signed_at=PUBLISHED), trust, now=NOW)
    assert result.checks[0].role == "router"
    with pytest.raises(SignerMismatchError, match="router"):
        verify(sign(view, rogue, signed_at=PUBLISHED), trust, now=NOW)


def test_verify_bytes_decodes_and_verifies() -> None:
    key = agency_key("wyp")
    env, result = verify_bytes(encode_envelope(signed(key)), store(trusted(key)), now=NOW)
    assert env.header.source == "wyp"
    assert result.signers == ("wyp",)
