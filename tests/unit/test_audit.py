"""The audit trail: records are canonical, chained, verifiable without trusting the router."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit import (
    GENESIS_DIGEST,
    AuditChain,
    ChainHead,
    ChainTally,
    RecipientOutcome,
    RecordKind,
    RecordSigner,
    body_digest,
    canonical_json,
    chain_id,
    decided_event_ids,
    parse_record,
    query,
    resume_head,
    verify_chain,
)
from broker.errors import AuditChainError
from broker.types import AgencyId, EventId, KeyId, Outcome, PartnerId, Subject

T0 = datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC)
CHAIN = chain_id("ingress.met-police", 0)


def _outcomes(index: int) -> list[RecipientOutcome]:
    return [
        RecipientOutcome(PartnerId("cps"), Outcome.DELIVER, "r-cps-case-updates", view="cps-full"),
        RecipientOutcome(
            PartnerId("ilo-nl"),
            Outcome.WITHHOLD if index % 2 else Outcome.DELIVER,
            "r-overseas-alerts",
            view=None if index % 2 else "overseas-minimal",
            lawful_basis=None if index % 2 else "DPA2018 s.74 adequacy",
        ),
    ]


def _build(
    count: int,
    *,
    chain: str = CHAIN,
    signer: RecordSigner | None = None,
    head: ChainHead | None = None,
    first: int = 0,
) -> list[bytes]:
    builder = AuditChain(head or ChainHead.genesis(chain), router="router-a", signer=signer)
    out = []
    for i in range(first, first + count):
        record = builder.append(
            time=T0 + timedelta(minutes=i),
            event_id=EventId(f"ev-{i}"),
            source=AgencyId("met-police"),
            subject=Subject(f"NRM-{i % 3}"),
            outcomes=_outcomes(i),
            policy_version="sha256:" + "ab" * 32,
            input_offset=i * 2,
        )
        out.append(record.to_bytes())
    return out


def _edit(data: bytes, **changes: object) -> bytes:
    document = json.loads(data)
    document.update(changes)
    return canonical_json(document)


def _events(records: Sequence[bytes]) -> list[str]:
    return [parse_record(r).event_id for r in records]


# --- building and verifying ------------------------------------------------------------


def test_a_fresh_chain_verifies() -> None:
    report = verify_chain(_build(10))
    assert report.ok
    assert report.records == 10
    assert report.heads[CHAIN].next_seq == 10


def test_first_record_links_to_the_genesis_digest() -> None:
    first = parse_record(_build(1)[0])
    assert first.prev_digest == GENESIS_DIGEST == "00" * 32
    assert first.seq == 0


def test_each_record_links_to_the_digest_of_the_one_before() -> None:
    records = [parse_record(r) for r in _build(3)]
    assert records[1].prev_digest == records[0].digest
    assert records[2].prev_digest == records[1].digest


def test_record_bytes_are_canonical_json_with_sorted_keys() -> None:
    data = _build(1)[0]
    document = json.loads(data)
    assert list(document) == sorted(document)
    assert canonical_json(document) == data
    assert b'": ' not in data
    assert b', "' not in data


def test_record_round_trips_through_its_bytes() -> None:
    data = _build(2)[1]
    assert parse_record(data).to_bytes() == data


def test_record_holds_only_identifiers_of_the_event() -> None:
    document = json.loads(_build(1)[0])
    assert set(document) == {
        "v",
        "chain",
        "seq",
        "time",
        "kind",
        "event_id",
        "source",
        "subject",
        "input_offset",
        "outcomes",
        "policy_version",
        "router",
        "prev_digest",
        "signer",
        "digest",
    }


def test_delivery_without_a_view_is_refused() -> None:
    with pytest.raises(AuditChainError, match=r"outcomes.view: .*cps"):
        RecipientOutcome(PartnerId("cps"), Outcome.DELIVER, "r1")


def test_naive_time_is_refused() -> None:
    builder = AuditChain(ChainHead.genesis(CHAIN), router="router-a")
    with pytest.raises(AuditChainError, match="timezone-aware"):
        builder.append(
            time=datetime(2026, 1, 1),  # naive on purpose
            event_id=EventId("e"),
            source=AgencyId("a"),
            subject=Subject("s"),
            outcomes=[],
            policy_version="p",
        ).to_bytes()


# --- tampering -------------------------------------------------------------------------


def test_an_altered_record_is_named() -> None:
    records = _build(6)
    records[3] = _edit(records[3], subject="NRM-OTHER")
    report = verify_chain(records)
    first = report.first_break
    assert first is not None
    assert (first.index, first.event_id, first.seq) == (3, "ev-3", 3)
    assert "altered" in first.reason
    assert first.found == parse_record(_build(6)[3]).digest
    assert first.expected != first.found


def test_an_altered_outcome_is_named() -> None:
    records = _build(4)
    document = json.loads(records[2])
    document["outcomes"][1]["outcome"] = "delivered"
    document["outcomes"][1]["view"] = "overseas-full"
    records[2] = canonical_json(document)
    first = verify_chain(records).first_break
    assert first is not None
    assert first.event_id == "ev-2"


def test_a_record_rewritten_with_a_fresh_digest_breaks_the_next_link() -> None:
    records = _build(5)
    document = json.loads(records[1])
    document["subject"] = "NRM-FORGED"
    del document["digest"]
    forged_digest = body_digest(document)
    document["digest"] = forged_digest
    records[1] = canonical_json(document)
    first = verify_chain(records).first_break
    assert first is not None
    assert (first.index, first.event_id) == (2, "ev-2")
    assert "ev-1" in first.reason
    assert first.expected == forged_digest


def test_a_deleted_record_is_named_by_its_successor_and_seq() -> None:
    records = _build(6)
    del records[2]
    first = verify_chain(records).first_break
    assert first is not None
    assert (first.index, first.event_id) == (2, "ev-3")
    assert "seq 2 missing after seq 1 (event ev-1)" in first.reason


def test_deleting_the_first_record_is_detected() -> None:
    records = _build(3)[1:]
    first = verify_chain(records).first_break
    assert first is not None
    assert first.event_id == "ev-1"
    assert "missing at the start" in first.reason


def test_reordered_records_are_named() -> None:
    records = _build(5)
    records[1], records[2] = records[2], records[1]
    report = verify_chain(records)
    assert [b.event_id for b in report.breaks] == ["ev-2", "ev-1"]
    assert "out of order" in report.breaks[1].reason


def test_a_replayed_record_is_detected() -> None:
    records = _build(3)
    records.append(records[1])
    first = verify_chain(records).first_break
    assert first is not None
    assert (first.index, first.event_id) == (3, "ev-1")


def test_garbage_in_the_trail_is_named_by_position_and_offset() -> None:
    records: list[bytes | tuple[int, bytes]] = [(10 + i, r) for i, r in enumerate(_build(3))]
    records.insert(1, (99, b"not json"))
    first = verify_chain(records).first_break
    assert first is not None
    assert (first.index, first.offset, first.event_id) == (1, 99, None)
    assert "unreadable" in first.reason


def test_non_canonical_bytes_are_reported() -> None:
    records = _build(2)
    records[0] = json.dumps(json.loads(records[0]), indent=1).encode()
    first = verify_chain(records).first_break
    assert first is not None
    assert "canonical" in first.reason


def test_raise_for_break_names_the_first_broken_record() -> None:
    records = _build(4)
    records[2] = _edit(records[2], router="router-evil")
    report = verify_chain(records)
    with pytest.raises(AuditChainError, match=r"record #2 .*seq 2, event ev-2: the record was"):
        report.raise_for_break()


def test_raise_for_break_is_silent_on_a_sound_chain() -> None:
    verify_chain(_build(3)).raise_for_break()


def test_cut_off_tail_is_detected_against_a_noted_head() -> None:
    records = _build(5)
    noted = {CHAIN: parse_record(records[-1]).digest}
    assert verify_chain(records, known_heads=noted).ok
    report = verify_chain(records[:-1], known_heads=noted)
    assert report.first_break is not None
    assert "cut off" in report.first_break.reason


def test_input_decided_twice_is_detected() -> None:
    builder = AuditChain(ChainHead.genesis(CHAIN), router="r")
    records = [
        builder.append(
            time=T0,
            event_id=EventId(f"e{i}"),
            source=AgencyId("a"),
            subject=Subject("s"),
            outcomes=[],
            policy_version="p",
            input_offset=7,
        ).to_bytes()
        for i in range(2)
    ]
    first = verify_chain(records).first_break
    assert first is not None
    assert "decided twice" in first.reason


# --- several chains, restarts, aborts -------------------------------------------------


def test_chains_of_different_partitions_verify_independently_when_interleaved() -> None:
    a = _build(4, chain=chain_id("ingress.met-police", 0))
    b = _build(4, chain=chain_id("ingress.met-police", 1))
    interleaved = [r for pair in zip(a, b, strict=True) for r in pair]
    report = verify_chain(interleaved)
    assert report.ok
    assert set(report.heads) == {"ingress.met-police/0", "ingress.met-police/1"}


def test_a_break_in_one_chain_leaves_the_other_chain_sound() -> None:
    a = _build(3, chain="t/0")
    b = _build(3, chain="t/1")
    del b[1]
    report = verify_chain([*a, *b])
    assert [(x.chain, x.event_id) for x in report.breaks] == [("t/1", "ev-2")]


def test_a_restarted_router_resumes_the_chain_from_the_committed_records() -> None:
    committed = _build(4)
    head = resume_head(CHAIN, [*_build(2, chain="other/0"), *committed, b"junk"])
    assert head.next_seq == 4
    assert head.digest == parse_record(committed[-1]).digest
    resumed = _build(3, head=head, first=4)
    assert verify_chain([*committed, *resumed]).ok


def test_resume_of_an_unknown_chain_starts_at_genesis() -> None:
    assert resume_head("t/9", _build(2)) == ChainHead.genesis("t/9")


def test_reset_after_an_aborted_transaction_leaves_no_gap() -> None:
    builder = AuditChain(ChainHead.genesis(CHAIN), router="r")

    def append(i: int) -> bytes:
        return builder.append(
            time=T0,
            event_id=EventId(f"e{i}"),
            source=AgencyId("a"),
            subject=Subject("s"),
            outcomes=[],
            policy_version="p",
            input_offset=i,
        ).to_bytes()

    committed = [append(0)]
    before = builder.head
    append(1)  # produced inside a transaction that then aborts
    builder.reset(before)
    committed.append(append(1))
    assert verify_chain(committed).ok


def test_reset_to_another_chain_is_refused() -> None:
    builder = AuditChain(ChainHead.genesis("t/0"), router="r")
    with pytest.raises(AuditChainError, match="cannot reset"):
        builder.reset(ChainHead.genesis("t/1"))


# --- signatures -------------------------------------------------------------------------


def test_signed_records_verify_with_the_router_key() -> None:
    key = Ed25519PrivateKey.generate()
    signer = RecordSigner(KeyId("router-key-1"), key)
    records = _build(3, signer=signer)
    assert verify_chain(records, router_keys={signer.key_id: key.public_key()}).ok


def test_a_forged_suffix_fails_the_signature_check() -> None:
    key = Ed25519PrivateKey.generate()
    signer = RecordSigner(KeyId("router-key-1"), key)
    records = _build(3, signer=signer)
    forger = RecordSigner(KeyId("router-key-1"), Ed25519PrivateKey.generate())
    head = ChainHead(CHAIN, 2, parse_record(records[1]).digest)
    records[2] = _build(1, signer=forger, head=head, first=2)[0]
    assert verify_chain(records).ok  # the hash chain alone cannot tell
    first = verify_chain(records, router_keys={signer.key_id: key.public_key()}).first_break
    assert first is not None
    assert (first.event_id, first.reason) == (
        "ev-2",
        "the signature by key router-key-1 does not match the record's digest",
    )


def test_unsigned_records_fail_when_signatures_are_required() -> None:
    key = Ed25519PrivateKey.generate()
    first = verify_chain(_build(1), router_keys={KeyId("k"): key.public_key()}).first_break
    assert first is not None
    assert first.reason == "the record is not signed"


def _signed_trail(count: int = 3) -> tuple[list[bytes], dict[KeyId, Ed25519PublicKey]]:
    key = Ed25519PrivateKey.generate()
    signer = RecordSigner(KeyId("router-key-1"), key)
    return _build(count, signer=signer), {signer.key_id: key.public_key()}


def _respelled(data: bytes, spelling: str) -> bytes:
    return _edit(data, signature=spelling)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _same_bytes_spellings(signature: str) -> list[str]:
    """Every other spelling that a lenient base64url decoder turns into the same bytes."""
    assert signature.endswith("==")
    body = signature[:-2]
    # 64 bytes end in one byte: its last character carries 2 bits and 4 unused ones.
    last = _B64URL.index(body[-1])
    flipped = [
        body[:-1] + _B64URL[(last & 0b110000) | low] + "=="
        for low in range(16)
        if (last & 0b110000) | low != last
    ]
    return [
        *flipped,
        body,  # unpadded
        body + "=",  # short padding
        body + "===",  # extra padding
        body[:40] + "\n" + body[40:] + "==",  # a character a lenient decoder skips
        body[:40] + "!" + body[40:] + "==",
    ]


def test_the_signature_is_written_as_padded_base64url() -> None:
    records, _ = _signed_trail(1)
    signature = parse_record(records[0]).signature
    assert signature is not None
    assert len(signature) == 88
    assert signature.endswith("==")
    assert set(signature[:-2]) <= set(_B64URL)


def test_a_signature_whose_last_character_was_changed_is_reported() -> None:
    # Issue 13, defect 7: "...CA==" -> "...CB==" decodes to the same bytes.
    records, keys = _signed_trail()
    signature = parse_record(records[1]).signature
    assert signature is not None
    body = signature[:-2]
    changed = body[:-1] + _B64URL[_B64URL.index(body[-1]) ^ 1] + "=="
    assert base64.urlsafe_b64decode(changed) == base64.urlsafe_b64decode(signature)
    records[1] = _respelled(records[1], changed)
    report = verify_chain(records, router_keys=keys)
    assert [(b.event_id, b.reason) for b in report.breaks] == [
        (
            "ev-1",
            "signature: not the canonical padded base64url spelling of a 64-byte signature, "
            "by key router-key-1",
        )
    ]


def test_every_other_spelling_of_the_same_signature_is_reported_with_keys() -> None:
    records, keys = _signed_trail(1)
    signature = parse_record(records[0]).signature
    assert signature is not None
    for spelling in _same_bytes_spellings(signature):
        report = verify_chain([_respelled(records[0], spelling)], router_keys=keys)
        assert not report.ok, spelling
        assert "canonical padded base64url" in report.breaks[0].reason


def test_every_other_spelling_of_the_same_signature_is_reported_without_keys() -> None:
    records, _ = _signed_trail(1)
    signature = parse_record(records[0]).signature
    assert signature is not None
    for spelling in _same_bytes_spellings(signature):
        report = verify_chain([_respelled(records[0], spelling)])
        assert not report.ok, spelling
        assert "canonical padded base64url" in report.breaks[0].reason


def test_a_signature_of_the_wrong_length_is_reported() -> None:
    records, keys = _signed_trail(1)
    short = base64.urlsafe_b64encode(b"\x00" * 63).decode()
    report = verify_chain([_respelled(records[0], short)], router_keys=keys)
    assert not report.ok


# --- query ------------------------------------------------------------------------------


def test_query_by_event_id() -> None:
    assert _events([r.to_bytes() for r in query(_build(5), event_id="ev-3")]) == ["ev-3"]


def test_query_by_subject() -> None:
    found = [r.event_id for r in query(_build(7), subject="NRM-1")]
    assert found == ["ev-1", "ev-4"]


def test_query_by_partner_matches_any_outcome_for_that_partner() -> None:
    assert len(list(query(_build(4), partner="ilo-nl"))) == 4
    assert list(query(_build(4), partner="nobody")) == []


def test_query_by_time_window_is_inclusive_then_exclusive() -> None:
    found = [
        r.event_id
        for r in query(_build(6), since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    ]
    assert found == ["ev-2", "ev-3"]


def test_query_filters_combine() -> None:
    found = [r.event_id for r in query(_build(9), subject="NRM-0", since=T0 + timedelta(minutes=1))]
    assert found == ["ev-3", "ev-6"]


def test_query_refuses_an_unreadable_record() -> None:
    with pytest.raises(AuditChainError, match=r"audit record #1"):
        list(query([_build(1)[0], b"{}"]))


def test_a_partner_listed_twice_in_one_record_is_refused() -> None:
    builder = AuditChain(ChainHead.genesis(CHAIN), router="r")
    twice = [RecipientOutcome(PartnerId("cps"), Outcome.WITHHOLD, "r1")] * 2
    with pytest.raises(AuditChainError, match="partner cps listed more than once"):
        builder.append(
            time=T0,
            event_id=EventId("e"),
            source=AgencyId("a"),
            subject=Subject("s"),
            outcomes=twice,
            policy_version="p",
        )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_changed_byte_in_any_record_is_detected(data: st.DataObject) -> None:
    records = _build(4)
    index = data.draw(st.integers(0, len(records) - 1), label="record")
    position = data.draw(st.integers(0, len(records[index]) - 1), label="byte")
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != records[index][position]))
    changed = bytearray(records[index])
    changed[position] = replacement
    records[index] = bytes(changed)
    first = verify_chain(records).first_break
    assert first is not None
    assert first.index in (index, index + 1)


def test_decided_event_ids_rebuild_the_dedup_memory_of_one_chain() -> None:
    builder = AuditChain(ChainHead.genesis("t/0"), router="r")
    steps: list[tuple[str, RecordKind]] = [
        ("e1", "decision"),
        ("e2", "quarantine"),
        ("e1", "duplicate"),
        ("e3", "decision"),
    ]
    records = [
        builder.append(
            time=T0,
            event_id=EventId(event),
            source=AgencyId("a"),
            subject=Subject("s"),
            outcomes=[],
            policy_version="p",
            input_offset=i,
            kind=kind,
        ).to_bytes()
        for i, (event, kind) in enumerate(steps)
    ]
    others = _build(2, chain="t/1")
    assert decided_event_ids("t/0", [*records, *others, b"junk"]) == {"e1", "e3"}


def test_verify_chain_tallies_each_chains_records_and_signatures() -> None:
    key = Ed25519PrivateKey.generate()
    signer = RecordSigner(KeyId("router-key"), key)
    other = _build(2, chain="ingress.cps/0")
    records = [*_build(3, signer=signer), *other]
    report = verify_chain(records, router_keys={KeyId("router-key"): key.public_key()})
    assert report.tallies[CHAIN] == ChainTally(3, 0, 3, 3, frozenset({"router-key"}))
    assert report.tallies["ingress.cps/0"] == ChainTally(2, 0, 0, 0, frozenset())


def test_verify_chain_counts_a_bad_signature_as_signed_not_valid() -> None:
    key = Ed25519PrivateKey.generate()
    records = _build(2, signer=RecordSigner(KeyId("router-key"), key))
    wrong = Ed25519PrivateKey.generate().public_key()
    report = verify_chain(records, router_keys={KeyId("router-key"): wrong})
    assert report.tallies[CHAIN].signed == 2
    assert report.tallies[CHAIN].valid == 0


def test_an_integer_too_long_to_convert_is_an_unreadable_record_not_a_crash() -> None:
    # Python refuses to convert integers of more than 4,300 digits; such a line in the trail
    # ended `verify_chain` with a ValueError instead of being reported where it is.
    records = _build(3)
    records[1] = records[1].replace(b'"seq":1', b'"seq":' + b"1" * 5000, 1)
    report = verify_chain(records)
    assert report.breaks[0].index == 1
    assert report.breaks[0].reason.startswith("unreadable: not a JSON audit record")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def _holds_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_holds_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_float(v) for v in value)
    return False


@settings(max_examples=200, deadline=None)
@given(_json_values)
def test_canonical_json_refuses_a_float_anywhere_and_nothing_else(value: object) -> None:
    if _holds_float(value):
        with pytest.raises(AuditChainError, match="floating-point"):
            canonical_json(value)
    else:
        assert json.loads(canonical_json(value)) == value


@pytest.mark.parametrize("signed", [False, True])
def test_a_chain_records_bytes_are_those_its_members_serialise_to(signed: bool) -> None:
    signer = RecordSigner(KeyId("router-key-1"), Ed25519PrivateKey.generate()) if signed else None
    for data in _build(6, signer=signer):
        record = parse_record(data)
        # Parsed, the record carries no written bytes: these are serialised afresh.
        assert record.to_bytes() == data


def test_a_changed_record_never_gives_the_bytes_written_before_the_change() -> None:
    builder = AuditChain(ChainHead.genesis(CHAIN), router="router-a")
    record = builder.append(
        time=T0, event_id=EventId("ev-1"), source=AgencyId("met-police"),
        subject=Subject("NRM-1"), outcomes=_outcomes(1), policy_version="sha256:" + "ab" * 32,
    )  # fmt: skip
    changed = replace(record, subject=Subject("NRM-2"))
    assert json.loads(changed.to_bytes())["subject"] == "NRM-2"
    assert json.loads(record.to_bytes())["subject"] == "NRM-1"
