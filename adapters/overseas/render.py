"""Overseas alerts → the UMF-like XML and the Interpol-style diffusion JSON."""

from __future__ import annotations

import json

from adapters.overseas.models import DIFFUSION_KEY, LIST_ITEMS, UMF_ROOT, OverseasAlert
from adapters.xmlmap import build_document


def render_alert_xml(alert: OverseasAlert) -> bytes:
    """``alert`` as a UMF-like XML message."""
    return build_document(UMF_ROOT, alert.model_dump(mode="json", exclude_none=True), LIST_ITEMS)


def render_alert_json(alert: OverseasAlert) -> bytes:
    """``alert`` as an Interpol-style diffusion JSON document."""
    body = {DIFFUSION_KEY: alert.model_dump(mode="json", exclude_none=True)}
    return json.dumps(body, indent=2, ensure_ascii=False).encode() + b"\n"
