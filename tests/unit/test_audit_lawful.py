"""Audit records carry the agreement, purposes, basis, granting rule, guards and transfer
documentation, and records written before those members existed still read and verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from broker.audit import AuditChain, ChainHead, RecipientOutcome, chain_id, parse_record
from broker.audit.verify import verify_chain
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject

T0 = datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC)
CHAIN = chain_id("ingress.nca", 0)

TRANSFER: dict[str, Any] = {
    "time": "2026-11-28T05:00:00.000000Z",
    "recipient": "ilo-nl",
    "jurisdiction": "NL",
    "basis": "adequacy",
    "justification": "DPA 2018 s.74AA: adequacy regulations; joint investigation",
    "instrument": None,
    "event_type": "alert.outbound",
    "view": "full",
    "withheld": [],
    "onward_sharing": "not without consent",
}


def _record(outcome: RecipientOutcome) -> bytes:
    chain = AuditChain(ChainHead.genesis(CHAIN), router="router-a")
    record = chain.append(
        time=T0,
        event_id=EventId("ev-1"),
        source=AgencyId("nca"),
        subject=Subject("A-1"),
        outcomes=[outcome],
        policy_version="sha256:" + "ab" * 32,
        input_offset=0,
    )
    return record.to_bytes()


def test_lawful_members_survive_a_round_trip_and_the_chain_verifies() -> None:
    outcome = RecipientOutcome(
        PartnerId("ilo-nl"),
        Outcome.DELIVER,
        "outbound-alerts-nl",
        view="full",
        lawful_basis="law_enforcement",
        agreement="MOU-UK-NL",
        purposes=("investigation",),
        granting_rule="outbound-alerts-nl",
        guards=("guard:identity-abroad",),
        transfer=TRANSFER,
    )
    data = _record(outcome)
    parsed = parse_record(data)
    assert parsed.outcomes == (outcome,)
    assert parsed.to_bytes() == data
    assert verify_chain([data]).ok


def test_a_record_without_the_lawful_members_keeps_its_bytes_and_digest() -> None:
    outcome = RecipientOutcome(PartnerId("cps"), Outcome.DELIVER, "r", view="full")
    data = _record(outcome)
    members = json.loads(data)["outcomes"][0]
    assert set(members) == {"partner", "outcome", "rule", "view", "lawful_basis", "reason"}
    assert parse_record(data).to_bytes() == data


def test_a_guard_overriding_a_rule_is_recorded_with_the_rule_it_overrode() -> None:
    outcome = RecipientOutcome(
        PartnerId("cps"),
        Outcome.WITHHOLD,
        "guard:siena-h1",
        granting_rule="case-updates-to-cps",
        guards=("guard:siena-h1",),
    )
    parsed = parse_record(_record(outcome)).outcomes[0]
    assert (parsed.rule, parsed.granting_rule) == ("guard:siena-h1", "case-updates-to-cps")
