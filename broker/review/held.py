"""The held record: what the router keeps about an event it holds, for a reviewer to decide.

Written by the router to the held topic in the same transaction as the event's audit record
(format ``msht-held/v1``, a :mod:`broker.review.signed` document signed by the router).
In clear it names only identifiers: the hold id, the event id, source, subject, event type,
where the input was, the partners it is held for and the guard that holds each. Everything a
reviewer reads (the restriction text, the header's markings, the payload) is sealed to each
reviewer allowed to decide one of its holds, and the original event bytes are sealed to the
router itself, which re-admits them when a reviewer releases the hold. Sealing is the
``msht-sealed/v2`` construction (:mod:`broker.crypto.sealing`), bound to the event's source,
id and type, the recipient and the part's name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.crypto.sealing import RecipientSealer, SealScope, Step, open_value
from broker.crypto.signing_keys import SigningKey
from broker.errors import MshtError, ReviewError
from broker.review import signed
from broker.types import AgencyId, EventId, PartnerId, Subject

HELD_FORMAT = "msht-held/v1"
HELD_CONTEXT = b"msht-broker/held/v1\x00"
_FOR_ROUTER: tuple[Step, ...] = (("field", "held-event"),)
_FOR_REVIEWER: tuple[Step, ...] = (("field", "held-review"),)


def hold_id_of(source: str, event_id: str) -> str:
    """The hold's id: stable for one (source, event id), short enough to type."""
    digest = hashlib.sha256(f"{source}\x00{event_id}".encode()).hexdigest()
    return f"hold-{digest[:20]}"


@dataclass(frozen=True)
class Hold:
    """One partner the event is held for, the guard that holds it and (sealed) why."""

    partner: PartnerId
    guard: str
    reason: str = ""
    """The guard's text (SIENA H3 restrictions included): only in the reviewers' sealed part."""


@dataclass(frozen=True)
class HeldInput:
    """Where and when the broker stored the held input: the router re-admits it as it was."""

    topic: str
    partition: int
    partitions: int
    offset: int
    key: bytes | None
    appended_ms: int


@dataclass(frozen=True)
class HeldRecord:
    """A held record as read from the held topic (its signature not yet checked)."""

    hold_id: str
    event_id: EventId
    source: AgencyId
    subject: Subject
    event_type: str
    held_at: datetime
    policy_version: str
    input: HeldInput
    holds: tuple[Hold, ...]
    for_router: str = field(repr=False)
    for_reviewers: Mapping[str, str] = field(repr=False)
    document: signed.SignedDocument = field(repr=False)

    @property
    def scope(self) -> SealScope:
        """The sealing scope of the held event."""
        return SealScope(self.source, self.event_id, self.event_type)

    def hold_for(self, partner: str) -> Hold | None:
        """The hold for ``partner``, if the event is held for it."""
        for hold in self.holds:
            if hold.partner == partner:
                return hold
        return None

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Raise :class:`ReviewError` unless the router's ``public_key`` signed the record."""
        self.document.verify(HELD_CONTEXT, public_key)


def plain(value: Any) -> Any:
    """``value`` as JSON types (times and dates as ISO text, bytes as their repr)."""
    return json.loads(json.dumps(value, default=str))


def build_held(
    *,
    router: SigningKey,
    router_public: X25519PublicKey,
    reviewer_keys: Mapping[str, X25519PublicKey],
    scope: SealScope,
    subject: Subject,
    held_at: datetime,
    policy_version: str,
    held_input: HeldInput,
    holds: Sequence[Hold],
    original: bytes,
    review: Mapping[str, Any],
) -> bytes:
    """The bytes of a held record, signed by ``router``.

    ``review`` is what reviewers read besides the holds (header markings, payload as the
    router opened it); it and each hold's reason are sealed to every key in ``reviewer_keys``.
    """
    for_router = RecipientSealer(scope, PartnerId(router.agency), router_public).seal(
        _FOR_ROUTER, original
    )
    sealed_part = plain(
        {
            "holds": [{"partner": h.partner, "guard": h.guard, "reason": h.reason} for h in holds],
            **review,
        }
    )
    for_reviewers = {
        rid: RecipientSealer(scope, PartnerId(rid), key).seal(_FOR_REVIEWER, sealed_part)
        for rid, key in sorted(reviewer_keys.items())
    }
    body: dict[str, Any] = {
        "hold_id": hold_id_of(scope.source, scope.event_id),
        "event_id": scope.event_id,
        "source": scope.source,
        "subject": subject,
        "event_type": scope.event_type,
        "held_at": held_at.isoformat(),
        "policy_version": policy_version,
        "input": {
            "topic": held_input.topic,
            "partition": held_input.partition,
            "partitions": held_input.partitions,
            "offset": held_input.offset,
            "key": None if held_input.key is None else signed.b64(held_input.key),
            "appended_ms": held_input.appended_ms,
        },
        "holds": [{"partner": h.partner, "guard": h.guard} for h in holds],
        "for_router": for_router,
        "for_reviewers": for_reviewers,
    }
    return signed.write(
        HELD_FORMAT, HELD_CONTEXT, body, router.agency, router.key_id, router.private_key
    )


def read_held(value: bytes) -> HeldRecord:
    """Parse a held record; :class:`ReviewError` names what is malformed."""
    doc = signed.read(value, HELD_FORMAT)
    body = doc.body
    raw_input = body.get("input")
    raw_holds = body.get("holds")
    raw_reviewers = body.get("for_reviewers")
    if not isinstance(raw_input, dict):
        raise ReviewError("input: missing or not an object")
    if not isinstance(raw_holds, list) or not raw_holds:
        raise ReviewError("holds: missing or empty")
    if not isinstance(raw_reviewers, dict) or not all(
        isinstance(v, str) for v in raw_reviewers.values()
    ):
        raise ReviewError("for_reviewers: missing or not an object of strings")
    holds = []
    for h in raw_holds:
        if not isinstance(h, dict):
            raise ReviewError("holds: an entry is not an object")
        holds.append(Hold(PartnerId(signed.text(h, "partner")), signed.text(h, "guard")))
    key = raw_input.get("key")
    try:
        held_at = datetime.fromisoformat(signed.text(body, "held_at"))
    except ValueError as exc:
        raise ReviewError("held_at: not an ISO time") from exc
    return HeldRecord(
        hold_id=signed.text(body, "hold_id"),
        event_id=EventId(signed.text(body, "event_id")),
        source=AgencyId(signed.text(body, "source")),
        subject=Subject(signed.text(body, "subject")),
        event_type=signed.text(body, "event_type"),
        held_at=held_at,
        policy_version=signed.text(body, "policy_version"),
        input=HeldInput(
            topic=signed.text(raw_input, "topic"),
            partition=signed.integer(raw_input, "partition"),
            partitions=signed.integer(raw_input, "partitions"),
            offset=signed.integer(raw_input, "offset"),
            key=None if key is None else signed.unb64(str(key), "input.key"),
            appended_ms=signed.integer(raw_input, "appended_ms"),
        ),
        holds=tuple(holds),
        for_router=signed.text(body, "for_router"),
        for_reviewers=dict(raw_reviewers),
        document=doc,
    )


def open_for_router(
    record: HeldRecord, router: AgencyId, keys: Sequence[X25519PrivateKey]
) -> bytes:
    """The original event bytes, opened with the router's X25519 keys."""
    try:
        value = open_value(record.for_router, _FOR_ROUTER, record.scope, PartnerId(router), keys)
    except MshtError as exc:
        raise ReviewError(f"for_router: {exc}") from exc
    if not isinstance(value, bytes):
        raise ReviewError("for_router: does not hold event bytes")
    return value


def open_for_reviewer(
    record: HeldRecord, reviewer: str, keys: Sequence[X25519PrivateKey]
) -> dict[str, Any]:
    """What the reviewer reads (holds with reasons, markings, payload), opened with their keys."""
    sealed = record.for_reviewers.get(reviewer)
    if sealed is None:
        raise ReviewError(
            f"hold {record.hold_id} is not sealed to reviewer {reviewer!r} "
            f"(sealed to: {', '.join(sorted(record.for_reviewers)) or 'no reviewer'})"
        )
    try:
        value = open_value(sealed, _FOR_REVIEWER, record.scope, PartnerId(reviewer), keys)
    except MshtError as exc:
        raise ReviewError(f"for_reviewers.{reviewer}: {exc}") from exc
    if not isinstance(value, dict):
        raise ReviewError(f"for_reviewers.{reviewer}: not an object")
    return value


CLOSED_FORMAT = "msht-held-closed/v1"
CLOSED_CONTEXT = b"msht-broker/held-closed/v1\x00"


@dataclass(frozen=True)
class Closure:
    """The router's note, on the held topic, that a hold for one partner was decided.

    Written in the same transaction as the decision's delivery and audit record, so
    ``msht held list`` shows what still waits from the held topic alone. Identifiers only:
    the reviewer's reason is in the audit record.
    """

    hold_id: str
    partner: PartnerId
    verdict: str
    outcome: str
    """``delivered`` when a release was carried out, ``withheld`` otherwise."""
    reviewer: str
    decided_at: datetime


def build_closure(router: SigningKey, closure: Closure) -> bytes:
    """The bytes of a closure record, signed by the router."""
    body = {
        "hold_id": closure.hold_id,
        "partner": closure.partner,
        "verdict": closure.verdict,
        "outcome": closure.outcome,
        "reviewer": closure.reviewer,
        "decided_at": closure.decided_at.isoformat(),
    }
    return signed.write(
        CLOSED_FORMAT, CLOSED_CONTEXT, body, router.agency, router.key_id, router.private_key
    )


def read_closure(value: bytes) -> Closure:
    """Parse a closure record; :class:`ReviewError` names what is malformed."""
    body = signed.read(value, CLOSED_FORMAT).body
    try:
        decided_at = datetime.fromisoformat(signed.text(body, "decided_at"))
    except ValueError as exc:
        raise ReviewError("decided_at: not an ISO time") from exc
    return Closure(
        hold_id=signed.text(body, "hold_id"),
        partner=PartnerId(signed.text(body, "partner")),
        verdict=signed.text(body, "verdict"),
        outcome=signed.text(body, "outcome"),
        reviewer=signed.text(body, "reviewer"),
        decided_at=decided_at,
    )
