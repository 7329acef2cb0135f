"""Delivered events → police JSON: NRM referrals, Duty to Notify reports and case updates.

Rendering works from the payload as delivered, so a field the recipient's view withheld is
simply absent; the event's markings become the document's ``handling`` group.
"""

from __future__ import annotations

from adapters.native.casemap import case_native
from adapters.native.payloads import to_json
from adapters.police.mapping import referral_native
from adapters.protocol import DeliveredEvent


def render_referral_json(event: DeliveredEvent) -> bytes:
    """A delivered ``referral.*`` event as NRM or Duty to Notify JSON."""
    return to_json(referral_native(event.payload, event.markings))


def render_case_json(event: DeliveredEvent) -> bytes:
    """A delivered ``case.*`` event as police case update JSON."""
    return to_json(case_native(event.payload, event.markings, event.occurred_at))
