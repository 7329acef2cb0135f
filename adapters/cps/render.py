"""Case updates → the CPS XML shape (root ``<CaseUpdate>``)."""

from __future__ import annotations

from adapters.case import CaseUpdateDocument
from adapters.cps.models import LIST_ITEMS, ROOT
from adapters.xmlmap import build_document


def render_case_xml(doc: CaseUpdateDocument) -> bytes:
    """``doc`` as a CPS case update XML document (UTF-8, with declaration)."""
    return build_document(ROOT, doc.model_dump(mode="json", exclude_none=True), LIST_ITEMS)
