"""Decode an encoded envelope for ``msht policy explain`` (the codec lives in broker.envelope)."""

from __future__ import annotations

from broker.errors import PolicyDecisionError
from broker.policy.explain import EventInput


def decode_event(data: bytes) -> EventInput:
    """Header, payload dict and payload record name of an encoded envelope."""
    raise PolicyDecisionError("reading encoded envelopes needs broker.envelope (not yet available)")
