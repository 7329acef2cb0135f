"""The router's per-partition logic without Kafka: admit, route, audit, de-duplicate, roll back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.identity import derive_event_id
from adapters.protocol import CanonicalEvent
from adapters.registry import parser_for
from adapters.signed import EnvelopeSealer, RouterKey
from broker import codec
from broker.audit import AuditChain, ChainHead, parse_record
from broker.envelope import (
    Envelope,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
)
from broker.keyfiles import encryption_key_files, signing_key_file
from broker.keyring import generate_agency_keys
from broker.keys import load_signing_key
from broker.policy import load_policy
from broker.protect import open_protected, record_protected_paths, scope_of
from broker.router.engine import Incoming
from broker.router.processor import RouteProcessor, Topics
from broker.router.restore import DedupWindow
from broker.router.route import Decoded, Quarantined, RouteConfig, RouterIdentity, admit
from broker.schemas import SchemaVersion, registry
from broker.sealing import SEALED_PREFIX, is_sealed
from broker.sealing_keys import load_private_key
from broker.signing import sign
from broker.trust import load_trust_store
from broker.types import AgencyId, PartnerId
from tests.unit.adapter_samples import sample
from tests.unit.event_samples import person
from tests.unit.test_event_types import MISMATCHES, genuine, with_payload_record

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)
TOPICS = Topics(audit="audit", quarantine="quarantine")


@dataclasses.dataclass
class World:
    config: RouteConfig
    police: EnvelopeSealer
    cps: EnvelopeSealer
    key_dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Keys for the router and every party, and the demo policy."""
    root = tmp_path_factory.mktemp("router")
    key_dir, trust_path = root / "keys", root / "trust.yaml"
    router = generate_agency_keys(key_dir, trust_path, "router", router=True)
    policy = load_policy(REPO / "deploy" / "policy.yaml")
    for party in {"met-police", "cps", *(p.id for p in policy.policy.partners)}:
        generate_agency_keys(key_dir, trust_path, party)
    assert router.encryption is not None
    identity = RouterIdentity(AgencyId("router"), router.signing, (router.encryption.private_key,))
    config = RouteConfig(
        policy=policy,
        trust=load_trust_store(trust_path),
        identity=identity,
        ingress_topic_of=lambda agency: f"ingress.{agency}",
        delivery_topic_of=lambda partner: f"deliver.{partner}",
        max_skew=timedelta(minutes=5),
    )
    router_key = RouterKey(AgencyId("router"), router.encryption.public_key)

    def sealer(agency: str) -> EnvelopeSealer:
        key = load_signing_key(signing_key_file(key_dir, agency), agency)
        return EnvelopeSealer(key, router_key=router_key)

    return World(config, sealer("met-police"), sealer("cps"), key_dir)


def _charge() -> CanonicalEvent:
    adapter = parser_for("case-json")
    doc = adapter.parse(sample("police/case-charge.json"), "case-json").accepted[0].document
    return adapter.to_canonical(doc)


def _referral() -> CanonicalEvent:
    adapter = parser_for("nrm-json")
    doc = adapter.parse(sample("police/nrm-referral.json"), "nrm-json").accepted[0].document
    return adapter.to_canonical(doc)


def _sealed(sealer: EnvelopeSealer, event: CanonicalEvent) -> bytes:
    return sealer.seal(event, derive_event_id(sealer.agency, event))


def _processor(world: World) -> RouteProcessor:
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    return RouteProcessor(world.config, TOPICS, chain, DedupWindow(100))


def _incoming(value: bytes, topic: str = "ingress.met-police", offset: int = 0) -> Incoming:
    return Incoming(topic, 0, offset, None, value, 0)


def test_charge_yields_deliveries_to_cps_and_nca_and_one_audit_record(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    assert sorted(o.topic for o in out) == ["audit", "deliver.cps", "deliver.nca"]


def test_deliveries_are_keyed_by_subject(world: World) -> None:
    event = _charge()
    out = _processor(world).process(_incoming(_sealed(world.police, event)))
    assert {o.key for o in out if o.topic.startswith("deliver.")} == {event.subject.encode()}


def test_every_tagged_field_of_a_view_is_sealed_to_its_recipient(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _referral())))
    [nca] = [o for o in out if o.topic == "deliver.nca"]
    victim = decode_payload(decode_envelope(nca.value))["victim"]
    assert is_sealed(victim["surname"])
    assert is_sealed(victim["date_of_birth"])
    assert all(is_sealed(c["value"]) for c in victim["contact_details"])


def test_recipient_opens_its_view_with_its_own_key(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _referral())))
    [nca] = [o for o in out if o.topic == "deliver.nca"]
    envelope = decode_envelope(nca.value)
    keys = [load_private_key(p).private_key for p in encryption_key_files(world.key_dir, "nca")]
    payload = open_protected(
        decode_payload(envelope), scope_of(envelope.header), PartnerId("nca"), keys
    )
    assert payload["victim"]["surname"] == "Alpha"


def test_partner_without_an_encryption_key_is_withheld_not_sent_in_clear(world: World) -> None:
    agencies = dict(world.config.trust.agencies)
    nca = agencies[AgencyId("nca")]
    agencies[AgencyId("nca")] = dataclasses.replace(
        nca, keys=tuple(k for k in nca.keys if k.use != "encrypt")
    )
    trust = dataclasses.replace(world.config.trust, agencies=agencies)
    config = dataclasses.replace(world.config, trust=trust)
    processor = dataclasses.replace(_processor(world), config=config)
    out = processor.process(_incoming(_sealed(world.police, _referral())))
    assert not [o for o in out if o.topic == "deliver.nca"]
    record = parse_record(next(o.value for o in out if o.topic == "audit"))
    [outcome] = [o for o in record.outcomes if o.partner == "nca"]
    assert outcome.outcome == "withheld"
    assert outcome.reason is not None
    assert "encryption key" in outcome.reason


def test_republished_event_is_audited_as_duplicate_and_not_delivered(world: World) -> None:
    processor = _processor(world)
    value = _sealed(world.police, _charge())
    processor.process(_incoming(value, offset=0))
    again = processor.process(_incoming(value, offset=1))
    assert [o.topic for o in again] == ["audit"]
    assert parse_record(again[0].value).kind == "duplicate"


def test_rolled_back_decision_is_made_again(world: World) -> None:
    processor = _processor(world)
    value = _sealed(world.police, _charge())
    first = processor.process(_incoming(value))
    processor.rolled_back()
    second = processor.process(_incoming(value))
    assert len(second) == len(first)
    assert parse_record(second[-1].value).seq == 0


def test_committed_records_continue_the_chain(world: World) -> None:
    processor = _processor(world)
    processor.process(_incoming(_sealed(world.police, _charge())))
    processor.committed()
    out = processor.process(_incoming(b"junk", offset=1))
    record = parse_record(out[-1].value)
    assert record.seq == 1
    assert record.kind == "quarantine"


def test_undecodable_input_is_quarantined_with_its_bytes_and_reason(world: World) -> None:
    out = _processor(world).process(_incoming(b"\x00garbage"))
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    headers = dict(quarantined.headers)
    assert quarantined.value == b"\x00garbage"
    assert headers["msht-reason"] == b"undecodable"
    assert headers["msht-offset"] == b"0"


def test_event_on_another_agencys_topic_is_quarantined(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.cps, _charge())))
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    assert dict(quarantined.headers)["msht-reason"] == b"wrong-topic"


def test_tampered_payload_is_quarantined_as_unverified(world: World) -> None:
    value = bytearray(_sealed(world.police, _charge()))
    value[-80] ^= 0x01
    out = _processor(world).process(_incoming(bytes(value)))
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    assert dict(quarantined.headers)["msht-reason"] in (b"unverified", b"undecodable")


def test_recipient_view_cannot_be_fed_back_in_as_an_original(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    view = next(o.value for o in out if o.topic == "deliver.cps")
    again = _processor(world).process(_incoming(view))
    [quarantined] = [o for o in again if o.topic == "quarantine"]
    assert dict(quarantined.headers)["msht-reason"] in (b"not-original", b"wrong-topic")


def test_audit_record_names_no_personal_data(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _referral())))
    audit = next(o.value for o in out if o.topic == "audit")
    assert b"Alpha" not in audit
    assert b"1994-02-03" not in audit


def test_protected_paths_cover_every_victim_name_and_date_of_birth() -> None:
    paths = record_protected_paths("Referral")
    assert {"victim.forename", "victim.surname", "victim.date_of_birth"} <= set(paths)
    assert "victim.contact_details[].value" in paths


def test_view_over_the_record_size_limit_is_withheld_not_sent(world: World) -> None:
    config = dataclasses.replace(world.config, max_view_bytes=1_000)
    processor = dataclasses.replace(_processor(world), config=config)
    out = processor.process(_incoming(_sealed(world.police, _referral())))
    assert [o.topic for o in out] == ["audit"]
    record = parse_record(out[0].value)
    [nca] = [o for o in record.outcomes if o.partner == "nca"]
    assert nca.outcome == "withheld"
    assert nca.reason is not None
    assert "bytes" in nca.reason


# --- ciphertext transplant (issue 13, defect 1) ---------------------------------------------


def _resigned(world: World, agency: str, value: bytes, payload: dict[str, Any]) -> bytes:
    """``value``'s event with ``payload`` (already sealed) in it, signed by ``agency``."""
    header = decode_envelope(value).header
    envelope = build_envelope(
        event_type=header.event_type,
        source=agency,
        subject=header.subject,
        markings=header.markings,
        payload=payload,
        occurred_at=header.occurred_at,
        published_at=header.published_at,
        event_id=header.event_id,
        payload_record=header.payload_schema_name,
    )
    key = load_signing_key(signing_key_file(world.key_dir, agency), agency)
    return encode_envelope(sign(envelope, key, signed_at=header.published_at))


def _police_referral_and_cps_copy(world: World) -> tuple[bytes, bytes]:
    """A police referral, and the same referral as CPS's own event under the same event id."""
    event = _referral()
    event_id = derive_event_id(world.police.agency, event)
    return world.police.seal(event, event_id), world.cps.seal(event, event_id)


def test_an_agencys_own_sealed_event_is_admitted_on_its_topic(world: World) -> None:
    _, own = _police_referral_and_cps_copy(world)
    assert isinstance(admit(world.config, "ingress.cps", own, datetime.now(UTC)), Decoded)


def test_another_agencys_sealed_payload_under_the_same_event_id_is_unsealable(
    world: World,
) -> None:
    police, _ = _police_referral_and_cps_copy(world)
    stolen = decode_payload(decode_envelope(police))
    transplant = _resigned(world, "cps", police, stolen)
    outcome = admit(world.config, "ingress.cps", transplant, datetime.now(UTC))
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == "unsealable"
    assert outcome.source == "cps"


def test_one_field_copied_from_another_agencys_event_is_unsealable(world: World) -> None:
    police, own = _police_referral_and_cps_copy(world)
    stolen = decode_payload(decode_envelope(police))["victim"]["surname"]
    payload = decode_payload(decode_envelope(own))
    assert is_sealed(stolen)
    assert is_sealed(payload["victim"]["surname"])
    payload["victim"]["surname"] = stolen
    transplant = _resigned(world, "cps", own, payload)
    outcome = admit(world.config, "ingress.cps", transplant, datetime.now(UTC))
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == "unsealable"
    assert "victim.surname" in outcome.error


def test_a_transplanted_event_yields_no_delivery_only_quarantine_and_audit(
    world: World,
) -> None:
    police, _ = _police_referral_and_cps_copy(world)
    transplant = _resigned(world, "cps", police, decode_payload(decode_envelope(police)))
    processor = RouteProcessor(
        world.config, TOPICS, AuditChain(ChainHead.genesis("ingress.cps/0"), router="unit"),
        DedupWindow(100),
    )  # fmt: skip
    out = processor.process(_incoming(transplant, topic="ingress.cps"))
    assert sorted(o.topic for o in out) == ["audit", "quarantine"]
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    assert dict(quarantined.headers)["msht-reason"] == b"unsealable"


def test_an_ingress_value_sealed_with_construction_v1_is_unsealable(world: World) -> None:
    police, _ = _police_referral_and_cps_copy(world)
    payload = decode_payload(decode_envelope(police))
    surname = payload["victim"]["surname"]
    payload["victim"]["surname"] = "msht-sealed:v1:" + surname[len(SEALED_PREFIX) :]
    outcome = admit(
        world.config,
        "ingress.met-police",
        _resigned(world, "met-police", police, payload),
        datetime.now(UTC),
    )
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == "unsealable"
    assert "victim.surname" in outcome.error
    assert "'v1'" in outcome.error


# --- event type vs payload record, envelope format (issue 13, defect 6) ----------------------


def _signed_by_police(world: World, envelope: Envelope) -> bytes:
    key = load_signing_key(signing_key_file(world.key_dir, "met-police"), "met-police")
    return encode_envelope(sign(envelope, key, signed_at=datetime.now(UTC)), check=False)


@pytest.mark.parametrize(("event_type", "version"), MISMATCHES)
def test_an_event_whose_payload_is_not_its_types_record_is_quarantined(
    world: World, event_type: str, version: SchemaVersion
) -> None:
    envelope = genuine(event_type)
    forged = _signed_by_police(world, with_payload_record(envelope, version, envelope.payload))
    outcome = admit(world.config, "ingress.met-police", forged, datetime.now(UTC))
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == "wrong-payload-type"
    assert outcome.event_id == envelope.header.event_id


def test_a_referral_carrying_a_bare_person_is_quarantined_not_delivered(world: World) -> None:
    person_v1 = registry().current("Person")
    forged = with_payload_record(
        genuine("referral.nrm"), person_v1, codec.encode_body(person_v1, person())
    )
    out = _processor(world).process(_incoming(_signed_by_police(world, forged)))
    assert sorted(o.topic for o in out) == ["audit", "quarantine"]
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    assert dict(quarantined.headers)["msht-reason"] == b"wrong-payload-type"


@pytest.mark.parametrize("version", [0, 2, 255])
def test_an_envelope_of_an_unknown_format_version_is_quarantined(
    world: World, version: int
) -> None:
    envelope = genuine("case.charge")
    header = dataclasses.replace(envelope.header, format_version=version)
    value = _signed_by_police(world, dataclasses.replace(envelope, header=header))
    out = _processor(world).process(_incoming(value))
    assert sorted(o.topic for o in out) == ["audit", "quarantine"]
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    assert dict(quarantined.headers)["msht-reason"] == b"unknown-format"
