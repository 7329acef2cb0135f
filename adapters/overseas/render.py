"""Overseas alerts → the UMF-like XML and the Interpol-style diffusion JSON.

Delivered alerts are rendered from the payload and the header's markings (the ones that
were verified and routed on), so the handling codes shown are the codes the exchange
honoured; fields a recipient's view withheld are absent.
"""

from __future__ import annotations

from adapters.native.payloads import to_json
from adapters.native.xmlmap import build_document
from adapters.overseas.mapping import alert_native
from adapters.overseas.models import DIFFUSION_KEY, LIST_ITEMS, UMF_ROOT
from adapters.protocol import DeliveredEvent


def render_alert_event_xml(event: DeliveredEvent) -> bytes:
    """A delivered alert event as UMF-like XML."""
    body = alert_native(event.payload, event.markings, event.occurred_at)
    return build_document(UMF_ROOT, body, LIST_ITEMS)


def render_alert_event_json(event: DeliveredEvent) -> bytes:
    """A delivered alert event as diffusion JSON."""
    return to_json({DIFFUSION_KEY: alert_native(event.payload, event.markings, event.occurred_at)})
