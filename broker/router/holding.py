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
from broker.review.notice import NOTICE_KIND_HEADER, Notice, Status, build_notice
from broker.router.route import Decoded, RouteConfig, Routed
from broker.types import Outcome, PartnerId

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


def notice_output(config: RouteConfig, notice: Notice) -> Outgoing | None:
    """``notice`` on the source's delivery topic, or ``None`` if the source is no partner
    (it has no delivery topic to be told on)."""
    if config.policy.policy.partner(notice.source) is None:
        return None
    return Outgoing(
        config.delivery_topic_of(PartnerId(notice.source)),
        build_notice(config.identity.signing_key, notice),
        key=notice.subject.encode("utf-8"),
        headers=(NOTICE_KIND_HEADER, ("msht-event-id", notice.event_id.encode("utf-8"))),
    )


def held_output(
    config: RouteConfig,
    topic: str,
    record: Incoming,
    decoded: Decoded,
    routed: Routed,
    now: datetime,
) -> list[Outgoing]:
    """The held record for ``routed`` and the notice to its source; none when nothing is held."""
    holds = tuple(
        Hold(o.partner, o.rule, o.reason or "")
        for o in routed.outcomes
        if o.outcome is Outcome.HELD
    )
    if not holds:
        return []
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
    hold_id = hold_id_of(header.source, header.event_id)
    out = [
        Outgoing(
            topic,
            value,
            key=hold_id.encode("ascii"),
            headers=(("msht-event-id", header.event_id.encode("utf-8")),),
        )
    ]
    notice = notice_output(
        config,
        Notice(
            status=Status.HELD,
            event_id=header.event_id,
            hold_id=hold_id,
            source=header.source,
            subject=header.subject,
            partners=tuple(h.partner for h in holds),
            guard=", ".join(dict.fromkeys(h.guard for h in holds)),
            reason="; ".join(dict.fromkeys(h.reason for h in holds)),
            at=now,
        ),
    )
    return out if notice is None else [*out, notice]
