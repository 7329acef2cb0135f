"""Delivered events → police JSON: NRM referrals, Duty to Notify reports and case updates.

Rendering works from the payload as delivered, so a field the recipient's view withheld is
simply absent; the event's markings become the document's ``handling`` group.
"""

from __future__ import annotations

from typing import Any

from adapters.markings import handling_from_markings
from adapters.payloads import plain, to_json
from adapters.protocol import DeliveredEvent


def render_event_json(event: DeliveredEvent) -> bytes:
    """A delivered referral or case update as the police JSON document."""
    body: dict[str, Any] = dict(plain(event.payload))
    body["handling"] = handling_from_markings(event.markings)
    return to_json(body)
