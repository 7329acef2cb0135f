"""CPS native input → validated documents: case update XML (decisions, hearing outcomes).

The XML is read with defusedxml (no DTDs, entities or external references) and validated as
:class:`~adapters.native.case.CaseUpdateDocument`; problems are reported as XML paths
(``Defendants/Defendant[1]/DateOfBirth``).
"""

from __future__ import annotations

from pydantic import ValidationError

from adapters.cps.models import LIST_ITEMS, ROOT
from adapters.native.case import CaseUpdateDocument
from adapters.native.documents import load_xml, local
from adapters.native.problems import problems_from
from adapters.native.xmlmap import element_to_data, xml_location
from broker.errors import FieldProblem, InputValidationError

WHAT = "CPS case update XML"


def parse_case_xml(data: bytes) -> CaseUpdateDocument:
    """A ``<CaseUpdate>`` document from the CPS (or rendered for it)."""
    root = load_xml(data, WHAT)
    if local(root.tag) != ROOT:
        raise InputValidationError(
            f"{WHAT} is invalid",
            [FieldProblem("(document)", f"root element must be {ROOT}, not {local(root.tag)}")],
        )
    content = element_to_data(root, LIST_ITEMS)
    if not isinstance(content, dict):
        content = {}
    try:
        return CaseUpdateDocument.model_validate(content)
    except ValidationError as exc:
        raise InputValidationError(
            f"{WHAT} is invalid",
            problems_from(exc, lambda loc: xml_location(loc, LIST_ITEMS)),
        ) from exc
