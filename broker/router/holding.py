"""What the router keeps about an event it holds: the held record (``broker.review.held``).

Pure. Called by the processor for a routed event with at least one ``held`` outcome; the
record goes to the held topic in the same transaction as the event's audit record, so a
hold is never audited without being kept, nor kept without being audited.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from broker.crypto.sealed_fields import scope_of
from broker.errors import MshtError
from broker.events.envelope import markings_to_dict
from broker.kafka.records import Incoming, Outgoing
from broker.logging import get_logger
from broker.review.held import HeldInput, Hold, build_held, hold_id_of
from broker.router.route import Decoded, RouteConfig, Routed
from broker.types import Outcome

_log = get_logger(__name__)


def reviewer_keys(
    config: RouteConfig, guards: set[str], partners: set[str], now: datetime
) -> dict[str, X25519PublicKey]:
    """The X25519 keys of every reviewer who may decide one of these holds.

    A reviewer without a valid encryption key in the trust store is left out (and logged):
    the hold is still kept, sealed to the others and to the router.
    """
    policy = config.policy.policy
    keys: dict[str, X25519PublicKey] = {}
    for reviewer in policy.reviewers:
        if not any(reviewer.may_decide(policy, g, p) for g in guards for p in partners):
            continue
        try:
            trusted = config.trust.current_encryption_key(reviewer.id, now)
            keys[reviewer.id] = X25519PublicKey.from_public_bytes(trusted.public_key)
        except (MshtError, ValueError):
            _log.warning("reviewer has no usable encryption key", reviewer=reviewer.id)
    return keys


def held_output(
    config: RouteConfig,
    topic: str,
    record: Incoming,
    decoded: Decoded,
    routed: Routed,
    now: datetime,
) -> Outgoing | None:
    """The held record for ``routed``, or ``None`` when nothing is held."""
    holds = tuple(
        Hold(o.partner, o.rule, o.reason or "")
        for o in routed.outcomes
        if o.outcome is Outcome.HELD
    )
    if not holds:
        return None
    header = decoded.envelope.header
    identity = config.identity
    keys = reviewer_keys(config, {h.guard for h in holds}, {h.partner for h in holds}, now)
    value = build_held(
        router=identity.signing_key,
        router_public=identity.encryption_keys[0].public_key(),
        reviewer_keys=keys,
        scope=scope_of(header),
        subject=header.subject,
        held_at=now,
        policy_version=routed.policy_version,
        held_input=HeldInput(
            topic=record.topic,
            partition=record.partition,
            partitions=record.partitions,
            offset=record.offset,
            key=record.key,
            appended_ms=record.timestamp_ms,
        ),
        holds=holds,
        original=record.value,
        review={
            "header": {
                "event_id": header.event_id,
                "event_type": header.event_type,
                "source": header.source,
                "subject": header.subject,
                "occurred_at": header.occurred_at,
                "markings": markings_to_dict(header.markings),
            },
            "payload": decoded.payload,
        },
    )
    return Outgoing(
        topic,
        value,
        key=hold_id_of(header.source, header.event_id).encode("ascii"),
        headers=(("msht-event-id", header.event_id.encode("utf-8")),),
    )
