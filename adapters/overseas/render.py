"""Overseas alerts → the UMF-like XML and the Interpol-style diffusion JSON."""

from __future__ import annotations

import json
from typing import Any

from adapters.overseas.models import DIFFUSION_KEY, LIST_ITEMS, UMF_ROOT, OverseasAlert
from adapters.payloads import plain, to_json
from adapters.protocol import DeliveredEvent
from adapters.xmlmap import build_document


def render_alert_xml(alert: OverseasAlert) -> bytes:
    """``alert`` as a UMF-like XML message."""
    return build_document(UMF_ROOT, alert.model_dump(mode="json", exclude_none=True), LIST_ITEMS)


def render_alert_json(alert: OverseasAlert) -> bytes:
    """``alert`` as an Interpol-style diffusion JSON document."""
    body = {DIFFUSION_KEY: alert.model_dump(mode="json", exclude_none=True)}
    return json.dumps(body, indent=2, ensure_ascii=False).encode() + b"\n"


def _alert_body(event: DeliveredEvent) -> dict[str, Any]:
    body: dict[str, Any] = dict(plain(event.payload))
    # The header's markings are the ones that were verified and routed on: they win over
    # the copy inside the payload.
    handling = dict(body.get("handling") or {})
    m = event.markings
    for key in ("classification", "tlp", "siena_handling", "siena_restrictions",
                "source_evaluation", "information_evaluation"):  # fmt: skip
        value = m.get(key)
        if value not in (None, "", "NONE"):
            handling[key] = str(value)
    body["handling"] = handling
    return body


def render_alert_event_xml(event: DeliveredEvent) -> bytes:
    """A delivered alert event as UMF-like XML."""
    return build_document(UMF_ROOT, _alert_body(event), LIST_ITEMS)


def render_alert_event_json(event: DeliveredEvent) -> bytes:
    """A delivered alert event as diffusion JSON."""
    return to_json({DIFFUSION_KEY: _alert_body(event)})
