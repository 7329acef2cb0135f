"""The audit record's ``trust_version``: written when known, covered by the digest, and
records without it (written before it existed) still read and verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from broker.audit import AuditChain, ChainHead, parse_record, verify_chain
from broker.audit.record import canonical_json
from broker.types import AgencyId, EventId, Subject

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRUST = "sha256:" + "cd" * 32


def _chain(trust_versions: list[str | None]) -> list[bytes]:
    chain = AuditChain(ChainHead.genesis("ingress.a/0"), router="unit")
    return [
        chain.append(
            time=T0,
            event_id=EventId(f"ev-{i}"),
            source=AgencyId("a"),
            subject=Subject("s"),
            outcomes=(),
            policy_version="sha256:" + "ab" * 32,
            trust_version=version,
        ).to_bytes()
        for i, version in enumerate(trust_versions)
    ]


def test_a_record_names_the_trust_version_it_was_decided_under() -> None:
    (record,) = _chain([TRUST])
    assert parse_record(record).trust_version == TRUST


def test_a_record_without_a_trust_version_has_no_such_member() -> None:
    (record,) = _chain([None])
    assert "trust_version" not in json.loads(record)
    assert parse_record(record).trust_version is None


def test_a_chain_mixing_records_with_and_without_it_verifies() -> None:
    assert verify_chain(_chain([None, TRUST, "sha256:" + "ef" * 32, None])).ok


def test_the_trust_version_is_covered_by_the_digest() -> None:
    records = _chain([TRUST, TRUST])
    document = json.loads(records[0])
    document["trust_version"] = "sha256:" + "00" * 32
    report = verify_chain([canonical_json(document), records[1]])
    assert not report.ok


def test_removing_the_trust_version_breaks_the_chain() -> None:
    records = _chain([TRUST])
    document = json.loads(records[0])
    del document["trust_version"]
    assert not verify_chain([canonical_json(document)]).ok
