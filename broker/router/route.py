"""What the router does with one ingress record: the pure decision, no Kafka.

Steps, each failing into quarantine with a named reason (never a crash, never a drop):
the broker stamped the record with its append time → decode the envelope (a format version
this build reads) → the topic is the source agency's own ingress topic → the record's key is
the subject and it sits on the partition Kafka's default partitioner gives that key → it is
an original (no provenance) → every signature verifies at the broker's append time → the
event type carries the payload record the header names → the payload decodes → the fields
the publisher sealed to the router open → facts → policy decision. Then, for every partner
the policy grants, the view is built, its tagged fields are sealed to the partner's own
key, and the router countersigns it with the original's digest and signatures as provenance.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.audit import RecipientOutcome
from broker.crypto.commitments import Opening, leaf_set, slot_places
from broker.crypto.committed import check_committed, salt_lookup, view_proof_of, writer_of
from broker.crypto.sealed_fields import (
    open_protected_salted,
    record_protected_paths,
    scope_of,
)
from broker.crypto.sealing import seal_fields
from broker.crypto.signing import sign, verify
from broker.crypto.signing_keys import SigningKey
from broker.crypto.trust import TrustStore
from broker.errors import (
    CodecError,
    CommitmentError,
    EventTypeMismatchError,
    MshtError,
    PolicyDecisionError,
    SealingError,
    UnknownFormatError,
    VerificationError,
)
from broker.events import codec
from broker.events.envelope import (
    Envelope,
    Provenance,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope_with_header,
    envelope_digest,
    header_bytes,
    proof_field_bytes,
)
from broker.events.fields import FieldInfo
from broker.events.paths import Step
from broker.events.schemas import SchemaVersion, registry
from broker.kafka.partitioner import default_partition
from broker.policy import (
    EventFacts,
    LoadedPolicy,
    PartnerDecision,
    decide,
    extract_facts,
)
from broker.policy.dtn import DTN_LAW, dtn_problems
from broker.policy.views import apply_view_sharing
from broker.router.limits import (
    DEFAULT_LIMITS,
    OVER_LIMIT,
    InputLimits,
    check_envelope,
    check_payload,
    check_record,
)
from broker.router.proofs import withheld_slots
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject

LOG_APPEND_TIME = 1
"""Kafka's timestamp type of a record stamped by the broker when it appended it (the topic
has ``message.timestamp.type=LogAppendTime``); 0 is the producer's ``CreateTime``."""

IDENTIFYING_DTN = "identifying-dtn"
"""Quarantine reason of a Duty to Notify report that claims consent or identifies the person."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTENT_CONTEXT = b"msht-broker/event-content/v1\x00"


@dataclass(frozen=True)
class RouterIdentity:
    """The router's own keys: it signs views and opens what publishers sealed to it."""

    agency: AgencyId
    signing_key: SigningKey
    encryption_keys: tuple[X25519PrivateKey, ...]


@dataclass(frozen=True)
class RouteConfig:
    """Everything :func:`route` reads besides the record itself."""

    policy: LoadedPolicy
    trust: TrustStore
    identity: RouterIdentity
    ingress_topic_of: Callable[[AgencyId], str]
    delivery_topic_of: Callable[[PartnerId], str]
    max_skew: timedelta
    max_view_bytes: int = 900_000
    """Views larger than this are withheld, not sent: Kafka refuses records over its
    ``message.max.bytes`` (1 MiB by default) and a refused record would abort the partition's
    transaction again on every retry. Sealing makes a view about twice its field sizes."""
    limits: InputLimits = DEFAULT_LIMITS
    """The bounds on one input (:mod:`broker.router.limits`); over one → quarantined."""
    trust_version: str | None = None
    """The digest of the trust store ``trust`` was loaded from; audit records cite it."""


@dataclass(frozen=True)
class Delivery:
    """One recipient's countersigned view."""

    partner: PartnerId
    topic: str
    value: bytes


@dataclass(frozen=True)
class Quarantined:
    """An input that cannot be routed, and why. ``reason`` is a short stable code."""

    reason: str
    error: str
    event_id: EventId | None = None
    source: AgencyId | None = None
    subject: Subject | None = None
    limit: str | None = None
    """For reason ``over-limit``: the name of the bound the input exceeds."""


@dataclass(frozen=True)
class Routed:
    """A decided event: the deliveries to produce and the outcome for every partner."""

    event_id: EventId
    source: AgencyId
    subject: Subject
    policy_version: str
    deliveries: tuple[Delivery, ...]
    outcomes: tuple[RecipientOutcome, ...]


@dataclass(frozen=True)
class Decoded:
    """An ingress envelope that verified, with its payload opened."""

    envelope: Envelope
    payload: dict[str, Any] = field(repr=False)
    facts: EventFacts = field(repr=False)
    opening: Opening | None = field(default=None, repr=False)
    """The original's commitments, checked (every leaf, every salt): views carry their
    proof. ``None`` for an original written before commitments (Envelope v2)."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the broker, not the publisher, says about an ingress record: where and when."""

    topic: str
    partition: int
    partitions: int
    """How many partitions the topic has (the default partitioner's modulus)."""
    key: bytes | None
    timestamp_ms: int
    timestamp_type: int
    """:data:`LOG_APPEND_TIME` when ``timestamp_ms`` is the broker's append time."""


def _reason(exc: MshtError) -> str:
    if isinstance(exc, UnknownFormatError):
        return "unknown-format"
    if isinstance(exc, EventTypeMismatchError):
        return "wrong-payload-type"
    if isinstance(exc, CodecError):
        return "undecodable"
    if isinstance(exc, CommitmentError):
        return BAD_COMMITMENT
    if isinstance(exc, VerificationError):
        return "unverified"
    if isinstance(exc, SealingError):
        return "unsealable"
    if isinstance(exc, PolicyDecisionError):
        return "undecidable"
    return "invalid"


def _fields(record_name: str) -> tuple[FieldInfo, ...]:
    return registry().fields(record_name)


def admit(
    config: RouteConfig, arrival: Arrival, value: bytes, now: datetime
) -> Decoded | Quarantined:
    """Decode and verify an ingress record; a :class:`Quarantined` names what failed.

    ``now`` is the router's clock; key validity, revocation and the skew window are judged
    at the broker's append time in ``arrival`` (docs/EVENTS.md, "Which time counts").
    Every bound of ``config.limits`` is checked before the work it bounds (size before
    decoding, signatures before verifying, the payload's shape before opening sealed
    fields), so no input costs more than the bounds allow.
    """
    breach = check_record(config.limits, arrival.key, value)
    if breach is not None:
        return Quarantined(OVER_LIMIT, breach.error, limit=breach.name)
    if arrival.timestamp_type != LOG_APPEND_TIME:
        # A CreateTime is whatever the publisher wrote: it proves nothing about when the
        # record reached Kafka, so validity and revocation cannot be judged.
        return Quarantined(
            "untrusted-time",
            f"timestamp: topic {arrival.topic!r} does not stamp records with the broker's "
            f"append time (timestamp type {arrival.timestamp_type}, not LogAppendTime); "
            "set message.timestamp.type=LogAppendTime on it (msht provision does)",
        )
    try:
        envelope = decode_envelope(value)
    except CodecError as exc:
        return Quarantined(_reason(exc), str(exc))
    header = envelope.header
    breach = check_envelope(config.limits, envelope)
    if breach is not None:
        # A header string may be the oversized part: carry none of them.
        return Quarantined(OVER_LIMIT, breach.error, limit=breach.name)

    def refuse(reason: str, error: str) -> Quarantined:
        return Quarantined(reason, error, header.event_id, header.source, header.subject)

    expected = config.ingress_topic_of(header.source)
    if arrival.topic != expected:
        return refuse(
            "wrong-topic",
            f"source: event claims agency {header.source!r} but arrived on {arrival.topic!r}, "
            f"not that agency's ingress topic {expected!r}",
        )
    misplaced = _misplaced(arrival, header.subject)
    if misplaced is not None:
        return refuse(*misplaced)
    if header.provenance is not None:
        return refuse(
            "not-original", "provenance: an ingress event must be an original, not a view"
        )
    for index, sig in enumerate(envelope.signatures):
        if sig.signer != header.source:
            return refuse(
                "unverified",
                f"signature {index}: signer {sig.signer!r} is not the source {header.source!r}; "
                "an ingress event is an original and carries only its source's signatures",
            )
    appended_at = _EPOCH + timedelta(milliseconds=arrival.timestamp_ms)
    try:
        verify(envelope, config.trust, now=now, max_skew=config.max_skew, appended_at=appended_at)
        payload = decode_payload(envelope)
        breach = check_payload(config.limits, payload)
        if breach is not None:
            return Quarantined(
                OVER_LIMIT,
                breach.error,
                header.event_id,
                header.source,
                header.subject,
                limit=breach.name,
            )
        # The scope binds the header's source: a value another agency's event carried
        # (copied from its ingress record, a backup, quarantine) does not open here.
        payload, salts, unsalted = open_protected_salted(
            payload,
            scope_of(header),
            PartnerId(config.identity.agency),
            config.identity.encryption_keys,
        )
        # Every value must be the one the originator committed to (a root it signed).
        opening = (
            check_committed(envelope, payload, salts, original=True, unsalted=unsalted)
            if header.commitment is not None
            else None
        )
        fields = _fields(header.payload_schema_name)
        facts = extract_facts(header, payload, fields)
    except MshtError as exc:
        return refuse(_reason(exc), str(exc))
    publisher = config.policy.policy.partner(header.source)
    permitted = publisher.originates if publisher is not None else None
    if permitted is not None and header.event_type not in permitted:
        return refuse(
            NOT_PERMITTED,
            f"event_type: {header.source} may not publish {header.event_type} "
            f"(the partner registry lets it originate {', '.join(permitted) or 'nothing'})",
        )
    identifying = dtn_problems(header.event_type, payload, fields)
    if identifying:
        # Never decided, never delivered in any view: the publisher must re-file it.
        return refuse(IDENTIFYING_DTN, f"{'; '.join(identifying)}: {DTN_LAW}")
    return Decoded(envelope, payload, facts, opening)


def _misplaced(arrival: Arrival, subject: Subject) -> tuple[str, str] | None:
    """Why the record is not where Kafka's default partitioner puts its subject, if it is not.

    The key must be the subject, and the partition the one murmur2 gives it: then every copy
    of an event (and every event of one subject) meets one partition's de-duplication window,
    whichever client published it and whatever partition it asked for.
    """
    key = subject.encode("utf-8")
    if arrival.key != key:
        found = "no key" if arrival.key is None else f"a {len(arrival.key)}-byte key"
        return (
            "wrong-key",
            f"key: an ingress record's key must be its header's subject (UTF-8); "
            f"this one has {found} that differs",
        )
    wanted = default_partition(key, arrival.partitions)
    if arrival.partition != wanted:
        return (
            "wrong-partition",
            f"partition: the record is on partition {arrival.partition} of {arrival.topic!r} but "
            f"Kafka's default partitioner (murmur2 of the key, {arrival.partitions} partitions) "
            f"puts its subject on partition {wanted}; publish with the default partitioner "
            "(Java, aiokafka) or set the partition explicitly",
        )
    return None


BAD_COMMITMENT = "bad-commitment"
"""Quarantine reason: the payload does not reproduce the commitment root its originator
signed (a value, salt or hash altered; the error names the field when it can)."""

NOT_PERMITTED = "not-permitted"
"""Quarantine reason: the source may not originate this event type (its ``originates``)."""


def content_digest(decoded: Decoded) -> str:
    """SHA-256 (hex) of what makes an event *this* event, for comparing two uses of one id.

    Covers the header without its two times and provenance (source, type, subject, markings,
    payload record) and the payload as the router opened it, re-encoded with the newest
    schema version. Not covered: signatures, ``signed_at``, ``published_at`` and
    ``occurred_at`` (a publisher re-sending after a crash stamps them afresh), the sealed
    ciphertext (fresh nonces each time) and the commitment root (fresh salts). So a
    re-publication of the same document has the same digest, and any change to what a
    recipient would read gives another.
    """
    header = decoded.envelope.header
    current = registry().current(header.payload_schema_name)
    normal = replace(
        header,
        occurred_at=_EPOCH,
        published_at=_EPOCH,
        provenance=None,
        # Fresh salts give every re-publication its own root; the values are what count.
        commitment=None,
        payload_schema=current.fingerprint,
        payload_schema_name=current.name,
    )
    head = header_bytes(normal, check=False)
    body = codec.encode_body(current, decoded.payload, check=False)
    digest = hashlib.sha256(_CONTENT_CONTEXT)
    for part in (head, body):
        digest.update(struct.pack(">I", len(part)))
        digest.update(part)
    return digest.hexdigest()


def _outcome(d: PartnerDecision, *, reason: str | None = None) -> RecipientOutcome:
    return RecipientOutcome(
        partner=d.partner,
        outcome=d.outcome if reason is None else Outcome.WITHHOLD,
        rule=d.decided_by,
        view=d.view,
        lawful_basis=str(d.lawful_basis) if d.lawful_basis is not None else None,
        reason=reason or d.reason,
        agreement=d.agreement,
        purposes=tuple(str(p) for p in d.purposes),
        granting_rule=d.rule,
        guards=d.guards,
        transfer=d.transfer.to_json() if d.transfer is not None else None,
    )


def _view(
    config: RouteConfig,
    decoded: Decoded,
    original: bytes,
    d: PartnerDecision,
    now: datetime,
    keys: Mapping[PartnerId, X25519PublicKey],
    digest: bytes | None = None,
) -> bytes:
    """``d.partner``'s view, sealed to its key and countersigned; ``digest``: the original's
    :func:`envelope_digest`, when the caller computed it once for all views."""
    header = decoded.envelope.header
    assert d.plan is not None  # a delivery always carries its view plan
    opening = decoded.opening
    # Only what the view withholds or seals is copied (the rest is shared with the decoded
    # payload and only read from here on). The one list of sealed paths drives both the
    # copy and the sealing, so sealing in place can only write inside the copy.
    sealed = (*record_protected_paths(header.payload_schema_name), *d.seals)
    payload = apply_view_sharing(decoded.payload, d.plan, sealed).payload
    sealed_at: list[tuple[Step, ...]] = []
    payload = seal_fields(
        payload,
        sealed,
        scope_of(header),
        d.partner,
        keys[d.partner],
        in_place=True,
        salts=salt_lookup(opening) if opening is not None else None,
        sealed_at=sealed_at,
    )
    committed: dict[str, Any] = {}
    if opening is not None:
        # The originator's root and the proof for what this recipient sees: its signature
        # then verifies from the view alone (docs/EVENTS.md, "Commitments").
        writer = writer_of(decoded.envelope)
        committed = {
            "commitment": header.commitment,
            "proof": view_proof_of(
                opening,
                writer,
                payload,
                withheld_slots(d.plan, writer),
                _slots_of(writer, sealed_at),
            ),
            "writer": writer,
        }
    view = build_envelope(
        event_type=header.event_type,
        source=header.source,
        subject=header.subject,
        markings=header.markings,
        payload=payload,
        occurred_at=header.occurred_at,
        published_at=header.published_at,
        event_id=header.event_id,
        payload_record=header.payload_schema_name,
        # Decoded from Avro, then only nulled, masked or sealed (strings): still valid.
        check=False,
        provenance=_provenance(config, d, digest or envelope_digest(original), decoded),
        **committed,
    )
    # The view's header and proof are encoded once: their bytes are signed and sent as
    # they are.
    head = header_bytes(view.header, check=False)
    proof = proof_field_bytes(view.proof) if view.proof is not None else None
    signed = sign(view, config.identity.signing_key, signed_at=now, header=head, proof=proof)
    return encode_envelope_with_header(signed, head, proof=proof)


def _slots_of(version: SchemaVersion, places: list[tuple[Step, ...]]) -> set[int] | None:
    """The slots of the values the view sealed: every sealed value in a view is one the
    router sealed (admit opened every sealed value of the original, or refused it).
    ``None`` if a place has no slot (the proof then finds them by walking the view)."""
    slots = slot_places(leaf_set(version))
    try:
        return {slots[p] for p in places}
    except KeyError:
        return None


def _provenance(
    config: RouteConfig, d: PartnerDecision, digest: bytes, decoded: Decoded
) -> Provenance:
    """What the recipient's view says about where it came from and why it looks as it does:
    the original's digest and signatures, and the delivery's rule, agreement, lawful basis,
    onward-sharing and retention conditions, and each thing a guard withheld."""
    partner = config.policy.policy.partner(d.partner)
    agreement = partner.agreement if partner is not None else None
    conditions = agreement.conditions if agreement is not None else None
    return Provenance(
        original_digest=digest,
        original_signatures=decoded.envelope.signatures,
        recipient=d.partner,
        view=d.view,
        rule=d.rule or d.decided_by,
        agreement=d.agreement,
        purposes=tuple(str(p) for p in d.purposes),
        lawful_basis=str(d.lawful_basis) if d.lawful_basis is not None else None,
        transfer_basis=str(d.basis) if d.basis is not None else None,
        onward_sharing=conditions.onward_sharing if conditions is not None else None,
        retention=conditions.retention if conditions is not None else None,
        withheld=d.withheld,
    )


def _partner_key(config: RouteConfig, partner: PartnerId, now: datetime) -> X25519PublicKey:
    # Which key is current is judged afresh for every event; only the parsing of its bytes
    # into a key object is kept.
    trusted = config.trust.current_encryption_key(partner, now)
    return _x25519_public(trusted.public_key)


@lru_cache(maxsize=256)
def _x25519_public(raw: bytes) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(raw)


def deliver_view(
    config: RouteConfig, decoded: Decoded, original: bytes, d: PartnerDecision, now: datetime
) -> Delivery:
    """The countersigned view of ``decoded`` for ``d.partner``, as :func:`route` builds it.

    Raises :class:`MshtError` when it cannot be built (no valid encryption key, a view over
    ``config.max_view_bytes``): the caller withholds, never sends in clear. Used for a held
    event a reviewer released (``broker/router/decisions.py``).
    """
    keys = {d.partner: _partner_key(config, d.partner, now)}
    value = _view(config, decoded, original, d, now, keys)
    if len(value) > config.max_view_bytes:
        raise PolicyDecisionError(f"the view is {len(value)} bytes, over {config.max_view_bytes}")
    return Delivery(d.partner, config.delivery_topic_of(d.partner), value)


def route(config: RouteConfig, decoded: Decoded, original: bytes, now: datetime) -> Routed:
    """Decide ``decoded`` for every partner and build the views of those it is granted to.

    A partner without a valid encryption key, or whose view cannot be built, is withheld
    with that reason: the router fails closed, never delivering a field in clear.
    """
    header = decoded.envelope.header
    decision = decide(config.policy, decoded.facts, now)
    deliveries: list[Delivery] = []
    outcomes: list[RecipientOutcome] = []
    keys: dict[PartnerId, X25519PublicKey] = {}
    digest = envelope_digest(original)
    for d in decision.partners:
        if d.outcome is not Outcome.DELIVER:
            outcomes.append(_outcome(d))
            continue
        try:
            keys[d.partner] = _partner_key(config, d.partner, now)
            value = _view(config, decoded, original, d, now, keys, digest)
        except MshtError as exc:
            outcomes.append(_outcome(d, reason=f"not delivered: {exc}"))
            continue
        if len(value) > config.max_view_bytes:
            reason = f"not delivered: the view is {len(value)} bytes, over {config.max_view_bytes}"
            outcomes.append(_outcome(d, reason=reason))
            continue
        deliveries.append(Delivery(d.partner, config.delivery_topic_of(d.partner), value))
        outcomes.append(_outcome(d))
    return Routed(
        event_id=header.event_id,
        source=header.source,
        subject=header.subject,
        policy_version=decision.policy_version,
        deliveries=tuple(deliveries),
        outcomes=tuple(outcomes),
    )
