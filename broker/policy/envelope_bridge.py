"""Decode an encoded envelope for ``msht policy explain`` (codec: broker.events.envelope).

Explain answers "what would the policy do with this event", not "is this event genuine":
signatures are neither required nor checked here. The router verifies every signature
against the trust store before it decides; explaining an unsigned or forged envelope shows
what the policy would have done had it been genuine.
"""

from __future__ import annotations

from broker.errors import CodecError, PolicyDecisionError
from broker.events.envelope import decode_envelope, decode_payload
from broker.policy.explain import EventInput


def decode_event(data: bytes) -> EventInput:
    """Header, payload dict and payload record name of a single-object-encoded envelope.

    The payload is read with its writer schema into the newest version of its record, as
    the router reads it. A truncated, foreign or corrupt envelope raises
    :class:`PolicyDecisionError` carrying the codec's reason (the event is not quoted).
    """
    try:
        envelope = decode_envelope(data)
        payload = decode_payload(envelope)
    except CodecError as exc:
        raise PolicyDecisionError(f"not a readable encoded event: {exc}") from exc
    return EventInput(
        header=envelope.header,
        payload=payload,
        record=envelope.header.payload_schema_name,
    )
