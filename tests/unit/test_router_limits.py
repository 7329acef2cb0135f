"""Every input bound of the router at its edge, and what the router writes about any input.

Each bound is tested on a real sealed referral: with the bound set to exactly what the
referral measures it is admitted; with the bound one lower (the referral one over) it is
quarantined as ``over-limit`` naming that bound. Then hostile shapes with the default
bounds: whatever an input holds, each output fits a produce request and there is exactly
one audit record.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.exchange.signed import EnvelopeSealer, RouterKey
from adapters.intake.identity import derive_event_id
from adapters.registry import parser_for
from broker.audit import AuditChain, ChainHead, parse_record
from broker.crypto.keyfiles import signing_key_file
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.sealing import is_sealed
from broker.crypto.signing import countersign, verify
from broker.crypto.signing_keys import SigningKey, load_signing_key
from broker.crypto.trust import load_trust_store
from broker.errors import CodecError
from broker.events import codec
from broker.events.envelope import (
    Envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
    header_to_dict,
)
from broker.kafka.records import Incoming, Outgoing
from broker.policy import load_policy
from broker.router import processor as processor_module
from broker.router.limits import (
    ERROR_TEXT_CHARS,
    MAX_OUTPUT_BYTES,
    OVER_LIMIT,
    QUARANTINE_PREFIX_BYTES,
    InputLimits,
    input_digest,
    nesting_depth,
)
from broker.router.processor import RouteProcessor, Topics, output_size
from broker.router.restore import DedupWindow
from broker.router.route import (
    LOG_APPEND_TIME,
    Arrival,
    Decoded,
    Quarantined,
    RouteConfig,
    RouterIdentity,
    admit,
)
from broker.types import AgencyId, KeyId, Subject
from tests.unit.adapter_samples import sample

REPO = Path(__file__).resolve().parents[2]
TOPIC = "ingress.met-police"
TOPICS = Topics(audit="audit", quarantine="quarantine")


@dataclasses.dataclass(frozen=True)
class World:
    config: RouteConfig
    police: SigningKey
    referral: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Keys for the router and every party, the demo policy and one sealed referral."""
    root = tmp_path_factory.mktemp("limits")
    key_dir, trust_path = root / "keys", root / "trust.yaml"
    router = generate_agency_keys(key_dir, trust_path, "router", router=True)
    policy = load_policy(REPO / "deploy" / "policy.yaml")
    for party in {"met-police", *(p.id for p in policy.policy.partners)}:
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
    police = load_signing_key(signing_key_file(key_dir, "met-police"), "met-police")
    sealer = EnvelopeSealer(
        police, router_key=RouterKey(AgencyId("router"), router.encryption.public_key)
    )
    adapter = parser_for("nrm-json")
    doc = adapter.parse(sample("police/nrm-referral.json"), "nrm-json").accepted[0].document
    event = adapter.to_canonical(doc)
    return World(config, police, sealer.seal(event, derive_event_id(sealer.agency, event)))


def _limited(world: World, **bounds: int) -> RouteConfig:
    return dataclasses.replace(world.config, limits=InputLimits(**bounds))


def _subject_key(value: bytes) -> bytes | None:
    try:
        return decode_envelope(value).header.subject.encode()
    except CodecError:
        return None


def _arrival(value: bytes, key: bytes | None) -> Arrival:
    """Where the broker puts ``value``: keyed by its subject (unless ``key`` is given), on the
    one partition, stamped with the broker's append time now."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    chosen = key if key is not None else _subject_key(value)
    return Arrival(TOPIC, 0, 1, chosen, now_ms, LOG_APPEND_TIME)


def _admit(config: RouteConfig, value: bytes, key: bytes | None = None) -> Decoded | Quarantined:
    return admit(config, _arrival(value, key), value, datetime.now(UTC))


# --- what a referral measures, bound by bound ----------------------------------------------


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for item in node.values():
            yield from _strings(item)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _strings(item)


def _containers(node: Any) -> Iterator[int]:
    if isinstance(node, Mapping | list | tuple):
        yield len(node)
        for item in node.values() if isinstance(node, Mapping) else node:
            yield from _containers(item)


def _envelope(value: bytes) -> Envelope:
    return decode_envelope(value)


def _header_strings(value: bytes) -> int:
    envelope = _envelope(value)
    signature_strings = [s for sig in envelope.signatures for s in (sig.signer, sig.algorithm)]
    return max(len(s) for s in [*_strings(header_to_dict(envelope.header)), *signature_strings])


def _arrays(value: bytes) -> int:
    envelope = _envelope(value)
    payload = decode_payload(envelope)
    return max([*_containers(header_to_dict(envelope.header)), *_containers(payload)])


MEASURES: dict[str, tuple[str, Callable[[bytes], int]]] = {
    # The record as Kafka carries it: the subject key plus the value.
    "record-bytes": ("record_bytes", lambda value: len(value) + len(_subject_key(value) or b"")),
    "signatures": ("signatures", lambda v: len(_envelope(v).signatures)),
    "key-id-chars": ("key_id_chars", lambda v: max(len(s.key_id) for s in _envelope(v).signatures)),
    "header-string-chars": ("header_string_chars", _header_strings),
    "string-chars": (
        "string_chars",
        lambda v: max(len(s) for s in _strings(decode_payload(_envelope(v)))),
    ),
    "array-items": ("array_items", _arrays),
    "nesting-depth": ("nesting_depth", lambda v: nesting_depth(decode_payload(_envelope(v)))),
    "sealed-fields": (
        "sealed_fields",
        lambda v: sum(map(is_sealed, _strings(decode_payload(_envelope(v))))),
    ),
}


@pytest.mark.parametrize("bound", sorted(MEASURES))
def test_input_exactly_at_each_bound_is_admitted(world: World, bound: str) -> None:
    field, measure = MEASURES[bound]
    at = measure(world.referral)
    assert at > 0
    admitted = _admit(_limited(world, **{field: at}), world.referral)
    assert isinstance(admitted, Decoded), admitted


@pytest.mark.parametrize("bound", sorted(MEASURES))
def test_input_one_over_each_bound_is_quarantined_naming_it(world: World, bound: str) -> None:
    field, measure = MEASURES[bound]
    at = measure(world.referral)
    refused = _admit(_limited(world, **{field: at - 1}), world.referral)
    assert isinstance(refused, Quarantined)
    assert (refused.reason, refused.limit) == (OVER_LIMIT, bound)
    assert f"limit {bound}:" in refused.error
    assert f"is {at}, over the bound of {at - 1}" in refused.error


def test_record_size_counts_the_key(world: World) -> None:
    config = _limited(world, record_bytes=len(world.referral))
    refused = _admit(config, world.referral, key=b"k")
    assert isinstance(refused, Quarantined)
    assert refused.limit == "record-bytes"


def _countersigned(world: World, count: int) -> bytes:
    envelope = _envelope(world.referral)
    while len(envelope.signatures) < count:
        envelope = countersign(envelope, world.police)
    return encode_envelope(envelope, check=False)


def test_source_signing_twice_during_a_key_rollover_is_admitted(world: World) -> None:
    assert isinstance(_admit(world.config, _countersigned(world, 2)), Decoded)


def test_third_signature_is_over_the_signature_bound(world: World) -> None:
    refused = _admit(world.config, _countersigned(world, 3))
    assert isinstance(refused, Quarantined)
    assert refused.limit == "signatures"


def test_ingress_signature_by_another_agency_than_the_source_is_unverified(
    world: World, tmp_path: Path
) -> None:
    other = generate_agency_keys(tmp_path / "k", tmp_path / "t.yaml", "nca").signing
    assert other is not None
    envelope = countersign(_envelope(world.referral), other)
    refused = _admit(world.config, encode_envelope(envelope, check=False))
    assert isinstance(refused, Quarantined)
    assert refused.reason == "unverified"
    assert "signature 1" in refused.error


# --- verification cost ---------------------------------------------------------------------


def test_verification_encodes_the_header_and_each_signature_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix every signature re-encoded the header and all signatures before it
    (30 signatures: 30 + 435 encodings); now 1 + 30."""
    envelope = _envelope(_countersigned(world, 30))
    calls = 0
    encode_body = codec.encode_body

    def counting(*args: Any, **kwargs: Any) -> bytes:
        nonlocal calls
        calls += 1
        return encode_body(*args, **kwargs)

    monkeypatch.setattr(codec, "encode_body", counting)
    verify(envelope, world.config.trust, now=datetime.now(UTC))
    assert calls == 1 + 30


# --- what the router writes about any input ------------------------------------------------


def _processor(config: RouteConfig) -> RouteProcessor:
    chain = AuditChain(ChainHead.genesis(f"{TOPIC}/0"), router="unit")
    return RouteProcessor(config, TOPICS, chain, DedupWindow(100))


def _incoming(value: bytes, key: bytes | None = None, offset: int = 0) -> Incoming:
    a = _arrival(value, key)
    return Incoming(TOPIC, 0, offset, a.key, value, a.timestamp_ms, LOG_APPEND_TIME, 1)


def _only(out: list[Outgoing] | Any, topic: str) -> Outgoing:
    [found] = [o for o in out if o.topic == topic]
    return found


@pytest.mark.parametrize("size", [0, 1, 1_000, 512 * 1024, 512 * 1024 + 1, 1024 * 1024])
def test_any_random_input_yields_one_audit_record_and_outputs_that_fit(
    world: World, size: int
) -> None:
    out = _processor(world.config).process(_incoming(os.urandom(size), key=os.urandom(64)))
    assert [o.topic for o in out].count("audit") == 1
    assert all(output_size(o) <= MAX_OUTPUT_BYTES for o in out)


def test_oversized_input_is_quarantined_as_a_prefix_with_its_digest(world: World) -> None:
    value = os.urandom(1024 * 1024)
    out = _processor(world.config).process(_incoming(value))
    copy = _only(out, "quarantine")
    headers = dict(copy.headers)
    assert copy.value == value[:QUARANTINE_PREFIX_BYTES]
    assert headers["msht-limit"] == b"record-bytes"
    assert headers["msht-input-sha256"] == input_digest(value).encode()
    assert headers["msht-input-bytes"] == str(len(value)).encode()
    record = parse_record(_only(out, "audit").value)
    assert (record.kind, record.event_id) == ("quarantine", f"-sha256:{input_digest(value)}")


def _with_key_id(world: World, key_id: str) -> bytes:
    envelope = _envelope(world.referral)
    signature = dataclasses.replace(envelope.signatures[0], key_id=KeyId(key_id))
    return encode_envelope(dataclasses.replace(envelope, signatures=(signature,)), check=False)


def test_huge_key_id_is_over_its_bound_and_not_quoted(world: World) -> None:
    value = _with_key_id(world, "ed25519:" + "a" * 300_000)
    out = _processor(world.config).process(_incoming(value))
    headers = dict(_only(out, "quarantine").headers)
    assert headers["msht-limit"] == b"key-id-chars"
    assert len(headers["msht-error"]) < 200


def test_error_header_is_cut_to_a_fixed_length(world: World) -> None:
    """With the key-id bound lifted, the unknown-key error quotes a 600,000-character key
    id: ``msht-error`` keeps its first characters only (before: 600 KB in one header, and
    with the input copied beside it the quarantine record could never be written)."""
    config = _limited(world, key_id_chars=10**6, record_bytes=10**6)
    value = _with_key_id(world, "ed25519:" + "b" * 600_000)
    out = _processor(config).process(_incoming(value))
    headers = dict(_only(out, "quarantine").headers)
    assert headers["msht-reason"] == b"unverified"
    assert len(headers["msht-error"].decode()) == ERROR_TEXT_CHARS
    assert all(output_size(o) <= MAX_OUTPUT_BYTES for o in out)


def test_oversized_header_strings_are_not_copied_into_the_audit_record(world: World) -> None:
    """With the header bound lifted, a 200,000-character subject is refused later on: the
    audit record names the input by digest, not by its own oversized strings."""
    config = _limited(world, header_string_chars=10**6)
    envelope = _envelope(world.referral)
    header = dataclasses.replace(envelope.header, subject=Subject("s" * 200_000))
    value = encode_envelope(dataclasses.replace(envelope, header=header), check=False)
    out = _processor(config).process(_incoming(value))
    audit = _only(out, "audit")
    assert parse_record(audit.value).subject == "-"
    assert len(audit.value) < 2_000


def test_input_whose_outputs_are_too_large_is_audited_by_digest_and_undone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = _processor(world.config)
    monkeypatch.setattr(processor_module, "MAX_OUTPUT_BYTES", 2_000)
    out = processor.process(_incoming(world.referral, offset=0))
    record = parse_record(_only(out, "audit").value)
    assert (record.kind, record.seq) == ("quarantine", 0)
    assert record.event_id == f"-sha256:{input_digest(world.referral)}"
    assert dict(_only(out, "quarantine").headers)["msht-reason"] == b"unwritable"
    assert not [o for o in out if o.topic.startswith("deliver.")]
    assert processor.stats.decided == 0
    monkeypatch.setattr(processor_module, "MAX_OUTPUT_BYTES", MAX_OUTPUT_BYTES)
    again = parse_record(
        _only(processor.process(_incoming(world.referral, offset=1)), "audit").value
    )
    assert (again.kind, again.seq) == ("decision", 1)


def test_unwritable_input_yields_only_its_audit_record_by_digest(world: World) -> None:
    processor = _processor(world.config)
    out = processor.unwritable(_incoming(world.referral), "refused")
    assert [o.topic for o in out] == ["audit"]
    assert dict(out[0].headers)["msht-reason"] == b"unwritable"
    assert parse_record(out[0].value).event_id == f"-sha256:{input_digest(world.referral)}"


def _with_recipients(world: World, count: int) -> bytes:
    envelope = _envelope(world.referral)
    markings = dataclasses.replace(
        envelope.header.markings, intended_recipients=tuple(f"p{i}" for i in range(count))
    )
    header = dataclasses.replace(envelope.header, markings=markings)
    return encode_envelope(dataclasses.replace(envelope, header=header), check=False)


def test_header_array_at_the_item_bound_is_not_over_a_limit(world: World) -> None:
    admitted = _admit(world.config, _with_recipients(world, 1_000))
    assert getattr(admitted, "reason", None) != OVER_LIMIT  # (its signature then fails)


def test_header_array_one_over_the_item_bound_is_quarantined(world: World) -> None:
    refused = _admit(world.config, _with_recipients(world, 1_001))
    assert isinstance(refused, Quarantined)
    assert refused.limit == "array-items"
    assert "header.markings.intended_recipients (items) is 1001" in refused.error
