"""Case updates → the CPS XML shape (root ``<CaseUpdate>``)."""

from __future__ import annotations

from adapters.cps.models import LIST_ITEMS, ROOT
from adapters.native.case import CaseUpdateDocument
from adapters.native.casemap import case_native
from adapters.native.xmlmap import build_document
from adapters.protocol import DeliveredEvent


def render_case_xml(doc: CaseUpdateDocument) -> bytes:
    """``doc`` as a CPS case update XML document (UTF-8, with declaration)."""
    return build_document(ROOT, doc.model_dump(mode="json", exclude_none=True), LIST_ITEMS)


def render_case_event_xml(event: DeliveredEvent) -> bytes:
    """A delivered ``case.*`` event as CPS XML; fields the recipient's view withheld are absent."""
    body = case_native(event.payload, event.markings, event.occurred_at)
    return build_document(ROOT, body, LIST_ITEMS)
