"""Native CPS documents: the case update XML shape.

The CPS exchanges the same case update document as the police
(:class:`~adapters.native.case.CaseUpdateDocument`), written as XML with root ``<CaseUpdate>``;
this module names the XML's list elements and their items.
"""

from __future__ import annotations

from adapters.native.case import CaseUpdateDocument

ROOT = "CaseUpdate"
"""Root element of a CPS case update document."""

LIST_ITEMS: dict[str, str] = {
    "monitoring_codes": "Code",
    "defendants": "Defendant",
    "charges": "Charge",
    "files": "Form",
    "victims": "Victim",
    "exploitation_types": "Type",
    "countries": "Country",
    "intended_recipients": "Recipient",
    "origin_authorised_recipients": "Recipient",
}
"""List fields and the element name of each item (``<MonitoringCodes><Code>HUTR</Code>``)."""

__all__ = ["LIST_ITEMS", "ROOT", "CaseUpdateDocument"]
