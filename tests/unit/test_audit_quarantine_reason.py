"""Issue 18: the quarantine reason is kept in the signed audit record, and a replayed input's
audit record links to the quarantine record it came from."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from broker.audit import AuditChain, ChainHead, parse_record
from broker.audit.quarantine import REPLAY_HEADER
from broker.audit.verify import verify_chain
from broker.kafka.records import Incoming, Outgoing
from broker.router.processor import replay_of
from broker.types import AgencyId, EventId, Subject
from tests.unit.test_router_processor import (
    World,
    _charge,
    _incoming,
    _processor,
    _sealed,
    world,  # noqa: F401  (the module fixture)
)


def _audit_of(out: Sequence[Outgoing]) -> bytes:
    values = [o.value for o in out if o.topic == "audit"]
    assert len(values) == 1
    return values[0]


def test_quarantine_reason_is_a_member_of_the_audit_record(world: World) -> None:  # noqa: F811
    out = _processor(world).process(_incoming(b"\x00garbage"))
    record = parse_record(_audit_of(out))
    assert (record.kind, record.reason) == ("quarantine", "undecodable")


def test_every_quarantine_reason_header_matches_the_audit_member(world: World) -> None:  # noqa: F811
    value = _sealed(world.police, _charge())
    cases = [
        _incoming(b"\x00garbage"),
        _incoming(value, topic="ingress.cps"),
        _incoming(value[:-1] + bytes([value[-1] ^ 1])),
    ]
    for incoming in cases:
        out = list(_processor(world).process(incoming))
        [copy] = [o for o in out if o.topic == "quarantine"]
        record = parse_record(_audit_of(out))
        assert record.reason is not None
        assert record.reason.encode() == dict(copy.headers)["msht-reason"]


def test_decision_records_carry_no_reason(world: World) -> None:  # noqa: F811
    out = _processor(world).process(_incoming(_sealed(world.police, _charge())))
    record = parse_record(_audit_of(out))
    assert record.kind == "decision"
    assert record.reason is None
    assert "reason" not in record.body()


def test_replayed_input_audit_record_names_the_quarantine_record(world: World) -> None:  # noqa: F811
    incoming = dataclasses.replace(
        _incoming(_sealed(world.police, _charge())),
        headers=((REPLAY_HEADER, b"msht.quarantine:2:41"),),
    )
    record = parse_record(_audit_of(_processor(world).process(incoming)))
    assert (record.kind, record.replay_of) == ("decision", "msht.quarantine:2:41")


@pytest.mark.parametrize(
    "header",
    [b"", b"no-colons", b"q:x:1", b"q:1:y", b":1:2", b"\xff\xfe:1:2", b"q:1:2" + b"9" * 300],
)
def test_malformed_replay_header_is_not_copied(header: bytes) -> None:
    incoming = Incoming("t", 0, 0, None, b"", 0, 1, 1, ((REPLAY_HEADER, header),))
    assert replay_of(incoming) is None


def test_reason_and_replay_link_are_covered_by_the_digest() -> None:
    chain = AuditChain(ChainHead.genesis("c/0"), router="unit")

    record = chain.append(
        time=datetime.now(UTC),
        event_id=EventId("e1"),
        source=AgencyId("police"),
        subject=Subject("s"),
        outcomes=(),
        policy_version="v",
        kind="quarantine",
        reason="unverified",
        replay_of="q:0:1",
    )
    assert verify_chain([record.to_bytes()]).ok
    for member, forged in (("reason", "wrong-topic"), ("replay_of", "q:0:2")):
        tampered = record.to_bytes().replace(getattr(record, member).encode(), forged.encode())
        assert not verify_chain([tampered]).ok


def test_record_without_the_new_members_keeps_its_digest() -> None:
    chain = AuditChain(ChainHead.genesis("c/0"), router="unit")

    record = chain.append(
        time=datetime.now(UTC),
        event_id=EventId("e1"),
        source=AgencyId("police"),
        subject=Subject("s"),
        outcomes=(),
        policy_version="v",
    )
    body = record.body()
    assert "reason" not in body
    assert "replay_of" not in body
    assert parse_record(record.to_bytes()) == record
