"""The tamper-evident audit trail: one record per routing decision, hash-chained.

Pure logic only: building, serialising, verifying and filtering records. The router produces
the bytes of :meth:`AuditRecord.to_bytes` to the audit topic in the same Kafka transaction as
the deliveries; ``msht audit verify`` and ``msht audit query`` feed the topic's values back in.

Format (see docs/AUDIT.md)
    A record is a JSON object in canonical form: UTF-8, keys sorted, no insignificant
    whitespace, only strings, integers, booleans, null, arrays and objects (no floats). Its
    ``digest`` is SHA-256 over the canonical bytes of the record *without* its ``digest`` and
    ``signature`` members; ``prev_digest`` is the ``digest`` of the record before it in the
    same chain, and 32 zero bytes (hex) for the first record of a chain.

Chains
    There is one chain per input topic-partition (``chain`` = ``"<topic>/<partition>"``).
    Exactly one router at a time owns an input partition and its transactional id, and Kafka
    fences any older producer with that id, so each chain has a single writer even while
    routers rebalance. ``seq`` counts the records of a chain from 0, so a verifier can say
    which record is missing, not only that a link is broken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.errors import AuditChainError
from broker.types import AgencyId, EventId, KeyId, PartnerId, Subject

FORMAT_VERSION = 1
"""The ``v`` member of every record this module writes; other versions are refused."""

GENESIS_DIGEST = "00" * 32
"""``prev_digest`` of the first record of every chain (32 zero bytes, hex)."""

Outcome = Literal["delivered", "withheld", "held"]
"""What happened for one recipient: sent, refused by policy, or held for a human decision."""

RecordKind = Literal["decision", "quarantine", "duplicate"]
"""A routing decision, an input sent to quarantine, or a re-published event dropped."""

_OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
_KINDS: frozenset[str] = frozenset(get_args(RecordKind))
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SIGNATURE_CONTEXT = b"msht-audit-record/v1\x00"
_DIGEST_MEMBERS = frozenset({"digest", "signature"})


def canonical_json(value: object) -> bytes:
    """Canonical bytes of a JSON value: sorted keys, no spaces, UTF-8, integers only.

    For the values audit records hold (ASCII keys, strings, integers, booleans, null) this
    is the same byte string RFC 8785 (JCS) produces.
    """
    _reject_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _reject_floats(value: object) -> None:
    if isinstance(value, float):
        raise AuditChainError("audit records hold no floating-point numbers")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def chain_id(topic: str, partition: int) -> str:
    """The chain of the input topic-partition ``topic``/``partition`` (Kafka names hold no '/')."""
    if "/" in topic or partition < 0:
        raise AuditChainError(f"chain: {topic!r} partition {partition} is not a topic-partition")
    return f"{topic}/{partition}"


def format_time(moment: datetime) -> str:
    """``moment`` as the audit trail writes it: UTC, microseconds, ``Z`` (always 27 chars)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise AuditChainError("time: an audit time must be timezone-aware")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; refuses any other spelling."""
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise AuditChainError(f"time: {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from exc


# --- the record model --------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientOutcome:
    """The decision for one partner: what happened, which rule decided, in which view.

    ``lawful_basis`` names the transfer basis (DPA 2018 ss.73-76) when the partner is
    outside the UK; ``reason`` is the policy's own wording (never event content).
    """

    partner: PartnerId
    outcome: Outcome
    rule: str
    view: str | None = None
    lawful_basis: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.partner:
            raise AuditChainError("outcomes.partner: must not be empty")
        if self.outcome not in _OUTCOMES:
            raise AuditChainError(
                f"outcomes.outcome: {self.outcome!r} for partner {self.partner} is not one of "
                f"{sorted(_OUTCOMES)}"
            )
        if not self.rule:
            raise AuditChainError(f"outcomes.rule: missing for partner {self.partner}")
        if self.outcome == "delivered" and not self.view:
            raise AuditChainError(f"outcomes.view: a delivery to {self.partner} must name a view")

    def to_json(self) -> dict[str, Any]:
        """The JSON object this outcome is written as."""
        return {
            "partner": self.partner,
            "outcome": self.outcome,
            "rule": self.rule,
            "view": self.view,
            "lawful_basis": self.lawful_basis,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AuditRecord:
    """One decision about one input record, as written to the audit topic.

    Holds identifiers only: the event id and subject (a case or referral reference) are the
    only facts about the event itself; no payload field is ever copied here.
    """

    chain: str
    seq: int
    time: datetime
    kind: RecordKind
    event_id: EventId
    source: AgencyId
    subject: Subject
    input_offset: int | None
    outcomes: tuple[RecipientOutcome, ...]
    policy_version: str
    router: str
    prev_digest: str
    digest: str
    signer: KeyId | None = None
    signature: str | None = None

    def body(self) -> dict[str, Any]:
        """Every member the digest covers (all but ``digest`` and ``signature``)."""
        return {
            "v": FORMAT_VERSION,
            "chain": self.chain,
            "seq": self.seq,
            "time": format_time(self.time),
            "kind": self.kind,
            "event_id": self.event_id,
            "source": self.source,
            "subject": self.subject,
            "input_offset": self.input_offset,
            "outcomes": [outcome.to_json() for outcome in self.outcomes],
            "policy_version": self.policy_version,
            "router": self.router,
            "prev_digest": self.prev_digest,
            "signer": self.signer,
        }

    def to_bytes(self) -> bytes:
        """The canonical bytes produced to the audit topic."""
        document = self.body()
        document["digest"] = self.digest
        if self.signature is not None:
            document["signature"] = self.signature
        return canonical_json(document)

    def partners(self) -> frozenset[PartnerId]:
        """Every partner this record decided about."""
        return frozenset(outcome.partner for outcome in self.outcomes)


def body_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical bytes of ``body`` without ``digest``/``signature``."""
    covered = {key: value for key, value in body.items() if key not in _DIGEST_MEMBERS}
    return hashlib.sha256(canonical_json(covered)).hexdigest()


def _signed_message(digest: str) -> bytes:
    return _SIGNATURE_CONTEXT + bytes.fromhex(digest)


@dataclass(frozen=True)
class RecordSigner:
    """The router's Ed25519 key, used to sign each record's digest (optional)."""

    key_id: KeyId
    private_key: Ed25519PrivateKey = field(repr=False)

    def sign(self, digest: str) -> str:
        """Base64url signature over the domain-separated digest."""
        raw = self.private_key.sign(_signed_message(digest))
        return base64.urlsafe_b64encode(raw).decode("ascii")


# --- parsing -----------------------------------------------------------------------------


def _member(document: Mapping[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    if name not in document:
        raise AuditChainError(f"{name}: missing from the audit record")
    value = document[name]
    if value is None and optional:
        return None
    # bool is an int subclass; a boolean seq or offset is a malformed record.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise AuditChainError(f"{name}: expected {kind.__name__}, found {type(value).__name__}")
    return value


def _digest_member(document: Mapping[str, Any], name: str) -> str:
    value = cast(str, _member(document, name, str))
    if len(value) != 64 or value != value.lower():
        raise AuditChainError(f"{name}: not a lower-case hex SHA-256 digest")
    try:
        bytes.fromhex(value)
    except ValueError as exc:
        raise AuditChainError(f"{name}: not a lower-case hex SHA-256 digest") from exc
    return value


def _parse_outcome(item: object, index: int) -> RecipientOutcome:
    if not isinstance(item, dict):
        raise AuditChainError(f"outcomes[{index}]: expected an object")
    return RecipientOutcome(
        partner=PartnerId(_member(item, "partner", str)),
        outcome=cast(Outcome, _member(item, "outcome", str)),
        rule=_member(item, "rule", str),
        view=_member(item, "view", str, optional=True),
        lawful_basis=_member(item, "lawful_basis", str, optional=True),
        reason=_member(item, "reason", str, optional=True),
    )


def _refuse_float(text: str) -> Any:
    raise AuditChainError(f"audit records hold no floating-point numbers (found {text})")


def _load_document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(
            data.decode("utf-8"), parse_float=_refuse_float, parse_constant=_refuse_float
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise AuditChainError(f"not a JSON audit record: {exc}") from exc
    if not isinstance(document, dict):
        raise AuditChainError("not a JSON audit record: expected an object")
    return document


def _record_from_document(document: Mapping[str, Any]) -> AuditRecord:
    version = _member(document, "v", int)
    if version != FORMAT_VERSION:
        raise AuditChainError(f"v: audit format version {version} is not supported")
    kind = _member(document, "kind", str)
    if kind not in _KINDS:
        raise AuditChainError(f"kind: {kind!r} is not one of {sorted(_KINDS)}")
    outcomes = _member(document, "outcomes", list)
    seq = _member(document, "seq", int)
    if seq < 0:
        raise AuditChainError("seq: must not be negative")
    return AuditRecord(
        chain=_member(document, "chain", str),
        seq=seq,
        time=parse_time(_member(document, "time", str)),
        kind=cast(RecordKind, kind),
        event_id=EventId(_member(document, "event_id", str)),
        source=AgencyId(_member(document, "source", str)),
        subject=Subject(_member(document, "subject", str)),
        input_offset=_member(document, "input_offset", int, optional=True),
        outcomes=tuple(_parse_outcome(item, i) for i, item in enumerate(outcomes)),
        policy_version=_member(document, "policy_version", str),
        router=_member(document, "router", str),
        prev_digest=_digest_member(document, "prev_digest"),
        digest=_digest_member(document, "digest"),
        signer=_member(document, "signer", str, optional=True),
        signature=(
            _member(document, "signature", str, optional=True) if "signature" in document else None
        ),
    )


def parse_record(data: bytes) -> AuditRecord:
    """Decode one audit record's bytes; :class:`AuditChainError` names what is wrong.

    This checks the shape only; whether the digest matches is :func:`verify_chain`'s job.
    """
    return _record_from_document(_load_document(data))


# --- building a chain --------------------------------------------------------------------


@dataclass(frozen=True)
class ChainHead:
    """Where a chain stands: the next ``seq`` to write and the last record's digest."""

    chain: str
    next_seq: int
    digest: str

    @classmethod
    def genesis(cls, chain: str) -> ChainHead:
        """The head of a chain that has no records yet."""
        return cls(chain=chain, next_seq=0, digest=GENESIS_DIGEST)


def resume_head(chain: str, records: Iterable[bytes]) -> ChainHead:
    """The head of ``chain`` after the committed ``records`` (an audit topic's values, in order).

    A router calls this when it is assigned an input partition, after its transactional
    producer has fenced any previous owner, reading the audit topic ``read_committed`` up to
    the high watermark taken after the fence (not merely to the last stable offset, which
    another chain's open transaction can hold back). Records of other chains and records
    that do not parse are passed over here; ``msht audit verify`` reports them.
    """
    head = ChainHead.genesis(chain)
    for data in records:
        try:
            record = parse_record(data)
        except AuditChainError:
            continue
        if record.chain == chain:
            head = ChainHead(chain=chain, next_seq=record.seq + 1, digest=record.digest)
    return head


def decided_event_ids(chain: str, records: Iterable[bytes]) -> set[EventId]:
    """Event ids ``chain`` has a ``decision`` record for: the router's de-duplication memory.

    A re-published event has the same subject, hence the same input partition and chain, so
    after a restart the router rebuilds its "already decided" set from its own chain.
    Quarantined inputs are not included: a corrected re-publication must still be decided.
    """
    decided: set[EventId] = set()
    for data in records:
        try:
            record = parse_record(data)
        except AuditChainError:
            continue
        if record.chain == chain and record.kind == "decision":
            decided.add(record.event_id)
    return decided


class AuditChain:
    """Appends records to one chain, each linked to the digest of the one before.

    Stateful: it remembers the head. The router takes :attr:`head` before a transaction and
    calls :meth:`reset` with it when the transaction aborts, so the records it never
    committed leave no trace in the chain.
    """

    def __init__(self, head: ChainHead, *, router: str, signer: RecordSigner | None = None):
        if not router:
            raise AuditChainError("router: the router instance id must not be empty")
        self._head = head
        self._router = router
        self._signer = signer

    @property
    def head(self) -> ChainHead:
        """The current head (advanced by every :meth:`append`)."""
        return self._head

    def reset(self, head: ChainHead) -> None:
        """Go back to ``head`` (taken earlier from :attr:`head`), after an aborted transaction."""
        if head.chain != self._head.chain:
            raise AuditChainError(f"chain: cannot reset chain {self._head.chain} to {head.chain}")
        self._head = head

    def append(
        self,
        *,
        time: datetime,
        event_id: EventId,
        source: AgencyId,
        subject: Subject,
        outcomes: Iterable[RecipientOutcome],
        policy_version: str,
        input_offset: int | None = None,
        kind: RecordKind = "decision",
    ) -> AuditRecord:
        """Build the next record of the chain and advance the head to it."""
        if kind not in _KINDS:
            raise AuditChainError(f"kind: {kind!r} is not one of {sorted(_KINDS)}")
        if not event_id:
            raise AuditChainError("event_id: must not be empty")
        if input_offset is not None and input_offset < 0:
            raise AuditChainError("input_offset: must not be negative")
        outcomes = tuple(outcomes)
        partners = [outcome.partner for outcome in outcomes]
        repeated = sorted({p for p in partners if partners.count(p) > 1})
        if repeated:
            raise AuditChainError(f"outcomes: partner {', '.join(repeated)} listed more than once")
        draft = AuditRecord(
            chain=self._head.chain,
            seq=self._head.next_seq,
            time=time,
            kind=kind,
            event_id=event_id,
            source=source,
            subject=subject,
            input_offset=input_offset,
            outcomes=outcomes,
            policy_version=policy_version,
            router=self._router,
            prev_digest=self._head.digest,
            digest=GENESIS_DIGEST,
            signer=self._signer.key_id if self._signer else None,
        )
        digest = body_digest(draft.body())
        signature = self._signer.sign(digest) if self._signer else None
        record = replace(draft, digest=digest, signature=signature)
        self._head = ChainHead(chain=record.chain, next_seq=record.seq + 1, digest=digest)
        return record


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
class ChainReport:
    """What :func:`verify_chain` found: record count, each chain's head, every break."""

    records: int
    heads: Mapping[str, ChainHead]
    breaks: tuple[ChainBreak, ...]

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
        raw = base64.urlsafe_b64decode(record.signature.encode("ascii"))
        public_key.verify(raw, _signed_message(record.digest))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"the signature by key {record.signer} does not match the record's digest"
    return None


_Problem = tuple[str, str | None, str | None]


def _problems(
    record: AuditRecord,
    document: Mapping[str, Any],
    data: bytes,
    states: Mapping[str, _ChainState],
    router_keys: Mapping[KeyId, Ed25519PublicKey] | None,
) -> list[_Problem]:
    """Everything wrong with ``record`` on its own and as the next link of its chain."""
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
        signature_problem = _check_signature(record, router_keys)
        if signature_problem is not None:
            problems.append((signature_problem, None, None))

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
    breaks: list[ChainBreak] = []
    count = 0
    for index, item in enumerate(records):
        count += 1
        offset, data = _split(item)
        try:
            document = _load_document(data)
            record = _record_from_document(document)
        except AuditChainError as exc:
            breaks.append(ChainBreak(index, offset, None, None, None, f"unreadable: {exc}"))
            continue

        for reason, expected, found in _problems(record, document, data, states, router_keys):
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
    return ChainReport(records=count, heads=heads, breaks=tuple(breaks))


# --- querying ----------------------------------------------------------------------------


def query(
    records: Iterable[bytes],
    *,
    event_id: str | None = None,
    partner: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[AuditRecord]:
    """The records matching every filter given (``since`` inclusive, ``until`` exclusive).

    ``partner`` matches a record that decided anything about that partner (delivered,
    withheld or held). A record that does not parse raises :class:`AuditChainError` naming
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
        yield record
