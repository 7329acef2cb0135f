"""Checking a trail without trusting the router, and filtering it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.chain import ChainHead
from broker.audit.record import (
    GENESIS_DIGEST,
    AuditRecord,
    body_digest,
    canonical_json,
    decode_signature,
    format_time,
    load_document,
    parse_record,
    record_from_document,
    signed_message,
)
from broker.crypto.trust import load_trust_store
from broker.errors import AuditChainError
from broker.types import KeyId, PartnerId

# --- verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """One place where the trail does not hold, located as precisely as the bytes allow.

    ``index`` is the position in the input (0-based), ``offset`` the Kafka offset when the
    caller gave one; ``expected``/``found`` are digests where a digest comparison failed.
    """

    index: int
    offset: int | None
    chain: str | None
    seq: int | None
    event_id: str | None
    reason: str
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        where = f"record #{self.index}"
        if self.offset is not None:
            where += f" (offset {self.offset})"
        if self.chain is not None:
            where += f" of chain {self.chain} seq {self.seq}"
        if self.event_id is not None:
            where += f", event {self.event_id}"
        text = f"{where}: {self.reason}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text


@dataclass(frozen=True)
class ChainTally:
    """One chain's records as :func:`verify_chain` read them: how many, the first ``seq``,
    how many carry a signature, how many of those verified (0 when no keys were given) and
    the keys that signed."""

    records: int
    first_seq: int
    signed: int
    valid: int
    signers: frozenset[str]


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: record count, each chain's head, every break, and
    each chain's tally (so a caller need not read and verify the records a second time)."""

    records: int
    heads: Mapping[str, ChainHead]
    breaks: tuple[ChainBreak, ...]
    tallies: Mapping[str, ChainTally] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every chain verified from genesis to its head."""
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        """The earliest break in input order, or ``None``."""
        return self.breaks[0] if self.breaks else None

    def raise_for_break(self) -> None:
        """Raise :class:`AuditChainError` naming the first broken link, if there is one."""
        if self.breaks:
            more = f" ({len(self.breaks) - 1} further problems)" if len(self.breaks) > 1 else ""
            raise AuditChainError(f"audit chain broken at {self.breaks[0]}{more}")


@dataclass
class _ChainState:
    next_seq: int
    digest: str
    last_event: str | None = None
    last_input_offset: int | None = None
    seen: set[str] = field(default_factory=set)


@dataclass
class _Tally:
    first_seq: int
    records: int = 0
    signed: int = 0
    valid: int = 0
    signers: set[str] = field(default_factory=set)

    def frozen(self) -> ChainTally:
        return ChainTally(
            self.records, self.first_seq, self.signed, self.valid, frozenset(self.signers)
        )


def _split(item: bytes | tuple[int, bytes]) -> tuple[int | None, bytes]:
    if isinstance(item, tuple):
        return item[0], item[1]
    return None, item


def _check_signature(record: AuditRecord, keys: Mapping[KeyId, Ed25519PublicKey]) -> str | None:
    if record.signer is None or record.signature is None:
        return "the record is not signed"
    public_key = keys.get(record.signer)
    if public_key is None:
        return f"signed by key {record.signer}, which is not a trusted router key"
    try:
        raw = decode_signature(record.signature)
    except AuditChainError as exc:
        return f"{exc}, by key {record.signer}"
    try:
        public_key.verify(raw, signed_message(record.digest))
    except InvalidSignature:
        return f"the signature by key {record.signer} does not match the record's digest"
    return None


_Problem = tuple[str, str | None, str | None]


def _problems(
    record: AuditRecord,
    document: Mapping[str, Any],
    data: bytes,
    states: Mapping[str, _ChainState],
    router_keys: Mapping[KeyId, Ed25519PublicKey] | None,
    signature_problem: str | None,
) -> list[_Problem]:
    """Everything wrong with ``record`` on its own and as the next link of its chain
    (``signature_problem``: what :func:`_check_signature` found, when keys were given)."""
    problems: list[_Problem] = []
    actual = body_digest(document)
    if actual != record.digest:
        problems.append(
            (
                "the record was altered: its content does not match its digest",
                actual,
                record.digest,
            )
        )
    elif canonical_json(document) != data:
        problems.append(("the record's bytes are not in canonical form", None, None))
    if router_keys is not None:
        if signature_problem is not None:
            problems.append((signature_problem, None, None))
    elif record.signature is not None:
        # The signature is outside the digest: without keys, its spelling is still checked,
        # so a record is never reported intact with bytes that are not its canonical form.
        try:
            decode_signature(record.signature)
        except AuditChainError as exc:
            problems.append((str(exc), None, None))

    state = states.get(record.chain) or _ChainState(0, GENESIS_DIGEST)
    previous = f"seq {state.next_seq - 1} (event {state.last_event})"
    if record.seq > state.next_seq:
        missing = (
            f"seq {state.next_seq}"
            if record.seq == state.next_seq + 1
            else f"seqs {state.next_seq}-{record.seq - 1}"
        )
        after = f" after {previous}" if state.last_event is not None else " at the start"
        problems.append((f"{missing} missing{after}: deleted?", state.digest, record.prev_digest))
    elif record.seq < state.next_seq:
        problems.append(
            (
                f"out of order or replayed: seq {record.seq} comes after {previous}",
                state.digest,
                record.prev_digest,
            )
        )
    elif record.prev_digest != state.digest:
        before = (
            f"the record before it, {previous}"
            if state.last_event is not None
            else "the chain's genesis"
        )
        problems.append(
            (
                f"prev_digest does not match the digest of {before}: one of them was altered",
                state.digest,
                record.prev_digest,
            )
        )
    elif (
        record.input_offset is not None
        and state.last_input_offset is not None
        and record.input_offset <= state.last_input_offset
    ):
        problems.append(
            (
                f"input offset {record.input_offset} does not follow "
                f"{state.last_input_offset}: an input was decided twice",
                None,
                None,
            )
        )
    return problems


def verify_chain(
    records: Iterable[bytes | tuple[int, bytes]],
    *,
    router_keys: Mapping[KeyId, Ed25519PublicKey] | None = None,
    known_heads: Mapping[str, str] | None = None,
) -> ChainReport:
    """Check every chain in ``records`` (values in topic order, or ``(offset, value)`` pairs).

    Needs no trust in the router: each record's digest is recomputed from its own bytes and
    each link is checked against the record before it in the same chain. After a break the
    check resynchronises on the record found (unless it is older than the chain's head, as
    a replayed or moved record is), so every independent problem is reported once.
    With ``router_keys`` every record must carry a valid signature by one of them. With
    ``known_heads`` (chain -> digest noted earlier, e.g. by an auditor), each noted digest
    must still be in its chain, so cutting records off a chain's end is detected too.
    """
    states: dict[str, _ChainState] = {}
    tallies: dict[str, _Tally] = {}
    breaks: list[ChainBreak] = []
    count = 0
    for index, item in enumerate(records):
        count += 1
        offset, data = _split(item)
        try:
            document = load_document(data)
            record = record_from_document(document)
        except AuditChainError as exc:
            breaks.append(ChainBreak(index, offset, None, None, None, f"unreadable: {exc}"))
            continue

        # Each signature is verified once, here: the tally and the breaks both use it.
        signature_problem = (
            _check_signature(record, router_keys) if router_keys is not None else None
        )
        tally = tallies.setdefault(record.chain, _Tally(first_seq=record.seq))
        tally.records += 1
        if record.signature is not None and record.signer is not None:
            tally.signed += 1
            tally.signers.add(record.signer)
            if router_keys is not None and signature_problem is None:
                tally.valid += 1
        problems = _problems(record, document, data, states, router_keys, signature_problem)
        for reason, expected, found in problems:
            breaks.append(
                ChainBreak(
                    index,
                    offset,
                    record.chain,
                    record.seq,
                    record.event_id,
                    reason,
                    expected,
                    found,
                )
            )
        state = states.setdefault(record.chain, _ChainState(0, GENESIS_DIGEST))
        if record.seq < state.next_seq:
            continue  # a stray older record; the chain resumes from the head it had
        state.next_seq = record.seq + 1
        state.digest = record.digest
        state.last_event = record.event_id
        if record.input_offset is not None:
            state.last_input_offset = record.input_offset
        state.seen.add(record.digest)

    for chain, digest in (known_heads or {}).items():
        noted = states.get(chain)
        if noted is None or digest not in noted.seen:
            breaks.append(
                ChainBreak(
                    count,
                    None,
                    chain,
                    None,
                    None,
                    "a record noted earlier is no longer in the chain: records were cut off",
                    digest,
                    noted.digest if noted else None,
                )
            )

    heads = {
        chain: ChainHead(chain=chain, next_seq=state.next_seq, digest=state.digest)
        for chain, state in states.items()
    }
    return ChainReport(
        records=count,
        heads=heads,
        breaks=tuple(breaks),
        tallies={chain: tally.frozen() for chain, tally in tallies.items()},
    )


# --- querying ----------------------------------------------------------------------------


def query(
    records: Iterable[bytes],
    *,
    event_id: str | None = None,
    partner: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
) -> Iterator[AuditRecord]:
    """The records matching every filter given (``since`` inclusive, ``until`` exclusive).

    ``partner`` matches a record that decided anything about that partner (delivered,
    withheld or held); ``outcome`` one with that outcome for some partner (for ``partner``
    itself when both are given) — ``held`` lists what waits for a human decision.
    A record that does not parse raises :class:`AuditChainError` naming
    its position, because an unreadable audit trail must not look like an empty answer.
    """
    for bound in (since, until):
        if bound is not None:
            format_time(bound)  # refuses a naive datetime before any record is read
    for index, data in enumerate(records):
        try:
            record = parse_record(data)
        except AuditChainError as exc:
            raise AuditChainError(f"audit record #{index}: {exc}") from exc
        if event_id is not None and record.event_id != event_id:
            continue
        if subject is not None and record.subject != subject:
            continue
        if partner is not None and PartnerId(partner) not in record.partners():
            continue
        if since is not None and record.time < since:
            continue
        if until is not None and record.time >= until:
            continue
        if outcome is not None and not any(
            o.outcome == outcome and (partner is None or o.partner == partner)
            for o in record.outcomes
        ):
            continue
        yield record


def router_keys(path: Path) -> dict[KeyId, Ed25519PublicKey]:
    """The Ed25519 signing keys of every agency the trust store at ``path`` marks as a router."""
    store = load_trust_store(path)
    keys: dict[KeyId, Ed25519PublicKey] = {}
    for entry in store.agencies.values():
        if not entry.router:
            continue
        for key in entry.keys:
            if key.use == "sign" and key.algorithm == "ed25519":
                keys[key.key_id] = Ed25519PublicKey.from_public_bytes(key.public_key)
    return keys
