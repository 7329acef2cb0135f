"""Audit record model and its canonical bytes: build, serialise, parse.

A record is canonical JSON (sorted keys, no spaces, UTF-8, integers only); its ``digest`` is
SHA-256 over the canonical bytes of the record without ``digest`` and ``signature``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.errors import AuditChainError
from broker.types import AgencyId, EventId, KeyId, Outcome, PartnerId, Subject

FORMAT_VERSION = 1
"""The ``v`` member of every record this module writes; other versions are refused."""

GENESIS_DIGEST = "00" * 32
"""``prev_digest`` of the first record of every chain (32 zero bytes, hex)."""

"""What happened for one recipient: sent, refused by policy, or held for a human decision."""

RecordKind = Literal["decision", "quarantine", "duplicate"]
"""A routing decision, an input sent to quarantine, or a re-published event dropped."""

_OUTCOMES: frozenset[str] = frozenset(o.value for o in Outcome)
KINDS: frozenset[str] = frozenset(get_args(RecordKind))
"""Every valid ``kind``."""
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SIGNATURE_CONTEXT = b"msht-audit-record/v1\x00"
_DIGEST_MEMBERS = frozenset({"digest", "signature"})
_SIGNATURE_LEN = 64


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
    # A stack, not recursion: a record holds ~60 values, most of them strings.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | int | None):
            continue
        if isinstance(item, float):
            raise AuditChainError("audit records hold no floating-point numbers")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def chain_id(topic: str, partition: int) -> str:
    """The chain of the input topic-partition ``topic``/``partition`` (Kafka names hold no '/')."""
    if "/" in topic or partition < 0:
        raise AuditChainError(f"chain: {topic!r} partition {partition} is not a topic-partition")
    return f"{topic}/{partition}"


def format_time(moment: datetime) -> str:
    """``moment`` as the audit trail writes it: UTC, microseconds, ``Z`` (always 27 chars)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise AuditChainError("time: an audit time must be timezone-aware")
    m = moment.astimezone(UTC)
    # Spelt field by field: strftime's %Y writes a year before 1000 with fewer digits,
    # which no reader of the trail (parse_time included) takes.
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond:06d}Z"
    )


# The spelling format_time writes, in ASCII digits: such a time is read field by field,
# which is a fifth of what strptime costs per audit record; anything else goes to strptime.
_WRITTEN_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z", re.ASCII
)


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; refuses any other spelling."""
    try:
        written = _WRITTEN_TIME.fullmatch(text)
        if written is not None:
            # The same datetime strptime gives, and a ValueError where it raises one (a
            # month 13, a 30 February, a second 60): datetime checks every field's range.
            year, month, day, hour, minute, second, micro = map(int, written.groups())
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise AuditChainError(f"time: {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from exc


# --- the record model --------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientOutcome:
    """The decision for one partner: what happened, which rule decided, in which view.

    ``lawful_basis`` names what the disclosure rests on (``law_enforcement`` for DPA 2018
    Part 3 processing, else the UK GDPR basis the agreement names, e.g. ``consent``); records
    written before agreements existed hold the transfer basis there, or null. ``reason`` is
    the policy's own wording (never event content).

    The members after ``reason`` are written only when set, so a record written before they
    existed reads back, and re-serialises, to the same bytes and digest.
    """

    partner: PartnerId
    outcome: Outcome
    rule: str
    view: str | None = None
    lawful_basis: str | None = None
    reason: str | None = None
    agreement: str | None = None
    """The information-sharing agreement the partner receives under."""
    purposes: tuple[str, ...] = ()
    """The purposes that agreement names."""
    granting_rule: str | None = None
    """The rule that granted or refused, also when a guard (``rule``) overrode it."""
    guards: tuple[str, ...] = ()
    """Every guard that fired for this partner."""
    transfer: Mapping[str, Any] | None = None
    """For a transfer abroad: the DPA 2018 ss.75(3)/76(3) documentation (time, recipient,
    jurisdiction, basis, justification, instrument, what was transferred, onward sharing)."""

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
        extra: dict[str, Any] = {}
        if self.agreement is not None:
            extra["agreement"] = self.agreement
        if self.purposes:
            extra["purposes"] = list(self.purposes)
        if self.granting_rule is not None:
            extra["granting_rule"] = self.granting_rule
        if self.guards:
            extra["guards"] = list(self.guards)
        if self.transfer is not None:
            extra["transfer"] = dict(self.transfer)
        return {
            "partner": self.partner,
            "outcome": str(self.outcome),
            "rule": self.rule,
            "view": self.view,
            "lawful_basis": self.lawful_basis,
            "reason": self.reason,
            **extra,
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
    content_digest: str | None = None
    """SHA-256 (hex) of the event's content as the router admitted it (see
    :func:`broker.router.route.content_digest`); lets a restarted router tell a re-publication
    from a different event re-using a decided id. Absent from records of undecodable input
    and from records written before it existed."""
    reason: str | None = None
    """Why a ``quarantine`` record's input was quarantined (``unverified``, ``wrong-topic``...,
    the router's reason code, never event content). Absent from other records and from
    records written before it existed."""
    replay_of: str | None = None
    """``<topic>:<partition>:<offset>`` of the quarantine record this input is a replay of
    (``msht quarantine replay``); links the replay's decision to the original quarantine."""
    trust_version: str | None = None
    """The digest (``sha256:<hex>``) of the trust store the decision was made with, as the
    router loaded it (see :mod:`broker.router.reload`). Absent from records written before
    it existed, which stay readable and keep their digests."""
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """:meth:`to_bytes`, when the chain that built the record already wrote them (``replace``
    gives a record without them, so they never outlive a change)."""

    def body(self) -> dict[str, Any]:
        """Every member the digest covers (all but ``digest`` and ``signature``).

        ``content_digest``, ``reason``, ``replay_of`` and ``trust_version`` are written only
        when known, so records written before they existed keep their digests.
        """
        extra: dict[str, Any] = {}
        if self.content_digest is not None:
            extra["content_digest"] = self.content_digest
        if self.reason is not None:
            extra["reason"] = self.reason
        if self.replay_of is not None:
            extra["replay_of"] = self.replay_of
        if self.trust_version is not None:
            extra["trust_version"] = self.trust_version
        return {
            **extra,
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
        if self._encoded is not None:
            return self._encoded
        document = self.body()
        document["digest"] = self.digest
        if self.signature is not None:
            document["signature"] = self.signature
        return canonical_json(document)

    def partners(self) -> frozenset[PartnerId]:
        """Every partner this record decided about."""
        return frozenset(outcome.partner for outcome in self.outcomes)


def sealed_record(draft: AuditRecord, body: Mapping[str, Any], digest: str,
                  signature: str | None) -> AuditRecord:  # fmt: skip
    """``draft`` with its digest and signature, its bytes written once: ``body`` is
    ``draft.body()``, already checked for floats when ``digest`` was computed over it."""
    record = replace(draft, digest=digest, signature=signature)
    document = {**body, "digest": digest}
    if signature is not None:
        document["signature"] = signature
    object.__setattr__(record, "_encoded", loaded_canonical_bytes(document))
    return record


def body_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical bytes of ``body`` without ``digest``/``signature``."""
    covered = {key: value for key, value in body.items() if key not in _DIGEST_MEMBERS}
    return hashlib.sha256(canonical_json(covered)).hexdigest()


# ``canonical_json``'s encoding without its float walk, for documents ``load_document``
# returned: its parser refuses every float, so the walk (a third of ``msht audit verify``'s
# Python time, run twice per record) would check nothing there.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def loaded_canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """:func:`canonical_json` of a ``document`` that :func:`load_document` returned.

    Only for such documents: they hold no float, which :func:`canonical_json` checks for.
    """
    return _CANONICAL.encode(document).encode("utf-8")


def loaded_body_digest(document: Mapping[str, Any]) -> str:
    """:func:`body_digest` of a ``document`` that :func:`load_document` returned (no float)."""
    covered = {key: value for key, value in document.items() if key not in _DIGEST_MEMBERS}
    return hashlib.sha256(loaded_canonical_bytes(covered)).hexdigest()


def signed_message(digest: str) -> bytes:
    """The bytes a router key signs for a record: a context string, then the raw digest."""
    return _SIGNATURE_CONTEXT + bytes.fromhex(digest)


@dataclass(frozen=True)
class RecordSigner:
    """The router's Ed25519 key, used to sign each record's digest (optional)."""

    key_id: KeyId
    private_key: Ed25519PrivateKey = field(repr=False)

    def sign(self, digest: str) -> str:
        """Padded base64url signature over the domain-separated digest."""
        return encode_signature(self.private_key.sign(signed_message(digest)))


def encode_signature(raw: bytes) -> str:
    """The one spelling of a record's signature: padded base64url (RFC 4648 §5, with ``=``)."""
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_signature(text: str) -> bytes:
    """The 64 bytes of a record's ``signature``; :class:`AuditChainError` unless ``text`` is
    exactly their :func:`encode_signature` spelling.

    The signature is not covered by the digest, and base64 has several spellings of the same
    bytes (unused low bits of the last character, missing or extra padding, characters a
    lenient decoder skips), so only the canonical one is accepted: otherwise a record could
    be altered without any check noticing.
    """
    problem = "signature: not the canonical padded base64url spelling of a 64-byte signature"
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise AuditChainError(problem) from exc
    if len(raw) != _SIGNATURE_LEN or encode_signature(raw) != text:
        raise AuditChainError(problem)
    return raw


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


def _outcome_of(value: str, index: int) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        raise AuditChainError(
            f"outcomes[{index}].outcome: {value!r} is not one of {sorted(_OUTCOMES)}"
        ) from None


def _parse_outcome(item: object, index: int) -> RecipientOutcome:
    if not isinstance(item, dict):
        raise AuditChainError(f"outcomes[{index}]: expected an object")
    return RecipientOutcome(
        partner=PartnerId(_member(item, "partner", str)),
        outcome=_outcome_of(_member(item, "outcome", str), index),
        rule=_member(item, "rule", str),
        view=_member(item, "view", str, optional=True),
        lawful_basis=_member(item, "lawful_basis", str, optional=True),
        reason=_member(item, "reason", str, optional=True),
        agreement=_member(item, "agreement", str) if "agreement" in item else None,
        purposes=_strings(item, "purposes", index),
        granting_rule=_member(item, "granting_rule", str) if "granting_rule" in item else None,
        guards=_strings(item, "guards", index),
        transfer=_member(item, "transfer", dict) if "transfer" in item else None,
    )


def _strings(item: Mapping[str, Any], name: str, index: int) -> tuple[str, ...]:
    """An optional list-of-strings member of an outcome (absent in older records)."""
    if name not in item:
        return ()
    value = _member(item, name, list)
    if not all(isinstance(v, str) for v in value):
        raise AuditChainError(f"outcomes[{index}].{name}: expected a list of strings")
    return tuple(value)


def _refuse_float(text: str) -> Any:
    raise AuditChainError(f"audit records hold no floating-point numbers (found {text})")


def load_document(data: bytes) -> dict[str, Any]:
    """The JSON object in ``data``, refusing floats, NaN and anything but an object."""
    try:
        document = json.loads(
            data.decode("utf-8"), parse_float=_refuse_float, parse_constant=_refuse_float
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise AuditChainError(f"not a JSON audit record: {exc}") from exc
    except ValueError as exc:
        # An integer longer than Python converts (sys.get_int_max_str_digits()): a record
        # no router writes, which must be reported, not end the check.
        raise AuditChainError(f"not a JSON audit record: {exc}") from exc
    if not isinstance(document, dict):
        raise AuditChainError("not a JSON audit record: expected an object")
    return document


def record_from_document(document: Mapping[str, Any]) -> AuditRecord:
    """The record a parsed JSON object describes; names the first member that is wrong."""
    version = _member(document, "v", int)
    if version != FORMAT_VERSION:
        raise AuditChainError(f"v: audit format version {version} is not supported")
    kind = _member(document, "kind", str)
    if kind not in KINDS:
        raise AuditChainError(f"kind: {kind!r} is not one of {sorted(KINDS)}")
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
        content_digest=(
            _digest_member(document, "content_digest") if "content_digest" in document else None
        ),
        reason=_member(document, "reason", str) if "reason" in document else None,
        replay_of=_member(document, "replay_of", str) if "replay_of" in document else None,
        trust_version=(
            _member(document, "trust_version", str) if "trust_version" in document else None
        ),
    )


def parse_record(data: bytes) -> AuditRecord:
    """Decode one audit record's bytes; :class:`AuditChainError` names what is wrong.

    This checks the shape only; whether the digest matches is :func:`verify_chain`'s job.
    """
    return record_from_document(load_document(data))
