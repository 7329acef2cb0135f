"""What the router does with one ingress record: the pure decision, no Kafka.

Steps, each failing into quarantine with a named reason (never a crash, never a drop):
decode the envelope (a format version this build reads) → the topic is the source agency's
own ingress topic → it is an original (no provenance) → every signature verifies → the
event type carries the payload record the header names → the payload decodes → the fields
the publisher sealed to the router open → facts → policy decision. Then, for every partner
the policy grants, the view is built, its tagged fields are sealed to the partner's own
key, and the router countersigns it with the original's digest and signatures as provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.audit import RecipientOutcome
from broker.envelope import (
    Envelope,
    Provenance,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
    envelope_digest,
)
from broker.errors import (
    CodecError,
    EventTypeMismatchError,
    MshtError,
    PolicyDecisionError,
    SealingError,
    UnknownFormatError,
    VerificationError,
)
from broker.keys import SigningKey
from broker.policy import (
    EventFacts,
    LoadedPolicy,
    PartnerDecision,
    apply_view,
    decide,
    extract_facts,
)
from broker.policy.decide import Outcome
from broker.policy.fields import FieldInfo, load_record_fields
from broker.protect import open_protected, scope_of, seal_protected
from broker.signing import sign, verify
from broker.trust import TrustStore
from broker.types import AgencyId, EventId, PartnerId, Subject

_OUTCOME_NAMES = {Outcome.DELIVER: "delivered", Outcome.WITHHOLD: "withheld", Outcome.HELD: "held"}


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


def _reason(exc: MshtError) -> str:
    if isinstance(exc, UnknownFormatError):
        return "unknown-format"
    if isinstance(exc, EventTypeMismatchError):
        return "wrong-payload-type"
    if isinstance(exc, CodecError):
        return "undecodable"
    if isinstance(exc, VerificationError):
        return "unverified"
    if isinstance(exc, SealingError):
        return "unsealable"
    if isinstance(exc, PolicyDecisionError):
        return "undecidable"
    return "invalid"


_FIELDS: dict[str, tuple[FieldInfo, ...]] = {}


def _fields(record_name: str) -> tuple[FieldInfo, ...]:
    short = record_name.rsplit(".", 1)[-1]
    if short not in _FIELDS:
        _FIELDS[short] = tuple(load_record_fields(short))
    return _FIELDS[short]


def admit(config: RouteConfig, topic: str, value: bytes, now: datetime) -> Decoded | Quarantined:
    """Decode and verify an ingress record; a :class:`Quarantined` names what failed."""
    try:
        envelope = decode_envelope(value)
    except CodecError as exc:
        return Quarantined(_reason(exc), str(exc))
    header = envelope.header

    def refuse(reason: str, error: str) -> Quarantined:
        return Quarantined(reason, error, header.event_id, header.source, header.subject)

    expected = config.ingress_topic_of(header.source)
    if topic != expected:
        return refuse(
            "wrong-topic",
            f"source: event claims agency {header.source!r} but arrived on {topic!r}, "
            f"not that agency's ingress topic {expected!r}",
        )
    if header.provenance is not None:
        return refuse(
            "not-original", "provenance: an ingress event must be an original, not a view"
        )
    try:
        verify(envelope, config.trust, now=now, max_skew=config.max_skew)
        payload = decode_payload(envelope)
        # The scope binds the header's source: a value another agency's event carried
        # (copied from its ingress record, a backup, quarantine) does not open here.
        payload = open_protected(
            payload,
            scope_of(header),
            PartnerId(config.identity.agency),
            config.identity.encryption_keys,
        )
        facts = extract_facts(header, payload, _fields(header.payload_schema_name))
    except MshtError as exc:
        return refuse(_reason(exc), str(exc))
    return Decoded(envelope, payload, facts)


def _outcome(d: PartnerDecision, *, reason: str | None = None) -> RecipientOutcome:
    name = _OUTCOME_NAMES[d.outcome] if reason is None else "withheld"
    return RecipientOutcome(
        partner=d.partner,
        outcome=name,  # type: ignore[arg-type]  # one of the audit Outcome literals
        rule=d.decided_by,
        view=d.view,
        lawful_basis=str(d.basis) if d.basis is not None else None,
        reason=reason or d.reason,
    )


def _view(
    config: RouteConfig,
    decoded: Decoded,
    original: bytes,
    d: PartnerDecision,
    now: datetime,
    keys: Mapping[PartnerId, X25519PublicKey],
) -> bytes:
    header = decoded.envelope.header
    assert d.plan is not None  # a delivery always carries its view plan
    payload = apply_view(decoded.payload, d.plan).payload
    # apply_view returned a fresh copy that nothing else holds: seal inside it.
    payload = seal_protected(
        payload,
        header.payload_schema_name,
        scope_of(header),
        d.partner,
        keys[d.partner],
        d.seals,
        in_place=True,
    )
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
        provenance=Provenance(
            original_digest=envelope_digest(original),
            original_signatures=decoded.envelope.signatures,
            recipient=d.partner,
            view=d.view,
        ),
    )
    signed = sign(view, config.identity.signing_key, signed_at=now)
    return encode_envelope(signed, check=False)


def _partner_key(config: RouteConfig, partner: PartnerId, now: datetime) -> X25519PublicKey:
    trusted = config.trust.current_encryption_key(partner, now)
    return X25519PublicKey.from_public_bytes(trusted.public_key)


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
    for d in decision.partners:
        if d.outcome is not Outcome.DELIVER:
            outcomes.append(_outcome(d))
            continue
        try:
            keys[d.partner] = _partner_key(config, d.partner, now)
            value = _view(config, decoded, original, d, now, keys)
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
