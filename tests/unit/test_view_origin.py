"""A recipient verifies the originating agency's own signature from its view alone (#20).

The router builds real views (broker/router/route.py) from events a real publisher sealed and
committed (adapters/exchange/signed.py); a recipient checks them with
broker/crypto/view_check.py. A router that alters what it delivers, even re-signing the view
with its own key, is caught by the originator's commitments.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.exchange.signed import EnvelopeOpener
from adapters.protocol import CanonicalEvent
from adapters.rendering.subscriber import Subscriber
from broker.cli import main
from broker.crypto.commitments import MASK, leaf_set, present_slots
from broker.crypto.committed import check_committed, writer_of
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.sealed_fields import (
    open_protected,
    open_protected_salted,
    scope_of,
)
from broker.crypto.sealing import RecipientSealer, is_sealed
from broker.crypto.signing import sign
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.view_check import ORIGINATOR_AND_ROUTER, check_view
from broker.errors import BadSignatureError, CommitmentError
from broker.events import codec
from broker.events.envelope import Envelope, decode_envelope, decode_payload, encode_envelope
from broker.events.paths import Step
from broker.events.proof import Withheld
from broker.router.route import BAD_COMMITMENT, LOG_APPEND_TIME, Arrival, Quarantined, admit
from broker.settings import Settings
from broker.types import PartnerId
from tests.unit.adapter_fakes import FakeConsumer
from tests.unit.test_router_processor import (
    World,
    _charge,
    _incoming,
    _processor,
    _referral,
    _sealed,
    make_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Keys for the router and every party, and the demo policy."""
    return make_world(tmp_path_factory.mktemp("origin"))


def _keys(world: World, partner: str) -> list[X25519PrivateKey]:
    return [load_private_key(p).private_key for p in encryption_key_files(world.key_dir, partner)]


def _views(world: World, value: bytes) -> dict[str, bytes]:
    out = _processor(world).process(_incoming(value))
    return {
        o.topic.removeprefix("deliver."): o.value for o in out if o.topic.startswith("deliver.")
    }


def _check(world: World, partner: str, view: bytes) -> Any:
    return check_view(
        view, world.config.trust, partner=PartnerId(partner), keys=_keys(world, partner)
    )


def _resigned(world: World, envelope: Envelope) -> bytes:
    """``envelope`` signed again by the router: what a dishonest router could deliver."""
    bare = dataclasses.replace(envelope, signatures=())
    return encode_envelope(sign(bare, world.config.identity.signing_key), check=False)


def _official_referral() -> CanonicalEvent:
    """The sample referral marked OFFICIAL: the support provider gets it, fields removed."""
    event = _referral()
    return dataclasses.replace(event, markings={**event.markings, "classification": "OFFICIAL"})


@pytest.mark.parametrize(
    "event", [_charge, _referral, _official_referral], ids=["charge", "referral", "official"]
)
def test_every_view_verifies_against_the_originating_agencys_signature(
    world: World, event: Any
) -> None:
    views = _views(world, _sealed(world.police, event()))
    assert views
    for partner, view in views.items():
        checked = _check(world, partner, view)
        assert checked.verification.result == ORIGINATOR_AND_ROUTER, partner
        assert checked.verification.originator == "met-police"
        assert checked.verification.disclosed > 0


def test_a_view_never_carries_the_salt_of_a_value_it_withholds(world: World) -> None:
    value = _sealed(world.police, _official_referral())
    original = decode_envelope(value)
    router = PartnerId(world.config.identity.agency)
    plain = open_protected(decode_payload(original), scope_of(original.header), router,
                           world.config.identity.encryption_keys)  # fmt: skip
    version = writer_of(original)
    had = {p.index: p for p in present_slots(leaf_set(version), plain) if p.value is not None}
    withheld = 0
    for partner, view in _views(world, value).items():
        envelope = decode_envelope(view)
        payload, salts, unsalted = open_protected_salted(
            decode_payload(envelope), scope_of(envelope.header), PartnerId(partner),
            _keys(world, partner),
        )  # fmt: skip
        opening = check_committed(envelope, payload, salts, original=False, unsalted=unsalted)
        shown = {p.index: p.value for p in present_slots(leaf_set(version), payload)}
        for index in had:
            if shown.get(index) in (None, MASK):
                withheld += 1
                assert index not in opening.salts, (partner, had[index].where)
    assert withheld > 10  # the support provider's view removes references, narrative ...


def _first_disclosed(envelope: Envelope, payload: dict[str, Any]) -> tuple[Step, ...]:
    version = writer_of(envelope)
    for p in present_slots(leaf_set(version), payload):
        if isinstance(p.value, str) and p.value not in (MASK,) and not is_sealed(p.value):
            return p.steps
    raise AssertionError("no disclosed string")


def _set(payload: dict[str, Any], steps: tuple[Step, ...], value: Any) -> None:
    node: Any = payload
    for _kind, key in steps[:-1]:
        node = node[key]
    node[steps[-1][1]] = value


def _with_payload(envelope: Envelope, payload: dict[str, Any]) -> Envelope:
    version = writer_of(envelope)
    return dataclasses.replace(envelope, payload=codec.encode_body(version, payload, check=False))


def test_a_router_that_alters_a_disclosed_value_is_caught_by_the_originators_root(
    world: World,
) -> None:
    partner, view = next(iter(_views(world, _sealed(world.police, _charge())).items()))
    envelope = decode_envelope(view)
    payload = decode_payload(envelope)
    steps = _first_disclosed(envelope, payload)
    _set(payload, steps, "altered")
    forged = _resigned(world, _with_payload(envelope, payload))
    with pytest.raises(CommitmentError, match="do not reproduce the signed commitment root"):
        _check(world, partner, forged)


def test_a_router_that_alters_a_sealed_value_is_caught(world: World) -> None:
    views = _views(world, _sealed(world.police, _referral()))
    partner, view = next((p, v) for p, v in views.items() if b"msht-sealed:v3:" in v)
    envelope = decode_envelope(view)
    keys = _keys(world, partner)
    opened = open_protected(decode_payload(envelope), scope_of(envelope.header), PartnerId(partner),
                            keys)  # fmt: skip
    sealed_steps = next(
        p.steps
        for p in present_slots(leaf_set(writer_of(envelope)), decode_payload(envelope))
        if is_sealed(p.value)
    )
    _set(opened, sealed_steps, "someone else")
    public = keys[0].public_key()
    sealer = RecipientSealer(scope_of(envelope.header), PartnerId(partner), public)
    resealed = decode_payload(envelope)
    _set(resealed, sealed_steps, sealer.seal(sealed_steps, "someone else", bytes(16)))
    forged = _resigned(world, _with_payload(envelope, resealed))
    with pytest.raises(CommitmentError, match="do not reproduce the signed commitment root"):
        _check(world, partner, forged)


def test_a_salt_of_the_wrong_length_inside_a_sealed_value_is_refused_naming_the_field(
    world: World,
) -> None:
    views = _views(world, _sealed(world.police, _referral()))
    partner, view = next((p, v) for p, v in views.items() if b"msht-sealed:v3:" in v)
    envelope = decode_envelope(view)
    keys = _keys(world, partner)
    payload = decode_payload(envelope)
    place = next(
        p for p in present_slots(leaf_set(writer_of(envelope)), payload) if is_sealed(p.value)
    )
    opened = open_protected(payload, scope_of(envelope.header), PartnerId(partner), keys)
    value: Any = opened
    for _kind, key in place.steps:
        value = value[key]
    sealer = RecipientSealer(scope_of(envelope.header), PartnerId(partner), keys[0].public_key())
    _set(payload, place.steps, sealer.seal(place.steps, value, bytes(15)))
    forged = _resigned(world, _with_payload(envelope, payload))
    with pytest.raises(CommitmentError, match=rf"{place.where}: a salt of 15 bytes, not 16"):
        _check(world, partner, forged)


def test_a_proof_that_does_not_fit_the_schemas_leaf_set_is_refused(world: World) -> None:
    partner, view = next(iter(_views(world, _sealed(world.police, _charge())).items()))
    envelope = decode_envelope(view)
    assert envelope.proof is not None
    last = envelope.proof[-1]
    assert isinstance(last, Withheld)
    shorter = (*envelope.proof[:-1], Withheld(last.size - 1, last.hash))
    forged = _resigned(world, dataclasses.replace(envelope, proof=shorter))
    with pytest.raises(CommitmentError, match="proof"):
        _check(world, partner, forged)


def test_a_view_whose_originator_signature_was_altered_is_refused(world: World) -> None:
    partner, view = next(iter(_views(world, _sealed(world.police, _charge())).items()))
    envelope = decode_envelope(view)
    provenance = envelope.header.provenance
    assert provenance is not None
    sig = provenance.original_signatures[0]
    bad = dataclasses.replace(sig, signature=bytes(64))
    header = dataclasses.replace(
        envelope.header,
        provenance=dataclasses.replace(provenance, original_signatures=(bad,)),
    )
    forged = _resigned(world, dataclasses.replace(envelope, header=header))
    with pytest.raises(BadSignatureError, match=r"original|signature 0"):
        _check(world, partner, forged)


# --- the subscriber, its evidence, and `msht verify` -----------------------------------------


async def _subscribe(world: World, partner: str, values: list[bytes], root: Path) -> Subscriber:
    opener = EnvelopeOpener(
        world.config.trust, partner=PartnerId(partner), encryption_keys=_keys(world, partner)
    )
    settings = Settings(state_dir=root, delivery_prefix="deliver.")
    consumer = FakeConsumer(f"deliver.{partner}", values)
    sub = Subscriber(settings, PartnerId(partner), opener, consumer, family="cps",
                     outbox=root / "outbox", evidence=root / "evidence")  # fmt: skip
    await sub.run(max_events=len(values))
    return sub


async def test_the_subscriber_says_it_verified_the_originator_and_keeps_the_evidence(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    view = _views(world, _sealed(world.police, _charge()))["cps"]
    sub = await _subscribe(world, "cps", [view], tmp_path)
    [rendered] = sub.report.rendered
    assert rendered.verified == ORIGINATOR_AND_ROUTER
    folder = tmp_path / "evidence" / "cps"
    record = json.loads((folder / f"{rendered.event_id}.verification.json").read_text())
    assert record["result"] == ORIGINATOR_AND_ROUTER
    assert record["originator"] == "met-police"
    assert record["originator_key_id"].startswith("ed25519:")
    assert len(bytes.fromhex(record["commitment_root"])) == 32
    assert record["router"] == "router"
    assert record["document"] == str(rendered.path)
    # Later, from the saved view alone: `msht verify`.
    monkeypatch.setenv("MSHT_KEY_DIR", str(world.key_dir))
    monkeypatch.delenv("MSHT_OPERATOR_KEY", raising=False)
    saved = folder / f"{rendered.event_id}.view"
    trust = world.key_dir.parent / "trust.yaml"
    args = ["verify", str(saved), "--partner", "cps", "--trust", str(trust)]
    capsys.readouterr()  # what the subscriber logged
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["result"] == ORIGINATOR_AND_ROUTER
    # As of a date before it was signed, it does not verify.
    assert main([*args, "--as-of", "2020-01-01"]) == 1
    assert "NOT VERIFIED" in capsys.readouterr().err


async def test_a_view_the_originators_root_refuses_is_failed_and_kept(
    world: World, tmp_path: Path
) -> None:
    view = _views(world, _sealed(world.police, _charge()))["cps"]
    envelope = decode_envelope(view)
    payload = decode_payload(envelope)
    _set(payload, _first_disclosed(envelope, payload), "altered")
    forged = _resigned(world, _with_payload(envelope, payload))
    sub = await _subscribe(world, "cps", [forged], tmp_path)
    [failed] = sub.report.failed
    assert failed.reason.startswith("CommitmentError: ")
    assert "commitment root" in failed.reason
    kept = tmp_path / "outbox" / "cps" / "_failed" / "deliver.cps-0-0.view"
    assert kept.read_bytes() == forged


# --- the router refuses an original whose commitments do not match -------------------------


def _police_resigned(world: World, envelope: Envelope) -> bytes:
    key = load_signing_key(signing_key_file(world.key_dir, "met-police"), "met-police")
    bare = dataclasses.replace(envelope, signatures=())
    return encode_envelope(sign(bare, key, signed_at=datetime.now(UTC)), check=False)


def _admitted(world: World, value: bytes) -> Any:
    appended = int(datetime.now(UTC).timestamp() * 1000)
    key = decode_envelope(value).header.subject.encode()
    arrival = Arrival("ingress.met-police", 0, 1, key, appended, LOG_APPEND_TIME)
    return admit(world.config, arrival, value, datetime.now(UTC))


def test_an_original_whose_payload_does_not_match_its_signed_root_is_quarantined(
    world: World,
) -> None:
    # Signed by the source itself: the signature is good, the commitments are not.
    envelope = decode_envelope(_sealed(world.police, _charge()))
    payload = decode_payload(envelope)
    payload["urn"] = payload["urn"] + "X"
    outcome = _admitted(world, _police_resigned(world, _with_payload(envelope, payload)))
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == BAD_COMMITMENT
    assert "commitment root" in outcome.error


def test_an_original_that_withholds_a_value_from_the_router_is_quarantined_naming_it(
    world: World,
) -> None:
    envelope = decode_envelope(_sealed(world.police, _charge()))
    opening_proof = list(envelope.proof or ())
    at = next(i for i, e in enumerate(opening_proof) if isinstance(e, bytes))
    opening_proof[at] = Withheld(1, bytes(32))
    forged = dataclasses.replace(envelope, proof=tuple(opening_proof))
    outcome = _admitted(world, _police_resigned(world, forged))
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == BAD_COMMITMENT
    assert "urn: an original must disclose every value to the router" in outcome.error


def test_an_original_over_an_arrays_maximum_is_quarantined_naming_the_field(
    world: World,
) -> None:
    envelope = decode_envelope(_sealed(world.police, _charge()))
    payload = decode_payload(envelope)
    payload["countries"] = ["GB"] * 11
    outcome = _admitted(world, _police_resigned(world, _with_payload(envelope, payload)))
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == BAD_COMMITMENT
    assert "countries: 11 items, over the schema's maximum of 10" in outcome.error
