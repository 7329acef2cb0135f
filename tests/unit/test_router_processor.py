"""The router's per-partition logic without Kafka: admit, route, audit, de-duplicate, roll back."""

from __future__ import annotations

import copy
import dataclasses
import gc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.exchange.signed import EnvelopeSealer, RouterKey
from adapters.intake.identity import derive_event_id
from adapters.protocol import CanonicalEvent
from adapters.registry import parser_for
from broker.audit import AuditChain, ChainHead, parse_record
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.sealed_fields import open_protected, record_protected_paths, scope_of
from broker.crypto.sealing import SEALED_PREFIX, is_sealed
from broker.crypto.signing import sign, verify
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import load_trust_store
from broker.errors import CodecError, VerificationError
from broker.events import codec
from broker.events.envelope import (
    Envelope,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
)
from broker.events.schemas import SchemaVersion, registry
from broker.kafka.partitioner import default_partition
from broker.kafka.records import Incoming, Outgoing
from broker.policy import load_policy
from broker.router.processor import RouteProcessor, Topics, processor_from_state
from broker.router.restore import ChainState, DecidedIds, DedupWindow
from broker.router.route import (
    LOG_APPEND_TIME,
    Arrival,
    Decoded,
    Quarantined,
    RouteConfig,
    RouterIdentity,
    admit,
)
from broker.types import AgencyId, PartnerId, Subject
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
    return make_world(tmp_path_factory.mktemp("router"))


def make_world(root: Path) -> World:
    """:func:`world` in ``root`` (other test modules build their own)."""
    key_dir, trust_path = root / "keys", root / "trust.yaml"
    router = generate_agency_keys(key_dir, trust_path, "router", router=True)
    policy = load_policy(REPO / "deploy" / "policy.yaml")
    for party in {"met-police", "cps", *(p.id for p in policy.policy.partners)}:
        generate_agency_keys(key_dir, trust_path, party)
    assert router.encryption is not None
    assert router.signing is not None
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


def _subject_key(value: bytes) -> bytes | None:
    try:
        return decode_envelope(value).header.subject.encode()
    except CodecError:
        return None


def _admit(world: World, value: bytes, topic: str) -> Decoded | Quarantined:
    return admit(world.config, _arrival(value, topic), value, datetime.now(UTC))


def _arrival(value: bytes, topic: str) -> Arrival:
    """Where the broker puts ``value``: keyed by subject, one partition, stamped now."""
    appended = int(datetime.now(UTC).timestamp() * 1000)
    return Arrival(topic, 0, 1, _subject_key(value), appended, LOG_APPEND_TIME)


def _incoming(value: bytes, topic: str = "ingress.met-police", offset: int = 0) -> Incoming:
    """``value`` as the broker delivers it: keyed by subject, one partition, stamped now."""
    appended = int(datetime.now(UTC).timestamp() * 1000)
    return Incoming(topic, 0, offset, _subject_key(value), value, appended, LOG_APPEND_TIME, 1)


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
    # The payload bytes are covered by the commitment root the source signed (#20).
    assert dict(quarantined.headers)["msht-reason"] in (
        b"unverified",
        b"undecodable",
        b"bad-commitment",
    )


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


# --- trusted time, placement and one decision per event id (issue 13, defects 3 and 4) ---


def _placed(value: bytes, *, partition: int, partitions: int, offset: int = 0) -> Incoming:
    record = _incoming(value, offset=offset)
    return dataclasses.replace(record, partition=partition, partitions=partitions)


def _reason_of(out: Sequence[Outgoing]) -> bytes:
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    return dict(quarantined.headers)["msht-reason"]


def _error_of(out: Sequence[Outgoing]) -> str:
    [quarantined] = [o for o in out if o.topic == "quarantine"]
    return dict(quarantined.headers)["msht-error"].decode()


def test_record_stamped_with_create_time_is_quarantined_as_untrusted_time(world: World) -> None:
    record = dataclasses.replace(_incoming(_sealed(world.police, _charge())), timestamp_type=0)
    out = _processor(world).process(record)
    assert _reason_of(out) == b"untrusted-time"
    assert not [o for o in out if o.topic.startswith("deliver.")]


def test_event_signed_long_before_the_broker_appended_it_is_quarantined(world: World) -> None:
    record = _incoming(_sealed(world.police, _charge()))
    late = record.timestamp_ms + int(timedelta(hours=2).total_seconds() * 1000)
    out = _processor(world).process(dataclasses.replace(record, timestamp_ms=late))
    assert _reason_of(out) == b"unverified"
    assert "before the broker's append time" in _error_of(out)


@pytest.mark.parametrize("key", [None, b"", b"another-subject"], ids=["none", "empty", "other"])
def test_record_not_keyed_by_its_subject_is_quarantined(world: World, key: bytes | None) -> None:
    record = dataclasses.replace(_incoming(_sealed(world.police, _charge())), key=key)
    assert _reason_of(_processor(world).process(record)) == b"wrong-key"


@pytest.mark.parametrize("partitions", [2, 3, 7])
def test_only_the_partition_murmur2_gives_the_subject_is_accepted(
    world: World, partitions: int
) -> None:
    event = _charge()
    value = _sealed(world.police, event)
    wanted = default_partition(event.subject.encode(), partitions)
    for partition in range(partitions):
        out = _processor(world).process(_placed(value, partition=partition, partitions=partitions))
        if partition == wanted:
            assert any(o.topic.startswith("deliver.") for o in out)
        else:
            assert _reason_of(out) == b"wrong-partition"
            assert f"puts its subject on partition {wanted}" in _error_of(out)


def test_same_id_with_different_content_is_quarantined_as_conflicting(world: World) -> None:
    processor = _processor(world)
    event = _charge()
    event_id = derive_event_id(world.police.agency, event)
    processor.process(_incoming(world.police.seal(event, event_id), offset=0))
    altered = dataclasses.replace(event, markings={**event.markings, "tlp": "GREEN"})
    out = processor.process(_incoming(world.police.seal(altered, event_id), offset=1))
    assert _reason_of(out) == b"conflicting-duplicate"
    assert not [o for o in out if o.topic.startswith("deliver.")]
    record = parse_record(next(o.value for o in out if o.topic == "audit"))
    assert (record.kind, record.event_id) == ("quarantine", event_id)


def test_same_id_with_a_different_payload_is_quarantined_as_conflicting(world: World) -> None:
    processor = _processor(world)
    event = _charge()
    event_id = derive_event_id(world.police.agency, event)
    processor.process(_incoming(world.police.seal(event, event_id), offset=0))
    altered = dataclasses.replace(event, payload={**event.payload, "court": "Another Court"})
    out = processor.process(_incoming(world.police.seal(altered, event_id), offset=1))
    assert _reason_of(out) == b"conflicting-duplicate"


def test_same_document_sealed_and_signed_again_is_a_duplicate_not_a_conflict(
    world: World,
) -> None:
    # A publisher re-sending after a crash seals afresh (new nonces) and signs anew.
    processor = _processor(world)
    event = _charge()
    first, again = _sealed(world.police, event), _sealed(world.police, event)
    assert first != again
    processor.process(_incoming(first, offset=0))
    out = processor.process(_incoming(again, offset=1))
    assert [o.topic for o in out] == ["audit"]
    assert parse_record(out[0].value).kind == "duplicate"


def test_decision_record_carries_the_content_digest(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    record = parse_record(out[-1].value)
    assert record.kind == "decision"
    assert record.content_digest is not None
    assert len(record.content_digest) == 64


def test_conflict_is_caught_after_a_restart_from_the_audit_records(world: World) -> None:
    event = _charge()
    event_id = derive_event_id(world.police.agency, event)
    first = _processor(world).process(_incoming(world.police.seal(event, event_id)))
    decision = parse_record(first[-1].value)
    assert decision.content_digest is not None
    state = ChainState(
        head=ChainHead(decision.chain, decision.seq + 1, decision.digest),
        decided=[event_id],
        digests={event_id: decision.content_digest},
    )
    restarted = processor_from_state(
        world.config, TOPICS, state, instance="unit", window=10, signer=None
    )
    altered = dataclasses.replace(event, markings={**event.markings, "tlp": "GREEN"})
    out = restarted.process(_incoming(world.police.seal(altered, event_id), offset=1))
    assert _reason_of(out) == b"conflicting-duplicate"


def _partition_processor(world: World, partition: int, decided: DecidedIds) -> RouteProcessor:
    chain = AuditChain(ChainHead.genesis(f"ingress.met-police/{partition}"), router="unit")
    return RouteProcessor(world.config, TOPICS, chain, DedupWindow(100), decided=decided)


def _subjects_on_two_partitions(event: CanonicalEvent) -> tuple[CanonicalEvent, CanonicalEvent]:
    """``event`` and a copy under another subject that murmur2 puts on the other partition."""
    first = default_partition(event.subject.encode(), 2)
    for n in range(100):
        other = dataclasses.replace(event, subject=Subject(f"{event.subject}-{n}"))
        if default_partition(other.subject.encode(), 2) != first:
            return event, other
    raise AssertionError("no subject found for the other partition")


def test_an_id_reused_under_another_subject_on_another_partition_is_quarantined(
    world: World,
) -> None:
    decided = DecidedIds()
    event, moved = _subjects_on_two_partitions(_charge())
    event_id = derive_event_id(world.police.agency, event)
    p_first = default_partition(event.subject.encode(), 2)
    processors = {p: _partition_processor(world, p, decided) for p in (0, 1)}
    out = processors[p_first].process(
        _placed(world.police.seal(event, event_id), partition=p_first, partitions=2)
    )
    assert any(o.topic.startswith("deliver.") for o in out)
    out = processors[1 - p_first].process(
        _placed(world.police.seal(moved, event_id), partition=1 - p_first, partitions=2)
    )
    assert _reason_of(out) == b"conflicting-duplicate"
    assert f"already decided on ingress.met-police/{p_first}" in _error_of(out)
    assert not [o for o in out if o.topic.startswith("deliver.")]


def test_a_rolled_back_decision_does_not_block_the_id_on_another_partition(world: World) -> None:
    decided = DecidedIds()
    event, moved = _subjects_on_two_partitions(_charge())
    event_id = derive_event_id(world.police.agency, event)
    p_first = default_partition(event.subject.encode(), 2)
    first = _partition_processor(world, p_first, decided)
    first.process(_placed(world.police.seal(event, event_id), partition=p_first, partitions=2))
    first.rolled_back()
    other = _partition_processor(world, 1 - p_first, decided)
    out = other.process(
        _placed(world.police.seal(moved, event_id), partition=1 - p_first, partitions=2)
    )
    assert any(o.topic.startswith("deliver.") for o in out)


def test_a_revoked_partitions_window_is_forgotten_with_its_processor(world: World) -> None:
    decided = DecidedIds()
    event = _charge()
    event_id = derive_event_id(world.police.agency, event)
    p = default_partition(event.subject.encode(), 2)
    gone = _partition_processor(world, p, decided)
    gone.process(_placed(world.police.seal(event, event_id), partition=p, partitions=2))
    assert decided.chain_holding(event_id, besides="x") == f"ingress.met-police/{p}"
    del gone
    gc.collect()
    assert decided.chain_holding(event_id, besides="x") is None


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
    # The demo policy lets the CPS originate no referral; here it may publish anything.
    loaded = world.config.policy
    partners = [
        p.model_copy(update={"originates": None}) if p.id == "cps" else p
        for p in loaded.policy.partners
    ]
    policy = dataclasses.replace(
        loaded, policy=loaded.policy.model_copy(update={"partners": partners})
    )
    config = dataclasses.replace(world.config, policy=policy)
    arrival = _arrival(own, "ingress.cps")
    assert isinstance(admit(config, arrival, own, datetime.now(UTC)), Decoded)


def test_another_agencys_sealed_payload_under_the_same_event_id_is_unsealable(
    world: World,
) -> None:
    police, _ = _police_referral_and_cps_copy(world)
    stolen = decode_payload(decode_envelope(police))
    transplant = _resigned(world, "cps", police, stolen)
    outcome = admit(
        world.config, _arrival(transplant, "ingress.cps"), transplant, datetime.now(UTC)
    )
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
    outcome = admit(
        world.config, _arrival(transplant, "ingress.cps"), transplant, datetime.now(UTC)
    )
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
    outcome = _admit(world, _resigned(world, "met-police", police, payload), "ingress.met-police")
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
    outcome = _admit(world, forged, "ingress.met-police")
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


# --- a Duty to Notify report is anonymous (issue 14) ----------------------------------------


def _dtn() -> CanonicalEvent:
    adapter = parser_for("dtn-json")
    doc = adapter.parse(sample("police/dtn-report.json"), "dtn-json").accepted[0].document
    return adapter.to_canonical(doc)


def test_an_anonymous_dtn_is_admitted(world: World) -> None:
    assert isinstance(_admit(world, _sealed(world.police, _dtn()), "ingress.met-police"), Decoded)


def test_a_dtn_claiming_consent_is_quarantined_as_identifying(world: World) -> None:
    event = _dtn()
    claimed = dataclasses.replace(event, payload={**event.payload, "consent": True})
    outcome = _admit(world, _sealed(world.police, claimed), "ingress.met-police")
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == "identifying-dtn"
    assert "consent: claims consent" in outcome.error
    assert "with consent, submit an NRM referral" in outcome.error


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("victim", "surname"), "Canary-Surname"),
        (("crime_reference",), "CR-CANARY"),
        (("duplicate_of",), "R-CANARY"),
        (("victim", "pnc_id"), "PNC-CANARY"),
    ],
)
def test_a_dtn_carrying_identity_or_a_linking_reference_is_quarantined(
    world: World, path: tuple[str, ...], value: str
) -> None:
    event = _dtn()
    payload: dict[str, Any] = copy.deepcopy(dict(event.payload))
    node: dict[str, Any] = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    claimed = dataclasses.replace(event, payload=payload)
    outcome = _admit(world, _sealed(world.police, claimed), "ingress.met-police")
    assert isinstance(outcome, Quarantined)
    assert outcome.reason == "identifying-dtn"
    assert ".".join(path) in outcome.error
    assert value not in outcome.error
    assert "MSA 2015 s.52(3)" in outcome.error


def test_event_type_the_source_may_not_originate_is_quarantined_as_not_permitted(
    world: World,
) -> None:
    # The CPS originates charging decisions and hearing outcomes, never a police charge.
    result = _admit(world, _sealed(world.cps, _charge()), "ingress.cps")
    assert isinstance(result, Quarantined)
    assert result.reason == "not-permitted"
    assert "cps may not publish case.charge" in result.error


def test_event_type_the_source_may_originate_is_admitted(world: World) -> None:
    assert isinstance(
        _admit(world, _sealed(world.police, _charge()), "ingress.met-police"), Decoded
    )


# --- a view says under what it was delivered (issues 14 and 15: Header v2 provenance) ------


def test_a_view_names_its_rule_agreement_lawful_basis_and_conditions(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    [cps] = [o for o in out if o.topic == "deliver.cps"]
    provenance = decode_envelope(cps.value).header.provenance
    assert provenance is not None
    agreement = world.config.policy.policy.partner(PartnerId("cps"))
    assert agreement is not None
    assert agreement.agreement is not None
    assert provenance.rule == "case-updates-to-cps"
    assert provenance.agreement == agreement.agreement.id
    assert provenance.lawful_basis == "law_enforcement"
    assert provenance.purposes == tuple(str(p) for p in agreement.agreement.purposes)
    assert provenance.retention == agreement.agreement.conditions.retention


def test_a_views_provenance_is_covered_by_the_routers_signature(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    [cps] = [o for o in out if o.topic == "deliver.cps"]
    envelope = decode_envelope(cps.value)
    assert envelope.header.provenance is not None
    forged = dataclasses.replace(
        envelope,
        header=dataclasses.replace(
            envelope.header,
            provenance=dataclasses.replace(envelope.header.provenance, lawful_basis="consent"),
        ),
    )
    verify(envelope, world.config.trust)
    with pytest.raises(VerificationError):
        verify(forged, world.config.trust)


def _uncommitted(world: World, value: bytes) -> Envelope:
    """``value`` as a publisher before commitments (#20) wrote it: no root, no proof."""
    header = dataclasses.replace(decode_envelope(value).header, commitment=None)
    key = load_signing_key(signing_key_file(world.key_dir, "met-police"), "met-police")
    return sign(Envelope(header, decode_envelope(value).payload), key, signed_at=datetime.now(UTC))


def test_an_original_written_with_envelope_v1_still_verifies_and_routes(world: World) -> None:
    v1 = registry().versions("Envelope")[0]
    old = encode_envelope(_uncommitted(world, _sealed(world.police, _charge())), writer=v1)
    assert old[2:10] == v1.fingerprint
    out = _processor(world).process(_incoming(old))
    assert sorted(o.topic for o in out) == ["audit", "deliver.cps", "deliver.nca"]


def test_an_original_written_with_envelope_v2_routes_as_an_uncommitted_view(world: World) -> None:
    # The transition (docs/EVENTS.md): an original without commitments is still routed; its
    # views carry none, and only the router's signature vouches for them.
    old = encode_envelope(_uncommitted(world, _sealed(world.police, _charge())))
    assert old[2:10] == registry().versions("Envelope")[1].fingerprint
    out = _processor(world).process(_incoming(old))
    view = decode_envelope(next(o.value for o in out if o.topic == "deliver.cps"))
    assert view.header.commitment is None
    assert view.proof is None


def test_a_committed_original_gives_committed_views(world: World) -> None:
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    view = decode_envelope(next(o.value for o in out if o.topic == "deliver.cps"))
    assert view.header.commitment is not None
    assert view.proof is not None
