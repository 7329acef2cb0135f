"""Checking a trail without trusting the router, and filtering it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.chain import ChainHead
from broker.audit.record import (
    GENESIS_DIGEST,
    AuditRecord,
    decode_signature,
    format_time,
    load_document,
    loaded_body_digest,
    loaded_canonical_bytes,
    parse_record,
    record_from_document,
    signed_message,
)
from broker.crypto.trust import load_trust_store
from broker.errors import AuditChainError, AuditWorkerError, ConfigError
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


class _Checked(NamedTuple):
    """What one record says and what is wrong with it on its own (its digest, its canonical
    form, its signature), found without looking at any other record: the part of the check
    that can run in any order, in any process. ``problems`` are in the order reported.
    A tuple, because workers send one back per record: it pickles ten times faster than a
    dataclass."""

    chain: str
    seq: int
    event_id: str
    prev_digest: str
    digest: str
    input_offset: int | None
    signer: str | None
    signed: bool
    signature_valid: bool
    problems: tuple[_Problem, ...]


def _check_record(
    data: bytes, router_keys: Mapping[KeyId, Ed25519PublicKey] | None
) -> _Checked | str:
    """The record-local checks of one record, or why it is unreadable."""
    try:
        document = load_document(data)
        record = record_from_document(document)
    except AuditChainError as exc:
        return f"unreadable: {exc}"
    problems: list[_Problem] = []
    actual = loaded_body_digest(document)
    if actual != record.digest:
        problems.append(
            (
                "the record was altered: its content does not match its digest",
                actual,
                record.digest,
            )
        )
    elif loaded_canonical_bytes(document) != data:
        problems.append(("the record's bytes are not in canonical form", None, None))
    # Each signature is verified once, here: the tally and the breaks both use it.
    signature_problem = None
    if router_keys is not None:
        signature_problem = _check_signature(record, router_keys)
        if signature_problem is not None:
            problems.append((signature_problem, None, None))
    elif record.signature is not None:
        # The signature is outside the digest: without keys, its spelling is still checked,
        # so a record is never reported intact with bytes that are not its canonical form.
        try:
            decode_signature(record.signature)
        except AuditChainError as exc:
            problems.append((str(exc), None, None))
    signed = record.signature is not None and record.signer is not None
    return _Checked(
        chain=record.chain,
        seq=record.seq,
        event_id=record.event_id,
        prev_digest=record.prev_digest,
        digest=record.digest,
        input_offset=record.input_offset,
        signer=record.signer,
        signed=signed,
        signature_valid=signed and router_keys is not None and signature_problem is None,
        problems=tuple(problems),
    )


def _link_problem(record: _Checked, state: _ChainState) -> _Problem | None:
    """What is wrong with ``record`` as the next link of the chain at ``state``, if anything."""
    if (
        record.seq == state.next_seq
        and record.prev_digest == state.digest
        and (
            record.input_offset is None
            or state.last_input_offset is None
            or record.input_offset > state.last_input_offset
        )
    ):
        return None  # the next link, as nearly every record is: no message to build
    previous = f"seq {state.next_seq - 1} (event {state.last_event})"
    if record.seq > state.next_seq:
        missing = (
            f"seq {state.next_seq}"
            if record.seq == state.next_seq + 1
            else f"seqs {state.next_seq}-{record.seq - 1}"
        )
        after = f" after {previous}" if state.last_event is not None else " at the start"
        return (f"{missing} missing{after}: deleted?", state.digest, record.prev_digest)
    if record.seq < state.next_seq:
        return (
            f"out of order or replayed: seq {record.seq} comes after {previous}",
            state.digest,
            record.prev_digest,
        )
    if record.prev_digest != state.digest:
        before = (
            f"the record before it, {previous}"
            if state.last_event is not None
            else "the chain's genesis"
        )
        return (
            f"prev_digest does not match the digest of {before}: one of them was altered",
            state.digest,
            record.prev_digest,
        )
    if (
        record.input_offset is not None
        and state.last_input_offset is not None
        and record.input_offset <= state.last_input_offset
    ):
        return (
            f"input offset {record.input_offset} does not follow "
            f"{state.last_input_offset}: an input was decided twice",
            None,
            None,
        )
    return None


# --- checking records in parallel --------------------------------------------------------

PARALLEL_MIN_RECORDS = 4_000
"""Below this many records :func:`verify_chain` checks in-process whatever ``jobs`` says:
starting worker processes costs more than it saves on a small trail."""

_CHUNK = 1_000
"""Records per task sent to a worker: large enough that pickling the task and its result
is a small part of it, small enough that every worker gets several."""

_worker_keys: dict[KeyId, Ed25519PublicKey] | None = None


def _start_worker(keys: Mapping[KeyId, bytes] | None) -> None:
    global _worker_keys
    _worker_keys = (
        None
        if keys is None
        else {key_id: Ed25519PublicKey.from_public_bytes(raw) for key_id, raw in keys.items()}
    )


def _check_chunk(chunk: list[bytes]) -> list[_Checked | str]:
    return [_check_record(data, _worker_keys) for data in chunk]


def _raw_keys(keys: Mapping[KeyId, Ed25519PublicKey] | None) -> dict[KeyId, bytes] | None:
    if keys is None:
        return None
    return {
        key_id: key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        for key_id, key in keys.items()
    }


def _checked_in_parallel(
    values: list[bytes], router_keys: Mapping[KeyId, Ed25519PublicKey] | None, jobs: int
) -> Iterator[_Checked | str]:
    chunks = [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]
    # fork: the workers start with the modules already imported (spawn would import the
    # broker again in each); they run only the pure checks above.
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(_raw_keys(router_keys),),
    ) as pool:
        try:
            for checked in pool.map(_check_chunk, chunks):
                yield from checked
        except BrokenProcessPool as exc:
            raise AuditWorkerError(
                "a worker process checking the records stopped before it returned its results "
                "(killed, or out of memory); nothing is concluded about the trail: run again, "
                "or with --jobs 1 to check in this process only"
            ) from exc


def default_jobs() -> int:
    """The worker processes :func:`verify_chain` uses by default: one per usable CPU."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def verify_chain(
    records: Iterable[bytes | tuple[int, bytes]],
    *,
    router_keys: Mapping[KeyId, Ed25519PublicKey] | None = None,
    known_heads: Mapping[str, str] | None = None,
    jobs: int = 1,
) -> ChainReport:
    """Check every chain in ``records`` (values in topic order, or ``(offset, value)`` pairs).

    Needs no trust in the router: each record's digest is recomputed from its own bytes and
    each link is checked against the record before it in the same chain. After a break the
    check resynchronises on the record found (unless it is older than the chain's head, as
    a replayed or moved record is), so every independent problem is reported once.
    With ``router_keys`` every record must carry a valid signature by one of them. With
    ``known_heads`` (chain -> digest noted earlier, e.g. by an auditor), each noted digest
    must still be in its chain, so cutting records off a chain's end is detected too.

    With ``jobs`` > 1 and at least :data:`PARALLEL_MIN_RECORDS` records, each record's own
    checks (parse, digest, canonical form, signature) run in ``jobs`` worker processes while
    the links are checked here in input order; the report is the same as with ``jobs=1``.
    """
    if jobs < 1:
        raise ConfigError(f"jobs: must be at least 1, not {jobs}")
    items = [_split(item) for item in records]
    values = [data for _, data in items]
    checked: Iterable[_Checked | str]
    if jobs > 1 and len(values) >= PARALLEL_MIN_RECORDS:
        checked = _checked_in_parallel(values, router_keys, jobs)
    else:
        checked = (_check_record(data, router_keys) for data in values)

    states: dict[str, _ChainState] = {}
    tallies: dict[str, _Tally] = {}
    breaks: list[ChainBreak] = []
    count = 0
    for index, ((offset, _), record) in enumerate(zip(items, checked, strict=True)):
        count += 1
        if isinstance(record, str):
            breaks.append(ChainBreak(index, offset, None, None, None, record))
            continue
        # Looked up before any default is built: one dict lookup per record, not an object.
        tally = tallies.get(record.chain)
        if tally is None:
            tally = tallies[record.chain] = _Tally(first_seq=record.seq)
        tally.records += 1
        if record.signed:
            tally.signed += 1
            tally.signers.add(cast(str, record.signer))
            if record.signature_valid:
                tally.valid += 1
        state = states.get(record.chain)
        if state is None:
            state = states[record.chain] = _ChainState(0, GENESIS_DIGEST)
        link = _link_problem(record, state)
        problems = record.problems if link is None else (*record.problems, link)
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
