"""Deterministic event ids: the same document published twice gets the same id.

The id is a UUIDv5 over the publishing agency, the document's own reference and a SHA-256
of the canonical content (event type, markings and payload, as canonical JSON). A changed
document (a correction) therefore gets a new id, and a re-publication after a crash the old
one, so the router can deliver each document exactly once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from adapters.protocol import CanonicalEvent
from broker.types import AgencyId, EventId

_NAMESPACE = uuid.UUID("5b0e8d3c-6f1a-4c2e-9a7d-3e4f5a6b7c8d")
"""Fixed namespace of msht-broker event ids (never change: it would re-number every event)."""


def _default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot hash a {type(value).__name__}")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """``value`` as canonical JSON: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode()


def content_digest(event: CanonicalEvent) -> str:
    """SHA-256 (hex) of the event's type, markings and payload."""
    body = {"event_type": event.event_type, "markings": event.markings, "payload": event.payload}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def derive_event_id(agency: AgencyId, event: CanonicalEvent) -> EventId:
    """The event id of ``event`` published by ``agency``."""
    name = f"{agency}\n{event.reference}\n{content_digest(event)}"
    return EventId(str(uuid.uuid5(_NAMESPACE, name)))
