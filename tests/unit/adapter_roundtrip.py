"""Helpers for the adapters' round-trip tests: native → canonical → delivered → native."""

from __future__ import annotations

from adapters.protocol import CanonicalEvent, DeliveredEvent
from adapters.registry import parser_for
from tests.unit.adapter_samples import sample


def canonical(name: str, fmt: str) -> CanonicalEvent:
    """The canonical event of the single document in sample ``name``."""
    adapter = parser_for(fmt)
    result = adapter.parse(sample(name), fmt)
    assert len(result.accepted) == 1
    return adapter.to_canonical(result.accepted[0].document)


def delivered(
    event: CanonicalEvent, event_id: str = "e-1", source: str = "met-police"
) -> DeliveredEvent:
    """``event`` as a subscriber would hand it to an adapter after verification."""
    return DeliveredEvent(
        event_id=event_id,
        event_type=event.event_type,
        source=source,
        subject=event.subject,
        markings=event.markings,
        payload=event.payload,
        occurred_at=event.occurred_at,
        record_name=event.record_name,
    )
