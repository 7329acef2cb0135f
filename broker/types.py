"""Identifier types, so an agency id is never passed where a topic name belongs, and the one
decision vocabulary every layer shares."""

from enum import StrEnum
from typing import NewType

AgencyId = NewType("AgencyId", str)
"""An agency that publishes into the exchange (e.g. ``met-police``, ``cps``)."""

PartnerId = NewType("PartnerId", str)
"""A recipient of deliveries (often the same string as an agency id)."""

KeyId = NewType("KeyId", str)
"""A signing or encryption key, named by a fingerprint of its public key."""

EventId = NewType("EventId", str)
"""An event's identity, stable across re-publication of the same document."""

TopicName = NewType("TopicName", str)
"""A Kafka topic name."""

Subject = NewType("Subject", str)
"""The case or referral an event is about (URN, referral id); the Kafka key."""


class Outcome(StrEnum):
    """What happens to an event for one partner: the policy decides it, the audit records it.

    The values are the words the audit record is written with (docs/AUDIT.md).
    """

    DELIVER = "delivered"
    WITHHOLD = "withheld"
    HELD = "held"
    """Granted by the rules but waiting for a human decision (SIENA H3, 3x5x2 code C)."""
