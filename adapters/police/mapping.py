"""Police documents → canonical events (``referral.nrm``, ``referral.dtn``, ``case.*``).

The payload keeps the NRM form's field groups (the policy reads age, consent, countries and
exploitation flags from them); the document's ``handling`` becomes the event's markings.
"""

from __future__ import annotations

from typing import Any

from adapters.case import case_event
from adapters.markings import police_markings
from adapters.police.models import DutyToNotify, NrmReferral
from adapters.protocol import CanonicalEvent
from broker.types import Subject

REFERRAL_RECORD = "Referral"


def _payload(doc: NrmReferral | DutyToNotify) -> dict[str, Any]:
    body: dict[str, Any] = doc.model_dump(mode="json", exclude={"handling"})
    return body


def referral_event(doc: NrmReferral) -> CanonicalEvent:
    """An NRM referral as a ``referral.nrm`` event, keyed by its external id."""
    ref = str(doc.routing.external_id)
    return CanonicalEvent(
        event_type="referral.nrm",
        subject=Subject(ref),
        reference=ref,
        record_name=REFERRAL_RECORD,
        markings=police_markings(doc.handling),
        payload=_payload(doc),
    )


def dtn_event(doc: DutyToNotify) -> CanonicalEvent:
    """An anonymous Duty to Notify report as a ``referral.dtn`` event."""
    ref = str(doc.routing.external_id)
    return CanonicalEvent(
        event_type="referral.dtn",
        subject=Subject(ref),
        reference=ref,
        record_name=REFERRAL_RECORD,
        markings=police_markings(doc.handling),
        payload=_payload(doc),
    )


__all__ = ["case_event", "dtn_event", "referral_event"]
