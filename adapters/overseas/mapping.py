"""Overseas alerts → canonical ``alert.inbound`` / ``alert.outbound`` events.

The provider's handling travels in the markings exactly as given — SIENA code, H3
restriction text, source and information evaluation, classification, TLP — with the
sender's country as the country of origin (so the policy can apply the origin rules). The
payload keeps the handling group too, so a rendered alert shows the codes it arrived with.
"""

from __future__ import annotations

from typing import Any

from adapters.markings import base_markings
from adapters.overseas.models import OverseasAlert
from adapters.protocol import CanonicalEvent
from broker.policy.markings import UK
from broker.types import Subject

ALERT_RECORD = "Alert"
"""Avro record name of the alert payload."""


def alert_markings(alert: OverseasAlert) -> dict[str, Any]:
    """The header markings of ``alert``, its handling codes intact."""
    h = alert.handling
    markings = base_markings(h.classification, h.tlp)
    markings.update(
        siena_handling=h.siena_handling,
        siena_restrictions=h.siena_restrictions,
        source_evaluation=h.source_evaluation,
        information_evaluation=h.information_evaluation,
        origin_country=None if alert.sender_country == UK else alert.sender_country,
    )
    return markings


def alert_event(alert: OverseasAlert) -> CanonicalEvent:
    """``alert`` as an event keyed by its message id."""
    payload: dict[str, Any] = alert.model_dump(mode="json")
    return CanonicalEvent(
        event_type=alert.event_type,
        subject=Subject(alert.message_id),
        reference=alert.message_id,
        record_name=ALERT_RECORD,
        markings=alert_markings(alert),
        payload=payload,
        occurred_at=alert.sent_at,
    )
