"""The router's per-event fast path gives what the plain path gave, and follows a reload.

The fast path (#19): views copy only what they withhold or seal instead of deep-copying the
payload, rule targets and view plans are computed once per loaded policy, a view's header
is encoded once for signing and sending. Here each view the router builds for many varied
referrals is compared with the view the plain construction (deep copy, uncached plan,
separate encodes) builds from the same decision, and a policy reload is shown to change
what the next events get.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from adapters.exchange.signed import EnvelopeSealer, RouterKey
from adapters.intake.pipeline import take_in
from adapters.registry import parser_for
from benchmarks.synthetic import referral_document
from broker.crypto.committed import salt_lookup, view_proof, writer_of
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.sealed_fields import open_protected, scope_of, seal_protected
from broker.crypto.signing import sign, verify
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import load_trust_store
from broker.errors import InputValidationError
from broker.events.envelope import (
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
    envelope_digest,
)
from broker.policy import PartnerDecision, decide, load_policy
from broker.policy.compiled import compiled
from broker.policy.views import apply_view
from broker.router.proofs import withheld_by
from broker.router.reload import LiveRouteConfig
from broker.router.route import (
    LOG_APPEND_TIME,
    Arrival,
    Decoded,
    RouteConfig,
    Routed,
    RouterIdentity,
    _provenance,
    admit,
    route,
)
from broker.types import AgencyId, Outcome, PartnerId
from tests.unit.test_router_reload import _reload

REPO = Path(__file__).resolve().parents[2]
POLICE = "met-police"


@dataclasses.dataclass
class World:
    config: RouteConfig
    sealer: EnvelopeSealer
    key_dir: Path
    trust_path: Path
    policy_path: Path


def _world(root: Path) -> World:
    key_dir, trust_path = root / "keys", root / "trust.yaml"
    policy_path = root / "policy.yaml"
    shutil.copy(REPO / "deploy" / "policy.yaml", policy_path)
    router = generate_agency_keys(key_dir, trust_path, "router", router=True)
    policy = load_policy(policy_path)
    for party in {POLICE, *(p.id for p in policy.policy.partners)}:
        generate_agency_keys(key_dir, trust_path, party)
    assert router.signing is not None
    assert router.encryption is not None
    config = RouteConfig(
        policy=policy,
        trust=load_trust_store(trust_path),
        identity=RouterIdentity(
            AgencyId("router"), router.signing, (router.encryption.private_key,)
        ),
        ingress_topic_of=lambda agency: f"ingress.{agency}",
        delivery_topic_of=lambda partner: f"deliver.{partner}",
        max_skew=timedelta(minutes=5),
    )
    police = load_signing_key(signing_key_file(key_dir, POLICE), POLICE)
    router_key = RouterKey(AgencyId("router"), router.encryption.public_key)
    return World(
        config, EnvelopeSealer(police, router_key=router_key), key_dir, trust_path, policy_path
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return _world(tmp_path_factory.mktemp("fastpath"))


AGES = ("adult", "child", "unknown")
CONSENTS = (True, False, None)
CLASSIFICATIONS = ("OFFICIAL", "OFFICIAL_SENSITIVE", "SECRET")


def _document(index: int) -> dict[str, Any]:
    """Referral ``index``: every combination of age, consent and classification in turn, so
    every rule and guard of the deploy policy that a referral can meet is met."""
    doc = referral_document(index, seed=19)
    doc["age"]["now"] = AGES[index % 3]
    doc["consent"]["wants_nrm"] = CONSENTS[index // 3 % 3]
    doc["handling"]["classification"] = CLASSIFICATIONS[index // 9 % 3]
    if doc["age"]["now"] == "child":
        doc["first_responder"]["local_authority_contact"] = "Children's Services Example"
    if index % 2:
        # Fewer contacts and aliases on every other one: lists of other lengths.
        doc["identity"]["contacts"] = doc["identity"]["contacts"][:1]
        doc["identity"]["aliases"] = []
    return doc


def _accepted(index: int) -> bool:
    # The police adapter refuses some combinations (an adult who does not consent is a Duty
    # to Notify report, not a referral): those never reach the router.
    data = json.dumps(_document(index)).encode()
    try:
        return bool(parser_for("nrm-json").parse(data, "nrm-json").accepted)
    except InputValidationError:
        return False


REFERRALS = [i for i in range(54) if _accepted(i)]


def _sealed(world: World, index: int) -> bytes:
    data = json.dumps(_document(index)).encode()
    intake = take_in(f"fastpath-{index}.json", data, "nrm-json", world.sealer)
    assert not intake.rejections, [r.describe() for r in intake.rejections]
    return intake.ready[0].envelope


def _admitted(config: RouteConfig, value: bytes, now: datetime) -> Decoded:
    subject = decode_envelope(value).header.subject.encode()
    arrival = Arrival(
        f"ingress.{POLICE}", 0, 1, subject, int(now.timestamp() * 1000), LOG_APPEND_TIME
    )
    admitted = admit(config, arrival, value, now)
    assert isinstance(admitted, Decoded), admitted
    return admitted


def _plain_view(
    config: RouteConfig, decoded: Decoded, original: bytes, d: PartnerDecision, now: datetime
) -> bytes:
    """The view as the router built it before #19: deep copy, separate encodes."""
    header = decoded.envelope.header
    assert d.plan is not None
    key = config.trust.current_encryption_key(d.partner, now)
    public = X25519PublicKey.from_public_bytes(key.public_key)
    opening = decoded.opening
    payload = apply_view(decoded.payload, d.plan).payload
    payload = seal_protected(
        payload,
        header.payload_schema_name,
        scope_of(header),
        d.partner,
        public,
        d.seals,
        in_place=True,
        salts=salt_lookup(opening) if opening is not None else None,
    )
    committed: dict[str, Any] = {}
    if opening is not None:
        writer = writer_of(decoded.envelope)
        committed = {
            "commitment": header.commitment,
            "proof": view_proof(opening, writer, decoded.payload, payload, withheld_by(d.plan)),
            "writer": writer,
        }
    view = build_envelope(
        event_type=header.event_type,
        source=header.source,
        subject=header.subject,
        markings=header.markings,
        payload=payload,
        occurred_at=header.occurred_at,
        published_at=header.published_at,
        event_id=header.event_id,
        payload_record=header.payload_schema_name,
        check=False,
        provenance=_provenance(config, d, envelope_digest(original), decoded),
        **committed,
    )
    return encode_envelope(sign(view, config.identity.signing_key, signed_at=now), check=False)


def _opened(world: World, partner: str, value: bytes) -> tuple[Any, dict[str, Any]]:
    """The view's header and its payload as the partner reads it (sealed fields opened)."""
    envelope = decode_envelope(value)
    keys = [load_private_key(p).private_key for p in encryption_key_files(world.key_dir, partner)]
    payload = open_protected(
        decode_payload(envelope), scope_of(envelope.header), PartnerId(partner), keys
    )
    return envelope.header, payload


def _routed(world: World, index: int, now: datetime) -> tuple[Decoded, bytes, Routed]:
    value = _sealed(world, index)
    decoded = _admitted(world.config, value, now)
    before = copy.deepcopy(decoded.payload)
    routed = route(world.config, decoded, value, now)
    # The views share what they do not change with the decoded payload: it is intact.
    assert decoded.payload == before
    return decoded, value, routed


@pytest.mark.parametrize("index", REFERRALS)
def test_every_view_equals_the_plain_construction_of_the_same_decision(
    world: World, index: int
) -> None:
    now = datetime.now(UTC)
    decoded, value, routed = _routed(world, index, now)
    decision = decide(world.config.policy, decoded.facts, now)
    granted = {d.partner: d for d in decision.partners if d.outcome is Outcome.DELIVER}
    assert {d.partner for d in routed.deliveries} == set(granted)
    for delivery in routed.deliveries:
        plain = _plain_view(world.config, decoded, value, granted[delivery.partner], now)
        fast_header, fast_payload = _opened(world, delivery.partner, delivery.value)
        plain_header, plain_payload = _opened(world, delivery.partner, plain)
        assert fast_header == plain_header
        assert fast_payload == plain_payload
        fast_envelope = decode_envelope(delivery.value)
        # The proof from per-plan withheld slots and the places sealing reported is the one
        # found by walking the original's places and the sealed view.
        assert fast_envelope.proof == decode_envelope(plain).proof
        verify(fast_envelope, world.config.trust, now=now)
        # Assembled from its parts, the view is byte for byte what encode_envelope writes.
        assert encode_envelope(fast_envelope, check=False) == delivery.value


def test_the_referrals_meet_every_kind_of_outcome(world: World) -> None:
    # Guards the test above against comparing only one kind of view.
    now = datetime.now(UTC)
    views: set[tuple[str, str | None]] = set()
    assert len(REFERRALS) >= 20
    for index in REFERRALS:
        decoded = _admitted(world.config, _sealed(world, index), now)
        for d in decide(world.config.policy, decoded.facts, now).partners:
            if d.outcome is Outcome.DELIVER:
                views.add((d.partner, d.view))
    assert ("nca", "full") in views
    assert ("salvation-army", "support") in views
    assert ("ictg", "guardian") in views


def test_decisions_do_not_depend_on_the_events_decided_before(world: World) -> None:
    # The per-policy tables are filled as events arrive: a fresh policy object (empty
    # tables) decides each event exactly as the one that has decided all the others.
    now = datetime.now(UTC)
    for index in REFERRALS[::-5]:
        decoded = _admitted(world.config, _sealed(world, index), now)
        fresh = load_policy(world.policy_path)
        assert decide(fresh, decoded.facts, now) == decide(world.config.policy, decoded.facts, now)


# --- reload ------------------------------------------------------------------------------


def _live(tmp_path: Path) -> tuple[World, LiveRouteConfig]:
    w = _world(tmp_path)
    live = LiveRouteConfig(w.config, w.policy_path, w.trust_path, None)
    return w, live


def _nca(routed: Routed) -> Any:
    return next(o for o in routed.outcomes if o.partner == "nca")


def _edit_policy(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_reloaded_view_is_planned_afresh(tmp_path: Path) -> None:
    w, live = _live(tmp_path)
    now = datetime.now(UTC)
    value = _sealed(w, 0)
    before = route(live.current(), _admitted(live.current(), value, now), value, now)
    assert _nca(before).view == "full"
    _, payload = _opened(w, "nca", next(d.value for d in before.deliveries if d.partner == "nca"))
    assert payload["victim"]["forename"] not in (None, "[withheld]")

    _edit_policy(
        w.policy_path, "deliver: {to: [nca], view: full}", "deliver: {to: [nca], view: no-identity}"
    )
    assert _reload(live)
    config = live.current()
    assert compiled(config.policy) is not compiled(before_policy := w.config.policy)
    assert before_policy is not config.policy
    after = route(config, _admitted(config, value, now), value, now)
    assert _nca(after).view == "no-identity"
    _, payload = _opened(w, "nca", next(d.value for d in after.deliveries if d.partner == "nca"))
    assert payload["victim"]["forename"] in (None, "[withheld]")


def test_a_reloaded_rule_speaks_for_the_partners_it_now_names(tmp_path: Path) -> None:
    w, live = _live(tmp_path)
    now = datetime.now(UTC)
    value = _sealed(w, 0)
    before = route(live.current(), _admitted(live.current(), value, now), value, now)
    assert _nca(before).rule == "referrals-to-nca"
    assert "nca" in {d.partner for d in before.deliveries}

    # The rule now names a group nca is not in (the police forces): no rule grants nca
    # referrals any more.
    _edit_policy(
        w.policy_path,
        "max_classification: SECRET}\n    deliver: {to: [nca], view: full}",
        "max_classification: OFFICIAL}\n    deliver: {to: [uk-police], view: full}",
    )
    assert _reload(live)
    config = live.current()
    after = route(config, _admitted(config, value, now), value, now)
    assert _nca(after).outcome is Outcome.WITHHOLD
    assert _nca(after).rule != "referrals-to-nca"
    assert "nca" not in {d.partner for d in after.deliveries}
    # The old configuration, still held by a batch in progress, decides as it did.
    again = route(w.config, _admitted(w.config, value, now), value, now)
    assert _nca(again).rule == "referrals-to-nca"
